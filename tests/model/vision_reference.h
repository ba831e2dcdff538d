// Test scaffolding for the image processors: the fixture's image decoded, and the numbers
// reference.json holds (nested lists flattened in row-major order).
#pragma once

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "image/image.h"
#include "testdata.h"

namespace corral::model::testing {

inline nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  return nlohmann::json::parse(in);
}

inline image::Image read_image(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                   std::istreambuf_iterator<char>());
  return image::decode(bytes);
}

template <typename T>
void flatten(const nlohmann::json& j, std::vector<T>& out) {
  if (j.is_array()) {
    for (const auto& e : j) flatten(e, out);
  } else {
    out.push_back(j.get<T>());
  }
}

template <typename T>
std::vector<T> flat(const nlohmann::json& j) {
  std::vector<T> out;
  flatten(j, out);
  return out;
}

// The largest absolute difference, and how many values differ by more than `tolerance`.
struct Diff {
  double max = 0;
  size_t over = 0;
};

inline Diff compare(const std::vector<float>& got, const std::vector<float>& want,
                    double tolerance) {
  Diff d;
  EXPECT_EQ(got.size(), want.size());
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    const double e = std::abs(double(got[i]) - double(want[i]));
    d.max = std::max(d.max, e);
    d.over += e > tolerance;
  }
  return d;
}

inline std::string scientific(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3e", v);
  return text;
}

}  // namespace corral::model::testing
