#include "ml/gguf/json.h"

#include <algorithm>

namespace corral::ml::gguf {

nlohmann::ordered_json to_json(const Value& v, size_t max_items) {
  switch (v.type()) {
    case ValueType::kUint8:
      return v.as<uint8_t>();
    case ValueType::kInt8:
      return v.as<int8_t>();
    case ValueType::kUint16:
      return v.as<uint16_t>();
    case ValueType::kInt16:
      return v.as<int16_t>();
    case ValueType::kUint32:
      return v.as<uint32_t>();
    case ValueType::kInt32:
      return v.as<int32_t>();
    case ValueType::kUint64:
      return v.as<uint64_t>();
    case ValueType::kInt64:
      return v.as<int64_t>();
    case ValueType::kFloat32:
      return v.as<float>();
    case ValueType::kFloat64:
      return v.as<double>();
    case ValueType::kBool:
      return v.as<bool>();
    case ValueType::kString:
      return v.as_string();
    case ValueType::kArray: {
      const auto& items = v.as_array().items;
      nlohmann::ordered_json a = nlohmann::ordered_json::array();
      const size_t shown = std::min(items.size(), max_items);
      for (size_t i = 0; i < shown; ++i) a.push_back(to_json(items[i], max_items));
      return a;
    }
  }
  return nullptr;
}

}  // namespace corral::ml::gguf
