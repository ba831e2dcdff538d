// Rotary position embedding with ggml's arithmetic (ggml-cpu ops.cpp, rope_yarn and
// ggml_mrope_cache_init), in f32 as ggml computes it so the two agree to rounding:
//   theta_i = p * base^(-2i / n_dims) / freq_factor_i      (i = pair index)
//   linear scaling: theta *= freq_scale
//   YaRN: pairs below corr_dims[0] keep the extrapolated theta, pairs above corr_dims[1] the
//         interpolated one, a linear ramp between; the magnitude grows by 1 + 0.1 ln(1/freq_scale)
// Normal mode rotates (x[2i], x[2i+1]); NeoX and M-RoPE rotate (x[i], x[i + n_dims/2]); vision
// rotates (x[i], x[i + n_dims]) over the whole head (head_dim = 2 n_dims).
#include <algorithm>
#include <cassert>
#include <cmath>
#include <numbers>
#include <vector>

#include "backend/reference/reference.h"
#include "backend/reference/tensor_access.h"

namespace corral::backend::reference {
namespace {

using ml::op::RopeMode;

// The pair index at which the rotation of `n_rot` full turns over n_ctx_orig positions happens.
float yarn_corr_dim(int n_dims, int n_ctx_orig, float n_rot, float base) {
  return n_dims * std::log(n_ctx_orig / (n_rot * 2 * std::numbers::pi_v<float>)) /
         (2 * std::log(base));
}

void yarn_corr_dims(const ml::op::Rope& p, float dims[2]) {
  const float start = std::floor(yarn_corr_dim(p.n_dims, p.n_ctx_orig, p.beta_fast, p.freq_base));
  const float end = std::ceil(yarn_corr_dim(p.n_dims, p.n_ctx_orig, p.beta_slow, p.freq_base));
  dims[0] = std::max(0.0f, start);
  dims[1] = std::min(static_cast<float>(p.n_dims - 1), end);
}

// 1 below `low`, 0 above `high`, linear between; i0 is the element index (pair = i0 / 2).
float yarn_ramp(float low, float high, int64_t i0) {
  const float y = (static_cast<float>(i0 / 2) - low) / std::max(0.001f, high - low);
  return 1.0f - std::min(1.0f, std::max(0.0f, y));
}

void yarn(float theta_extrap, const ml::op::Rope& p, const float corr[2], int64_t i0,
          float* cos_out, float* sin_out) {
  const float theta_interp = p.freq_scale * theta_extrap;
  float theta = theta_interp;
  float mscale = p.attn_factor;
  if (p.ext_factor != 0.0f) {
    const float mix = yarn_ramp(corr[0], corr[1], i0) * p.ext_factor;
    theta = theta_interp * (1 - mix) + theta_extrap * mix;
    mscale *= 1.0f + 0.1f * std::log(1.0f / p.freq_scale);
  }
  *cos_out = std::cos(theta) * mscale;
  *sin_out = std::sin(theta) * mscale;
}

// cos/sin for every pair of the head, interleaved: cache[i0] = cos, cache[i0 + 1] = sin.
void single_cache(float pos, const ml::op::Rope& p, const float* ff, const float corr[2],
                  float theta_scale, int64_t ne0, float* cache) {
  float theta = pos;
  for (int64_t i0 = 0; i0 < ne0; i0 += 2) {
    const float f = ff ? ff[i0 / 2] : 1.0f;
    yarn(theta / f, p, corr, i0, &cache[i0], &cache[i0 + 1]);
    theta *= theta_scale;
  }
}

// M-RoPE: the pairs are split into sections (t, h, w, e), each rotated by its own position.
// Text M-RoPE continues the frequency ladder across sections; vision restarts it per section.
void multi_cache(const float pos[4], const ml::op::Rope& p, const float* ff, const float corr[2],
                 float theta_scale, int64_t ne0, float* cache) {
  const auto& s = p.sections;
  const int sect_dims = s[0] + s[1] + s[2] + s[3];
  const int sec_w = s[0] + s[1];
  const int sec_e = sec_w + s[2];
  const bool restart = p.mode == RopeMode::kVision;
  assert(sect_dims > 0);
  float theta_t = pos[0], theta_h = pos[1], theta_w = pos[2], theta_e = pos[3];
  for (int64_t i0 = 0; i0 < ne0; i0 += 2) {
    const float f = ff ? ff[i0 / 2] : 1.0f;
    const int sector = static_cast<int>((i0 / 2) % sect_dims);
    if (restart) {
      if (sector == 0) {
        theta_t = pos[0];
      } else if (sector == s[0]) {
        theta_h = pos[1];
      } else if (sector == sec_w) {
        theta_w = pos[2];
      } else if (sector == sec_e) {
        theta_e = pos[3];
      }
    }
    float theta = theta_t;
    if (sector >= s[0] && sector < sec_w) {
      theta = theta_h;
    } else if (sector >= sec_w && sector < sec_e) {
      theta = theta_w;
    } else if (sector >= sec_e) {
      theta = theta_e;
    }
    yarn(theta / f, p, corr, i0, &cache[i0], &cache[i0 + 1]);
    theta_t *= theta_scale;
    theta_h *= theta_scale;
    theta_w *= theta_scale;
    theta_e *= theta_scale;
  }
}

int32_t position(const ml::Node& pos, int64_t i) {
  return static_cast<int32_t>(load_index(pos, i, 0, 0, 0));
}

}  // namespace

void rope(const ml::Graph& g, const ml::Node& n) {
  const auto& p = n.params<ml::op::Rope>();
  const ml::Node& a = src(g, n, 0);
  const ml::Node& pos = src(g, n, 1);
  const int64_t ne0 = n.ne[0];
  assert(p.mode != RopeMode::kVision || ne0 == 2 * p.n_dims);
  const bool multi = p.mode == RopeMode::kMRope || p.mode == RopeMode::kVision;
  // Vision rotates the whole head, so its angles run over ne0 / 2 pairs; the other modes use
  // the first n_dims / 2 only.
  const int64_t cache_len = p.mode == RopeMode::kVision ? ne0 : p.n_dims;
  // One frequency factor per pair; pairs past those given (vision's second half) get 1.
  std::vector<float> factors;
  if (has_src(n, 2)) {
    const ml::Node& ff = src(g, n, 2);
    factors.assign(static_cast<size_t>(cache_len / 2), 1.0f);
    for (int64_t i = 0; i < std::min<int64_t>(ff.ne[0], cache_len / 2); ++i) {
      factors[i] = load(ff, i, 0, 0, 0);
    }
  }
  const float* ff = factors.empty() ? nullptr : factors.data();

  const float theta_scale = std::pow(p.freq_base, -2.0f / static_cast<float>(p.n_dims));
  float corr[2];
  yarn_corr_dims(p, corr);

  std::vector<float> cache(static_cast<size_t>(ne0 + 2));
  const int64_t n_tokens = n.ne[2];
  for (int64_t i3 = 0; i3 < n.ne[3]; ++i3) {
    for (int64_t i2 = 0; i2 < n_tokens; ++i2) {
      if (multi) {
        const float ps[4] = {static_cast<float>(position(pos, i2)),
                             static_cast<float>(position(pos, i2 + n_tokens)),
                             static_cast<float>(position(pos, i2 + 2 * n_tokens)),
                             static_cast<float>(position(pos, i2 + 3 * n_tokens))};
        multi_cache(ps, p, ff, corr, theta_scale, cache_len, cache.data());
      } else {
        single_cache(static_cast<float>(position(pos, i2)), p, ff, corr, theta_scale, cache_len,
                     cache.data());
      }
      for (int64_t i1 = 0; i1 < n.ne[1]; ++i1) {
        // Pass-through first; the rotated elements are overwritten below.
        for (int64_t i0 = 0; i0 < ne0; ++i0) store(n, i0, i1, i2, i3, load(a, i0, i1, i2, i3));
        auto rotate = [&](int64_t e0, int64_t e1, int64_t c) {
          const float x0 = load(a, e0, i1, i2, i3);
          const float x1 = load(a, e1, i1, i2, i3);
          const float cos_t = cache[c];
          const float sin_t = cache[c + 1];
          store(n, e0, i1, i2, i3, x0 * cos_t - x1 * sin_t);
          store(n, e1, i1, i2, i3, x0 * sin_t + x1 * cos_t);
        };
        if (p.mode == RopeMode::kNormal) {
          for (int64_t i0 = 0; i0 < p.n_dims; i0 += 2) rotate(i0, i0 + 1, i0);
        } else if (p.mode == RopeMode::kVision) {
          for (int64_t ic = 0; ic < p.n_dims; ++ic) rotate(ic, ic + p.n_dims, 2 * ic);
        } else {
          const int64_t half = p.n_dims / 2;
          for (int64_t ic = 0; ic < half; ++ic) rotate(ic, ic + half, 2 * ic);
        }
      }
    }
  }
}

}  // namespace corral::backend::reference
