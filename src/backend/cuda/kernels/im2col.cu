#include "backend/cuda/kernels/common.cuh"

namespace corral::backend::cuda {
namespace {

// dst[c, ow, oh, n] with c = (ic * KH + kh) * KW + kw holds image[ow * s0 + kw * d0 - p0,
// oh * s1 + kh * d1 - p1, ic, n], zero outside the image (ggml's layout); one thread per
// output element.
__global__ void im2col_kernel(TensorArg dst, int64_t kw_n, int64_t kh_n, TensorArg image,
                              ConvArgs p) {
  const int64_t n = dst.nelements();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t c, ow, oh, b;
    unravel(i, dst.ne, c, ow, oh, b);
    const int64_t kw = c % kw_n;
    const int64_t kh = (c / kw_n) % kh_n;
    const int64_t ic = c / (kw_n * kh_n);
    const int64_t iw = ow * p.s0 + kw * p.d0 - p.p0;
    const int64_t ih = oh * p.s1 + kh * p.d1 - p.p1;
    const bool inside = iw >= 0 && iw < image.ne[0] && ih >= 0 && ih < image.ne[1];
    store(dst, c, ow, oh, b, inside ? load(image, iw, ih, ic, b) : 0.0f);
  }
}

}  // namespace

void im2col(const Launch& l, const TensorArg& dst, const TensorArg& kernel, const TensorArg& image,
            const ConvArgs& c) {
  if (dst.nelements() == 0) return;
  im2col_kernel<<<grid_for(dst.nelements()), kBlock, 0, l.stream>>>(dst, kernel.ne[0], kernel.ne[1],
                                                                    image, c);
}

}  // namespace corral::backend::cuda
