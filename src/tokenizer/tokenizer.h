// Text <-> token ids for SentencePiece, byte-level BPE and WordPiece vocabularies.
//
// Encoding follows llama.cpp's llama_vocab::tokenize (src/llama-vocab.cpp) and Hugging Face
// tokenizers: special and added tokens are cut out first (leftmost, longest), every remaining
// fragment is normalized, pre-tokenized and run through the model, and BOS/EOS/SEP are added
// as the vocabulary asks.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "tokenizer/pretokenize.h"
#include "tokenizer/vocab.h"

namespace corral::tokenizer {

class Tokenizer {
 public:
  explicit Tokenizer(Vocab vocab);
  static Tokenizer from_gguf(const ml::gguf::Metadata& metadata) {
    return Tokenizer(load_gguf_vocab(metadata));
  }
  static Tokenizer from_hf(const std::string& dir) { return Tokenizer(load_hf_vocab(dir)); }
  static Tokenizer from_sentencepiece(const std::string& path) {
    return Tokenizer(load_sentencepiece_vocab(path));
  }

  const Vocab& vocab() const { return vocab_; }

  // add_special: BOS/EOS/SEP as the vocabulary's add_* flags say. parse_special: control tokens
  // written in the text ("<|im_start|>") become their ids; user-defined tokens always do.
  std::vector<TokenId> encode(std::string_view text, bool add_special = true,
                              bool parse_special = true) const;

  // The bytes one token stands for (may be part of a UTF-8 sequence). Control and unknown
  // tokens give their text when render_special, else nothing.
  std::string token_to_piece(TokenId id, bool render_special = true) const;

  // Concatenated pieces; the SentencePiece dummy-prefix space is dropped from the first piece,
  // and clean_spaces (when the vocabulary asks) is applied.
  std::string decode(std::span<const TokenId> ids, bool skip_special = false) const;

 private:
  struct Fragment {
    std::string_view text;
    TokenId token = kNoToken;
  };
  std::vector<Fragment> partition(std::string_view text, bool parse_special) const;
  void encode_fragment(std::string_view text, bool after_special, std::vector<TokenId>& out) const;
  std::string normalize(std::string_view text) const;
  void add_space_prefix(std::string& text, bool after_special) const;

  // Cuts text where no token can span the boundary (no token holds that pair of adjacent
  // characters). Merging each chunk alone gives exactly the result of merging the whole text,
  // with small priority queues instead of one the size of the prompt.
  std::vector<std::string_view> independent_chunks(std::string_view text) const;
  void encode_spm(std::string_view text, std::vector<TokenId>& out) const;
  void encode_spm_chunk(std::string_view text, std::vector<TokenId>& out) const;
  void encode_bpe_word(std::string_view word, std::vector<TokenId>& out) const;
  void encode_wordpiece(std::string_view text, std::vector<TokenId>& out) const;
  void push_bytes(std::string_view bytes, std::vector<TokenId>& out) const;

  Vocab vocab_;
  std::vector<Regex> regexes_;
  // Adjacent code-point pairs (first << 32 | second) found inside any token.
  std::unordered_set<uint64_t> joined_pairs_;
  // Trie over the texts of special/added tokens: node -> (byte -> child), node -> token.
  std::vector<std::vector<std::pair<uint8_t, int32_t>>> trie_children_;
  std::vector<TokenId> trie_token_;
};

// Turns ids into text one token at a time, never emitting half of a UTF-8 character: bytes of
// an incomplete sequence (e.g. the first of two <0xXX> byte-fallback tokens) are held back until
// the sequence completes.
class StreamingDecoder {
 public:
  explicit StreamingDecoder(const Tokenizer& tokenizer, bool skip_special = false)
      : tokenizer_(tokenizer), skip_special_(skip_special) {}
  // Text that is complete after this token (possibly empty).
  std::string push(TokenId id);
  // Whatever is still held back (an incomplete sequence at the very end), as raw bytes.
  std::string flush();

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_;
  bool at_start_ = true;
  std::string pending_;
};

}  // namespace corral::tokenizer
