// The op vocabulary: one struct per op holding its parameters. Inputs are the node's src[]
// entries, documented per op as src0, src1, ... Shapes are in ggml order (ne[0] fastest).
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <variant>

#include "ml/dtype.h"

namespace corral::ml::op {

// Data supplied from outside the graph (weights, inputs, caches); never planned, never computed.
struct Leaf {};
// Reshape/view/permute/transpose: a node whose data lies inside src0's, at view_offset with its
// own ne/nb. Nothing runs.
struct View {};
// Contiguous copy of src0 (any strides) in src0's dtype.
struct Cont {};
// Copy src0 into a new contiguous tensor of the node's dtype: f32/f16/bf16 to each other, and
// f32 to q8_0/q4_0 (rows must be whole blocks).
struct Cpy {};
// src0 table [n_embd, n_rows, b2, b3] of any dtype, src1 I32 row ids [n, b2, b3]
// -> f32 [n_embd, n, b2, b3].
struct GetRows {};
// src0 weights [k, m, b2, b3] of any dtype, src1 f32 [k, n, B2, B3] with B2 % b2 == 0 and
// B3 % b3 == 0 (src0 broadcast over heads, as grouped-query attention needs) -> f32 [m, n, B2, B3].
struct MulMat {};
// Element-wise src0 (op) src1 with src1 repeated to src0's shape (each ne of src0 a multiple of
// src1's); f32.
struct Add {};
struct Sub {};
struct Mul {};
struct Div {};
// src0 * scale + bias.
struct Scale {
  float scale = 1.0f;
  float bias = 0.0f;
};
// x / sqrt(mean(x^2) + eps) over ne[0].
struct RmsNorm {
  float eps = 1e-6f;
};
// (x - mean) / sqrt(var + eps) over ne[0], then * src1 and + src2 when present (each optional,
// [ne0]).
struct LayerNorm {
  float eps = 1e-5f;
};
// softmax(src0 * scale + src1) over ne[0]; src1 (optional) an additive f32 or f16 mask
// [ne0, ne1'] with ne1' >= ne1, broadcast over ne[2], ne[3].
struct SoftMax {
  float scale = 1.0f;
};
enum class RopeMode : int32_t {
  kNormal = 0,  // rotate adjacent pairs (x[2i], x[2i+1]); GGUF llama
  kNeox = 2,    // rotate halves (x[i], x[i + n_dims/2]); qwen2, gemma, ...
  kMRope = 8,   // NeoX rotation with multi-section positions (qwen2-vl); src1 holds 4 * n positions
  kVision = 24,  // M-RoPE for vision towers: two sections over the whole head
};
// src0 [head_dim, n_head, n_tokens, 1] rotated by positions src1 (I32 [n_tokens], or
// [4 * n_tokens] for M-RoPE); src2 (optional) f32 frequency factors [n_dims / 2].
// YaRN: ext_factor > 0 mixes in extrapolation between beta_fast and beta_slow (ggml's rope_yarn).
struct Rope {
  RopeMode mode = RopeMode::kNormal;
  int32_t n_dims = 0;  // rotated dimensions (<= head_dim); the rest pass through
  int32_t n_ctx_orig = 0;
  float freq_base = 10000.0f;
  float freq_scale = 1.0f;  // 1 / linear scaling factor
  float ext_factor = 0.0f;
  float attn_factor = 1.0f;
  float beta_fast = 32.0f;
  float beta_slow = 1.0f;
  std::array<int32_t, 4> sections{};  // M-RoPE sections (t, h, w, e)
};
struct Silu {};
enum class GeluForm { kTanh, kErf };
struct Gelu {
  GeluForm form = GeluForm::kTanh;
};
struct GeluQuick {};
// silu(src0) * src1, same shapes.
struct SwiGlu {};
// src0 and src1 joined along dim; all other dims equal.
struct Concat {
  int32_t dim = 0;
};
// Scatter: rows of src1 (f32 [ne0, n, b2, b3]) written into src0 (a Leaf, e.g. a KV cache
// [ne0, n_rows, b2, b3] of f32/f16/bf16/q8_0/q4_0) at row indices src2 (I32 or I64 [n, b2, b3]).
// The node is a view of src0 (it writes in place).
struct SetRows {};
// Index of the largest value of each row: f32 [ne0, rows] -> I32 [rows].
struct ArgMax {};
// Sum over ne[0]: [ne0, a, b, c] -> [1, a, b, c].
struct SumRows {};
// Mean over ne[0]: [ne0, a, b, c] -> [1, a, b, c].
struct Mean {};
// Scaled-dot-product attention. src0 q f32 [head_dim, n_tokens, n_head, b3]; src1 k
// [head_dim, n_kv, n_head_kv, b3] and src2 v [head_dim_v, n_kv, n_head_kv, b3] in f32 or f16
// (n_head % n_head_kv == 0: grouped-query attention); src3 (optional) additive mask f32 or f16
// [n_kv, >= n_tokens]. causal: query i may see keys 0 .. n_kv - n_tokens + i (with or without
// a mask). -> f32 [head_dim_v, n_head, n_tokens, b3].
struct FlashAttn {
  float scale = 1.0f;
  bool causal = false;
};
// Unfold image patches: src0 kernel (only its shape is used) [KW, KH, Cin, Cout], src1 image
// [W, H, Cin, N] -> [KW * KH * Cin, OW, OH, N] in the node's dtype (f32 or f16).
struct Im2Col {
  int32_t s0 = 1, s1 = 1, p0 = 0, p1 = 0, d0 = 1, d1 = 1;
};
// 2-D convolution: src0 kernel [KW, KH, Cin, Cout] (f32/f16), src1 image f32 [W, H, Cin, N]
// -> f32 [OW, OH, Cout, N].
struct Conv2D {
  int32_t s0 = 1, s1 = 1, p0 = 0, p1 = 0, d0 = 1, d1 = 1;
};

}  // namespace corral::ml::op

namespace corral::ml {

using OpParams =
    std::variant<op::Leaf, op::View, op::Cont, op::Cpy, op::GetRows, op::MulMat, op::Add, op::Sub,
                 op::Mul, op::Div, op::Scale, op::RmsNorm, op::LayerNorm, op::SoftMax, op::Rope,
                 op::Silu, op::Gelu, op::GeluQuick, op::SwiGlu, op::Concat, op::SetRows, op::ArgMax,
                 op::SumRows, op::Mean, op::FlashAttn, op::Im2Col, op::Conv2D>;

// Op kinds in OpParams order, for switch statements in backends.
enum class OpKind : uint8_t {
  kLeaf,
  kView,
  kCont,
  kCpy,
  kGetRows,
  kMulMat,
  kAdd,
  kSub,
  kMul,
  kDiv,
  kScale,
  kRmsNorm,
  kLayerNorm,
  kSoftMax,
  kRope,
  kSilu,
  kGelu,
  kGeluQuick,
  kSwiGlu,
  kConcat,
  kSetRows,
  kArgMax,
  kSumRows,
  kMean,
  kFlashAttn,
  kIm2Col,
  kConv2D,
  kCount,
};
static_assert(static_cast<size_t>(OpKind::kCount) == std::variant_size_v<OpParams>);

std::string_view op_name(OpKind k);

}  // namespace corral::ml
