// Attention over a KV cache without materializing the scores: one block per (query token,
// head, sequence); each warp walks a share of the keys with an online softmax (running max m,
// running sum l, running weighted sum of values acc, rescaled by exp(m_old - m_new) when the
// max grows), and the warps' partial results are merged at the end. Lane L holds elements
// L, L + 32, ... of the query and of acc, so head sizes up to kMaxHeadDim fit in registers.
//   s_j = scale * q . k_j + mask[j, t]   (keys that causal forbids, and -inf scores, are skipped)
//   out = sum_j softmax(s)_j v_j         (zeros for a query that sees no key, as the reference)
#include "backend/cuda/kernels/common.cuh"

namespace corral::backend::cuda {
namespace {

constexpr int kWarps = 8;
constexpr int kPerLane = static_cast<int>(kMaxHeadDim / 32);

__global__ void flash_attn_kernel(TensorArg dst, TensorArg q, TensorArg k, TensorArg v,
                                  TensorArg mask, float scale, bool causal) {
  const int64_t t = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int64_t head_dim = q.ne[0], head_dim_v = v.ne[0];
  const int64_t n_tokens = q.ne[1], n_kv = k.ne[1];
  const int64_t hk = h / (q.ne[2] / k.ne[2]);

  float qv[kPerLane], acc[kPerLane];
#pragma unroll
  for (int r = 0; r < kPerLane; ++r) {
    const int64_t d = lane + 32 * r;
    qv[r] = d < head_dim ? load(q, d, t, h, b) : 0.0f;
    acc[r] = 0.0f;
  }
  float m = -INFINITY, l = 0.0f;
  const int64_t last = causal ? n_kv - n_tokens + t : n_kv - 1;  // the last key t may see
  for (int64_t j = warp; j < n_kv && j <= last; j += kWarps) {
    float dot = 0.0f;
#pragma unroll
    for (int r = 0; r < kPerLane; ++r) {
      const int64_t d = lane + 32 * r;
      if (d < head_dim) dot += qv[r] * load(k, d, j, hk, b);
    }
    float s = warp_sum(dot) * scale;
    if (mask.data) s += load(mask, j, t, h % mask.ne[2], b % mask.ne[3]);
    if (s == -INFINITY) continue;  // the same on every lane: the sum was reduced by xor
    const float m_new = fmaxf(m, s);
    const float correction = expf(m - m_new);  // 0 while m is -inf
    const float p = expf(s - m_new);
    l = l * correction + p;
#pragma unroll
    for (int r = 0; r < kPerLane; ++r) {
      const int64_t d = lane + 32 * r;
      if (d < head_dim_v) acc[r] = acc[r] * correction + p * load(v, d, j, hk, b);
    }
    m = m_new;
  }

  __shared__ float s_m[kWarps], s_l[kWarps];
  __shared__ float s_acc[kWarps][kMaxHeadDim];
  if (lane == 0) {
    s_m[warp] = m;
    s_l[warp] = l;
  }
#pragma unroll
  for (int r = 0; r < kPerLane; ++r) s_acc[warp][lane + 32 * r] = acc[r];
  __syncthreads();

  float m_all = -INFINITY;
  for (int w = 0; w < kWarps; ++w) m_all = fmaxf(m_all, s_m[w]);
  float l_all = 0.0f;
  for (int w = 0; w < kWarps; ++w) {
    if (s_m[w] != -INFINITY) l_all += s_l[w] * expf(s_m[w] - m_all);
  }
  for (int64_t d = threadIdx.x; d < head_dim_v; d += blockDim.x) {
    float out = 0.0f;
    if (m_all != -INFINITY && l_all > 0.0f) {
      for (int w = 0; w < kWarps; ++w) {
        if (s_m[w] != -INFINITY) out += s_acc[w][d] * expf(s_m[w] - m_all);
      }
      out /= l_all;
    }
    store(dst, d, h, t, b, out);
  }
}

}  // namespace

void flash_attn(const Launch& l, const TensorArg& dst, const TensorArg& q, const TensorArg& k,
                const TensorArg& v, const TensorArg& mask, float scale, bool causal) {
  if (dst.nelements() == 0) return;
  const dim3 grid(static_cast<unsigned>(q.ne[1]), static_cast<unsigned>(q.ne[2]),
                  static_cast<unsigned>(q.ne[3]));
  flash_attn_kernel<<<grid, 32 * kWarps, 0, l.stream>>>(dst, q, k, v, mask, scale, causal);
}

}  // namespace corral::backend::cuda
