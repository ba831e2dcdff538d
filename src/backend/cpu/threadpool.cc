#include "backend/cpu/threadpool.h"

#include <fstream>
#include <set>
#include <string>
#include <utility>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace corral::backend::cpu {
namespace {

inline void cpu_relax() {
#if defined(__x86_64__)
  _mm_pause();
#endif
}

// Spin this many rounds before sleeping on the condition variable.
constexpr int kSpinRounds = 1 << 16;
// Inside a task, spin this many rounds before yielding the core: on an oversubscribed machine a
// thread that only spins keeps the one it waits for off the CPU.
constexpr int kYieldAfter = 1 << 10;

// Waits until done() holds: pause-spins first (a step's ops take microseconds), then yields.
template <class Done>
void spin_until(Done done) {
  for (int spin = 0; !done(); ++spin) {
    if (spin < kYieldAfter) {
      cpu_relax();
    } else {
      std::this_thread::yield();
    }
  }
}

}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads < 1 ? 1 : n_threads) {
  for (int i = 1; i < n_threads_; ++i) threads_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
    generation_.fetch_add(1);
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void ThreadPool::run(int nth, Task task, void* ctx) {
  if (nth < 1) nth = 1;
  if (nth > n_threads_) nth = n_threads_;
  if (nth == 1) {
    nth_ = 1;
    task(ctx, 0, 1);
    return;
  }
  task_ = task;
  ctx_ = ctx;
  nth_ = nth;
  pending_.store(nth - 1, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(mu_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  cv_.notify_all();
  task(ctx, 0, nth);
  spin_until([this] { return pending_.load(std::memory_order_acquire) == 0; });
}

void ThreadPool::worker(int ith) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t gen = generation_.load(std::memory_order_acquire);
    for (int spin = 0; gen == seen && spin < kSpinRounds; ++spin) {
      cpu_relax();
      gen = generation_.load(std::memory_order_acquire);
    }
    if (gen == seen) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      gen = generation_.load(std::memory_order_acquire);
    }
    seen = gen;
    if (stop_.load()) return;
    if (ith < nth_) {
      task_(ctx_, ith, nth_);
      pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }
}

void ThreadPool::barrier() {
  const int nth = nth_;
  if (nth == 1) return;
  const uint64_t phase = barrier_phase_.load(std::memory_order_acquire);
  if (barrier_count_.fetch_add(1, std::memory_order_acq_rel) == nth - 1) {
    barrier_count_.store(0, std::memory_order_relaxed);
    barrier_phase_.fetch_add(1, std::memory_order_acq_rel);
    return;
  }
  spin_until([&] { return barrier_phase_.load(std::memory_order_acquire) != phase; });
}

int physical_cores() {
  // Distinct (physical id, core id) pairs in /proc/cpuinfo; falls back to hardware_concurrency.
  std::ifstream in("/proc/cpuinfo");
  std::set<std::pair<std::string, std::string>> cores;
  std::string line, phys = "0";
  while (std::getline(in, line)) {
    auto value = [&] {
      auto p = line.find(':');
      return p == std::string::npos ? std::string() : line.substr(p + 2);
    };
    if (line.rfind("physical id", 0) == 0) phys = value();
    if (line.rfind("core id", 0) == 0) cores.emplace(phys, value());
  }
  if (!cores.empty()) return static_cast<int>(cores.size());
  const unsigned hc = std::thread::hardware_concurrency();
  return hc ? static_cast<int>(hc) : 1;
}

}  // namespace corral::backend::cpu
