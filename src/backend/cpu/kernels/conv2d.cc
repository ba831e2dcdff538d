#include <algorithm>
#include <cstdint>

#include "backend/cpu/kernels/convert.h"
#include "backend/cpu/kernels/im2col.h"
#include "backend/cpu/kernels/kernels.h"
#include "backend/cpu/kernels/rows.h"
#include "backend/cpu/kernels/vec.h"

namespace corral::backend::cpu {
namespace {

// Output pixels whose im2col columns a thread builds at once; each kernel row loaded from cache
// then meets this many columns.
constexpr int64_t kPixels = 16;

struct ConvDims {
  int64_t k, cout, ow, oh, batch;
};
ConvDims conv_dims(const ml::Graph& g, const ml::Node& n) {
  const ml::Node& kernel = g.node(n.src[0]);
  return {kernel.ne[0] * kernel.ne[1] * kernel.ne[2], kernel.ne[3], n.ne[0], n.ne[1], n.ne[3]};
}

}  // namespace

// Work: the kernel as contiguous f32 rows [K, Cout], then per thread kPixels columns of K.
size_t conv2d_work_size(const ml::Graph& g, const ml::Node& n, int nth, simd::Isa) {
  const ConvDims d = conv_dims(g, n);
  return static_cast<size_t>(d.k * d.cout + nth * kPixels * d.k) * sizeof(float);
}

// im2col into the work buffer, kPixels output pixels at a time, then a GEMM of the kernel rows
// against those columns: out[b][co][pixel] = dot(kernel[co], column[pixel]).
void conv2d(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n) {
  const ml::Node& kernel = g.node(n.src[0]);
  const ml::Node& image = g.node(n.src[1]);
  const auto& p = n.params<ml::op::Conv2D>();
  const ConvDims d = conv_dims(g, n);
  const ConvGeometry geo{kernel.ne[0], kernel.ne[1], kernel.ne[2], p.s0, p.s1,
                         p.p0,         p.p1,         p.d0,         p.d1};
  float* w = static_cast<float*>(ctx.wdata);
  float* cols = w + d.k * d.cout + ctx.ith * kPixels * d.k;
  const vec::Ops& v = ctx.vops();

  // Phase 1: kernel rows to contiguous f32 (the element order of a column, see im2col.h).
  int64_t c0, c1;
  ctx.split(d.cout, c0, c1);
  for (int64_t co = c0; co < c1; ++co) {
    float* dst = w + co * d.k;
    for (int64_t ci = 0; ci < geo.cin; ++ci) {
      for (int64_t ky = 0; ky < geo.kh; ++ky) {
        load_f32(ctx.vops(), kernel.dtype, row_ptr(kernel, ky, ci, co), kernel.nb[0],
                 dst + (ci * geo.kh + ky) * geo.kw, geo.kw);
      }
    }
  }
  ctx.barrier();

  // Phase 2: tiles of output pixels.
  const int64_t pixels = d.ow * d.oh;
  const int64_t tiles_per_image = (pixels + kPixels - 1) / kPixels;
  int64_t t0, t1;
  ctx.split(tiles_per_image * d.batch, t0, t1);
  for (int64_t t = t0; t < t1; ++t) {
    const int64_t b = t / tiles_per_image;
    const int64_t px0 = (t % tiles_per_image) * kPixels;
    const int64_t np = std::min(kPixels, pixels - px0);
    for (int64_t j = 0; j < np; ++j) {
      float* col = cols + j * d.k;
      const int64_t px = px0 + j;
      im2col_column(image, geo, px % d.ow, px / d.ow, b, [col](int64_t i, float x) { col[i] = x; });
    }
    for (int64_t co = 0; co < d.cout; ++co) {
      const float* kr = w + co * d.k;
      auto* out = reinterpret_cast<float*>(row_ptr(n, 0, co, b));  // [OW*OH] plane of co
      v.dot_rows(cols, d.k * sizeof(float), np, kr, d.k, out + px0);
    }
  }
}

}  // namespace corral::backend::cpu
