#include "tokenizer/vocab.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>

#include "ml/gguf/metadata.h"

namespace corral::tokenizer {

TokenId Vocab::find(std::string_view text) const {
  const auto it = token_ids.find(text);
  return it == token_ids.end() ? kNoToken : it->second;
}

bool Vocab::is_special(TokenId id) const {
  const TokenType t = type(id);
  return t == TokenType::kControl || t == TokenType::kUnknown || t == TokenType::kUserDefined;
}

const Vocab::Merge* Vocab::find_merge(TokenId left, TokenId right) const {
  const uint64_t key =
      (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  const auto it = merges.find(key);
  return it == merges.end() ? nullptr : &it->second;
}

TokenId Vocab::byte_token(uint8_t byte) const {
  std::array<char, 8> hex{};
  std::snprintf(hex.data(), hex.size(), "<0x%02X>", byte);
  if (const TokenId id = find(hex.data()); id != kNoToken) return id;
  return find(std::string(1, static_cast<char>(byte)));
}

void Vocab::index(const std::string& source, bool allow_duplicates) {
  token_ids.clear();
  token_ids.reserve(tokens.size());
  max_token_bytes = 0;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i].text.empty()) continue;
    const auto [it, inserted] = token_ids.emplace(tokens[i].text, static_cast<TokenId>(i));
    if (!inserted && !allow_duplicates) {
      throw VocabError(source + ": duplicate token '" + tokens[i].text + "' has ids " +
                       std::to_string(it->second) + " and " + std::to_string(i));
    }
    max_token_bytes = std::max(max_token_bytes, tokens[i].text.size());
  }
}

void Vocab::add_merge(std::string_view left, std::string_view right, int32_t rank) {
  const TokenId l = find(left);
  const TokenId r = find(right);
  if (l == kNoToken || r == kNoToken) return;
  std::string joined(left);
  joined += right;
  const TokenId merged = find(joined);
  if (merged == kNoToken) return;
  const uint64_t key =
      (static_cast<uint64_t>(static_cast<uint32_t>(l)) << 32) | static_cast<uint32_t>(r);
  merges.emplace(key, Merge{rank, merged});  // the first (lowest) rank of a pair wins
}

namespace {

// Regexes as llama.cpp's llm_tokenizer_bpe holds them (src/llama-vocab.cpp); several replace
// Hugging Face's case-insensitive groups (?i:'s|...) by explicit classes.
constexpr const char* kGpt2 =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
constexpr const char* kLlama3 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr const char* kQwen2 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
    "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr const char* kDeepseekLlmLetters =
    "\\s?[A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}"
    "\\x{1C4}-\\x{293}\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}"
    "\\x{37F}\\x{386}\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}\\x{3F7}-"
    "\\x{481}\\x{48A}-\\x{52F}\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}"
    "\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}\\x{1D00}-\\x{1D2B}\\x{1D6B}-"
    "\\x{1D77}\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}\\x{1F20}-\\x{1F45}"
    "\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}\\x{1F5F}-\\x{1F7D}"
    "\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}\\x{1FC6}-\\x{1FCC}"
    "\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}\\x{1FF6}-"
    "\\x{1FFC}\\x{2102}\\x{2107}\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}"
    "\\x{2126}\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}\\x{2139}\\x{213C}-\\x{213F}"
    "\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}"
    "\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-"
    "\\x{A76F}\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}"
    "\\x{FB13}-\\x{FB17}\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}"
    "\\x{104B0}-\\x{104D3}\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}"
    "\\x{118A0}-\\x{118DF}\\x{1E900}-\\x{1E943}]+";

bool is_one_of(std::string_view name, std::initializer_list<std::string_view> names) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace

std::vector<std::string> pre_tokenizer_regexes(std::string_view pre) {
  if (pre.empty() || pre == "default") {
    return {"[\\p{P}\\$\\+<=>\\^~\\|]+", kGpt2, "\\p{N}+", "[0-9][0-9][0-9]"};
  }
  if (is_one_of(pre, {"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral",
                      "midm-2.0", "lfm2", "dbrx", "smaug-bpe", "chatglm-bpe", "glm4"})) {
    return {kLlama3};
  }
  if (pre == "deepseek-llm") {
    return {"[\\r\\n]", kDeepseekLlmLetters,        "\\s?[!-/:-~！-／：-～‘-‟　-。]+",
            "\\s+$",    "[一-龥ࠀ-一가-퟿]+", "\\p{N}+"};
  }
  if (pre == "deepseek-coder") {
    return {"[\\r\\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[一-龥ࠀ-一가-퟿]+", "\\p{N}"};
  }
  if (pre == "deepseek-v3") {
    return {"\\p{N}{1,3}", "[一-龥぀-ゟ゠-ヿ]+",
            "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?"
            "[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"};
  }
  if (pre == "falcon") {
    return {"[\\p{P}\\$\\+<=>\\^~\\|`]+", kGpt2, "[0-9][0-9][0-9]"};
  }
  if (is_one_of(pre,
                {"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva"})) {
    return {"\\p{N}", kGpt2};
  }
  if (is_one_of(pre, {"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v1-en",
                      "jina-v2-es", "jina-v2-de", "jina-v2-code", "roberta-bpe", "mpt", "olmo",
                      "jais", "trillion", "a.x-4.0", "mellum", "modern-bert"})) {
    return {kGpt2};
  }
  if (is_one_of(pre, {"qwen2", "deepseek-r1-qwen", "stablelm2", "hunyuan", "kormo"})) {
    return {kQwen2};
  }
  if (is_one_of(pre, {"poro-chat", "bloom", "gpt3-finnish"})) {
    return {" ?[^(\\s|.,!?…。，、।۔،)]+"};
  }
  if (is_one_of(pre, {"tekken"})) {
    return {
        "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|"
        "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|"
        "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"};
  }
  if (is_one_of(pre, {"gpt-4o", "minimax-m2"})) {
    return {
        "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"
        "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|"
        "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*"
        "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|"
        "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"};
  }
  throw VocabError("unknown pre-tokenizer type (tokenizer.ggml.pre): '" + std::string(pre) + "'");
}

namespace {

TokenId optional_id(const ml::gguf::Metadata& md, std::string_view key, TokenId fallback,
                    size_t n_tokens) {
  if (fallback != kNoToken && static_cast<size_t>(fallback) >= n_tokens) fallback = kNoToken;
  if (!md.contains(key)) return fallback;
  const int64_t id = md.get_integer(key);
  // Converters write 0xFFFFFFFF (or another out-of-range id) for "none": keep the default.
  if (id < 0 || static_cast<size_t>(id) >= n_tokens) return fallback;
  return static_cast<TokenId>(id);
}

void find_eot(Vocab& v) {
  for (const char* name : {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                           "<|end_of_text|>", "<EOT>"}) {
    if (v.eot == kNoToken) v.eot = v.find(name);
  }
  if (v.eom == kNoToken) v.eom = v.find("<|eom_id|>");
}

}  // namespace

Vocab load_gguf_vocab(const ml::gguf::Metadata& md) {
  const std::string& source = md.source();
  Vocab v;
  try {
    const std::string model = md.get_string("tokenizer.ggml.model");
    if (md.contains("tokenizer.ggml.pre")) v.pre = md.get_string("tokenizer.ggml.pre");

    const auto texts = md.get_array_of<std::string>("tokenizer.ggml.tokens");
    v.tokens.resize(texts.size());
    for (size_t i = 0; i < texts.size(); ++i) v.tokens[i].text = texts[i];

    if (const ml::gguf::Value* scores = md.find("tokenizer.ggml.scores")) {
      const ml::gguf::Array& a = scores->as_array();
      if (a.items.size() < texts.size()) {
        throw VocabError(source + ": tokenizer.ggml.scores has " + std::to_string(a.items.size()) +
                         " entries for " + std::to_string(texts.size()) + " tokens");
      }
      for (size_t i = 0; i < texts.size(); ++i) {
        const ml::gguf::Value& s = a.items[i];
        if (s.is<float>()) {
          v.tokens[i].score = s.as<float>();
        } else if (const auto n = s.as_integer()) {
          v.tokens[i].score = static_cast<float>(*n);
        } else {
          throw VocabError(source + ": tokenizer.ggml.scores[" + std::to_string(i) + "] is " +
                           s.type_string() + ", expected f32 or an integer");
        }
      }
    }
    if (md.contains("tokenizer.ggml.token_type")) {
      const auto types = md.get_array_of<int32_t>("tokenizer.ggml.token_type");
      if (types.size() < texts.size()) {
        throw VocabError(source + ": tokenizer.ggml.token_type has " +
                         std::to_string(types.size()) + " entries for " +
                         std::to_string(texts.size()) + " tokens");
      }
      for (size_t i = 0; i < texts.size(); ++i) {
        const int32_t t = types[i];
        v.tokens[i].type = t >= 0 && t <= 6 ? static_cast<TokenType>(t) : TokenType::kUndefined;
      }
    }
    v.index(source);

    TokenId bos = kNoToken, eos = kNoToken, unk = kNoToken, sep = kNoToken, pad = kNoToken;
    if (model == "llama") {
      v.model = Model::kSentencePiece;
      bos = 1, eos = 2, unk = 0;
      v.add_space_prefix = true;
      v.escape_whitespaces = true;
      v.byte_fallback = true;
      v.add_bos = true;
    } else if (model == "gpt2") {
      v.model = Model::kBpe;
      v.byte_level = true;
      v.clean_spaces = true;
      bos = eos = 11;  // llama.cpp's defaults for files that name none
      v.pre_regexes = pre_tokenizer_regexes(v.pre);
      if (is_one_of(v.pre, {"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral",
                            "midm-2.0", "lfm2"})) {
        v.ignore_merges = true;
        v.add_bos = true;
      }
      if (is_one_of(v.pre, {"deepseek-llm", "deepseek-coder", "deepseek-v3", "qwen2",
                            "deepseek-r1-qwen", "kormo", "command-r", "poro-chat"})) {
        v.clean_spaces = false;
      }
      if (is_one_of(v.pre, {"jina-v1-en", "jina-v2-code", "roberta-bpe"})) v.add_sep = true;
      const auto merges = md.get_array_of<std::string>("tokenizer.ggml.merges");
      v.merges.reserve(merges.size());
      for (size_t i = 0; i < merges.size(); ++i) {
        // "left right"; the split is at the first space after the first byte, because a
        // byte-level token is never a plain space but SentencePiece-style ones may start with one.
        const std::string& m = merges[i];
        const size_t space = m.find(' ', 1);
        if (space == std::string::npos) continue;
        v.add_merge(std::string_view(m).substr(0, space), std::string_view(m).substr(space + 1),
                    static_cast<int32_t>(i));
      }
    } else if (model == "bert") {
      v.model = Model::kWordPiece;
      bos = 101, unk = 100, sep = 102, pad = 0;
      v.add_bos = true;
      v.add_sep = true;
      v.clean_spaces = true;
      v.wordpiece_word_prefix = "\xE2\x96\x81";
      v.normalizer.bert = true;
      v.normalizer.lowercase = md.get_or<bool>("tokenizer.ggml.normalizer.lowercase", true);
      v.normalizer.strip_accents =
          md.get_or<bool>("tokenizer.ggml.normalizer.strip_accents", v.normalizer.lowercase);
    } else {
      throw VocabError(source + ": tokenizer.ggml.model '" + model +
                       "' is not supported (expected llama, gpt2 or bert)");
    }
    v.add_space_prefix = md.get_or<bool>("tokenizer.ggml.add_space_prefix", v.add_space_prefix);
    // A SentencePiece normalizer that collapses spaces; llama.cpp's default (and files written
    // without the key) keep every space.
    v.remove_extra_whitespaces = v.model == Model::kSentencePiece &&
                                 md.get_or<bool>("tokenizer.ggml.remove_extra_whitespaces", false);

    const size_t n = v.tokens.size();
    v.bos = optional_id(md, "tokenizer.ggml.bos_token_id", bos, n);
    v.eos = optional_id(md, "tokenizer.ggml.eos_token_id", eos, n);
    v.unk = optional_id(md, "tokenizer.ggml.unknown_token_id", unk, n);
    v.sep = optional_id(md, "tokenizer.ggml.seperator_token_id", sep, n);
    v.pad = optional_id(md, "tokenizer.ggml.padding_token_id", pad, n);
    v.eot = optional_id(md, "tokenizer.ggml.eot_token_id", kNoToken, n);
    v.eom = optional_id(md, "tokenizer.ggml.eom_token_id", kNoToken, n);
    if (const ml::gguf::Value* ids = md.find("tokenizer.ggml.eos_token_ids")) {
      for (const ml::gguf::Value& id : ids->as_array().items) {
        const auto n_id = id.as_integer();
        if (n_id && *n_id >= 0 && static_cast<size_t>(*n_id) < n) {
          v.eos_ids.push_back(static_cast<TokenId>(*n_id));
        }
      }
    }
    v.add_bos = md.get_or<bool>("tokenizer.ggml.add_bos_token", v.add_bos);
    v.add_eos = md.get_or<bool>("tokenizer.ggml.add_eos_token", v.add_eos);
    v.add_sep = md.get_or<bool>("tokenizer.ggml.add_sep_token", v.add_sep);
    find_eot(v);
    // GGUF has no per-token lstrip/rstrip; llama.cpp restores Phi-3's (its tokenizer.json gives
    // the chat tokens rstrip, so "<|user|>\n" loses the newline) from the model name.
    std::string name = md.get_or<std::string>("general.name", "");
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (name.find("phi-3") != std::string::npos || name.find("phi3") != std::string::npos) {
      for (Token& t : v.tokens) {
        if (t.type == TokenType::kControl || t.type == TokenType::kUserDefined ||
            t.type == TokenType::kUnknown || t.text == "</s>") {
          t.rstrip = t.text != "<unk>" && t.text != "<s>" && t.text != "<|endoftext|>";
        }
      }
    }
    if (v.add_bos && v.bos == kNoToken) v.add_bos = false;
    if (v.add_eos && v.eos == kNoToken) v.add_eos = false;
    if (v.add_sep && v.sep == kNoToken) v.add_sep = false;
  } catch (const ml::gguf::MetadataError& e) {
    throw VocabError(std::string("tokenizer: ") + e.what());
  }
  return v;
}

}  // namespace corral::tokenizer
