// MllamaForConditionalGeneration (Llama 3.2 Vision) -> GGUF "mllama", one file holding the text
// model, the vision tower and the projector, named as Ollama's convert/convert_mllama.go names
// them so that Ollama's llama3.2-vision files and ours bind alike:
// - text keys are llama's under "mllama." (plus attention.cross_attention_layers); self-attention
//   Q/K rows are permuted for the interleaved-pair RoPE as llama's are; cross-attention layers
//   keep blk.N.cross_attn_{q,k,v,o}_proj, cross_attn_{q,k}_norm and the raw (pre-tanh) gates
//   cross_attn_attn_gate and cross_attn_mlp_gate;
// - the vision tower is v.* (v.blk.N for the local layers, v.global.blk.N for the gated ones)
//   and its gates are stored as the factors they apply: tanh(gate), and for the positional
//   embedding 1 - tanh(gate) (v.position_embd.gate) beside tanh(gate) (v.tile_position_embd.gate);
// - the projector is mm.0.
// The image processor's settings (preprocessor_config.json) go to mllama.vision.image_mean,
// image_std, rescale_factor and max_image_tiles.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>

#include "convert/arch/arch.h"

#include <cstdlib>
#include "nn/rope.h"

namespace corral::convert::arch {

namespace {

using nlohmann::json;

// transformers' MllamaTextModel embeds vocab_size + 8 rows (<|image|> and padding).
constexpr int64_t kExtraEmbeddingRows = 8;

// Within each head of `d` rows, row half * (d / 2) + i moves to 2 i + half: transformers rotates
// the two halves of a head, ggml's normal RoPE rotates adjacent pairs (llama's permutation).
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

HfConfig sub_config(const HfConfig& c, const char* key) {
  const auto it = c.json().find(key);
  if (it == c.json().end() || !it->is_object()) {
    throw std::runtime_error(c.path() + ": key '" + key + "' is missing or not an object");
  }
  return HfConfig(*it, c.path() + " (" + key + ")");
}

std::vector<int64_t> int_list(const HfConfig& c, const char* key) {
  const auto it = c.json().find(key);
  if (it == c.json().end() || !it->is_array()) {
    throw std::runtime_error(c.path() + ": key '" + key + "' is missing or not an array");
  }
  std::vector<int64_t> out;
  for (const json& v : *it) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > 100000) {
      throw std::runtime_error(c.path() + ": key '" + key + "' holds " + v.dump() +
                               ", expected small non-negative integers");
    }
    out.push_back(v.get<int64_t>());
  }
  return out;
}

ml::gguf::Value i32_array(const std::vector<int64_t>& v) {
  std::vector<ml::gguf::Value> items;
  for (int64_t x : v) items.emplace_back(static_cast<int32_t>(x));
  return ml::gguf::Value::array(ml::gguf::ValueType::kInt32, std::move(items));
}

uint32_t u32(const HfConfig& c, const char* key) {
  const int64_t v = c.get_int(key);
  if (v <= 0 || v > (int64_t{1} << 24)) {
    throw std::runtime_error(c.path() + ": key '" + std::string(key) + "' = " + std::to_string(v) +
                             " is out of range");
  }
  return static_cast<uint32_t>(v);
}

bool is_vision(const std::string& hf) { return hf.find("vision_model.") != std::string::npos; }
// The text model's self-attention Q and K (the vision tower's have no RoPE and stay as they are).
bool is_self_q(const std::string& hf) {
  return !is_vision(hf) && hf.ends_with("self_attn.q_proj.weight");
}
bool is_self_k(const std::string& hf) {
  return !is_vision(hf) && hf.ends_with("self_attn.k_proj.weight");
}

// How a vision gate is stored: the factor it applies.
enum class Gate { kNone, kTanh, kOneMinusTanh };
Gate vision_gate(const std::string& hf) {
  if (!is_vision(hf)) return Gate::kNone;
  if (hf.ends_with("gated_positional_embedding.gate")) return Gate::kOneMinusTanh;
  if (hf.ends_with(".gate") || hf.ends_with(".gate_attn") || hf.ends_with(".gate_ffn")) {
    return Gate::kTanh;
  }
  return Gate::kNone;
}

struct Dims {
  // text
  int64_t n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_vocab;
  std::vector<int64_t> cross_layers;
  // vision
  int64_t v_embd, v_layer, v_global, v_head, v_ff, image_size, patch_size, n_tiles, n_channels;
  int64_t n_ratios, v_out;

  explicit Dims(const HfConfig& c) {
    const HfConfig t = sub_config(c, "text_config"), v = sub_config(c, "vision_config");
    n_embd = u32(t, "hidden_size");
    n_layer = u32(t, "num_hidden_layers");
    n_head = u32(t, "num_attention_heads");
    n_head_kv = t.find_int("num_key_value_heads").value_or(n_head);
    head_dim = t.head_dim();
    n_ff = u32(t, "intermediate_size");
    n_vocab = u32(t, "vocab_size");
    cross_layers = int_list(t, "cross_attention_layers");
    for (int64_t l : cross_layers) {
      if (l >= n_layer) {
        throw std::runtime_error(t.path() + ": cross_attention_layers names layer " +
                                 std::to_string(l) + " of " + std::to_string(n_layer));
      }
    }
    v_embd = u32(v, "hidden_size");
    v_layer = u32(v, "num_hidden_layers");
    v_global = u32(v, "num_global_layers");
    v_head = u32(v, "attention_heads");
    v_ff = u32(v, "intermediate_size");
    image_size = u32(v, "image_size");
    patch_size = u32(v, "patch_size");
    n_tiles = u32(v, "max_num_tiles");
    n_channels = u32(v, "num_channels");
    v_out = u32(v, "vision_output_dim");
    const auto ratios = v.json().find("supported_aspect_ratios");
    n_ratios = ratios != v.json().end() && ratios->is_array()
                   ? static_cast<int64_t>(ratios->size())
                   : 8;  // transformers' default for 4 tiles
    if (head_dim <= 0 || head_dim % 2 != 0 || n_head_kv <= 0 || v_embd % v_head != 0 ||
        image_size % patch_size != 0) {
      throw std::runtime_error(c.path() +
                               ": text head_dim must be even and positive, vision hidden_size a "
                               "multiple of attention_heads and image_size of patch_size");
    }
  }
  int64_t n_positions() const {
    const int64_t side = image_size / patch_size;
    return side * side + 1;  // patches and the class embedding
  }
};

bool is_cross(const Dims& d, int64_t il) {
  for (int64_t l : d.cross_layers) {
    if (l == il) return true;
  }
  return false;
}

// Every tensor by its HF name (both spellings transformers has saved: language_model.model.* and
// model.language_model.*) with its GGUF name and ggml shape.
Layout mllama_layout(const HfConfig& c, const Dims& d) {
  Layout l;
  const auto add = [&](std::vector<std::string> hf, std::string gguf, std::vector<int64_t> ne) {
    for (std::string& h : hf) l.globals.emplace_back(std::move(h), gguf);
    l.expected.push_back({std::move(gguf), std::move(ne)});
  };
  const auto text = [&](const std::string& rest, std::string gguf, std::vector<int64_t> ne) {
    add({"language_model.model." + rest, "model.language_model." + rest}, std::move(gguf),
        std::move(ne));
  };
  const auto vision = [&](const std::string& rest, std::string gguf, std::vector<int64_t> ne) {
    add({"vision_model." + rest, "model.vision_model." + rest}, std::move(gguf), std::move(ne));
  };

  const int64_t n_q = d.n_head * d.head_dim, n_kv = d.n_head_kv * d.head_dim;
  text("embed_tokens.weight", "token_embd.weight", {d.n_embd, d.n_vocab + kExtraEmbeddingRows});
  text("norm.weight", "output_norm.weight", {d.n_embd});
  add({"language_model.lm_head.weight", "lm_head.weight"}, "output.weight", {d.n_embd, d.n_vocab});
  for (int64_t il = 0; il < d.n_layer; ++il) {
    const std::string h = "layers." + std::to_string(il) + ".",
                      b = "blk." + std::to_string(il) + ".";
    text(h + "input_layernorm.weight", b + "attn_norm.weight", {d.n_embd});
    text(h + "post_attention_layernorm.weight", b + "ffn_norm.weight", {d.n_embd});
    text(h + "mlp.gate_proj.weight", b + "ffn_gate.weight", {d.n_embd, d.n_ff});
    text(h + "mlp.up_proj.weight", b + "ffn_up.weight", {d.n_embd, d.n_ff});
    text(h + "mlp.down_proj.weight", b + "ffn_down.weight", {d.n_ff, d.n_embd});
    if (is_cross(d, il)) {
      text(h + "cross_attn.q_proj.weight", b + "cross_attn_q_proj.weight", {d.n_embd, n_q});
      text(h + "cross_attn.k_proj.weight", b + "cross_attn_k_proj.weight", {d.n_embd, n_kv});
      text(h + "cross_attn.v_proj.weight", b + "cross_attn_v_proj.weight", {d.n_embd, n_kv});
      text(h + "cross_attn.o_proj.weight", b + "cross_attn_o_proj.weight", {n_q, d.n_embd});
      text(h + "cross_attn.q_norm.weight", b + "cross_attn_q_norm.weight", {d.head_dim});
      text(h + "cross_attn.k_norm.weight", b + "cross_attn_k_norm.weight", {d.head_dim});
      text(h + "cross_attn_attn_gate", b + "cross_attn_attn_gate", {1});
      text(h + "cross_attn_mlp_gate", b + "cross_attn_mlp_gate", {1});
    } else {
      text(h + "self_attn.q_proj.weight", b + "attn_q.weight", {d.n_embd, n_q});
      text(h + "self_attn.k_proj.weight", b + "attn_k.weight", {d.n_embd, n_kv});
      text(h + "self_attn.v_proj.weight", b + "attn_v.weight", {d.n_embd, n_kv});
      text(h + "self_attn.o_proj.weight", b + "attn_output.weight", {n_q, d.n_embd});
    }
  }

  const int64_t e = d.v_embd, n_pos = d.n_positions(), n_ids = d.n_ratios + 1;
  vision("patch_embedding.weight", "v.patch_embd.weight",
         {d.patch_size, d.patch_size, d.n_channels, e});
  vision("class_embedding", "v.class_embd", {e});
  vision("gated_positional_embedding.embedding", "v.position_embd.weight", {e, n_pos});
  vision("gated_positional_embedding.gate", "v.position_embd.gate", {1});
  vision("gated_positional_embedding.tile_embedding.weight", "v.tile_position_embd.weight",
         {e * n_pos * d.n_tiles, n_ids});
  for (const char* which : {"pre", "post"}) {
    const std::string hf = std::string(which) + "_tile_positional_embedding.";
    const std::string gguf = "v." + std::string(which) + "_tile_position_embd.";
    vision(hf + "embedding.weight", gguf + "weight", {e * d.n_tiles, n_ids});
    vision(hf + "gate", gguf + "gate", {1});
  }
  for (const char* which : {"pre", "post"}) {
    const std::string hf = "layernorm_" + std::string(which) + ".";
    const std::string gguf = "v." + std::string(which) + "_ln.";
    vision(hf + "weight", gguf + "weight", {e});
    vision(hf + "bias", gguf + "bias", {e});
  }
  const auto layers = [&](const std::string& hf_stack, const std::string& gguf_stack, int64_t n,
                          bool gated) {
    for (int64_t il = 0; il < n; ++il) {
      const std::string h = hf_stack + "." + std::to_string(il) + ".";
      const std::string b = gguf_stack + "." + std::to_string(il) + ".";
      vision(h + "input_layernorm.weight", b + "attn_norm.weight", {e});
      vision(h + "input_layernorm.bias", b + "attn_norm.bias", {e});
      vision(h + "self_attn.q_proj.weight", b + "attn_q.weight", {e, e});
      vision(h + "self_attn.k_proj.weight", b + "attn_k.weight", {e, e});
      vision(h + "self_attn.v_proj.weight", b + "attn_v.weight", {e, e});
      vision(h + "self_attn.o_proj.weight", b + "attn_output.weight", {e, e});
      vision(h + "post_attention_layernorm.weight", b + "ffn_norm.weight", {e});
      vision(h + "post_attention_layernorm.bias", b + "ffn_norm.bias", {e});
      vision(h + "mlp.fc1.weight", b + "ffn_up.weight", {e, d.v_ff});
      vision(h + "mlp.fc1.bias", b + "ffn_up.bias", {d.v_ff});
      vision(h + "mlp.fc2.weight", b + "ffn_down.weight", {d.v_ff, e});
      vision(h + "mlp.fc2.bias", b + "ffn_down.bias", {e});
      if (gated) {
        vision(h + "gate_attn", b + "attn_gate", {1});
        vision(h + "gate_ffn", b + "ffn_gate", {1});
      }
    }
  };
  layers("transformer.layers", "v.blk", d.v_layer, false);
  layers("global_transformer.layers", "v.global.blk", d.v_global, true);

  add({"multi_modal_projector.weight", "model.multi_modal_projector.weight"}, "mm.0.weight",
      {d.v_out, d.n_embd});
  add({"multi_modal_projector.bias", "model.multi_modal_projector.bias"}, "mm.0.bias", {d.n_embd});

  l.ignored_suffixes = {"rotary_emb.inv_freq"};
  const int64_t n_head = d.n_head, n_head_kv = d.n_head_kv;
  l.transforms = [](const std::string& hf) {
    return is_self_q(hf) || is_self_k(hf) || vision_gate(hf) != Gate::kNone;
  };
  l.transform = [n_head, n_head_kv](const std::string& hf, const std::vector<int64_t>& shape,
                                    float* data) {
    if (is_self_q(hf) || is_self_k(hf)) {
      permute_rows(data, shape.at(0), shape.size() > 1 ? shape[1] : 1,
                   is_self_q(hf) ? n_head : n_head_kv);
      return true;
    }
    const Gate g = vision_gate(hf);
    if (g == Gate::kNone) return false;
    data[0] = g == Gate::kTanh ? std::tanh(data[0]) : 1.0f - std::tanh(data[0]);
    return true;
  };
  (void)c;
  return l;
}

// Llama 3 RoPE scaling as rope_freqs.weight, as the llama converter writes it.
std::optional<TensorSource> rope_freqs(const HfConfig& t) {
  if (t.rope_type() != "llama3") return std::nullopt;
  const auto& r = t.rope();
  const auto number = [&](const char* key, double fallback) {
    const auto it = r.find(key);
    return it != r.end() && it->is_number() ? it->get<double>() : fallback;
  };
  const double orig = number("original_max_position_embeddings",
                             t.find_number("original_max_position_embeddings").value_or(8192));
  auto factors = std::make_shared<std::vector<float>>(nn::llama3_freq_factors(
      static_cast<int>(t.head_dim()), static_cast<float>(number("rope_theta", 10000.0)),
      static_cast<float>(number("factor", 8.0)), static_cast<float>(number("low_freq_factor", 1.0)),
      static_cast<float>(number("high_freq_factor", 4.0)), static_cast<int>(orig)));
  TensorSource s;
  s.name = "rope_freqs.weight";
  s.ne = {static_cast<int64_t>(factors->size())};
  s.dtype = ml::DType::F32;
  s.raw = {reinterpret_cast<const uint8_t*>(factors->data()), factors->size() * sizeof(float)};
  s.read_f32 = [factors](float* values) {
    std::memcpy(values, factors->data(), factors->size() * sizeof(float));
  };
  return s;
}

json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot be read");
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw std::runtime_error(path + ": not valid JSON: " + e.what());
  }
}

}  // namespace

// The GGUF keeps Meta's meaning of intermediate_layers_indices (Ollama's too): index i is the
// input of local layer i (n_layer: the last layer's output), as Meta's VisionEncoder and
// transformers 4.x collect them. transformers 5 collects each listed layer's output instead (the
// tiny-mllama reference, made by 5.17, is reproduced only that way: 2e-6 against 5e-2). A
// checkpoint is converted to compute what the library that saved it computes: from a
// config.json written by transformers 5 or later, index i becomes i + 1.
std::vector<int64_t> intermediate_layers(const HfConfig& c, const HfConfig& v) {
  std::vector<int64_t> indices = int_list(v, "intermediate_layers_indices");
  const std::string version = c.json().value("transformers_version", std::string());
  const int major = version.empty() ? 0 : std::atoi(version.c_str());
  if (major >= 5) {
    for (int64_t& i : indices) ++i;
  }
  return indices;
}

Arch mllama() {
  Arch a;
  a.gguf_name = "mllama";
  a.set_parameters = [](const HfConfig& c, const QuantType& type, ml::gguf::Metadata& md) {
    const Dims d(c);
    const HfConfig t = sub_config(c, "text_config"), v = sub_config(c, "vision_config");
    set_text_parameters(t, "mllama", type, md);
    md.set("mllama.vocab_size", static_cast<uint32_t>(d.n_vocab));
    md.set("mllama.rope.dimension_count", static_cast<uint32_t>(d.head_dim));
    md.set("mllama.attention.cross_attention_layers", i32_array(d.cross_layers));

    md.set("mllama.vision.block_count", static_cast<uint32_t>(d.v_layer));
    md.set("mllama.vision.global.block_count", static_cast<uint32_t>(d.v_global));
    md.set("mllama.vision.intermediate_layers_indices", i32_array(intermediate_layers(c, v)));
    md.set("mllama.vision.embedding_length", static_cast<uint32_t>(d.v_embd));
    md.set("mllama.vision.feed_forward_length", static_cast<uint32_t>(d.v_ff));
    md.set("mllama.vision.attention.head_count", static_cast<uint32_t>(d.v_head));
    md.set("mllama.vision.attention.layer_norm_epsilon",
           static_cast<float>(v.find_number("norm_eps").value_or(1e-5)));
    md.set("mllama.vision.image_size", static_cast<uint32_t>(d.image_size));
    md.set("mllama.vision.patch_size", static_cast<uint32_t>(d.patch_size));
    md.set("mllama.vision.max_num_tiles", static_cast<uint32_t>(d.n_tiles));
    md.set("mllama.vision.num_channels", static_cast<uint32_t>(d.n_channels));
  };
  a.set_vision = [](const std::string& dir, const HfConfig& c, ml::gguf::Metadata& md) {
    const std::string path = (std::filesystem::path(dir) / "preprocessor_config.json").string();
    if (!std::filesystem::exists(path)) return;  // the model's defaults (CLIP's) apply
    const json p = read_json(path);
    const auto triple = [&](const char* key) {
      const auto it = p.find(key);
      if (it == p.end()) return;
      if (!it->is_array() || it->size() != 3) {
        throw std::runtime_error(path + ": key '" + key + "' must hold 3 numbers");
      }
      std::vector<ml::gguf::Value> items;
      for (const json& x : *it) {
        if (!x.is_number())
          throw std::runtime_error(path + ": key '" + key + "' holds " + x.dump());
        items.emplace_back(x.get<float>());
      }
      md.set(std::string("mllama.vision.") + key,
             ml::gguf::Value::array(ml::gguf::ValueType::kFloat32, std::move(items)));
    };
    triple("image_mean");
    triple("image_std");
    if (const auto it = p.find("rescale_factor"); it != p.end()) {
      if (!it->is_number())
        throw std::runtime_error(path + ": key 'rescale_factor' is not a number");
      md.set("mllama.vision.rescale_factor", it->get<float>());
    }
    if (const auto it = p.find("max_image_tiles"); it != p.end()) {
      if (!it->is_number_integer() || it->get<int64_t>() <= 0 || it->get<int64_t>() > 64) {
        throw std::runtime_error(path + ": key 'max_image_tiles' must be an integer in 1..64");
      }
      md.set("mllama.vision.max_image_tiles", static_cast<uint32_t>(it->get<int64_t>()));
    }
    (void)c;
  };
  // The tokenizer holds <|image|> at id vocab_size, one past the text vocabulary.
  a.vocab_size = [](const HfConfig& c) { return Dims(c).n_vocab; };
  a.tensors = [](const HfConfig& c, const Checkpoint& checkpoint) {
    const Dims d(c);
    std::vector<TensorSource> out;
    if (auto r = rope_freqs(sub_config(c, "text_config"))) out.push_back(std::move(*r));
    std::vector<TensorSource> mapped = map_tensors(c, checkpoint, mllama_layout(c, d));
    // Ollama applies the positional embedding's gate twice (1 - tanh to the patch positions,
    // tanh to the tile positions), from two tensors.
    for (const SafetensorsTensor* t : checkpoint.tensors()) {
      if (!is_vision(t->name) || !t->name.ends_with("gated_positional_embedding.gate")) continue;
      TensorSource s;
      s.name = "v.tile_position_embd.gate";
      s.ne = {1};
      s.dtype = ml::DType::F32;
      s.read_f32 = [t](float* values) {
        t->read_f32(values);
        values[0] = std::tanh(values[0]);
      };
      for (size_t i = 0; i < mapped.size(); ++i) {
        if (mapped[i].name == "v.position_embd.gate") {
          mapped.insert(mapped.begin() + static_cast<std::ptrdiff_t>(i) + 1, std::move(s));
          break;
        }
      }
      break;
    }
    out.insert(out.end(), std::make_move_iterator(mapped.begin()),
               std::make_move_iterator(mapped.end()));
    return out;
  };
  return a;
}

}  // namespace corral::convert::arch
