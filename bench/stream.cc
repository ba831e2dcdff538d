// A STREAM-style memory bandwidth benchmark (copy, scale, add, triad over arrays far larger than
// the caches, and read: a sum over one array), so decode speed can be reported as a fraction of
// the bandwidth limit. Decode only reads (weights and KV cache), so `read` is its limit.
// Usage: stream [-t THREADS] [-n MiB_PER_ARRAY] [-r REPS] [--json]
#include <sys/mman.h>
#include <xmmintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

template <class F>
void parallel(int nth, size_t n, F f) {
  std::vector<std::thread> threads;
  const size_t per = (n + nth - 1) / nth;
  for (int t = 0; t < nth; ++t) {
    const size_t b = std::min(n, per * t), e = std::min(n, b + per);
    threads.emplace_back([=] { f(b, e); });
  }
  for (auto& t : threads) t.join();
}

class HugeArray {
 public:
  explicit HugeArray(size_t n) : n_(n) {
    const size_t bytes = (n * sizeof(double) + kPage - 1) / kPage * kPage;
    p_ = static_cast<double*>(std::aligned_alloc(kPage, bytes));
    if (!p_) {
      std::fprintf(stderr, "stream: out of memory\n");
      std::exit(1);
    }
    madvise(p_, bytes, MADV_HUGEPAGE);
  }
  ~HugeArray() { std::free(p_); }
  HugeArray(const HugeArray&) = delete;
  HugeArray& operator=(const HugeArray&) = delete;
  double& operator[](size_t i) { return p_[i]; }
  double* data() { return p_; }

 private:
  static constexpr size_t kPage = size_t{2} << 20;
  size_t n_;
  double* p_;
};

double seconds_of(auto&& f) {
  const auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  int nth = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  size_t mib = 256;
  int reps = 10;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-t" && i + 1 < argc)
      nth = std::atoi(argv[++i]);
    else if (a == "-n" && i + 1 < argc)
      mib = std::strtoul(argv[++i], nullptr, 10);
    else if (a == "-r" && i + 1 < argc)
      reps = std::atoi(argv[++i]);
    else if (a == "--json")
      json = true;
    else {
      std::fprintf(stderr, "usage: stream [-t THREADS] [-n MiB_PER_ARRAY] [-r REPS] [--json]\n");
      return 2;
    }
  }
  const size_t n = mib * 1024 * 1024 / sizeof(double);
  // On 2 MiB pages where the system offers them (as corral keeps its packed weights), so the
  // hardware prefetchers are not stopped at every 4 KiB page boundary.
  HugeArray a(n), b(n), c(n);
  parallel(nth, n, [&](size_t lo, size_t hi) {
    for (size_t i = lo; i < hi; ++i) a[i] = 1.0, b[i] = 2.0, c[i] = 0.0;
  });
  const double s = 3.0;
  struct Kernel {
    const char* name;
    int arrays;  // arrays touched (read + written) per element
    double best = 1e30;
  } k[5] = {{"copy", 2}, {"scale", 2}, {"add", 3}, {"triad", 3}, {"read", 1}};
  std::vector<uint64_t> sums(nth);
  for (int r = 0; r < reps; ++r) {
    k[4].best =
        std::min(k[4].best, seconds_of([&] {
                   parallel(nth, n, [&](size_t lo, size_t hi) {
                     // Integer sums of the bit patterns: vectorizable, and four of them
                     // keep loads in flight.
                     const auto* u = reinterpret_cast<const uint64_t*>(a.data());
                     uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
                     size_t i = lo;
                     for (; i + 4 <= hi; i += 4) {
                       // 1 KiB ahead: more lines in flight than the hardware
                       // prefetchers keep for one core (corral's decode does the same).
                       if (i % 8 == 0)
                         _mm_prefetch(reinterpret_cast<const char*>(u + i) + 1024, _MM_HINT_T0);
                       s0 += u[i];
                       s1 += u[i + 1];
                       s2 += u[i + 2];
                       s3 += u[i + 3];
                     }
                     for (; i < hi; ++i) s0 += u[i];
                     sums[lo / std::max<size_t>(1, (n + nth - 1) / nth)] = s0 + s1 + s2 + s3;
                   });
                 }));
    k[0].best = std::min(k[0].best, seconds_of([&] {
                           parallel(nth, n, [&](size_t lo, size_t hi) {
                             std::memcpy(&c[lo], &a[lo], (hi - lo) * 8);
                           });
                         }));
    k[1].best = std::min(k[1].best, seconds_of([&] {
                           parallel(nth, n, [&](size_t lo, size_t hi) {
                             for (size_t i = lo; i < hi; ++i) b[i] = s * c[i];
                           });
                         }));
    k[2].best = std::min(k[2].best, seconds_of([&] {
                           parallel(nth, n, [&](size_t lo, size_t hi) {
                             for (size_t i = lo; i < hi; ++i) c[i] = a[i] + b[i];
                           });
                         }));
    k[3].best = std::min(k[3].best, seconds_of([&] {
                           parallel(nth, n, [&](size_t lo, size_t hi) {
                             for (size_t i = lo; i < hi; ++i) a[i] = b[i] + s * c[i];
                           });
                         }));
  }
  if (json)
    std::printf("{\"threads\": %d, \"array_mib\": %zu", nth, mib);
  else
    std::printf("STREAM: %d threads, %zu MiB per array, best of %d\n", nth, mib, reps);
  for (const auto& x : k) {
    const double gbs = static_cast<double>(x.arrays) * n * sizeof(double) / x.best / 1e9;
    if (json)
      std::printf(", \"%s_gbs\": %.2f", x.name, gbs);
    else
      std::printf("  %-6s %8.2f GB/s\n", x.name, gbs);
  }
  if (json) std::printf("}\n");
  uint64_t total = 0;
  for (uint64_t v : sums) total += v;
  return a[0] == 12345.0 && total == 1;  // keeps the loops from being optimised away
}
