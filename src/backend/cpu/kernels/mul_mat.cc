// mul_mat: dst [m, n, B2, B3] = w [k, m, b2, b3] x [k, n, B2, B3] (ops.h), weights broadcast
// over the batch dims. Two phases, as ggml runs it:
//  1. the threads convert the activations once into the weight's vec-dot type (kernels in
//     simd/), into the shared scratch; float weights read f32 activations in place;
//  2. after a barrier the threads take chunks of (rows x columns) of each batch from a shared
//     counter (so a thread slowed by another process does not hold the others up) and compute
//     them with the register-tiled gemm of the weight dtype.
// Weights the backend repacked into panels at load time (ctx.packed) run on the panel kernels
// for any number of columns, decode included (handed out in guided chunks of panels where the
// columns fit one chunk); others are packed per chunk where the product
// has enough columns to repay it. The backend may pass products of the same activations along
// (ctx.siblings: a layer's q, k and v, or its gate and up): one conversion, one barrier and one
// stream of chunks for all of them, where k and v alone are too small to keep the memory busy.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <span>

#include "backend/cpu/kernels/kernels.h"
#include "backend/cpu/simd/matmul_kernels.h"

namespace corral::backend::cpu {
namespace {

// The chunk counter sits at the start of the scratch; the converted activations follow.
constexpr size_t kHeader = 64;

// Rows of a chunk: enough chunks for balance between threads, few enough that taking one
// costs little next to computing it.
constexpr int64_t kRowsPerChunk = 64;
static_assert(kRowsPerChunk % simd::kPanelRows == 0, "chunks start on a panel");
// Columns of a chunk: the chunk's converted activations stay in L2 (~256 KiB) while its weight
// rows stream past them.
int64_t cols_per_chunk(size_t row_bytes, int64_t n) {
  int64_t c = static_cast<int64_t>((256u << 10) / std::max<size_t>(row_bytes, 1));
  c = std::clamp<int64_t>(c, 4, 256) / 4 * 4;
  return std::min(c, n);
}

// The panel kernels where the product has enough columns to repay packing the weights.
const simd::PanelKernels* panel_kernels(const simd::MatMulKernels& kern, int64_t ncols) {
  return ncols >= simd::kPanelMinCols && kern.panel && !kern.panel->packed_only ? kern.panel
                                                                                : nullptr;
}

size_t converted_row_bytes(const simd::MatMulKernels& kern, const simd::PanelKernels* panel,
                           int64_t k) {
  if (panel) return panel->x_row_bytes(k);
  return kern.vec_type == ml::DType::F32 ? 0 : ml::row_size(kern.vec_type, k);
}

size_t align64(size_t n) { return (n + 63) / 64 * 64; }

// One product of a pass: the node, its weights, their panels where the backend packed them
// (with the panel kernels for their dtype) and its chunks of the grid (n_row_chunks per column
// chunk, per_batch per batch; end: one past its last chunk in the pass's numbering).
struct Part {
  const ml::Node* n = nullptr;
  const ml::Node* w = nullptr;
  const unsigned char* packed = nullptr;
  const simd::PanelKernels* kernels = nullptr;
  int64_t n_row_chunks = 0, per_batch = 0, end = 0;
};

// The panels of the products, one after the other, handed out in guided chunks: each take is
// 1/(2 nth) of what is left, at least kRowsPerChunk rows. A thread streams long runs of
// consecutive panels (each new run restarts the prefetchers: measured 4% faster decode than
// 64-row chunks throughout) and the last takes are small, so the threads finish together.
void run_guided(std::span<const Part> parts, int64_t k, const unsigned char* x, size_t ldx,
                int ncols, int nth, std::atomic_ref<int64_t> next) {
  int64_t ends[1 + kMaxMulMatSiblings];
  int64_t total = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    total += (parts[i].w->ne[1] + simd::kPanelRows - 1) / simd::kPanelRows;
    ends[i] = total;
  }
  constexpr int64_t kMinPanels = kRowsPerChunk / simd::kPanelRows;
  for (;;) {
    int64_t cur = next.load(std::memory_order_relaxed), take = 0;
    do {
      if (cur >= total) return;
      take = std::min(total - cur, std::max(kMinPanels, (total - cur) / (2 * nth)));
    } while (!next.compare_exchange_weak(cur, cur + take, std::memory_order_relaxed));
    for (int64_t p = cur, stop = cur + take; p < stop;) {
      size_t i = 0;
      while (p >= ends[i]) ++i;
      const Part& pr = parts[i];
      const int64_t first = i > 0 ? ends[i - 1] : 0, upto = std::min(stop, ends[i]);
      const size_t pbytes = pr.kernels->panel_bytes(k);
      const size_t ldo = pr.n->nb[1] / sizeof(float);
      float* out = static_cast<float*>(pr.n->data);
      for (int64_t q = p - first; q < upto - first; ++q) {
        const int64_t r0 = q * simd::kPanelRows;
        const int nr = static_cast<int>(std::min<int64_t>(simd::kPanelRows, pr.w->ne[1] - r0));
        pr.kernels->gemm(k, pr.packed + static_cast<size_t>(q) * pbytes, x, ldx, out + r0, ldo, nr,
                         ncols);
      }
      p = upto;
    }
  }
}

}  // namespace

// Layout: the chunk counter, the converted activations, then one weight panel per thread.
size_t mul_mat_work_size(const ml::Graph& g, const ml::Node& n, int nth, simd::Isa isa) {
  const ml::Node& w = g.node(n.src[0]);
  const ml::Node& x = g.node(n.src[1]);
  const simd::MatMulKernels& kern = simd::matmul_kernels(w.dtype, isa);
  const simd::PanelKernels* panel = panel_kernels(kern, x.ne[1]);
  // The backend may hand over packed weights (which take the panel activations) or not.
  size_t row = converted_row_bytes(kern, panel, x.ne[0]);
  if (kern.panel) row = std::max(row, kern.panel->x_row_bytes(x.ne[0]));
  size_t bytes = kHeader + align64(row * static_cast<size_t>(x.nrows()));
  if (panel) bytes += static_cast<size_t>(nth) * align64(panel->panel_bytes(w.ne[0]));
  return bytes;
}

void mul_mat(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n) {
  const ml::Node& w = g.node(n.src[0]);
  const ml::Node& x = g.node(n.src[1]);
  const int64_t k = w.ne[0];
  const int64_t ncols = x.ne[1], B2 = x.ne[2], B3 = x.ne[3];
  const int64_t r2 = B2 / w.ne[2], r3 = B3 / w.ne[3];
  const simd::MatMulKernels& kern = simd::matmul_kernels(w.dtype, ctx.isa);
  const auto* packed = static_cast<const unsigned char*>(ctx.packed);
  const simd::PanelKernels* panel = packed ? kern.panel : panel_kernels(kern, ncols);
  const simd::FromF32 from_f32 = panel ? panel->from_f32 : kern.from_f32;

  auto* scratch = static_cast<unsigned char*>(ctx.wdata);
  std::atomic_ref<int64_t> next_chunk(*reinterpret_cast<int64_t*>(scratch));

  // Phase 1: activations to the vec-dot type, rows split over the threads.
  const size_t row_bytes = converted_row_bytes(kern, panel, k);
  const auto* xdata = static_cast<const unsigned char*>(x.data);
  if (row_bytes) {
    int64_t begin, end;
    ctx.split(x.nrows(), begin, end);
    for (int64_t r = begin; r < end; ++r) {
      const int64_t i1 = r % ncols, i2 = (r / ncols) % B2, i3 = r / (ncols * B2);
      const auto* src =
          reinterpret_cast<const float*>(xdata + i1 * x.nb[1] + i2 * x.nb[2] + i3 * x.nb[3]);
      from_f32(src, scratch + kHeader + r * row_bytes, k);
    }
  }
  const int64_t col_chunk = cols_per_chunk(row_bytes ? row_bytes : k * sizeof(float), ncols);
  const int64_t n_col_chunks = (ncols + col_chunk - 1) / col_chunk;
  const bool guided = packed && n_col_chunks == 1 && B2 == 1 && B3 == 1;
  // Guided hand-out counts panels from 0; chunks of the grid are taken by index from nth on
  // (thread i starts with chunk i).
  if (ctx.ith == 0) next_chunk.store(guided ? 0 : ctx.nth, std::memory_order_relaxed);
  ctx.barrier();

  // Phase 2: chunks of rows x columns; column chunks outer so a chunk's activations are reused
  // by consecutive row chunks. The products of the pass (this node and its siblings) hand out
  // their chunks one after the other from the one counter.
  const size_t ldx = row_bytes ? row_bytes : x.nb[1];
  const size_t xb2 = row_bytes ? row_bytes * ncols : x.nb[2];
  const size_t xb3 = row_bytes ? row_bytes * ncols * B2 : x.nb[3];
  const unsigned char* xbase = row_bytes ? scratch + kHeader : xdata;
  Part parts[1 + kMaxMulMatSiblings];
  const int n_parts = 1 + std::min(ctx.n_siblings, kMaxMulMatSiblings);
  int64_t total = 0;
  for (int i = 0; i < n_parts; ++i) {
    const ml::Node& pn = i == 0 ? n : *ctx.siblings[i - 1].n;
    const ml::Node& pw = g.node(pn.src[0]);
    const int64_t rows = (pw.ne[1] + kRowsPerChunk - 1) / kRowsPerChunk;
    total += rows * n_col_chunks * B2 * B3;
    // Siblings come only with packed weights, whose panel kernels take the same activations.
    parts[i] = {&pn,
                &pw,
                static_cast<const unsigned char*>(i == 0 ? ctx.packed : ctx.siblings[i - 1].packed),
                i == 0 ? panel : simd::matmul_kernels(pw.dtype, ctx.isa).panel,
                rows,
                rows * n_col_chunks,
                total};
  }
  if (guided) {
    run_guided(std::span(parts, static_cast<size_t>(n_parts)), k, xbase, ldx,
               static_cast<int>(ncols), ctx.nth, next_chunk);
    return;
  }

  unsigned char* my_panel = nullptr;
  if (panel && !packed) {
    my_panel = scratch + kHeader + align64(row_bytes * static_cast<size_t>(x.nrows())) +
               static_cast<size_t>(ctx.ith) * align64(panel->panel_bytes(k));
  }

  int part = 0;
  for (int64_t chunk = ctx.ith; chunk < total;
       chunk = next_chunk.fetch_add(1, std::memory_order_relaxed)) {
    while (chunk >= parts[part].end) ++part;
    const Part& pt = parts[part];
    const ml::Node& pw = *pt.w;
    const int64_t pm = pw.ne[1];
    const int64_t local = chunk - (part > 0 ? parts[part - 1].end : 0);
    const int64_t batch = local / pt.per_batch, within = local % pt.per_batch;
    const int64_t i2 = batch % B2, i3 = batch / B2;
    const int64_t c0 = (within / pt.n_row_chunks) * col_chunk;
    const int64_t r0 = (within % pt.n_row_chunks) * kRowsPerChunk;
    const int nr = static_cast<int>(std::min(kRowsPerChunk, pm - r0));
    const int nc = static_cast<int>(std::min(col_chunk, ncols - c0));
    const unsigned char* xp = xbase + i2 * xb2 + i3 * xb3 + c0 * ldx;
    const ml::Node& pn = *pt.n;
    const size_t ldo = pn.nb[1] / sizeof(float);
    float* out = reinterpret_cast<float*>(static_cast<unsigned char*>(pn.data) + i2 * pn.nb[2] +
                                          i3 * pn.nb[3] + c0 * pn.nb[1]) +
                 r0;
    if (pt.packed) {
      // Packed weights are 2-D: every batch reads the same panels. r0 is a multiple of 8.
      const simd::PanelKernels* pk = pt.kernels;
      const size_t pbytes = pk->panel_bytes(k);
      const unsigned char* pp = pt.packed + static_cast<size_t>(r0 / simd::kPanelRows) * pbytes;
      for (int p0 = 0; p0 < nr; p0 += simd::kPanelRows, pp += pbytes) {
        pk->gemm(k, pp, xp, ldx, out + p0, ldo, std::min(simd::kPanelRows, nr - p0), nc);
      }
      continue;
    }
    const unsigned char* wp = static_cast<const unsigned char*>(pw.data) + (i2 / r2) * pw.nb[2] +
                              (i3 / r3) * pw.nb[3] + r0 * pw.nb[1];
    if (panel) {
      for (int p0 = 0; p0 < nr; p0 += simd::kPanelRows) {
        const int pr = std::min(simd::kPanelRows, nr - p0);
        panel->pack(k, wp + p0 * pw.nb[1], pw.nb[1], pr, my_panel);
        panel->gemm(k, my_panel, xp, ldx, out + p0, ldo, pr, nc);
      }
    } else {
      kern.gemm(k, wp, pw.nb[1], xp, ldx, out, ldo, nr, nc);
    }
  }
}

}  // namespace corral::backend::cpu
