// Which models are loaded: a model loads on first use and stays loaded for keep_alive after its
// last request (Ollama's scheduler, server/sched.go). At most max_loaded models are resident; to
// load another the least recently used idle one is unloaded (one with requests in flight never
// is). A request asking for a num_ctx up to the loaded one is served by the loaded instance;
// a larger one (or other load-time options) reloads it once no request uses it.
//
// Memory admission: before a model's KV cache is allocated, what the load needs (weights, KV
// cache, compute buffers: Runner's MemoryNeeds) is compared with what is available (the probe,
// MemAvailable by default) and with what CORRAL_MAX_MEMORY leaves. Idle models are unloaded, least
// recently used first, while the load does not fit; then runner::admit (memory.h, as for a model
// run in-process) lowers the context to what fits (not below min_num_ctx), and refuses a load
// that does not fit even so (InsufficientMemoryError: acquire() throws it, the server answers
// 507).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "runner/runner.h"
#include "sample/options.h"
#include "store/model.h"

namespace corral::runner {

using Duration = std::chrono::nanoseconds;

struct SchedulerOptions {
  Duration keep_alive = std::chrono::minutes(5);  // CORRAL_KEEP_ALIVE; negative: forever
  int max_loaded = 3;                             // CORRAL_MAX_LOADED_MODELS
  int num_parallel = 4;                           // CORRAL_NUM_PARALLEL
  size_t max_queue = 512;                         // CORRAL_MAX_QUEUE, per model
  int n_threads = 0;                              // 0: physical cores
  int64_t default_num_ctx = 4096;                 // CORRAL_CONTEXT_LENGTH
  // CORRAL_MAX_MEMORY: the most bytes all loaded models may take together (by their estimate);
  // 0: only what the machine has available limits them.
  uint64_t max_memory = 0;
  // A context lowered to fit memory is not lowered below this (nor below what was asked).
  int64_t min_num_ctx = kMinNumCtx;
  // Bytes the machine can still give; nullopt when unknown. Null: available_system_memory().
  std::function<std::optional<uint64_t>()> available_memory = nullptr;
  // Where the scheduler says what it decided (a lowered context, an unload to make room); null:
  // standard error, as the server's request log.
  std::function<void(const std::string&)> log = nullptr;
};

// Largest num_batch a load uses (a client's larger one is lowered to it): a batch's compute
// buffers grow with it, and prompts are evaluated in chunks of this size anyway.
inline constexpr int kMaxNumBatch = 4096;

// A model in memory, shared by the requests that use it.
struct LoadedModel {
  store::ModelInfo info;
  std::unique_ptr<Runner> runner;
  std::chrono::system_clock::time_point expires_at;  // when keep_alive runs out (if idle)
  Duration keep_alive{0};
};

// Keeps a model loaded while held; releasing the last lease starts its keep_alive timer.
class Lease {
 public:
  Lease() = default;
  Lease(Lease&&) noexcept;
  Lease& operator=(Lease&&) noexcept;
  ~Lease();
  LoadedModel* operator->() const { return model_.get(); }
  LoadedModel& operator*() const { return *model_; }
  explicit operator bool() const { return model_ != nullptr; }

 private:
  friend class Scheduler;
  class Scheduler* scheduler_ = nullptr;
  std::shared_ptr<LoadedModel> model_;
};

// For /api/ps and `corral ps`.
struct RunningModel {
  std::string name;    // "stories:latest"
  std::string digest;  // the model blob's, "sha256:..." hex without prefix as Ollama's ps shows
  uint64_t size = 0;   // bytes in memory
  uint64_t size_vram = 0;
  int64_t context_length = 0;
  std::chrono::system_clock::time_point expires_at;
  nlohmann::ordered_json details;  // format, family, parameter_size, quantization_level
  bool in_use = false;
};

class Scheduler {
 public:
  explicit Scheduler(SchedulerOptions options);
  ~Scheduler();  // unloads everything

  // The loaded instance of `info.gguf` fit for `options` (num_ctx, num_thread, num_gpu), loading
  // it (and unloading others) when needed. keep_alive: the request's, else the default; it
  // replaces the model's. Throws what loading throws (a bad file, an unknown architecture).
  Lease acquire(const store::ModelInfo& info, const sample::Options& options,
                std::optional<Duration> keep_alive = std::nullopt);

  // Unloads the model now: the requests it is running or has queued are cancelled (they end
  // with done_reason "cancel") and it is freed as soon as the last one has returned
  // (keep_alive 0, `corral stop`, as Ollama's). False when it is not loaded.
  bool unload(const std::string& gguf_path);
  // Server shutdown: every model's requests are cancelled and acquire() refuses new ones
  // (std::runtime_error "the server is shutting down"), waking those waiting for a slot.
  void shutdown();
  // Ollama's generate/chat with an empty prompt: load (or refresh keep_alive) without running.
  // Lease::release with keep_alive 0 unloads.

  std::vector<RunningModel> running() const;
  const SchedulerOptions& options() const { return options_; }

 private:
  friend class Lease;
  void release(const std::shared_ptr<LoadedModel>& model);

  SchedulerOptions options_;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Reads CORRAL_KEEP_ALIVE, CORRAL_MAX_LOADED_MODELS, CORRAL_NUM_PARALLEL, CORRAL_MAX_QUEUE,
// CORRAL_CONTEXT_LENGTH, CORRAL_MAX_MEMORY over the defaults; throws naming a variable with a bad
// value.
SchedulerOptions scheduler_options_from_env();

// Ollama's keep_alive: a Go duration string ("5m", "1h30m", "-1s"), a number of seconds
// (3600, -1), or null. Negative means forever; 0 unloads at once. Throws
// std::invalid_argument naming the bad value.
Duration parse_keep_alive(const nlohmann::json& value);

}  // namespace corral::runner
