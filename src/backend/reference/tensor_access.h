// Element access by strides, shared by the reference kernels: every source is read through
// these, so a permuted or transposed view is read exactly like a contiguous tensor, and every
// kernel writes its node's own (contiguous) layout the same way.
#pragma once

#include <cassert>
#include <cstdint>
#include <cstring>

#include "ml/fp16.h"
#include "ml/graph.h"
#include "ml/quant/quant.h"

namespace corral::backend::reference {

inline const ml::Node& src(const ml::Graph& g, const ml::Node& n, int i) {
  return g.node(n.src[i]);
}
inline bool has_src(const ml::Node& n, int i) { return n.src[i] >= 0; }

inline char* at(const ml::Node& t, int64_t i0, int64_t i1, int64_t i2, int64_t i3) {
  return static_cast<char*>(t.data) + static_cast<size_t>(i0) * t.nb[0] +
         static_cast<size_t>(i1) * t.nb[1] + static_cast<size_t>(i2) * t.nb[2] +
         static_cast<size_t>(i3) * t.nb[3];
}

// One element of a plain (non-block) dtype as f32.
inline float load(const ml::Node& t, int64_t i0, int64_t i1, int64_t i2, int64_t i3) {
  const char* p = at(t, i0, i1, i2, i3);
  switch (t.dtype) {
    case ml::DType::F32: {
      float v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case ml::DType::F16: {
      uint16_t h;
      std::memcpy(&h, p, 2);
      return ml::fp16_to_fp32(h);
    }
    case ml::DType::BF16: {
      uint16_t h;
      std::memcpy(&h, p, 2);
      return ml::bf16_to_fp32(h);
    }
    case ml::DType::I32: {
      int32_t v;
      std::memcpy(&v, p, 4);
      return static_cast<float>(v);
    }
    default:
      assert(false && "load: not a plain float dtype");
      return 0.0f;
  }
}

// Writes v to one element of a plain dtype (rounding to nearest even for f16/bf16).
inline void store(const ml::Node& t, int64_t i0, int64_t i1, int64_t i2, int64_t i3, float v) {
  char* p = at(t, i0, i1, i2, i3);
  switch (t.dtype) {
    case ml::DType::F32:
      std::memcpy(p, &v, 4);
      break;
    case ml::DType::F16: {
      const uint16_t h = ml::fp32_to_fp16(v);
      std::memcpy(p, &h, 2);
      break;
    }
    case ml::DType::BF16: {
      const uint16_t h = ml::fp32_to_bf16(v);
      std::memcpy(p, &h, 2);
      break;
    }
    default:
      assert(false && "store: not a plain float dtype");
  }
}

// An integer index (I32 or I64) at a position of an index tensor.
inline int64_t load_index(const ml::Node& t, int64_t i0, int64_t i1, int64_t i2, int64_t i3) {
  const char* p = at(t, i0, i1, i2, i3);
  if (t.dtype == ml::DType::I64) {
    int64_t v;
    std::memcpy(&v, p, 8);
    return v;
  }
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Row (i1, i2, i3) of any dtype as ne[0] f32 values. Block formats keep their blocks in order
// along a row (no view can move the block axis), so a quantized row is dequantized in one go.
inline void load_row(const ml::Node& t, int64_t i1, int64_t i2, int64_t i3, float* out) {
  if (ml::is_quantized(t.dtype)) {
    ml::quant::dequantize_row(t.dtype, at(t, 0, i1, i2, i3), out, t.ne[0]);
    return;
  }
  for (int64_t i0 = 0; i0 < t.ne[0]; ++i0) out[i0] = load(t, i0, i1, i2, i3);
}

// Writes ne[0] f32 values as row (i1, i2, i3) of t, quantizing for block formats.
inline void store_row(const ml::Node& t, int64_t i1, int64_t i2, int64_t i3, const float* in) {
  if (ml::is_quantized(t.dtype)) {
    ml::quant::quantize_row(t.dtype, in, at(t, 0, i1, i2, i3), t.ne[0]);
    return;
  }
  for (int64_t i0 = 0; i0 < t.ne[0]; ++i0) store(t, i0, i1, i2, i3, in[i0]);
}

// Calls f(i0, i1, i2, i3) for every element of shape ne, ne[0] fastest.
template <class F>
void for_each_index(const ml::Shape& ne, F f) {
  for (int64_t i3 = 0; i3 < ne[3]; ++i3) {
    for (int64_t i2 = 0; i2 < ne[2]; ++i2) {
      for (int64_t i1 = 0; i1 < ne[1]; ++i1) {
        for (int64_t i0 = 0; i0 < ne[0]; ++i0) f(i0, i1, i2, i3);
      }
    }
  }
}

// Calls f(i1, i2, i3) for every row of shape ne.
template <class F>
void for_each_row(const ml::Shape& ne, F f) {
  for (int64_t i3 = 0; i3 < ne[3]; ++i3) {
    for (int64_t i2 = 0; i2 < ne[2]; ++i2) {
      for (int64_t i1 = 0; i1 < ne[1]; ++i1) f(i1, i2, i3);
    }
  }
}

// dst = f(src0) element-wise, f32.
template <class F>
void unary_op(const ml::Graph& g, const ml::Node& n, F f) {
  const ml::Node& a = src(g, n, 0);
  for_each_index(n.ne, [&](int64_t i0, int64_t i1, int64_t i2, int64_t i3) {
    store(n, i0, i1, i2, i3, f(load(a, i0, i1, i2, i3)));
  });
}

// dst = f(src0, src1) element-wise, src1 repeated along each dim to src0's shape.
template <class F>
void binary_op(const ml::Graph& g, const ml::Node& n, F f) {
  const ml::Node& a = src(g, n, 0);
  const ml::Node& b = src(g, n, 1);
  for_each_index(n.ne, [&](int64_t i0, int64_t i1, int64_t i2, int64_t i3) {
    const float x = load(a, i0, i1, i2, i3);
    const float y = load(b, i0 % b.ne[0], i1 % b.ne[1], i2 % b.ne[2], i3 % b.ne[3]);
    store(n, i0, i1, i2, i3, f(x, y));
  });
}

}  // namespace corral::backend::reference
