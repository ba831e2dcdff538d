// BertModel -> GGUF "bert", as llama.cpp's convert_hf_to_gguf.py BertModel (and Ollama's
// convert_bert.go) write it: the TextModel keys plus attention.layer_norm_epsilon,
// attention.causal = false, pooling_type and tokenizer.ggml.token_type_count; Ollama's
// normalize_embeddings. Tensors keep llama.cpp's BERT names (token_types, position_embd,
// token_embd_norm, attn_output_norm, layer_output_norm); the pooler, the masked-LM head and the
// position_ids buffer are dropped. A `bert.` prefix (BertForMaskedLM and friends) is stripped.
//
// Pooling comes from the sentence-transformers layout: modules.json names the Pooling module's
// folder (1_Pooling), whose config.json picks mean, CLS or last-token pooling; a Normalize
// module sets normalize_embeddings. A checkpoint without that layout is pooled by the mean, as
// sentence-transformers pools a bare BERT (llama.cpp would leave pooling_type out, which its
// runtime reads as no pooling at all).
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include "convert/arch/arch.h"

namespace corral::convert::arch {

namespace {

using nlohmann::json;

// llama.cpp's enum llama_pooling_type.
constexpr uint32_t kPoolingMean = 1, kPoolingCls = 2, kPoolingLast = 3;

json read_json(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path.string() + ": cannot open");
  try {
    return json::parse(std::string(std::istreambuf_iterator<char>(in), {}));
  } catch (const json::exception& e) {
    throw std::runtime_error(path.string() + ": not valid JSON: " + e.what());
  }
}

struct Pooling {
  uint32_t type = kPoolingMean;
  bool normalize = false;
};

Pooling sentence_transformers_pooling(const std::string& dir) {
  namespace fs = std::filesystem;
  Pooling p;
  std::error_code ec;
  fs::path pooling_dir;
  if (const fs::path modules = fs::path(dir) / "modules.json"; fs::is_regular_file(modules, ec)) {
    const json m = read_json(modules);
    if (!m.is_array()) throw std::runtime_error(modules.string() + ": expected a list of modules");
    for (const json& module : m) {
      const std::string type = module.is_object() ? module.value("type", "") : "";
      const std::string path = module.is_object() ? module.value("path", "") : "";
      if (type == "sentence_transformers.models.Pooling") pooling_dir = fs::path(dir) / path;
      if (type == "sentence_transformers.models.Normalize") p.normalize = true;
    }
  } else if (fs::is_directory(fs::path(dir) / "1_Pooling", ec)) {
    pooling_dir = fs::path(dir) / "1_Pooling";
  }
  if (pooling_dir.empty()) return p;
  const fs::path config = pooling_dir / "config.json";
  const json c = read_json(config);
  const auto mode = [&](const char* key) {
    const auto it = c.find(key);
    return it != c.end() && it->is_boolean() && it->get<bool>();
  };
  if (mode("pooling_mode_mean_tokens")) {
    p.type = kPoolingMean;
  } else if (mode("pooling_mode_cls_token")) {
    p.type = kPoolingCls;
  } else if (mode("pooling_mode_lasttoken")) {
    p.type = kPoolingLast;
  } else {
    throw std::runtime_error(config.string() +
                             ": only mean, CLS and last-token pooling are supported");
  }
  return p;
}

}  // namespace

Arch bert() {
  Arch a;
  a.gguf_name = "bert";
  a.set_parameters = [](const HfConfig& c, const QuantType& type, ml::gguf::Metadata& md) {
    set_text_parameters(c, "bert", type, md);
    if (const auto eps = c.find_number("layer_norm_eps")) {
      md.set("bert.attention.layer_norm_epsilon", static_cast<float>(*eps));
    }
    md.set("bert.attention.causal", false);
    const int64_t types = c.find_int("type_vocab_size").value_or(1);
    if (types <= 0 || types > 65536) {
      throw std::runtime_error(c.path() + ": type_vocab_size " + std::to_string(types) +
                               " is out of range");
    }
    md.set("tokenizer.ggml.token_type_count", static_cast<uint32_t>(types));
  };
  // The rest of the folder: the sentence-transformers modules.
  a.set_vision = [](const std::string& dir, const HfConfig&, ml::gguf::Metadata& md) {
    const Pooling p = sentence_transformers_pooling(dir);
    md.set("bert.pooling_type", p.type);
    md.set("bert.normalize_embeddings", p.normalize);
  };
  a.tensors = [](const HfConfig& c, const Checkpoint& checkpoint) {
    const int64_t n_embd = c.get_int("hidden_size");
    const int64_t n_layer = c.get_int("num_hidden_layers");
    const int64_t n_ff = c.get_int("intermediate_size");
    const int64_t n_vocab = c.get_int("vocab_size");
    const int64_t n_ctx = c.get_int("max_position_embeddings");
    const int64_t n_types = c.find_int("type_vocab_size").value_or(1);
    if (n_embd <= 0 || n_layer <= 0 || n_ff <= 0 || n_vocab <= 0 || n_ctx <= 0 || n_types <= 0 ||
        n_layer > 100000) {
      throw std::runtime_error(c.path() +
                               ": hidden_size, num_hidden_layers, intermediate_size, vocab_size, "
                               "max_position_embeddings and type_vocab_size must be positive");
    }
    std::string prefix;
    for (const SafetensorsTensor* t : checkpoint.tensors()) {
      if (t->name.starts_with("bert.")) prefix = "bert.";
    }
    Layout l;
    // Both forms of each name: the flat names of Layout::globals stand in for the per-layer
    // table, as BERT's layers are "encoder.layer.<i>." rather than "model.layers.<i>.".
    const auto add = [&](const std::string& hf, const std::string& gguf, std::vector<int64_t> ne) {
      l.globals.emplace_back(prefix + hf, gguf);
      l.expected.push_back({gguf, std::move(ne)});
    };
    const auto norm = [&](const std::string& hf, const std::string& gguf) {
      add(hf + ".weight", gguf + ".weight", {n_embd});
      add(hf + ".bias", gguf + ".bias", {n_embd});
    };
    add("embeddings.word_embeddings.weight", "token_embd.weight", {n_embd, n_vocab});
    add("embeddings.token_type_embeddings.weight", "token_types.weight", {n_embd, n_types});
    add("embeddings.position_embeddings.weight", "position_embd.weight", {n_embd, n_ctx});
    norm("embeddings.LayerNorm", "token_embd_norm");
    for (int64_t i = 0; i < n_layer; ++i) {
      const std::string h = "encoder.layer." + std::to_string(i) + ".";
      const std::string b = "blk." + std::to_string(i) + ".";
      const auto linear = [&](const std::string& hf, const std::string& gguf, int64_t in,
                              int64_t out) {
        add(h + hf + ".weight", b + gguf + ".weight", {in, out});
        add(h + hf + ".bias", b + gguf + ".bias", {out});
      };
      linear("attention.self.query", "attn_q", n_embd, n_embd);
      linear("attention.self.key", "attn_k", n_embd, n_embd);
      linear("attention.self.value", "attn_v", n_embd, n_embd);
      linear("attention.output.dense", "attn_output", n_embd, n_embd);
      norm(h + "attention.output.LayerNorm", b + "attn_output_norm");
      linear("intermediate.dense", "ffn_up", n_embd, n_ff);
      linear("output.dense", "ffn_down", n_ff, n_embd);
      norm(h + "output.LayerNorm", b + "layer_output_norm");
    }
    l.ignored_suffixes = {"embeddings.position_ids"};
    l.ignored_prefixes = {prefix + "pooler.", "cls."};
    return map_tensors(c, checkpoint, l);
  };
  return a;
}

}  // namespace corral::convert::arch
