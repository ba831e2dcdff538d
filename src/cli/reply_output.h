// How `corral run` shows a reply as it streams, as `ollama run` does: the thinking (unless
// hidden) after "Thinking..." in grey, then "...done thinking." and the answer; words wrapped at
// the terminal's width (a word that would cross the edge moves to the next line whole); a spinner
// until the first text comes.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "cli/spinner.h"

namespace corral::cli {

class ReplyOutput {
 public:
  explicit ReplyOutput(bool hide_thinking = false);
  void set_hide_thinking(bool hide) { hide_thinking_ = hide; }
  // Wrap words at the terminal's width (only when standard output is a terminal).
  void set_word_wrap(bool wrap) { word_wrap_ = wrap; }

  // Starts a reply: reads the terminal's width and shows the spinner until the first text.
  void begin();
  void thinking(std::string_view s);
  void content(std::string_view s);
  // Ends the current line unless it is already ended (or nothing was written); stops the
  // spinner.
  void end_line();

 private:
  void close_thinking();
  void text(std::string_view s);  // shown text: wrapped, columns counted
  void code(std::string_view s);  // an escape sequence: no columns
  void put(std::string_view s);
  void put_char(std::string_view bytes, int columns);

  bool hide_thinking_;
  bool color_;  // standard output is a terminal
  bool word_wrap_ = true;
  int width_ = 0;  // columns that take text, when wrapping; 0: no wrapping
  bool in_thinking_ = false;
  char last_ = 0;
  int column_ = 0;
  std::string word_;  // the word at the end of the line (its bytes) and its columns
  int word_columns_ = 0;
  std::string partial_;  // the start of a UTF-8 sequence cut between two pieces
  std::string shown_;    // the bytes of the piece being wrapped, written at its end
  std::unique_ptr<Spinner> spinner_;
};

}  // namespace corral::cli
