// Shared decoder plumbing for the converters in this folder. Key names and order follow
// llama.cpp's convert_hf_to_gguf.py (TextModel.set_gguf_parameters) and gguf-py's constants.py.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "convert/arch/arch.h"

namespace corral::convert::arch {

namespace {

using ml::gguf::Metadata;
using nlohmann::json;

uint32_t to_u32(const HfConfig& config, std::string_view key, int64_t v) {
  if (v < 0 || v > static_cast<int64_t>(UINT32_MAX)) {
    throw std::runtime_error(config.path() + ": key '" + std::string(key) +
                             "' = " + std::to_string(v) + " is out of range");
  }
  return static_cast<uint32_t>(v);
}

std::string shape_string(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

}  // namespace

void set_text_parameters(const HfConfig& c, std::string_view arch, const QuantType& type,
                         Metadata& md) {
  const std::string a(arch);
  const auto put_u32 = [&](const char* key, std::string_view hf) {
    if (const auto v = c.find_int(hf)) md.set(a + "." + key, to_u32(c, hf, *v));
  };
  md.set(a + ".block_count", to_u32(c, "num_hidden_layers", c.get_int("num_hidden_layers")));
  put_u32("context_length", "max_position_embeddings");
  md.set(a + ".embedding_length", to_u32(c, "hidden_size", c.get_int("hidden_size")));
  put_u32("feed_forward_length", "intermediate_size");
  md.set(a + ".attention.head_count",
         to_u32(c, "num_attention_heads", c.get_int("num_attention_heads")));
  put_u32("attention.head_count_kv", "num_key_value_heads");

  const json& rope = c.rope();
  const std::string rope_type = c.rope_type();
  const auto rope_number = [&](const char* key) -> std::optional<double> {
    const auto it = rope.find(key);
    if (it == rope.end() || it->is_null()) return std::nullopt;
    if (!it->is_number()) {
      throw std::runtime_error(c.path() + ": RoPE parameter '" + key + "' is " + it->dump() +
                               ", expected a number");
    }
    return it->get<double>();
  };
  const auto factor = rope_number("factor");
  if (rope_type == "linear" && factor) {
    md.set(a + ".rope.scaling.type", "linear");
    md.set(a + ".rope.scaling.factor", static_cast<float>(*factor));
  } else if (rope_type == "yarn" && factor) {
    md.set(a + ".rope.scaling.type", "yarn");
    md.set(a + ".rope.scaling.factor", static_cast<float>(*factor));
    const auto orig = rope_number("original_max_position_embeddings");
    if (!orig) {
      throw std::runtime_error(c.path() +
                               ": yarn RoPE scaling without original_max_position_embeddings");
    }
    md.set(a + ".rope.scaling.original_context_length",
           to_u32(c, "original_max_position_embeddings", static_cast<int64_t>(*orig)));
    if (const auto v = rope_number("extrapolation_factor")) {
      md.set(a + ".rope.scaling.yarn_ext_factor", static_cast<float>(*v));
    }
    auto attn = rope_number("attention_factor");
    if (!attn) attn = rope_number("attn_factor");
    if (attn) md.set(a + ".rope.scaling.yarn_attn_factor", static_cast<float>(*attn));
    if (const auto v = rope_number("beta_fast")) {
      md.set(a + ".rope.scaling.yarn_beta_fast", static_cast<float>(*v));
    }
    if (const auto v = rope_number("beta_slow")) {
      md.set(a + ".rope.scaling.yarn_beta_slow", static_cast<float>(*v));
    }
  } else if (rope_type != "default" && rope_type != "llama3") {
    // llama.cpp only warns and converts without scaling; a model converted so would silently
    // lose its long-context behaviour, so refuse.
    throw std::runtime_error(c.path() + ": RoPE type '" + rope_type +
                             "' is not supported (default, linear, yarn, llama3)");
  }
  if (const auto theta = rope_number("rope_theta")) {
    md.set(a + ".rope.freq_base", static_cast<float>(*theta));
  }
  if (const auto eps = c.find_number("rms_norm_eps")) {
    md.set(a + ".attention.layer_norm_rms_epsilon", static_cast<float>(*eps));
  }
  if (const auto head_dim = c.find_int("head_dim")) {
    md.set(a + ".attention.key_length", to_u32(c, "head_dim", *head_dim));
    md.set(a + ".attention.value_length", to_u32(c, "head_dim", *head_dim));
  }
  md.set("general.file_type", type.ftype);
}

Layout decoder_layout(const HfConfig& c, bool qkv_bias) {
  const int64_t n_embd = c.get_int("hidden_size");
  const int64_t n_layer = c.get_int("num_hidden_layers");
  const int64_t n_head = c.get_int("num_attention_heads");
  const int64_t n_head_kv = c.find_int("num_key_value_heads").value_or(n_head);
  const int64_t n_ff = c.get_int("intermediate_size");
  const int64_t n_vocab = c.get_int("vocab_size");
  const int64_t head_dim = c.head_dim();
  if (n_embd <= 0 || n_layer <= 0 || n_head <= 0 || n_head_kv <= 0 || n_ff <= 0 || n_vocab <= 0 ||
      head_dim <= 0 || n_layer > 100000) {
    throw std::runtime_error(c.path() +
                             ": hidden_size, num_hidden_layers, num_attention_heads, "
                             "num_key_value_heads, intermediate_size, vocab_size and "
                             "head_dim must be positive");
  }
  const int64_t n_q = n_head * head_dim, n_kv = n_head_kv * head_dim;

  Layout l;
  l.globals = {{"model.embed_tokens.weight", "token_embd.weight"},
               {"model.norm.weight", "output_norm.weight"},
               {"lm_head.weight", "output.weight"}};
  l.layer = {{"input_layernorm.weight", "attn_norm.weight"},
             {"self_attn.q_proj.weight", "attn_q.weight"},
             {"self_attn.k_proj.weight", "attn_k.weight"},
             {"self_attn.v_proj.weight", "attn_v.weight"},
             {"self_attn.o_proj.weight", "attn_output.weight"},
             {"post_attention_layernorm.weight", "ffn_norm.weight"},
             {"mlp.gate_proj.weight", "ffn_gate.weight"},
             {"mlp.up_proj.weight", "ffn_up.weight"},
             {"mlp.down_proj.weight", "ffn_down.weight"}};
  if (qkv_bias) {
    l.layer.insert(l.layer.end(), {{"self_attn.q_proj.bias", "attn_q.bias"},
                                   {"self_attn.k_proj.bias", "attn_k.bias"},
                                   {"self_attn.v_proj.bias", "attn_v.bias"}});
  }
  l.ignored_suffixes = {"rotary_emb.inv_freq"};
  l.tied = c.get_bool("tie_word_embeddings", false);

  l.expected = {{"token_embd.weight", {n_embd, n_vocab}},
                {"output_norm.weight", {n_embd}},
                // Checkpoints that tie the output to the embedding do not store it.
                {"output.weight", {n_embd, n_vocab}, false}};
  for (int64_t i = 0; i < n_layer; ++i) {
    const std::string b = "blk." + std::to_string(i) + ".";
    l.expected.insert(l.expected.end(), {{b + "attn_norm.weight", {n_embd}},
                                         {b + "attn_q.weight", {n_embd, n_q}},
                                         {b + "attn_k.weight", {n_embd, n_kv}},
                                         {b + "attn_v.weight", {n_embd, n_kv}},
                                         {b + "attn_output.weight", {n_q, n_embd}},
                                         {b + "ffn_norm.weight", {n_embd}},
                                         {b + "ffn_gate.weight", {n_embd, n_ff}},
                                         {b + "ffn_up.weight", {n_embd, n_ff}},
                                         {b + "ffn_down.weight", {n_ff, n_embd}}});
    if (qkv_bias) {
      l.expected.insert(
          l.expected.end(),
          {{b + "attn_q.bias", {n_q}}, {b + "attn_k.bias", {n_kv}}, {b + "attn_v.bias", {n_kv}}});
    }
  }
  return l;
}

std::vector<TensorSource> map_tensors(const HfConfig& config, const Checkpoint& checkpoint,
                                      const Layout& layout) {
  std::unordered_map<std::string, const Expected*> expected;
  for (const Expected& e : layout.expected) expected.emplace(e.gguf, &e);

  const auto rename = [&](const std::string& hf) -> std::string {
    for (const auto& [from, to] : layout.globals) {
      if (hf == from) return to;
    }
    constexpr std::string_view kLayers = "model.layers.";
    if (!hf.starts_with(kLayers)) return {};
    const size_t dot = hf.find('.', kLayers.size());
    if (dot == std::string::npos || dot == kLayers.size()) return {};
    const std::string index = hf.substr(kLayers.size(), dot - kLayers.size());
    if (index.find_first_not_of("0123456789") != std::string::npos) return {};
    const std::string rest = hf.substr(dot + 1);
    for (const auto& [from, to] : layout.layer) {
      if (rest == from) return "blk." + index + "." + to;
    }
    return {};
  };

  std::vector<TensorSource> out;
  std::unordered_set<std::string> written;
  for (const SafetensorsTensor* t : checkpoint.tensors()) {
    const std::string& hf = t->name;
    const std::string where = *t->file + ": tensor '" + hf + "'";
    bool ignored = false;
    for (const std::string& s : layout.ignored_suffixes) ignored = ignored || hf.ends_with(s);
    for (const std::string& s : layout.ignored_prefixes) ignored = ignored || hf.starts_with(s);
    if (ignored) continue;
    const std::string gguf = rename(hf);
    if (gguf.empty()) {
      throw std::runtime_error(where + " is not part of a " + config.architecture() +
                               " checkpoint this converter knows (unexpected tensor name)");
    }
    if (gguf == "output.weight" && layout.tied) continue;
    const auto e = expected.find(gguf);
    if (e == expected.end()) {
      throw std::runtime_error(where + " (" + gguf + ") is beyond what config.json describes");
    }
    const std::vector<int64_t> ne(t->shape.rbegin(), t->shape.rend());
    if (ne != e->second->ne) {
      throw std::runtime_error(where + " (" + gguf + ") has shape " + shape_string(t->shape) +
                               ", config.json implies " +
                               shape_string({e->second->ne.rbegin(), e->second->ne.rend()}));
    }
    TensorSource s;
    s.name = gguf;
    s.ne = ne;
    if (t->dtype == "F32") {
      s.dtype = ml::DType::F32;
    } else if (t->dtype == "F16") {
      s.dtype = ml::DType::F16;
    } else if (t->dtype == "BF16") {
      s.dtype = ml::DType::BF16;
    } else {
      throw std::runtime_error(where + " has dtype " + t->dtype +
                               ", which cannot be converted (supported: F32, F16, BF16)");
    }
    const bool transformed = layout.transforms && layout.transforms(hf);
    // Safetensors data starts wherever the header ends, so a tensor may sit at an odd address;
    // write_model reads raw bytes as arrays of their type, which must then be aligned.
    const bool aligned = reinterpret_cast<uintptr_t>(t->data.data()) % ml::type_size(s.dtype) == 0;
    if (!transformed && aligned) s.raw = t->data;
    s.read_f32 = [t, transformed, transform = layout.transform](float* values) {
      t->read_f32(values);
      if (transformed) transform(t->name, t->shape, values);
    };
    written.insert(gguf);
    out.push_back(std::move(s));
  }
  for (const Expected& e : layout.expected) {
    if (!e.required || written.count(e.gguf)) continue;
    std::string hf;
    for (const auto& [from, to] : layout.globals) {
      if (to == e.gguf) hf = from;
    }
    if (hf.empty() && e.gguf.starts_with("blk.")) {
      const size_t dot = e.gguf.find('.', 4);
      const std::string rest = e.gguf.substr(dot + 1);
      for (const auto& [from, to] : layout.layer) {
        if (to == rest) hf = "model.layers." + e.gguf.substr(4, dot - 4) + "." + from;
      }
    }
    throw std::runtime_error(config.path() + ": the checkpoint has no tensor '" + hf + "' (" +
                             e.gguf + ")");
  }
  return out;
}

std::string supported_classes() {
  return "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, "
         "Qwen2VLForConditionalGeneration, Qwen3ForCausalLM, MllamaForConditionalGeneration, "
         "BertModel, Gemma3ForCausalLM, Gemma3ForConditionalGeneration";
}

const Arch* find(std::string_view hf_class) {
  static const Arch kLlama = llama();
  static const Arch kQwen2 = qwen2();
  static const Arch kQwen2vl = qwen2vl();
  static const Arch kQwen3 = qwen3();
  static const Arch kMllama = mllama();
  static const Arch kBert = bert();
  static const Arch kGemma3 = gemma3();
  if (hf_class == "LlamaForCausalLM" || hf_class == "MistralForCausalLM") return &kLlama;
  if (hf_class == "Qwen2ForCausalLM") return &kQwen2;
  if (hf_class == "Qwen2VLForConditionalGeneration") return &kQwen2vl;
  if (hf_class == "Qwen3ForCausalLM") return &kQwen3;
  if (hf_class == "MllamaForConditionalGeneration") return &kMllama;
  if (hf_class == "BertModel") return &kBert;
  if (hf_class == "Gemma3ForCausalLM" || hf_class == "Gemma3ForConditionalGeneration") {
    return &kGemma3;
  }
  return nullptr;
}

}  // namespace corral::convert::arch
