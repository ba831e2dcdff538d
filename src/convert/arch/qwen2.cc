// Qwen2ForCausalLM -> GGUF "qwen2", as llama.cpp's convert_hf_to_gguf.py Qwen2Model writes it:
// the TextModel keys only (no vocab_size or rope.dimension_count; llama.cpp derives them), q/k/v
// biases, and no Q/K permutation (qwen2 uses NeoX RoPE, which rotates halves as transformers
// does).
#include "convert/arch/arch.h"

namespace corral::convert::arch {

Arch qwen2() {
  Arch a;
  a.gguf_name = "qwen2";
  a.set_parameters = [](const HfConfig& c, const QuantType& type, ml::gguf::Metadata& md) {
    set_text_parameters(c, "qwen2", type, md);
  };
  a.tensors = [](const HfConfig& c, const Checkpoint& checkpoint) {
    return map_tensors(c, checkpoint, decoder_layout(c, /*qkv_bias=*/true));
  };
  return a;
}

}  // namespace corral::convert::arch
