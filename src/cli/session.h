// What `corral run` was asked (RunArgs) and what it generates with (Session: the model in this
// process, or a server), shared by the one-shot run (run.cc) and the interactive session
// (repl.cc).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cli/reply_output.h"
#include "parse/thinking.h"
#include "runner/engine.h"

namespace corral::cli {

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
  std::string format;                 // --format json, /set format json: "" or "json"
  bool word_wrap = true;              // --nowordwrap, /set nowordwrap
  std::vector<std::pair<std::string, std::string>> set_params;  // /set parameter, in order
  bool hide_thinking = false;                                   // --hidethinking
  std::optional<bool> truncate;  // embedding models: cut inputs longer than the context
  int dimensions = 0;            // embedding models: keep this many values
};

struct Reply {
  runner::Stats stats;
  std::chrono::nanoseconds load_duration{0};
};

class Session {
 public:
  virtual ~Session() = default;
  // Streams the reply to `message` (the message itself with --raw, else the conversation so far
  // and this message through the model's template); the exchange is remembered unless cancelled.
  // `images`: the files the message shows (vision models).
  virtual Reply reply(const std::string& message, const std::vector<std::string>& images,
                      ReplyOutput& out, const std::atomic<bool>* cancel) = 0;
  // Loads the model now (an interactive session loads before its first prompt, as ollama's).
  virtual void load() {}
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
  // This session's exchanges as chat messages ({"role", "content"}), oldest first.
  virtual nlohmann::json turns() const = 0;
  // /save: makes a model from an /api/create request ({"model", "from", "system",
  // "parameters", "messages"}); throws std::exception with the reason.
  virtual void create(const nlohmann::json& request) = 0;
};

// Makes the session for args.model (/load changes the model and asks for a new one); throws
// std::exception when it cannot (not found, not a chat model).
using SessionFactory = std::function<std::unique_ptr<Session>(RunArgs& args)>;

}  // namespace corral::cli
