// Separable antialiased resampling with int16 fixed-point weights (PyTorch's
// UpSampleKernel.cpp, _compute_index_ranges_int16_weights and the uint8 loops), see resample.h.
#include "image/resample.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace corral::image {
namespace {

double triangle(double x) {
  x = std::abs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

double cubic(double x) {
  constexpr double a = -0.5;
  x = std::abs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a;
  return 0.0;
}

// For each output index: the first input index, how many inputs it reads and their weights
// (int16 values, `taps` per output, scaled by 2^precision).
struct Weights {
  std::vector<int64_t> first, count;
  std::vector<int32_t> values;
  int64_t taps = 0;
  int precision = 0;
};

Weights compute_weights(int64_t in_size, int64_t out_size, Filter filter) {
  const double interp = filter == Filter::kBilinear ? 2.0 : 4.0;
  double (*fn)(double) = filter == Filter::kBilinear ? triangle : cubic;
  const double scale = double(in_size) / double(out_size);
  const double support = scale >= 1.0 ? interp * 0.5 * scale : interp * 0.5;
  const double invscale = scale >= 1.0 ? 1.0 / scale : 1.0;

  Weights w;
  w.taps = int64_t(std::ceil(support)) * 2 + 1;
  w.first.resize(out_size);
  w.count.resize(out_size);
  std::vector<double> weights(out_size * w.taps, 0.0);
  double max_weight = 0.0;
  for (int64_t i = 0; i < out_size; ++i) {
    const double center = scale * (double(i) + 0.5);
    const int64_t first = std::max(int64_t(center - support + 0.5), int64_t{0});
    const int64_t count =
        std::clamp(std::min(int64_t(center + support + 0.5), in_size) - first, int64_t{0}, w.taps);
    double* k = &weights[i * w.taps];
    double total = 0.0;
    for (int64_t j = 0; j < count; ++j) {
      k[j] = fn((double(j + first) - center + 0.5) * invscale);
      total += k[j];
    }
    if (total != 0.0) {
      for (int64_t j = 0; j < count; ++j) {
        k[j] /= total;
        max_weight = std::max(max_weight, k[j]);
      }
    }
    w.first[i] = first;
    w.count[i] = count;
  }
  // The most bits (up to 22) that keep the largest weight within int16.
  int precision = 0;
  for (; precision < 22; ++precision) {
    if (int(0.5 + max_weight * double(1 << (precision + 1))) >= (1 << 15)) break;
  }
  w.precision = precision;
  w.values.resize(weights.size());
  for (size_t j = 0; j < weights.size(); ++j) {
    const double v = weights[j] * double(1 << precision);
    w.values[j] = int16_t(v < 0 ? int(-0.5 + v) : int(0.5 + v));
  }
  return w;
}

uint8_t round_clamp(int64_t sum, int precision) {
  return uint8_t(std::clamp<int64_t>(sum >> precision, 0, 255));
}

// Resamples along x: each of the `rows` rows of `in_width` pixels becomes `out_width` pixels.
std::vector<uint8_t> horizontal(const std::vector<uint8_t>& in, int64_t rows, int64_t in_width,
                                int64_t out_width, Filter filter) {
  const Weights w = compute_weights(in_width, out_width, filter);
  std::vector<uint8_t> out(rows * out_width * 3);
  const int64_t bias = int64_t{1} << (w.precision - 1);
  for (int64_t y = 0; y < rows; ++y) {
    const uint8_t* src = &in[y * in_width * 3];
    uint8_t* dst = &out[y * out_width * 3];
    for (int64_t x = 0; x < out_width; ++x) {
      const int32_t* k = &w.values[x * w.taps];
      const uint8_t* s = src + w.first[x] * 3;
      int64_t r = bias, g = bias, b = bias;
      for (int64_t j = 0; j < w.count[x]; ++j) {
        r += int64_t{s[j * 3]} * k[j];
        g += int64_t{s[j * 3 + 1]} * k[j];
        b += int64_t{s[j * 3 + 2]} * k[j];
      }
      dst[x * 3] = round_clamp(r, w.precision);
      dst[x * 3 + 1] = round_clamp(g, w.precision);
      dst[x * 3 + 2] = round_clamp(b, w.precision);
    }
  }
  return out;
}

// Resamples along y: `in_height` rows of `width` pixels become `out_height` rows.
std::vector<uint8_t> vertical(const std::vector<uint8_t>& in, int64_t width, int64_t in_height,
                              int64_t out_height, Filter filter) {
  const Weights w = compute_weights(in_height, out_height, filter);
  const int64_t row = width * 3;
  std::vector<uint8_t> out(out_height * row);
  std::vector<int64_t> sum(row);
  const int64_t bias = int64_t{1} << (w.precision - 1);
  for (int64_t y = 0; y < out_height; ++y) {
    std::fill(sum.begin(), sum.end(), bias);
    const int32_t* k = &w.values[y * w.taps];
    for (int64_t j = 0; j < w.count[y]; ++j) {
      const uint8_t* s = &in[(w.first[y] + j) * row];
      for (int64_t i = 0; i < row; ++i) sum[i] += int64_t{s[i]} * k[j];
    }
    uint8_t* dst = &out[y * row];
    for (int64_t i = 0; i < row; ++i) dst[i] = round_clamp(sum[i], w.precision);
  }
  return out;
}

}  // namespace

Image resize(const Image& src, int64_t width, int64_t height, Filter filter) {
  if (src.width < 1 || src.height < 1 ||
      src.rgb.size() != size_t(src.width) * size_t(src.height) * 3) {
    throw Error("cannot resize an empty or malformed image");
  }
  if (width < 1 || height < 1) {
    throw Error("cannot resize an image to " + std::to_string(width) + "x" +
                std::to_string(height) + " pixels");
  }
  Image out{src.width, src.height, src.rgb};
  if (width != out.width) {
    out.rgb = horizontal(out.rgb, out.height, out.width, width, filter);
    out.width = width;
  }
  if (height != out.height) {
    out.rgb = vertical(out.rgb, out.width, out.height, height, filter);
    out.height = height;
  }
  return out;
}

}  // namespace corral::image
