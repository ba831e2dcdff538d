// 2-D convolution. PyTorch: nn.Conv2d(c_in, c_out, (kh, kw), stride, padding, dilation, bias).
// GGUF stores the kernel as [kw, kh, c_in, c_out].
#pragma once

#include "nn/module.h"

namespace corral::nn {

class Conv2D : public Module {
 public:
  Conv2D(Module& parent, std::string name, ml::op::Conv2D params = {}, int64_t kw = -1,
         int64_t kh = -1, int64_t c_in = -1, int64_t c_out = -1)
      : Module(parent, std::move(name)),
        weight(*this, "weight",
               WeightSpec({kw, kh, c_in, c_out}).of({ml::DType::F32, ml::DType::F16})),
        bias(*this, "bias", WeightSpec({c_out}).f32().optional_if()),
        params_(params) {}

  // image [W, H, c_in, N] -> [OW, OH, c_out, N]
  ml::Tensor forward(ml::Tensor image) const {
    ml::Graph& g = *image.graph();
    ml::Tensor y = ml::conv2d(weight.leaf(g), image, params_);
    if (!bias.present()) return y;
    ml::Tensor b = bias.leaf(g);
    return ml::add(y, ml::reshape(b, {1, 1, b.ne(0), 1}));  // per output channel
  }

  Weight weight;
  Weight bias;

 private:
  ml::op::Conv2D params_;
};

}  // namespace corral::nn
