// Gemma3ForCausalLM (and the text model of Gemma3ForConditionalGeneration) -> GGUF "gemma3", as
// llama.cpp's convert_hf_to_gguf.py Gemma3Model writes it: the TextModel keys, the sliding
// window, the sandwich norms under their GGUF names, norm weights stored as weight + 1 (Gemma's
// RMSNorm scales by 1 + weight), the language model's tensors without their `language_model.`
// prefix and the vision tower skipped. Beyond llama.cpp, which assumes Gemma 3's layer pattern
// and local RoPE base, the layer types go to attention.sliding_window_pattern (one boolean per
// layer, true: sliding, as llama.cpp reads that key for the models that have it), the sliding
// layers' base to rope.freq_base_swa, and query_pre_attn_scalar where it is not head_dim.
#include <string>
#include <vector>

#include "convert/arch/arch.h"

namespace corral::convert::arch {

namespace {

using nlohmann::json;

// The text model's config: text_config over the top-level keys.
HfConfig text_of(const HfConfig& c) {
  json t = c.json();
  if (const auto it = c.json().find("text_config"); it != c.json().end() && it->is_object()) {
    for (const auto& [k, v] : it->items()) t[k] = v;
  }
  return HfConfig(std::move(t), c.path());
}

// Per layer, whether it attends to a sliding window: layer_types (transformers 5), else the
// period sliding_window_pattern (every n-th layer is full; 6 when absent, as Gemma 3's).
std::vector<bool> sliding_layers(const HfConfig& t) {
  const int64_t n_layer = t.get_int("num_hidden_layers");
  std::vector<bool> out;
  if (const auto it = t.json().find("layer_types"); it != t.json().end() && it->is_array()) {
    if (static_cast<int64_t>(it->size()) != n_layer) {
      throw std::runtime_error(t.path() + ": layer_types has " + std::to_string(it->size()) +
                               " entries for " + std::to_string(n_layer) + " layers");
    }
    for (const json& v : *it) {
      if (!v.is_string() || (v != "sliding_attention" && v != "full_attention")) {
        throw std::runtime_error(t.path() + ": layer_types entry " + v.dump() +
                                 " is neither sliding_attention nor full_attention");
      }
      out.push_back(v == "sliding_attention");
    }
    return out;
  }
  int64_t period = 6;
  for (const char* key : {"sliding_window_pattern", "_sliding_window_pattern"}) {
    if (const auto p = t.find_int(key)) period = *p;
  }
  if (period <= 0) throw std::runtime_error(t.path() + ": sliding_window_pattern must be positive");
  for (int64_t il = 0; il < n_layer; ++il) out.push_back((il + 1) % period != 0);
  return out;
}

// The sliding layers' RoPE base: rope_parameters.sliding_attention (transformers 5), else
// rope_local_base_freq, else Gemma 3's 10000.
double sliding_rope_base(const HfConfig& t) {
  const json& j = t.json();
  if (const auto p = j.find("rope_parameters"); p != j.end() && p->is_object()) {
    if (const auto s = p->find("sliding_attention"); s != p->end() && s->is_object()) {
      if (const auto th = s->find("rope_theta"); th != s->end() && th->is_number()) {
        return th->get<double>();
      }
    }
  }
  return t.find_number("rope_local_base_freq").value_or(10000.0);
}

}  // namespace

Arch gemma3() {
  Arch a;
  a.gguf_name = "gemma3";
  a.set_parameters = [](const HfConfig& c, const QuantType& type, ml::gguf::Metadata& md) {
    const HfConfig t = text_of(c);
    set_text_parameters(t, "gemma3", type, md);
    if (t.has("attn_logit_softcapping") || t.has("final_logit_softcapping")) {
      throw std::runtime_error(t.path() + ": logit soft-capping is not part of Gemma 3");
    }
    const int64_t window = t.get_int("sliding_window");
    if (window <= 0 || window > INT32_MAX) {
      throw std::runtime_error(t.path() + ": sliding_window must be positive");
    }
    md.set("gemma3.attention.sliding_window", static_cast<uint32_t>(window));
    std::vector<ml::gguf::Value> pattern;
    for (bool s : sliding_layers(t)) pattern.emplace_back(s);
    md.set("gemma3.attention.sliding_window_pattern",
           ml::gguf::Value::array(ml::gguf::ValueType::kBool, std::move(pattern)));
    md.set("gemma3.rope.freq_base_swa", static_cast<float>(sliding_rope_base(t)));
    const int64_t head_dim = t.head_dim();
    const double scalar = t.find_number("query_pre_attn_scalar").value_or(head_dim);
    if (scalar != static_cast<double>(head_dim)) {
      md.set("gemma3.attention.query_pre_attn_scalar", static_cast<float>(scalar));
    }
  };
  a.tensors = [](const HfConfig& c, const Checkpoint& checkpoint) {
    const HfConfig t = text_of(c);
    Layout l = decoder_layout(t, /*qkv_bias=*/false);
    // Gemma's post-attention norm is a norm of its own; the pre-feed-forward one is ffn_norm.
    for (auto& [from, to] : l.layer) {
      if (from == "post_attention_layernorm.weight") to = "post_attention_norm.weight";
    }
    l.layer.insert(l.layer.end(), {{"pre_feedforward_layernorm.weight", "ffn_norm.weight"},
                                   {"post_feedforward_layernorm.weight", "post_ffw_norm.weight"},
                                   {"self_attn.q_norm.weight", "attn_q_norm.weight"},
                                   {"self_attn.k_norm.weight", "attn_k_norm.weight"}});
    const int64_t n_embd = t.get_int("hidden_size"), head_dim = t.head_dim();
    for (int64_t i = 0; i < t.get_int("num_hidden_layers"); ++i) {
      const std::string b = "blk." + std::to_string(i) + ".";
      l.expected.push_back({b + "post_attention_norm.weight", {n_embd}});
      l.expected.push_back({b + "post_ffw_norm.weight", {n_embd}});
      l.expected.push_back({b + "attn_q_norm.weight", {head_dim}});
      l.expected.push_back({b + "attn_k_norm.weight", {head_dim}});
    }
    // Gemma3ForConditionalGeneration keeps the language model under model.language_model.
    // (transformers 5) or language_model.model. (older): those names map as the text model's.
    for (const char* prefix : {"model.language_model.", "language_model.model."}) {
      if (!checkpoint.find(std::string(prefix) + "embed_tokens.weight")) continue;
      std::vector<std::pair<std::string, std::string>> globals = {
          {std::string(prefix) + "embed_tokens.weight", "token_embd.weight"},
          {std::string(prefix) + "norm.weight", "output_norm.weight"},
          {"lm_head.weight", "output.weight"},
          {"language_model.lm_head.weight", "output.weight"}};
      for (int64_t i = 0; i < t.get_int("num_hidden_layers"); ++i) {
        for (const auto& [from, to] : l.layer) {
          globals.emplace_back(std::string(prefix) + "layers." + std::to_string(i) + "." + from,
                               "blk." + std::to_string(i) + "." + to);
        }
      }
      l.globals = std::move(globals);
      l.ignored_prefixes = {"model.vision_tower.", "model.multi_modal_projector.", "vision_tower.",
                            "multi_modal_projector."};
    }
    l.ignored_suffixes.push_back("inv_freq");  // rotary_emb_local.inv_freq in older files
    l.tied = true;  // Gemma 3 ties the output to the embedding (lm_head, if stored, is a copy)
    // Gemma3RMSNorm: output * (1 + weight); the GGUF holds 1 + weight.
    l.transforms = [](const std::string& hf) { return hf.ends_with("norm.weight"); };
    l.transform = [](const std::string& hf, const std::vector<int64_t>& shape, float* data) {
      if (!hf.ends_with("norm.weight")) return false;
      int64_t n = 1;
      for (int64_t d : shape) n *= d;
      for (int64_t i = 0; i < n; ++i) data[i] += 1.0f;
      return true;
    };
    return map_tensors(t, checkpoint, l);
  };
  a.vocab_size = [](const HfConfig& c) { return text_of(c).get_int("vocab_size"); };
  return a;
}

}  // namespace corral::convert::arch
