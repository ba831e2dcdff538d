#include "convert/tokenizer_json.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <unordered_map>
#include <utility>

#include "tokenizer/vocab.h"

namespace corral::convert {

namespace {

using nlohmann::json;
using tokenizer::TokenId;
using tokenizer::TokenType;
using tokenizer::Vocab;

constexpr std::string_view kSpaceMark = "\xE2\x96\x81";

bool exists(const std::string& path) { return std::filesystem::is_regular_file(path); }

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

json read_json_or_empty(const std::string& path) {
  if (!exists(path)) return json::object();
  try {
    json j = json::parse(read_text(path));
    return j.is_object() ? j : json::object();
  } catch (const json::exception& e) {
    throw std::runtime_error(path + ": not valid JSON: " + e.what());
  }
}

// gguf-py's TextModel.does_token_look_special: added tokens some models forget to mark special.
bool looks_special(std::string_view t) {
  if (t == "<pad>" || t == "<mask>" || t == "<2mass>" || t == "[@BOS@]") return true;
  if (t.starts_with("<|") && t.ends_with("|>")) return true;
  if (t.starts_with("<\xEF\xBD\x9C") && t.ends_with("\xEF\xBD\x9C>")) return true;
  return t.starts_with("<unused") && t.ends_with(">");
}

// A special token named in tokenizer_config.json: a string or {"content": ...}.
std::optional<std::string> token_name(const json& config, const std::string& key) {
  const auto it = config.find(key);
  if (it == config.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
    return (*it)["content"].get<std::string>();
  }
  return std::nullopt;
}

// An id or a list of ids (the first is the primary one) from a config file.
std::vector<TokenId> ids_of(const json& config, const char* key) {
  std::vector<TokenId> out;
  const auto it = config.find(key);
  if (it == config.end()) return out;
  if (it->is_number_integer()) out.push_back(it->get<TokenId>());
  if (it->is_array()) {
    for (const json& v : *it) {
      if (v.is_number_integer()) out.push_back(v.get<TokenId>());
    }
  }
  return out;
}

struct Tokens {
  std::vector<std::string> text;
  std::vector<float> scores;
  std::vector<int32_t> types;

  void pad_to(size_t n) {
    for (size_t i = text.size(); i < n; ++i) {
      text.push_back("[PAD" + std::to_string(i) + "]");
      scores.push_back(-1000.0f);
      types.push_back(static_cast<int32_t>(TokenType::kUnused));
    }
  }
  TokenId find(std::string_view t) const {
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] == t) return static_cast<TokenId>(i);
    }
    return tokenizer::kNoToken;
  }
};

// The merges of a tokenizer.json BPE model as "left right" strings, in rank order (files store
// either strings or [left, right] pairs).
std::vector<std::string> merges_of(const json& model, const std::string& path) {
  std::vector<std::string> out;
  const auto it = model.find("merges");
  if (it == model.end() || !it->is_array()) return out;
  out.reserve(it->size());
  for (const json& m : *it) {
    if (m.is_string()) {
      out.push_back(m.get<std::string>());
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      out.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
    } else {
      throw std::runtime_error(path + ": model.merges holds " + m.dump().substr(0, 80) +
                               ", expected \"a b\" or [\"a\", \"b\"]");
    }
  }
  return out;
}

void set_string_array(ml::gguf::Metadata& md, const char* key, std::vector<std::string> items) {
  std::vector<ml::gguf::Value> values;
  values.reserve(items.size());
  for (std::string& s : items) values.emplace_back(std::move(s));
  md.set(key, ml::gguf::Value::array(ml::gguf::ValueType::kString, std::move(values)));
}

template <class T>
void set_array(ml::gguf::Metadata& md, const char* key, const std::vector<T>& items) {
  std::vector<ml::gguf::Value> values(items.begin(), items.end());
  md.set(key, ml::gguf::Value::array(ml::gguf::Value::type_of<T>(), std::move(values)));
}

}  // namespace

void add_tokenizer(const std::string& dir, const HfConfig& config, int64_t n_vocab,
                   bool prefer_sentencepiece, ml::gguf::Metadata& md) {
  const std::string spm_path = dir + "/tokenizer.model";
  const std::string json_path = dir + "/tokenizer.json";
  const json tok_config = read_json_or_empty(dir + "/tokenizer_config.json");
  const bool use_spm = prefer_sentencepiece && exists(spm_path);
  if (!use_spm && !exists(json_path)) {
    throw std::runtime_error(dir + ": no tokenizer.json or tokenizer.model");
  }

  // tokenizer.json also decides BOS/EOS insertion (its post-processor) for SentencePiece models.
  std::optional<Vocab> hf;
  if (exists(json_path)) {
    try {
      hf = tokenizer::load_hf_vocab(dir);
    } catch (const tokenizer::VocabError& e) {
      if (!use_spm) throw std::runtime_error(e.what());
    }
  }

  Tokens t;
  std::string model, pre;
  std::vector<std::string> merges;
  bool write_scores = false;
  std::optional<std::pair<bool, bool>> spm_normalizer;  // add_space_prefix, remove_extra_ws
  TokenId bos = tokenizer::kNoToken, eos = tokenizer::kNoToken, unk = tokenizer::kNoToken;
  TokenId pad = tokenizer::kNoToken, sep = tokenizer::kNoToken;
  bool wordpiece = false;

  if (use_spm) {
    const Vocab v = tokenizer::load_sentencepiece_vocab(spm_path);
    model = "llama";
    pre = "default";
    write_scores = true;
    // The normalizer's settings, so the GGUF encodes as tokenizer.model does (llama.cpp reads
    // both keys; its own llama converter omits them and so keeps runs of spaces).
    spm_normalizer = std::pair{v.add_space_prefix, v.remove_extra_whitespaces};
    for (const tokenizer::Token& token : v.tokens) {
      t.text.push_back(token.text);
      t.scores.push_back(token.score);
      t.types.push_back(static_cast<int32_t>(token.type));
    }
    t.pad_to(static_cast<size_t>(std::max<int64_t>(n_vocab, 0)));
    // tokenizer_config.json's added tokens override the pieces at their ids.
    if (const auto it = tok_config.find("added_tokens_decoder");
        it != tok_config.end() && it->is_object()) {
      for (const auto& [key, data] : it->items()) {
        size_t id = 0;
        try {
          id = std::stoul(key);
        } catch (const std::exception&) {
          continue;
        }
        if (id >= t.text.size() || !data.is_object() || !data.contains("content")) continue;
        std::string content = data["content"].get<std::string>();
        if (data.value("special", false) || looks_special(content)) {
          t.types[id] = static_cast<int32_t>(TokenType::kControl);
        } else {
          for (size_t p; (p = content.find(kSpaceMark)) != std::string::npos;) {
            content.replace(p, kSpaceMark.size(), " ");
          }
          t.types[id] = static_cast<int32_t>(TokenType::kUserDefined);
        }
        t.scores[id] = -1000.0f;
        t.text[id] = std::move(content);
      }
    }
    bos = v.bos, eos = v.eos, unk = v.unk;
  } else if (hf && hf->model == tokenizer::Model::kWordPiece) {
    // llama.cpp's BertModel.set_vocab: the "phantom space" form, where a word's first piece
    // starts with U+2581 and a continuation piece loses its "##"; [BRACKETED] tokens stay.
    const Vocab& v = *hf;
    model = "bert";
    pre = "default";
    wordpiece = true;
    const std::string& cont = v.wordpiece_continuation_prefix;
    for (const tokenizer::Token& token : v.tokens) {
      std::string text = token.text;
      if (!(text.starts_with("[") && text.ends_with("]"))) {
        text = !cont.empty() && text.starts_with(cont) ? text.substr(cont.size())
                                                       : std::string(kSpaceMark) + text;
      }
      t.text.push_back(std::move(text));
      t.scores.push_back(0.0f);
      t.types.push_back(static_cast<int32_t>(token.type));
    }
    t.pad_to(static_cast<size_t>(std::max<int64_t>(n_vocab, 0)));
    bos = v.bos, eos = v.eos, unk = v.unk, pad = v.pad, sep = v.sep;
  } else {
    const Vocab& v = *hf;
    if (v.model != tokenizer::Model::kBpe) {
      throw std::runtime_error(json_path + ": only BPE tokenizers can be converted");
    }
    json tj;
    try {
      tj = json::parse(read_text(json_path));
    } catch (const json::exception& e) {
      throw std::runtime_error(json_path + ": not valid JSON: " + e.what());
    }
    merges = merges_of(tj.at("model"), json_path);
    if (v.byte_level) {
      model = "gpt2";
      pre = v.pre;
      if (pre == "custom") {
        throw std::runtime_error(
            json_path +
            ": its pre-tokenizer is not one llama.cpp knows by name "
            "(llama-bpe, qwen2, gpt-2), so the converted file could not be loaded");
      }
    } else if (v.byte_fallback) {
      // A SentencePiece model exported as BPE: GGUF's "llama" tokenizer, which merges by score;
      // a merge's score is minus its rank, so the earliest merge wins as in BPE.
      model = "llama";
      pre = "default";
      write_scores = true;
      // Whether the normalizer prepends "▁" (Gemma 3's does not: llama.cpp's Gemma3Model writes
      // add_space_prefix false); the GGUF reader's default would otherwise prepend it.
      // tokenizer.json carries no whitespace collapsing: runs of spaces stay.
      spm_normalizer = std::pair{v.add_space_prefix, false};
    } else {
      throw std::runtime_error(json_path +
                               ": a BPE tokenizer without byte-level alphabet or byte fallback "
                               "cannot be expressed in GGUF");
    }
    for (size_t i = 0; i < v.tokens.size(); ++i) {
      const tokenizer::Token& token = v.tokens[i];
      std::string text = token.text;
      TokenType type = token.type;
      if (static_cast<TokenId>(i) == v.unk) {
        type = TokenType::kUnknown;
      } else if (type == TokenType::kUnused && text.empty()) {
        text = "[PAD" + std::to_string(i) + "]";
      } else if (type == TokenType::kUserDefined) {
        if (looks_special(text)) {
          type = TokenType::kControl;
        } else {
          for (size_t p; (p = text.find(kSpaceMark)) != std::string::npos;) {
            text.replace(p, kSpaceMark.size(), " ");
          }
        }
      }
      t.text.push_back(std::move(text));
      t.scores.push_back(type == TokenType::kNormal || type == TokenType::kByte ? 0.0f : -1000.0f);
      t.types.push_back(static_cast<int32_t>(type));
    }
    if (write_scores) {
      std::unordered_map<std::string, size_t> ids;
      for (size_t i = 0; i < t.text.size(); ++i) ids.emplace(t.text[i], i);
      std::vector<bool> scored(t.text.size(), false);
      for (size_t rank = 0; rank < merges.size(); ++rank) {
        const std::string& m = merges[rank];
        const size_t space = m.find(' ', 1);
        if (space == std::string::npos) continue;
        const auto it = ids.find(m.substr(0, space) + m.substr(space + 1));
        if (it == ids.end() || scored[it->second]) continue;
        scored[it->second] = true;
        t.scores[it->second] = -static_cast<float>(rank + 1);
      }
      merges.clear();  // "llama" tokenizers merge by score; llama.cpp writes no merges for them
    }
    t.pad_to(static_cast<size_t>(std::max<int64_t>(n_vocab, 0)));
    bos = v.bos, eos = v.eos, unk = v.unk, pad = v.pad, sep = v.sep;
  }

  // SpecialVocab: names from tokenizer_config.json first, then ids from config.json.
  const auto special = [&](const char* name, TokenId& id) {
    if (const auto n = token_name(tok_config, std::string(name) + "_token")) {
      if (const TokenId found = t.find(*n); found != tokenizer::kNoToken) id = found;
    }
    if (id == tokenizer::kNoToken) {
      const auto ids = ids_of(config.json(), (std::string(name) + "_token_id").c_str());
      if (!ids.empty() && ids[0] >= 0 && static_cast<size_t>(ids[0]) < t.text.size()) {
        id = ids[0];
      }
    }
  };
  special("bos", bos);
  special("eos", eos);
  special("unk", unk);
  special("sep", sep);
  special("pad", pad);

  md.set("tokenizer.ggml.model", model);
  md.set("tokenizer.ggml.pre", pre);
  set_string_array(md, "tokenizer.ggml.tokens", std::move(t.text));
  if (write_scores) set_array(md, "tokenizer.ggml.scores", t.scores);
  set_array(md, "tokenizer.ggml.token_type", t.types);
  if (!merges.empty()) set_string_array(md, "tokenizer.ggml.merges", std::move(merges));
  if (spm_normalizer) {
    md.set("tokenizer.ggml.add_space_prefix", spm_normalizer->first);
    md.set("tokenizer.ggml.remove_extra_whitespaces", spm_normalizer->second);
  }
  const auto put_id = [&](const char* key, TokenId id) {
    if (id != tokenizer::kNoToken) md.set(key, static_cast<uint32_t>(id));
  };
  put_id("tokenizer.ggml.bos_token_id", bos);
  put_id("tokenizer.ggml.eos_token_id", eos);
  put_id("tokenizer.ggml.unknown_token_id", unk);
  put_id("tokenizer.ggml.seperator_token_id", sep);
  put_id("tokenizer.ggml.padding_token_id", pad);

  if (wordpiece) {
    // gguf-py's SpecialVocab writes BERT's [CLS] as cls_token_id as well as BOS, and [MASK].
    put_id("tokenizer.ggml.cls_token_id", bos);
    TokenId mask = tokenizer::kNoToken;
    special("mask", mask);
    put_id("tokenizer.ggml.mask_token_id", mask);
  }
  if (hf) {
    md.set("tokenizer.ggml.add_bos_token", hf->add_bos);
    md.set("tokenizer.ggml.add_eos_token", hf->add_eos);
    if (wordpiece) md.set("tokenizer.ggml.add_sep_token", hf->add_sep);
  } else {
    if (const auto it = tok_config.find("add_bos_token");
        it != tok_config.end() && it->is_boolean()) {
      md.set("tokenizer.ggml.add_bos_token", it->get<bool>());
    }
    if (const auto it = tok_config.find("add_eos_token");
        it != tok_config.end() && it->is_boolean()) {
      md.set("tokenizer.ggml.add_eos_token", it->get<bool>());
    }
  }

  // tokenizer_config.json's template wins over chat_template.jinja / chat_template.json, as in
  // gguf-py's SpecialVocab; a list of named templates gives tokenizer.chat_template.<name>.
  std::optional<std::string> chat_template;
  if (exists(dir + "/chat_template.jinja")) {
    chat_template = read_text(dir + "/chat_template.jinja");
  } else if (exists(dir + "/chat_template.json")) {
    const json j = read_json_or_empty(dir + "/chat_template.json");
    if (j.contains("chat_template") && j["chat_template"].is_string()) {
      chat_template = j["chat_template"].get<std::string>();
    }
  }
  if (const auto it = tok_config.find("chat_template"); it != tok_config.end()) {
    if (it->is_string()) {
      chat_template = it->get<std::string>();
    } else if (it->is_array()) {
      for (const json& entry : *it) {
        if (!entry.is_object() || !entry.contains("name") || !entry.contains("template")) continue;
        const std::string name = entry["name"].get<std::string>();
        if (name == "default") {
          chat_template = entry["template"].get<std::string>();
        } else {
          md.set("tokenizer.chat_template." + name, entry["template"].get<std::string>());
        }
      }
    }
  }
  if (chat_template) md.set("tokenizer.chat_template", *chat_template);

  // Models that end a turn with one of several tokens list them all (Llama 3.x: <|eot_id|>,
  // <|eom_id|>, <|end_of_text|>); the runtime must stop on each.
  std::vector<TokenId> eos_ids;
  const auto add_eos = [&](TokenId id) {
    if (id >= 0 && static_cast<size_t>(id) < md.get_array("tokenizer.ggml.tokens").items.size() &&
        std::find(eos_ids.begin(), eos_ids.end(), id) == eos_ids.end()) {
      eos_ids.push_back(id);
    }
  };
  add_eos(eos);
  for (const TokenId id : ids_of(config.json(), "eos_token_id")) add_eos(id);
  const json generation = read_json_or_empty(dir + "/generation_config.json");
  for (const TokenId id : ids_of(generation, "eos_token_id")) add_eos(id);
  if (eos_ids.size() > 1) {
    std::vector<int32_t> ids(eos_ids.begin(), eos_ids.end());
    set_array(md, kEosTokenIdsKey, ids);
  }
}

}  // namespace corral::convert
