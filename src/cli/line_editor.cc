#include "cli/line_editor.h"

#include <fcntl.h>
#include <histedit.h>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string_view>

namespace corral::cli {
namespace {

// A signal handler can reach nothing but static storage: Ctrl+C sets this flag (checked by the
// generation loop between tokens) and wakes the line reader through a self-pipe.
std::atomic<bool> g_interrupted{false};
int g_wake_fd = -1;

extern "C" void on_sigint(int) {
  g_interrupted.store(true);
  if (g_wake_fd >= 0) {
    const char c = 1;
    [[maybe_unused]] const ssize_t n = write(g_wake_fd, &c, 1);
  }
}

constexpr int kInterrupted = -1;
constexpr int kEndOfInput = -2;
constexpr int kTimedOut = -3;

// Between these, the bytes are literal (escape sequences that take no columns): libedit's
// EL_PROMPT_ESC.
constexpr char kLiteral = '\1';
constexpr std::string_view kPasteStart = "[200~";
constexpr std::string_view kPasteEnd = "[201~";

void write_out(std::string_view s) {
  [[maybe_unused]] const ssize_t n = ::write(STDOUT_FILENO, s.data(), s.size());
}

// The prompt, then `hint` in grey with the cursor put back before it. libedit takes a literal
// (between two kLiteral) together with the visible character after it, as one cell of that
// character's width: the literal writes that character, the hint and moves back onto the
// character, which libedit then writes again.
std::string prompt_with_hint(std::string_view prompt, std::string_view hint) {
  std::string p(prompt);
  if (hint.empty() || p.empty()) return p;
  const char last = p.back();
  p.pop_back();
  p += kLiteral;
  p += last;
  p += "\x1b[38;5;245m";
  p += hint;
  p += "\x1b[0m\x1b[" + std::to_string(hint.size() + 1) + "D";
  p += kLiteral;
  p += last;
  return p;
}

}  // namespace

LineEditor::LineEditor() {
  if (pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) {
    throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  }
  g_wake_fd = wake_[1];
  struct sigaction sa = {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a blocked read or poll returns at once
  sigaction(SIGINT, &sa, &old_sigint_);

  history_ = history_init();
  HistEvent ev;
  ::history(history_, &ev, H_SETSIZE, 1000);
  // The lines of earlier sessions (Up recalls them), as ~/.ollama/history does for ollama.
  if (const char* home = std::getenv("HOME"); home && *home) {
    history_file_ = std::filesystem::path(home) / ".corral" / "history";
    ::history(history_, &ev, H_LOAD, history_file_.c_str());
  }
  el_ = el_init("corral", stdin, stdout, stderr);
  el_set(el_, EL_EDITOR, "emacs");
  el_set(el_, EL_HIST, ::history, history_);
  el_set(el_, EL_CLIENTDATA, this);
  el_set(el_, EL_PROMPT_ESC, &LineEditor::prompt_text, kLiteral);
  el_set(el_, EL_GETCFN, &LineEditor::read_char);
  const char* term = std::getenv("TERM");
  decorate_ = isatty(STDOUT_FILENO) != 0 && !(term && std::string_view(term) == "dumb");
}

LineEditor::~LineEditor() {
  el_end(el_);
  history_end(history_);
  g_wake_fd = -1;
  sigaction(SIGINT, &old_sigint_, nullptr);
  close(wake_[0]);
  close(wake_[1]);
}

const std::atomic<bool>* LineEditor::interrupted() { return &g_interrupted; }

LineEditor::Result LineEditor::read(std::string& line, Prompt prompt, bool& was_empty,
                                    bool& pasted) {
  prompt_ = prompt;
  std::string_view hint;
  if (decorate_ && prompt == Prompt::kMain) hint = "Send a message (/? for help)";
  if (decorate_ && prompt == Prompt::kPaste) hint = "Press Enter to send";
  prompt_plain_ = prompt == Prompt::kMain ? ">>> " : "... ";
  prompt_hint_ = prompt_with_hint(prompt_plain_, hint);
  placeholder_ = !hint.empty();
  paste_break_ = false;
  pasted = false;
  // libedit prints the prompt before it switches the terminal to its editing mode (on the first
  // character read); keys typed in between would be echoed twice and a Ctrl+D there would be
  // taken by the terminal's line discipline. Leaving canonical mode first closes that window;
  // libedit restores the terminal's own settings when the line is done.
  termios t;
  if (tcgetattr(STDIN_FILENO, &t) == 0) {
    t.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    tcsetattr(STDIN_FILENO, TCSANOW, &t);
  }
  // Bracketed paste while a line is read: the terminal marks pasted text, so that its line
  // breaks do not send it (and a process that ends meanwhile leaves the terminal as it was).
  if (decorate_) write_out("\x1b[?2004h");
  int count = 0;
  const char* s = el_gets(el_, &count);
  if (decorate_) write_out("\x1b[?2004l");
  if (take_interrupt()) {
    const LineInfo* li = el_line(el_);
    was_empty = !li || li->lastchar == li->buffer;
    clear_placeholder();
    el_reset(el_);
    in_paste_ = false;
    pending_.clear();
    return Result::kInterrupt;
  }
  clear_placeholder();
  if (!s || count <= 0) return Result::kEnd;
  line.assign(s, static_cast<size_t>(count));
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  pasted = paste_break_;
  if (!line.empty() && !pasted) {
    HistEvent ev;
    ::history(history_, &ev, H_ENTER, line.c_str());
    if (save_history_ && !history_file_.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(history_file_.parent_path(), ec);
      ::history(history_, &ev, H_SAVE, history_file_.c_str());
    }
  }
  return Result::kLine;
}

bool LineEditor::take_interrupt() {
  char buf[64];
  while (::read(wake_[0], buf, sizeof buf) > 0) {
  }
  return g_interrupted.exchange(false);
}

char* LineEditor::prompt_text(EditLine* el) {
  LineEditor* self = nullptr;
  el_get(el, EL_CLIENTDATA, &self);
  static char kFallback[] = ">>> ";
  if (!self) return kFallback;
  // Once something is typed the hint is gone, also from a redrawn line (Ctrl+L).
  return self->placeholder_ ? self->prompt_hint_.data() : self->prompt_plain_.data();
}

// The hint goes as soon as anything is typed (the cursor is still where the prompt ended).
void LineEditor::clear_placeholder() {
  if (!placeholder_) return;
  placeholder_ = false;
  write_out("\x1b[K");
}

int LineEditor::next_byte(int timeout_ms) {
  if (!pending_.empty()) {
    const unsigned char c = pending_.front();
    pending_.pop_front();
    return c;
  }
  for (;;) {
    pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    const int rc = poll(fds, 2, timeout_ms);
    if (g_interrupted.load()) return kInterrupted;
    if (rc == 0) return kTimedOut;
    if (rc < 0) {
      if (errno == EINTR) continue;
      return kInterrupted;
    }
    if (!(fds[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    unsigned char c;
    const ssize_t n = ::read(STDIN_FILENO, &c, 1);
    if (n == 0) return kEndOfInput;
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return kInterrupted;
    }
    return c;
  }
}

bool LineEditor::take_paste_marker() {
  // The marker's bytes come in one write right after the ESC; a lone ESC (a key) waits 50 ms.
  std::string got;
  while (got.size() < kPasteStart.size()) {
    const int b = next_byte(50);
    if (b < 0) break;
    got.push_back(static_cast<char>(b));
    if (!kPasteStart.starts_with(got) && !kPasteEnd.starts_with(got)) break;
  }
  if (got == kPasteStart || got == kPasteEnd) {
    in_paste_ = got == kPasteStart;
    return true;
  }
  pending_.insert(pending_.begin(), got.begin(), got.end());
  return false;
}

// One character from the terminal, decoded from UTF-8; -1 when interrupted, 0 at end of input.
int LineEditor::read_char(EditLine* el, wchar_t* out) {
  LineEditor* self = nullptr;
  el_get(el, EL_CLIENTDATA, &self);
  unsigned char bytes[4];
  int have = 0, need = 1;
  for (;;) {
    const int b = self->next_byte(-1);
    if (b == kInterrupted) return -1;
    if (b == kEndOfInput) return 0;
    if (b < 0) continue;
    const auto c = static_cast<unsigned char>(b);
    // An ESC that does not start a paste marker is a key (or an arrow's sequence) for libedit.
    if (c == 0x1b && have == 0 && self->take_paste_marker()) continue;
    if (self->in_paste_ && have == 0 && (c == '\r' || c == '\n')) {
      // A pasted line break ends this line but not the message; CR LF is one break.
      const bool skip = c == '\n' && self->last_was_cr_;
      self->last_was_cr_ = c == '\r';
      if (skip) continue;
      self->paste_break_ = true;
      self->clear_placeholder();
      *out = L'\n';
      return 1;
    }
    self->last_was_cr_ = false;
    if (have == 0) {
      need = c < 0x80             ? 1
             : (c & 0xE0) == 0xC0 ? 2
             : (c & 0xF0) == 0xE0 ? 3
             : (c & 0xF8) == 0xF0 ? 4
                                  : 1;
    } else if ((c & 0xC0) != 0x80) {
      have = 0;  // a broken sequence: start over at this byte
      need = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : 4;
    }
    bytes[have++] = c;
    if (have < need) continue;
    uint32_t cp = need == 1 ? bytes[0] : bytes[0] & (0x7F >> need);
    for (int i = 1; i < need; ++i) cp = (cp << 6) | (bytes[i] & 0x3F);
    self->clear_placeholder();
    *out = static_cast<wchar_t>(cp);
    return 1;
  }
}

}  // namespace corral::cli
