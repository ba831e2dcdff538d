// Test scaffolding: a Hugging Face checkpoint (config.json + model.safetensors) turned into a
// GGUF in memory the way llama.cpp's convert_hf_to_gguf.py lays it out (tensor names, ggml
// dimension order, llama's Q/K rows permuted to interleaved pairs), so that transformers'
// reference logits can check an architecture end to end.
#pragma once

#include <nlohmann/json.hpp>

#include <cstring>
#include <fstream>
#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

#include "ml/gguf/reader.h"
#include "ml/gguf/writer.h"
#include "nn/rope.h"

namespace corral::model::testing {

// HF tensor name -> GGUF name (empty when unknown). Gemma's sandwich norms have names of their
// own (llama.cpp's gemma3 names).
inline std::string gguf_name(const std::string& hf, const std::string& arch = "") {
  if (arch == "gemma3") {
    static const std::regex norm(
        R"(model\.layers\.(\d+)\.(post_attention|pre_feedforward|post_feedforward)_layernorm\.weight)");
    std::smatch m;
    if (std::regex_match(hf, m, norm)) {
      const char* to = m[2] == "post_attention"    ? "post_attention_norm"
                       : m[2] == "pre_feedforward" ? "ffn_norm"
                                                   : "post_ffw_norm";
      return "blk." + m[1].str() + "." + to + ".weight";
    }
  }
  static const std::pair<const char*, const char*> kLayer[] = {
      {"input_layernorm.weight", "attn_norm.weight"},
      {"post_attention_layernorm.weight", "ffn_norm.weight"},
      {"self_attn.q_proj.weight", "attn_q.weight"},
      {"self_attn.k_proj.weight", "attn_k.weight"},
      {"self_attn.v_proj.weight", "attn_v.weight"},
      {"self_attn.q_proj.bias", "attn_q.bias"},
      {"self_attn.k_proj.bias", "attn_k.bias"},
      {"self_attn.v_proj.bias", "attn_v.bias"},
      {"self_attn.o_proj.weight", "attn_output.weight"},
      {"self_attn.q_norm.weight", "attn_q_norm.weight"},
      {"self_attn.k_norm.weight", "attn_k_norm.weight"},
      {"mlp.gate_proj.weight", "ffn_gate.weight"},
      {"mlp.up_proj.weight", "ffn_up.weight"},
      {"mlp.down_proj.weight", "ffn_down.weight"},
  };
  if (hf == "model.embed_tokens.weight") return "token_embd.weight";
  if (hf == "model.norm.weight") return "output_norm.weight";
  if (hf == "lm_head.weight") return "output.weight";
  static const std::regex layer(R"(model\.layers\.(\d+)\.(.+))");
  std::smatch m;
  if (std::regex_match(hf, m, layer)) {
    for (const auto& [from, to] : kLayer) {
      if (m[2] == from) return "blk." + m[1].str() + "." + to;
    }
  }
  return {};
}

struct HfCheckpoint {
  // How Llama 3 RoPE scaling is written: rope.scaling.* keys, or (as llama.cpp's converter
  // does) the per-pair factors as rope_freqs.weight.
  enum class Llama3Rope { kKeys, kTensor };

  nlohmann::json config;
  nlohmann::json reference;
  std::vector<std::vector<float>> data;
  std::vector<uint8_t> bytes;

 private:
  Llama3Rope llama3_;

 public:
  ml::gguf::File file;

  explicit HfCheckpoint(const std::string& dir, Llama3Rope llama3 = Llama3Rope::kKeys)
      : config(read_json(dir + "/config.json")),
        reference(read_json(dir + "/reference.json")),
        llama3_(llama3),
        file(convert(dir)) {}

  static nlohmann::json read_json(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot open " + path);
    return nlohmann::json::parse(in);
  }

 private:
  ml::gguf::File convert(const std::string& dir) {
    const std::string model_type = config.at("model_type");
    const std::string arch = model_type == "gemma3_text" ? "gemma3" : model_type;
    const auto& c = config;
    const int64_t n_embd = c.at("hidden_size"), n_head = c.at("num_attention_heads");
    const int64_t n_head_kv = c.value("num_key_value_heads", n_head);
    const int64_t head_dim = c.contains("head_dim") && !c["head_dim"].is_null()
                                 ? c["head_dim"].get<int64_t>()
                                 : n_embd / n_head;
    nlohmann::json rope = c.contains("rope_parameters") ? c["rope_parameters"] : c;
    if (rope.contains("full_attention")) rope = rope["full_attention"];  // keyed by layer type

    ml::gguf::Writer w;
    auto& md = w.metadata();
    md.set("general.architecture", arch);
    md.set(arch + ".block_count", c.at("num_hidden_layers").get<uint32_t>());
    md.set(arch + ".context_length", c.at("max_position_embeddings").get<uint32_t>());
    md.set(arch + ".embedding_length", static_cast<uint32_t>(n_embd));
    md.set(arch + ".feed_forward_length", c.at("intermediate_size").get<uint32_t>());
    md.set(arch + ".attention.head_count", static_cast<uint32_t>(n_head));
    md.set(arch + ".attention.head_count_kv", static_cast<uint32_t>(n_head_kv));
    md.set(arch + ".rope.freq_base", rope.value("rope_theta", 10000.0f));
    md.set(arch + ".rope.dimension_count", static_cast<uint32_t>(head_dim));
    md.set(arch + ".attention.layer_norm_rms_epsilon", c.at("rms_norm_eps").get<float>());
    if (head_dim != n_embd / n_head) {
      md.set(arch + ".attention.key_length", static_cast<uint32_t>(head_dim));
      md.set(arch + ".attention.value_length", static_cast<uint32_t>(head_dim));
    }
    if (arch == "gemma3") {
      md.set(arch + ".attention.sliding_window", c.at("sliding_window").get<uint32_t>());
      std::vector<ml::gguf::Value> sliding;
      for (const auto& t : c.at("layer_types")) sliding.emplace_back(t == "sliding_attention");
      md.set(arch + ".attention.sliding_window_pattern",
             ml::gguf::Value::array(ml::gguf::ValueType::kBool, std::move(sliding)));
      md.set(arch + ".rope.freq_base_swa",
             c.at("rope_parameters").at("sliding_attention").at("rope_theta").get<float>());
    }
    if (rope.value("rope_type", "default") == "llama3" && llama3_ == Llama3Rope::kTensor) {
      auto& f = data.emplace_back(nn::llama3_freq_factors(
          static_cast<int>(head_dim), rope.at("rope_theta").get<float>(),
          rope.at("factor").get<float>(), rope.at("low_freq_factor").get<float>(),
          rope.at("high_freq_factor").get<float>(),
          rope.at("original_max_position_embeddings").get<int>()));
      w.add_tensor("rope_freqs.weight", ml::DType::F32, {static_cast<int64_t>(f.size())},
                   {reinterpret_cast<const uint8_t*>(f.data()), f.size() * sizeof(float)});
    } else if (rope.value("rope_type", "default") == "llama3") {
      md.set(arch + ".rope.scaling.type", "llama3");
      md.set(arch + ".rope.scaling.factor", rope.at("factor").get<float>());
      md.set(arch + ".rope.scaling.low_freq_factor", rope.at("low_freq_factor").get<float>());
      md.set(arch + ".rope.scaling.high_freq_factor", rope.at("high_freq_factor").get<float>());
      md.set(arch + ".rope.scaling.original_context_length",
             rope.at("original_max_position_embeddings").get<uint32_t>());
    }

    std::ifstream in(dir + "/model.safetensors", std::ios::binary);
    uint64_t header_len = 0;
    in.read(reinterpret_cast<char*>(&header_len), 8);
    std::string header(header_len, '\0');
    in.read(header.data(), static_cast<std::streamsize>(header_len));
    const auto tensors = nlohmann::json::parse(header);
    const std::streamoff base = 8 + static_cast<std::streamoff>(header_len);
    data.reserve(tensors.size() + 1);
    for (const auto& [name, t] : tensors.items()) {
      if (name == "__metadata__") continue;
      const std::string to = gguf_name(name, arch);
      if (to.empty()) throw std::runtime_error("unmapped tensor " + name);
      const std::vector<int64_t> hf_shape = t.at("shape");
      const std::string dtype = t.at("dtype");
      const size_t begin = t.at("data_offsets")[0], end = t.at("data_offsets")[1];
      std::vector<uint8_t> raw(end - begin);
      in.seekg(base + static_cast<std::streamoff>(begin));
      in.read(reinterpret_cast<char*>(raw.data()), static_cast<std::streamsize>(raw.size()));
      auto& v = data.emplace_back();
      if (dtype == "F32") {
        v.resize(raw.size() / 4);
        std::memcpy(v.data(), raw.data(), raw.size());
      } else if (dtype == "BF16") {
        v.resize(raw.size() / 2);
        for (size_t i = 0; i < v.size(); ++i) {
          const uint32_t bits = static_cast<uint32_t>(raw[2 * i] | (raw[2 * i + 1] << 8)) << 16;
          std::memcpy(&v[i], &bits, 4);
        }
      } else {
        throw std::runtime_error(name + ": dtype " + dtype);
      }
      // llama.cpp's converter permutes llama's Q/K rows from rotate-half order to pairs.
      const bool q = to.ends_with("attn_q.weight"), k = to.ends_with("attn_k.weight");
      if (arch == "llama" && (q || k)) permute_rows(v, hf_shape, q ? n_head : n_head_kv);
      // Gemma's RMSNorm scales by 1 + weight; llama.cpp stores the sum.
      if (arch == "gemma3" && to.ends_with("norm.weight")) {
        for (float& x : v) x += 1.0f;
      }
      // HF [out, in] row-major is ggml [in, out].
      const std::vector<int64_t> ne(hf_shape.rbegin(), hf_shape.rend());
      w.add_tensor(to, ml::DType::F32, ne,
                   {reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(float)});
    }
    bytes = w.to_bytes();
    return ml::gguf::File::parse(bytes, dir + " (converted)");
  }

  // Within each head, row half * (d / 2) + i moves to 2 i + half.
  static void permute_rows(std::vector<float>& v, const std::vector<int64_t>& shape,
                           int64_t n_head) {
    const int64_t rows = shape[0], cols = shape[1], d = rows / n_head;
    std::vector<float> out(v.size());
    for (int64_t h = 0; h < n_head; ++h) {
      for (int64_t half = 0; half < 2; ++half) {
        for (int64_t i = 0; i < d / 2; ++i) {
          const int64_t from = h * d + half * (d / 2) + i, to = h * d + 2 * i + half;
          std::memcpy(&out[to * cols], &v[from * cols], cols * sizeof(float));
        }
      }
    }
    v = std::move(out);
  }
};

}  // namespace corral::model::testing
