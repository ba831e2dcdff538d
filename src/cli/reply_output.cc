#include "cli/reply_output.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdio>
#include <cwchar>

namespace corral::cli {
namespace {

constexpr std::string_view kGrey = "\x1b[38;5;245m";
constexpr std::string_view kBold = "\x1b[1m";
constexpr std::string_view kDefault = "\x1b[0m";

// Bytes in the UTF-8 sequence that starts with `c` (1 for a stray continuation byte).
size_t sequence_length(unsigned char c) {
  return c < 0x80             ? 1
         : (c & 0xE0) == 0xC0 ? 2
         : (c & 0xF0) == 0xE0 ? 3
         : (c & 0xF8) == 0xF0 ? 4
                              : 1;
}

// Columns a character takes: wcwidth where the locale knows it, else one.
int columns_of(std::string_view bytes) {
  const auto c0 = static_cast<unsigned char>(bytes[0]);
  if (c0 < 0x20) return 0;
  if (c0 < 0x80) return 1;
  uint32_t cp = c0 & (0x7F >> bytes.size());
  for (size_t i = 1; i < bytes.size(); ++i) cp = (cp << 6) | (bytes[i] & 0x3F);
  const int w = wcwidth(static_cast<wchar_t>(cp));
  return w < 0 ? 1 : w;
}

}  // namespace

ReplyOutput::ReplyOutput(bool hide_thinking)
    : hide_thinking_(hide_thinking), color_(isatty(STDOUT_FILENO) != 0) {}

void ReplyOutput::begin() {
  last_ = 0;
  in_thinking_ = false;
  column_ = 0;
  word_.clear();
  word_columns_ = 0;
  partial_.clear();
  width_ = 0;
  winsize ws{};
  // The last column is left empty: a terminal that has written there wraps by itself.
  if (word_wrap_ && color_ && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1) {
    width_ = ws.ws_col - 1;
  }
  if (color_) spinner_ = std::make_unique<Spinner>();
}

void ReplyOutput::thinking(std::string_view s) {
  if (s.empty() || hide_thinking_) return;
  if (!in_thinking_) {
    if (color_) code(std::string(kGrey) + std::string(kBold));
    text("Thinking...\n");
    if (color_) code(std::string(kDefault) + std::string(kGrey));
    in_thinking_ = true;
  }
  text(s);
}

void ReplyOutput::content(std::string_view s) {
  if (s.empty()) return;
  close_thinking();
  text(s);
}

void ReplyOutput::end_line() {
  spinner_.reset();
  if (in_thinking_ && color_) code(kDefault);
  in_thinking_ = false;
  if (last_ && last_ != '\n') text("\n");
}

void ReplyOutput::close_thinking() {
  if (!in_thinking_) return;
  if (last_ != '\n') text("\n");
  if (color_) code(std::string(kGrey) + std::string(kBold));
  text("...done thinking.\n\n");
  if (color_) code(kDefault);
  in_thinking_ = false;
}

void ReplyOutput::code(std::string_view s) { put(s); }

void ReplyOutput::text(std::string_view s) {
  if (s.empty()) return;
  if (width_ == 0) {
    put(s);
    last_ = s.back();
    return;
  }
  std::string bytes = std::move(partial_);
  bytes.append(s);
  partial_.clear();
  size_t i = 0;
  while (i < bytes.size()) {
    const size_t n = sequence_length(static_cast<unsigned char>(bytes[i]));
    if (i + n > bytes.size()) {
      partial_ = bytes.substr(i);  // the rest of the character comes with the next piece
      break;
    }
    put_char(std::string_view(bytes).substr(i, n),
             columns_of(std::string_view(bytes).substr(i, n)));
    i += n;
  }
  put(shown_);  // one write per piece, as without wrapping
  shown_.clear();
  last_ = s.back();
}

// One character of wrapped text, added to what text() writes. Characters are shown as they come;
// when a word reaches the edge, what was written of it is erased and it starts the next line (a
// word wider than the line is broken).
void ReplyOutput::put_char(std::string_view bytes, int columns) {
  const char c = bytes[0];
  if (c == '\n' || c == '\r') {
    shown_.append(bytes);
    column_ = 0;
    word_.clear();
    word_columns_ = 0;
    return;
  }
  if (c == ' ' || c == '\t') {
    word_.clear();
    word_columns_ = 0;
    const int next = c == '\t' ? (column_ / 8 + 1) * 8 : column_ + 1;
    if (next > width_) {
      shown_ += '\n';  // a space at the edge becomes the line break
      column_ = 0;
    } else {
      shown_.append(bytes);
      column_ = next;
    }
    return;
  }
  if (column_ + columns > width_) {
    if (word_columns_ > 0 && word_columns_ < column_) {
      shown_ += "\x1b[" + std::to_string(word_columns_) + "D\x1b[K\n" + word_;
      column_ = word_columns_;
    } else {
      shown_ += '\n';
      column_ = 0;
      word_.clear();
      word_columns_ = 0;
    }
  }
  shown_.append(bytes);
  column_ += columns;
  word_.append(bytes);
  word_columns_ += columns;
}

void ReplyOutput::put(std::string_view s) {
  if (s.empty()) return;
  spinner_.reset();  // erased before anything is written where it stands
  std::fwrite(s.data(), 1, s.size(), stdout);
  std::fflush(stdout);
}

}  // namespace corral::cli
