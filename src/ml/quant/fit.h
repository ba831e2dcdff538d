// Scale-fitting searches shared by the K formats. Each follows the ggml-quants.c helper of the
// same name step for step, in the same float operation order, so that quantizing gives the bytes
// llama.cpp's quantize_row_*_ref gives (ggml is compiled without fast-math and so is corral).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace corral::ml::quant::fit {

// Rounds to the nearest integer, ties to even, for |v| < 2^22: adding 1.5 * 2^23 leaves
// round(v) in the low mantissa bits. ggml rounds with this trick (not roundf) in the K formats,
// so the tie rule matters for bit-compatibility.
inline int nearest_int(float v) {
  const float biased = v + 12582912.f;
  int32_t bits;
  std::memcpy(&bits, &biased, sizeof bits);
  return (bits & 0x007fffff) - 0x00400000;
}

// The element of largest magnitude, with its sign (the first one on ties; 0 for all zeros).
// The symmetric formats map it to the level with no positive twin (-8 for 4 bits).
inline float signed_absmax(const float* x, int n) {
  float amax = 0;
  float max = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  return max;
}

// Symmetric fit of n values to signed levels -nmax..nmax-1 minimising sum(x^2 * (x - s*l)^2):
// the max-abs scale and 18 nudged ones (nmax + 0.1*is, is = -9..9). L gets l + nmax.
// ggml: make_qx_quants with rmse_type 1 and no importance weights. Returns the scale.
float make_qx_quants(int n, int nmax, const float* x, int8_t* L);

// Symmetric 3-bit fit: max-abs start, then up to 5 passes moving single levels while the
// x^2-weighted error falls. L gets l + nmax. ggml: make_q3_quants with do_rmse.
float make_q3_quants(int n, int nmax, const float* x, int8_t* L);

// Asymmetric fit x ~ scale * l - min_out, l in 0..nmax, under the given weights: the min/max
// start, then nstep+1 least-squares refits from the grids iscale = (rmin + rdelta*is + nmax) /
// (max - min). Errors are squared or, with use_mad, absolute. ggml: make_qkx2_quants.
// Returns the scale; *min_out is the (non-negative) offset subtracted at dequantization.
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                       float* min_out, uint8_t* L_aux, float rmin, float rdelta, int nstep,
                       bool use_mad);

// The common part of Q4_K and Q5_K for one super-block of 256: 8 groups of 32, each fitted
// with make_qkx2_quants under weights sqrt(mean x^2) + |x| (levels 0..nmax), then the group
// scales and mins quantized to 6 bits against the largest of each (packed as get_scale_min_k4
// reads them) and the levels refitted to the rounded scales. Writes the 12 packed bytes, the
// halves d and dmin, and the 256 levels L.
void quantize_k_groups_of_32(const float* x, int nmax, float rmin, float rdelta, int nstep,
                             uint8_t* packed_scales, uint16_t* d, uint16_t* dmin, uint8_t* L);

}  // namespace corral::ml::quant::fit
