// libFuzzer entry point for the GGUF reader: any input must parse or raise FormatError, never
// crash, hang or allocate beyond what the input's own size justifies. On success every tensor's
// bytes and every metadata value are touched, so that a bad pointer or length is caught by ASan.
#include <cstddef>
#include <cstdint>
#include <span>

#include "ml/gguf/reader.h"

namespace {

size_t touch(const corral::ml::gguf::Value& v) {
  using corral::ml::gguf::ValueType;
  if (v.type() == ValueType::kArray) {
    size_t n = 0;
    for (const auto& item : v.as_array().items) n += touch(item);
    return n;
  }
  if (v.type() == ValueType::kString) return v.as_string().size();
  return 1;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto f = corral::ml::gguf::File::parse(std::span<const uint8_t>(data, size), "fuzz");
    volatile size_t sink = 0;
    for (const auto& [key, value] : f.metadata()) sink = sink + key.size() + touch(value);
    for (const auto& t : f.tensors()) {
      if (t.nbytes > 0) sink = sink + t.data[0] + t.data[t.nbytes - 1];
    }
  } catch (const corral::ml::gguf::FormatError&) {
  }
  return 0;
}
