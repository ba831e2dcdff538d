#include "backend/cuda/kernels/common.cuh"

namespace corral::backend::cuda {
namespace {

// Direct cross-correlation, one thread per output element, accumulated in double as the
// reference (the vision towers that use it run it a few times per image):
//   out[ow, oh, oc, n] = sum kernel[kw, kh, ic, oc] * image[ow*s0 + kw*d0 - p0, oh*s1 + kh*d1 - p1,
//   ic, n]
__global__ void conv2d_kernel(TensorArg dst, TensorArg kernel, TensorArg image, ConvArgs p) {
  const int64_t n = dst.nelements();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t ow, oh, oc, b;
    unravel(i, dst.ne, ow, oh, oc, b);
    double acc = 0.0;
    for (int64_t ic = 0; ic < kernel.ne[2]; ++ic) {
      for (int64_t kh = 0; kh < kernel.ne[1]; ++kh) {
        const int64_t ih = oh * p.s1 + kh * p.d1 - p.p1;
        if (ih < 0 || ih >= image.ne[1]) continue;
        for (int64_t kw = 0; kw < kernel.ne[0]; ++kw) {
          const int64_t iw = ow * p.s0 + kw * p.d0 - p.p0;
          if (iw < 0 || iw >= image.ne[0]) continue;
          acc += static_cast<double>(load(kernel, kw, kh, ic, oc)) *
                 static_cast<double>(load(image, iw, ih, ic, b));
        }
      }
    }
    store(dst, ow, oh, oc, b, static_cast<float>(acc));
  }
}

}  // namespace

void conv2d(const Launch& l, const TensorArg& dst, const TensorArg& kernel, const TensorArg& image,
            const ConvArgs& c) {
  if (dst.nelements() == 0) return;
  conv2d_kernel<<<grid_for(dst.nelements(), 128), 128, 0, l.stream>>>(dst, kernel, image, c);
}

}  // namespace corral::backend::cuda
