// The row reduction behind sum_rows and mean.
#pragma once

#include <algorithm>

#include "backend/cpu/kernels/kernels.h"
#include "backend/cpu/kernels/rows.h"
#include "backend/cpu/kernels/vec.h"

namespace corral::backend::cpu {

// dst[row] = sum of src0's row (any strides), divided by ne0 when `mean`.
inline void reduce_rows(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n,
                        bool mean) {
  const ml::Node& a = g.node(n.src[0]);
  const int64_t ne0 = a.ne[0];
  int64_t r0, r1;
  ctx.split(a.nrows(), r0, r1);
  for (int64_t r = r0; r < r1; ++r) {
    const RowIndex ix = row_index(a.ne, r);
    const char* x = row_ptr(a, ix);
    float s = 0.0f;
    if (a.nb[0] == sizeof(float)) {
      s = ctx.vops().sum(reinterpret_cast<const float*>(x), ne0);
    } else {
      for (int64_t i = 0; i < ne0; i += kChunk) {
        const int64_t m = std::min(kChunk, ne0 - i);
        float buf[kChunk];
        gather_f32(x + i * a.nb[0], a.nb[0], buf, m);
        s += ctx.vops().sum(buf, m);
      }
    }
    *reinterpret_cast<float*>(row_ptr(n, ix)) = mean ? s / static_cast<float>(ne0) : s;
  }
}

}  // namespace corral::backend::cpu
