// One loaded model serving several sequences at once (continuous batching). A worker thread owns
// the model, its KV cache (num_parallel sequences of num_ctx cells each) and the CPU backend.
// Each step it gathers one token from every decoding sequence plus a chunk of each prompt still
// being evaluated into ONE batch, runs one forward pass, samples every sequence's next token and
// streams the text. A new request joins at the next step; a finished or cancelled one frees its
// slot. A prompt that starts with what a slot already holds (the previous turn of a
// conversation) reuses those cells instead of evaluating them again.
//
// Threads: submit() and the Sequence methods may be called from any thread (HTTP handlers);
// everything else runs on the worker. Nothing one sequence does (its cancellation, an error in
// its request) affects another's cells.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "ml/gguf/reader.h"
#include "model/model.h"
#include "runner/engine.h"
#include "runner/memory.h"
#include "runner/multimodal.h"
#include "sample/grammar.h"
#include "sample/options.h"
#include "tokenizer/tokenizer.h"

namespace corral::runner {

struct RunnerOptions {
  int64_t num_ctx = 4096;  // cells per sequence (capped at the training context)
  int num_parallel = 4;    // sequences decoded together
  int num_batch = 512;     // most tokens in one forward pass
  int n_threads = 0;       // 0: physical cores
  ml::DType cache_dtype = ml::DType::F16;
  // Called on the worker with each batch before its forward pass; what it throws fails that
  // batch as a failing forward pass would (tests observe and break batches with it).
  std::function<void(const model::Batch&)> on_batch = nullptr;
  // Called once the model is read and before its KV cache is allocated: returns the num_ctx to
  // allocate (at most needs.num_ctx), or throws to refuse the load. Null: needs.num_ctx.
  std::function<int64_t(const MemoryNeeds&)> fit_memory = nullptr;
  // A vision model's projector GGUF when it is a file of its own (llama.cpp's mmproj layout).
  std::string projector;
};

// The log-probability of one token (Ollama's api.TokenLogprob / OpenAI's logprobs content).
struct TokenLogprob {
  int32_t id = 0;
  std::string token;  // its text (raw bytes; may be part of a UTF-8 character)
  float logprob = 0;
};
struct Logprob {
  TokenLogprob chosen;
  std::vector<TokenLogprob> top;  // the top_logprobs most likely, most likely first
};

// A piece of streamed output: complete UTF-8 text (held back at a partial character or a
// possible stop string), and the logprobs of the tokens it came from when they were asked for.
struct Piece {
  std::string text;
  std::vector<Logprob> logprobs;
};

struct SequenceRequest {
  std::vector<int32_t> prompt;  // not empty; at most the context (else it is truncated as Ollama)
  sample::Options options;      // num_predict, stop, num_keep, seed and the sampling fields
  // Constrains sampling (format "json", a JSON schema, tool_choice); null: free.
  std::shared_ptr<const sample::Grammar> grammar;
  int top_logprobs = -1;  // -1: no logprobs; 0..20: the chosen token's and this many alternatives
  // Embedding instead of generation: the prompt is evaluated and its final hidden states pooled
  // (Pooling below), L2-normalized; no token is sampled.
  bool embed = false;
  // When the sequence's context is full: false ends generation with done_reason "length" (so
  // num_predict -1 is bounded by the context); true discards old tokens after num_keep and goes
  // on (num_predict -2 always ends). The server shifts only when asked or when num_predict > 0.
  bool shift = false;
  // Images placed among the prompt's tokens (vision models only); submit() encodes them and
  // splices their placeholder tokens into the prompt.
  std::vector<PromptImage> images;
};

// llama.cpp's pooling types: the last row (decoders; also `none`), the mean of every row, the
// first row (BERT's [CLS]).
enum class Pooling { kLast, kMean, kCls };

struct SequenceResult {
  Stats stats;                   // Ollama's counters; done_reason stop | length | cancel
  std::vector<int32_t> context;  // prompt (as evaluated) + generated tokens (Ollama's `context`)
  std::vector<float> embedding;  // embed requests: n_embd values, unit length
};

// The runner's worker waits on this; a sequence whose reader catches up wakes it.
struct RunnerWake {
  std::mutex mu;
  std::condition_variable cv;
  void notify() {
    { std::lock_guard lock(mu); }
    cv.notify_all();
  }
};

// The handle of a submitted request. The runner stays at most kMaxUnread pieces ahead of the
// reader: a sequence whose pieces are not read (a slow client) pauses and the others go on.
class Sequence {
 public:
  // Blocks until more output or the end. Returns false at the end (then result() is ready);
  // throws the request's error (std::invalid_argument for a bad request, std::runtime_error
  // otherwise). A false return follows the last piece exactly once.
  bool next(Piece& out);
  // Waits for the end and returns the result; throws the request's error. Pieces not read by
  // then no longer hold the sequence back.
  const SequenceResult& result();
  // Stops generation at the next step (the client went away); result().stats.done_reason is
  // "cancel". Safe to call at any time, several times, from any thread.
  void cancel();
  bool cancelled() const { return cancel_.load(); }

  static constexpr size_t kMaxUnread = 64;

 private:
  friend class Runner;
  // Whether the runner waits for the reader before generating more.
  bool held_back() const { return unread_.load() >= kMaxUnread && !unbounded_.load(); }

  std::shared_ptr<RunnerWake> wake_;
  std::atomic<size_t> unread_{0};
  std::atomic<bool> unbounded_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Piece> pieces_;
  bool done_ = false;
  std::exception_ptr error_;
  SequenceResult result_;
  std::atomic<bool> cancel_{false};
};

// Thrown by submit() when more requests wait than the queue allows (the server answers 503).
class QueueFullError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Runner {
 public:
  // Opens and binds the GGUF (errors as Engine's) and starts the worker.
  Runner(const std::string& gguf_path, RunnerOptions options);
  ~Runner();  // cancels every sequence and joins the worker

  const ml::gguf::File& file() const;
  const model::Model& model() const;
  const tokenizer::Tokenizer& tokenizer() const;
  const RunnerOptions& options() const { return options_; }
  std::chrono::nanoseconds load_duration() const;
  // How this model's embeddings are pooled: as `<arch>.pooling_type` says; without it, the last
  // token for decoders and the mean for encoders (as sentence-transformers pools a bare BERT).
  Pooling pooling() const;
  // Bytes of weights plus KV cache plus compute buffers (for /api/ps "size").
  uint64_t memory_bytes() const;
  // How memory_bytes() grows with the context (what fit_memory was given).
  const MemoryNeeds& memory_needs() const;

  // Queues a request; it starts when a slot frees. Throws std::invalid_argument for an empty
  // prompt or token ids outside the vocabulary, QueueFullError when max_queue are waiting.
  std::shared_ptr<Sequence> submit(SequenceRequest request);
  void set_max_queue(size_t n);

  // Sequences running or waiting.
  size_t active() const;
  // How many times the vision encoder ran (an image already encoded recently is not again).
  size_t images_encoded() const;
  // Cancels every sequence running or waiting (keep_alive 0, `corral stop`, shutdown): each ends
  // at the next step with done_reason "cancel". Returns how many were cancelled.
  size_t cancel_all();

 private:
  RunnerOptions options_;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace corral::runner
