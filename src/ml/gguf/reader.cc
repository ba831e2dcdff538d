#include "ml/gguf/reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <optional>
#include <unordered_set>

namespace corral::ml::gguf {

FormatError::FormatError(const std::string& source, uint64_t offset, const std::string& what)
    : std::runtime_error(source + ": at byte offset " + std::to_string(offset) + ": " + what),
      offset_(offset) {}

struct File::Mapping {
  void* addr = nullptr;
  size_t size = 0;
  ~Mapping() {
    if (addr) munmap(addr, size);
  }
};

namespace {

// Smallest encoding of one value of a type; bounds how many items a count can honestly claim.
uint64_t min_encoded_size(ValueType t) {
  switch (t) {
    case ValueType::kUint8:
    case ValueType::kInt8:
    case ValueType::kBool:
      return 1;
    case ValueType::kUint16:
    case ValueType::kInt16:
      return 2;
    case ValueType::kUint32:
    case ValueType::kInt32:
    case ValueType::kFloat32:
      return 4;
    case ValueType::kUint64:
    case ValueType::kInt64:
    case ValueType::kFloat64:
    case ValueType::kString:  // the u64 length
      return 8;
    case ValueType::kArray:  // element type + count
      return 12;
  }
  return 1;
}

std::string printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s.substr(0, 64)) {
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (s.size() > 64) out += "...";
  return out;
}

// Reads little-endian fields at a checked position; every failure names its offset.
class Cursor {
 public:
  Cursor(std::span<const uint8_t> bytes, const std::string& source)
      : bytes_(bytes), source_(source) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return bytes_.size() - pos_; }
  [[noreturn]] void fail(uint64_t offset, const std::string& what) const {
    throw FormatError(source_, offset, what);
  }

  void need(uint64_t n, std::string_view what) const {
    if (n > remaining()) {
      fail(pos_, "truncated " + std::string(what) + ": need " + std::to_string(n) +
                     " bytes, file has " + std::to_string(remaining()) + " left (file size " +
                     std::to_string(bytes_.size()) + ")");
    }
  }

  template <class T>
  T read(std::string_view what) {
    need(sizeof(T), what);
    T x;
    std::memcpy(&x, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return x;
  }

  std::string read_string(std::string_view what) {
    const uint64_t at = pos_;
    const uint64_t len = read<uint64_t>(what);
    if (len > remaining()) {
      fail(at, std::string(what) + " length " + std::to_string(len) + " exceeds the " +
                   std::to_string(remaining()) + " bytes left in the file");
    }
    std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), static_cast<size_t>(len));
    pos_ += len;
    return s;
  }

  void seek(uint64_t pos) { pos_ = pos; }

  uint64_t items_left = kMaxMetadataItems;  // budget for array items, see kMaxMetadataItems

 private:
  std::span<const uint8_t> bytes_;
  const std::string& source_;
  uint64_t pos_ = 0;
};

// `what` ("value of key 'x'") is built once per key, not per array item.
Value read_value(Cursor& c, ValueType type, int depth, const std::string& key,
                 const std::string& what);

Value read_array(Cursor& c, int depth, const std::string& key, const std::string& what) {
  const uint64_t type_at = c.pos();
  const uint32_t raw = c.read<uint32_t>("array element type of key '" + key + "'");
  const std::optional<ValueType> element = value_type_from_raw(raw);
  if (!element) {
    c.fail(type_at, "key '" + key + "' has an array of unknown value type " + std::to_string(raw));
  }
  if (*element == ValueType::kArray && depth + 1 >= kMaxArrayDepth) {
    c.fail(type_at, "key '" + key + "' nests arrays deeper than " + std::to_string(kMaxArrayDepth) +
                        " levels");
  }
  const uint64_t count_at = c.pos();
  const uint64_t n = c.read<uint64_t>("array length of key '" + key + "'");
  if (n > c.remaining() / min_encoded_size(*element)) {
    c.fail(count_at, "key '" + key + "' claims " + std::to_string(n) + " array items of type " +
                         std::string(type_name(*element)) + " but only " +
                         std::to_string(c.remaining()) + " bytes are left in the file");
  }
  if (n > c.items_left) {
    c.fail(count_at, "key '" + key + "' brings the metadata past " +
                         std::to_string(kMaxMetadataItems) + " array items");
  }
  c.items_left -= n;
  Array a;
  a.type = *element;
  a.items.reserve(static_cast<size_t>(n));
  for (uint64_t i = 0; i < n; ++i) {
    a.items.push_back(read_value(c, *element, depth + 1, key, what));
  }
  return Value(std::move(a));
}

Value read_value(Cursor& c, ValueType type, int depth, const std::string& key,
                 const std::string& what) {
  switch (type) {
    case ValueType::kUint8:
      return c.read<uint8_t>(what);
    case ValueType::kInt8:
      return c.read<int8_t>(what);
    case ValueType::kUint16:
      return c.read<uint16_t>(what);
    case ValueType::kInt16:
      return c.read<int16_t>(what);
    case ValueType::kUint32:
      return c.read<uint32_t>(what);
    case ValueType::kInt32:
      return c.read<int32_t>(what);
    case ValueType::kFloat32:
      return c.read<float>(what);
    case ValueType::kBool: {
      const uint64_t at = c.pos();
      const uint8_t b = c.read<uint8_t>(what);
      if (b > 1) c.fail(at, "key '" + key + "' has bool byte " + std::to_string(b) + " (not 0/1)");
      return b == 1;
    }
    case ValueType::kString:
      return c.read_string(what);
    case ValueType::kArray:
      return read_array(c, depth, key, what);
    case ValueType::kUint64:
      return c.read<uint64_t>(what);
    case ValueType::kInt64:
      return c.read<int64_t>(what);
    case ValueType::kFloat64:
      return c.read<double>(what);
  }
  c.fail(c.pos(), "unreachable value type");
}

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

}  // namespace

File::File(File&&) noexcept = default;
File& File::operator=(File&&) noexcept = default;
File::~File() = default;

std::span<const uint8_t> File::tensor_data() const {
  const uint8_t* begin = nullptr;
  const uint8_t* end = nullptr;
  for (const TensorInfo& t : tensors_) {
    if (!t.data) continue;
    if (!begin || t.data < begin) begin = t.data;
    if (!end || t.data + t.nbytes > end) end = t.data + t.nbytes;
  }
  if (!begin) return {};
  return {begin, static_cast<size_t>(end - begin)};
}

File File::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error(path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw std::runtime_error(path + ": cannot stat: " + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw std::runtime_error(path + ": not a regular file");
  }
  File f;
  f.mapping_ = std::make_unique<Mapping>();
  const size_t size = static_cast<size_t>(st.st_size);
  if (size > 0) {
    void* addr = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (addr == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      throw std::runtime_error(path + ": cannot mmap: " + std::strerror(err));
    }
    f.mapping_->addr = addr;
    f.mapping_->size = size;
    f.bytes_ = {static_cast<const uint8_t*>(addr), size};
  }
  ::close(fd);
  f.metadata_ = Metadata(path);
  f.parse_all();
  return f;
}

File File::parse(std::span<const uint8_t> bytes, std::string source) {
  File f;
  f.bytes_ = bytes;
  f.metadata_ = Metadata(std::move(source));
  f.parse_all();
  return f;
}

const TensorInfo* File::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(std::string(name));
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const TensorInfo& File::tensor(std::string_view name) const {
  const TensorInfo* t = find_tensor(name);
  if (!t) throw std::out_of_range(source() + ": no tensor named '" + std::string(name) + "'");
  return *t;
}

void File::parse_all() {
  Cursor c(bytes_, metadata_.source());

  // Header: magic, version, tensor count, key/value count.
  c.need(4, "header (magic)");
  if (std::memcmp(bytes_.data(), "GGUF", 4) != 0) {
    c.fail(0, "bad magic '" +
                  printable(std::string_view(reinterpret_cast<const char*>(bytes_.data()), 4)) +
                  "', expected 'GGUF' (not a GGUF file)");
  }
  c.seek(4);
  version_ = c.read<uint32_t>("header (version)");
  if (version_ == 1) c.fail(4, "unsupported version 1 (GGUFv1 is obsolete; only 2 and 3 are read)");
  if (version_ != 2 && version_ != 3) {
    std::string hint;
    if ((version_ & 0xFFFF) == 0) hint = " (a big-endian file? only little-endian is supported)";
    c.fail(4, "unsupported version " + std::to_string(version_) + hint +
                  "; only versions 2 and 3 are read");
  }
  const uint64_t n_tensors_at = c.pos();
  const uint64_t n_tensors = c.read<uint64_t>("header (tensor count)");
  const uint64_t n_kv_at = c.pos();
  const uint64_t n_kv = c.read<uint64_t>("header (metadata key/value count)");
  // A key/value pair takes at least 13 bytes (length, one key byte, type), a tensor info 24.
  if (n_kv > c.remaining() / 13) {
    c.fail(n_kv_at, "metadata count " + std::to_string(n_kv) + " cannot fit in the " +
                        std::to_string(c.remaining()) + " bytes left in the file");
  }
  if (n_tensors > c.remaining() / 24) {
    c.fail(n_tensors_at, "tensor count " + std::to_string(n_tensors) + " cannot fit in the " +
                             std::to_string(c.remaining()) + " bytes left in the file");
  }

  // Metadata.
  std::optional<uint64_t> alignment_at;
  for (uint64_t i = 0; i < n_kv; ++i) {
    const uint64_t key_at = c.pos();
    std::string key = c.read_string("key of metadata entry " + std::to_string(i));
    if (key.empty()) c.fail(key_at, "metadata entry " + std::to_string(i) + " has an empty key");
    if (metadata_.contains(key)) c.fail(key_at, "duplicate metadata key '" + printable(key) + "'");
    const uint64_t type_at = c.pos();
    const uint32_t raw = c.read<uint32_t>("value type of key '" + printable(key) + "'");
    const std::optional<ValueType> type = value_type_from_raw(raw);
    if (!type) {
      c.fail(type_at, "key '" + printable(key) + "' has unknown value type " + std::to_string(raw));
    }
    if (key == "general.alignment") alignment_at = c.pos();
    const std::string shown = printable(key);
    Value v = read_value(c, *type, 0, shown, "value of key '" + shown + "'");
    metadata_.add(std::move(key), std::move(v));
  }
  if (const Value* a = metadata_.find("general.alignment")) {
    if (!a->is<uint32_t>()) {
      c.fail(*alignment_at, "general.alignment is " + a->type_string() + ", expected u32");
    }
    const uint32_t align = a->as<uint32_t>();
    if (align == 0 || (align & (align - 1)) != 0) {
      c.fail(*alignment_at,
             "general.alignment " + std::to_string(align) + " is not a power of two");
    }
    alignment_ = align;
  }

  // Tensor infos.
  tensors_.reserve(static_cast<size_t>(n_tensors));
  std::vector<uint64_t> offset_field_at(static_cast<size_t>(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    TensorInfo t;
    const uint64_t name_at = c.pos();
    t.name = c.read_string("name of tensor " + std::to_string(i));
    if (tensor_index_.count(t.name)) {
      c.fail(name_at, "duplicate tensor name '" + printable(t.name) + "'");
    }
    const std::string tname = "tensor '" + printable(t.name) + "'";
    const uint64_t dims_at = c.pos();
    const uint32_t n_dims = c.read<uint32_t>("dimension count of " + tname);
    if (n_dims > kMaxDims) {
      c.fail(dims_at, tname + " has " + std::to_string(n_dims) + " dimensions (at most " +
                          std::to_string(kMaxDims) + ")");
    }
    t.n_dims = static_cast<int>(n_dims);
    int64_t n_elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t ne_at = c.pos();
      const int64_t ne = c.read<int64_t>("shape of " + tname);
      if (ne <= 0) {
        c.fail(ne_at, tname + " dimension " + std::to_string(d) + " is " + std::to_string(ne) +
                          " (must be positive)");
      }
      if (__builtin_mul_overflow(n_elements, ne, &n_elements)) {
        c.fail(ne_at, tname + " has more elements than fit in 64 bits");
      }
      t.ne[d] = ne;
    }
    const uint64_t type_at = c.pos();
    const uint32_t raw_type = c.read<uint32_t>("dtype of " + tname);
    const std::optional<DTypeInfo> dt = dtype_info(raw_type);
    if (!dt) {
      c.fail(type_at, tname + " has unknown or unsupported dtype " + std::to_string(raw_type));
    }
    t.dtype = dt->type;
    if (t.ne[0] % dt->block_size != 0) {
      c.fail(type_at, tname + " of dtype " + std::string(dt->name) + " has rows of " +
                          std::to_string(t.ne[0]) + " elements, not a multiple of the block size " +
                          std::to_string(dt->block_size));
    }
    const uint64_t blocks = static_cast<uint64_t>(n_elements / dt->block_size);
    uint64_t nbytes = 0;
    if (__builtin_mul_overflow(blocks, static_cast<uint64_t>(dt->type_size), &nbytes)) {
      c.fail(type_at, tname + " has a byte size that overflows 64 bits");
    }
    t.nbytes = static_cast<size_t>(nbytes);
    offset_field_at[i] = c.pos();
    t.offset = c.read<uint64_t>("data offset of " + tname);
    if (t.offset % alignment_ != 0) {
      c.fail(offset_field_at[i], tname + " data offset " + std::to_string(t.offset) +
                                     " is not a multiple of the alignment " +
                                     std::to_string(alignment_));
    }
    tensor_index_.emplace(t.name, tensors_.size());
    tensors_.push_back(std::move(t));
  }

  // Data section: starts at the next multiple of the alignment (llama.cpp pads only when
  // there are tensors).
  data_offset_ = c.pos();
  if (n_tensors > 0) {
    data_offset_ = align_up(c.pos(), alignment_);
    if (data_offset_ > bytes_.size()) {
      c.fail(c.pos(), "truncated alignment padding before the data section: data would start at " +
                          std::to_string(data_offset_) + ", file size " +
                          std::to_string(bytes_.size()));
    }
  }
  const uint64_t data_size = bytes_.size() - data_offset_;
  for (size_t i = 0; i < tensors_.size(); ++i) {
    TensorInfo& t = tensors_[i];
    if (t.offset > data_size || t.nbytes > data_size - t.offset) {
      c.fail(offset_field_at[i], "data of tensor '" + printable(t.name) + "' (" +
                                     std::to_string(t.nbytes) + " bytes at data offset " +
                                     std::to_string(t.offset) + ") lies outside the file (" +
                                     std::to_string(data_size) + " data bytes from offset " +
                                     std::to_string(data_offset_) + ")");
    }
    t.data = bytes_.data() + data_offset_ + t.offset;
  }
  std::vector<size_t> order(tensors_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return tensors_[a].offset < tensors_[b].offset; });
  for (size_t k = 1; k < order.size(); ++k) {
    const TensorInfo& prev = tensors_[order[k - 1]];
    const TensorInfo& cur = tensors_[order[k]];
    if (prev.offset + prev.nbytes > cur.offset) {
      c.fail(offset_field_at[order[k]],
             "data of tensor '" + printable(cur.name) + "' at data offset " +
                 std::to_string(cur.offset) + " overlaps tensor '" + printable(prev.name) + "' (" +
                 std::to_string(prev.nbytes) + " bytes at " + std::to_string(prev.offset) + ")");
    }
  }
}

}  // namespace corral::ml::gguf
