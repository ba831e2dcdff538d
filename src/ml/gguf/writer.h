// GGUF writer: metadata in insertion order, then tensor infos, then tensor data, each tensor
// padded to the alignment, laid out exactly as llama.cpp's gguf_write writes it (version 3,
// tensors contiguous in the order added) so that llama.cpp reads the result. Files are written to
// a temporary file beside the target and renamed into place.
#pragma once

#include <cstdint>
#include <memory>
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

  // Declares a tensor whose bytes come later through a StreamWriter: same checks as add_tensor,
  // no data held. A Writer with declared tensors can only be written through a StreamWriter.
  void declare_tensor(std::string name, DType dtype, std::span<const int64_t> ne);

  // Atomic: temp file in the same folder, fsync, rename. std::runtime_error naming the path.
  void write(const std::string& path) const;
  void write_to(std::ostream& out) const;
  std::vector<uint8_t> to_bytes() const;

  // Total file size write() produces.
  uint64_t file_size() const;

 private:
  friend class StreamWriter;
  struct PendingTensor {
    std::string name;
    DType dtype;
    std::vector<int64_t> ne;
    uint64_t nbytes = 0;
    std::span<const uint8_t> data;
    bool declared_only = false;
  };
  uint64_t check_tensor(const std::string& name, DType dtype, std::span<const int64_t> ne) const;
  uint32_t alignment() const;
  template <class Sink>
  void emit(Sink& sink) const;
  // The header: magic, counts, metadata, tensor infos, and the padding up to the data section.
  template <class Sink>
  void emit_header(Sink& sink) const;

  Metadata metadata_{"gguf writer"};
  std::vector<PendingTensor> tensors_;
};

// Writes a GGUF whose tensor data is produced one tensor at a time, so that a model far larger
// than memory can be converted: the header (every tensor's info, with offsets from the declared
// shapes and dtypes) goes out first, then each tensor's bytes in declaration order. The file is
// written to a temp file beside `path`; finish() syncs it and renames it into place, and a
// StreamWriter destroyed before finish() removes the temp file.
class StreamWriter {
 public:
  StreamWriter(const Writer& header, const std::string& path);
  ~StreamWriter();
  StreamWriter(const StreamWriter&) = delete;
  StreamWriter& operator=(const StreamWriter&) = delete;

  // The next tensor's bytes (exactly its declared size; std::invalid_argument otherwise).
  void write_tensor(std::span<const uint8_t> bytes);
  // Every declared tensor must have been written. Throws std::runtime_error naming the path.
  void finish();

  uint64_t bytes_written() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace corral::ml::gguf
