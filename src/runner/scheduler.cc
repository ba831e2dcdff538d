#include "runner/scheduler.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <limits>
#include <map>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>

namespace corral::cli {
// The name llama.cpp gives a general.file_type number (cli/show.cc).
std::optional<std::string> file_type_name(int64_t ftype);
}  // namespace corral::cli

namespace corral::runner {
namespace {

using Steady = std::chrono::steady_clock;
using System = std::chrono::system_clock;

// 260K, 1.2B, 7B: Ollama's format.HumanNumber, one decimal unless whole at that scale.
std::string human_number(uint64_t n) {
  static const struct {
    double scale;
    char suffix;
  } kUnits[] = {{1e12, 'T'}, {1e9, 'B'}, {1e6, 'M'}, {1e3, 'K'}};
  for (const auto& u : kUnits) {
    if (static_cast<double>(n) < u.scale) continue;
    const double x = std::round(static_cast<double>(n) / u.scale * 10) / 10;
    char buf[32];
    std::snprintf(buf, sizeof buf, x == std::floor(x) ? "%.0f%c" : "%.1f%c", x, u.suffix);
    return buf;
  }
  return std::to_string(n);
}

// The blob's digest from its file name (blobs/sha256-<hex>), as `ollama ps` shows it.
std::string digest_of(const std::filesystem::path& gguf) {
  const std::string name = gguf.filename().string();
  constexpr std::string_view kPrefix = "sha256-";
  if (name.size() == kPrefix.size() + 64 && name.starts_with(kPrefix)) {
    return name.substr(kPrefix.size());
  }
  return "";
}

// Without general.file_type: the dtype holding most weights of the matrices (norms stay f32
// in every quantization), upper-cased as llama.cpp names file types.
std::string predominant_dtype(const ml::gguf::File& f) {
  std::map<std::string, int64_t> weights;
  for (const auto& t : f.tensors()) {
    if (t.n_dims >= 2) weights[std::string(ml::dtype_name(t.dtype))] += t.n_elements();
  }
  if (weights.empty()) return "";
  auto best = std::max_element(weights.begin(), weights.end(),
                               [](const auto& a, const auto& b) { return a.second < b.second; });
  std::string name = best->first;
  for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return name;
}

nlohmann::ordered_json details_of(const store::ModelInfo& info, const ml::gguf::File& file) {
  const ml::gguf::Metadata& m = file.metadata();
  const auto config_string = [&](const char* key) -> std::string {
    const auto it = info.config.find(key);
    return it != info.config.end() && it->is_string() ? it->get<std::string>() : "";
  };
  std::string family = config_string("model_family");
  if (family.empty() && m.contains("general.architecture")) {
    family = m.get_string("general.architecture");
  }
  std::string parameter_size = config_string("model_type");
  if (parameter_size.empty()) {
    uint64_t n = 0;
    for (const auto& t : file.tensors()) n += static_cast<uint64_t>(t.n_elements());
    parameter_size = human_number(n);
  }
  std::string quantization = config_string("file_type");
  if (quantization.empty()) {
    if (const ml::gguf::Value* ft = m.find("general.file_type"); ft && ft->as_integer()) {
      quantization = cli::file_type_name(*ft->as_integer()).value_or("");
    }
  }
  if (quantization.empty()) quantization = predominant_dtype(file);
  nlohmann::ordered_json d;
  d["parent_model"] = "";
  d["format"] = "gguf";
  d["family"] = family;
  d["families"] = nlohmann::ordered_json::array({family});
  d["parameter_size"] = parameter_size;
  d["quantization_level"] = quantization;
  return d;
}

// Go's time.ParseDuration: a sign, then one or more decimal numbers each with a unit
// ("300ms", "-1.5h", "2h45m"); "0" alone is zero. nullopt when `s` is not one.
std::optional<Duration> parse_go_duration(std::string_view s) {
  bool negative = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s == "0") return Duration(0);
  if (s.empty()) return std::nullopt;
  static const std::pair<std::string_view, double> kUnits[] = {
      {"ns", 1.0}, {"us", 1e3}, {"\xC2\xB5s", 1e3}, {"\xCE\xBCs", 1e3},
      {"ms", 1e6}, {"s", 1e9},  {"m", 60e9},        {"h", 3600e9},
  };
  long double total = 0;
  while (!s.empty()) {
    size_t i = 0;
    bool digits = false;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, digits = true;
    if (i < s.size() && s[i] == '.') {
      ++i;
      while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, digits = true;
    }
    if (!digits) return std::nullopt;
    const long double value = std::strtold(std::string(s.substr(0, i)).c_str(), nullptr);
    s.remove_prefix(i);
    size_t u = 0;
    while (u < s.size() && !std::isdigit(static_cast<unsigned char>(s[u])) && s[u] != '.') ++u;
    const std::string_view unit = s.substr(0, u);
    s.remove_prefix(u);
    const auto it = std::find_if(std::begin(kUnits), std::end(kUnits),
                                 [&](const auto& e) { return e.first == unit; });
    if (it == std::end(kUnits)) return std::nullopt;
    total += value * static_cast<long double>(it->second);
  }
  if (total > static_cast<long double>(std::numeric_limits<int64_t>::max())) return std::nullopt;
  const auto ns = static_cast<int64_t>(total);
  return Duration(negative ? -ns : ns);
}

std::optional<Duration> seconds(double s) {
  if (!std::isfinite(s) || std::abs(s) * 1e9 > static_cast<double>(INT64_MAX)) {
    return std::nullopt;
  }
  return Duration(static_cast<int64_t>(s * 1e9));
}

// The most threads a load uses: the spinning thread pool on more threads than the machine runs
// at once makes every step wait for threads that are not running (100000 threads, capped at the
// pool's 255, took minutes per token on 2 cores).
int max_threads() {
  const unsigned hc = std::thread::hardware_concurrency();
  return hc > 0 ? static_cast<int>(hc) : 1;
}

}  // namespace

Duration parse_keep_alive(const nlohmann::json& value) {
  if (value.is_number()) {
    if (auto d = seconds(value.get<double>())) return *d;
  } else if (value.is_string()) {
    const std::string s = value.get<std::string>();
    if (auto d = parse_go_duration(s)) return *d;
    if (auto n = parse_number(s)) {
      if (auto d = seconds(*n)) return *d;
    }
  }
  std::string shown = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (shown.size() > 80) shown = shown.substr(0, 80) + "...";
  throw std::invalid_argument("keep_alive: " + shown +
                              " is not a duration (\"5m\", \"1h30m\", \"-1s\") nor seconds");
}

SchedulerOptions scheduler_options_from_env() {
  SchedulerOptions o;
  const auto integer = [](const char* name, int64_t min, int64_t fallback) -> int64_t {
    const char* v = std::getenv(name);
    if (!v || !*v) return fallback;
    const auto n = parse_number(v);
    if (!n || *n != std::floor(*n) || *n < static_cast<double>(min) || *n > 1e15) {
      throw std::invalid_argument(std::string(name) + "=" + v +
                                  ": expected an integer of at least " + std::to_string(min));
    }
    return *n == 0 ? fallback : static_cast<int64_t>(*n);
  };
  if (const char* v = std::getenv("CORRAL_KEEP_ALIVE"); v && *v) {
    try {
      o.keep_alive = parse_keep_alive(nlohmann::json(v));
    } catch (const std::invalid_argument&) {
      throw std::invalid_argument(std::string("CORRAL_KEEP_ALIVE=") + v +
                                  ": expected a duration (\"5m\", \"1h\", \"-1\") or seconds");
    }
  }
  o.max_loaded = static_cast<int>(integer("CORRAL_MAX_LOADED_MODELS", 0, o.max_loaded));
  o.num_parallel = static_cast<int>(integer("CORRAL_NUM_PARALLEL", 0, o.num_parallel));
  o.max_queue =
      static_cast<size_t>(integer("CORRAL_MAX_QUEUE", 0, static_cast<int64_t>(o.max_queue)));
  o.default_num_ctx = integer("CORRAL_CONTEXT_LENGTH", 0, o.default_num_ctx);
  o.max_memory = max_memory_from_env();
  return o;
}

// ---- Lease ----

Lease::Lease(Lease&& other) noexcept
    : scheduler_(std::exchange(other.scheduler_, nullptr)), model_(std::move(other.model_)) {}

Lease& Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    if (scheduler_ && model_) scheduler_->release(model_);
    scheduler_ = std::exchange(other.scheduler_, nullptr);
    model_ = std::move(other.model_);
  }
  return *this;
}

Lease::~Lease() {
  if (scheduler_ && model_) scheduler_->release(model_);
}

// ---- Scheduler ----

struct Scheduler::Impl {
  struct Entry {
    std::shared_ptr<LoadedModel> model;  // null while loading
    bool loading = false;
    int refs = 0;
    bool unload_when_idle = false;
    int n_threads = 0;  // as asked at load (0: the default)
    // The context asked for at load (at most the trained one); more than the loaded one when
    // memory lowered it, and then requests up to it are served by this instance, not reloads.
    int64_t asked_ctx = 0;
    Steady::time_point last_used{};
    Steady::time_point deadline = Steady::time_point::max();  // when idle
  };

  std::mutex mu;
  std::condition_variable changed;  // an entry was loaded, released or removed
  std::condition_variable timer_wake;
  std::map<std::string, Entry> models;  // by GGUF path
  bool stopping = false;
  bool shutting_down = false;  // shutdown(): acquire() refuses
  std::thread timer;

  static Steady::time_point deadline_after(Duration keep_alive) {
    if (keep_alive.count() < 0) return Steady::time_point::max();
    return Steady::now() + keep_alive;
  }

  static System::time_point display_expiry(Duration keep_alive) {
    // Ollama shows "Forever" for expiry dates far away; a negative keep_alive is forever.
    if (keep_alive.count() < 0) return System::time_point::max();
    return System::now() + std::chrono::duration_cast<System::duration>(keep_alive);
  }

  void say(const SchedulerOptions& o, const std::string& line) const {
    if (o.log) {
      o.log(line);
    } else {
      std::cerr << "[corral] " << line << std::endl;
    }
  }

  // Under the lock: the bytes a new load may take.
  MemoryBudget budget(const SchedulerOptions& o) const {
    uint64_t used = 0;
    for (const auto& [path, e] : models) {
      if (e.model) used += e.model->runner->memory_bytes();
    }
    return memory_budget(o.available_memory ? o.available_memory() : available_system_memory(),
                         o.max_memory, used);
  }

  // The num_ctx a load of `name` gets (Runner's fit_memory): all it asked when that fits, after
  // unloading idle models if need be; else the largest that fits, down to min_num_ctx.
  int64_t fit(const SchedulerOptions& o, const std::string& name, const MemoryNeeds& n) {
    std::unique_lock lock(mu);
    MemoryBudget room = budget(o);
    while (n.bytes(n.num_ctx) > room.bytes) {
      auto lru = models.end();
      for (auto j = models.begin(); j != models.end(); ++j) {
        const Entry& e = j->second;
        if (!e.model || e.loading || e.refs > 0) continue;
        if (lru == models.end() || e.last_used < lru->second.last_used) lru = j;
      }
      if (lru == models.end()) break;
      std::shared_ptr<LoadedModel> victim = std::move(lru->second.model);
      models.erase(lru);
      changed.notify_all();
      lock.unlock();
      say(o, "unloading " + victim->info.name + " to make room for " + name);
      victim.reset();  // frees its memory before the probe looks again
      lock.lock();
      room = budget(o);
    }
    lock.unlock();
    return admit(name, n, room, o.min_num_ctx, [&](const std::string& line) { say(o, line); });
  }

  // Under the lock: removes idle models whose keep_alive ran out; returns them, to be destroyed
  // outside the lock.
  std::vector<std::shared_ptr<LoadedModel>> take_expired() {
    std::vector<std::shared_ptr<LoadedModel>> out;
    const auto now = Steady::now();
    for (auto it = models.begin(); it != models.end();) {
      Entry& e = it->second;
      if (e.model && !e.loading && e.refs == 0 && (e.unload_when_idle || e.deadline <= now)) {
        out.push_back(std::move(e.model));
        it = models.erase(it);
      } else {
        ++it;
      }
    }
    if (!out.empty()) changed.notify_all();
    return out;
  }

  void timer_loop() {
    std::unique_lock lock(mu);
    while (!stopping) {
      auto next = Steady::time_point::max();
      for (const auto& [path, e] : models) {
        if (e.model && e.refs == 0) next = std::min(next, e.deadline);
      }
      if (next == Steady::time_point::max()) {
        timer_wake.wait(lock);
      } else {
        timer_wake.wait_until(lock, next);
      }
      auto expired = take_expired();
      lock.unlock();
      expired.clear();
      lock.lock();
    }
  }
};

Scheduler::Scheduler(SchedulerOptions options)
    : options_(options), impl_(std::make_unique<Impl>()) {
  impl_->timer = std::thread([this] { impl_->timer_loop(); });
}

Scheduler::~Scheduler() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->timer_wake.notify_all();
  impl_->timer.join();
  std::map<std::string, Impl::Entry> models;
  {
    std::lock_guard lock(impl_->mu);
    models.swap(impl_->models);
  }
}

Lease Scheduler::acquire(const store::ModelInfo& info, const sample::Options& options,
                         std::optional<Duration> keep_alive_in) {
  Impl& m = *impl_;
  const std::string path = info.gguf.string();
  const Duration keep_alive = keep_alive_in.value_or(options_.keep_alive);
  const int64_t want_ctx = options.num_ctx > 0 ? options.num_ctx : options_.default_num_ctx;
  // A client's num_thread and num_batch are lowered to what the machine runs (see max_threads,
  // kMaxNumBatch); zero or negative ones take the defaults.
  const int want_threads =
      std::min(options.num_thread > 0 ? options.num_thread : options_.n_threads, max_threads());
  const int want_batch = options.num_batch > 0 ? std::min(options.num_batch, kMaxNumBatch)
                                               : sample::Options{}.num_batch;

  std::vector<std::shared_ptr<LoadedModel>> to_destroy;
  std::unique_lock lock(m.mu);
  for (;;) {
    if (m.shutting_down) throw std::runtime_error("the server is shutting down");
    auto expired = m.take_expired();
    to_destroy.insert(to_destroy.end(), expired.begin(), expired.end());
    auto it = m.models.find(path);
    if (it != m.models.end() && it->second.loading) {
      m.changed.wait(lock);
      continue;
    }
    if (it != m.models.end()) {
      Impl::Entry& e = it->second;
      const Runner& r = *e.model->runner;
      const int64_t train = r.model().config().n_ctx_train;
      const int64_t fit_ctx = train > 0 ? std::min(want_ctx, train) : want_ctx;
      const bool fits = fit_ctx <= std::max(r.options().num_ctx, e.asked_ctx) &&
                        (options.num_thread <= 0 || e.n_threads == want_threads) &&
                        !e.unload_when_idle;
      if (fits) {
        ++e.refs;
        e.last_used = Steady::now();
        e.model->keep_alive = keep_alive;
        e.model->expires_at = Impl::display_expiry(keep_alive);
        e.deadline = Impl::deadline_after(keep_alive);
        Lease lease;
        lease.scheduler_ = this;
        lease.model_ = e.model;
        lock.unlock();
        return lease;
      }
      // Another load is needed: once no request uses this one.
      if (e.refs > 0) {
        m.changed.wait(lock);
        continue;
      }
      to_destroy.push_back(std::move(e.model));
      m.models.erase(it);
    }
    // Room for one more: unload the least recently used idle model, or wait for one to idle.
    if (options_.max_loaded > 0 && m.models.size() >= static_cast<size_t>(options_.max_loaded)) {
      auto lru = m.models.end();
      for (auto j = m.models.begin(); j != m.models.end(); ++j) {
        const Impl::Entry& e = j->second;
        if (e.loading || e.refs > 0) continue;
        if (lru == m.models.end() || e.last_used < lru->second.last_used) lru = j;
      }
      if (lru == m.models.end()) {
        m.changed.wait(lock);
        continue;
      }
      to_destroy.push_back(std::move(lru->second.model));
      m.models.erase(lru);
      continue;
    }
    break;
  }

  Impl::Entry& slot = m.models[path];
  slot.loading = true;
  lock.unlock();
  to_destroy.clear();  // frees memory before the new model takes it

  std::shared_ptr<LoadedModel> loaded;
  int64_t asked_ctx = 0;
  try {
    loaded = std::make_shared<LoadedModel>();
    loaded->info = info;
    RunnerOptions ro{.num_ctx = want_ctx,
                     .num_parallel = std::max(1, options_.num_parallel),
                     .num_batch = want_batch,
                     .n_threads = want_threads};
    ro.projector = info.projector.string();
    ro.fit_memory = [this, &info, &asked_ctx](const MemoryNeeds& n) {
      asked_ctx = n.num_ctx;
      return impl_->fit(options_, info.name, n);
    };
    loaded->runner = std::make_unique<Runner>(path, std::move(ro));
    loaded->runner->set_max_queue(options_.max_queue);
  } catch (...) {
    lock.lock();
    m.models.erase(path);
    m.changed.notify_all();
    throw;
  }
  lock.lock();
  Impl::Entry& e = m.models[path];
  e.loading = false;
  e.model = loaded;
  e.refs = 1;
  e.n_threads = want_threads;
  e.asked_ctx = asked_ctx;
  e.last_used = Steady::now();
  e.deadline = Impl::deadline_after(keep_alive);
  loaded->keep_alive = keep_alive;
  loaded->expires_at = Impl::display_expiry(keep_alive);
  m.changed.notify_all();
  Lease lease;
  lease.scheduler_ = this;
  lease.model_ = std::move(loaded);
  return lease;
}

void Scheduler::release(const std::shared_ptr<LoadedModel>& model) {
  Impl& m = *impl_;
  std::vector<std::shared_ptr<LoadedModel>> expired;
  {
    std::lock_guard lock(m.mu);
    auto it = m.models.find(model->info.gguf.string());
    // An instance already replaced or unloaded only loses a reference.
    if (it == m.models.end() || it->second.model != model) return;
    Impl::Entry& e = it->second;
    if (--e.refs == 0) {
      e.last_used = Steady::now();
      e.deadline = Impl::deadline_after(model->keep_alive);
      model->expires_at = Impl::display_expiry(model->keep_alive);
      if (model->keep_alive.count() == 0) e.unload_when_idle = true;
      expired = m.take_expired();
    }
    m.changed.notify_all();
  }
  m.timer_wake.notify_all();
}

bool Scheduler::unload(const std::string& gguf_path) {
  Impl& m = *impl_;
  std::vector<std::shared_ptr<LoadedModel>> expired;
  std::shared_ptr<LoadedModel> model;
  {
    std::lock_guard lock(m.mu);
    auto it = m.models.find(gguf_path);
    if (it == m.models.end() || !it->second.model) return false;
    it->second.unload_when_idle = true;
    it->second.model->expires_at = System::now();
    model = it->second.model;
    expired = m.take_expired();
  }
  // Its requests end at their next step; the last lease released unloads it.
  model->runner->cancel_all();
  m.timer_wake.notify_all();
  return true;
}

void Scheduler::shutdown() {
  Impl& m = *impl_;
  std::vector<std::shared_ptr<LoadedModel>> models;
  {
    std::lock_guard lock(m.mu);
    m.shutting_down = true;
    for (const auto& [path, e] : m.models) {
      if (e.model) models.push_back(e.model);
    }
    m.changed.notify_all();
  }
  for (const auto& model : models) model->runner->cancel_all();
}

std::vector<RunningModel> Scheduler::running() const {
  Impl& m = *impl_;
  std::vector<std::shared_ptr<LoadedModel>> expired;
  std::vector<RunningModel> out;
  std::lock_guard lock(m.mu);
  expired = m.take_expired();
  std::vector<const Impl::Entry*> entries;
  for (const auto& [path, e] : m.models) {
    if (e.model) entries.push_back(&e);
  }
  // Most recently used first, as `ollama ps` lists them.
  std::sort(entries.begin(), entries.end(),
            [](const auto* a, const auto* b) { return a->last_used > b->last_used; });
  for (const Impl::Entry* entry : entries) {
    const Impl::Entry& e = *entry;
    const LoadedModel& lm = *e.model;
    RunningModel r;
    r.name = lm.info.name;
    r.digest = digest_of(lm.info.gguf);
    r.size = lm.runner->memory_bytes();
    r.context_length = lm.runner->options().num_ctx;
    r.expires_at = lm.expires_at;
    r.details = details_of(lm.info, lm.runner->file());
    r.in_use = e.refs > 0;
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace corral::runner
