#include "ml/gguf/metadata.h"

#include <limits>

namespace corral::ml::gguf {

std::string_view type_name(ValueType t) {
  switch (t) {
    case ValueType::kUint8:
      return "u8";
    case ValueType::kInt8:
      return "i8";
    case ValueType::kUint16:
      return "u16";
    case ValueType::kInt16:
      return "i16";
    case ValueType::kUint32:
      return "u32";
    case ValueType::kInt32:
      return "i32";
    case ValueType::kFloat32:
      return "f32";
    case ValueType::kBool:
      return "bool";
    case ValueType::kString:
      return "str";
    case ValueType::kArray:
      return "arr";
    case ValueType::kUint64:
      return "u64";
    case ValueType::kInt64:
      return "i64";
    case ValueType::kFloat64:
      return "f64";
  }
  return "?";
}

std::optional<ValueType> value_type_from_raw(uint32_t raw) {
  if (raw > static_cast<uint32_t>(ValueType::kFloat64)) return std::nullopt;
  return static_cast<ValueType>(raw);
}

bool Array::operator==(const Array& other) const {
  return type == other.type && items == other.items;
}

Value Value::array(ValueType element, std::vector<Value> items) {
  for (size_t i = 0; i < items.size(); ++i) {
    if (items[i].type() != element) {
      throw MetadataError("array of " + std::string(type_name(element)) + " has item " +
                          std::to_string(i) + " of type " +
                          std::string(type_name(items[i].type())));
    }
  }
  return Value(Array{element, std::move(items)});
}

void Value::throw_type_mismatch(ValueType expected) const {
  throw MetadataError("value is " + type_string() + ", expected " +
                      std::string(type_name(expected)));
}

std::optional<int64_t> Value::as_integer() const {
  return std::visit(
      [](const auto& x) -> std::optional<int64_t> {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, bool> || !std::is_integral_v<T>) {
          return std::nullopt;
        } else if constexpr (std::is_same_v<T, uint64_t>) {
          if (x > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
          return static_cast<int64_t>(x);
        } else {
          return static_cast<int64_t>(x);
        }
      },
      v_);
}

std::string Value::type_string() const {
  if (const Array* a = std::get_if<Array>(&v_)) {
    return "arr[" + std::string(type_name(a->type)) + "," + std::to_string(a->items.size()) + "]";
  }
  return std::string(type_name(type()));
}

void Metadata::set(std::string key, Value value) {
  if (auto it = index_.find(key); it != index_.end()) {
    entries_[it->second].second = std::move(value);
    return;
  }
  index_.emplace(key, entries_.size());
  entries_.emplace_back(std::move(key), std::move(value));
}

void Metadata::add(std::string key, Value value) {
  if (index_.count(key)) throw MetadataError(source_ + ": duplicate key '" + key + "'");
  index_.emplace(key, entries_.size());
  entries_.emplace_back(std::move(key), std::move(value));
}

bool Metadata::erase(std::string_view key) {
  auto it = index_.find(std::string(key));
  if (it == index_.end()) return false;
  entries_.erase(entries_.begin() + static_cast<ptrdiff_t>(it->second));
  index_.clear();
  for (size_t i = 0; i < entries_.size(); ++i) index_.emplace(entries_[i].first, i);
  return true;
}

const Value* Metadata::find(std::string_view key) const {
  auto it = index_.find(std::string(key));
  return it == index_.end() ? nullptr : &entries_[it->second].second;
}

const Value& Metadata::at(std::string_view key) const {
  const Value* v = find(key);
  if (!v) throw_missing(key);
  return *v;
}

int64_t Metadata::get_integer(std::string_view key) const {
  const Value& v = at(key);
  std::optional<int64_t> x = v.as_integer();
  if (!x) throw_wrong_type(key, "an integer", v);
  return *x;
}

void Metadata::throw_missing(std::string_view key) const {
  throw MetadataError(source_ + ": missing metadata key '" + std::string(key) + "'");
}

void Metadata::throw_wrong_type(std::string_view key, std::string_view expected,
                                const Value& found) const {
  throw MetadataError(source_ + ": metadata key '" + std::string(key) + "' is " +
                      found.type_string() + ", expected " + std::string(expected));
}

}  // namespace corral::ml::gguf
