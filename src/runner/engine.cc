#include "runner/engine.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <stdexcept>

#include "backend/cpu/cpu.h"
#include "sample/samplers.h"
#include "sample/stop.h"

namespace corral::runner {
namespace {

using Clock = std::chrono::steady_clock;

// Ollama's context window when a request names none (without a large GPU).
constexpr int64_t kDefaultContext = 4096;

std::unique_ptr<ml::gguf::File> open_gguf(const std::string& path) {
  return std::make_unique<ml::gguf::File>(ml::gguf::File::open(path));
}

}  // namespace

std::unique_ptr<tokenizer::Tokenizer> load_tokenizer(const ml::gguf::File& file,
                                                     const model::Model& model,
                                                     const std::string& path) {
  std::unique_ptr<tokenizer::Tokenizer> tok;
  try {
    tok = std::make_unique<tokenizer::Tokenizer>(tokenizer::Tokenizer::from_gguf(file.metadata()));
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": tokenizer: " + e.what());
  }
  if (tok->vocab().size() > static_cast<size_t>(model.config().n_vocab)) {
    throw std::runtime_error(path + ": the tokenizer has " + std::to_string(tok->vocab().size()) +
                             " tokens, more than the model's " +
                             std::to_string(model.config().n_vocab) + " output rows");
  }
  return tok;
}

bool is_end_of_generation(const tokenizer::Vocab& v, int32_t token) {
  return token == v.eos || token == v.eot || token == v.eom ||
         std::find(v.eos_ids.begin(), v.eos_ids.end(), token) != v.eos_ids.end();
}

std::vector<int32_t> fit_prompt(std::span<const int32_t> prompt_in, int64_t num_ctx, int num_keep) {
  std::vector<int32_t> prompt(prompt_in.begin(), prompt_in.end());
  if (static_cast<int64_t>(prompt.size()) >= num_ctx) {
    const size_t room = static_cast<size_t>(num_ctx - 1);
    const size_t keep = std::min(static_cast<size_t>(std::max(0, num_keep)), room);
    const size_t discard = prompt.size() - room;
    prompt.erase(prompt.begin() + static_cast<std::ptrdiff_t>(keep),
                 prompt.begin() + static_cast<std::ptrdiff_t>(keep + discard));
  }
  return prompt;
}

Engine::Engine(const std::string& path, EngineOptions options) : options_(options) {
  const auto t0 = Clock::now();
  file_ = open_gguf(path);
  if (!options.projector.empty()) projector_ = open_gguf(options.projector);
  model_ = model::load(*file_, projector_.get());
  try {
    tokenizer_ =
        std::make_unique<tokenizer::Tokenizer>(tokenizer::Tokenizer::from_gguf(file_->metadata()));
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": tokenizer: " + e.what());
  }
  if (tokenizer_->vocab().size() > static_cast<size_t>(model_->config().n_vocab)) {
    throw std::runtime_error(path + ": the tokenizer has " +
                             std::to_string(tokenizer_->vocab().size()) +
                             " tokens, more than the model's " +
                             std::to_string(model_->config().n_vocab) + " output rows");
  }
  if (options.num_gpu != 0) offload(options.num_gpu);
  set_threads(options.n_threads);
  if (const model::Vision* v = model_->vision()) {
    std::vector<std::span<const std::byte>> constant = {std::as_bytes(file_->tensor_data())};
    if (projector_) constant.push_back(std::as_bytes(projector_->tensor_data()));
    encoder_ = std::make_unique<ImageEncoder>(*v, std::max(0, options.n_threads), constant, 4);
  }
  load_duration_ = Clock::now() - t0;
}

void Engine::offload(int num_gpu) {
  gpu_ = backend::cuda::make_backend();
  const int n_layer = model_->config().n_layer;
  gpu_layers_ = num_gpu < 0 ? n_layer + 1 : std::min(num_gpu, n_layer + 1);
  for (const auto& t : file_->tensors()) {
    // blk.<i>.* belongs to layer i; everything else (embeddings, output norm and projection)
    // to the output layer, n_layer.
    int layer = n_layer;
    if (t.name.rfind("blk.", 0) == 0) layer = std::atoi(t.name.c_str() + 4);
    if (layer < gpu_layers_ && t.nbytes > 0) {
      resident_.push_back(gpu_->make_resident(t.data, t.nbytes));
    }
  }
}

namespace {
// The most tokens evaluate() puts in one batch (runner::kMaxNumBatch, the largest num_batch a
// client gets): a sliding-window layer's cells hold its window and one such batch.
constexpr int64_t kMaxBatch = 4096;
}  // namespace

kvcache::CausalOptions Engine::cache_options(int64_t num_ctx, ml::DType dtype, int64_t pad) const {
  kvcache::CausalOptions o{.num_ctx = num_ctx, .dtype = dtype, .pad = pad};
  o.max_batch = std::min(num_ctx, kMaxBatch);
  if (gpu_) {
    o.allocate = [this](int layer, size_t bytes) -> std::unique_ptr<ml::Buffer> {
      return layer < gpu_layers_ ? gpu_->allocate(bytes) : nullptr;
    };
  }
  return o;
}

Engine::~Engine() = default;

void Engine::set_threads(int n_threads) {
  if (backend_ && n_threads == n_threads_) return;
  executor_.reset();
  std::vector<std::span<const std::byte>> constant = {std::as_bytes(file_->tensor_data())};
  if (projector_) constant.push_back(std::as_bytes(projector_->tensor_data()));
  backend_ =
      backend::cpu::make_backend({.n_threads = std::max(0, n_threads), .constant = constant});
  std::vector<ml::Backend*> backends;
  if (gpu_) backends.push_back(gpu_.get());
  backends.push_back(backend_.get());
  executor_ = std::make_unique<ml::Executor>(std::move(backends));
  n_threads_ = n_threads;
}

std::vector<int32_t> Engine::tokenize(std::string_view text) const {
  return tokenizer_->encode(text, /*add_special=*/true, /*parse_special=*/true);
}

int64_t Engine::context_size(const sample::Options& options) const {
  const int64_t want = options.num_ctx > 0 ? options.num_ctx : kDefaultContext;
  const int64_t train = model_->config().n_ctx_train;
  return train > 0 ? std::min(want, train) : want;
}

MemoryNeeds Engine::memory_needs(int64_t num_ctx, int num_batch) const {
  return estimate_memory(
      *file_, projector_.get(), *model_,
      {.num_ctx = num_ctx,
       .num_parallel = 1,
       .num_batch = static_cast<int>(std::clamp<int64_t>(num_batch, 1, kMaxBatch)),
       .cache_dtype = options_.cache_dtype});
}

bool Engine::is_end_of_generation(int32_t token) const {
  return runner::is_end_of_generation(tokenizer_->vocab(), token);
}

void Engine::ensure_cache(int64_t num_ctx) {
  if (cache_ && cache_->num_ctx() == num_ctx) return;
  cache_.reset();
  cached_.clear();
  cache_.emplace(model_->make_cache(
      cache_options(num_ctx, options_.cache_dtype, kvcache::CausalOptions{}.pad)));
}

const float* Engine::evaluate(std::span<const int32_t> tokens, int32_t pos, int num_batch,
                              const std::atomic<bool>* cancel) {
  const size_t step = static_cast<size_t>(std::clamp<int64_t>(num_batch, 1, kMaxBatch));
  const float* last = nullptr;
  for (size_t i = 0; i < tokens.size(); i += step) {
    if (cancel && cancel->load(std::memory_order_relaxed)) return nullptr;
    const size_t n = std::min(step, tokens.size() - i);
    batch_.clear();
    batch_images_.clear();
    // Only the chunk's last token asks for logits; only the final chunk's are used.
    for (size_t j = 0; j < n; ++j) {
      const auto p = pos + static_cast<int32_t>(i + j);
      batch_.add(tokens[i + j], p, 0, j + 1 == n);
      batch_images_.added(batch_, images_, static_cast<size_t>(p), p);
    }
    batch_images_.finish(batch_, model_->vision() != nullptr && model_->vision()->mrope());
    graph_.clear();
    ml::Tensor out = model_->forward(graph_, batch_, *cache_);
    executor_->compute(graph_, {out});
    cached_.insert(cached_.end(), tokens.begin() + i, tokens.begin() + i + n);
    last = static_cast<const float*>(out.data());
  }
  return last;
}

void Engine::bench_evaluate(std::span<const int32_t> tokens, int32_t pos, int num_batch,
                            int64_t num_ctx) {
  ensure_cache(num_ctx);
  cache_->remove(0, pos);
  cached_.resize(std::min(cached_.size(), static_cast<size_t>(std::max(0, pos))));
  images_ = {};
  evaluate(tokens, pos, num_batch);
}

SequenceImages Engine::place_images(std::vector<int32_t>& prompt,
                                    std::span<const PromptImage> images) {
  if (images.empty()) return {};
  const model::Vision* vision = model_->vision();
  if (vision == nullptr || !encoder_) {
    throw std::invalid_argument("this model does not support images (it has no vision encoder)");
  }
  return expand_images(*vision, *encoder_, prompt, images);
}

model::Placeholder Engine::image_placeholder(const PromptImage& image) {
  const model::Vision* vision = model_->vision();
  if (vision == nullptr || !encoder_) {
    throw std::invalid_argument("this model does not support images (it has no vision encoder)");
  }
  return vision->placeholder(*encoder_->encode(image));
}

Stats Engine::generate(std::span<const int32_t> prompt_in, const sample::Options& options,
                       const TextSink& sink, const std::atomic<bool>* cancel,
                       std::span<const PromptImage> images,
                       std::shared_ptr<const sample::Grammar> grammar) {
  const auto t_start = Clock::now();
  if (prompt_in.empty()) throw std::invalid_argument("generate: the prompt has no tokens");
  const int64_t num_ctx = context_size(options);
  ensure_cache(num_ctx);
  const int n_vocab = static_cast<int>(model_->config().n_vocab);

  std::vector<int32_t> prompt(prompt_in.begin(), prompt_in.end());
  SequenceImages placed = place_images(prompt, images);
  if (placed.empty()) {
    // A prompt longer than the context keeps its first num_keep tokens and its end (Ollama's
    // truncation), leaving room for one generated token.
    prompt = fit_prompt(prompt, num_ctx, options.num_keep);
  } else if (static_cast<int64_t>(prompt.size()) >= num_ctx) {
    throw std::invalid_argument("the prompt with its images takes " +
                                std::to_string(prompt.size()) +
                                " tokens, more than the context of " + std::to_string(num_ctx) +
                                " (num_ctx) leaves room for");
  }

  // Reuse the cached prefix; at least the last prompt token is evaluated, for its logits.
  size_t common = 0;
  while (common < cached_.size() && common < prompt.size() && cached_[common] == prompt[common]) {
    ++common;
  }
  common = SequenceImages::shared_prefix(images_, placed, std::min(common, prompt.size() - 1));
  images_ = std::move(placed);
  // Sliding-window layers may have dropped what the prefix's continuation needs.
  common = static_cast<size_t>(cache_->reusable(0, static_cast<int32_t>(common)));
  cache_->remove(0, static_cast<int32_t>(common));
  cached_.resize(common);

  Stats stats;
  // repeat_last_n = -1 means the whole context: the one in use, not the one asked for.
  sample::Options sampling = options;
  sampling.num_ctx = static_cast<int>(num_ctx);
  sample::Sampler sampler(sampling, n_vocab);
  sample::StopMatcher stop(options.stop);
  std::optional<sample::GrammarMatcher> matcher;
  std::vector<float> masked;  // a row of logits with the grammar's mask applied
  if (grammar) {
    if (!pieces_) pieces_ = std::make_shared<const sample::TokenPieces>(*tokenizer_);
    matcher.emplace(grammar, pieces_);
  }
  // Control tokens (a BOS between stories, a template's markers) are not shown. The decoder
  // sees the prompt first, so that the continuation is decoded as the middle of the text (a
  // leading space is kept) rather than as its start.
  tokenizer::StreamingDecoder decoder(*tokenizer_, /*skip_special=*/true);
  for (int32_t t : prompt) decoder.push(t);
  decoder.flush();

  std::vector<int32_t> history(prompt.begin(), prompt.end());
  Clock::time_point t_first{};
  const float* logits = nullptr;
  try {
    logits = evaluate(std::span(prompt).subspan(common), static_cast<int32_t>(common),
                      options.num_batch, cancel);
    stats.prompt_eval_count = static_cast<int>(cached_.size() - common);

    const auto emit = [&](std::string_view text) {
      if (!text.empty()) sink(text);
    };
    for (;;) {
      if (!logits || (cancel && cancel->load(std::memory_order_relaxed))) {
        stats.done_reason = "cancel";
        break;
      }
      const std::span<const float> row(logits, static_cast<size_t>(n_vocab));
      int32_t token = sampler.sample(row, history);
      if (matcher && !matcher->accepts(token)) {
        // As the runner does: the masked row only when the free choice is refused.
        masked.assign(row.begin(), row.end());
        matcher->mask(masked);
        token = sampler.sample(masked, history);
      }
      if (stats.eval_count++ == 0) t_first = Clock::now();
      // An end token, or nothing the grammar allows (every token masked).
      if (is_end_of_generation(token) || (matcher && !matcher->accept(token))) {
        stats.done_reason = "stop";
        break;
      }
      history.push_back(token);
      emit(stop.push(decoder.push(token)));
      // A complete grammar that admits nothing more ends the output as an end token would.
      if (stop.stopped() || (matcher && matcher->done())) {
        stats.done_reason = "stop";
        break;
      }
      if (options.num_predict > 0 && stats.eval_count >= options.num_predict) {
        stats.done_reason = "length";
        break;
      }
      if (static_cast<int64_t>(cached_.size()) >= num_ctx) {
        // A sequence with images is not shifted: its images' positions would lose their meaning.
        if (options.num_predict == -2 || !images_.empty()) {
          stats.done_reason = "length";
          break;
        }
        const int32_t keep =
            std::clamp<int32_t>(options.num_keep, 0, static_cast<int32_t>(num_ctx) - 1);
        const int32_t discarded = cache_->shift(
            *executor_, 0, keep, [this](ml::Tensor keys, ml::Tensor delta, int layer) {
              return model_->shift(keys, delta, layer);
            });
        if (discarded <= 0) {
          stats.done_reason = "length";
          break;
        }
        cached_.erase(cached_.begin() + keep, cached_.begin() + keep + discarded);
      }
      logits =
          evaluate(std::span(&token, 1), static_cast<int32_t>(cached_.size()), options.num_batch);
    }
    if (!stop.stopped()) {
      emit(stop.push(decoder.flush()));
      if (!stop.stopped()) emit(stop.flush());
    }
  } catch (...) {
    // The cache may hold part of a batch: forget it rather than trust it.
    cache_->remove(0);
    cached_.clear();
    images_ = {};
    throw;
  }

  const auto t_end = Clock::now();
  if (stats.eval_count > 0) {
    stats.prompt_eval_duration = t_first - t_start;
    stats.eval_duration = t_end - t_first;
  } else {
    stats.prompt_eval_duration = t_end - t_start;
  }
  stats.total_duration = t_end - t_start;
  return stats;
}

std::vector<float> Engine::logits(std::span<const int32_t> tokens,
                                  std::span<const PromptImage> images) {
  std::vector<NamedTensor> out = forward_all(tokens, images, /*keep_named=*/false);
  return std::move(out.back().values);
}

std::vector<NamedTensor> Engine::intermediates(std::span<const int32_t> tokens,
                                               std::span<const PromptImage> images) {
  return forward_all(tokens, images, /*keep_named=*/true);
}

std::vector<NamedTensor> Engine::forward_all(std::span<const int32_t> tokens_in,
                                             std::span<const PromptImage> images, bool keep_named) {
  if (tokens_in.empty()) throw std::invalid_argument("logits: no tokens");
  std::vector<int32_t> tokens(tokens_in.begin(), tokens_in.end());
  const int64_t n_vocab = model_->config().n_vocab;
  for (int32_t t : tokens) {
    if (t < 0 || t >= n_vocab) {
      throw std::invalid_argument("logits: token " + std::to_string(t) +
                                  " is outside the vocabulary (" + std::to_string(n_vocab) +
                                  " tokens)");
    }
  }
  const SequenceImages placed = place_images(tokens, images);
  kvcache::CausalOptions cache_opts =
      cache_options(static_cast<int64_t>(tokens.size()), ml::DType::F32, 1);
  cache_opts.max_batch = static_cast<int64_t>(tokens.size());  // one batch of them all
  auto cache = model_->make_cache(cache_opts);
  model::Batch batch;
  BatchImages batch_images;
  for (size_t i = 0; i < tokens.size(); ++i) {
    batch.add(tokens[i], static_cast<int32_t>(i), 0, true);
    batch_images.added(batch, placed, i, static_cast<int32_t>(i));
  }
  batch_images.finish(batch, model_->vision() != nullptr && model_->vision()->mrope());
  ml::Graph g;
  ml::Tensor out = model_->forward(g, batch, cache);
  // Named nodes that are computed (not weights or inputs) become outputs too, so the executor
  // keeps their memory to the end; each is copied out as a contiguous f32 tensor.
  std::vector<std::pair<std::string, ml::Tensor>> named;
  if (keep_named) {
    const int n_nodes = g.size();
    for (int id = 0; id < n_nodes; ++id) {
      const ml::Node& n = g.node(id);
      if (n.name.empty() || n.kind() == ml::OpKind::kLeaf) continue;
      ml::Tensor t(&g, id);
      if (t.dtype() != ml::DType::F32) t = ml::cast(t, ml::DType::F32);
      if (!t.node().is_contiguous()) t = ml::cont(t);
      named.emplace_back(n.name, t);
    }
  }
  named.emplace_back("logits", out);
  std::vector<ml::Tensor> outputs;
  for (const auto& [name, t] : named) outputs.push_back(t);
  executor_->compute(g, outputs);
  std::vector<NamedTensor> result;
  for (const auto& [name, t] : named) {
    NamedTensor r{.name = name};
    for (int d = ml::kMaxDims - 1; d >= 0; --d) {
      if (r.shape.empty() && t.ne(d) == 1 && d > 0) continue;
      r.shape.push_back(t.ne(d));
    }
    const auto* p = static_cast<const float*>(t.data());
    r.values.assign(p, p + t.nelements());
    result.push_back(std::move(r));
  }
  return result;
}

std::string go_duration(std::chrono::nanoseconds d) {
  int64_t ns = d.count();
  if (ns == 0) return "0s";
  std::string sign = ns < 0 ? "-" : "";
  if (ns < 0) ns = -ns;
  // Integer part, then the fraction with trailing zeros dropped.
  const auto with_fraction = [](int64_t whole, int64_t frac, int digits) {
    std::string s = std::to_string(whole);
    if (frac == 0) return s;
    char buf[16];
    std::snprintf(buf, sizeof buf, "%0*" PRId64, digits, frac);
    std::string f(buf);
    while (!f.empty() && f.back() == '0') f.pop_back();
    return s + "." + f;
  };
  if (ns < 1000) return sign + std::to_string(ns) + "ns";
  if (ns < 1000000) return sign + with_fraction(ns / 1000, ns % 1000, 3) + "\xC2\xB5s";
  if (ns < 1000000000) return sign + with_fraction(ns / 1000000, ns % 1000000, 6) + "ms";
  const int64_t total_s = ns / 1000000000;
  const int64_t h = total_s / 3600, m = (total_s / 60) % 60, s = total_s % 60;
  std::string out = sign;
  if (h > 0) out += std::to_string(h) + "h";
  if (h > 0 || m > 0) out += std::to_string(m) + "m";
  return out + with_fraction(s, ns % 1000000000, 9) + "s";
}

std::string format_stats(const Stats& stats, std::chrono::nanoseconds load_duration) {
  std::string out;
  char line[128];
  const auto seconds = [](std::chrono::nanoseconds d) {
    return std::chrono::duration<double>(d).count();
  };
  const std::chrono::nanoseconds total = stats.total_duration + load_duration;
  if (total.count() > 0) out += "total duration:       " + go_duration(total) + "\n";
  if (load_duration.count() > 0) {
    out += "load duration:        " + go_duration(load_duration) + "\n";
  }
  if (stats.prompt_eval_count > 0) {
    out += "prompt eval count:    " + std::to_string(stats.prompt_eval_count) + " token(s)\n";
  }
  if (stats.prompt_eval_duration.count() > 0) {
    out += "prompt eval duration: " + go_duration(stats.prompt_eval_duration) + "\n";
    std::snprintf(line, sizeof line, "prompt eval rate:     %.2f tokens/s\n",
                  stats.prompt_eval_count / seconds(stats.prompt_eval_duration));
    out += line;
  }
  if (stats.eval_count > 0) {
    out += "eval count:           " + std::to_string(stats.eval_count) + " token(s)\n";
  }
  if (stats.eval_duration.count() > 0) {
    out += "eval duration:        " + go_duration(stats.eval_duration) + "\n";
    std::snprintf(line, sizeof line, "eval rate:            %.2f tokens/s\n",
                  stats.eval_count / seconds(stats.eval_duration));
    out += line;
  }
  return out;
}

}  // namespace corral::runner
