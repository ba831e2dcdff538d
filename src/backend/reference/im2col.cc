#include "backend/reference/reference.h"
#include "backend/reference/tensor_access.h"

namespace corral::backend::reference {

// ggml's layout: dst[c, ow, oh, n] with c = (ic * KH + kh) * KW + kw holds
// image[ow * s0 + kw * d0 - p0, oh * s1 + kh * d1 - p1, ic, n], zero outside the image. A
// convolution is then mul_mat(kernel reshaped to [KW * KH * Cin, Cout], dst).
void im2col(const ml::Graph& g, const ml::Node& n) {
  const ml::Node& kernel = src(g, n, 0);
  const ml::Node& image = src(g, n, 1);
  const auto& p = n.params<ml::op::Im2Col>();
  const int64_t kw_n = kernel.ne[0], kh_n = kernel.ne[1], channels = kernel.ne[2];
  for (int64_t b = 0; b < n.ne[3]; ++b) {
    for (int64_t oh = 0; oh < n.ne[2]; ++oh) {
      for (int64_t ow = 0; ow < n.ne[1]; ++ow) {
        for (int64_t ic = 0; ic < channels; ++ic) {
          for (int64_t kh = 0; kh < kh_n; ++kh) {
            for (int64_t kw = 0; kw < kw_n; ++kw) {
              const int64_t iw = ow * p.s0 + kw * p.d0 - p.p0;
              const int64_t ih = oh * p.s1 + kh * p.d1 - p.p1;
              const bool inside = iw >= 0 && iw < image.ne[0] && ih >= 0 && ih < image.ne[1];
              const float v = inside ? load(image, iw, ih, ic, b) : 0.0f;
              store(n, (ic * kh_n + kh) * kw_n + kw, ow, oh, b, v);
            }
          }
        }
      }
    }
  }
}

}  // namespace corral::backend::reference
