// Writing model files in a chosen type: the target types users name (`-q Q4_K_M`), llama.cpp's
// per-tensor rules that decide each tensor's dtype under a target (which tensors stay at higher
// precision, fallbacks for rows that do not fit a block), and the streaming GGUF writer shared by
// `corral quantize` (GGUF in) and the Hugging Face converter (safetensors in).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ml/dtype.h"
#include "ml/gguf/metadata.h"

namespace corral::convert {

// A target type: a plain dtype (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K..Q6_K) or a
// llama.cpp mixture (Q4_K_M, Q4_K_S, Q5_K_M, Q5_K_S, Q3_K_S, Q3_K_M, Q3_K_L, Q2_K_S...).
struct QuantType {
  std::string name;  // canonical spelling, e.g. "Q4_K_M"
  ml::DType base;    // the dtype most weight matrices get
  uint32_t ftype;    // llama_ftype number written as general.file_type
};

// Case-insensitive ("q4_k_m", "f16"). Throws std::invalid_argument listing the valid names.
QuantType parse_quant_type(std::string_view name);
// Every name parse_quant_type accepts, canonical spelling, for --help and errors.
std::vector<std::string> quant_type_names();

// Progress of long work, reported as Ollama's create progress is: a status line and, where
// countable, bytes or items done out of a total (total 0: not countable).
struct Progress {
  std::string status;
  uint64_t completed = 0;
  uint64_t total = 0;
};
using ProgressFn = std::function<void(const Progress&)>;

// One tensor to write: its GGUF name and ggml shape, its source dtype, and how to read it.
struct TensorSource {
  std::string name;
  std::vector<int64_t> ne;  // ggml order, ne[0] fastest
  ml::DType dtype;          // of the source data
  // The source bytes when they are already in `dtype` layout (copied unchanged when the output
  // dtype equals `dtype`); may be empty.
  std::span<const uint8_t> raw;
  // Fills `out` (product of ne floats) with the values as f32. Must be thread-safe.
  std::function<void(float* out)> read_f32;
};

struct WriteOptions {
  int n_threads = 0;  // 0: physical cores
  ProgressFn progress;
};

// Writes a GGUF to `path` (atomically: temp file + fsync + rename; the temp file is removed on
// any exception) holding `metadata` (general.file_type set to type.ftype, and
// general.quantization_version 2 when any tensor is quantized, else removed) and every tensor,
// in the order given, converted to the dtype llama.cpp's rules give it under `type` (see
// convert/tensor_types.h). Streams: the header goes out first, then one tensor at a time,
// converted with its rows split over n_threads; memory stays near the size of the largest tensor
// (its f32 values where only read_f32 is given, plus its converted bytes), never the whole model.
// A source whose dtype is already its target is copied from `raw`. Progress is reported before
// the first tensor and after each one, in output bytes out of the output's data size.
void write_model(ml::gguf::Metadata metadata, std::span<const TensorSource> tensors,
                 const QuantType& type, const std::string& path, const WriteOptions& options = {});

// `corral quantize IN OUT TYPE`: every tensor of IN re-written under TYPE (already-quantized
// tensors are dequantized first; a tensor already in its target dtype is copied).
void quantize_file(const std::string& in, const std::string& out, const QuantType& type,
                   const WriteOptions& options = {});

}  // namespace corral::convert
