#include "ml/gguf/writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <stdexcept>

#include "ml/gguf/reader.h"

namespace corral::ml::gguf {
namespace {

// llama.cpp keeps tensor names in a fixed 64-byte buffer including the terminator.
constexpr size_t kMaxTensorName = 63;
constexpr uint32_t kVersion = 3;
constexpr uint8_t kZeros[64] = {};

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

struct CountingSink {
  uint64_t n = 0;
  void put(const void*, size_t size) { n += size; }
};

struct StreamSink {
  std::ostream& out;
  uint64_t n = 0;
  void put(const void* p, size_t size) {
    out.write(static_cast<const char*>(p), static_cast<std::streamsize>(size));
    n += size;
  }
};

// Writes through a file descriptor in large chunks.
struct FdSink {
  int fd;
  const std::string& path;
  std::vector<char> buf = std::vector<char>(1 << 20);
  size_t used = 0;
  uint64_t n = 0;
  void put(const void* p, size_t size) {
    const char* src = static_cast<const char*>(p);
    n += size;
    while (size > 0) {
      const size_t k = std::min(size, buf.size() - used);
      std::memcpy(buf.data() + used, src, k);
      used += k;
      src += k;
      size -= k;
      if (used == buf.size()) flush();
    }
  }
  void flush() {
    size_t done = 0;
    while (done < used) {
      const ssize_t w = ::write(fd, buf.data() + done, used - done);
      if (w < 0) {
        if (errno == EINTR) continue;
        throw std::runtime_error(path + ": write failed: " + std::strerror(errno));
      }
      done += static_cast<size_t>(w);
    }
    used = 0;
  }
};

template <class Sink, class T>
void put_pod(Sink& s, T x) {
  s.put(&x, sizeof(T));
}

template <class Sink>
void put_string(Sink& s, const std::string& str) {
  put_pod<Sink, uint64_t>(s, str.size());
  s.put(str.data(), str.size());
}

template <class Sink>
void put_value(Sink& s, const Value& v) {
  switch (v.type()) {
    case ValueType::kUint8:
      return put_pod(s, v.as<uint8_t>());
    case ValueType::kInt8:
      return put_pod(s, v.as<int8_t>());
    case ValueType::kUint16:
      return put_pod(s, v.as<uint16_t>());
    case ValueType::kInt16:
      return put_pod(s, v.as<int16_t>());
    case ValueType::kUint32:
      return put_pod(s, v.as<uint32_t>());
    case ValueType::kInt32:
      return put_pod(s, v.as<int32_t>());
    case ValueType::kFloat32:
      return put_pod(s, v.as<float>());
    case ValueType::kBool:
      return put_pod<Sink, uint8_t>(s, v.as<bool>() ? 1 : 0);
    case ValueType::kString:
      return put_string(s, v.as_string());
    case ValueType::kArray: {
      const Array& a = v.as_array();
      put_pod<Sink, uint32_t>(s, static_cast<uint32_t>(a.type));
      put_pod<Sink, uint64_t>(s, a.items.size());
      for (const Value& item : a.items) put_value(s, item);
      return;
    }
    case ValueType::kUint64:
      return put_pod(s, v.as<uint64_t>());
    case ValueType::kInt64:
      return put_pod(s, v.as<int64_t>());
    case ValueType::kFloat64:
      return put_pod(s, v.as<double>());
  }
}

template <class Sink>
void pad_to(Sink& s, uint64_t alignment) {
  uint64_t pad = align_up(s.n, alignment) - s.n;
  while (pad > 0) {
    const size_t k = std::min<uint64_t>(pad, sizeof(kZeros));
    s.put(kZeros, k);
    pad -= k;
  }
}

// Arrays built by hand (not through Value::array) may mix item types; GGUF cannot store that.
void check_array(const std::string& key, const Value& v, int depth) {
  if (!v.is<Array>()) return;
  if (depth >= kMaxArrayDepth) {
    throw std::invalid_argument("metadata key '" + key + "' nests arrays too deeply");
  }
  const Array& a = v.as_array();
  for (const Value& item : a.items) {
    if (item.type() != a.type) {
      throw std::invalid_argument("metadata key '" + key + "' is an array of " +
                                  std::string(type_name(a.type)) + " holding a " +
                                  std::string(type_name(item.type())));
    }
    check_array(key, item, depth + 1);
  }
}

}  // namespace

uint64_t Writer::check_tensor(const std::string& name, DType dtype,
                              std::span<const int64_t> ne) const {
  const std::string what = "tensor '" + name + "'";
  if (name.size() > kMaxTensorName) {
    throw std::invalid_argument(what + ": name longer than " + std::to_string(kMaxTensorName) +
                                " bytes");
  }
  for (const PendingTensor& t : tensors_) {
    if (t.name == name) throw std::invalid_argument(what + ": duplicate tensor name");
  }
  if (ne.empty() || ne.size() > static_cast<size_t>(kMaxDims)) {
    throw std::invalid_argument(what + ": needs 1 to 4 dimensions, got " +
                                std::to_string(ne.size()));
  }
  int64_t n = 1;
  for (int64_t d : ne) {
    if (d <= 0) throw std::invalid_argument(what + ": dimension " + std::to_string(d));
    if (__builtin_mul_overflow(n, d, &n)) throw std::invalid_argument(what + ": too large");
  }
  if (ne[0] % block_size(dtype) != 0) {
    throw std::invalid_argument(what + ": ne[0] " + std::to_string(ne[0]) +
                                " is not a multiple of the " + std::string(dtype_name(dtype)) +
                                " block size " + std::to_string(block_size(dtype)));
  }
  uint64_t nbytes = 0;
  if (__builtin_mul_overflow(static_cast<uint64_t>(n / block_size(dtype)), type_size(dtype),
                             &nbytes)) {
    throw std::invalid_argument(what + ": byte size overflows 64 bits");
  }
  return nbytes;
}

void Writer::add_tensor(std::string name, DType dtype, std::span<const int64_t> ne,
                        std::span<const uint8_t> data) {
  const uint64_t nbytes = check_tensor(name, dtype, ne);
  if (data.size() != nbytes) {
    throw std::invalid_argument("tensor '" + name + "': " + std::to_string(data.size()) +
                                " data bytes given, shape and dtype need " +
                                std::to_string(nbytes));
  }
  tensors_.push_back(
      {std::move(name), dtype, std::vector<int64_t>(ne.begin(), ne.end()), nbytes, data, false});
}

void Writer::declare_tensor(std::string name, DType dtype, std::span<const int64_t> ne) {
  const uint64_t nbytes = check_tensor(name, dtype, ne);
  tensors_.push_back(
      {std::move(name), dtype, std::vector<int64_t>(ne.begin(), ne.end()), nbytes, {}, true});
}

uint32_t Writer::alignment() const {
  const Value* a = metadata_.find("general.alignment");
  if (!a) return kDefaultAlignment;
  if (!a->is<uint32_t>() || a->as<uint32_t>() == 0 ||
      (a->as<uint32_t>() & (a->as<uint32_t>() - 1)) != 0) {
    throw std::invalid_argument("general.alignment must be a u32 power of two, got " +
                                a->type_string());
  }
  return a->as<uint32_t>();
}

template <class Sink>
void Writer::emit_header(Sink& s) const {
  const uint32_t align = alignment();
  for (const auto& [key, value] : metadata_) {
    if (key.empty()) throw std::invalid_argument("empty metadata key");
    check_array(key, value, 0);
  }
  s.put("GGUF", 4);
  put_pod<Sink, uint32_t>(s, kVersion);
  put_pod<Sink, uint64_t>(s, tensors_.size());
  put_pod<Sink, uint64_t>(s, metadata_.size());
  for (const auto& [key, value] : metadata_) {
    put_string(s, key);
    put_pod<Sink, uint32_t>(s, static_cast<uint32_t>(value.type()));
    put_value(s, value);
  }
  uint64_t offset = 0;
  for (const PendingTensor& t : tensors_) {
    put_string(s, t.name);
    put_pod<Sink, uint32_t>(s, static_cast<uint32_t>(t.ne.size()));
    for (int64_t d : t.ne) put_pod<Sink, int64_t>(s, d);
    put_pod<Sink, uint32_t>(s, static_cast<uint32_t>(t.dtype));
    put_pod<Sink, uint64_t>(s, offset);
    offset += align_up(t.nbytes, align);
  }
  if (!tensors_.empty()) pad_to(s, align);
}

template <class Sink>
void Writer::emit(Sink& s) const {
  for (const PendingTensor& t : tensors_) {
    if (t.declared_only) {
      throw std::logic_error("gguf writer: tensor '" + t.name +
                             "' was declared without data; write it through a StreamWriter");
    }
  }
  emit_header(s);
  const uint32_t align = alignment();
  for (const PendingTensor& t : tensors_) {
    s.put(t.data.data(), t.data.size());
    pad_to(s, align);
  }
}

uint64_t Writer::file_size() const {
  CountingSink s;
  emit_header(s);
  const uint32_t align = alignment();
  for (const PendingTensor& t : tensors_) s.n += align_up(t.nbytes, align);
  return s.n;
}

void Writer::write_to(std::ostream& out) const {
  StreamSink s{out};
  emit(s);
  if (!out) throw std::runtime_error("gguf writer: stream write failed");
}

std::vector<uint8_t> Writer::to_bytes() const {
  std::ostringstream out;
  write_to(out);
  const std::string s = out.str();
  return std::vector<uint8_t>(s.begin(), s.end());
}

namespace {

// A temp file beside the target, removed unless commit() renamed it into place.
class TempFile {
 public:
  explicit TempFile(const std::string& path) : path_(path) {
    const std::filesystem::path target(path);
    tmp_ = (target.has_parent_path() ? target.parent_path().string() + "/" : "") + "." +
           target.filename().string() + ".tmp-XXXXXX";
    fd_ = mkstemp(tmp_.data());
    if (fd_ < 0) {
      throw std::runtime_error(path + ": cannot create temp file: " + std::strerror(errno));
    }
  }
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(tmp_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  int fd() const { return fd_; }

  void commit() {
    if (fchmod(fd_, 0644) != 0 || fsync(fd_) != 0) {
      throw std::runtime_error(path_ + ": cannot sync: " + std::strerror(errno));
    }
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) {
      throw std::runtime_error(path_ + ": close failed: " + std::strerror(errno));
    }
    if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
      throw std::runtime_error(path_ +
                               ": cannot rename temp file into place: " + std::strerror(errno));
    }
    committed_ = true;
  }

 private:
  std::string path_;
  std::string tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace

void Writer::write(const std::string& path) const {
  TempFile file(path);
  FdSink s{file.fd(), path};
  emit(s);
  s.flush();
  file.commit();
}

struct StreamWriter::Impl {
  const Writer& header;
  std::string path;
  uint32_t align;
  TempFile file;
  FdSink sink;
  size_t next = 0;

  Impl(const Writer& h, const std::string& p, uint32_t a)
      : header(h), path(p), align(a), file(p), sink{file.fd(), path} {}
};

StreamWriter::StreamWriter(const Writer& header, const std::string& path)
    : impl_(std::make_unique<Impl>(header, path, header.alignment())) {
  header.emit_header(impl_->sink);
}

StreamWriter::~StreamWriter() = default;

void StreamWriter::write_tensor(std::span<const uint8_t> bytes) {
  Impl& m = *impl_;
  const auto& tensors = m.header.tensors_;
  if (m.next >= tensors.size()) {
    throw std::invalid_argument(m.path + ": more tensors written than declared");
  }
  const Writer::PendingTensor& t = tensors[m.next];
  if (bytes.size() != t.nbytes) {
    throw std::invalid_argument(m.path + ": tensor '" + t.name +
                                "': " + std::to_string(bytes.size()) + " bytes given, declared " +
                                std::to_string(t.nbytes));
  }
  m.sink.put(bytes.data(), bytes.size());
  pad_to(m.sink, m.align);
  ++m.next;
}

void StreamWriter::finish() {
  Impl& m = *impl_;
  if (m.next != m.header.tensors_.size()) {
    throw std::logic_error(m.path + ": " + std::to_string(m.next) + " of " +
                           std::to_string(m.header.tensors_.size()) + " tensors written");
  }
  m.sink.flush();
  m.file.commit();
}

uint64_t StreamWriter::bytes_written() const { return impl_->sink.n; }

}  // namespace corral::ml::gguf
