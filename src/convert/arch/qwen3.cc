// Qwen3ForCausalLM -> GGUF "qwen3", as llama.cpp's convert_hf_to_gguf.py Qwen3Model (a Qwen2Model
// with MODEL_ARCH.QWEN3) writes it: the TextModel keys, with head_dim as attention.key_length and
// value_length (Qwen3's head_dim is not hidden_size / num_attention_heads); no q/k/v biases; the
// per-head q_norm/k_norm weights as attn_q_norm/attn_k_norm; no Q/K permutation (NeoX RoPE).
#include "convert/arch/arch.h"

namespace corral::convert::arch {

Arch qwen3() {
  Arch a;
  a.gguf_name = "qwen3";
  a.set_parameters = [](const HfConfig& c, const QuantType& type, ml::gguf::Metadata& md) {
    set_text_parameters(c, "qwen3", type, md);
  };
  a.tensors = [](const HfConfig& c, const Checkpoint& checkpoint) {
    Layout l = decoder_layout(c, /*qkv_bias=*/false);
    l.layer.insert(l.layer.end(), {{"self_attn.q_norm.weight", "attn_q_norm.weight"},
                                   {"self_attn.k_norm.weight", "attn_k_norm.weight"}});
    const int64_t head_dim = c.head_dim();
    for (int64_t i = 0; i < c.get_int("num_hidden_layers"); ++i) {
      const std::string b = "blk." + std::to_string(i) + ".";
      l.expected.push_back({b + "attn_q_norm.weight", {head_dim}});
      l.expected.push_back({b + "attn_k_norm.weight", {head_dim}});
    }
    return map_tensors(c, checkpoint, l);
  };
  return a;
}

}  // namespace corral::convert::arch
