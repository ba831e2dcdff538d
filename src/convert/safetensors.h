// Safetensors checkpoints (Hugging Face's weight format), read without copying: each file is
// mapped read-only and its JSON header validated before any offset in it is trusted. A folder
// holds one model.safetensors or shards listed by model.safetensors.index.json.
// Format facts: huggingface/safetensors README (8-byte little-endian header length, a JSON object
// of name -> {dtype, shape, data_offsets} relative to the end of the header, optional
// "__metadata__").
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace corral::convert {

// The header is larger than the format's own limit (100 MB) or the file is not safetensors.
class SafetensorsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct SafetensorsTensor {
  std::string name;
  std::string dtype;           // as the header spells it: "F32", "BF16", "I64", ...
  std::vector<int64_t> shape;  // row-major, outermost first (PyTorch order)
  std::span<const uint8_t> data;
  const std::string* file = nullptr;  // the file it lives in (owned by its SafetensorsFile)

  int64_t n_elements() const;
  // Fills `out` with n_elements() floats. Throws SafetensorsError naming the tensor and file for
  // dtypes other than F32, F16 and BF16.
  void read_f32(float* out) const;
};

// One .safetensors file, mapped for the object's lifetime.
class SafetensorsFile {
 public:
  // Throws SafetensorsError "<path>: <defect>" on anything invalid: a header length past the
  // file or above 100 MB, a header that is not a JSON object, an unknown dtype, negative or
  // overflowing shapes, offsets out of range, overlapping or not matching shape x dtype size,
  // duplicate names.
  static std::unique_ptr<SafetensorsFile> open(const std::string& path);
  // The same checks over bytes the caller keeps alive (tests, fuzzing).
  static std::unique_ptr<SafetensorsFile> parse(std::span<const uint8_t> bytes, std::string source);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }  // header order
  const SafetensorsTensor* find(std::string_view name) const;

 private:
  SafetensorsFile() = default;
  void parse_header();

  std::string path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  std::span<const uint8_t> bytes_;
  std::vector<SafetensorsTensor> tensors_;
  std::unordered_map<std::string, size_t> index_;
};

// Every tensor of a Hugging Face folder: model.safetensors, or the shards that
// model.safetensors.index.json names (each must be a plain file name inside the folder, and
// hold every tensor the weight map assigns to it).
class Checkpoint {
 public:
  static Checkpoint open(const std::string& dir);

  const std::vector<const SafetensorsTensor*>& tensors() const { return tensors_; }
  const SafetensorsTensor* find(std::string_view name) const;

 private:
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::vector<const SafetensorsTensor*> tensors_;
  std::unordered_map<std::string, const SafetensorsTensor*> index_;
};

}  // namespace corral::convert
