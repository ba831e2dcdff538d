// One loaded model and its generation loop: the GGUF file (mmapped), the model bound to it, its
// tokenizer, a CPU backend and one sequence's KV cache. generate() runs a prompt through prefill
// and decode, samples each token, and streams the decoded text through the stop matcher; it
// reports Ollama's counters and durations.
//
// One sequence at a time: the KV cache keeps the last sequence, so a prompt that starts with it
// (a REPL turn, a repeated request) evaluates only the tokens after the shared prefix.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "backend/cuda/cuda.h"
#include "kvcache/causal.h"
#include "ml/backend.h"
#include "ml/gguf/reader.h"
#include "model/model.h"
#include "runner/memory.h"
#include "runner/multimodal.h"
#include "sample/grammar.h"
#include "sample/options.h"
#include "tokenizer/tokenizer.h"

namespace corral::runner {

// An intermediate result of a forward pass, copied out as f32: `shape` outermost first (numpy's
// order; ggml's ne reversed, trailing 1s dropped), `values` row-major.
struct NamedTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;
};

struct EngineOptions {
  int n_threads = 0;  // 0: the number of physical cores
  ml::DType cache_dtype = ml::DType::F16;
  // Layers offloaded to the GPU (Ollama's num_gpu): their weights and KV cache live in device
  // memory and their nodes run there; n_layer + 1 or more (or any negative value) also offloads
  // the output layer and embeddings. 0: CPU only. Needs a build with CUDA and a device.
  int num_gpu = 0;
  // A vision model's projector GGUF when it is a file of its own (llama.cpp's mmproj layout).
  std::string projector;
};

// Ollama's generation statistics (api.Metrics), and why generation ended.
struct Stats {
  int prompt_eval_count = 0;  // prompt tokens evaluated (those after a cached prefix)
  std::chrono::nanoseconds prompt_eval_duration{0};
  int eval_count = 0;  // tokens sampled
  std::chrono::nanoseconds eval_duration{0};
  std::chrono::nanoseconds total_duration{0};  // of this generate() call
  // "stop": end of sequence or a stop string; "length": num_predict or a full context;
  // "cancel": the caller's flag.
  std::string done_reason;
};

// Sink of streamed text; every call holds complete UTF-8 characters.
using TextSink = std::function<void(std::string_view)>;

class Engine {
 public:
  // Opens and binds a GGUF model. Throws naming the file: missing, not GGUF, an unknown
  // architecture, missing tensors, or a tokenizer it cannot read.
  explicit Engine(const std::string& path, EngineOptions options = {});
  ~Engine();

  const ml::gguf::File& file() const { return *file_; }
  const model::Model& model() const { return *model_; }
  const tokenizer::Tokenizer& tokenizer() const { return *tokenizer_; }
  std::chrono::nanoseconds load_duration() const { return load_duration_; }
  int n_threads() const { return n_threads_; }
  // Layers offloaded to the GPU (0 without one); n_layer + 1 when the output layer is too.
  int gpu_layers() const { return gpu_layers_; }
  // The GPU's backend, or null when nothing is offloaded.
  const backend::cuda::CudaBackend* gpu() const { return gpu_.get(); }

  // Rebuilds the backend with another thread count (0: physical cores).
  void set_threads(int n_threads);

  // The prompt's tokens: BOS/EOS as the vocabulary asks; special tokens written in the text are
  // parsed.
  std::vector<int32_t> tokenize(std::string_view text) const;

  // The context window options.num_ctx asks for (0: 4096), capped at the training context.
  int64_t context_size(const sample::Options& options) const;

  // What generating with a context of num_ctx cells in batches of num_batch takes in memory (one
  // sequence), estimated before the cache is allocated: for runner::admit_in_process.
  MemoryNeeds memory_needs(int64_t num_ctx, int num_batch) const;

  // Generates a continuation of `prompt` (which must not be empty), streaming its text to
  // `sink`. Stops at an end-of-generation token, a stop string (neither is emitted),
  // options.num_predict tokens, or when *cancel turns true (checked between tokens). With
  // num_predict -1 a full context is shifted (keeping num_keep tokens) and generation goes on;
  // with -2 it ends there. Throws std::invalid_argument for an empty prompt, or one that does
  // not fit the context.
  // `images` (vision models) are placed among the prompt's tokens, encoded (or found among the
  // recently encoded) and their placeholder tokens spliced in; a prompt with images is never
  // truncated (std::invalid_argument when it does not fit).
  // `grammar` (a format such as JSON) constrains the tokens sampled; the output ends when it is
  // complete.
  Stats generate(std::span<const int32_t> prompt, const sample::Options& options,
                 const TextSink& sink, const std::atomic<bool>* cancel = nullptr,
                 std::span<const PromptImage> images = {},
                 std::shared_ptr<const sample::Grammar> grammar = nullptr);

  // Logits of every position of `tokens`, evaluated from scratch as one sequence with an f32
  // cache: [n_tokens][n_vocab]. For comparing the forward pass with other implementations.
  // `images` are placed among the tokens as generate() places them; the logits are those of the
  // tokens after splicing (placeholders included).
  std::vector<float> logits(std::span<const int32_t> tokens,
                            std::span<const PromptImage> images = {});

  // The same forward pass, keeping every intermediate result the model's build() names with
  // Tensor::set_name, in graph order, then the logits as "logits". For `corral debug tensors`:
  // models name "token_embd.out" (transformers' hidden_states[0]), "blk.N.out" (the residual
  // stream after block N) and "output_norm.out" (transformers' last hidden state).
  std::vector<NamedTensor> intermediates(std::span<const int32_t> tokens,
                                         std::span<const PromptImage> images = {});

  // The placeholder an image takes in the prompt (encoding it, or finding it encoded).
  model::Placeholder image_placeholder(const PromptImage& image);

  // How many times the vision encoder ran.
  size_t images_encoded() const { return encoder_ ? encoder_->encoded() : 0; }

  // For `corral bench`: evaluates `tokens` (valid ids) as sequence 0 at positions [pos, pos + n)
  // in batches of num_batch, with a cache of num_ctx cells; the cache keeps positions below
  // `pos` and drops the rest first, so pos 0 starts from an empty cache.
  void bench_evaluate(std::span<const int32_t> tokens, int32_t pos, int num_batch, int64_t num_ctx);

 private:
  // Evaluates tokens at positions [pos, pos + n) of sequence 0 in batches of num_batch; returns
  // the last token's logits, or nullptr when *cancel turned true before a batch.
  const float* evaluate(std::span<const int32_t> tokens, int32_t pos, int num_batch,
                        const std::atomic<bool>* cancel = nullptr);
  bool is_end_of_generation(int32_t token) const;
  // One prefill from scratch with an f32 cache: the named intermediates when keep_named, then
  // the logits (last).
  std::vector<NamedTensor> forward_all(std::span<const int32_t> tokens,
                                       std::span<const PromptImage> images, bool keep_named);
  // Splices the images' placeholders into `prompt`; throws for a model without vision.
  SequenceImages place_images(std::vector<int32_t>& prompt, std::span<const PromptImage> images);
  void ensure_cache(int64_t num_ctx);
  // Creates the GPU backend and makes the weights of the first num_gpu layers resident.
  void offload(int num_gpu);
  kvcache::CausalOptions cache_options(int64_t num_ctx, ml::DType dtype, int64_t pad) const;

  EngineOptions options_;
  int n_threads_ = 0;
  std::unique_ptr<ml::gguf::File> file_;
  std::unique_ptr<ml::gguf::File> projector_;
  std::unique_ptr<model::Model> model_;
  std::unique_ptr<ImageEncoder> encoder_;  // vision models
  std::unique_ptr<tokenizer::Tokenizer> tokenizer_;
  // The bytes of every token, for grammars; built at the first request that has one.
  std::shared_ptr<const sample::TokenPieces> pieces_;
  // Declared before everything that holds its memory (resident weights, caches), so it is
  // destroyed after them.
  std::unique_ptr<backend::cuda::CudaBackend> gpu_;
  std::vector<std::unique_ptr<ml::Buffer>> resident_;  // the offloaded layers' weights
  int gpu_layers_ = 0;
  std::unique_ptr<ml::Backend> backend_;
  std::unique_ptr<ml::Executor> executor_;
  std::optional<kvcache::Causal> cache_;
  std::vector<int32_t> cached_;  // the tokens of sequence 0 in the cache, in position order
  SequenceImages images_;        // the images of the sequence being evaluated (and cached)
  BatchImages batch_images_;
  ml::Graph graph_;
  model::Batch batch_;
  std::chrono::nanoseconds load_duration_{0};
};

// Pieces of the generation loop that Engine and Runner share.

// The tokenizer of a model file; throws naming `path` when it cannot be read or has more tokens
// than the model has output rows.
std::unique_ptr<tokenizer::Tokenizer> load_tokenizer(const ml::gguf::File& file,
                                                     const model::Model& model,
                                                     const std::string& path);
// Whether a token ends generation (EOS, EOT, EOM or one of the file's EOS ids).
bool is_end_of_generation(const tokenizer::Vocab& vocab, int32_t token);
// A prompt that fits a context of num_ctx cells: one longer keeps its first num_keep tokens and
// its end (Ollama's truncation), leaving room for one generated token.
std::vector<int32_t> fit_prompt(std::span<const int32_t> prompt, int64_t num_ctx, int num_keep);

// Ollama's `--verbose` block: total and load duration, prompt eval count/duration/rate, eval
// count/duration/rate, one per line.
std::string format_stats(const Stats& stats, std::chrono::nanoseconds load_duration);

// A duration as Go's time.Duration.String() spells it ("1.5s", "12.345ms", "850µs").
std::string go_duration(std::chrono::nanoseconds d);

}  // namespace corral::runner
