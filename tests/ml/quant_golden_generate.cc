// Regenerates the kGolden table of quant_test.cc from llama.cpp's own code. Not built by corral
// (it needs ggml): build it against a ggml checkout, e.g.
//   cmake -S ggml -B ggml/build -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF
//   ninja -C ggml/build ggml-base
//   g++ -std=c++20 -O2 -Iggml/include -Iggml/src tests/ml/quant_golden_generate.cc \
//       ggml/build/src/libggml-base.a -fopenmp -o quant_golden && ./quant_golden
// The inputs must stay identical to golden_input() in quant_test.cc.
#include <cstdint>
#include <cstdio>
#include <vector>

extern "C" {
#include "ggml-quants.h"
#include "ggml.h"
}

namespace {

struct Lcg {
  uint64_t state;
  uint32_t next() {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>(state >> 33);
  }
  float uniform() { return static_cast<float>(next()) * (1.0f / 1073741824.0f) - 1.0f; }
  float gaussian() { return (uniform() + uniform() + uniform() + uniform()) * 0.8660254f; }
};

uint64_t fnv1a(const void* p, size_t n) {
  uint64_t h = 14695981039346656037ull;
  for (size_t i = 0; i < n; ++i) {
    h ^= static_cast<const uint8_t*>(p)[i];
    h *= 1099511628211ull;
  }
  return h;
}

using Quantize = void (*)(const float*, void*, int64_t);
using Dequantize = void (*)(const void*, float*, int64_t);
struct Format {
  const char* name;
  size_t block_size, type_size;
  Quantize quantize;
  Dequantize dequantize;  // ggml has none for q8_1
};

#define FORMAT(T, f, bs, ts)                                          \
  {                                                                   \
#T, bs, ts, reinterpret_cast < Quantize>(quantize_row_##f##_ref), \
        reinterpret_cast < Dequantize>(dequantize_row_##f)            \
  }
const Format kFormats[] = {
    FORMAT(Q4_0, q4_0, 32, 18),
    FORMAT(Q4_1, q4_1, 32, 20),
    FORMAT(Q5_0, q5_0, 32, 22),
    FORMAT(Q5_1, q5_1, 32, 24),
    FORMAT(Q8_0, q8_0, 32, 34),
    {"Q8_1", 32, 36, reinterpret_cast<Quantize>(quantize_row_q8_1_ref), nullptr},
    FORMAT(Q2_K, q2_K, 256, 84),
    FORMAT(Q3_K, q3_K, 256, 110),
    FORMAT(Q4_K, q4_K, 256, 144),
    FORMAT(Q5_K, q5_K, 256, 176),
    FORMAT(Q6_K, q6_K, 256, 210),
    FORMAT(Q8_K, q8_K, 256, 292),
};
#undef FORMAT

constexpr int kGoldenN = 32768;

std::vector<float> golden_input(int c) {
  Lcg rng{static_cast<uint64_t>(7 + c)};
  std::vector<float> x(kGoldenN);
  for (int i = 0; i < kGoldenN; ++i) {
    if (c == 0) {
      x[i] = rng.gaussian();
    } else if (c == 1) {
      x[i] = rng.gaussian() * (rng.next() % 64 == 0 ? 30.f : 1.f);
    } else if (c == 2) {
      x[i] = static_cast<float>(rng.next() % 5) * 0.25f - 0.5f;
    } else {
      x[i] = (i / 16) % 3 == 0 ? 0.f : rng.gaussian() * 1e-3f;
    }
  }
  return x;
}

}  // namespace

int main() {
  for (const Format& f : kFormats) {
    std::printf("{DType::%s, {", f.name);
    for (int c = 0; c < 4; ++c) {
      const std::vector<float> x = golden_input(c);
      std::vector<uint8_t> q(kGoldenN / f.block_size * f.type_size, 0);
      f.quantize(x.data(), q.data(), kGoldenN);
      unsigned long long dequantized = 0;
      if (f.dequantize != nullptr) {
        std::vector<float> y(kGoldenN);
        f.dequantize(q.data(), y.data(), kGoldenN);
        dequantized = fnv1a(y.data(), y.size() * sizeof(float));
      }
      std::printf("{0x%016llxull, ", static_cast<unsigned long long>(fnv1a(q.data(), q.size())));
      if (dequantized == 0) {
        std::printf("0}");
      } else {
        std::printf("0x%016llxull}", dequantized);
      }
      std::printf("%s", c < 3 ? ", " : "}},\n");
    }
  }
}
