// Element types and block quantization formats, numbered as GGUF (ggml_type) numbers them so
// that a dtype read from a file is the enum value itself.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace corral::ml {

enum class DType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  BF16 = 30,
};

struct DTypeInfo {
  DType type;
  std::string_view name;  // as llama.cpp prints it: "f32", "q4_K", ...
  int64_t block_size;     // elements per block (1 for plain types)
  size_t type_size;       // bytes per block
  bool is_quantized;
};

// Info for a known dtype; nullopt for numbers GGUF does not define or corral does not support
// (IQ formats, removed types).
std::optional<DTypeInfo> dtype_info(uint32_t raw);
const DTypeInfo& info(DType t);

inline std::string_view dtype_name(DType t) { return info(t).name; }
inline int64_t block_size(DType t) { return info(t).block_size; }
inline size_t type_size(DType t) { return info(t).type_size; }
inline bool is_quantized(DType t) { return info(t).is_quantized; }
// Bytes of a row of n elements; n must be a multiple of the block size.
inline size_t row_size(DType t, int64_t n) {
  return type_size(t) * static_cast<size_t>(n / block_size(t));
}
// Parses a name as dtype_name prints it (case-insensitive).
std::optional<DType> parse_dtype(std::string_view name);

// Every supported dtype, in enum order.
inline constexpr DType kAllDTypes[] = {
    DType::F32,  DType::F16,  DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0,
    DType::Q8_1, DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q8_K,
    DType::I8,   DType::I16,  DType::I32,  DType::I64,  DType::F64,  DType::BF16,
};

}  // namespace corral::ml
