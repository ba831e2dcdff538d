#include "convert/synth.h"

#include <cstring>
#include <memory>
#include <stdexcept>

#include "convert/arch/arch.h"
#include "nn/rope.h"

namespace corral::convert {

namespace {

using ml::gguf::Value;
using ml::gguf::ValueType;
using nlohmann::json;

// The numbers are those of each model's config.json on the Hugging Face hub (meta-llama/...,
// Qwen/...); the specials are the ids of their tokenizer.json added tokens.
std::vector<SynthPreset> make_presets() {
  const std::vector<std::pair<int64_t, std::string>> llama_specials = {
      {128000, "<|begin_of_text|>"},
      {128001, "<|end_of_text|>"},
      {128006, "<|start_header_id|>"},
      {128007, "<|end_header_id|>"},
      {128009, "<|eot_id|>"}};
  const std::vector<std::pair<int64_t, std::string>> qwen_specials = {
      {151643, "<|endoftext|>"}, {151644, "<|im_start|>"}, {151645, "<|im_end|>"}};
  std::vector<SynthPreset> p;
  p.push_back({"llama-3.2-1b", "LlamaForCausalLM", 2048, 8192, 16, 32, 8, 64, 128256, 131072, 1e-5,
               500000.0, 32.0, true, "llama-bpe", 128000, 128009, true, llama_specials});
  p.push_back({"llama-3.2-3b", "LlamaForCausalLM", 3072, 8192, 28, 24, 8, 128, 128256, 131072, 1e-5,
               500000.0, 32.0, true, "llama-bpe", 128000, 128009, true, llama_specials});
  // Llama 3.1 scales RoPE by 8, 3.2 by 32; 3.1's config.json has no head_dim.
  p.push_back({"llama-3.1-8b", "LlamaForCausalLM", 4096, 14336, 32, 32, 8, 0, 128256, 131072, 1e-5,
               500000.0, 8.0, false, "llama-bpe", 128000, 128009, true, llama_specials});
  p.push_back({"qwen2.5-0.5b", "Qwen2ForCausalLM", 896, 4864, 24, 14, 2, 0, 151936, 32768, 1e-6,
               1000000.0, 0.0, true, "qwen2", 151643, 151645, false, qwen_specials});
  p.push_back({"qwen2.5-1.5b", "Qwen2ForCausalLM", 1536, 8960, 28, 12, 2, 0, 151936, 32768, 1e-6,
               1000000.0, 0.0, true, "qwen2", 151643, 151645, false, qwen_specials});
  // Small enough to write and run in a unit test; rows of 256 so every K-quant applies.
  p.push_back({"tiny-llama",
               "LlamaForCausalLM",
               256,
               512,
               2,
               4,
               2,
               64,
               1024,
               2048,
               1e-5,
               500000.0,
               32.0,
               false,
               "llama-bpe",
               1000,
               1001,
               true,
               {{1000, "<|begin_of_text|>"}, {1001, "<|eot_id|>"}}});
  p.push_back({"tiny-qwen2",
               "Qwen2ForCausalLM",
               256,
               512,
               2,
               4,
               2,
               0,
               1024,
               2048,
               1e-6,
               1000000.0,
               0.0,
               true,
               "qwen2",
               1000,
               1001,
               false,
               {{1000, "<|endoftext|>"}, {1001, "<|im_end|>"}}});
  return p;
}

// GPT-2's byte-level alphabet: printable bytes stand for themselves, the others for code points
// from 256 on, in byte order.
std::vector<std::string> byte_symbols() {
  std::vector<std::string> out(256);
  int next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
    const int cp = printable ? b : next++;
    std::string s;
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
    out[b] = s;
  }
  return out;
}

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t name_hash(const std::string& name) {
  uint64_t h = 0xCBF29CE484222325ull;  // FNV-1a
  for (const char c : name) h = (h ^ static_cast<uint8_t>(c)) * 0x100000001B3ull;
  return h;
}

// Values of mean `mean` and standard deviation `std`: the sum of four 16-bit uniforms is close
// enough to normal for weights whose values nothing depends on, and costs one 64-bit draw.
void fill_random(float* out, int64_t n, uint64_t seed, float mean, float std) {
  constexpr float kSumStd = 65536.0f * 0.57735027f;  // sqrt(4 / 12) of the range
  const float scale = std / kSumStd;
  uint64_t state = seed;
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t r = splitmix64(state);
    const int64_t sum = static_cast<int64_t>(r & 0xFFFF) + ((r >> 16) & 0xFFFF) +
                        ((r >> 32) & 0xFFFF) + (r >> 48) - 2 * 65535;
    out[i] = mean + static_cast<float>(sum) * scale;
  }
}

void set_strings(ml::gguf::Metadata& md, const char* key, std::vector<std::string> items) {
  std::vector<Value> values;
  values.reserve(items.size());
  for (std::string& s : items) values.emplace_back(std::move(s));
  md.set(key, Value::array(ValueType::kString, std::move(values)));
}

void add_synth_tokenizer(const SynthPreset& p, ml::gguf::Metadata& md) {
  const std::vector<std::string> bytes = byte_symbols();
  std::vector<std::string> tokens(static_cast<size_t>(p.vocab_size));
  std::vector<Value> types(tokens.size(), Value(int32_t{1}));
  std::vector<bool> taken(tokens.size(), false);
  for (const auto& [id, text] : p.specials) {
    tokens.at(static_cast<size_t>(id)) = text;
    types[static_cast<size_t>(id)] = Value(int32_t{3});  // control
    taken[static_cast<size_t>(id)] = true;
  }
  // Two-symbol tokens with their merges, so that ordinary text merges into more than bytes:
  // a word-initial marker (Ġ, GPT-2's space) or a letter, followed by a lowercase letter.
  std::string firsts = bytes[' '];
  for (char c = 'a'; c <= 'z'; ++c) firsts += c;
  for (char c = 'A'; c <= 'Z'; ++c) firsts += c;
  std::vector<std::pair<std::string, std::string>> pairs;
  for (size_t i = 0; i < firsts.size();) {
    const size_t len = static_cast<unsigned char>(firsts[i]) >= 0x80 ? 2 : 1;
    for (char c = 'a'; c <= 'z'; ++c) pairs.emplace_back(firsts.substr(i, len), std::string(1, c));
    i += len;
  }
  std::vector<std::string> merges;
  size_t next_pair = 0;
  for (size_t id = 0; id < tokens.size(); ++id) {
    if (taken[id]) continue;
    if (id < 256) {
      tokens[id] = bytes[id];
    } else if (next_pair < pairs.size()) {
      const auto& [a, b] = pairs[next_pair++];
      tokens[id] = a + b;
      merges.push_back(a + " " + b);
    } else {
      tokens[id] = "<synth_" + std::to_string(id) + ">";
    }
  }
  md.set("tokenizer.ggml.model", "gpt2");
  md.set("tokenizer.ggml.pre", p.pre);
  set_strings(md, "tokenizer.ggml.tokens", std::move(tokens));
  md.set("tokenizer.ggml.token_type", Value::array(ValueType::kInt32, std::move(types)));
  set_strings(md, "tokenizer.ggml.merges", std::move(merges));
  md.set("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(p.bos_id));
  md.set("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(p.eos_id));
  md.set("tokenizer.ggml.add_bos_token", p.add_bos);
  md.set("tokenizer.ggml.add_eos_token", false);
}

const arch::Arch& arch_of(const SynthPreset& p) {
  const arch::Arch* a = arch::find(p.hf_class);
  if (a == nullptr) throw std::logic_error("synth preset " + p.name + ": unknown " + p.hf_class);
  return *a;
}

}  // namespace

const std::vector<SynthPreset>& synth_presets() {
  static const std::vector<SynthPreset> kPresets = make_presets();
  return kPresets;
}

const SynthPreset& find_synth_preset(std::string_view name) {
  std::string valid;
  for (const SynthPreset& p : synth_presets()) {
    if (p.name == name) return p;
    valid += (valid.empty() ? "" : ", ") + p.name;
  }
  throw std::invalid_argument("unknown synth preset '" + std::string(name) + "' (valid: " + valid +
                              ")");
}

HfConfig synth_config(const SynthPreset& p) {
  json j = {{"architectures", {p.hf_class}},
            {"hidden_size", p.hidden_size},
            {"intermediate_size", p.intermediate_size},
            {"num_hidden_layers", p.num_hidden_layers},
            {"num_attention_heads", p.num_attention_heads},
            {"num_key_value_heads", p.num_key_value_heads},
            {"vocab_size", p.vocab_size},
            {"max_position_embeddings", p.max_position_embeddings},
            {"rms_norm_eps", p.rms_norm_eps},
            {"rope_theta", p.rope_theta},
            {"tie_word_embeddings", p.tie_word_embeddings},
            {"bos_token_id", p.bos_id},
            {"eos_token_id", p.eos_id}};
  if (p.head_dim > 0) j["head_dim"] = p.head_dim;
  if (p.llama3_rope_factor > 0) {
    j["rope_scaling"] = {{"rope_type", "llama3"},
                         {"factor", p.llama3_rope_factor},
                         {"low_freq_factor", 1.0},
                         {"high_freq_factor", 4.0},
                         {"original_max_position_embeddings", 8192}};
  }
  return HfConfig(std::move(j), p.name + "/config.json");
}

ml::gguf::Metadata synth_metadata(const SynthPreset& p, const QuantType& type) {
  const HfConfig config = synth_config(p);
  const arch::Arch& a = arch_of(p);
  ml::gguf::Metadata md(p.name);
  md.set("general.architecture", std::string(a.gguf_name));
  md.set("general.type", "model");
  md.set("general.name", "synth-" + p.name);
  a.set_parameters(config, type, md);
  add_synth_tokenizer(p, md);
  return md;
}

std::vector<TensorSource> synth_tensors(const SynthPreset& p, uint64_t seed) {
  const HfConfig config = synth_config(p);
  const bool qwen2 = arch_of(p).gguf_name == "qwen2";
  std::vector<TensorSource> out;
  if (p.llama3_rope_factor > 0) {
    // The factors are not weights: a model with other ones would run another RoPE.
    auto factors = std::make_shared<std::vector<float>>(nn::llama3_freq_factors(
        static_cast<int>(config.head_dim()), static_cast<float>(p.rope_theta),
        static_cast<float>(p.llama3_rope_factor), 1.0f, 4.0f, 8192));
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
  const arch::Layout layout = arch::decoder_layout(config, /*qkv_bias=*/qwen2);
  for (const arch::Expected& e : layout.expected) {
    if (e.gguf == "output.weight" && layout.tied) continue;
    TensorSource s;
    s.name = e.gguf;
    s.ne = e.ne;
    s.dtype = ml::DType::F32;
    int64_t n = 1;
    for (const int64_t d : e.ne) n *= d;
    const bool norm = e.gguf.ends_with("norm.weight");
    const uint64_t tensor_seed = name_hash(e.gguf) ^ (seed * 0x9E3779B97F4A7C15ull);
    s.read_f32 = [n, norm, tensor_seed](float* values) {
      fill_random(values, n, tensor_seed, norm ? 1.0f : 0.0f, norm ? 0.1f : 0.02f);
    };
    out.push_back(std::move(s));
  }
  return out;
}

void write_synth_model(const SynthPreset& preset, const QuantType& type, uint64_t seed,
                       const std::string& path, const WriteOptions& options) {
  const std::vector<TensorSource> tensors = synth_tensors(preset, seed);
  write_model(synth_metadata(preset, type), tensors, type, path, options);
}

}  // namespace corral::convert
