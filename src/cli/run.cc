// `corral run MODEL [PROMPT...]`: generate from a GGUF model. With a prompt, stream the
// continuation and exit; with none and a terminal on stdin, an interactive session (libedit line
// editing, `"""` multi-line input, Ctrl+C stops a generation, /bye exits); with none and stdin
// not a terminal, the prompt is all of stdin. The layout of the session follows `ollama run`.
//
// A model in the store is run by the corral server at CORRAL_HOST (POST /api/chat, or
// /api/generate with --raw); when none answers, one is started in the background first. A .gguf
// file, or CORRAL_NO_SERVER=1, runs the model in this process.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
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
#include "cli/context_note.h"
#include "cli/embed.h"
#include "cli/images.h"
#include "cli/prompt.h"
#include "cli/pull.h"
#include "cli/repl.h"
#include "cli/session.h"
#include "cli/spinner.h"
#include "convert/convert.h"
#include "image/image.h"
#include "model/model.h"
#include "parse/output.h"
#include "parse/thinking.h"
#include "runner/engine.h"
#include "sample/options.h"
#include "server/images.h"
#include "store/base64.h"
#include "store/create.h"
#include "store/digest.h"
#include "store/model.h"
#include "store/modelfile.h"
#include "store/names.h"

namespace corral::cli {
namespace {

using runner::Engine;
using runner::Stats;

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
               const std::atomic<bool>* cancel, const std::vector<std::string>& images,
               std::shared_ptr<const sample::Grammar> grammar) {
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
  return engine.generate(ids, options, on_text, cancel, placed, std::move(grammar));
}

// Chat messages as /save sends them: each turn's role and content (not its thinking).
template <class Turns>
nlohmann::json role_and_content(const Turns& turns) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& t : turns) {
    out.push_back({{"role", t.value("role", "")}, {"content", t.value("content", "")}});
  }
  return out;
}

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
    options_.num_ctx = fit_context(options_);
    show_ = show_answer(store::Store(store::Store::default_root()), info, false);
    chat_ = std::make_unique<Conversation>(info, engine_->file().metadata(),
                                           engine_->tokenizer().vocab());
  }

  bool vision() const override { return engine_->model().vision() != nullptr; }
  bool can_think() const override {
    return parse::thinking_tags(chat_->chat_template()).has_value();
  }

  Reply reply(const std::string& message_in, const std::vector<std::string>& images,
              ReplyOutput& out, const std::atomic<bool>* cancel) override {
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
        cancel, all, args_.format == "json" ? sample::Grammar::json_object() : nullptr);
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
    if (key == "num_ctx") changed.num_ctx = fit_context(changed);
    options_ = std::move(changed);
  }
  void set_system(std::string system) override { chat_->set_system(std::move(system)); }
  void clear() override {
    chat_->clear();
    images_.clear();
  }
  const nlohmann::json& show() const override { return show_; }
  nlohmann::json turns() const override { return role_and_content(chat_->turns()); }
  // The request made a Modelfile, as the server makes one from /api/create.
  void create(const nlohmann::json& request) override {
    store::Modelfile mf;
    mf.from = request.at("from").get<std::string>();
    if (request.contains("system")) mf.system = request["system"].get<std::string>();
    if (request.contains("parameters")) {
      mf.parameters = nlohmann::ordered_json::parse(request["parameters"].dump());
    }
    for (const auto& m : request.value("messages", nlohmann::json::array())) {
      mf.messages.push_back({m.value("role", ""), m.value("content", "")});
    }
    store::Store st(store::Store::default_root());
    store::create_model(st, store::ModelName::parse(request.at("model").get<std::string>()), mf,
                        std::filesystem::current_path());
  }

 private:
  // The context memory holds, before the cache is allocated: all `o` asks when it fits, else
  // lowered (one line on stderr) or refused, as the server's scheduler decides (runner::admit).
  int64_t fit_context(const sample::Options& o) const {
    return runner::admit_in_process(args_.model,
                                    engine_->memory_needs(engine_->context_size(o), o.num_batch));
  }

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

  Reply reply(const std::string& message, const std::vector<std::string>& images, ReplyOutput& out,
              const std::atomic<bool>* cancel) override {
    nlohmann::json req = {{"model", args_.model}, {"stream", true}, {"options", options_}};
    if (!args_.format.empty()) req["format"] = args_.format;
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
    if (!context_checked_) {
      context_checked_ = true;
      if (auto note = lowered_context_note(client_, args_.model, show_, options_)) {
        out.end_line();
        std::cerr << *note << std::endl;
      }
    }
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
    if (key == "num_ctx") context_checked_ = false;
  }
  void set_system(std::string system) override { system_ = std::move(system); }
  void clear() override { turns_ = nlohmann::json::array(); }
  const nlohmann::json& show() const override { return show_; }
  nlohmann::json turns() const override { return role_and_content(turns_); }
  // A generate request with no prompt loads the model, as `ollama run` loads it.
  void load() override {
    nlohmann::json req = {{"model", args_.model}, {"options", options_}};
    if (!args_.keep_alive.empty()) req["keep_alive"] = args_.keep_alive;
    client_.post("/api/generate", req);
  }
  void create(const nlohmann::json& request) override {
    nlohmann::json req = request;
    req["stream"] = false;
    client_.post("/api/create", req);
  }

 private:
  Client& client_;
  const RunArgs& args_;
  nlohmann::json show_;  // the model's /api/show answer
  nlohmann::json options_ = nlohmann::json::object();
  std::optional<std::string> system_;
  nlohmann::json turns_ = nlohmann::json::array();
  bool context_checked_ = false;  // whether the server's context was compared with the asked one
};

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

void run_session(std::unique_ptr<Session> session, RunArgs& args, const SessionFactory& make) {
  const bool have_prompt = !args.prompt.empty();
  if (!have_prompt && isatty(STDIN_FILENO)) {
    {
      Spinner spinner;
      session->load();
    }
    run_interactive(std::move(session), args, make);
    return;
  }
  std::string prompt;
  if (have_prompt) {
    for (size_t i = 0; i < args.prompt.size(); ++i) prompt += (i ? " " : "") + args.prompt[i];
  } else {
    prompt.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  ReplyOutput out(args.hide_thinking);
  out.set_word_wrap(args.word_wrap && args.format.empty());
  out.begin();
  PromptImages p;
  if (session->vision()) {
    p = take_image_paths(prompt, &std::cerr);
  } else {
    p.text = prompt;
  }
  const Reply r = session->reply(p.text, p.images, out, nullptr);
  out.end_line();
  if (args.verbose) print_stats(r.stats, r.load_duration);
}

bool is_embedding(const nlohmann::json& show) {
  const nlohmann::json caps = show.value("capabilities", nlohmann::json::array());
  return std::find(caps.begin(), caps.end(), "embedding") != caps.end();
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
  if (args.format != "" && args.format != "json") {
    throw std::runtime_error("invalid format '" + args.format + "': the format may be 'json'");
  }
  const bool terminal = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
  if (!store::is_model_path(args.model) && !server_disabled()) {
    std::unique_ptr<Client> client = connect_if_running();
    if (!client) client = start_server();
    split_params(args);  // a malformed --option is reported before anything is sent
    const nlohmann::json show = show_or_pull(*client, args);
    if (is_embedding(show)) {
      sample::Options o;
      o.apply_params(split_params(args));
      std::cout << embedding_json(embed_remote(*client, embed_args(args, o))) << std::endl;
      return;
    }
    // /load: a model the server has (no pull), that chats.
    const SessionFactory make = [&client](RunArgs& a) -> std::unique_ptr<Session> {
      nlohmann::json show = client->post("/api/show", {{"model", a.model}});
      if (is_embedding(show)) throw std::runtime_error("an embedding model cannot chat");
      return std::make_unique<RemoteSession>(*client, a, std::move(show));
    };
    run_session(std::make_unique<RemoteSession>(*client, args, show), args, make);
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
  const SessionFactory make = [](RunArgs& a) -> std::unique_ptr<Session> {
    const store::ModelInfo info =
        store::resolve(store::Store(store::Store::default_root()), a.model);
    if (model::is_embedding_model(ml::gguf::File::open(info.gguf.string()).metadata())) {
      throw std::runtime_error("an embedding model cannot chat");
    }
    return std::make_unique<LocalSession>(a, info);
  };
  std::unique_ptr<Session> session;
  {
    std::optional<Spinner> spinner;  // loading takes a while
    if (terminal) spinner.emplace();
    session = std::make_unique<LocalSession>(args, info);
  }
  run_session(std::move(session), args, make);
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
  cmd->add_option("--format", args->format,
                  "Answer in this format: json (the reply is one JSON value)");
  cmd->add_flag_callback(
      "--nowordwrap", [args] { args->word_wrap = false; },
      "Do not wrap words at the terminal's width (the text as the model wrote it)");
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
