// Which dtype each tensor of a model gets under a target type: llama.cpp's per-tensor rules
// (src/llama-quant.cpp: tensor_allows_quantization, llama_tensor_get_type_impl,
// tensor_type_fallback), restated for the types corral has. Shared by write_model and the tests
// that pin the rules down.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "convert/quantize.h"
#include "ml/dtype.h"
#include "ml/gguf/metadata.h"

namespace corral::convert {

// llama_ftype numbers (llama.h), written as general.file_type.
enum Ftype : uint32_t {
  kFtypeF32 = 0,
  kFtypeF16 = 1,
  kFtypeQ4_0 = 2,
  kFtypeQ4_1 = 3,
  kFtypeQ8_0 = 7,
  kFtypeQ5_0 = 8,
  kFtypeQ5_1 = 9,
  kFtypeQ2_K = 10,
  kFtypeQ3_K_S = 11,
  kFtypeQ3_K_M = 12,
  kFtypeQ3_K_L = 13,
  kFtypeQ4_K_S = 14,
  kFtypeQ4_K_M = 15,
  kFtypeQ5_K_S = 16,
  kFtypeQ5_K_M = 17,
  kFtypeQ6_K = 18,
  kFtypeQ2_K_S = 21,
  kFtypeBF16 = 32,
};

// The hyperparameters the rules look at, from GGUF metadata ({arch}.block_count, ...).
struct ModelShape {
  std::string arch;
  int n_layer = 0;
  int n_head = 0;     // of layer 0 where the file gives one per layer
  int n_head_kv = 0;  // likewise
  int n_expert = 0;

  static ModelShape from_metadata(const ml::gguf::Metadata& metadata);
  int n_gqa() const { return n_head_kv > 0 ? n_head / n_head_kv : 0; }
};

struct TensorDesc {
  std::string name;
  std::vector<int64_t> ne;  // ggml order
  ml::DType dtype;          // of the source
};

// False for tensors llama.cpp never quantizes: 1-D tensors, norms, names not ending in
// "weight", MoE routers, positional embeddings and other small special tensors.
bool allows_quantization(const std::string& name, size_t n_dims);

// The dtype of each tensor (same order as `tensors`) under `type`. Rules run in llama.cpp's
// order (by layer number, then name), since some depend on how many attn_v / ffn_down tensors
// came before. Tensors llama.cpp keeps as they are keep their source dtype when quantizing,
// except that 1-D tensors and norms in F16/BF16 become F32 (as llama.cpp's converter writes
// them); under a float type (F32, F16, BF16) the larger ones take that type. Where a row
// does not fit the chosen type's block, the type falls back as llama.cpp's does (Q2_K/Q3_K to
// Q4_0, Q4_K to Q5_0, Q5_K to Q5_1, Q6_K to Q8_0), and to F16 when even 32 does not divide the
// row (llama.cpp throws for the 32-block types; corral writes F16 instead).
std::vector<ml::DType> tensor_types(const QuantType& type, const ModelShape& shape,
                                    std::span<const TensorDesc> tensors);

}  // namespace corral::convert
