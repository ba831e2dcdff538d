// Pre-tokenization: UTF-8 helpers, the GPT-2 byte<->unicode alphabet and regex splitting with
// PCRE2 (UTF + Unicode properties, JIT-compiled once per pattern).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace corral::tokenizer {

// Length of the UTF-8 sequence a lead byte starts (1 for continuation or invalid bytes, so that
// a walk over bad input still advances).
inline size_t utf8_len(uint8_t lead) {
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 1;
}

// Decodes the code point at text[pos], advancing pos; U+FFFD for malformed input.
uint32_t utf8_decode(std::string_view text, size_t& pos);
void utf8_append(std::string& out, uint32_t cp);
// How many bytes at the end of `text` form an incomplete (but so far valid) UTF-8 sequence.
size_t utf8_incomplete_tail(std::string_view text);

// GPT-2's reversible byte alphabet: printable bytes stand for themselves, the rest map to
// U+0100 and up.
const std::string& byte_to_unicode(uint8_t byte);
// The byte a byte-level character stands for, or -1.
int unicode_to_byte(uint32_t cp);
std::string byte_level_encode(std::string_view text);
// Inverse of byte_level_encode; characters outside the alphabet are kept as UTF-8.
std::string byte_level_decode(std::string_view text);

// A compiled pattern. Thread-safe: matching allocates its own match data.
class Regex {
 public:
  explicit Regex(const std::string& pattern);  // std::invalid_argument naming the pattern
  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) noexcept;
  ~Regex();

  // Appends to `out` the pieces of `text`: every match and every non-empty gap between them.
  void split_isolated(std::string_view text, std::vector<std::string_view>& out) const;
  const std::string& pattern() const { return pattern_; }

 private:
  struct Code;
  std::string pattern_;
  std::unique_ptr<Code> code_;
};

// Splits text by each regex in turn (every piece of one step is split by the next).
std::vector<std::string_view> split_sequence(std::string_view text,
                                             const std::vector<Regex>& regexes);

}  // namespace corral::tokenizer
