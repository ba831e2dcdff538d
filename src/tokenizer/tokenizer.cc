#include "tokenizer/tokenizer.h"

#include <utf8proc.h>

#include <cstdlib>
#include <memory>

namespace corral::tokenizer {

namespace {

constexpr std::string_view kSpaceMark = "\xE2\x96\x81";  // U+2581, SentencePiece's space

// Builds a new string: replacing in place would shift the tail once per match (quadratic).
void replace_all(std::string& s, std::string_view from, std::string_view to) {
  if (s.find(from) == std::string::npos) return;
  std::string out;
  out.reserve(s.size() + s.size() / 2);
  size_t pos = 0;
  for (size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
    out.append(s, pos, hit - pos);
    out.append(to);
  }
  out.append(s, pos);
  s.swap(out);
}

bool is_ascii_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

bool is_ascii(std::string_view s) {
  for (const char c : s) {
    if (static_cast<uint8_t>(c) >= 0x80) return false;
  }
  return true;
}

std::string utf8proc_normalize(std::string_view text, bool compat) {
  const auto* in = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
  utf8proc_uint8_t* out = nullptr;
  const int options = UTF8PROC_STABLE | UTF8PROC_COMPOSE | (compat ? UTF8PROC_COMPAT : 0);
  const utf8proc_ssize_t n = utf8proc_map(in, static_cast<utf8proc_ssize_t>(text.size()), &out,
                                          static_cast<utf8proc_option_t>(options));
  if (n < 0) return std::string(text);  // malformed UTF-8: leave the text as it is
  std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owned(out, &std::free);
  return std::string(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
}

// transformers' clean_up_tokenization, as llama.cpp's detokenize applies it.
std::string clean_up_spaces(std::string s) {
  for (const auto& [from, to] : {std::pair<std::string_view, std::string_view>{" .", "."},
                                 {" ?", "?"},
                                 {" !", "!"},
                                 {" ,", ","},
                                 {" ' ", "'"},
                                 {" n't", "n't"},
                                 {" 'm", "'m"},
                                 {" 's", "'s"},
                                 {" 've", "'ve"},
                                 {" 're", "'re"}}) {
    replace_all(s, from, to);
  }
  return s;
}

}  // namespace

Tokenizer::Tokenizer(Vocab vocab) : vocab_(std::move(vocab)) {
  regexes_.reserve(vocab_.pre_regexes.size());
  for (const std::string& p : vocab_.pre_regexes) regexes_.emplace_back(p);

  for (const Token& t : vocab_.tokens) {
    size_t pos = 0;
    uint32_t prev = 0;
    for (bool first = true; pos < t.text.size(); first = false) {
      const uint32_t cp = utf8_decode(t.text, pos);
      if (!first) joined_pairs_.insert((static_cast<uint64_t>(prev) << 32) | cp);
      prev = cp;
    }
  }

  // Special and added tokens are found by a byte trie, so that cutting them out of a long
  // prompt costs one walk per position instead of one search per special token.
  trie_children_.emplace_back();
  trie_token_.push_back(kNoToken);
  for (size_t id = 0; id < vocab_.tokens.size(); ++id) {
    if (!vocab_.is_special(static_cast<TokenId>(id))) continue;
    const std::string& text = vocab_.tokens[id].text;
    if (text.empty()) continue;
    int32_t node = 0;
    for (const char c : text) {
      const auto b = static_cast<uint8_t>(c);
      int32_t child = -1;
      for (const auto& [byte, next] : trie_children_[node]) {
        if (byte == b) child = next;
      }
      if (child < 0) {
        child = static_cast<int32_t>(trie_children_.size());
        trie_children_[node].emplace_back(b, child);
        trie_children_.emplace_back();
        trie_token_.push_back(kNoToken);
      }
      node = child;
    }
    if (trie_token_[node] == kNoToken) trie_token_[node] = static_cast<TokenId>(id);
  }
}

std::vector<Tokenizer::Fragment> Tokenizer::partition(std::string_view text,
                                                      bool parse_special) const {
  std::vector<Fragment> out;
  size_t text_start = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    // Longest special token starting here.
    int32_t node = 0;
    TokenId match = kNoToken;
    size_t match_len = 0;
    for (size_t i = pos; i < text.size(); ++i) {
      const auto b = static_cast<uint8_t>(text[i]);
      int32_t child = -1;
      for (const auto& [byte, next] : trie_children_[node]) {
        if (byte == b) child = next;
      }
      if (child < 0) break;
      node = child;
      const TokenId id = trie_token_[node];
      if (id != kNoToken && (parse_special || vocab_.type(id) == TokenType::kUserDefined)) {
        match = id;
        match_len = i + 1 - pos;
      }
    }
    if (match == kNoToken) {
      ++pos;
      continue;
    }
    size_t text_end = pos;
    const Token& tok = vocab_.tokens[static_cast<size_t>(match)];
    if (tok.lstrip) {
      while (text_end > text_start && is_ascii_space(text[text_end - 1])) --text_end;
    }
    if (text_end > text_start) out.push_back({text.substr(text_start, text_end - text_start)});
    out.push_back({{}, match});
    pos += match_len;
    if (tok.rstrip) {
      while (pos < text.size() && is_ascii_space(text[pos])) ++pos;
    }
    text_start = pos;
  }
  if (text_start < text.size()) out.push_back({text.substr(text_start)});
  return out;
}

std::vector<TokenId> Tokenizer::encode(std::string_view text, bool add_special,
                                       bool parse_special) const {
  std::vector<TokenId> out;
  if (add_special && vocab_.add_bos) out.push_back(vocab_.bos);
  bool after_special = true;  // the start of the text counts as following a special token
  for (const Fragment& f : partition(text, parse_special)) {
    if (f.token != kNoToken) {
      out.push_back(f.token);
      after_special = true;
    } else {
      encode_fragment(f.text, after_special, out);
      after_special = false;
    }
  }
  if (add_special && vocab_.add_eos) out.push_back(vocab_.eos);
  if (add_special && vocab_.add_sep) out.push_back(vocab_.sep);
  return out;
}

std::string Tokenizer::normalize(std::string_view text) const {
  const Normalizer& n = vocab_.normalizer;
  if ((n.nfc || n.nfkc) && !is_ascii(text)) return utf8proc_normalize(text, n.nfkc);
  return std::string(text);
}

void Tokenizer::add_space_prefix(std::string& text, bool after_special) const {
  if (!vocab_.add_space_prefix || text.empty()) return;
  if (!after_special && !vocab_.space_prefix_every_fragment) return;
  if (vocab_.space_prefix_unless_present && text.front() == ' ') return;
  text.insert(text.begin(), ' ');
}

void Tokenizer::encode_fragment(std::string_view raw, bool after_special,
                                std::vector<TokenId>& out) const {
  std::string text = normalize(raw);
  switch (vocab_.model) {
    case Model::kSentencePiece: {
      if (vocab_.remove_extra_whitespaces) {
        // SentencePiece's normalizer: no leading or trailing spaces, runs of spaces become one.
        std::string collapsed;
        collapsed.reserve(text.size());
        for (const char c : text) {
          if (c == ' ' && (collapsed.empty() || collapsed.back() == ' ')) continue;
          collapsed += c;
        }
        while (!collapsed.empty() && collapsed.back() == ' ') collapsed.pop_back();
        text.swap(collapsed);
        if (text.empty()) return;
      }
      add_space_prefix(text, after_special);
      if (vocab_.escape_whitespaces) replace_all(text, " ", kSpaceMark);
      encode_spm(text, out);
      break;
    }
    case Model::kBpe: {
      add_space_prefix(text, after_special);
      if (vocab_.escape_whitespaces) replace_all(text, " ", kSpaceMark);
      if (regexes_.empty()) {
        const std::string word = vocab_.byte_level ? byte_level_encode(text) : text;
        // Unknown characters fuse into one unknown token only when they stay in one chunk.
        if (vocab_.byte_level || vocab_.byte_fallback) {
          for (const std::string_view chunk : independent_chunks(word)) {
            encode_bpe_word(chunk, out);
          }
        } else {
          encode_bpe_word(word, out);
        }
        break;
      }
      for (const std::string_view piece : split_sequence(text, regexes_)) {
        if (vocab_.byte_level) {
          encode_bpe_word(byte_level_encode(piece), out);
        } else {
          encode_bpe_word(piece, out);
        }
      }
      break;
    }
    case Model::kWordPiece:
      encode_wordpiece(text, out);
      break;
  }
}

std::vector<std::string_view> Tokenizer::independent_chunks(std::string_view text) const {
  std::vector<std::string_view> chunks;
  size_t chunk_start = 0;
  size_t pos = 0;
  uint32_t prev = 0;
  while (pos < text.size()) {
    const size_t char_start = pos;
    const uint32_t cp = utf8_decode(text, pos);
    if (char_start > chunk_start &&
        !joined_pairs_.contains((static_cast<uint64_t>(prev) << 32) | cp)) {
      chunks.push_back(text.substr(chunk_start, char_start - chunk_start));
      chunk_start = char_start;
    }
    prev = cp;
  }
  if (chunk_start < text.size()) chunks.push_back(text.substr(chunk_start));
  return chunks;
}

void Tokenizer::push_bytes(std::string_view bytes, std::vector<TokenId>& out) const {
  for (const char c : bytes) {
    const auto b = static_cast<uint8_t>(c);
    TokenId id = vocab_.byte_level ? vocab_.find(byte_to_unicode(b)) : vocab_.byte_token(b);
    if (id == kNoToken) id = vocab_.unk;
    if (id != kNoToken) out.push_back(id);
  }
}

std::string Tokenizer::token_to_piece(TokenId id, bool render_special) const {
  if (id < 0 || static_cast<size_t>(id) >= vocab_.size()) return {};
  const Token& tok = vocab_.tokens[static_cast<size_t>(id)];
  switch (tok.type) {
    case TokenType::kControl:
    case TokenType::kUnknown:
      return render_special ? tok.text : std::string();
    case TokenType::kUserDefined: {
      // Added tokens are verbatim text, except that vocabularies which spell spaces as U+2581
      // also do so in added tokens (Gemma's runs of spaces).
      std::string piece = tok.text;
      if (vocab_.escape_whitespaces) replace_all(piece, kSpaceMark, " ");
      return piece;
    }
    case TokenType::kByte:
      if (tok.text.size() == 6 && tok.text.starts_with("<0x")) {
        return std::string(
            1, static_cast<char>(std::strtol(tok.text.substr(3, 2).c_str(), nullptr, 16)));
      }
      break;
    default:
      break;
  }
  if (vocab_.model == Model::kBpe && vocab_.byte_level) return byte_level_decode(tok.text);
  if (vocab_.model == Model::kWordPiece) {
    const std::string& cont = vocab_.wordpiece_continuation_prefix;
    if (!cont.empty()) {
      return tok.text.starts_with(cont) ? tok.text.substr(cont.size()) : " " + tok.text;
    }
  }
  std::string piece = tok.text;
  replace_all(piece, kSpaceMark, " ");
  return piece;
}

std::string Tokenizer::decode(std::span<const TokenId> ids, bool skip_special) const {
  StreamingDecoder stream(*this, skip_special);
  std::string text;
  for (const TokenId id : ids) text += stream.push(id);
  text += stream.flush();
  if (vocab_.clean_spaces) text = clean_up_spaces(std::move(text));
  return text;
}

std::string StreamingDecoder::push(TokenId id) {
  const Vocab& v = tokenizer_.vocab();
  if (id < 0 || static_cast<size_t>(id) >= v.size()) return {};
  const TokenType type = v.type(id);
  const bool special = type == TokenType::kControl || type == TokenType::kUnknown;
  if (special && skip_special_) return {};
  std::string piece = tokenizer_.token_to_piece(id, true);
  if (at_start_ && !special) {
    // The space the encoder put before the text (SentencePiece's dummy prefix, WordPiece's
    // word separator) is not part of the text.
    const bool strip = v.add_space_prefix || (v.model == Model::kWordPiece);
    if (strip && type != TokenType::kUserDefined && !piece.empty() && piece.front() == ' ') {
      piece.erase(0, 1);
    }
    at_start_ = false;
  }
  pending_ += piece;
  const size_t hold = utf8_incomplete_tail(pending_);
  std::string ready = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return ready;
}

std::string StreamingDecoder::flush() {
  std::string rest;
  rest.swap(pending_);
  return rest;
}

}  // namespace corral::tokenizer
