#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "backend/cpu/kernels/kernels.h"
#include "backend/cpu/kernels/rows.h"
#include "backend/cpu/kernels/vec.h"

namespace corral::backend::cpu {
namespace {

using ml::op::RopeMode;

// cos/sin of up to this many pairs are cached on the stack per token; longer heads are done in
// pieces.
constexpr int64_t kMaxPairs = 256;

// The angles follow ggml's rope exactly (ggml-cpu ops.cpp rope_yarn, rope_yarn_corr_dims and
// the M-RoPE cache): theta_k = p * base^(-2k/n_dims) built by repeated multiplication, divided
// by the frequency factor, then YaRN blends the interpolated angle (p * freq_scale) with the
// extrapolated one on a ramp between the correction dims, and scales the magnitude.
struct RopeAngles {
  float theta_scale;
  float freq_scale;
  float ext_factor;
  float mscale;
  float corr_lo, corr_hi;
  const float* freq_factors;
  int64_t n_ff;
  bool multi, vision;
  std::array<int32_t, 4> sections;

  RopeAngles(const ml::op::Rope& p, const float* ff, int64_t n_ff_)
      : theta_scale(std::pow(p.freq_base, -2.0f / p.n_dims)),
        freq_scale(p.freq_scale),
        ext_factor(p.ext_factor),
        mscale(p.attn_factor),
        freq_factors(ff),
        n_ff(n_ff_),
        multi(p.mode == RopeMode::kMRope || p.mode == RopeMode::kVision),
        vision(p.mode == RopeMode::kVision),
        sections(p.sections) {
    // The pair index where the wavelength equals n_ctx_orig / beta rotations.
    auto corr_dim = [&](float n_rot) {
      return p.n_dims * std::log(p.n_ctx_orig / (n_rot * 2.0f * static_cast<float>(M_PI))) /
             (2.0f * std::log(p.freq_base));
    };
    corr_lo = std::max(0.0f, std::floor(corr_dim(p.beta_fast)));
    corr_hi = std::min(static_cast<float>(p.n_dims - 1), std::ceil(corr_dim(p.beta_slow)));
    if (ext_factor != 0.0f) mscale *= 1.0f + 0.1f * std::log(1.0f / freq_scale);
  }

  void yarn(float theta_extrap, int64_t k, float* c, float* s) const {
    const float theta_interp = freq_scale * theta_extrap;
    float theta = theta_interp;
    if (ext_factor != 0.0f) {
      const float y = (static_cast<float>(k) - corr_lo) / std::max(0.001f, corr_hi - corr_lo);
      const float ramp = (1.0f - std::min(1.0f, std::max(0.0f, y))) * ext_factor;
      theta = theta_interp * (1.0f - ramp) + theta_extrap * ramp;
    }
    *c = std::cos(theta) * mscale;
    *s = std::sin(theta) * mscale;
  }

  // cos/sin of pairs [k0, k0 + len) for positions pos[0..3] (only pos[0] unless multi).
  void fill(const int32_t* pos, int64_t k0, int64_t len, float* c, float* s) const {
    float t[4];
    for (int j = 0; j < 4; ++j) t[j] = static_cast<float>(pos[multi ? j : 0]);
    const int sect_dims = sections[0] + sections[1] + sections[2] + sections[3];
    const int sec_w = sections[0] + sections[1];
    const int sec_e = sec_w + sections[2];
    for (int64_t k = 0; k < k0 + len; ++k) {
      float theta = t[0];
      if (multi && sect_dims > 0) {
        const int sector = static_cast<int>(k % sect_dims);
        if (vision) {
          // Vision sections restart their frequencies at each section's first pair.
          if (sector == 0) t[0] = static_cast<float>(pos[0]);
          if (sector == sections[0]) t[1] = static_cast<float>(pos[1]);
          if (sector == sec_w) t[2] = static_cast<float>(pos[2]);
          if (sector == sec_e) t[3] = static_cast<float>(pos[3]);
        }
        theta = sector < sections[0] ? t[0] : sector < sec_w ? t[1] : sector < sec_e ? t[2] : t[3];
      }
      if (k >= k0) {
        const float ff = freq_factors && k < n_ff ? freq_factors[k] : 1.0f;
        yarn(theta / ff, k, &c[k - k0], &s[k - k0]);
      }
      for (float& v : t) v *= theta_scale;
    }
  }
};

}  // namespace

// Rows are (head i1, token i2, batch i3); a token's angles are computed once per thread and
// shared by all of its heads.
void rope(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n) {
  const ml::Node& a = g.node(n.src[0]);
  const ml::Node& positions = g.node(n.src[1]);
  const ml::Node* ffn = n.src[2] >= 0 ? &g.node(n.src[2]) : nullptr;
  const auto& p = n.params<ml::op::Rope>();
  const RopeAngles angles(p, ffn ? static_cast<const float*>(ffn->data) : nullptr,
                          ffn ? ffn->nelements() : 0);
  const auto* pos_all = static_cast<const int32_t*>(positions.data);
  const int64_t ne0 = n.ne[0];
  const int64_t n_tokens = n.ne[2];
  const bool halves = p.mode != RopeMode::kNormal;
  // Vision rotates the whole head: pairs (i, i + ne0/2).
  const int64_t n_pairs = angles.vision ? ne0 / 2 : p.n_dims / 2;
  const int64_t half = angles.vision ? ne0 / 2 : p.n_dims / 2;
  const int64_t rotated = angles.vision ? ne0 : p.n_dims;
  const vec::Ops& v = ctx.vops();

  float c[kMaxPairs], s[kMaxPairs];
  int64_t cached = -1;  // token whose angles are in c/s
  int64_t r0, r1;
  ctx.split(n.nrows(), r0, r1);
  for (int64_t r = r0; r < r1; ++r) {
    const RowIndex ix = row_index(n.ne, r);
    int32_t pos[4] = {pos_all[ix.i2], 0, 0, 0};
    if (angles.multi) {
      for (int j = 1; j < 4; ++j) pos[j] = pos_all[ix.i2 + j * n_tokens];
    }
    const char* xr = row_ptr(a, ix);
    auto* y = reinterpret_cast<float*>(row_ptr(n, ix));
    const float* x = reinterpret_cast<const float*>(xr);
    if (a.nb[0] != sizeof(float)) {
      gather_f32(xr, a.nb[0], y, ne0);  // rotate in place
      x = y;
    }
    for (int64_t k0 = 0; k0 < n_pairs; k0 += kMaxPairs) {
      const int64_t len = std::min(kMaxPairs, n_pairs - k0);
      if (n_pairs > kMaxPairs || cached != ix.i2) {
        angles.fill(pos, k0, len, c, s);
        cached = ix.i2;
      }
      if (halves) {
        v.rotate_halves(x + k0, y + k0, c, s, len, half);
      } else {
        v.rotate_pairs(x + 2 * k0, y + 2 * k0, c, s, len);
      }
    }
    if (x != y && rotated < ne0) {
      std::memcpy(y + rotated, x + rotated, (ne0 - rotated) * sizeof(float));
    }
  }
}

}  // namespace corral::backend::cpu
