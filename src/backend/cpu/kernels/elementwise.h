// The loops shared by the element-wise kernels (add/sub/mul/div, scale, the activations):
// each thread takes a range of rows; contiguous rows go straight to a vec primitive, strided
// ones through a stack chunk.
#pragma once

#include <algorithm>
#include <cstring>

#include "backend/cpu/kernels/kernels.h"
#include "backend/cpu/kernels/rows.h"
#include "backend/cpu/kernels/vec.h"

namespace corral::backend::cpu {

// dst = f(src0) row by row; f(const float* x, float* y, int64_t n). dst is contiguous.
template <class F>
void unary_rows(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n, F f) {
  const ml::Node& a = g.node(n.src[0]);
  int64_t r0, r1;
  ctx.split(n.nrows(), r0, r1);
  const int64_t ne0 = n.ne[0];
  for (int64_t r = r0; r < r1; ++r) {
    const RowIndex ix = row_index(n.ne, r);
    const char* x = row_ptr(a, ix);
    auto* y = reinterpret_cast<float*>(row_ptr(n, ix));
    if (a.nb[0] == sizeof(float)) {
      f(reinterpret_cast<const float*>(x), y, ne0);
      continue;
    }
    for (int64_t i = 0; i < ne0; i += kChunk) {
      const int64_t m = std::min(kChunk, ne0 - i);
      float buf[kChunk];
      gather_f32(x + i * a.nb[0], a.nb[0], buf, m);
      f(buf, y + i, m);
    }
  }
}

// dst = src0 (op) src1 with src1 repeated to dst's shape; f(a, b, y, n) is the vec primitive.
template <class F>
void binary_rows(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n, F f) {
  const ml::Node& a = g.node(n.src[0]);
  const ml::Node& b = g.node(n.src[1]);
  int64_t r0, r1;
  ctx.split(n.nrows(), r0, r1);
  const int64_t ne0 = n.ne[0];
  const int64_t nb0 = b.ne[0];
  for (int64_t r = r0; r < r1; ++r) {
    const RowIndex ix = row_index(n.ne, r);
    const char* x = row_ptr(a, ix);
    const char* w = row_ptr(b, ix.i1 % b.ne[1], ix.i2 % b.ne[2], ix.i3 % b.ne[3]);
    auto* y = reinterpret_cast<float*>(row_ptr(n, ix));
    if (a.nb[0] == sizeof(float) && b.nb[0] == sizeof(float)) {
      const auto* xf = reinterpret_cast<const float*>(x);
      const auto* wf = reinterpret_cast<const float*>(w);
      if (nb0 >= 64 || nb0 == ne0) {
        for (int64_t i = 0; i < ne0; i += nb0) f(xf + i, wf, y + i, nb0);
        continue;
      }
      // A short src1 row (a scalar, a few channels): tile it across a stack chunk once, so the
      // primitive runs on long spans instead of nb0 elements at a time.
      float rep[kChunk];
      const int64_t span = kChunk / nb0 * nb0;
      for (int64_t j = 0; j < span; ++j) rep[j] = wf[j % nb0];
      for (int64_t i = 0; i < ne0; i += span) f(xf + i, rep, y + i, std::min(span, ne0 - i));
      continue;
    }
    // Strided: chunks of the row, with src1's row gathered per repetition.
    for (int64_t i = 0; i < ne0; i += kChunk) {
      const int64_t m = std::min(kChunk, ne0 - i);
      float bx[kChunk], bw[kChunk];
      gather_f32(x + i * a.nb[0], a.nb[0], bx, m);
      for (int64_t j = 0; j < m; ++j) {
        std::memcpy(bw + j, w + ((i + j) % nb0) * b.nb[0], sizeof(float));
      }
      f(bx, bw, y + i, m);
    }
  }
}

}  // namespace corral::backend::cpu
