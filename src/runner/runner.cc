#include "runner/runner.h"

#include <algorithm>
#include <cmath>
#include <iostream>
#include <limits>
#include <numeric>

#include "backend/cpu/cpu.h"
#include "kvcache/causal.h"
#include "sample/samplers.h"
#include "sample/stop.h"

namespace corral::runner {
namespace {

using Clock = std::chrono::steady_clock;

// llama.cpp's LLAMA_POOLING_TYPE_MEAN and _CLS in `<arch>.pooling_type` (0 none, 3 last).
constexpr int64_t kPoolingMean = 1;
constexpr int64_t kPoolingCls = 2;

constexpr int kMaxTopLogprobs = 20;

}  // namespace

// ---- Sequence ----

bool Sequence::next(Piece& out) {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return !pieces_.empty() || done_; });
  if (!pieces_.empty()) {
    out = std::move(pieces_.front());
    pieces_.pop_front();
    if (unread_.fetch_sub(1) >= kMaxUnread) {
      lock.unlock();
      if (wake_) wake_->notify();
    }
    return true;
  }
  if (error_) std::rethrow_exception(error_);
  return false;
}

const SequenceResult& Sequence::result() {
  if (!unbounded_.exchange(true) && wake_) wake_->notify();
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return done_; });
  if (error_) std::rethrow_exception(error_);
  return result_;
}

void Sequence::cancel() {
  if (!cancel_.exchange(true) && wake_) wake_->notify();
}

// ---- Runner ----

struct Runner::Impl {
  // A request waiting for a slot.
  struct Pending {
    SequenceRequest request;
    SequenceImages images;  // the prompt's images, its placeholders spliced in
    std::shared_ptr<Sequence> sequence;
    Clock::time_point submitted;
  };

  // One sequence id of the cache. `cached` outlives the request that filled it: the next
  // request whose prompt starts with it reuses those cells.
  struct Slot {
    int32_t id = 0;
    std::vector<int32_t> cached;   // the tokens in this slot's cells, in position order
    SequenceImages cached_images;  // the images among them
    Clock::time_point last_used{};

    // The request being served; null when idle.
    std::shared_ptr<Sequence> sequence;
    SequenceRequest request;
    int64_t num_ctx = 0;
    std::vector<int32_t> prompt;  // as evaluated (fitted to the context)
    SequenceImages images;        // the images of the prompt
    size_t next_prompt = 0;       // prompt[next_prompt..] are still to be evaluated
    int32_t next_token = -1;      // sampled, to be evaluated in the next step
    std::optional<sample::Sampler> sampler;
    std::optional<sample::StopMatcher> stop;
    std::optional<tokenizer::StreamingDecoder> decoder;
    std::optional<sample::GrammarMatcher> grammar;
    std::vector<int32_t> history;   // prompt and generated tokens, for the penalties
    std::vector<Logprob> logprobs;  // of tokens whose text is still held back
    std::vector<double> pooled;     // embeddings: the sum of the pooled rows
    int64_t n_pooled = 0;
    Stats stats;
    Clock::time_point t_submit{}, t_start{}, t_first{};

    // Of the current step: the first output column of this slot, and how many it has.
    int64_t out_col = -1;
    int64_t n_out = 0;
    size_t n_batched = 0;  // tokens this slot put in the batch

    bool busy() const { return sequence != nullptr; }
    bool prompt_done() const { return next_prompt >= prompt.size(); }
  };

  RunnerOptions options;
  std::string path;
  std::unique_ptr<ml::gguf::File> file;
  std::unique_ptr<ml::gguf::File> projector;
  std::unique_ptr<model::Model> model;
  std::unique_ptr<ImageEncoder> encoder;  // vision models
  std::unique_ptr<tokenizer::Tokenizer> tokenizer;
  std::unique_ptr<ml::Backend> backend;
  std::unique_ptr<ml::Executor> executor;
  std::optional<kvcache::Causal> cache;
  int64_t slot_cells = 0;
  Pooling pooling = Pooling::kLast;
  std::chrono::nanoseconds load_duration{0};
  uint64_t memory_bytes = 0;
  MemoryNeeds needs;
  // The bytes of every token, for grammars; built at the first request that has one.
  std::shared_ptr<const sample::TokenPieces> pieces;
  std::vector<float> masked;  // a row of logits with the grammar's mask applied

  std::shared_ptr<RunnerWake> signal = std::make_shared<RunnerWake>();
  std::mutex& mu = signal->mu;
  std::condition_variable& wake = signal->cv;
  std::deque<Pending> queue;
  size_t max_queue = std::numeric_limits<size_t>::max();
  size_t busy_slots = 0;
  bool stopping = false;
  // Every submitted sequence still referenced by its requester, for cancel_all().
  std::vector<std::weak_ptr<Sequence>> live;

  // The worker's alone.
  std::vector<Slot> slots;
  ml::Graph graph;
  model::Batch batch;
  BatchImages batch_images;
  std::thread worker;

  int32_t n_vocab() const { return static_cast<int32_t>(model->config().n_vocab); }

  // ---- output to a sequence ----

  static void push_piece(Sequence& s, Piece piece) {
    {
      std::lock_guard lock(s.mu_);
      s.pieces_.push_back(std::move(piece));
      s.unread_.fetch_add(1);
    }
    s.cv_.notify_all();
  }

  static void fail(Sequence& s, std::exception_ptr error) {
    {
      std::lock_guard lock(s.mu_);
      s.error_ = std::move(error);
      s.done_ = true;
    }
    s.cv_.notify_all();
  }

  // Emits text (and the logprobs gathered so far when there is text to carry them).
  void emit(Slot& slot, std::string_view text, bool last) {
    if (text.empty() && !(last && !slot.logprobs.empty())) return;
    Piece piece;
    piece.text = std::string(text);
    piece.logprobs = std::move(slot.logprobs);
    slot.logprobs.clear();
    push_piece(*slot.sequence, std::move(piece));
  }

  // Ends the slot's request: the held-back text goes out (unless a stop string ended it), the
  // result is set and the slot turns idle, keeping its cells for a later prompt.
  void finish(Slot& slot, const std::string& reason) {
    if (!slot.request.embed && slot.stop && !slot.stop->stopped()) {
      std::string tail(slot.stop->push(slot.decoder->flush()));
      if (!slot.stop->stopped()) tail += slot.stop->flush();
      emit(slot, tail, true);
    } else {
      emit(slot, "", true);
    }
    const auto t_end = Clock::now();
    Stats& st = slot.stats;
    st.done_reason = reason;
    if (st.eval_count > 0) {
      st.prompt_eval_duration = slot.t_first - slot.t_start;
      st.eval_duration = t_end - slot.t_first;
    } else {
      st.prompt_eval_duration = t_end - slot.t_start;
    }
    st.total_duration = t_end - slot.t_submit;
    SequenceResult result;
    result.stats = st;
    result.context = std::move(slot.history);
    if (slot.request.embed && slot.n_pooled > 0) {
      // The mean (or the one last row), L2-normalized.
      double norm = 0;
      for (double& v : slot.pooled) {
        v /= static_cast<double>(slot.n_pooled);
        norm += v * v;
      }
      norm = std::sqrt(norm);
      result.embedding.reserve(slot.pooled.size());
      for (double v : slot.pooled)
        result.embedding.push_back(static_cast<float>(norm > 0 ? v / norm : 0.0));
    }
    // The slot is free before the sequence says it is done: whoever waits on it finds the
    // runner idle.
    std::shared_ptr<Sequence> seq = slot.sequence;
    release(slot);
    {
      std::lock_guard lock(seq->mu_);
      seq->result_ = std::move(result);
      seq->done_ = true;
    }
    seq->cv_.notify_all();
  }

  // Ends the slot's request with an error; its cells are dropped, as a failed batch may have
  // written part of them.
  void fail_slot(Slot& slot, std::exception_ptr error) {
    cache->remove(slot.id);
    slot.cached.clear();
    slot.cached_images = {};
    std::shared_ptr<Sequence> seq = slot.sequence;
    release(slot);
    fail(*seq, std::move(error));
  }

  void release(Slot& slot) {
    slot.sequence.reset();
    slot.sampler.reset();
    slot.stop.reset();
    slot.decoder.reset();
    slot.grammar.reset();
    slot.request = {};
    slot.prompt.clear();
    slot.images = {};
    slot.history.clear();
    slot.logprobs.clear();
    slot.pooled.clear();
    slot.last_used = Clock::now();
    std::lock_guard lock(mu);
    --busy_slots;
  }

  // ---- admission ----

  static size_t common_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
    size_t n = 0;
    while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
    return n;
  }

  // The idle slot for a prompt: the one whose cells are a prefix of it (a conversation's next
  // turn) or of which it is a prefix (a repeated request), the longest such; else an empty one;
  // else the least recently used. A slot holding another conversation is not taken for a
  // shorter shared start (a BOS, a system prompt) while another slot is free.
  Slot* pick_slot(const std::vector<int32_t>& prompt) {
    Slot* best = nullptr;
    size_t best_score = 0;
    for (Slot& s : slots) {
      if (s.busy()) continue;
      const size_t c = common_prefix(s.cached, prompt);
      const size_t score = c > 0 && (c == s.cached.size() || c == prompt.size()) ? c : 0;
      const auto better = [&] {
        if (!best) return true;
        if (score != best_score) return score > best_score;
        if (s.cached.empty() != best->cached.empty()) return s.cached.empty();
        return s.last_used < best->last_used;
      };
      if (better()) {
        best = &s;
        best_score = score;
      }
    }
    return best;
  }

  void start(Slot& slot, Pending p) {
    SequenceRequest& r = p.request;
    slot.sequence = std::move(p.sequence);
    slot.images = std::move(p.images);
    slot.t_submit = p.submitted;
    slot.t_start = Clock::now();
    slot.stats = {};
    slot.num_ctx = r.options.num_ctx > 0 ? std::min<int64_t>(r.options.num_ctx, options.num_ctx)
                                         : options.num_ctx;
    if (r.embed) {
      // Embeddings keep the start of a long input (Ollama's truncate).
      slot.prompt.assign(
          r.prompt.begin(),
          r.prompt.begin() + static_cast<std::ptrdiff_t>(std::min<int64_t>(
                                 static_cast<int64_t>(r.prompt.size()), slot.num_ctx)));
    } else if (!slot.images.empty()) {
      slot.prompt = r.prompt;  // submit() checked that it fits: images are not cut
    } else {
      slot.prompt = fit_prompt(r.prompt, slot.num_ctx, r.options.num_keep);
    }
    // Reuse the cached prefix; at least the last prompt token is evaluated, for its logits. Mean
    // and CLS pooling need every (or the first) token's hidden state, and an encoder's states
    // depend on the whole sequence, so those evaluate them all.
    size_t common = std::min(common_prefix(slot.cached, slot.prompt), slot.prompt.size() - 1);
    common = SequenceImages::shared_prefix(slot.cached_images, slot.images, common);
    if (r.embed && (pooling != Pooling::kLast || !model->config().causal)) common = 0;
    // Sliding-window layers may have dropped what the prefix's continuation needs.
    common = static_cast<size_t>(cache->reusable(slot.id, static_cast<int32_t>(common)));
    cache->remove(slot.id, static_cast<int32_t>(common));
    slot.cached.resize(common);
    slot.cached_images = slot.images;
    slot.next_prompt = common;
    slot.next_token = -1;
    slot.history = slot.prompt;
    slot.pooled.clear();
    slot.n_pooled = 0;
    if (!r.embed) {
      // repeat_last_n = -1 means the whole context: the one in use.
      sample::Options sampling = r.options;
      sampling.num_ctx = static_cast<int>(slot.num_ctx);
      slot.sampler.emplace(sampling, n_vocab());
      slot.stop.emplace(r.options.stop);
      // The decoder sees the prompt first, so that the continuation is decoded as the middle of
      // the text (a leading space is kept); control tokens are not shown.
      slot.decoder.emplace(*tokenizer, /*skip_special=*/true);
      for (int32_t t : slot.prompt) slot.decoder->push(t);
      slot.decoder->flush();
      if (r.grammar) {
        if (!pieces) pieces = std::make_shared<const sample::TokenPieces>(*tokenizer);
        slot.grammar.emplace(r.grammar, pieces);
      }
    }
    slot.request = std::move(r);
  }

  // Under the lock: drops cancelled requests from the queue and moves waiting ones into idle
  // slots.
  void admit() {
    for (auto it = queue.begin(); it != queue.end();) {
      if (it->sequence->cancelled()) {
        Sequence& s = *it->sequence;
        {
          std::lock_guard lock(s.mu_);
          s.result_.stats.done_reason = "cancel";
          s.result_.context = it->request.prompt;
          s.done_ = true;
        }
        s.cv_.notify_all();
        it = queue.erase(it);
      } else {
        ++it;
      }
    }
    while (!queue.empty() && busy_slots < slots.size()) {
      Pending p = std::move(queue.front());
      queue.pop_front();
      // pick_slot needs the fitted prompt; fitting again in start() is cheap.
      const int64_t ctx = p.request.options.num_ctx > 0
                              ? std::min<int64_t>(p.request.options.num_ctx, options.num_ctx)
                              : options.num_ctx;
      Slot* slot = pick_slot(fit_prompt(p.request.prompt, ctx, p.request.options.num_keep));
      ++busy_slots;
      start(*slot, std::move(p));
    }
  }

  // ---- one step ----

  // Adds the slot's work to the batch: its sampled token, or the next chunk of its prompt
  // (at most `budget` tokens). Returns the tokens added.
  size_t add_to_batch(Slot& slot, size_t budget) {
    slot.out_col = -1;
    slot.n_out = 0;
    slot.n_batched = 0;
    const auto pos = static_cast<int32_t>(slot.cached.size());
    if (slot.next_token >= 0) {
      slot.out_col = static_cast<int64_t>(batch.outputs.size());
      slot.n_out = 1;
      batch.add(slot.next_token, pos, slot.id, true);
      batch_images.added(batch, slot.images, static_cast<size_t>(pos), pos);
      slot.n_batched = 1;
      return 1;
    }
    const size_t n = std::min(budget, slot.prompt.size() - slot.next_prompt);
    if (n == 0) return 0;
    const bool completes = slot.next_prompt + n == slot.prompt.size();
    const bool every = slot.request.embed && pooling == Pooling::kMean;
    const bool first = slot.request.embed && pooling == Pooling::kCls;
    for (size_t j = 0; j < n; ++j) {
      const bool out = every || (first ? slot.next_prompt + j == 0 : completes && j + 1 == n);
      if (out) {
        if (slot.out_col < 0) slot.out_col = static_cast<int64_t>(batch.outputs.size());
        ++slot.n_out;
      }
      batch.add(slot.prompt[slot.next_prompt + j], pos + static_cast<int32_t>(j), slot.id, out);
      batch_images.added(batch, slot.images, slot.next_prompt + j, pos + static_cast<int32_t>(j));
    }
    slot.n_batched = n;
    return n;
  }

  // Runs one forward pass over the work of `members` (all embedding requests or none). False
  // when it threw: its sequences have failed.
  bool forward(const std::vector<Slot*>& members, model::Output output, const float*& out) {
    try {
      batch_images.finish(batch, encoder && model->vision()->mrope());
      if (options.on_batch) options.on_batch(batch);
      graph.clear();
      ml::Tensor t = model->forward(graph, batch, *cache, output);
      executor->compute(graph, {t});
      out = static_cast<const float*>(t.data());
      return true;
    } catch (...) {
      const std::exception_ptr error = std::current_exception();
      for (Slot* s : members) fail_slot(*s, error);
      return false;
    }
  }

  void record_evaluated(Slot& slot) {
    if (slot.next_token >= 0) {
      slot.cached.push_back(slot.next_token);
      slot.next_token = -1;
      return;
    }
    slot.cached.insert(
        slot.cached.end(), slot.prompt.begin() + static_cast<std::ptrdiff_t>(slot.next_prompt),
        slot.prompt.begin() + static_cast<std::ptrdiff_t>(slot.next_prompt + slot.n_batched));
    slot.next_prompt += slot.n_batched;
    slot.stats.prompt_eval_count += static_cast<int>(slot.n_batched);
  }

  Logprob logprob_of(std::span<const float> row, int32_t token, int top) const {
    float max = -std::numeric_limits<float>::infinity();
    for (float v : row) max = std::max(max, v);
    double sum = 0;
    for (float v : row) sum += std::exp(static_cast<double>(v - max));
    const float log_z = max + static_cast<float>(std::log(sum));
    const auto entry = [&](int32_t id) {
      return TokenLogprob{id, tokenizer->token_to_piece(id), row[static_cast<size_t>(id)] - log_z};
    };
    Logprob lp;
    lp.chosen = entry(token);
    if (top > 0) {
      std::vector<int32_t> ids(row.size());
      std::iota(ids.begin(), ids.end(), 0);
      const size_t k = std::min(static_cast<size_t>(top), ids.size());
      std::partial_sort(
          ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(k), ids.end(),
          [&](int32_t a, int32_t b) {
            return row[static_cast<size_t>(a)] > row[static_cast<size_t>(b)] ||
                   (row[static_cast<size_t>(a)] == row[static_cast<size_t>(b)] && a < b);
          });
      for (size_t i = 0; i < k; ++i) lp.top.push_back(entry(ids[i]));
    }
    return lp;
  }

  // Samples the slot's next token from its logits and streams its text; ends the request when
  // the token or the limits say so.
  void sample_next(Slot& slot, const float* logits) {
    const std::span<const float> row(logits, static_cast<size_t>(n_vocab()));
    int32_t token = slot.sampler->sample(row, slot.history);
    if (slot.grammar && !slot.grammar->accepts(token)) {
      // Sampling from the masked row only when the free choice is refused keeps the common case
      // (the model already follows the grammar) at the cost of one accepts() call.
      masked.assign(row.begin(), row.end());
      slot.grammar->mask(masked);
      token = slot.sampler->sample(masked, slot.history);
    }
    if (slot.stats.eval_count++ == 0) slot.t_first = Clock::now();
    if (slot.request.top_logprobs >= 0) {
      slot.logprobs.push_back(logprob_of(row, token, slot.request.top_logprobs));
    }
    if (is_end_of_generation(tokenizer->vocab(), token)) return finish(slot, "stop");
    // Nothing the grammar allows (every token masked): the output ends here.
    if (slot.grammar && !slot.grammar->accept(token)) return finish(slot, "stop");
    slot.history.push_back(token);
    const std::string_view text = slot.stop->push(slot.decoder->push(token));
    emit(slot, text, false);
    if (slot.stop->stopped()) return finish(slot, "stop");
    // A complete grammar that admits nothing more ends the output as an end token would.
    if (slot.grammar && slot.grammar->done()) return finish(slot, "stop");
    const sample::Options& o = slot.request.options;
    if (o.num_predict > 0 && slot.stats.eval_count >= o.num_predict) {
      return finish(slot, "length");
    }
    if (static_cast<int64_t>(slot.cached.size()) >= slot.num_ctx) {
      // A sequence with images is not shifted: its images' positions would lose their meaning.
      if (o.num_predict == -2 || !slot.request.shift || !slot.images.empty()) {
        return finish(slot, "length");
      }
      const int32_t keep =
          std::clamp<int32_t>(o.num_keep, 0, static_cast<int32_t>(slot.num_ctx) - 1);
      int32_t discarded = 0;
      try {
        discarded = cache->shift(*executor, slot.id, keep,
                                 [this](ml::Tensor keys, ml::Tensor delta, int layer) {
                                   return model->shift(keys, delta, layer);
                                 });
      } catch (...) {
        return fail_slot(slot, std::current_exception());
      }
      if (discarded <= 0) return finish(slot, "length");
      slot.cached.erase(slot.cached.begin() + keep, slot.cached.begin() + keep + discarded);
    }
    slot.next_token = token;
  }

  // Adds an embedding chunk's output rows to the slot's pool.
  void pool(Slot& slot, const float* hidden) {
    const auto n_embd = static_cast<size_t>(model->config().n_embd);
    slot.pooled.resize(n_embd, 0.0);
    if (pooling != Pooling::kMean) {  // one row: the last, or the first of the prompt (CLS)
      if (slot.n_out == 0) return;
      const float* r = hidden + static_cast<size_t>(slot.out_col + slot.n_out - 1) * n_embd;
      std::copy(r, r + n_embd, slot.pooled.begin());
      slot.n_pooled = 1;
      return;
    }
    for (int64_t c = 0; c < slot.n_out; ++c) {
      const float* r = hidden + static_cast<size_t>(slot.out_col + c) * n_embd;
      for (size_t i = 0; i < n_embd; ++i) slot.pooled[i] += r[i];
    }
    slot.n_pooled += slot.n_out;
  }

  // One forward pass over the sequences of one kind (generation or embedding).
  void run_pass(bool embed) {
    batch.clear();
    batch_images.clear();
    std::vector<Slot*> members;
    size_t budget = static_cast<size_t>(std::max(1, options.num_batch));
    // Decoding sequences first, a token each, so that a long prompt never stalls them.
    for (Slot& s : slots) {
      if (s.busy() && s.request.embed == embed && s.next_token >= 0 && !s.sequence->held_back()) {
        budget -= std::min(budget, add_to_batch(s, budget));
        members.push_back(&s);
      }
    }
    for (Slot& s : slots) {
      if (budget == 0) break;
      if (s.busy() && s.request.embed == embed && s.next_token < 0 && !s.prompt_done()) {
        // An encoder attends over its whole sequence: a prompt goes in one batch, alone if it
        // exceeds num_batch (the context bounds it).
        size_t take = budget;
        if (const size_t rest = s.prompt.size() - s.next_prompt;
            !model->config().causal && rest > budget) {
          if (!members.empty()) continue;
          take = rest;
        }
        budget -= std::min(budget, add_to_batch(s, take));
        members.push_back(&s);
      }
    }
    if (members.empty()) return;
    const float* out = nullptr;
    if (!forward(members, embed ? model::Output::kEmbeddings : model::Output::kLogits, out)) {
      return;
    }
    const size_t width =
        static_cast<size_t>(embed ? model->config().n_embd : model->config().n_vocab);
    for (Slot* s : members) {
      record_evaluated(*s);
      if (embed) {
        pool(*s, out);
        if (s->prompt_done()) finish(*s, "stop");
      } else if (s->n_out > 0) {
        sample_next(*s, out + static_cast<size_t>(s->out_col) * width);
      }
    }
  }

  void step() {
    for (Slot& s : slots) {
      if (s.busy() && s.sequence->cancelled()) finish(s, "cancel");
    }
    run_pass(false);
    run_pass(true);
  }

  // Under the lock: whether a step would do anything. A slot whose reader is behind waits for
  // it (or for its cancellation); a queued request waits for a free slot unless it is cancelled.
  bool has_work() const {
    for (const Slot& s : slots) {
      if (s.busy() && (s.sequence->cancelled() || s.next_token < 0 || !s.sequence->held_back())) {
        return true;
      }
    }
    if (queue.empty()) return false;
    if (busy_slots < slots.size()) return true;
    return std::any_of(queue.begin(), queue.end(),
                       [](const Pending& p) { return p.sequence->cancelled(); });
  }

  void loop() {
    for (;;) {
      {
        std::unique_lock lock(mu);
        wake.wait(lock, [&] { return stopping || has_work(); });
        if (stopping) break;
        admit();
      }
      step();
    }
    // Shutting down: every sequence ends as cancelled.
    for (Slot& s : slots) {
      if (s.busy()) finish(s, "cancel");
    }
    std::lock_guard lock(mu);
    for (Pending& p : queue) {
      Sequence& s = *p.sequence;
      {
        std::lock_guard seq_lock(s.mu_);
        s.result_.stats.done_reason = "cancel";
        s.done_ = true;
      }
      s.cv_.notify_all();
    }
    queue.clear();
  }
};

Runner::Runner(const std::string& gguf_path, RunnerOptions options)
    : options_(options), impl_(std::make_unique<Impl>()) {
  const auto t0 = Clock::now();
  Impl& m = *impl_;
  m.path = gguf_path;
  m.file = std::make_unique<ml::gguf::File>(ml::gguf::File::open(gguf_path));
  if (!options_.projector.empty()) {
    m.projector = std::make_unique<ml::gguf::File>(ml::gguf::File::open(options_.projector));
  }
  m.model = model::load(*m.file, m.projector.get());
  m.tokenizer = load_tokenizer(*m.file, *m.model, gguf_path);
  const model::Config& c = m.model->config();
  if (options_.num_ctx <= 0) options_.num_ctx = 4096;
  if (c.n_ctx_train > 0) options_.num_ctx = std::min(options_.num_ctx, c.n_ctx_train);
  options_.num_parallel = std::max(1, options_.num_parallel);
  options_.num_batch = std::max(1, options_.num_batch);
  const size_t images_kept = std::max<size_t>(4, static_cast<size_t>(options_.num_parallel));
  m.needs = estimate_memory(*m.file, m.projector.get(), *m.model,
                            {.num_ctx = options_.num_ctx,
                             .num_parallel = options_.num_parallel,
                             .num_batch = options_.num_batch,
                             .cache_dtype = options_.cache_dtype,
                             .images_kept = images_kept});
  if (options_.fit_memory) {
    options_.num_ctx = std::clamp<int64_t>(options_.fit_memory(m.needs), 1, options_.num_ctx);
    options_.fit_memory = nullptr;  // what it captured need not outlive the load
  }
  m.options = options_;
  const std::string pooling_key = c.architecture + ".pooling_type";
  m.pooling = c.causal ? Pooling::kLast : Pooling::kMean;
  if (const ml::gguf::Value* v = m.file->metadata().find(pooling_key)) {
    const auto p = v->as_integer();
    m.pooling = p == kPoolingMean  ? Pooling::kMean
                : p == kPoolingCls ? Pooling::kCls
                                   : Pooling::kLast;
  }

  std::vector<std::span<const std::byte>> constant = {std::as_bytes(m.file->tensor_data())};
  if (m.projector) constant.push_back(std::as_bytes(m.projector->tensor_data()));
  m.backend = backend::cpu::make_backend(
      {.n_threads = std::max(0, options_.n_threads), .constant = constant});
  if (const model::Vision* v = m.model->vision()) {
    m.encoder = std::make_unique<ImageEncoder>(
        *v, std::max(0, options_.n_threads), constant, images_kept,
        [](const std::string& line) { std::cerr << "[corral] " << line << std::endl; });
  }
  m.executor = std::make_unique<ml::Executor>(std::vector<ml::Backend*>{m.backend.get()});
  m.slot_cells = slot_cells_for(options_.num_ctx);
  // An encoder's cache lives for one request only: f32 keeps its embeddings at full precision.
  m.cache.emplace(m.model->make_cache({.num_ctx = m.slot_cells * options_.num_parallel,
                                       .dtype = c.causal ? options_.cache_dtype : ml::DType::F32,
                                       .seq_cells = m.slot_cells,
                                       .max_batch = options_.num_batch}));
  m.slots.resize(static_cast<size_t>(options_.num_parallel));
  for (size_t i = 0; i < m.slots.size(); ++i) m.slots[i].id = static_cast<int32_t>(i);

  m.memory_bytes = m.needs.bytes(options_.num_ctx);
  m.load_duration = Clock::now() - t0;
  m.worker = std::thread([&m] { m.loop(); });
}

Runner::~Runner() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->wake.notify_all();
  if (impl_->worker.joinable()) impl_->worker.join();
}

const ml::gguf::File& Runner::file() const { return *impl_->file; }
const model::Model& Runner::model() const { return *impl_->model; }
const tokenizer::Tokenizer& Runner::tokenizer() const { return *impl_->tokenizer; }
std::chrono::nanoseconds Runner::load_duration() const { return impl_->load_duration; }
Pooling Runner::pooling() const { return impl_->pooling; }
uint64_t Runner::memory_bytes() const { return impl_->memory_bytes; }
const MemoryNeeds& Runner::memory_needs() const { return impl_->needs; }

void Runner::set_max_queue(size_t n) {
  std::lock_guard lock(impl_->mu);
  impl_->max_queue = n;
}

size_t Runner::active() const {
  std::lock_guard lock(impl_->mu);
  return impl_->busy_slots + impl_->queue.size();
}

size_t Runner::images_encoded() const { return impl_->encoder ? impl_->encoder->encoded() : 0; }

size_t Runner::cancel_all() {
  std::vector<std::shared_ptr<Sequence>> sequences;
  {
    std::lock_guard lock(impl_->mu);
    for (const auto& w : impl_->live) {
      if (auto s = w.lock()) sequences.push_back(std::move(s));
    }
  }
  size_t n = 0;
  for (const auto& s : sequences) {
    if (!s->cancelled()) ++n;
    // Sequence::cancel wakes the worker (it takes the same lock: called outside it).
    s->cancel();
  }
  return n;
}

std::shared_ptr<Sequence> Runner::submit(SequenceRequest request) {
  if (request.prompt.empty()) throw std::invalid_argument("the prompt has no tokens");
  const int64_t n_vocab = impl_->model->config().n_vocab;
  for (int32_t t : request.prompt) {
    if (t < 0 || t >= n_vocab) {
      throw std::invalid_argument("token " + std::to_string(t) + " is outside the vocabulary (" +
                                  std::to_string(n_vocab) + " tokens)");
    }
  }
  if (!request.embed && !impl_->model->config().causal) {
    throw std::invalid_argument("this model only makes embeddings; it does not generate text");
  }
  if (request.top_logprobs > kMaxTopLogprobs) {
    throw std::invalid_argument("top_logprobs must be at most " + std::to_string(kMaxTopLogprobs));
  }
  SequenceImages images;
  if (!request.images.empty()) {
    const model::Vision* vision = impl_->model->vision();
    if (vision == nullptr || !impl_->encoder) {
      throw std::invalid_argument("this model does not support images (it has no vision encoder)");
    }
    if (request.embed) throw std::invalid_argument("embeddings of images are not supported");
    // Encoding runs here, on the requester's thread, one image at a time: the worker goes on
    // decoding the other sequences meanwhile.
    images = expand_images(*vision, *impl_->encoder, request.prompt, request.images);
    request.images.clear();
    const int64_t num_ctx = request.options.num_ctx > 0
                                ? std::min<int64_t>(request.options.num_ctx, options_.num_ctx)
                                : options_.num_ctx;
    if (static_cast<int64_t>(request.prompt.size()) >= num_ctx) {
      throw std::invalid_argument("the prompt with its images takes " +
                                  std::to_string(request.prompt.size()) +
                                  " tokens, more than the context of " + std::to_string(num_ctx) +
                                  " (num_ctx) leaves room for");
    }
  }
  auto sequence = std::make_shared<Sequence>();
  sequence->wake_ = impl_->signal;
  {
    std::lock_guard lock(impl_->mu);
    // Requests that a free slot takes at the next step do not wait: max_queue counts only those
    // beyond the free slots (the worker may not have admitted the earlier ones yet).
    const size_t slots = static_cast<size_t>(options_.num_parallel);
    const size_t free_slots = slots - std::min(impl_->busy_slots, slots);
    const size_t queued = impl_->queue.size() + 1;
    const size_t waiting = queued - std::min(queued, free_slots);
    if (waiting > impl_->max_queue) {
      throw QueueFullError("server busy: " + std::to_string(waiting - 1) +
                           " requests are waiting (CORRAL_MAX_QUEUE)");
    }
    impl_->queue.push_back({std::move(request), std::move(images), sequence, Clock::now()});
    std::erase_if(impl_->live, [](const std::weak_ptr<Sequence>& w) { return w.expired(); });
    impl_->live.push_back(sequence);
  }
  impl_->wake.notify_all();
  return sequence;
}

}  // namespace corral::runner
