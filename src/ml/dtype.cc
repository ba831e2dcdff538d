#include "ml/dtype.h"

#include <array>
#include <cctype>
#include <cstdint>
#include <iterator>
#include <stdexcept>
#include <string>

namespace corral::ml {
namespace {

// Block layouts (bytes): see ml/quant/blocks.h for the field order of each format.
constexpr DTypeInfo kInfos[] = {
    {DType::F32, "f32", 1, 4, false},      {DType::F16, "f16", 1, 2, false},
    {DType::Q4_0, "q4_0", 32, 18, true},   {DType::Q4_1, "q4_1", 32, 20, true},
    {DType::Q5_0, "q5_0", 32, 22, true},   {DType::Q5_1, "q5_1", 32, 24, true},
    {DType::Q8_0, "q8_0", 32, 34, true},   {DType::Q8_1, "q8_1", 32, 36, true},
    {DType::Q2_K, "q2_K", 256, 84, true},  {DType::Q3_K, "q3_K", 256, 110, true},
    {DType::Q4_K, "q4_K", 256, 144, true}, {DType::Q5_K, "q5_K", 256, 176, true},
    {DType::Q6_K, "q6_K", 256, 210, true}, {DType::Q8_K, "q8_K", 256, 292, true},
    {DType::I8, "i8", 1, 1, false},        {DType::I16, "i16", 1, 2, false},
    {DType::I32, "i32", 1, 4, false},      {DType::I64, "i64", 1, 8, false},
    {DType::F64, "f64", 1, 8, false},      {DType::BF16, "bf16", 1, 2, false},
};

// kInfos index by enum value (-1: none). info() runs for every tensor of every graph, so it is
// a table lookup rather than a search.
constexpr size_t kMaxRaw = 32;
constexpr std::array<int8_t, kMaxRaw> make_index() {
  std::array<int8_t, kMaxRaw> index{};
  index.fill(-1);
  for (size_t i = 0; i < std::size(kInfos); ++i) {
    index[static_cast<size_t>(kInfos[i].type)] = static_cast<int8_t>(i);
  }
  return index;
}
constexpr auto kIndex = make_index();

}  // namespace

const DTypeInfo& info(DType t) {
  const auto raw = static_cast<uint32_t>(t);
  if (raw < kMaxRaw && kIndex[raw] >= 0) [[likely]]
    return kInfos[kIndex[raw]];
  throw std::invalid_argument("unknown dtype " + std::to_string(raw));
}

std::optional<DTypeInfo> dtype_info(uint32_t raw) {
  for (const auto& i : kInfos) {
    if (static_cast<uint32_t>(i.type) == raw) return i;
  }
  return std::nullopt;
}

std::optional<DType> parse_dtype(std::string_view name) {
  for (const auto& i : kInfos) {
    if (i.name.size() != name.size()) continue;
    bool same = true;
    for (size_t k = 0; k < name.size() && same; ++k) {
      same = std::tolower(static_cast<unsigned char>(i.name[k])) ==
             std::tolower(static_cast<unsigned char>(name[k]));
    }
    if (same) return i.type;
  }
  return std::nullopt;
}

}  // namespace corral::ml
