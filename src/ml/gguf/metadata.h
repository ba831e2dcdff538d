// GGUF metadata: typed values (every GGUF value type, arrays nested to any depth) and an ordered
// key/value table with typed getters. Upper layers read model options through Metadata::get_*;
// a wrong or missing key raises MetadataError naming the key and both types.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

namespace corral::ml::gguf {

// Numbered as GGUF numbers them on disk (gguf_type).
enum class ValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

// Short names as llama.cpp's gguf tools print them: "u8", "i32", "f32", "bool", "str", "arr".
std::string_view type_name(ValueType t);
// nullopt for numbers GGUF does not define.
std::optional<ValueType> value_type_from_raw(uint32_t raw);

// Raised for a missing key or a value of another type than the caller asked for.
class MetadataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Value;

// An array keeps its element type even when empty, so that a file round-trips exactly.
struct Array {
  ValueType type = ValueType::kUint8;
  std::vector<Value> items;
  bool operator==(const Array& other) const;
};

class Value {
 public:
  Value() : v_(uint8_t{0}) {}
  Value(uint8_t x) : v_(x) {}
  Value(int8_t x) : v_(x) {}
  Value(uint16_t x) : v_(x) {}
  Value(int16_t x) : v_(x) {}
  Value(uint32_t x) : v_(x) {}
  Value(int32_t x) : v_(x) {}
  Value(float x) : v_(x) {}
  Value(bool x) : v_(x) {}
  Value(std::string x) : v_(std::move(x)) {}
  Value(const char* x) : v_(std::string(x)) {}
  Value(std::string_view x) : v_(std::string(x)) {}
  Value(Array x) : v_(std::move(x)) {}
  Value(uint64_t x) : v_(x) {}
  Value(int64_t x) : v_(x) {}
  Value(double x) : v_(x) {}

  // An array whose items must all be of type `element` (checked; throws MetadataError).
  static Value array(ValueType element, std::vector<Value> items);

  ValueType type() const { return static_cast<ValueType>(v_.index()); }
  template <class T>
  bool is() const {
    return std::holds_alternative<T>(v_);
  }
  // The value as T; MetadataError naming both types when it holds another type.
  template <class T>
  const T& as() const {
    if (const T* p = std::get_if<T>(&v_)) return *p;
    throw_type_mismatch(type_of<T>());
  }
  const Array& as_array() const { return as<Array>(); }
  const std::string& as_string() const { return as<std::string>(); }

  // Any integer type whose value fits in int64 (u64 above INT64_MAX does not).
  std::optional<int64_t> as_integer() const;

  bool operator==(const Value& other) const { return v_ == other.v_; }

  // "arr[str,512]" for arrays, else the type name.
  std::string type_string() const;

  template <class T>
  static constexpr ValueType type_of();

 private:
  // Alternatives in ValueType order, so that index() is the on-disk type number.
  using Storage = std::variant<uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t, float, bool,
                               std::string, Array, uint64_t, int64_t, double>;
  [[noreturn]] void throw_type_mismatch(ValueType expected) const;
  Storage v_;
};

template <class T>
constexpr ValueType Value::type_of() {
  if constexpr (std::is_same_v<T, uint8_t>) return ValueType::kUint8;
  if constexpr (std::is_same_v<T, int8_t>) return ValueType::kInt8;
  if constexpr (std::is_same_v<T, uint16_t>) return ValueType::kUint16;
  if constexpr (std::is_same_v<T, int16_t>) return ValueType::kInt16;
  if constexpr (std::is_same_v<T, uint32_t>) return ValueType::kUint32;
  if constexpr (std::is_same_v<T, int32_t>) return ValueType::kInt32;
  if constexpr (std::is_same_v<T, float>) return ValueType::kFloat32;
  if constexpr (std::is_same_v<T, bool>) return ValueType::kBool;
  if constexpr (std::is_same_v<T, std::string>) return ValueType::kString;
  if constexpr (std::is_same_v<T, Array>) return ValueType::kArray;
  if constexpr (std::is_same_v<T, uint64_t>) return ValueType::kUint64;
  if constexpr (std::is_same_v<T, int64_t>) return ValueType::kInt64;
  if constexpr (std::is_same_v<T, double>) return ValueType::kFloat64;
}

// Keys in file order with lookup by name. `source` (usually the file path) prefixes every error.
class Metadata {
 public:
  using Entry = std::pair<std::string, Value>;

  explicit Metadata(std::string source = "metadata") : source_(std::move(source)) {}

  // Replaces the value of an existing key in place, else appends.
  void set(std::string key, Value value);
  // Appends; throws MetadataError when the key is already present.
  void add(std::string key, Value value);
  bool erase(std::string_view key);

  bool contains(std::string_view key) const { return find(key) != nullptr; }
  const Value* find(std::string_view key) const;
  const Value& at(std::string_view key) const;  // MetadataError when missing

  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  std::vector<Entry>::const_iterator begin() const { return entries_.begin(); }
  std::vector<Entry>::const_iterator end() const { return entries_.end(); }
  const Entry& operator[](size_t i) const { return entries_[i]; }
  const std::string& source() const { return source_; }

  // Strict typed getters: the stored type must be exactly the one asked for.
  template <class T>
  const T& get(std::string_view key) const;
  template <class T>
  T get_or(std::string_view key, T fallback) const {
    return contains(key) ? get<T>(key) : fallback;
  }
  uint32_t get_u32(std::string_view key) const { return get<uint32_t>(key); }
  int32_t get_i32(std::string_view key) const { return get<int32_t>(key); }
  uint64_t get_u64(std::string_view key) const { return get<uint64_t>(key); }
  float get_f32(std::string_view key) const { return get<float>(key); }
  bool get_bool(std::string_view key) const { return get<bool>(key); }
  const std::string& get_string(std::string_view key) const { return get<std::string>(key); }
  const Array& get_array(std::string_view key) const { return get<Array>(key); }
  // Any integer type (writers disagree on u32 vs i32 vs u64 for counts); range-checked.
  int64_t get_integer(std::string_view key) const;
  // An array whose elements are all T, copied out:
  // get_array_of<std::string>("tokenizer.ggml.tokens").
  template <class T>
  std::vector<T> get_array_of(std::string_view key) const;

  bool operator==(const Metadata& other) const { return entries_ == other.entries_; }

 private:
  [[noreturn]] void throw_missing(std::string_view key) const;
  [[noreturn]] void throw_wrong_type(std::string_view key, std::string_view expected,
                                     const Value& found) const;

  std::string source_;
  std::vector<Entry> entries_;
  std::unordered_map<std::string, size_t> index_;
};

template <class T>
const T& Metadata::get(std::string_view key) const {
  const Value& v = at(key);
  if (!v.is<T>()) throw_wrong_type(key, type_name(Value::type_of<T>()), v);
  return v.as<T>();
}

template <class T>
std::vector<T> Metadata::get_array_of(std::string_view key) const {
  const Array& a = get_array(key);
  if (a.type != Value::type_of<T>()) {
    throw_wrong_type(key, "arr[" + std::string(type_name(Value::type_of<T>())) + "]", at(key));
  }
  std::vector<T> out;
  out.reserve(a.items.size());
  for (const Value& item : a.items) out.push_back(item.as<T>());
  return out;
}

}  // namespace corral::ml::gguf
