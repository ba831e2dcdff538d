// GGUF reader: maps a file read-only and validates every count, length, shape and offset before
// trusting it, so that a hostile file yields a FormatError (naming the file, the byte offset and
// the defect) instead of a crash or a huge allocation. Tensor data is never copied: each
// TensorInfo points into the mapping. Format facts: ggml-org/llama.cpp docs/gguf.md and
// ggml/src/gguf.cpp (versions 2 and 3 share one little-endian layout).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ml/dtype.h"
#include "ml/gguf/metadata.h"

namespace corral::ml::gguf {

inline constexpr uint32_t kDefaultAlignment = 32;
inline constexpr int kMaxDims = 4;
// Arrays of arrays deeper than this are rejected (recursion bound for hostile input).
inline constexpr int kMaxArrayDepth = 8;
// Array items in all metadata together. Each item costs a Value (~40 bytes) in memory, far more
// than its bytes on disk, so a file of one huge u8 array could otherwise make the reader allocate
// many times its size. Real vocabularies hold well under a million items.
inline constexpr uint64_t kMaxMetadataItems = uint64_t{1} << 24;

// The file is not valid GGUF. what() = "<file>: at byte offset <n>: <defect>".
class FormatError : public std::runtime_error {
 public:
  FormatError(const std::string& source, uint64_t offset, const std::string& what);
  uint64_t offset() const { return offset_; }

 private:
  uint64_t offset_;
};

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  int n_dims = 0;
  std::array<int64_t, kMaxDims> ne{1, 1, 1, 1};  // ggml order: ne[0] varies fastest
  uint64_t offset = 0;                           // from the start of the data section
  size_t nbytes = 0;
  const uint8_t* data = nullptr;  // into the file mapping (or the caller's buffer)

  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  std::vector<int64_t> shape() const { return {ne.begin(), ne.begin() + n_dims}; }
  std::span<const uint8_t> bytes() const { return {data, nbytes}; }
};

class File {
 public:
  // Maps and parses a file. Throws FormatError for invalid content and std::runtime_error
  // (naming the path and the system error) when it cannot be opened or mapped.
  static File open(const std::string& path);
  // Parses bytes the caller keeps alive for the File's lifetime (fuzzing, tests, embedded data).
  static File parse(std::span<const uint8_t> bytes, std::string source = "<memory>");

  File(File&&) noexcept;
  File& operator=(File&&) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  ~File();

  const std::string& source() const { return metadata_.source(); }
  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // absolute start of the data section
  uint64_t size() const { return bytes_.size(); }

  const Metadata& metadata() const { return metadata_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }  // in file order
  // The bytes of every tensor's data, from the first to the end of the last (empty when there
  // are no tensors): what a backend may treat as constant while the File lives.
  std::span<const uint8_t> tensor_data() const;
  const TensorInfo* find_tensor(std::string_view name) const;
  const TensorInfo& tensor(std::string_view name) const;  // std::out_of_range naming it

 private:
  struct Mapping;
  File() = default;
  void parse_all();

  std::unique_ptr<Mapping> mapping_;
  std::span<const uint8_t> bytes_;
  uint32_t version_ = 0;
  uint32_t alignment_ = kDefaultAlignment;
  uint64_t data_offset_ = 0;
  Metadata metadata_;
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string, size_t> tensor_index_;
};

}  // namespace corral::ml::gguf
