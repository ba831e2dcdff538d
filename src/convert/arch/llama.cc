// LlamaForCausalLM and MistralForCausalLM -> GGUF "llama", as llama.cpp's convert_hf_to_gguf.py
// LlamaModel writes it: the TextModel keys plus vocab_size and rope.dimension_count, Q/K rows
// permuted from Hugging Face's rotate-half order to interleaved pairs (LlamaModel.permute), and
// Llama 3 RoPE scaling as the rope_freqs.weight tensor of per-pair factors.
#include <cstring>
#include <memory>
#include <stdexcept>

#include "convert/arch/arch.h"
#include "nn/rope.h"

namespace corral::convert::arch {

namespace {

// Within each head of `d` rows, row half * (d / 2) + i moves to 2 i + half: transformers rotates
// the two halves of a head, ggml's normal RoPE rotates adjacent pairs.
void permute_rows(float* data, int64_t rows, int64_t cols, int64_t n_head) {
  const int64_t d = rows / n_head;
  std::vector<float> src(data, data + rows * cols);
  for (int64_t h = 0; h < n_head; ++h) {
    for (int64_t half = 0; half < 2; ++half) {
      for (int64_t i = 0; i < d / 2; ++i) {
        const int64_t from = h * d + half * (d / 2) + i, to = h * d + 2 * i + half;
        std::memcpy(data + to * cols, src.data() + from * cols,
                    static_cast<size_t>(cols) * sizeof(float));
      }
    }
  }
}

bool is_q(const std::string& hf) {
  return hf.ends_with("q_proj.weight") || hf.ends_with("q_proj.bias");
}
bool is_k(const std::string& hf) {
  return hf.ends_with("k_proj.weight") || hf.ends_with("k_proj.bias");
}

}  // namespace

Arch llama() {
  Arch a;
  a.gguf_name = "llama";
  a.set_parameters = [](const HfConfig& c, const QuantType& type, ml::gguf::Metadata& md) {
    set_text_parameters(c, "llama", type, md);
    const int64_t n_vocab = c.get_int("vocab_size");
    md.set("llama.vocab_size", static_cast<uint32_t>(n_vocab));
    md.set("llama.rope.dimension_count", static_cast<uint32_t>(c.head_dim()));
  };
  a.tensors = [](const HfConfig& c, const Checkpoint& checkpoint) {
    Layout layout = decoder_layout(c, c.get_bool("attention_bias", false));
    const int64_t n_head = c.get_int("num_attention_heads");
    const int64_t n_head_kv = c.find_int("num_key_value_heads").value_or(n_head);
    const int64_t head_dim = c.head_dim();
    if (head_dim % 2 != 0) throw std::runtime_error(c.path() + ": head_dim must be even");
    layout.transforms = [](const std::string& hf) { return is_q(hf) || is_k(hf); };
    layout.transform = [n_head, n_head_kv](const std::string& hf, const std::vector<int64_t>& shape,
                                           float* data) {
      const int64_t rows = shape.at(0);
      const int64_t cols = shape.size() > 1 ? shape[1] : 1;
      permute_rows(data, rows, cols, is_q(hf) ? n_head : n_head_kv);
      return true;
    };

    std::vector<TensorSource> out;
    if (c.rope_type() == "llama3") {
      const auto& r = c.rope();
      const auto number = [&](const char* key, double fallback) {
        const auto it = r.find(key);
        return it != r.end() && it->is_number() ? it->get<double>() : fallback;
      };
      // llama.cpp takes original_max_position_embeddings from the top level of config.json;
      // transformers (whose numbers the model was trained with) reads it from the RoPE
      // parameters. They agree on every released Llama 3.
      const double orig = number("original_max_position_embeddings",
                                 c.find_number("original_max_position_embeddings").value_or(8192));
      auto factors = std::make_shared<std::vector<float>>(nn::llama3_freq_factors(
          static_cast<int>(head_dim), static_cast<float>(number("rope_theta", 10000.0)),
          static_cast<float>(number("factor", 8.0)),
          static_cast<float>(number("low_freq_factor", 1.0)),
          static_cast<float>(number("high_freq_factor", 4.0)), static_cast<int>(orig)));
      TensorSource s;
      s.name = "rope_freqs.weight";
      s.ne = {static_cast<int64_t>(factors->size())};
      s.dtype = ml::DType::F32;
      s.raw = {reinterpret_cast<const uint8_t*>(factors->data()), factors->size() * sizeof(float)};
      s.read_f32 = [factors](float* values) {
        std::memcpy(values, factors->data(), factors->size() * sizeof(float));
      };
      out.push_back(std::move(s));
    }
    std::vector<TensorSource> mapped = map_tensors(c, checkpoint, layout);
    out.insert(out.end(), std::make_move_iterator(mapped.begin()),
               std::make_move_iterator(mapped.end()));
    return out;
  };
  return a;
}

}  // namespace corral::convert::arch
