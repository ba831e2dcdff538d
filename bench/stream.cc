// A STREAM-style memory bandwidth benchmark (copy, scale, add, triad over arrays far larger than
// the caches), so decode speed can be reported as a fraction of the bandwidth limit.
// Usage: stream [-t THREADS] [-n MiB_PER_ARRAY] [-r REPS] [--json]
#include <algorithm>
#include <chrono>
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
  std::vector<double> a(n), b(n), c(n);
  parallel(nth, n, [&](size_t lo, size_t hi) {
    for (size_t i = lo; i < hi; ++i) a[i] = 1.0, b[i] = 2.0, c[i] = 0.0;
  });
  const double s = 3.0;
  struct Kernel {
    const char* name;
    int arrays;  // arrays touched (read + written) per element
    double best = 1e30;
  } k[4] = {{"copy", 2}, {"scale", 2}, {"add", 3}, {"triad", 3}};
  for (int r = 0; r < reps; ++r) {
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
  return a[0] == 12345.0;  // keeps the loops from being optimised away
}
