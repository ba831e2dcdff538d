// Hugging Face tokenizer folders: tokenizer.json (model, normalizer, pre_tokenizer,
// post_processor, added_tokens) and tokenizer_config.json (special token names, add_*_token,
// clean_up_tokenization_spaces). Each component is mapped onto the Vocab switches the encoder
// already has; a component this mapping does not cover is rejected by name instead of being
// silently ignored.
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "tokenizer/vocab.h"

namespace corral::tokenizer {

namespace {

using nlohmann::json;

constexpr std::string_view kSpaceMark = "\xE2\x96\x81";

// Hugging Face's own pre-tokenizer patterns, by the name llama.cpp's converter gives them.
constexpr const char* kHfLlama3 =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+"
    "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr const char* kHfQwen2 =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+"
    "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
// ByteLevel's own split (use_regex), GPT-2's pattern.
constexpr const char* kHfGpt2 =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

json read_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw VocabError(path + ": cannot open");
  // Parsing from memory is several times faster than from the stream adapter.
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw VocabError(path + ": invalid JSON: " + e.what());
  }
}

std::string escape_regex(std::string_view literal) {
  std::string out;
  for (const char c : literal) {
    if (std::string_view("\\^$.|?*+()[]{}").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

// A special token named in tokenizer_config.json: a string or {"content": ...}.
std::optional<std::string> token_name(const json& config, const char* key) {
  const auto it = config.find(key);
  if (it == config.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content")) return (*it)["content"].get<std::string>();
  return std::nullopt;
}

struct Loader {
  std::string source;
  Vocab& v;

  [[noreturn]] void unsupported(const std::string& what, const json& node) const {
    throw VocabError(source + ": unsupported " + what + ": " + node.dump().substr(0, 200));
  }

  void normalizer(const json& n) {
    if (n.is_null()) return;
    const std::string type = n.at("type").get<std::string>();
    if (type == "Sequence") {
      for (const json& item : n.at("normalizers")) normalizer(item);
    } else if (type == "NFC") {
      v.normalizer.nfc = true;
    } else if (type == "NFKC") {
      v.normalizer.nfkc = true;
    } else if (type == "Replace" && n.at("pattern").contains("String") &&
               n.at("pattern").at("String") == " " && n.at("content") == kSpaceMark) {
      v.escape_whitespaces = true;
    } else if (type == "Prepend" && n.at("prepend") == kSpaceMark) {
      v.add_space_prefix = true;
      v.space_prefix_every_fragment = true;
    } else if (type == "BertNormalizer") {
      v.normalizer.bert = true;
      v.normalizer.lowercase = n.value("lowercase", true);
      const json& strip = n.value("strip_accents", json());
      v.normalizer.strip_accents = strip.is_null() ? v.normalizer.lowercase : strip.get<bool>();
    } else if (type == "Lowercase" && v.model == Model::kWordPiece) {
      v.normalizer.lowercase = true;
    } else {
      unsupported("normalizer", n);
    }
  }

  void pre_tokenizer(const json& p) {
    if (p.is_null()) return;
    const std::string type = p.at("type").get<std::string>();
    if (type == "Sequence") {
      for (const json& item : p.at("pretokenizers")) pre_tokenizer(item);
    } else if (type == "Split") {
      const json& pattern = p.at("pattern");
      const std::string behavior = p.value("behavior", "Isolated");
      const bool invert = p.value("invert", false);
      if (pattern.contains("String") && v.escape_whitespaces && pattern.at("String") == " ") {
        return;  // the normalizer already turned every space into U+2581: nothing to split
      }
      if (behavior != "Isolated" || invert) unsupported("Split behavior", p);
      v.pre_regexes.push_back(pattern.contains("Regex")
                                  ? pattern.at("Regex").get<std::string>()
                                  : escape_regex(pattern.at("String").get<std::string>()));
    } else if (type == "ByteLevel") {
      v.byte_level = true;
      if (p.value("add_prefix_space", false)) unsupported("ByteLevel add_prefix_space", p);
      if (p.value("use_regex", true)) v.pre_regexes.push_back(kHfGpt2);
    } else if (type == "Metaspace") {
      if (p.value("replacement", std::string(kSpaceMark)) != kSpaceMark) {
        unsupported("Metaspace replacement", p);
      }
      v.escape_whitespaces = true;
      const std::string scheme = p.value("prepend_scheme", "always");
      if (scheme != "never") {
        v.add_space_prefix = true;
        v.space_prefix_every_fragment = scheme == "always";
        v.space_prefix_unless_present = true;
      }
      // split: every U+2581 starts a new piece.
      if (p.value("split", true)) v.pre_regexes.push_back("\\x{2581}[^\\x{2581}]*|[^\\x{2581}]+");
    } else if (type == "Digits") {
      v.pre_regexes.push_back(p.value("individual_digits", false) ? "\\p{N}" : "\\p{N}+");
    } else if (type == "BertPreTokenizer" && v.model == Model::kWordPiece) {
      // Part of the WordPiece path (whitespace and punctuation splitting).
    } else {
      unsupported("pre_tokenizer", p);
    }
  }

  // Returns true when the post-processor decided BOS/EOS.
  bool post_processor(const json& p) {
    if (p.is_null()) return false;
    const std::string type = p.at("type").get<std::string>();
    if (type == "Sequence") {
      bool decided = false;
      for (const json& item : p.at("processors")) decided = post_processor(item) || decided;
      return decided;
    }
    if (type == "TemplateProcessing") {
      const json& single = p.at("single");
      const auto special_id = [&](const json& item) -> TokenId {
        const std::string name = item.at("SpecialToken").at("id").get<std::string>();
        const json& specials = p.at("special_tokens");
        if (specials.contains(name) && !specials.at(name).at("ids").empty()) {
          return specials.at(name).at("ids").at(0).get<TokenId>();
        }
        return v.find(name);
      };
      v.add_bos = v.add_eos = false;
      if (!single.empty() && single.front().contains("SpecialToken")) {
        v.bos = special_id(single.front());
        v.add_bos = v.bos != kNoToken;
      }
      if (single.size() > 1 && single.back().contains("SpecialToken")) {
        const TokenId last = special_id(single.back());
        if (v.model == Model::kWordPiece) {
          v.sep = last;
          v.add_sep = last != kNoToken;
        } else {
          v.eos = last;
          v.add_eos = last != kNoToken;
        }
      }
      return true;
    }
    if (type == "BertProcessing" || type == "RobertaProcessing") {
      v.bos = p.at("cls").at(1).get<TokenId>();
      v.sep = p.at("sep").at(1).get<TokenId>();
      v.add_bos = v.add_sep = true;
      return true;
    }
    if (type == "ByteLevel") return false;
    unsupported("post_processor", p);
  }

  void identify_pre() {
    if (v.model != Model::kBpe) return;
    const auto& r = v.pre_regexes;
    // An empty list is not llama.cpp's "default" (which has regexes of its own).
    if (r.empty()) {
      v.pre = "custom";
    } else if (r.size() == 1 && r[0] == kHfLlama3) {
      v.pre = "llama-bpe";
    } else if (r.size() == 1 && r[0] == kHfQwen2) {
      v.pre = "qwen2";
    } else if (r.size() == 1 && r[0] == kHfGpt2) {
      v.pre = "gpt-2";
    } else {
      v.pre = "custom";
    }
  }
};

}  // namespace

Vocab load_hf_vocab(const std::string& dir) {
  const std::string path = dir + "/tokenizer.json";
  const json tj = read_json(path);
  json config = json::object();
  if (std::ifstream(dir + "/tokenizer_config.json")) {
    config = read_json(dir + "/tokenizer_config.json");
  }
  Vocab v;
  Loader load{path, v};
  try {
    const json& model = tj.at("model");
    const std::string type = model.at("type").get<std::string>();
    if (type == "BPE") {
      v.model = Model::kBpe;
    } else if (type == "WordPiece") {
      v.model = Model::kWordPiece;
      v.wordpiece_continuation_prefix = model.value("continuing_subword_prefix", "##");
      v.wordpiece_max_chars = model.value("max_input_chars_per_word", size_t{100});
      v.clean_spaces = true;
    } else {
      throw VocabError(path + ": model type '" + type + "' is not supported (BPE, WordPiece)");
    }

    // Ids may have gaps and added tokens may extend the range: size by the largest id.
    size_t n = 0;
    for (const auto& [text, id] : model.at("vocab").items()) {
      n = std::max(n, id.get<size_t>() + 1);
    }
    for (const json& a : tj.value("added_tokens", json::array())) {
      n = std::max(n, a.at("id").get<size_t>() + 1);
    }
    // Real vocabularies stay far below this; a larger id is a corrupt file, not a reason to
    // allocate gigabytes.
    constexpr size_t kMaxTokens = size_t{1} << 24;
    if (n > kMaxTokens)
      throw VocabError(path + ": token id " + std::to_string(n - 1) + " too large");
    v.tokens.resize(n);
    for (Token& t : v.tokens) t.type = TokenType::kUnused;
    for (const auto& [text, id] : model.at("vocab").items()) {
      Token& t = v.tokens[id.get<size_t>()];
      t.text = text;
      t.type = TokenType::kNormal;
    }
    v.byte_fallback = model.value("byte_fallback", false);
    if (v.byte_fallback) {
      for (Token& t : v.tokens) {
        if (t.text.size() == 6 && t.text.starts_with("<0x") && t.text.back() == '>') {
          t.type = TokenType::kByte;
        }
      }
    }
    for (const json& a : tj.value("added_tokens", json::array())) {
      Token& t = v.tokens[a.at("id").get<size_t>()];
      t.text = a.at("content").get<std::string>();
      t.type = a.value("special", false) ? TokenType::kControl : TokenType::kUserDefined;
      t.lstrip = a.value("lstrip", false);
      t.rstrip = a.value("rstrip", false);
    }
    v.index(path, /*allow_duplicates=*/true);

    if (v.model == Model::kBpe) {
      v.ignore_merges = model.value("ignore_merges", false);
      const json& merges = model.at("merges");
      v.merges.reserve(merges.size());
      for (size_t i = 0; i < merges.size(); ++i) {
        const json& m = merges[i];
        if (m.is_array()) {
          v.add_merge(m.at(0).get<std::string>(), m.at(1).get<std::string>(),
                      static_cast<int32_t>(i));
        } else {
          const std::string s = m.get<std::string>();
          const size_t space = s.find(' ', 1);
          if (space == std::string::npos) continue;
          v.add_merge(std::string_view(s).substr(0, space), std::string_view(s).substr(space + 1),
                      static_cast<int32_t>(i));
        }
      }
    }
    const json& unk = model.value("unk_token", json());
    if (unk.is_string()) v.unk = v.find(unk.get<std::string>());

    load.normalizer(tj.value("normalizer", json()));
    load.pre_tokenizer(tj.value("pre_tokenizer", json()));

    if (const auto name = token_name(config, "bos_token")) v.bos = v.find(*name);
    if (const auto name = token_name(config, "eos_token")) v.eos = v.find(*name);
    if (const auto name = token_name(config, "unk_token")) v.unk = v.find(*name);
    if (const auto name = token_name(config, "pad_token")) v.pad = v.find(*name);
    if (const auto name = token_name(config, "sep_token")) v.sep = v.find(*name);
    if (const auto name = token_name(config, "cls_token"); name && v.model == Model::kWordPiece) {
      v.bos = v.find(*name);
    }
    if (!load.post_processor(tj.value("post_processor", json()))) {
      v.add_bos = config.value("add_bos_token", false) && v.bos != kNoToken;
      v.add_eos = config.value("add_eos_token", false) && v.eos != kNoToken;
    }
    if (config.contains("clean_up_tokenization_spaces") &&
        config["clean_up_tokenization_spaces"].is_boolean()) {
      v.clean_spaces = config["clean_up_tokenization_spaces"].get<bool>();
    }
    for (const char* name : {"<|eot_id|>", "<|im_end|>", "<end_of_turn>", "<|end|>"}) {
      if (v.eot == kNoToken) v.eot = v.find(name);
    }
    load.identify_pre();
  } catch (const json::exception& e) {
    throw VocabError(path + ": " + e.what());
  }
  return v;
}

}  // namespace corral::tokenizer
