#include "backend/cpu/threadpool.h"

#include <chrono>
#include <climits>
#include <fstream>
#include <set>
#include <string>
#include <utility>

#if defined(__x86_64__)
#include <immintrin.h>
#endif
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace corral::backend::cpu {
namespace {

inline void cpu_relax() {
#if defined(__x86_64__)
  _mm_pause();
#endif
}

// How long a waiting thread spins before it sleeps. Longer than the gap between two
// multithreaded ops of a decode step (so workers stay awake through a step), short enough that a
// thread waiting for a descheduled partner yields its core within a scheduler tick.
constexpr auto kSpinFor = std::chrono::microseconds(50);

static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t));

// Sleeps while *word == expected (returns at once if it already differs, or spuriously).
void sleep_on(std::atomic<uint32_t>& word, uint32_t expected) {
#if defined(__linux__)
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, nullptr,
          nullptr, 0);
#else
  word.wait(expected, std::memory_order_acquire);
#endif
}

void wake_all(std::atomic<uint32_t>& word) {
#if defined(__linux__)
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr,
          nullptr, 0);
#else
  word.notify_all();
#endif
}

// Spins (checking the clock every 64 rounds) until done() or kSpinFor has passed; returns
// done().
template <class Done>
bool spin_for(Done done) {
  if (done()) return true;
  const auto deadline = std::chrono::steady_clock::now() + kSpinFor;
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      cpu_relax();
      if (done()) return true;
    }
    if (std::chrono::steady_clock::now() > deadline) return false;
  }
}

// Waits until word != value: spins, then sleeps on the word with `sleepers` counting it. The
// seq_cst increment of `sleepers` before the last check pairs with the waker's seq_cst change
// of the word and load of `sleepers`: either the waker sees a sleeper or this thread sees the
// change.
uint32_t wait_change(std::atomic<uint32_t>& word, uint32_t value, std::atomic<int>& sleepers) {
  uint32_t now = value;
  if (spin_for([&] { return (now = word.load(std::memory_order_acquire)) != value; })) return now;
  sleepers.fetch_add(1, std::memory_order_seq_cst);
  while ((now = word.load(std::memory_order_seq_cst)) == value) sleep_on(word, value);
  sleepers.fetch_sub(1, std::memory_order_relaxed);
  return now;
}

// The word run() bumps carries the task's thread count in its low byte, so a worker reads the
// generation and whether it takes part in one load: a worker the task does not use never
// touches task_ or ctx_, and run() waits only for the workers it uses.
constexpr int kMaxThreads = 255;
constexpr uint32_t kGenerationStep = 256;

}  // namespace

ThreadPool::ThreadPool(int n_threads)
    : n_threads_(n_threads < 1 ? 1 : (n_threads > kMaxThreads ? kMaxThreads : n_threads)) {
  for (int i = 1; i < n_threads_; ++i) threads_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_relaxed);
  const uint32_t g = generation_.load(std::memory_order_relaxed);
  generation_.store((g & ~0xffu) + kGenerationStep, std::memory_order_seq_cst);  // nth 0
  wake_all(generation_);
  for (auto& t : threads_) t.join();
}

void ThreadPool::run(int nth, Task task, void* ctx) {
  if (nth < 1) nth = 1;
  if (nth > n_threads_) nth = n_threads_;
  nth_ = nth;
  if (nth == 1) {
    task(ctx, 0, 1);
    return;
  }
  task_ = task;
  ctx_ = ctx;
  pending_.store(static_cast<uint32_t>(nth - 1), std::memory_order_relaxed);
  const uint32_t g = generation_.load(std::memory_order_relaxed);
  // Publishes task_, ctx_, nth_ and pending_ to the workers that see the new word.
  generation_.store((g & ~0xffu) + kGenerationStep + static_cast<uint32_t>(nth),
                    std::memory_order_seq_cst);
  if (idle_sleepers_.load(std::memory_order_seq_cst) > 0) wake_all(generation_);
  task(ctx, 0, nth);
  uint32_t left = 0;
  const auto done = [&] { return (left = pending_.load(std::memory_order_acquire)) == 0; };
  if (!spin_for(done)) {
    caller_sleeps_.fetch_add(1, std::memory_order_seq_cst);
    while ((left = pending_.load(std::memory_order_seq_cst)) != 0) sleep_on(pending_, left);
    caller_sleeps_.fetch_sub(1, std::memory_order_relaxed);
  }
}

void ThreadPool::worker(int ith) {
  uint32_t seen = 0;  // generation_ starts at 0; a run() before this thread starts is seen
  for (;;) {
    seen = wait_change(generation_, seen, idle_sleepers_);
    if (stop_.load(std::memory_order_relaxed)) return;
    const int nth = static_cast<int>(seen & 0xffu);
    if (ith >= nth) continue;
    task_(ctx_, ith, nth);
    if (pending_.fetch_sub(1, std::memory_order_seq_cst) == 1 &&
        caller_sleeps_.load(std::memory_order_seq_cst) > 0) {
      wake_all(pending_);
    }
  }
}

void ThreadPool::barrier() {
  const int nth = nth_;
  if (nth == 1) return;
  const uint32_t phase = barrier_phase_.load(std::memory_order_acquire);
  if (barrier_count_.fetch_add(1, std::memory_order_acq_rel) == static_cast<uint32_t>(nth - 1)) {
    barrier_count_.store(0, std::memory_order_relaxed);
    barrier_phase_.fetch_add(1, std::memory_order_seq_cst);
    if (barrier_sleepers_.load(std::memory_order_seq_cst) > 0) wake_all(barrier_phase_);
    return;
  }
  wait_change(barrier_phase_, phase, barrier_sleepers_);
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
