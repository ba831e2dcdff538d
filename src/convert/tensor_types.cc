#include "convert/tensor_types.h"

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <stdexcept>
#include <string_view>

namespace corral::convert {
namespace {

using ml::DType;

// llama.cpp's tensor_category: broad roles found by substring, in this order of precedence.
enum class Category {
  kTokenEmbd,
  kAttnQ,
  kAttnV,
  kAttnK,
  kAttnQkv,
  kAttnKvB,
  kAttnOutput,
  kFfnUp,
  kFfnGate,
  kFfnDown,
  kOutput,
  kOther,
};

bool contains(std::string_view s, std::string_view part) {
  return s.find(part) != std::string_view::npos;
}

Category category_of(std::string_view name) {
  if (name == "output.weight") return Category::kOutput;
  if (name == "token_embd.weight" || name == "per_layer_token_embd.weight") {
    return Category::kTokenEmbd;
  }
  if (contains(name, "attn_qkv.weight")) return Category::kAttnQkv;
  if (contains(name, "attn_kv_b.weight")) return Category::kAttnKvB;
  if (contains(name, "attn_v.weight")) return Category::kAttnV;
  if (contains(name, "attn_k.weight")) return Category::kAttnK;
  if (contains(name, "attn_q.weight")) return Category::kAttnQ;
  if (contains(name, "attn_output.weight")) return Category::kAttnOutput;
  if (contains(name, "ffn_up")) return Category::kFfnUp;
  if (contains(name, "ffn_gate")) return Category::kFfnGate;
  if (contains(name, "ffn_down")) return Category::kFfnDown;
  return Category::kOther;
}

// The value projections (and fused QKV) are the most sensitive to quantization.
bool is_attn_v_like(Category c) {
  return c == Category::kAttnV || c == Category::kAttnQkv || c == Category::kAttnKvB;
}

// Layers that get more bits in the _M mixtures: the first and last eighth, and every third one
// between them.
bool use_more_bits(int i_layer, int n_layer) {
  return i_layer < n_layer / 8 || i_layer >= 7 * n_layer / 8 || (i_layer - n_layer / 8) % 3 == 2;
}

// The layer number in "blk.N." (-1 for tensors outside the blocks).
int layer_of(const std::string& name) {
  int layer = -1;
  if (std::sscanf(name.c_str(), "blk.%d.", &layer) != 1) return -1;
  return layer;
}

// Counters the rules carry from one tensor to the next (llama.cpp's quantize_state_impl).
struct State {
  const ModelShape& shape;
  uint32_t ftype;
  bool tied_embeddings = true;
  int n_attention_wv = 0;
  int i_attention_wv = 0;
  int i_ffn_down = 0;
  int i_ffn_gate = 0;
  int i_ffn_up = 0;

  bool falcon() const { return shape.arch == "falcon"; }
  // llama.cpp's LLM_TYPE_70B for the llama architecture: 80 layers with grouped-query attention.
  bool llama_70b() const {
    return shape.arch == "llama" && shape.n_layer == 80 && shape.n_head != shape.n_head_kv;
  }
  // The (layer, layer count) a per-layer counter stands for; MoE files interleave expert
  // tensors, so there the layer comes from the name.
  std::pair<int, int> layer_info(int counter, const std::string& name) const {
    if (shape.n_expert > 1) {
      const int layer = layer_of(name);
      if (layer < 0 || layer >= shape.n_layer) {
        throw std::runtime_error("tensor '" + name + "': cannot tell its layer (of " +
                                 std::to_string(shape.n_layer) + ")");
      }
      return {layer, shape.n_layer};
    }
    return {counter, shape.n_layer};
  }
};

// llama.cpp's llama_tensor_get_type_impl for the non-IQ file types: `t` starts as the file
// type's default dtype.
DType mixture_type(State& s, DType t, const TensorDesc& tensor, Category cat) {
  const uint32_t ftype = s.ftype;
  const int n_gqa = s.shape.n_gqa();
  const int n_expert = s.shape.n_expert;

  if (cat == Category::kOutput || (s.tied_embeddings && cat == Category::kTokenEmbd)) {
    if (s.falcon() || tensor.ne[0] % ml::block_size(t) != 0) {
      t = DType::Q8_0;
    } else if (t != DType::Q8_0) {
      t = DType::Q6_K;
    }
    return t;
  }
  if (cat == Category::kTokenEmbd) return t;

  if (is_attn_v_like(cat)) {
    const int i = s.i_attention_wv;
    if (ftype == kFtypeQ2_K) {
      t = n_gqa >= 4 ? DType::Q4_K : DType::Q3_K;
    } else if (ftype == kFtypeQ2_K_S && n_gqa >= 4) {
      t = DType::Q4_K;
    } else if (ftype == kFtypeQ3_K_M) {
      t = i < 2 ? DType::Q5_K : DType::Q4_K;
    } else if (ftype == kFtypeQ3_K_L) {
      t = DType::Q5_K;
    } else if ((ftype == kFtypeQ4_K_M || ftype == kFtypeQ5_K_M) &&
               use_more_bits(i, s.n_attention_wv)) {
      t = DType::Q6_K;
    } else if (ftype == kFtypeQ4_K_S && i < 4) {
      t = DType::Q5_K;
    }
    // A 70B shares each attn_v among 8 heads: it is small, so more bits cost little.
    if (s.llama_70b() && (t == DType::Q3_K || t == DType::Q4_K)) t = DType::Q5_K;
    if (n_expert == 8) t = DType::Q8_0;
    ++s.i_attention_wv;
    return t;
  }
  if (cat == Category::kAttnK) return n_expert == 8 ? DType::Q8_0 : t;
  if (cat == Category::kFfnDown) {
    const auto [i, n] = s.layer_info(s.i_ffn_down, tensor.name);
    if (ftype == kFtypeQ2_K) {
      t = DType::Q3_K;
    } else if (ftype == kFtypeQ2_K_S) {
      if (i < n / 8) t = DType::Q4_K;
    } else if (ftype == kFtypeQ3_K_M) {
      t = i < n / 16 ? DType::Q5_K : !s.falcon() || use_more_bits(i, n) ? DType::Q4_K : DType::Q3_K;
    } else if (ftype == kFtypeQ3_K_L) {
      t = s.falcon() ? DType::Q4_K : DType::Q5_K;
    } else if (ftype == kFtypeQ4_K_M) {
      if (s.falcon()) {
        t = i < n / 16 ? DType::Q6_K : use_more_bits(i, n) ? DType::Q5_K : DType::Q4_K;
      } else if (use_more_bits(i, n)) {
        t = DType::Q6_K;
      }
    } else if (ftype == kFtypeQ5_K_M && use_more_bits(i, n)) {
      t = DType::Q6_K;
    } else if (ftype == kFtypeQ4_K_S && !s.falcon() && i < n / 8) {
      t = DType::Q5_K;
    }
    ++s.i_ffn_down;
    return t;
  }
  if (cat == Category::kAttnOutput) {
    if (s.falcon()) return ftype == kFtypeQ3_K_L ? DType::Q4_K : t;
    if (n_expert == 8) {
      const bool bump = ftype == kFtypeQ2_K || ftype == kFtypeQ3_K_S || ftype == kFtypeQ3_K_M ||
                        ftype == kFtypeQ4_K_S || ftype == kFtypeQ4_K_M;
      return bump ? DType::Q5_K : t;
    }
    if (ftype == kFtypeQ2_K) return DType::Q3_K;
    if (ftype == kFtypeQ3_K_M) return DType::Q4_K;
    if (ftype == kFtypeQ3_K_L) return DType::Q5_K;
    return t;
  }
  // ffn_gate and ffn_up change only under IQ mixtures; llama.cpp still counts them.
  if (cat == Category::kFfnGate) ++s.i_ffn_gate;
  if (cat == Category::kFfnUp) ++s.i_ffn_up;
  return t;
}

// A row must hold whole blocks (llama.cpp's tensor_type_fallback): Q4_0 for the 2- and 3-bit K
// types (current llama.cpp; releases before it used IQ4_NL, which corral lacks), then Q5_0,
// Q5_1, Q8_0 for 4, 5, 6 bits; F16 where the fallback's 32-block does not fit either.
DType fit_row(DType t, int64_t ncols) {
  if (ncols % ml::block_size(t) == 0) return t;
  DType fallback = DType::F16;
  switch (t) {
    case DType::Q2_K:
    case DType::Q3_K:
      fallback = DType::Q4_0;
      break;
    case DType::Q4_K:
      fallback = DType::Q5_0;
      break;
    case DType::Q5_K:
      fallback = DType::Q5_1;
      break;
    case DType::Q6_K:
      fallback = DType::Q8_0;
      break;
    default:
      break;
  }
  return ncols % ml::block_size(fallback) == 0 ? fallback : DType::F16;
}

bool is_float(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }

}  // namespace

ModelShape ModelShape::from_metadata(const ml::gguf::Metadata& metadata) {
  ModelShape shape;
  if (const auto* arch = metadata.find("general.architecture"); arch && arch->is<std::string>()) {
    shape.arch = arch->as_string();
  }
  // An integer key, or the first entry of a per-layer array; 0 when absent.
  auto integer = [&](const std::string& key) -> int {
    const ml::gguf::Value* v = metadata.find(key);
    if (!v) return 0;
    if (v->is<ml::gguf::Array>()) {
      const auto& items = v->as_array().items;
      if (items.empty()) return 0;
      return static_cast<int>(items.front().as_integer().value_or(0));
    }
    return static_cast<int>(v->as_integer().value_or(0));
  };
  const std::string& a = shape.arch;
  shape.n_layer = integer(a + ".block_count");
  shape.n_head = integer(a + ".attention.head_count");
  shape.n_head_kv = integer(a + ".attention.head_count_kv");
  if (shape.n_head_kv == 0) shape.n_head_kv = shape.n_head;
  shape.n_expert = integer(a + ".expert_count");
  return shape;
}

bool allows_quantization(const std::string& name, size_t n_dims) {
  if (n_dims < 2) return false;
  if (!name.ends_with("weight")) return false;
  static constexpr std::string_view kKept[] = {
      "_norm.weight",
      "ffn_gate_inp.weight",
      "ffn_gate_tid2eid.weight",
      "altup",
      "laurel",
      "per_layer_model_proj",
      "ssm_conv1d",
      "shortconv.conv.weight",
      "indexer.k_proj.weight",
      "indexer.q_proj.weight",
      "time_mix_first.weight",
      "time_mix_w0.weight",
      "time_mix_w1.weight",
      "time_mix_w2.weight",
      "time_mix_v0.weight",
      "time_mix_v1.weight",
      "time_mix_v2.weight",
      "time_mix_a0.weight",
      "time_mix_a1.weight",
      "time_mix_a2.weight",
      "time_mix_g1.weight",
      "time_mix_g2.weight",
      "time_mix_decay_w1.weight",
      "time_mix_decay_w2.weight",
      "time_mix_lerp_fused.weight",
      "attn_rel_b.weight",
      ".position_embd",
      "sam.pos_embd",
      "sam.neck.",
      "sam.net_",
      ".rel_pos",
      ".patch_embd",
      ".patch_merger",
      "a.rvq.codebook",
      "mm.a.code_embd",
  };
  for (std::string_view part : kKept) {
    if (contains(name, part)) return false;
  }
  return name != "position_embd.weight" && name != "token_types.weight";
}

std::vector<DType> tensor_types(const QuantType& type, const ModelShape& shape,
                                std::span<const TensorDesc> tensors) {
  State s{shape, type.ftype};
  for (const TensorDesc& t : tensors) {
    const Category cat = category_of(t.name);
    if (is_attn_v_like(cat)) ++s.n_attention_wv;
    if (cat == Category::kOutput) s.tied_embeddings = false;
  }

  // llama.cpp walks tensors by layer number (non-layer tensors first), then by name.
  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::vector<int> layers(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) layers[i] = layer_of(tensors[i].name);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (layers[a] != layers[b]) return layers[a] < layers[b];
    return tensors[a].name < tensors[b].name;
  });

  std::vector<DType> out(tensors.size());
  for (size_t i : order) {
    const TensorDesc& t = tensors[i];
    if (t.ne.empty()) throw std::invalid_argument("tensor '" + t.name + "' has no dimensions");
    if (!allows_quantization(t.name, t.ne.size())) {
      const bool small = t.ne.size() == 1 || t.name.ends_with("_norm.weight");
      if (small && is_float(t.dtype)) {
        out[i] = DType::F32;
      } else if (!ml::is_quantized(type.base) && is_float(t.dtype)) {
        // A float target type is a conversion (convert_hf_to_gguf's --outtype), which writes
        // every larger tensor in it; only quantizing keeps these in their source type.
        out[i] = type.base;
      } else {
        out[i] = t.dtype;
      }
      continue;
    }
    if (!ml::is_quantized(type.base)) {
      out[i] = type.base;
      continue;
    }
    out[i] = fit_row(mixture_type(s, type.base, t, category_of(t.name)), t.ne[0]);
  }
  return out;
}

}  // namespace corral::convert
