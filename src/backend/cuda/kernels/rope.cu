// Rotary position embedding with the reference's f32 arithmetic (backend/reference/rope.cc):
// one thread per row (head of a token) walks the pairs in order, carrying the same theta
// recurrences (theta *= theta_scale), so the angles round as the reference's do.
#include "backend/cuda/kernels/common.cuh"

namespace corral::backend::cuda {
namespace {

constexpr int kNormal = 0, kVision = 24, kMRope = 8;

__device__ __forceinline__ float yarn_ramp(float low, float high, int pair) {
  const float y = (static_cast<float>(pair) - low) / fmaxf(0.001f, high - low);
  return 1.0f - fminf(1.0f, fmaxf(0.0f, y));
}

// cos and sin of a pair's angle with linear scaling and YaRN mixing (ggml's rope_yarn).
__device__ __forceinline__ void yarn(float theta_extrap, const RopeArgs& r, int pair, float& c,
                                     float& s) {
  const float theta_interp = r.freq_scale * theta_extrap;
  float theta = theta_interp;
  float mscale = r.attn_factor;
  if (r.ext_factor != 0.0f) {
    const float mix = yarn_ramp(r.corr[0], r.corr[1], pair) * r.ext_factor;
    theta = theta_interp * (1 - mix) + theta_extrap * mix;
    mscale *= 1.0f + 0.1f * logf(1.0f / r.freq_scale);
  }
  c = cosf(theta) * mscale;
  s = sinf(theta) * mscale;
}

__global__ void rope_kernel(TensorArg dst, TensorArg a, TensorArg pos, TensorArg ff, RopeArgs r) {
  const int64_t rows = dst.nrows();
  const int64_t row = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (row >= rows) return;
  int64_t i1, i2, i3;
  row_coords(row, dst.ne, i1, i2, i3);
  const int64_t ne0 = dst.ne[0];
  const int64_t n_tokens = dst.ne[2];
  // Pass-through first; the rotated elements are overwritten below.
  for (int64_t i0 = 0; i0 < ne0; ++i0) store(dst, i0, i1, i2, i3, load(a, i0, i1, i2, i3));

  const bool multi = r.mode == kMRope || r.mode == kVision;
  float p[4] = {static_cast<float>(load_index(pos, i2, 0, 0, 0)), 0.0f, 0.0f, 0.0f};
  if (multi) {
    for (int k = 1; k < 4; ++k) {
      p[k] = static_cast<float>(load_index(pos, i2 + k * n_tokens, 0, 0, 0));
    }
  }
  const int* s = r.sections;
  const int sect_dims = s[0] + s[1] + s[2] + s[3];
  const int sec_w = s[0] + s[1];
  const int sec_e = sec_w + s[2];
  const bool restart = r.mode == kVision;
  float theta_t = p[0], theta_h = p[1], theta_w = p[2], theta_e = p[3];
  const int n_pairs = r.cache_len / 2;
  const int64_t n_ff = r.has_ff ? ff.ne[0] : 0;
  for (int pair = 0; pair < n_pairs; ++pair) {
    const float f = pair < n_ff ? load(ff, pair, 0, 0, 0) : 1.0f;
    float theta = theta_t;
    if (multi) {
      const int sector = pair % sect_dims;
      if (restart) {
        if (sector == 0) {
          theta_t = p[0];
        } else if (sector == s[0]) {
          theta_h = p[1];
        } else if (sector == sec_w) {
          theta_w = p[2];
        } else if (sector == sec_e) {
          theta_e = p[3];
        }
      }
      theta = theta_t;
      if (sector >= s[0] && sector < sec_w) {
        theta = theta_h;
      } else if (sector >= sec_w && sector < sec_e) {
        theta = theta_w;
      } else if (sector >= sec_e) {
        theta = theta_e;
      }
    }
    float cos_t, sin_t;
    yarn(theta / f, r, pair, cos_t, sin_t);
    theta_t *= r.theta_scale;
    theta_h *= r.theta_scale;
    theta_w *= r.theta_scale;
    theta_e *= r.theta_scale;

    // Normal: (2p, 2p + 1); NeoX and M-RoPE: (p, p + n_dims / 2); vision: (p, p + n_dims).
    int64_t e0, e1;
    if (r.mode == kNormal) {
      e0 = 2 * pair;
      e1 = 2 * pair + 1;
    } else if (r.mode == kVision) {
      e0 = pair;
      e1 = pair + r.n_dims;
    } else {
      e0 = pair;
      e1 = pair + r.n_dims / 2;
    }
    const float x0 = load(a, e0, i1, i2, i3);
    const float x1 = load(a, e1, i1, i2, i3);
    store(dst, e0, i1, i2, i3, x0 * cos_t - x1 * sin_t);
    store(dst, e1, i1, i2, i3, x0 * sin_t + x1 * cos_t);
  }
}

}  // namespace

void rope(const Launch& l, const TensorArg& dst, const TensorArg& a, const TensorArg& pos,
          const TensorArg& ff, const RopeArgs& r) {
  const int64_t rows = dst.nrows();
  if (rows == 0) return;
  constexpr int kThreads = 64;
  rope_kernel<<<static_cast<unsigned>((rows + kThreads - 1) / kThreads), kThreads, 0, l.stream>>>(
      dst, a, pos, ff, r);
}

}  // namespace corral::backend::cuda
