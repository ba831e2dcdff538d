// The interactive session's line reader: libedit for editing and history, reading the terminal
// through a function of its own so that Ctrl+C (SIGINT, handled while the editor exists) ends the
// line being edited at once, a bracketed paste of several lines arrives as one message, and an
// empty prompt shows a grey hint, as `ollama run` does.
#pragma once

#include <atomic>
#include <deque>
#include <filesystem>
#include <string>

#include <signal.h>

struct editline;
struct history;

namespace corral::cli {

class LineEditor {
 public:
  enum class Result { kLine, kEnd, kInterrupt };
  enum class Prompt {
    kMain,       // ">>> " with "Send a message (/? for help)" while nothing is typed
    kMultiline,  // "... " inside a """ message
    kPaste,      // "... " after a pasted line break: Enter sends the whole paste
  };

  // Installs the SIGINT handler (restored by the destructor) and loads ~/.corral/history.
  LineEditor();
  ~LineEditor();
  LineEditor(const LineEditor&) = delete;
  LineEditor& operator=(const LineEditor&) = delete;

  // Reads one line (without its newline). kInterrupt on Ctrl+C, with `was_empty` telling
  // whether nothing had been typed; kEnd on Ctrl+D at an empty line. `pasted`: the line ended at
  // a line break inside a bracketed paste (more of the same paste follows), not at Enter.
  Result read(std::string& line, Prompt prompt, bool& was_empty, bool& pasted);

  // /set history, /set nohistory: whether lines are saved to ~/.corral/history.
  void set_save_history(bool save) { save_history_ = save; }

  // Clears a pending interrupt (flag and pipe); true if there was one.
  bool take_interrupt();
  // Set by Ctrl+C until take_interrupt(): the cancel flag of the reply being generated.
  static const std::atomic<bool>* interrupted();

 private:
  static char* prompt_text(editline* el);
  static int read_char(editline* el, wchar_t* out);
  // The next byte of input: one put back, else from the terminal; -1 when interrupted, 0 at
  // the end of input, -2 when `timeout_ms` (>= 0) passed first.
  int next_byte(int timeout_ms);
  // After an ESC: consumes a bracketed-paste start or end marker (true), else puts back what it
  // read after the ESC.
  bool take_paste_marker();
  void clear_placeholder();

  editline* el_ = nullptr;
  history* history_ = nullptr;
  std::filesystem::path history_file_;  // ~/.corral/history
  bool save_history_ = true;
  int wake_[2] = {-1, -1};
  struct sigaction old_sigint_ = {};
  Prompt prompt_ = Prompt::kMain;
  std::string prompt_plain_;           // ">>> " or "... "
  std::string prompt_hint_;            // the same with the placeholder
  bool placeholder_ = false;           // a placeholder is shown and nothing was typed over it yet
  bool decorate_ = false;              // stdout is a terminal: placeholders and bracketed paste
  bool in_paste_ = false;              // between the terminal's paste start and end markers
  bool paste_break_ = false;           // the line ended at a line break of a paste
  bool last_was_cr_ = false;           // a pasted CR: a LF right after it is the same line break
  std::deque<unsigned char> pending_;  // bytes read ahead and put back
};

}  // namespace corral::cli
