// A persistent pool of worker threads for the CPU backend. run() hands one task to n threads
// (the caller is thread 0) and returns when all are done; barrier() syncs them inside a task.
// A waiting thread spins for a few tens of microseconds (a decode step's ops are that short,
// and a hand-off through the kernel costs as much), then sleeps on a futex, so a thread whose
// partner was descheduled by another process gives its core back instead of burning it.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace corral::backend::cpu {

class ThreadPool {
 public:
  using Task = void (*)(void* ctx, int ith, int nth);

  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }
  // Runs task(ctx, ith, nth) on nth <= size() threads; ith 0 runs on the caller.
  void run(int nth, Task task, void* ctx);
  template <class F>
  void run(int nth, F& f) {
    run(
        nth, [](void* c, int ith, int n) { (*static_cast<F*>(c))(ith, n); }, &f);
  }
  // All nth threads of the current task wait here for each other.
  void barrier();

 private:
  void worker(int ith);

  int n_threads_;
  std::vector<std::thread> threads_;
  // Each word a thread sleeps on has a count of its sleepers beside it, so the thread that
  // changes it makes the wake-up system call only when someone sleeps.
  alignas(64) std::atomic<uint32_t> generation_{0};  // bumped by run() for the workers
  std::atomic<int> idle_sleepers_{0};
  alignas(64) std::atomic<uint32_t> pending_{0};  // workers still running the task
  std::atomic<int> caller_sleeps_{0};
  alignas(64) std::atomic<uint32_t> barrier_count_{0};
  std::atomic<uint32_t> barrier_phase_{0};
  std::atomic<int> barrier_sleepers_{0};
  alignas(64) std::atomic<bool> stop_{false};
  Task task_ = nullptr;
  void* ctx_ = nullptr;
  int nth_ = 1;
};

// Physical cores of this machine (hyper-threads not counted), at least 1.
int physical_cores();

}  // namespace corral::backend::cpu
