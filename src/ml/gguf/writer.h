// GGUF writer: metadata in insertion order, then tensor infos, then tensor data, each tensor
// padded to the alignment, laid out exactly as llama.cpp's gguf_write writes it (version 3,
// tensors contiguous in the order added) so that llama.cpp reads the result. Files are written to
// a temporary file beside the target and renamed into place.
#pragma once

#include <cstdint>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "ml/dtype.h"
#include "ml/gguf/metadata.h"

namespace corral::ml::gguf {

class Writer {
 public:
  Writer() = default;
  explicit Writer(Metadata metadata) : metadata_(std::move(metadata)) {}

  // general.alignment, when set, must be a u32 power of two (else 32 is used and not written).
  Metadata& metadata() { return metadata_; }
  const Metadata& metadata() const { return metadata_; }

  // Borrows `data`: it must stay valid until write() returns. Checks the name (unique, shorter
  // than llama.cpp's 64-byte limit), the shape (1..4 positive dims, ne[0] a multiple of the block
  // size) and that data holds exactly the tensor's bytes; throws std::invalid_argument.
  void add_tensor(std::string name, DType dtype, std::span<const int64_t> ne,
                  std::span<const uint8_t> data);
  void add_tensor(std::string name, DType dtype, std::initializer_list<int64_t> ne,
                  std::span<const uint8_t> data) {
    add_tensor(std::move(name), dtype, std::span<const int64_t>(ne.begin(), ne.size()), data);
  }

  // Atomic: temp file in the same folder, fsync, rename. std::runtime_error naming the path.
  void write(const std::string& path) const;
  void write_to(std::ostream& out) const;
  std::vector<uint8_t> to_bytes() const;

  // Total file size write() produces.
  uint64_t file_size() const;

 private:
  struct PendingTensor {
    std::string name;
    DType dtype;
    std::vector<int64_t> ne;
    std::span<const uint8_t> data;
  };
  uint32_t alignment() const;
  template <class Sink>
  void emit(Sink& sink) const;

  Metadata metadata_{"gguf writer"};
  std::vector<PendingTensor> tensors_;
};

}  // namespace corral::ml::gguf
