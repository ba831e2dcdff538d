// `corral run MODEL [PROMPT...]`: generate from a GGUF model. With a prompt, stream the
// continuation and exit; with none and a terminal on stdin, an interactive session (libedit line
// editing, `"""` multi-line input, Ctrl+C stops a generation, /bye exits); with none and stdin
// not a terminal, the prompt is all of stdin. The layout of the session follows `ollama run`.
#include <fcntl.h>
#include <histedit.h>
#include <poll.h>
#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <clocale>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backend/cuda/cuda.h"
#include "cli/commands.h"
#include "cli/prompt.h"
#include "runner/engine.h"
#include "sample/options.h"
#include "store/model.h"

namespace corral::cli {
namespace {

using runner::Engine;
using runner::Stats;

struct RunArgs {
  std::string model;
  std::vector<std::string> prompt;
  std::vector<std::string> params;  // K=V
  bool raw = false;
  bool verbose = false;
  std::optional<int64_t> seed;
  std::optional<int> threads;
  std::optional<int> num_gpu;          // --num-gpu / --gpu, over the num_gpu option
  store::ModelInfo info;               // resolved from `model`
  std::unique_ptr<Conversation> chat;  // once the model is loaded
};

// A signal handler can reach nothing but static storage: Ctrl+C in the interactive session sets
// this flag (checked by the generation loop between tokens) and wakes the line reader through
// a self-pipe.
std::atomic<bool> g_interrupted{false};
int g_wake_fd = -1;

extern "C" void on_sigint(int) {
  g_interrupted.store(true);
  if (g_wake_fd >= 0) {
    const char c = 1;
    [[maybe_unused]] const ssize_t n = write(g_wake_fd, &c, 1);
  }
}

// The model's PARAMETERs first, the user's --option over them.
sample::Options make_options(const RunArgs& a) {
  sample::Options o;
  std::vector<std::string> unknown;  // options of a newer Ollama: skipped, as its server does
  o.apply(nlohmann::json::parse(a.info.parameters.dump()), &unknown);
  std::vector<std::pair<std::string, std::string>> params;
  for (const std::string& p : a.params) params.push_back(sample::split_param(p));
  o.apply_params(params);
  if (a.seed) o.seed = *a.seed;
  return o;
}

int thread_count(const RunArgs& a, const sample::Options& o) {
  return a.threads ? *a.threads : o.num_thread;
}

// Streams text to stdout as it comes and remembers how the output ends.
class Output {
 public:
  void write(std::string_view s) {
    if (s.empty()) return;
    std::fwrite(s.data(), 1, s.size(), stdout);
    std::fflush(stdout);
    last_ = s.back();
  }
  // Ends the current line unless it is already ended (or nothing was written).
  void end_line() {
    if (last_ && last_ != '\n') write("\n");
  }
  void reset() { last_ = 0; }

 private:
  char last_ = 0;
};

// Streams the reply to `out`; the whole reply is left in *reply when given.
Stats generate(Engine& engine, const std::string& prompt, const sample::Options& options,
               Output& out, const std::atomic<bool>* cancel, std::string* reply = nullptr) {
  std::vector<int32_t> ids = engine.tokenize(prompt);
  // A chat template that writes {{ bos_token }} itself, on a vocabulary that also adds BOS,
  // would start the prompt with two: keep one, as transformers' tokenizer would.
  const int32_t bos = engine.tokenizer().vocab().bos;
  if (ids.size() >= 2 && bos >= 0 && ids[0] == bos && ids[1] == bos) ids.erase(ids.begin());
  if (ids.empty()) {
    throw std::runtime_error("the prompt gives no tokens (this model adds no BOS token)");
  }
  return engine.generate(
      ids, options,
      [&out, reply](std::string_view text) {
        out.write(text);
        if (reply) reply->append(text);
      },
      cancel);
}

void print_stats(const Stats& stats, std::chrono::nanoseconds load_duration) {
  std::fflush(stdout);
  std::cerr << runner::format_stats(stats, load_duration) << std::flush;
}

// libedit with a read function of our own: it waits on the terminal and on the SIGINT
// self-pipe, so that Ctrl+C ends the line being edited at once.
class LineEditor {
 public:
  enum class Result { kLine, kEnd, kInterrupt };

  LineEditor() {
    if (pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) {
      throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
    }
    g_wake_fd = wake_[1];
    history_ = history_init();
    HistEvent ev;
    history(history_, &ev, H_SETSIZE, 1000);
    el_ = el_init("corral", stdin, stdout, stderr);
    el_set(el_, EL_EDITOR, "emacs");
    el_set(el_, EL_HIST, history, history_);
    el_set(el_, EL_CLIENTDATA, this);
    el_set(el_, EL_PROMPT, &LineEditor::prompt);
    el_set(el_, EL_GETCFN, &LineEditor::read_char);
  }
  ~LineEditor() {
    el_end(el_);
    history_end(history_);
    g_wake_fd = -1;
    close(wake_[0]);
    close(wake_[1]);
  }
  LineEditor(const LineEditor&) = delete;
  LineEditor& operator=(const LineEditor&) = delete;

  // Reads one line (without its newline). kInterrupt on Ctrl+C, with `was_empty` telling
  // whether nothing had been typed; kEnd on Ctrl+D at an empty line.
  Result read(std::string& line, bool continuation, bool& was_empty) {
    continuation_ = continuation;
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
    int count = 0;
    const char* s = el_gets(el_, &count);
    if (take_interrupt()) {
      const LineInfo* li = el_line(el_);
      was_empty = !li || li->lastchar == li->buffer;
      el_reset(el_);
      return Result::kInterrupt;
    }
    if (!s || count <= 0) return Result::kEnd;
    line.assign(s, static_cast<size_t>(count));
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    if (!line.empty()) {
      HistEvent ev;
      history(history_, &ev, H_ENTER, line.c_str());
    }
    return Result::kLine;
  }

  // Clears a pending interrupt (flag and pipe); true if there was one.
  bool take_interrupt() {
    char buf[64];
    while (::read(wake_[0], buf, sizeof buf) > 0) {
    }
    return g_interrupted.exchange(false);
  }

 private:
  static char* prompt(EditLine* el) {
    LineEditor* self = nullptr;
    el_get(el, EL_CLIENTDATA, &self);
    static char kMain[] = ">>> ";
    static char kMore[] = "... ";
    return self && self->continuation_ ? kMore : kMain;
  }

  // One character from the terminal, decoded from UTF-8; -1 when interrupted, 0 at end of input.
  static int read_char(EditLine* el, wchar_t* out) {
    LineEditor* self = nullptr;
    el_get(el, EL_CLIENTDATA, &self);
    unsigned char bytes[4];
    int have = 0, need = 1;
    for (;;) {
      pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {self->wake_[0], POLLIN, 0}};
      const int rc = poll(fds, 2, -1);
      if (g_interrupted.load()) return -1;
      if (rc < 0) {
        if (errno == EINTR) continue;
        return -1;
      }
      if (!(fds[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      unsigned char c;
      const ssize_t n = ::read(STDIN_FILENO, &c, 1);
      if (n == 0) return 0;
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        return -1;
      }
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
      *out = static_cast<wchar_t>(cp);
      return 1;
    }
  }

  EditLine* el_ = nullptr;
  History* history_ = nullptr;
  int wake_[2] = {-1, -1};
  bool continuation_ = false;
};

constexpr const char* kReplHelp =
    "Available Commands:\n"
    "  /set parameter K V   Set a parameter (e.g. /set parameter temperature 0.5)\n"
    "  /set verbose         Show timings after each response\n"
    "  /set quiet           Hide timings\n"
    "  /set system TEXT     Set the system message\n"
    "  /show info           Show details for this model\n"
    "  /show template       Show the prompt template in use\n"
    "  /clear               Forget this session's conversation\n"
    "  /bye                 Exit\n"
    "  /?, /help            Help for a command\n"
    "\n"
    "Use \"\"\" to begin a multi-line message.\n"
    "Ctrl+C stops a response; Ctrl+C twice at an empty prompt, or Ctrl+D, exits.\n";

std::vector<std::string> split_words(const std::string& line) {
  std::vector<std::string> words;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    const size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) words.push_back(line.substr(start, i - start));
  }
  return words;
}

// A /command; returns false when the session should end.
bool run_command(const std::string& line, Engine& engine, sample::Options& options, RunArgs& args) {
  const std::vector<std::string> w = split_words(line);
  const std::string& cmd = w[0];
  if (cmd == "/bye" || cmd == "/exit") return false;
  if (cmd == "/?" || cmd == "/help") {
    std::cout << kReplHelp << "\n";
  } else if (cmd == "/set" && w.size() >= 2 && w[1] == "verbose") {
    args.verbose = true;
    std::cout << "Set 'verbose' mode.\n";
  } else if (cmd == "/set" && w.size() >= 2 && w[1] == "quiet") {
    args.verbose = false;
    std::cout << "Set 'quiet' mode.\n";
  } else if (cmd == "/set" && w.size() >= 2 && w[1] == "parameter") {
    if (w.size() < 4) {
      std::cout << "Usage:\n  /set parameter <name> <value>\n";
      return true;
    }
    // A value may hold spaces (a stop string): everything after the name.
    const size_t at = line.find(w[2], line.find("parameter") + 9) + w[2].size();
    std::string value = line.substr(line.find_first_not_of(" \t", at));
    try {
      sample::Options changed = options;
      const std::pair<std::string, std::string> kv[] = {{w[2], value}};
      changed.apply_params(kv);
      if (w[2] == "num_thread" && !args.threads) engine.set_threads(changed.num_thread);
      options = std::move(changed);
      std::cout << "Set parameter '" << w[2] << "' to '" << value << "'\n";
    } catch (const std::exception& e) {
      std::cout << "Couldn't set parameter: " << e.what() << "\n";
    }
  } else if (cmd == "/set" && w.size() >= 3 && w[1] == "system") {
    const size_t at = line.find("system") + 6;
    args.chat->set_system(line.substr(line.find_first_not_of(" \t", at)));
    std::cout << "Set system message.\n";
  } else if (cmd == "/set") {
    std::cout << "Available Commands:\n  /set parameter K V\n  /set system TEXT\n"
                 "  /set verbose\n  /set quiet\n";
  } else if (cmd == "/clear") {
    args.chat->clear();
    std::cout << "Cleared session context\n";
  } else if (cmd == "/show" && w.size() >= 2 && w[1] == "template") {
    std::cout << args.chat->chat_template().text << "\n";
  } else if (cmd == "/show" && w.size() >= 2 && w[1] == "info") {
    print_model_summary(engine.file(), std::cout);
  } else if (cmd == "/show") {
    std::cout << "Available Commands:\n  /show info\n  /show template\n";
  } else {
    std::cout << "Unknown command '" << cmd << "'. Type /? for help\n";
  }
  std::cout << std::flush;
  return true;
}

// What the model is given for one message: the text itself with --raw, else the conversation
// (the model's SYSTEM and MESSAGEs, this session's turns, then this message) rendered through the
// model's template.
std::string prompt_for(const RunArgs& args, const std::string& text) {
  if (args.raw) return text;
  return args.chat->prompt_for(text);
}

void run_interactive(Engine& engine, sample::Options& options, RunArgs& args) {
  std::setlocale(LC_CTYPE, "");
  LineEditor editor;
  struct sigaction sa = {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a blocked read or poll returns at once
  struct sigaction old_sa = {};
  sigaction(SIGINT, &sa, &old_sa);

  Output out;
  bool interrupted_at_empty = false;
  bool multiline = false;
  std::string message;
  bool load_reported = false;
  for (;;) {
    std::string line;
    bool was_empty = false;
    const auto r = editor.read(line, multiline, was_empty);
    if (r == LineEditor::Result::kInterrupt) {
      std::cout << "\n";
      if (multiline) {
        multiline = false;
        message.clear();
        interrupted_at_empty = false;
        continue;
      }
      if (was_empty && interrupted_at_empty) break;
      if (was_empty) {
        std::cout << "Use Ctrl + d or /bye to exit.\n";
        interrupted_at_empty = true;
      } else {
        interrupted_at_empty = false;
      }
      std::cout << std::flush;
      continue;
    }
    if (r == LineEditor::Result::kEnd) {
      std::cout << "\n";
      break;
    }
    interrupted_at_empty = false;

    // """ starts a message of several lines; a line ending in """ ends it.
    if (multiline) {
      if (line.size() >= 3 && line.ends_with("\"\"\"")) {
        message += line.substr(0, line.size() - 3);
        multiline = false;
      } else {
        message += line + "\n";
        continue;
      }
    } else if (line.starts_with("\"\"\"")) {
      const std::string rest = line.substr(3);
      if (rest.size() >= 3 && rest.ends_with("\"\"\"")) {
        message = rest.substr(0, rest.size() - 3);
      } else {
        message = rest.empty() ? "" : rest + "\n";
        multiline = true;
        continue;
      }
    } else {
      const size_t first = line.find_first_not_of(" \t");
      if (first == std::string::npos) continue;
      if (line[first] == '/') {
        if (!run_command(line.substr(first), engine, options, args)) break;
        continue;
      }
      message = line;
    }

    editor.take_interrupt();
    out.reset();
    try {
      std::string reply;
      const Stats stats =
          generate(engine, prompt_for(args, message), options, out, &g_interrupted, &reply);
      if (stats.done_reason != "cancel") args.chat->add_turn(message, reply);
      out.end_line();
      std::cout << "\n" << std::flush;
      if (args.verbose) {
        print_stats(stats, load_reported ? std::chrono::nanoseconds(0) : engine.load_duration());
        load_reported = true;
      }
    } catch (const std::exception& e) {
      out.end_line();
      std::cout << std::flush;
      std::cerr << "Error: " << e.what() << "\n";
    }
    editor.take_interrupt();
    message.clear();
  }
  sigaction(SIGINT, &old_sa, nullptr);
}

void run(RunArgs& args) {
  args.info = store::resolve(store::Store(store::Store::default_root()), args.model);
  sample::Options options = make_options(args);
  runner::EngineOptions eo;
  eo.n_threads = thread_count(args, options);
  // Ollama's num_gpu (-1: as many layers as fit; every layer, here) where a GPU is present.
  eo.num_gpu = args.num_gpu                       ? *args.num_gpu
               : backend::cuda::devices().empty() ? 0
                                                  : options.num_gpu;
  Engine engine(args.info.gguf.string(), eo);
  args.chat = std::make_unique<Conversation>(args.info, engine.file().metadata(),
                                             engine.tokenizer().vocab());

  const bool have_prompt = !args.prompt.empty();
  if (!have_prompt && isatty(STDIN_FILENO)) {
    run_interactive(engine, options, args);
    return;
  }
  std::string prompt;
  if (have_prompt) {
    for (size_t i = 0; i < args.prompt.size(); ++i) prompt += (i ? " " : "") + args.prompt[i];
  } else {
    prompt.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  Output out;
  const Stats stats = generate(engine, prompt_for(args, prompt), options, out, nullptr);
  out.end_line();
  if (args.verbose) print_stats(stats, engine.load_duration());
}

}  // namespace

void add_run_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("run", "Run a model: complete a prompt, or chat interactively");
  auto args = std::make_shared<RunArgs>();
  cmd->add_option("model", args->model, "GGUF model file, or a model in the store (corral list)")
      ->required();
  cmd->add_option("prompt", args->prompt,
                  "Prompt (the words are joined by spaces). Without one: an interactive session "
                  "on a terminal, else the whole of stdin");
  cmd->add_option("--option", args->params,
                  "Set a generation option K=V, as Ollama names them (temperature, top_k, top_p, "
                  "min_p, num_predict, num_ctx, seed, stop, repeat_penalty, ...); repeatable")
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_flag("--raw", args->raw,
                "Use the prompt as it is, without the model's template (plain completion; BOS "
                "as the tokenizer asks)");
  cmd->add_flag("--verbose", args->verbose,
                "Print timings to stderr after the response (durations, token counts, rates)");
  cmd->add_option("--seed", args->seed, "Random seed (same seed, same options: same text)");
  cmd->add_option("-t,--threads", args->threads,
                  "Threads for the CPU backend (default: physical cores; overrides num_thread)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("-g,--num-gpu", args->num_gpu,
                  "Layers to offload to the GPU (overrides num_gpu; 0: CPU only; -1: all; "
                  "default: all when a CUDA device is present)");
  cmd->add_flag_callback(
      "--gpu", [args] { args->num_gpu = -1; }, "Offload every layer to the GPU (--num-gpu -1)");
  cmd->footer(
      "Examples:\n"
      "  corral run stories260K-f32.gguf \"Once upon a time\"\n"
      "  corral run model.gguf --option temperature=0 --option num_predict=64 \"Hello\"\n"
      "  echo \"Once upon a time\" | corral run model.gguf --verbose\n"
      "  corral run my-model \"Hello\"   (a model made by corral create)\n"
      "  corral run model.gguf          (interactive: /? for help, /bye to exit)\n"
      "\n"
      "A model from the store brings its SYSTEM, MESSAGEs and PARAMETERs (--option overrides\n"
      "them). Templates are not applied yet: the messages are joined as plain text.");
  cmd->callback([args] { run(*args); });
}

}  // namespace corral::cli
