// SentencePiece ModelProto (sentencepiece_model.proto), read with a minimal protobuf
// wire-format reader. Fields used:
//   ModelProto      1: repeated SentencePiece pieces, 2: TrainerSpec, 3: NormalizerSpec
//   SentencePiece   1: piece (string), 2: score (float), 3: type (NORMAL=1 UNKNOWN=2 CONTROL=3
//                   USER_DEFINED=4 UNUSED=5 BYTE=6 — the numbering GGUF token types reuse)
//   TrainerSpec     3: model_type (UNIGRAM=1 BPE=2 WORD=3 CHAR=4)
//   NormalizerSpec  1: name, 3: add_dummy_prefix, 4: remove_extra_whitespaces,
//                   5: escape_whitespaces (the three booleans default to true)
#include <cstring>
#include <fstream>
#include <iterator>

#include "tokenizer/vocab.h"

namespace corral::tokenizer {

namespace {

class WireReader {
 public:
  WireReader(std::string_view bytes, const std::string& source) : bytes_(bytes), source_(source) {}

  bool done() const { return pos_ >= bytes_.size(); }

  uint64_t varint() {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= bytes_.size()) fail("truncated varint");
      const auto b = static_cast<uint8_t>(bytes_[pos_++]);
      value |= static_cast<uint64_t>(b & 0x7F) << shift;
      if ((b & 0x80) == 0) return value;
    }
    fail("varint longer than 10 bytes");
  }

  // Reads a field key; returns {field number, wire type}.
  std::pair<uint32_t, uint32_t> key() {
    const uint64_t k = varint();
    return {static_cast<uint32_t>(k >> 3), static_cast<uint32_t>(k & 7)};
  }

  std::string_view bytes() {
    const uint64_t n = varint();
    if (n > bytes_.size() - pos_) fail("length-delimited field runs past the end");
    const std::string_view out = bytes_.substr(pos_, n);
    pos_ += n;
    return out;
  }

  float fixed32_float() {
    if (bytes_.size() - pos_ < 4) fail("truncated fixed32");
    uint32_t bits = 0;
    for (int i = 0; i < 4; ++i)
      bits |= static_cast<uint32_t>(static_cast<uint8_t>(bytes_[pos_ + i])) << (8 * i);
    pos_ += 4;
    float f = 0;
    std::memcpy(&f, &bits, sizeof f);
    return f;
  }

  void skip(uint32_t wire_type) {
    switch (wire_type) {
      case 0:
        varint();
        return;
      case 1:
        advance(8);
        return;
      case 2:
        bytes();
        return;
      case 5:
        advance(4);
        return;
      default:
        fail("unsupported wire type " + std::to_string(wire_type));
    }
  }

  [[noreturn]] void fail(const std::string& what) const {
    throw VocabError(source_ + ": invalid SentencePiece model at byte " + std::to_string(pos_) +
                     ": " + what);
  }

 private:
  void advance(size_t n) {
    if (bytes_.size() - pos_ < n) fail("truncated field");
    pos_ += n;
  }

  std::string_view bytes_;
  const std::string& source_;
  size_t pos_ = 0;
};

}  // namespace

Vocab load_sentencepiece_vocab(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw VocabError(path + ": cannot open");
  const std::string data{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};

  Vocab v;
  v.model = Model::kSentencePiece;
  uint64_t model_type = 1;
  std::string normalizer_name;
  bool add_dummy_prefix = true, remove_extra_whitespaces = true, escape_whitespaces = true;

  WireReader top(data, path);
  while (!top.done()) {
    const auto [field, wire] = top.key();
    if (field == 1 && wire == 2) {
      WireReader piece(top.bytes(), path);
      Token t;
      t.type = TokenType::kNormal;
      while (!piece.done()) {
        const auto [f, w] = piece.key();
        if (f == 1 && w == 2) {
          t.text = std::string(piece.bytes());
        } else if (f == 2 && w == 5) {
          t.score = piece.fixed32_float();
        } else if (f == 3 && w == 0) {
          const uint64_t type = piece.varint();
          t.type = type >= 1 && type <= 6 ? static_cast<TokenType>(type) : TokenType::kUndefined;
        } else {
          piece.skip(w);
        }
      }
      v.tokens.push_back(std::move(t));
    } else if (field == 2 && wire == 2) {
      WireReader trainer(top.bytes(), path);
      while (!trainer.done()) {
        const auto [f, w] = trainer.key();
        if (f == 3 && w == 0) {
          model_type = trainer.varint();
        } else {
          trainer.skip(w);
        }
      }
    } else if (field == 3 && wire == 2) {
      WireReader norm(top.bytes(), path);
      while (!norm.done()) {
        const auto [f, w] = norm.key();
        if (f == 1 && w == 2) {
          normalizer_name = std::string(norm.bytes());
        } else if (f == 3 && w == 0) {
          add_dummy_prefix = norm.varint() != 0;
        } else if (f == 4 && w == 0) {
          remove_extra_whitespaces = norm.varint() != 0;
        } else if (f == 5 && w == 0) {
          escape_whitespaces = norm.varint() != 0;
        } else {
          norm.skip(w);
        }
      }
    } else {
      top.skip(wire);
    }
  }
  if (v.tokens.empty()) throw VocabError(path + ": SentencePiece model has no pieces");
  if (model_type != 2) {
    throw VocabError(path + ": SentencePiece model_type " + std::to_string(model_type) +
                     " is not supported (only BPE = 2)");
  }
  v.index(path);

  for (size_t i = 0; i < v.tokens.size(); ++i) {
    const Token& t = v.tokens[i];
    const auto id = static_cast<TokenId>(i);
    if (t.type == TokenType::kUnknown && v.unk == kNoToken) v.unk = id;
    if (t.type == TokenType::kControl && t.text == "<s>") v.bos = id;
    if (t.type == TokenType::kControl && t.text == "</s>") v.eos = id;
    if (t.type == TokenType::kByte) v.byte_fallback = true;
  }
  v.add_bos = v.bos != kNoToken;
  v.add_space_prefix = add_dummy_prefix;
  v.remove_extra_whitespaces = remove_extra_whitespaces;
  v.escape_whitespaces = escape_whitespaces;
  // The precompiled charsmap of "nmt_nfkc"-style rules is approximated by NFKC; "identity"
  // (llama2.c's tokenizers) needs nothing.
  if (!normalizer_name.empty() && normalizer_name != "identity") v.normalizer.nfkc = true;
  return v;
}

}  // namespace corral::tokenizer
