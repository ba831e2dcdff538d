// Tokenizer vocabulary: the tokens with their scores and types, the BPE merge ranks, the special
// token ids and every switch that decides how text becomes tokens. One Vocab is filled from GGUF
// metadata (the `tokenizer.ggml.*` keys as llama.cpp's converter writes them), from a Hugging
// Face folder (tokenizer.json + tokenizer_config.json) or from a SentencePiece ModelProto
// (tokenizer.model); the Tokenizer (tokenizer.h) runs on any of them.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace corral::ml::gguf {
class Metadata;
}

namespace corral::tokenizer {

using TokenId = int32_t;
inline constexpr TokenId kNoToken = -1;

// Numbered as GGUF's tokenizer.ggml.token_type stores them (llama_token_type).
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

enum class Model {
  kSentencePiece,  // llama.cpp "llama": score-driven merges of UTF-8 characters, byte fallback
  kBpe,            // "gpt2": ranked merges, byte-level alphabet or raw UTF-8 with byte fallback
  kWordPiece,      // "bert": greedy longest match per word
};

struct Token {
  std::string text;
  float score = 0.0f;
  TokenType type = TokenType::kNormal;
  // Added-token flags (tokenizer.json added_tokens): whitespace on that side is swallowed.
  bool lstrip = false;
  bool rstrip = false;
};

// Text normalization applied to ordinary text (never to special tokens), in this order.
struct Normalizer {
  bool nfc = false;
  bool nfkc = false;
  // BERT's BasicTokenizer: lowercase, strip accents (NFD, drop Mn), split punctuation and CJK.
  bool bert = false;
  bool lowercase = false;
  bool strip_accents = false;
};

class VocabError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Lets token_ids be searched with a string_view, without building a std::string per lookup.
struct TextHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

struct Vocab {
  Model model = Model::kSentencePiece;
  std::vector<Token> tokens;
  std::unordered_map<std::string, TokenId, TextHash, std::equal_to<>> token_ids;
  struct Merge {
    int32_t rank;
    TokenId merged;  // the token spelling left text + right text
  };
  // Keyed by (left id << 32 | right id).
  std::unordered_map<uint64_t, Merge> merges;

  TokenId bos = kNoToken, eos = kNoToken, unk = kNoToken, sep = kNoToken, pad = kNoToken;
  TokenId eot = kNoToken, eom = kNoToken;
  // Every end-of-generation id a model names (tokenizer.ggml.eos_token_ids, as Ollama's and
  // corral's converters write it from generation_config.json); may repeat eos.
  std::vector<TokenId> eos_ids;
  bool add_bos = false, add_eos = false, add_sep = false;

  // `tokenizer.ggml.pre` (pre-tokenizer name); for Hugging Face folders the name llama.cpp's
  // converter would have written, where the regexes identify one, else "custom".
  std::string pre = "default";
  // Sequence of regexes; each splits every piece into matches and the text between them
  // (Hugging Face's Split with behavior "Isolated").
  std::vector<std::string> pre_regexes;

  Normalizer normalizer;
  bool byte_level = false;        // GPT-2 byte<->unicode alphabet around BPE
  bool byte_fallback = false;     // unknown characters become <0xXX> tokens
  bool ignore_merges = false;     // a pre-token that is itself a token is emitted whole
  bool add_space_prefix = false;  // SentencePiece dummy prefix " " before the text
  // Where the prefix goes: llama.cpp puts it before the first fragment and after each special
  // token; Hugging Face's Metaspace ("always") before every fragment not already starting with
  // a space.
  bool space_prefix_every_fragment = false;
  bool space_prefix_unless_present = false;
  bool remove_extra_whitespaces = false;  // SentencePiece: strip and collapse spaces
  bool escape_whitespaces = false;        // ' ' -> U+2581 before the model
  bool clean_spaces = false;              // decode: " ." -> "." and friends (clean_up_tokenization)
  // WordPiece: the GGUF form marks word starts ("\u2581the"), the Hugging Face form marks
  // continuations ("##ing").
  std::string wordpiece_word_prefix;
  std::string wordpiece_continuation_prefix;
  size_t wordpiece_max_chars = 100;
  size_t max_token_bytes = 0;

  size_t size() const { return tokens.size(); }
  TokenId find(std::string_view text) const;
  const std::string& text(TokenId id) const { return tokens.at(static_cast<size_t>(id)).text; }
  TokenType type(TokenId id) const { return tokens.at(static_cast<size_t>(id)).type; }
  bool is_special(TokenId id) const;  // control, unknown or user-defined: matched before splitting
  const Merge* find_merge(TokenId left, TokenId right) const;
  // The <0xXX> token for a byte (SentencePiece/byte-fallback vocabularies), else the token
  // spelling that byte (the byte-level alphabet), else kNoToken.
  TokenId byte_token(uint8_t byte) const;

  // Fills token_ids and max_token_bytes from tokens; throws VocabError naming `source` on a
  // duplicate token.
  // With allow_duplicates (Hugging Face files, where an added token may repeat a vocabulary
  // entry) the first id of a text wins.
  void index(const std::string& source, bool allow_duplicates = false);
  // Adds the merge of two token texts at `rank`; skipped when either half or the merged text is
  // not a token (such a merge can never apply).
  void add_merge(std::string_view left, std::string_view right, int32_t rank);
};

// From GGUF metadata (tokenizer.ggml.model, tokens, scores, token_type, merges, *_token_id,
// add_*_token, pre). Throws VocabError naming the source and key on missing or invalid data.
Vocab load_gguf_vocab(const ml::gguf::Metadata& metadata);

// From a Hugging Face tokenizer folder (tokenizer.json and, when present, tokenizer_config.json).
Vocab load_hf_vocab(const std::string& dir);

// From a SentencePiece model file (tokenizer.model / tok512.model): a ModelProto read with a
// minimal protobuf wire-format reader. Only BPE-type models are supported.
Vocab load_sentencepiece_vocab(const std::string& path);

// The regex sequence llama.cpp uses for a `tokenizer.ggml.pre` name; VocabError when unknown.
std::vector<std::string> pre_tokenizer_regexes(std::string_view pre);

}  // namespace corral::tokenizer
