// `corral run MODEL [PROMPT...]`: generate from a GGUF model. With a prompt, stream the
// continuation and exit; with none and a terminal on stdin, an interactive session (libedit line
// editing, `"""` multi-line input, Ctrl+C stops a generation, /bye exits); with none and stdin
// not a terminal, the prompt is all of stdin. The layout of the session follows `ollama run`.
//
// A model in the store is run by the corral server at CORRAL_HOST (POST /api/chat, or
// /api/generate with --raw); when none answers, one is started in the background first. A .gguf
// file, or CORRAL_NO_SERVER=1, runs the model in this process.
#include <fcntl.h>
#include <histedit.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <clocale>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "backend/cuda/cuda.h"
#include "cli/client.h"
#include "cli/commands.h"
#include "cli/embed.h"
#include "cli/images.h"
#include "cli/prompt.h"
#include "cli/pull.h"
#include "convert/convert.h"
#include "image/image.h"
#include "model/model.h"
#include "parse/output.h"
#include "parse/thinking.h"
#include "runner/engine.h"
#include "sample/options.h"
#include "server/images.h"
#include "store/base64.h"
#include "store/digest.h"
#include "store/model.h"
#include "store/modelfile.h"
#include "store/names.h"

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
  bool insecure = false;  // a missing model may be pulled over plain http
  std::optional<int64_t> seed;
  std::optional<int> threads;
  std::optional<int> num_gpu;         // --num-gpu / --gpu, over the num_gpu option
  std::optional<parse::Think> think;  // --think[=LEVEL], /set think, /set nothink
  std::string think_text;             // --think's value, as given
  std::optional<std::string> system;  // /set system
  std::string keep_alive;             // --keepalive: how long the server keeps the model loaded
  std::vector<std::pair<std::string, std::string>> set_params;  // /set parameter, in order
  bool hide_thinking = false;                                   // --hidethinking
  std::optional<bool> truncate;  // embedding models: cut inputs longer than the context
  int dimensions = 0;            // embedding models: keep this many values
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

std::vector<std::pair<std::string, std::string>> split_params(const RunArgs& a) {
  std::vector<std::pair<std::string, std::string>> params;
  for (const std::string& p : a.params) params.push_back(sample::split_param(p));
  return params;
}

// The model's PARAMETERs first, the user's --option over them.
sample::Options make_options(const RunArgs& a, const store::ModelInfo& info) {
  sample::Options o;
  std::vector<std::string> unknown;  // options of a newer Ollama: skipped, as its server does
  o.apply(nlohmann::json::parse(info.parameters.dump()), &unknown);
  o.apply_params(split_params(a));
  if (a.seed) o.seed = *a.seed;
  return o;
}

int thread_count(const RunArgs& a, const sample::Options& o) {
  return a.threads ? *a.threads : o.num_thread;
}

// Streams a reply to stdout as it comes, as `ollama run` shows it: the thinking (unless hidden)
// after "Thinking..." in grey, then "...done thinking." and the content. Remembers how the
// output ends.
class Output {
 public:
  explicit Output(bool hide_thinking = false)
      : hide_thinking_(hide_thinking), color_(isatty(STDOUT_FILENO) != 0) {}
  void set_hide_thinking(bool hide) { hide_thinking_ = hide; }

  void thinking(std::string_view s) {
    if (s.empty() || hide_thinking_) return;
    if (!in_thinking_) {
      write(color_ ? kGreyBold + std::string("Thinking...\n") + kDefault + kGrey : "Thinking...\n");
      in_thinking_ = true;
    }
    write(s);
  }
  void content(std::string_view s) {
    if (s.empty()) return;
    close_thinking();
    write(s);
  }
  // Ends the current line unless it is already ended (or nothing was written).
  void end_line() {
    if (in_thinking_ && color_) write(kDefault);
    in_thinking_ = false;
    if (last_ && last_ != '\n') write("\n");
  }
  void reset() {
    last_ = 0;
    in_thinking_ = false;
  }

 private:
  static constexpr const char* kGrey = "\x1b[38;5;245m";
  static constexpr const char* kGreyBold = "\x1b[38;5;245m\x1b[1m";
  static constexpr const char* kDefault = "\x1b[0m";

  void close_thinking() {
    if (!in_thinking_) return;
    if (last_ != '\n') write("\n");
    write(color_ ? kGreyBold + std::string("...done thinking.\n\n") + kDefault
                 : "...done thinking.\n\n");
    in_thinking_ = false;
  }
  void write(std::string_view s) {
    if (s.empty()) return;
    std::fwrite(s.data(), 1, s.size(), stdout);
    std::fflush(stdout);
    last_ = s.back();
  }

  bool hide_thinking_;
  bool color_;
  bool in_thinking_ = false;
  char last_ = 0;
};

std::vector<int32_t> tokenize_start(const Engine& engine, std::string_view text) {
  std::vector<int32_t> ids = engine.tokenize(text);
  // A chat template that writes {{ bos_token }} itself, on a vocabulary that also adds BOS,
  // would start the prompt with two: keep one, as transformers' tokenizer would.
  const int32_t bos = engine.tokenizer().vocab().bos;
  if (ids.size() >= 2 && bos >= 0 && ids[0] == bos && ids[1] == bos) ids.erase(ids.begin());
  return ids;
}

// Generates from `prompt`, handing each piece of text to `on_text`. `images` are the files whose
// markers ("[img-N]") the prompt may hold.
Stats generate(Engine& engine, const std::string& prompt, const sample::Options& options,
               const std::function<void(std::string_view)>& on_text,
               const std::atomic<bool>* cancel, const std::vector<std::string>& images = {}) {
  std::vector<int32_t> ids;
  std::vector<runner::PromptImage> placed;
  if (images.empty()) {
    ids = tokenize_start(engine, prompt);
  } else {
    const model::Vision* vision = engine.model().vision();
    if (vision == nullptr) throw std::runtime_error("this model does not support images");
    std::vector<std::shared_ptr<const model::ImageInput>> inputs;
    std::vector<std::string> digests;
    for (const std::string& bytes : images) {
      const image::Image rgb =
          image::decode(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
      inputs.push_back(std::make_shared<const model::ImageInput>(vision->preprocess(rgb)));
      digests.push_back(store::sha256_digest(bytes));
    }
    ids = runner::tokenize_with_images(
        prompt, inputs, digests,
        [&](std::string_view text, bool first) {
          return first ? tokenize_start(engine, text)
                       : engine.tokenizer().encode(text, /*add_special=*/false,
                                                   /*parse_special=*/true);
        },
        placed);
  }
  if (ids.empty()) {
    throw std::runtime_error("the prompt gives no tokens (this model adds no BOS token)");
  }
  return engine.generate(ids, options, on_text, cancel, placed);
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
    // The lines of earlier sessions (Up recalls them), as ~/.ollama/history does for ollama.
    if (const char* home = std::getenv("HOME"); home && *home) {
      history_file_ = std::filesystem::path(home) / ".corral" / "history";
      history(history_, &ev, H_LOAD, history_file_.c_str());
    }
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
      if (save_history_ && !history_file_.empty()) {
        std::error_code ec;
        std::filesystem::create_directories(history_file_.parent_path(), ec);
        history(history_, &ev, H_SAVE, history_file_.c_str());
      }
    }
    return Result::kLine;
  }

  // /set history, /set nohistory: whether lines are saved to ~/.corral/history.
  void set_save_history(bool save) { save_history_ = save; }

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
  std::filesystem::path history_file_;  // ~/.corral/history
  bool save_history_ = true;
  int wake_[2] = {-1, -1};
  bool continuation_ = false;
};

constexpr const char* kReplHelp =
    "Available Commands:\n"
    "  /set parameter K V   Set a parameter (e.g. /set parameter temperature 0.5)\n"
    "  /set verbose         Show timings after each response\n"
    "  /set quiet           Hide timings\n"
    "  /set system TEXT     Set the system message\n"
    "  /set think [LEVEL]   Let a thinking model think (LEVEL: low, medium, high, max)\n"
    "  /set nothink         Answer without thinking\n"
    "  /set nohistory       Stop saving input lines to ~/.corral/history (/set history again)\n"
    "  /show info           Show details for this model\n"
    "  /show WHAT           license, modelfile, parameters, system or template\n"
    "  /clear               Forget this session's conversation\n"
    "  /bye                 Exit\n"
    "  /?, /help            Help for a command\n"
    "\n"
    "Use \"\"\" to begin a multi-line message.\n"
    "Vision models: name image files in a message (./photo.png, ~/a.jpg) to show them.\n"
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

// What the session generates with: the model in this process, or a server.
struct Reply {
  Stats stats;
  std::chrono::nanoseconds load_duration{0};
};

class Session {
 public:
  virtual ~Session() = default;
  // Streams the reply to `message` (the message itself with --raw, else the conversation so far
  // and this message through the model's template); the exchange is remembered unless cancelled.
  // `images`: the files the message shows (vision models).
  virtual Reply reply(const std::string& message, const std::vector<std::string>& images,
                      Output& out, const std::atomic<bool>* cancel) = 0;
  // Whether the model reads images (then image paths in messages are read as images).
  virtual bool vision() const = 0;
  // Whether the model's template can think (it has thinking tags).
  virtual bool can_think() const = 0;
  // /set parameter K V; throws std::exception for an unknown key or a bad value.
  virtual void set_parameter(const std::string& key, const std::string& value) = 0;
  virtual void set_system(std::string system) = 0;
  virtual void clear() = 0;
  // The model's /api/show answer (made by server::show_json in this process, or the server's).
  virtual const nlohmann::json& show() const = 0;
};

class LocalSession : public Session {
 public:
  LocalSession(const RunArgs& args, const store::ModelInfo& info)
      : args_(args), options_(make_options(args, info)) {
    runner::EngineOptions eo;
    eo.n_threads = thread_count(args, options_);
    // Ollama's num_gpu (-1: as many layers as fit; every layer, here) where a GPU is present.
    eo.num_gpu = args.num_gpu                       ? *args.num_gpu
                 : backend::cuda::devices().empty() ? 0
                                                    : options_.num_gpu;
    eo.projector = info.projector.string();
    engine_ = std::make_unique<Engine>(info.gguf.string(), eo);
    show_ = show_answer(store::Store(store::Store::default_root()), info, false);
    chat_ = std::make_unique<Conversation>(info, engine_->file().metadata(),
                                           engine_->tokenizer().vocab());
  }

  bool vision() const override { return engine_->model().vision() != nullptr; }
  bool can_think() const override {
    return parse::thinking_tags(chat_->chat_template()).has_value();
  }

  Reply reply(const std::string& message_in, const std::vector<std::string>& images, Output& out,
              const std::atomic<bool>* cancel) override {
    // The images are marked in front of the message, as the server marks them.
    std::string message;
    std::vector<std::string> all = images_;
    for (const std::string& bytes : images) {
      message += runner::image_marker(all.size());
      all.push_back(bytes);
    }
    message += message_in;
    // Thinking as the server settles it: on by default for a model that can think.
    std::optional<parse::ThinkTags> tags;
    if (!args_.raw) {
      parse::Think think = args_.think.value_or(parse::Think{});
      try {
        tags = parse::settle_think(think, parse::thinking_tags(chat_->chat_template()));
      } catch (const std::invalid_argument& e) {
        throw std::runtime_error("\"" + args_.model + "\" " + e.what());
      }
      chat_->set_think(think);
    }
    const std::string prompt = args_.raw ? message : chat_->prompt_for(message);
    parse::OutputParser parser(tags, std::nullopt, tags && parse::opens_thinking(prompt, *tags));
    std::string thinking, content;
    const auto show = [&](const parse::Delta& d) {
      out.thinking(d.thinking);
      out.content(d.content);
      thinking += d.thinking;
      content += d.content;
    };
    Reply r;
    r.stats = generate(
        *engine_, prompt, options_,
        [&](std::string_view text) {
          show(parser.push(runner::Piece{std::string(text), {}}));
        },
        cancel, all);
    show(parser.finish());
    if (r.stats.done_reason != "cancel") {
      chat_->add_turn(message, content, thinking);
      images_ = std::move(all);
    }
    // The load is reported with the first reply only: the model stays loaded after it.
    r.load_duration = load_reported_ ? std::chrono::nanoseconds(0) : engine_->load_duration();
    load_reported_ = true;
    return r;
  }
  void set_parameter(const std::string& key, const std::string& value) override {
    sample::Options changed = options_;
    const std::pair<std::string, std::string> kv[] = {{key, value}};
    changed.apply_params(kv);
    if (key == "num_thread" && !args_.threads) engine_->set_threads(changed.num_thread);
    options_ = std::move(changed);
  }
  void set_system(std::string system) override { chat_->set_system(std::move(system)); }
  void clear() override {
    chat_->clear();
    images_.clear();
  }
  const nlohmann::json& show() const override { return show_; }

 private:
  const RunArgs& args_;
  sample::Options options_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<Conversation> chat_;
  nlohmann::json show_;
  std::vector<std::string> images_;  // of the conversation's messages, by marker number
  bool load_reported_ = false;
};

std::chrono::nanoseconds nanos(const nlohmann::json& obj, const char* key) {
  return std::chrono::nanoseconds(obj.value(key, int64_t{0}));
}

// A session on the server: the conversation is kept here and sent whole with each message, as
// `ollama run` does (the server adds the model's SYSTEM and MESSAGEs and applies its template).
class RemoteSession : public Session {
 public:
  RemoteSession(Client& client, const RunArgs& args, nlohmann::json show)
      : client_(client), args_(args), show_(std::move(show)) {
    options_ = sample::params_to_json(split_params(args));
    if (args.seed) options_["seed"] = *args.seed;
    if (args.threads) options_["num_thread"] = *args.threads;
    if (args.num_gpu) options_["num_gpu"] = *args.num_gpu;
  }

  bool vision() const override {
    const auto caps = show_.value("capabilities", nlohmann::json::array());
    return std::find(caps.begin(), caps.end(), "vision") != caps.end();
  }
  bool can_think() const override {
    const auto caps = show_.value("capabilities", nlohmann::json::array());
    return std::find(caps.begin(), caps.end(), "thinking") != caps.end();
  }

  Reply reply(const std::string& message, const std::vector<std::string>& images, Output& out,
              const std::atomic<bool>* cancel) override {
    nlohmann::json req = {{"model", args_.model}, {"stream", true}, {"options", options_}};
    nlohmann::json encoded = nlohmann::json::array();
    for (const std::string& bytes : images) encoded.push_back(store::base64_encode(bytes));
    nlohmann::json user = {{"role", "user"}, {"content", message}};
    if (!images.empty()) user["images"] = encoded;
    if (args_.raw) {
      req["prompt"] = message;
      req["raw"] = true;
      if (!images.empty()) req["images"] = encoded;
    } else {
      nlohmann::json messages = nlohmann::json::array();
      if (system_) messages.push_back({{"role", "system"}, {"content", *system_}});
      for (const auto& m : turns_) messages.push_back(m);
      messages.push_back(user);
      req["messages"] = std::move(messages);
    }
    if (!args_.keep_alive.empty()) req["keep_alive"] = args_.keep_alive;
    if (args_.think) {
      if (!args_.think->level.empty())
        req["think"] = args_.think->level;
      else
        req["think"] = args_.think->on();
    }
    // Ctrl+C closes the connection (the server then cancels the request): a watcher, because
    // the signal handler can do nothing but set the flag, and a read may wait for a long prompt.
    std::atomic<bool> finished{false};
    client_.clear_cancel();
    std::thread watcher;
    if (cancel) {
      watcher = std::thread([this, cancel, &finished] {
        while (!finished.load()) {
          if (cancel->load()) {
            client_.cancel();
            return;
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
      });
    }
    std::string thinking, text;
    nlohmann::json last;
    try {
      client_.stream(args_.raw ? "/api/generate" : "/api/chat", req,
                     [&](const nlohmann::json& obj) {
                       const nlohmann::json& m = args_.raw ? obj : obj.value("message", obj);
                       const std::string thought = m.value("thinking", "");
                       const std::string piece = m.value(args_.raw ? "response" : "content", "");
                       out.thinking(thought);
                       out.content(piece);
                       thinking += thought;
                       text += piece;
                       if (obj.value("done", false)) last = obj;
                       return true;
                     });
    } catch (...) {
      finished = true;
      if (watcher.joinable()) watcher.join();
      throw;
    }
    finished = true;
    if (watcher.joinable()) watcher.join();

    Reply r;
    if (client_.cancelled() || last.is_null()) {
      r.stats.done_reason = "cancel";
      return r;
    }
    r.stats.prompt_eval_count = last.value("prompt_eval_count", 0);
    r.stats.prompt_eval_duration = nanos(last, "prompt_eval_duration");
    r.stats.eval_count = last.value("eval_count", 0);
    r.stats.eval_duration = nanos(last, "eval_duration");
    r.stats.total_duration = nanos(last, "total_duration");
    r.stats.done_reason = last.value("done_reason", "");
    r.load_duration = nanos(last, "load_duration");
    if (!args_.raw) {
      turns_.push_back(std::move(user));
      nlohmann::json reply = {{"role", "assistant"}, {"content", text}};
      if (!thinking.empty()) reply["thinking"] = thinking;
      turns_.push_back(std::move(reply));
    }
    return r;
  }
  void set_parameter(const std::string& key, const std::string& value) override {
    const std::pair<std::string, std::string> kv[] = {{key, value}};
    const nlohmann::json changed = sample::params_to_json(kv);
    for (const auto& item : changed.items()) options_[item.key()] = item.value();
  }
  void set_system(std::string system) override { system_ = std::move(system); }
  void clear() override { turns_ = nlohmann::json::array(); }
  const nlohmann::json& show() const override { return show_; }

 private:
  Client& client_;
  const RunArgs& args_;
  nlohmann::json show_;  // the model's /api/show answer
  nlohmann::json options_ = nlohmann::json::object();
  std::optional<std::string> system_;
  nlohmann::json turns_ = nlohmann::json::array();
};

constexpr const char* kShowHelp =
    "Available Commands:\n"
    "  /show info         Show details for this model\n"
    "  /show license      Show model license\n"
    "  /show modelfile    Show Modelfile for this model\n"
    "  /show parameters   Show parameters for this model\n"
    "  /show system       Show system message\n"
    "  /show template     Show prompt template\n";

// `/show WHAT`, as `ollama run` answers it: from the model's /api/show answer, with what this
// session set (/set system, /set parameter) over it.
void show_command(const std::string& what, const nlohmann::json& show, const RunArgs& args) {
  const std::string system = args.system.value_or(show.value("system", ""));
  if (what == "info") {
    nlohmann::json shown = show;
    if (!system.empty()) shown["system"] = system;
    print_show_answer(shown, false, std::cout);
  } else if (what == "license") {
    const std::string l = show.value("license", "");
    std::cout << (l.empty() ? "No license was specified for this model." : l) << "\n";
  } else if (what == "modelfile") {
    std::cout << show.value("modelfile", "") << "\n";
  } else if (what == "parameters") {
    std::cout << "Model defined parameters:\n";
    const std::string p = show.value("parameters", "");
    if (p.empty()) std::cout << "  No additional parameters were specified for this model.\n";
    size_t start = 0;
    while (!p.empty() && start <= p.size()) {
      const size_t nl = p.find('\n', start);
      std::cout << "  " << p.substr(start, nl == std::string::npos ? nl : nl - start) << "\n";
      if (nl == std::string::npos) break;
      start = nl + 1;
    }
    std::cout << "\n";
    if (!args.set_params.empty()) {
      std::cout << "User defined parameters:\n";
      for (const auto& [k, v] : args.set_params) {
        std::printf("  %-30s %s\n", k.c_str(), v.c_str());
      }
      std::fflush(stdout);
      std::cout << "\n";
    }
  } else if (what == "system") {
    std::cout << (system.empty() ? "No system message was specified for this model."
                                 : system + "\n")
              << "\n";
  } else if (what == "template") {
    const std::string t = show.value("template", "");
    std::cout << (t.empty() ? "No prompt template was specified for this model." : t) << "\n";
  } else {
    std::cout << "Unknown command '/show " << what << "'. Type /? for help\n";
  }
}

// A /command; returns false when the session should end.
bool run_command(const std::string& line, Session& session, RunArgs& args, LineEditor& editor) {
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
      session.set_parameter(w[2], value);
      args.set_params.emplace_back(w[2], value);
      std::cout << "Set parameter '" << w[2] << "' to '" << value << "'\n";
    } catch (const std::exception& e) {
      std::cout << "Couldn't set parameter: " << e.what() << "\n";
    }
  } else if (cmd == "/set" && w.size() >= 2 && (w[1] == "history" || w[1] == "nohistory")) {
    editor.set_save_history(w[1] == "history");
    std::cout << "Set '" << w[1] << "' mode.\n";
  } else if (cmd == "/set" && w.size() >= 2 && (w[1] == "think" || w[1] == "nothink")) {
    parse::Think think{w[1] == "think", ""};
    if (w[1] == "think" && w.size() >= 3) {
      const std::optional<parse::Think> level = parse::think_from_text(w[2]);
      if (!level) {
        std::cout << "Invalid think value '" << w[2]
                  << "' (true, false, low, medium, high or max)\n";
        return true;
      }
      think = *level;
    }
    args.think = think;
    if (!session.can_think())
      std::cerr << "warning: model \"" << args.model << "\" does not support thinking output\n";
    if (!think.on())
      std::cout << "Set 'nothink' mode.\n";
    else if (!think.level.empty())
      std::cout << "Set 'think' mode to '" << think.level << "'.\n";
    else
      std::cout << "Set 'think' mode.\n";
  } else if (cmd == "/set" && w.size() >= 3 && w[1] == "system") {
    const size_t at = line.find("system") + 6;
    args.system = line.substr(line.find_first_not_of(" \t", at));
    session.set_system(*args.system);
    std::cout << "Set system message.\n";
  } else if (cmd == "/set") {
    std::cout << "Available Commands:\n  /set parameter K V\n  /set system TEXT\n"
                 "  /set think [LEVEL]\n  /set nothink\n  /set history\n  /set nohistory\n"
                 "  /set verbose\n  /set quiet\n";
  } else if (cmd == "/clear") {
    session.clear();
    std::cout << "Cleared session context\n";
  } else if (cmd == "/show" && w.size() >= 2) {
    show_command(w[1], session.show(), args);
  } else if (cmd == "/show") {
    std::cout << kShowHelp;
  } else {
    std::cout << "Unknown command '" << cmd << "'. Type /? for help\n";
  }
  std::cout << std::flush;
  return true;
}

void run_interactive(Session& session, RunArgs& args) {
  std::setlocale(LC_CTYPE, "");
  LineEditor editor;
  struct sigaction sa = {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a blocked read or poll returns at once
  struct sigaction old_sa = {};
  sigaction(SIGINT, &sa, &old_sa);

  // The model's MESSAGEs, the conversation the session continues, shown as ollama run shows them.
  for (const auto& m : session.show().value("messages", nlohmann::json::array())) {
    if (!m.is_object()) continue;
    const std::string role = m.value("role", ""), content = m.value("content", "");
    if (role == "user") std::cout << ">>> " << content << "\n";
    if (role == "assistant") std::cout << content << "\n\n";
  }
  std::cout << std::flush;

  Output out(args.hide_thinking);
  bool interrupted_at_empty = false;
  bool multiline = false;
  std::string message;
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
        if (!run_command(line.substr(first), session, args, editor)) break;
        continue;
      }
      message = line;
    }

    editor.take_interrupt();
    out.reset();
    try {
      PromptImages p;
      if (session.vision()) {
        p = take_image_paths(message, &std::cerr);
      } else {
        p.text = message;
      }
      const Reply r = session.reply(p.text, p.images, out, &g_interrupted);
      out.end_line();
      std::cout << "\n" << std::flush;
      if (args.verbose) print_stats(r.stats, r.load_duration);
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

// Where a server started by `corral run` writes its log: ~/.corral/logs/server.log (beside the
// store when there is no home folder).
std::filesystem::path server_log_path() {
  const char* home = std::getenv("HOME");
  const std::filesystem::path dir = home && *home
                                        ? std::filesystem::path(home) / ".corral" / "logs"
                                        : store::Store::default_root().parent_path() / "logs";
  return dir / "server.log";
}

// Starts `corral serve` (this same executable) in a session of its own, its output going to the
// log, and waits until it answers.
std::unique_ptr<Client> start_server() {
  auto client = std::make_unique<Client>(host_from_env());
  const std::filesystem::path log = server_log_path();
  std::filesystem::create_directories(log.parent_path());
  // Several `corral run` started at once start one server: the first to hold the lock starts it
  // and waits until it answers; the others then find it answering. (The lock goes with the
  // descriptor, which the server does not inherit.)
  const int lock_fd =
      open((log.parent_path() / "server.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  struct Unlock {
    int fd;
    ~Unlock() {
      if (fd >= 0) close(fd);
    }
  } unlock{lock_fd};
  if (lock_fd >= 0) {
    while (flock(lock_fd, LOCK_EX) != 0 && errno == EINTR) {
    }
  }
  if (client->alive()) return client;
  const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error(log.string() + ": " + std::strerror(errno));
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = fork();
  if (pid < 0) {
    close(fd);
    throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    setsid();
    const int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    execl("/proc/self/exe", "corral", "serve", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fd);
  std::cerr << "started corral server in the background (pid " << pid << ", log: " << log.string()
            << ")\n";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    if (client->alive()) return client;
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      throw std::runtime_error("the corral server exited at once (see " + log.string() + ")");
    }
    if (std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error("the corral server did not answer at " + client->address().url() +
                               " within 10 s (see " + log.string() + ")");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

void run_session(Session& session, RunArgs& args) {
  const bool have_prompt = !args.prompt.empty();
  if (!have_prompt && isatty(STDIN_FILENO)) {
    run_interactive(session, args);
    return;
  }
  std::string prompt;
  if (have_prompt) {
    for (size_t i = 0; i < args.prompt.size(); ++i) prompt += (i ? " " : "") + args.prompt[i];
  } else {
    prompt.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  Output out(args.hide_thinking);
  PromptImages p;
  if (session.vision()) {
    p = take_image_paths(prompt, &std::cerr);
  } else {
    p.text = prompt;
  }
  const Reply r = session.reply(p.text, p.images, out, nullptr);
  out.end_line();
  if (args.verbose) print_stats(r.stats, r.load_duration);
}

// Whether `run` may pull `model` when the store lacks it: a model name, not a path (a path that
// is not there is an error of its own).
bool pullable(const std::string& model) {
  return !store::is_model_path(model) && !model.starts_with(".") && !model.starts_with("/") &&
         !model.starts_with("~") && store::ModelName::valid(model);
}

// The server's /api/show answer for the model; a model the server lacks is pulled first, as
// `ollama run` does.
nlohmann::json show_or_pull(Client& client, const RunArgs& args) {
  std::string not_found;
  try {
    return client.post("/api/show", {{"model", args.model}});
  } catch (const ServerError& e) {
    if (e.status != 404 || !pullable(args.model)) throw;
    not_found = e.what();
  }
  try {
    pull_model(&client, args.model, args.insecure);
  } catch (const ServerError& e) {
    // A server with another store than this shell's (a background server started with another
    // CORRAL_MODELS) is why the model was missing: the pull's error says so too.
    if (not_found.find("not this shell's") == std::string::npos) throw;
    throw ServerError(e.status, std::string(e.what()) + "; " + not_found);
  }
  return client.post("/api/show", {{"model", args.model}});
}

// An embedding model's input: the prompt's words, else all of stdin; it must not be empty.
EmbedArgs embed_args(const RunArgs& args, const sample::Options& options) {
  EmbedArgs e{.model = args.model, .truncate = args.truncate, .dimensions = args.dimensions};
  e.threads = args.threads;
  e.num_ctx = options.num_ctx;
  if (!args.prompt.empty()) {
    for (size_t i = 0; i < args.prompt.size(); ++i) e.text += (i ? " " : "") + args.prompt[i];
  } else if (!isatty(STDIN_FILENO)) {
    e.text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  if (e.text.empty()) {
    throw std::runtime_error("embedding models require input text. Usage: corral run " +
                             args.model + " \"your text here\"");
  }
  return e;
}

// A folder named as the model: the one GGUF in it is run (a vision model's text GGUF and its
// projector are a model of the store's making); a Hugging Face folder must be made a model
// first. A path that names nothing is said to be one, never taken for a model name.
void resolve_path_argument(RunArgs& args) {
  if (!store::looks_like_path(args.model)) return;  // a model name, even where a folder has it
  std::error_code ec;
  const std::filesystem::path p = store::expand_modelfile_path(args.model, ".");
  if (std::filesystem::is_directory(p, ec)) {
    if (convert::is_hf_folder(p.string())) {
      throw std::runtime_error(
          args.model + " is a Hugging Face model folder; make a model of it first:\n  echo 'FROM " +
          args.model +
          "' > Modelfile\n  corral create my-model -f Modelfile\n  corral run my-model");
    }
    std::vector<std::filesystem::path> ggufs;
    for (const auto& e : std::filesystem::directory_iterator(p, ec)) {
      if (e.path().extension() == ".gguf" && e.is_regular_file(ec)) ggufs.push_back(e.path());
    }
    if (ggufs.size() == 1) {
      args.model = ggufs[0].string();
      return;
    }
    throw std::runtime_error(
        args.model + " is a folder " +
        (ggufs.empty() ? std::string("without a model (no .gguf file, no config.json)")
                       : "of several .gguf files: name one, or make a model of them with "
                         "corral create (a text GGUF and its projector)"));
  }
  if (!std::filesystem::exists(p, ec)) {
    throw std::runtime_error(store::missing_path_error(args.model, p));
  }
}

void run(RunArgs& args) {
  resolve_path_argument(args);
  if (!store::is_model_path(args.model) && !server_disabled()) {
    std::unique_ptr<Client> client = connect_if_running();
    if (!client) client = start_server();
    split_params(args);  // a malformed --option is reported before anything is sent
    const nlohmann::json show = show_or_pull(*client, args);
    const nlohmann::json caps = show.value("capabilities", nlohmann::json::array());
    if (std::find(caps.begin(), caps.end(), "embedding") != caps.end()) {
      sample::Options o;
      o.apply_params(split_params(args));
      std::cout << embedding_json(embed_remote(*client, embed_args(args, o))) << std::endl;
      return;
    }
    RemoteSession session(*client, args, show);
    run_session(session, args);
    return;
  }
  const store::Store st(store::Store::default_root());
  if (pullable(args.model) && !st.find_manifest(store::ModelName::parse(args.model))) {
    split_params(args);
    pull_model(nullptr, args.model, args.insecure);
  }
  const store::ModelInfo info = store::resolve(st, args.model);
  if (model::is_embedding_model(ml::gguf::File::open(info.gguf.string()).metadata())) {
    const EmbedArgs e = embed_args(args, make_options(args, info));
    std::cout << embedding_json(embed_local(info, e)) << std::endl;
    return;
  }
  LocalSession session(args, info);
  run_session(session, args);
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
  cmd->add_flag("--truncate{true}", args->truncate,
                "Embedding models: cut inputs longer than the context (the default); "
                "--truncate=false refuses them");
  cmd->add_option("--dimensions", args->dimensions,
                  "Embedding models: keep this many values of the embedding (renormalized)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--raw", args->raw,
                "Use the prompt as it is, without the model's template (plain completion; BOS "
                "as the tokenizer asks)");
  cmd->add_flag("--verbose", args->verbose,
                "Print timings to stderr after the response (durations, token counts, rates)");
  cmd->add_flag("--insecure", args->insecure,
                "Pull a missing model over plain http (only from a registry you trust)");
  auto* think = cmd->add_flag(
      "--think{true}", args->think_text,
      "Thinking models: --think, --think=false, or a level --think=low|medium|high|max "
      "(default: a model that can think thinks)");
  think->check(CLI::IsMember({"true", "false", "low", "medium", "high", "max"}));
  cmd->add_option("--keepalive", args->keep_alive,
                  "How long the server keeps the model loaded after this run (5m, 1h, 0 to unload "
                  "at once, -1 to keep it)");
  cmd->add_flag("--hidethinking", args->hide_thinking,
                "Hide the thinking of a thinking model (the answer alone is printed)");
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
      "  corral run llama3.2            (pulled from registry.ollama.ai when missing)\n"
      "  corral run model.gguf          (interactive: /? for help, /bye to exit)\n"
      "\n"
      "  corral run qwen2-vl \"what is in ./photo.png?\"   (a vision model: image paths are read)\n"
      "\n"
      "A model from the store brings its SYSTEM, MESSAGEs and PARAMETERs (--option overrides\n"
      "them) and its template.\n"
      "\n"
      "A model name the store lacks is pulled first, as `corral pull` would (llama3.2 comes\n"
      "from registry.ollama.ai).\n"
      "\n"
      "A model from the store is run by the corral server at CORRAL_HOST (default\n"
      "127.0.0.1:11434); when none answers, `corral serve` is started in the background (log:\n"
      "~/.corral/logs/server.log) and keeps the model loaded for the next run. Ctrl+C stops a\n"
      "response. A .gguf file, or CORRAL_NO_SERVER=1, runs the model in this process instead.");
  cmd->callback([args] {
    if (!args->think_text.empty()) args->think = parse::think_from_text(args->think_text);
    run(*args);
  });
}

}  // namespace corral::cli
