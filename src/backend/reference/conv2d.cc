#include "backend/reference/reference.h"
#include "backend/reference/tensor_access.h"

namespace corral::backend::reference {

// Cross-correlation as PyTorch's Conv2d (and ggml_conv_2d) computes it:
//   out[ow, oh, oc, n] = sum_{ic, kh, kw} kernel[kw, kh, ic, oc]
//                        * image[ow * s0 + kw * d0 - p0, oh * s1 + kh * d1 - p1, ic, n]
// with zero padding, accumulated in double.
void conv2d(const ml::Graph& g, const ml::Node& n) {
  const ml::Node& kernel = src(g, n, 0);
  const ml::Node& image = src(g, n, 1);
  const auto& p = n.params<ml::op::Conv2D>();
  for_each_index(n.ne, [&](int64_t ow, int64_t oh, int64_t oc, int64_t b) {
    double acc = 0.0;
    for (int64_t ic = 0; ic < kernel.ne[2]; ++ic) {
      for (int64_t kh = 0; kh < kernel.ne[1]; ++kh) {
        const int64_t ih = oh * p.s1 + kh * p.d1 - p.p1;
        if (ih < 0 || ih >= image.ne[1]) continue;
        for (int64_t kw = 0; kw < kernel.ne[0]; ++kw) {
          const int64_t iw = ow * p.s0 + kw * p.d0 - p.p0;
          if (iw < 0 || iw >= image.ne[0]) continue;
          acc += double{load(kernel, kw, kh, ic, oc)} * double{load(image, iw, ih, ic, b)};
        }
      }
    }
    store(n, ow, oh, oc, b, static_cast<float>(acc));
  });
}

}  // namespace corral::backend::reference
