// WordPiece as BERT runs it: BasicTokenizer (clean control characters, lowercase, strip accents,
// split on whitespace, punctuation and CJK characters), then greedy longest-match-first per
// word; a word with a gap becomes the unknown token. Facts: Hugging Face tokenizers'
// BertNormalizer / BertPreTokenizer / WordPiece and llama.cpp's llm_tokenizer_wpm.
#include <utf8proc.h>

#include "tokenizer/tokenizer.h"

namespace corral::tokenizer {

namespace {

bool is_whitespace(uint32_t cp) {
  if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D) || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
      (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
      cp == 0x205F || cp == 0x3000) {
    return true;
  }
  return utf8proc_category(static_cast<utf8proc_int32_t>(cp)) == UTF8PROC_CATEGORY_ZS;
}

bool is_control(uint32_t cp) {
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CS:
      return true;
    default:
      return false;
  }
}

bool is_punctuation(uint32_t cp) {
  // BERT counts every non-alphanumeric ASCII printable as punctuation, plus Unicode P*.
  if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) ||
      (cp >= 123 && cp <= 126)) {
    return true;
  }
  const utf8proc_category_t c = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return c >= UTF8PROC_CATEGORY_PC && c <= UTF8PROC_CATEGORY_PO;
}

bool is_chinese(uint32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
         (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
         (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

std::vector<uint32_t> decompose(std::string_view text, bool nfd) {
  std::vector<uint32_t> cps;
  cps.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    const uint32_t cp = utf8_decode(text, pos);
    if (!nfd || cp < 0x80) {
      cps.push_back(cp);
      continue;
    }
    utf8proc_int32_t buf[8];
    int last = 0;
    const utf8proc_ssize_t n =
        utf8proc_decompose_char(static_cast<utf8proc_int32_t>(cp), buf, 8,
                                static_cast<utf8proc_option_t>(UTF8PROC_DECOMPOSE), &last);
    if (n <= 0 || n > 8) {
      cps.push_back(cp);
    } else {
      for (utf8proc_ssize_t i = 0; i < n; ++i) cps.push_back(static_cast<uint32_t>(buf[i]));
    }
  }
  return cps;
}

}  // namespace

void Tokenizer::encode_wordpiece(std::string_view text, std::vector<TokenId>& out) const {
  const Normalizer& n = vocab_.normalizer;
  std::vector<std::string> words(1);
  for (const uint32_t cp : decompose(text, n.strip_accents)) {
    if (is_whitespace(cp)) {
      if (!words.back().empty()) words.emplace_back();
      continue;
    }
    if (cp == 0 || cp == 0xFFFD || is_control(cp)) continue;
    if (n.strip_accents &&
        utf8proc_category(static_cast<utf8proc_int32_t>(cp)) == UTF8PROC_CATEGORY_MN) {
      continue;
    }
    const uint32_t c =
        n.lowercase ? static_cast<uint32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp)))
                    : cp;
    if (is_punctuation(cp) || is_chinese(cp)) {
      if (!words.back().empty()) words.emplace_back();
      utf8_append(words.back(), c);
      words.emplace_back();
    } else {
      utf8_append(words.back(), c);
    }
  }

  std::string candidate;
  for (const std::string& word : words) {
    if (word.empty()) continue;
    const size_t mark = out.size();
    size_t n_chars = 0;
    for (size_t p = 0; p < word.size(); p += utf8_len(static_cast<uint8_t>(word[p]))) ++n_chars;
    bool ok = n_chars <= vocab_.wordpiece_max_chars;
    for (size_t start = 0; ok && start < word.size();) {
      const std::string& prefix =
          start == 0 ? vocab_.wordpiece_word_prefix : vocab_.wordpiece_continuation_prefix;
      TokenId found = kNoToken;
      size_t end = std::min(word.size(), start + vocab_.max_token_bytes);
      for (; end > start; --end) {
        // Only whole characters: skip ends inside a UTF-8 sequence.
        if (end < word.size() && (static_cast<uint8_t>(word[end]) & 0xC0) == 0x80) continue;
        candidate.assign(prefix);
        candidate.append(word, start, end - start);
        found = vocab_.find(candidate);
        if (found != kNoToken) break;
      }
      if (found == kNoToken) {
        ok = false;
        break;
      }
      out.push_back(found);
      start = end;
    }
    if (!ok) {
      out.resize(mark);
      if (vocab_.unk != kNoToken) out.push_back(vocab_.unk);
    }
  }
}

}  // namespace corral::tokenizer
