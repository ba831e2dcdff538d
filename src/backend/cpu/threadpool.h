// A persistent pool of worker threads for the CPU backend. run() hands one task to n threads
// (the caller is thread 0) and returns when all are done; barrier() syncs them inside a task.
// Workers spin briefly, then sleep, so a decode step's many small ops cost microseconds each.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
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
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  Task task_ = nullptr;
  void* ctx_ = nullptr;
  int nth_ = 1;
  // Barrier state.
  std::atomic<int> barrier_count_{0};
  std::atomic<uint64_t> barrier_phase_{0};
  std::mutex mu_;
  std::condition_variable cv_;
};

// Physical cores of this machine (hyper-threads not counted), at least 1.
int physical_cores();

}  // namespace corral::backend::cpu
