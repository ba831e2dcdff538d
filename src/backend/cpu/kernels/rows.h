// Shared pieces of the CPU kernels: addressing rows of strided tensors and walking the rows a
// thread owns.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "ml/graph.h"

namespace corral::backend::cpu {

// Rows are chunked through this many floats of stack when a kernel needs a contiguous copy
// (a strided source, a dtype conversion): no kernel allocates.
inline constexpr int64_t kChunk = 256;

struct RowIndex {
  int64_t i1, i2, i3;
};

// Row r (counting over ne[1], ne[2], ne[3], ne[1] fastest) of a shape.
inline RowIndex row_index(const ml::Shape& ne, int64_t r) {
  RowIndex ix;
  ix.i1 = r % ne[1];
  r /= ne[1];
  ix.i2 = r % ne[2];
  ix.i3 = r / ne[2];
  return ix;
}

inline char* row_ptr(const ml::Node& n, int64_t i1, int64_t i2, int64_t i3) {
  return static_cast<char*>(n.data) + i1 * n.nb[1] + i2 * n.nb[2] + i3 * n.nb[3];
}
inline char* row_ptr(const ml::Node& n, const RowIndex& ix) {
  return row_ptr(n, ix.i1, ix.i2, ix.i3);
}

// n floats at p, `stride` bytes apart, into dst.
inline void gather_f32(const char* p, size_t stride, float* dst, int64_t n) {
  if (stride == sizeof(float)) {
    std::memcpy(dst, p, n * sizeof(float));
    return;
  }
  for (int64_t i = 0; i < n; ++i) std::memcpy(dst + i, p + i * stride, sizeof(float));
}

}  // namespace corral::backend::cpu
