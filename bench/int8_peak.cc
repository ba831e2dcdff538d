// The machine's int8 dot-product peak, so prefill (compute-bound: int8 dot products of quantized
// weights and activations) can be reported as a fraction of it, as decode is of the memory
// bandwidth (bench/stream.cc). Each thread runs 12 independent accumulator chains (more than
// the instructions' latency x throughput, so the dot-product units never wait on a result) of:
//   zmm:  vpdpbusd on 512-bit registers (AVX-512 VNNI): 64 u8 x s8 multiply-adds each;
//   ymm:  vpdpbusd on 256-bit registers (AVX-512 VL VNNI): 32 multiply-adds each;
//   avx2: vpmaddubsw + vpmaddwd (by ones) + vpaddd, the AVX2 kernels' sequence: 32 multiply-adds.
// GOPS counts 2 ops (a multiply and an add) per int8 multiply-add, as FLOPS count an FMA.
// The variants are picked at run time from CPUID: the binary runs on any x86-64 and says which
// variants this CPU could not run.
// Usage: int8_peak [-t THREADS] [-r REPS] [--json]   (THREADS default: physical cores)
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

constexpr int kChains = 12;
// Loop trips per thread and repetition: 12 x 2^25 steps, 50-200 ms (long next to a scheduler
// slice and to the threads' start).
constexpr int64_t kIters = int64_t{1} << 25;

#define CORRAL_AVX512_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
#define CORRAL_AVX2 __attribute__((target("avx2")))

// Each returns a value that depends on every chain, so none is optimised away. The chains are
// named locals (an array of them is kept in memory), and the empty asm with them as operands
// stops the compiler from merging the chains or hoisting the loop-invariant products.
CORRAL_AVX512_VNNI int32_t run_zmm(int64_t iters, int seed) {
  const __m512i a = _mm512_set1_epi8(static_cast<char>(1 + seed));
  const __m512i b = _mm512_set1_epi8(3);
  __m512i c0 = _mm512_set1_epi32(0), c1 = _mm512_set1_epi32(1), c2 = _mm512_set1_epi32(2),
          c3 = _mm512_set1_epi32(3), c4 = _mm512_set1_epi32(4), c5 = _mm512_set1_epi32(5),
          c6 = _mm512_set1_epi32(6), c7 = _mm512_set1_epi32(7), c8 = _mm512_set1_epi32(8),
          c9 = _mm512_set1_epi32(9), c10 = _mm512_set1_epi32(10), c11 = _mm512_set1_epi32(11);
  for (int64_t it = 0; it < iters; ++it) {
    c0 = _mm512_dpbusd_epi32(c0, a, b);
    c1 = _mm512_dpbusd_epi32(c1, a, b);
    c2 = _mm512_dpbusd_epi32(c2, a, b);
    c3 = _mm512_dpbusd_epi32(c3, a, b);
    c4 = _mm512_dpbusd_epi32(c4, a, b);
    c5 = _mm512_dpbusd_epi32(c5, a, b);
    c6 = _mm512_dpbusd_epi32(c6, a, b);
    c7 = _mm512_dpbusd_epi32(c7, a, b);
    c8 = _mm512_dpbusd_epi32(c8, a, b);
    c9 = _mm512_dpbusd_epi32(c9, a, b);
    c10 = _mm512_dpbusd_epi32(c10, a, b);
    c11 = _mm512_dpbusd_epi32(c11, a, b);
    asm volatile(""
                 : "+v"(c0), "+v"(c1), "+v"(c2), "+v"(c3), "+v"(c4), "+v"(c5), "+v"(c6), "+v"(c7),
                   "+v"(c8), "+v"(c9), "+v"(c10), "+v"(c11));
  }
  const __m512i s = _mm512_add_epi32(
      _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(c0, c1), _mm512_add_epi32(c2, c3)),
                       _mm512_add_epi32(_mm512_add_epi32(c4, c5), _mm512_add_epi32(c6, c7))),
      _mm512_add_epi32(_mm512_add_epi32(c8, c9), _mm512_add_epi32(c10, c11)));
  alignas(64) int32_t lanes[16];
  _mm512_store_si512(lanes, s);
  return lanes[0] + lanes[15];
}

CORRAL_AVX512_VNNI int32_t run_ymm(int64_t iters, int seed) {
  const __m256i a = _mm256_set1_epi8(static_cast<char>(1 + seed));
  const __m256i b = _mm256_set1_epi8(3);
  __m256i c0 = _mm256_set1_epi32(0), c1 = _mm256_set1_epi32(1), c2 = _mm256_set1_epi32(2),
          c3 = _mm256_set1_epi32(3), c4 = _mm256_set1_epi32(4), c5 = _mm256_set1_epi32(5),
          c6 = _mm256_set1_epi32(6), c7 = _mm256_set1_epi32(7), c8 = _mm256_set1_epi32(8),
          c9 = _mm256_set1_epi32(9), c10 = _mm256_set1_epi32(10), c11 = _mm256_set1_epi32(11);
  for (int64_t it = 0; it < iters; ++it) {
    c0 = _mm256_dpbusd_epi32(c0, a, b);
    c1 = _mm256_dpbusd_epi32(c1, a, b);
    c2 = _mm256_dpbusd_epi32(c2, a, b);
    c3 = _mm256_dpbusd_epi32(c3, a, b);
    c4 = _mm256_dpbusd_epi32(c4, a, b);
    c5 = _mm256_dpbusd_epi32(c5, a, b);
    c6 = _mm256_dpbusd_epi32(c6, a, b);
    c7 = _mm256_dpbusd_epi32(c7, a, b);
    c8 = _mm256_dpbusd_epi32(c8, a, b);
    c9 = _mm256_dpbusd_epi32(c9, a, b);
    c10 = _mm256_dpbusd_epi32(c10, a, b);
    c11 = _mm256_dpbusd_epi32(c11, a, b);
    asm volatile(""
                 : "+v"(c0), "+v"(c1), "+v"(c2), "+v"(c3), "+v"(c4), "+v"(c5), "+v"(c6), "+v"(c7),
                   "+v"(c8), "+v"(c9), "+v"(c10), "+v"(c11));
  }
  const __m256i s = _mm256_add_epi32(
      _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(c0, c1), _mm256_add_epi32(c2, c3)),
                       _mm256_add_epi32(_mm256_add_epi32(c4, c5), _mm256_add_epi32(c6, c7))),
      _mm256_add_epi32(_mm256_add_epi32(c8, c9), _mm256_add_epi32(c10, c11)));
  return _mm256_extract_epi32(s, 0) + _mm256_extract_epi32(s, 7);
}

// The compiler would hoist maddubs(a, b) out of the loop (it does not depend on the chain):
// the step is written out in assembly, one temporary per product (renamed by the core, so the
// chains stay independent). 12 chains + a, b, ones and the temporary fill the 16 ymm registers.
#define CORRAL_AVX2_STEP(c)          \
  "vpmaddubsw %[b], %[a], %[t]\n\t"  \
  "vpmaddwd %[ones], %[t], %[t]\n\t" \
  "vpaddd %[t], %[" #c "], %[" #c "]\n\t"
CORRAL_AVX2 int32_t run_avx2(int64_t iters, int seed) {
  const __m256i a = _mm256_set1_epi8(static_cast<char>(1 + seed));
  const __m256i b = _mm256_set1_epi8(3);
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i c0 = _mm256_set1_epi32(0), c1 = _mm256_set1_epi32(1), c2 = _mm256_set1_epi32(2),
          c3 = _mm256_set1_epi32(3), c4 = _mm256_set1_epi32(4), c5 = _mm256_set1_epi32(5),
          c6 = _mm256_set1_epi32(6), c7 = _mm256_set1_epi32(7), c8 = _mm256_set1_epi32(8),
          c9 = _mm256_set1_epi32(9), c10 = _mm256_set1_epi32(10), c11 = _mm256_set1_epi32(11);
  __m256i t;
  for (int64_t it = 0; it < iters; ++it) {
    asm volatile(CORRAL_AVX2_STEP(c0) CORRAL_AVX2_STEP(c1) CORRAL_AVX2_STEP(c2) CORRAL_AVX2_STEP(c3)
                     CORRAL_AVX2_STEP(c4) CORRAL_AVX2_STEP(c5) CORRAL_AVX2_STEP(c6)
                         CORRAL_AVX2_STEP(c7) CORRAL_AVX2_STEP(c8) CORRAL_AVX2_STEP(c9)
                             CORRAL_AVX2_STEP(c10) CORRAL_AVX2_STEP(c11)
                 : [c0] "+x"(c0), [c1] "+x"(c1), [c2] "+x"(c2), [c3] "+x"(c3), [c4] "+x"(c4),
                   [c5] "+x"(c5), [c6] "+x"(c6), [c7] "+x"(c7), [c8] "+x"(c8), [c9] "+x"(c9),
                   [c10] "+x"(c10), [c11] "+x"(c11), [t] "=&x"(t)
                 : [a] "x"(a), [b] "x"(b), [ones] "x"(ones));
  }
  const __m256i s = _mm256_add_epi32(
      _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(c0, c1), _mm256_add_epi32(c2, c3)),
                       _mm256_add_epi32(_mm256_add_epi32(c4, c5), _mm256_add_epi32(c6, c7))),
      _mm256_add_epi32(_mm256_add_epi32(c8, c9), _mm256_add_epi32(c10, c11)));
  return _mm256_extract_epi32(s, 0) + _mm256_extract_epi32(s, 7);
}

struct Variant {
  const char* name;  // the JSON key's stem
  int32_t (*run)(int64_t iters, int seed);
  double ops_per_iter;  // per chain step: 2 x the int8 multiply-adds of one step
  bool supported;
  const char* needs;  // what a CPU lacking it lacks
};

// Physical cores: distinct (package, core) pairs among the online CPUs; the logical count where
// sysfs does not say.
int physical_cores() {
  std::set<std::pair<std::string, std::string>> cores;
  const unsigned n = std::max(1u, std::thread::hardware_concurrency());
  for (unsigned cpu = 0; cpu < n; ++cpu) {
    const std::string dir = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    std::ifstream pkg(dir + "physical_package_id"), core(dir + "core_id");
    std::string p, c;
    if (!(pkg >> p) || !(core >> c)) return static_cast<int>(n);
    cores.insert({p, c});
  }
  return std::max<int>(1, static_cast<int>(cores.size()));
}

// The best of reps runs of nth threads that start together; each runs kIters chain steps.
double measure_gops(const Variant& v, int nth, int reps, int64_t& sink) {
  double best = 0;
  for (int r = 0; r < reps; ++r) {
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    std::vector<int32_t> out(static_cast<size_t>(nth));
    std::vector<std::thread> threads;
    for (int t = 0; t < nth; ++t) {
      threads.emplace_back([&, t] {
        ready.fetch_add(1);
        while (!go.load(std::memory_order_acquire)) {
        }
        out[static_cast<size_t>(t)] = v.run(kIters, t);
      });
    }
    while (ready.load() < nth) {
    }
    const auto t0 = std::chrono::steady_clock::now();
    go.store(true, std::memory_order_release);
    for (auto& th : threads) th.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (int32_t x : out) sink += x;
    const double ops = v.ops_per_iter * kChains * static_cast<double>(kIters) * nth;
    best = std::max(best, ops / s / 1e9);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  int nth = physical_cores();
  int reps = 5;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-t" && i + 1 < argc) {
      nth = std::atoi(argv[++i]);
    } else if (a == "-r" && i + 1 < argc) {
      reps = std::atoi(argv[++i]);
    } else if (a == "--json") {
      json = true;
    } else {
      std::fprintf(stderr, "usage: int8_peak [-t THREADS] [-r REPS] [--json]\n");
      return 2;
    }
  }
  if (nth < 1 || nth > 1024 || reps < 1 || reps > 1000) {
    std::fprintf(stderr, "int8_peak: THREADS must be 1..1024 and REPS 1..1000\n");
    return 2;
  }
  __builtin_cpu_init();
  const bool vnni = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                    __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
  const bool avx2 = __builtin_cpu_supports("avx2");
  const char* isa = vnni                                ? "avx512vnni"
                    : __builtin_cpu_supports("avx512f") ? "avx512"
                    : avx2                              ? "avx2"
                                                        : "x86-64";
  const Variant variants[] = {
      {"zmm", run_zmm, 2.0 * 64, vnni, "AVX-512 F/BW/VL/VNNI"},
      {"ymm", run_ymm, 2.0 * 32, vnni, "AVX-512 VL/VNNI"},
      {"avx2", run_avx2, 2.0 * 32, avx2, "AVX2"},
  };
  int64_t sink = 0;
  if (json) {
    std::printf("{\"isa\": \"%s\", \"threads\": %d, \"reps\": %d", isa, nth, reps);
  } else {
    std::printf("int8 dot-product peak: %d threads, %d chains each, best of %d (isa %s)\n", nth,
                kChains, reps, isa);
  }
  std::string not_run;
  for (const Variant& v : variants) {
    if (!v.supported) {
      if (json) {
        std::printf(", \"%s_gops\": null", v.name);
      } else {
        std::printf("  %-5s not run: this CPU lacks %s\n", v.name, v.needs);
      }
      not_run += std::string(not_run.empty() ? "" : ", ") + "\"" + v.name + "\"";
      continue;
    }
    const double gops = measure_gops(v, nth, reps, sink);
    if (json) {
      std::printf(", \"%s_gops\": %.1f", v.name, gops);
    } else {
      std::printf("  %-5s %8.1f GOPS\n", v.name, gops);
    }
  }
  if (json) std::printf(", \"not_run\": [%s]}\n", not_run.c_str());
  return sink == 1;  // keeps the results live; never 1 in practice
}
