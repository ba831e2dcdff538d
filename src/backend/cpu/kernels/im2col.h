// One column of im2col (the receptive field of one output pixel), shared by im2col and conv2d.
#pragma once

#include <cstdint>
#include <cstring>

#include "ml/graph.h"

namespace corral::backend::cpu {

struct ConvGeometry {
  int64_t kw, kh, cin;
  int32_t s0, s1, p0, p1, d0, d1;
};

// store(i, v) for i = (c * kh + y) * kw + x and v = image[b][c][oy*s1 + y*d1 - p1]
// [ox*s0 + x*d0 - p0], 0 outside the image: the element order of a [KW, KH, Cin] kernel row, so
// a convolution is a dot product of the column with a kernel row.
template <class Store>
inline void im2col_column(const ml::Node& image, const ConvGeometry& c, int64_t ox, int64_t oy,
                          int64_t b, Store store) {
  const int64_t w = image.ne[0], h = image.ne[1];
  const char* base = static_cast<const char*>(image.data) + b * image.nb[3];
  for (int64_t ci = 0; ci < c.cin; ++ci) {
    for (int64_t ky = 0; ky < c.kh; ++ky) {
      const int64_t iy = oy * c.s1 + ky * c.d1 - c.p1;
      const int64_t out = (ci * c.kh + ky) * c.kw;
      // Rows in the padding are never addressed (a pointer before the image is undefined).
      const bool row_inside = iy >= 0 && iy < h;
      const char* row = row_inside ? base + ci * image.nb[2] + iy * image.nb[1] : nullptr;
      for (int64_t kx = 0; kx < c.kw; ++kx) {
        const int64_t ix = ox * c.s0 + kx * c.d0 - c.p0;
        float v = 0.0f;
        if (row_inside && ix >= 0 && ix < w) std::memcpy(&v, row + ix * image.nb[0], 4);
        store(out + kx, v);
      }
    }
  }
}

}  // namespace corral::backend::cpu
