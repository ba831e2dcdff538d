#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "backend/cpu/kernels/kernels.h"
#include "backend/cpu/kernels/rows.h"
#include "backend/cpu/kernels/vec.h"

namespace corral::backend::cpu {

// The first index holding the row's maximum (a tie keeps the lower index, as ggml's argmax):
// find the maximum with the vec primitive, then its first position.
void argmax(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n) {
  const ml::Node& a = g.node(n.src[0]);
  const int64_t ne0 = a.ne[0];
  auto* out = static_cast<int32_t*>(n.data);
  int64_t r0, r1;
  ctx.split(a.ne[1], r0, r1);
  for (int64_t r = r0; r < r1; ++r) {
    const char* x = row_ptr(a, r, 0, 0);
    int32_t best = 0;
    if (a.nb[0] == sizeof(float)) {
      const auto* xf = reinterpret_cast<const float*>(x);
      const float m = ctx.vops().max(xf, ne0);
      best = static_cast<int32_t>(std::find(xf, xf + ne0, m) - xf);
      if (best == ne0) best = 0;  // all NaN
    } else {
      float m = -INFINITY;
      for (int64_t i = 0; i < ne0; ++i) {
        float v;
        std::memcpy(&v, x + i * a.nb[0], sizeof(v));
        if (v > m) {
          m = v;
          best = static_cast<int32_t>(i);
        }
      }
    }
    out[r] = best;
  }
}

}  // namespace corral::backend::cpu
