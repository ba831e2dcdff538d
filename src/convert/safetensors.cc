#include "convert/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "ml/fp16.h"

namespace corral::convert {

namespace {

using nlohmann::ordered_json;

// The safetensors library refuses headers above 100 MB; so do we, before allocating anything.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

// Element sizes of every dtype the format defines; 0 for names it does not.
size_t dtype_size(std::string_view dtype) {
  static const std::pair<std::string_view, size_t> kSizes[] = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"F8_E8M0", 1},
      {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},     {"U32", 4},
      {"F32", 4},  {"I64", 8}, {"U64", 8}, {"F64", 8},     {"C64", 8},
  };
  for (const auto& entry : kSizes) {
    if (entry.first == dtype) return entry.second;
  }
  return 0;
}

std::string system_error(const std::string& path, const char* what) {
  return path + ": " + what + ": " + std::strerror(errno);
}

}  // namespace

int64_t SafetensorsTensor::n_elements() const {
  int64_t n = 1;
  for (const int64_t d : shape) n *= d;
  return n;
}

void SafetensorsTensor::read_f32(float* out) const {
  const size_t n = static_cast<size_t>(n_elements());
  const uint8_t* p = data.data();
  if (dtype == "F32") {
    std::memcpy(out, p, n * sizeof(float));
  } else if (dtype == "F16" || dtype == "BF16") {
    const bool bf16 = dtype == "BF16";
    for (size_t i = 0; i < n; ++i) {
      const uint16_t h = static_cast<uint16_t>(p[2 * i] | (p[2 * i + 1] << 8));
      out[i] = bf16 ? ml::bf16_to_fp32(h) : ml::fp16_to_fp32(h);
    }
  } else {
    throw SafetensorsError((file ? *file : std::string("safetensors")) + ": tensor '" + name +
                           "' has dtype " + dtype +
                           ", which cannot be converted (supported: F32, F16, BF16)");
  }
}

std::unique_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw SafetensorsError(system_error(path, "cannot open"));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const std::string msg = system_error(path, "cannot stat");
    ::close(fd);
    throw SafetensorsError(msg);
  }
  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = path;
  f->map_size_ = static_cast<size_t>(st.st_size);
  if (f->map_size_ > 0) {
    void* m = ::mmap(nullptr, f->map_size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      const std::string msg = system_error(path, "cannot map");
      ::close(fd);
      throw SafetensorsError(msg);
    }
    f->map_ = m;
  }
  ::close(fd);
  f->bytes_ = {static_cast<const uint8_t*>(f->map_), f->map_size_};
  f->parse_header();
  return f;
}

std::unique_ptr<SafetensorsFile> SafetensorsFile::parse(std::span<const uint8_t> bytes,
                                                        std::string source) {
  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = std::move(source);
  f->bytes_ = bytes;
  f->parse_header();
  return f;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(map_, map_size_);
}

const SafetensorsTensor* SafetensorsFile::find(std::string_view name) const {
  const auto it = index_.find(std::string(name));
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

void SafetensorsFile::parse_header() {
  const auto fail = [&](const std::string& what) -> void {
    throw SafetensorsError(path_ + ": " + what);
  };
  if (bytes_.size() < 8)
    fail("too short for a safetensors header (" + std::to_string(bytes_.size()) + " bytes)");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = header_len << 8 | bytes_[static_cast<size_t>(i)];
  if (header_len > kMaxHeaderBytes) {
    fail("header length " + std::to_string(header_len) + " exceeds the 100 MB limit");
  }
  if (header_len > bytes_.size() - 8) {
    fail("header length " + std::to_string(header_len) + " runs past the end of the file (" +
         std::to_string(bytes_.size()) + " bytes)");
  }
  const std::string_view text(reinterpret_cast<const char*>(bytes_.data() + 8),
                              static_cast<size_t>(header_len));
  const std::span<const uint8_t> data = bytes_.subspan(8 + static_cast<size_t>(header_len));

  // nlohmann keeps one value per key silently; names must be unique, so watch the keys go by.
  std::unordered_set<std::string> seen;
  std::string duplicate;
  ordered_json header;
  try {
    header = ordered_json::parse(
        text.begin(), text.end(),
        [&](int depth, ordered_json::parse_event_t event, ordered_json& parsed) {
          if (event == ordered_json::parse_event_t::key && depth == 1) {
            std::string key = parsed.get<std::string>();
            if (!seen.insert(key).second && duplicate.empty()) duplicate = std::move(key);
          }
          return true;
        });
  } catch (const ordered_json::exception& e) {
    fail(std::string("header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) fail("header is not a JSON object");
  if (!duplicate.empty()) fail("tensor '" + duplicate + "' appears twice in the header");

  struct Range {
    uint64_t begin, end;
    size_t tensor;
  };
  std::vector<Range> ranges;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    if (name == "__metadata__") continue;
    const ordered_json& t = it.value();
    const std::string where = "tensor '" + name + "'";
    if (!t.is_object()) fail(where + ": entry is not an object");
    const auto dtype = t.find("dtype");
    const auto shape = t.find("shape");
    const auto offsets = t.find("data_offsets");
    if (dtype == t.end() || !dtype->is_string()) fail(where + ": missing or non-string dtype");
    if (shape == t.end() || !shape->is_array()) fail(where + ": missing or non-array shape");
    if (offsets == t.end() || !offsets->is_array() || offsets->size() != 2) {
      fail(where + ": data_offsets must be an array of two offsets");
    }
    SafetensorsTensor tensor;
    tensor.name = name;
    tensor.dtype = dtype->get<std::string>();
    const size_t elem = dtype_size(tensor.dtype);
    if (elem == 0) fail(where + ": unknown dtype '" + tensor.dtype + "'");

    // Count bytes, refusing any partial product above INT64_MAX: n_elements() multiplies the
    // same dimensions in the same order in int64, even when a later dimension is 0.
    uint64_t n_bytes = elem;
    for (const ordered_json& d : *shape) {
      if (!d.is_number_integer() ||
          (d.is_number_integer() && !d.is_number_unsigned() && d.get<int64_t>() < 0)) {
        fail(where + ": shape " + shape->dump() + " has a negative or non-integer dimension");
      }
      const uint64_t dim = d.get<uint64_t>();
      if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          (dim != 0 &&
           n_bytes > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / dim)) {
        fail(where + ": shape " + shape->dump() + " overflows");
      }
      n_bytes *= dim;
      tensor.shape.push_back(static_cast<int64_t>(dim));
    }
    for (const ordered_json& o : *offsets) {
      if (!o.is_number_unsigned())
        fail(where + ": data_offsets " + offsets->dump() + " are not non-negative integers");
    }
    const uint64_t begin = (*offsets)[0].get<uint64_t>(), end = (*offsets)[1].get<uint64_t>();
    if (begin > end || end > data.size()) {
      fail(where + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
           "] are outside the data section of " + std::to_string(data.size()) + " bytes");
    }
    if (end - begin != n_bytes) {
      fail(where + ": data_offsets span " + std::to_string(end - begin) + " bytes but " +
           tensor.dtype + " " + shape->dump() + " needs " + std::to_string(n_bytes));
    }
    tensor.data = data.subspan(static_cast<size_t>(begin), static_cast<size_t>(end - begin));
    tensor.file = &path_;
    ranges.push_back({begin, end, tensors_.size()});
    index_.emplace(name, tensors_.size());
    tensors_.push_back(std::move(tensor));
  }
  std::sort(ranges.begin(), ranges.end(),
            [](const Range& a, const Range& b) { return a.begin < b.begin; });
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].begin < ranges[i - 1].end) {
      fail("tensors '" + tensors_[ranges[i - 1].tensor].name + "' and '" +
           tensors_[ranges[i].tensor].name + "' overlap in the data section");
    }
  }
}

Checkpoint Checkpoint::open(const std::string& dir) {
  Checkpoint c;
  const std::string index_path = dir + "/model.safetensors.index.json";
  std::ifstream index_in(index_path, std::ios::binary);
  if (!index_in) {
    c.files_.push_back(SafetensorsFile::open(dir + "/model.safetensors"));
    for (const SafetensorsTensor& t : c.files_.back()->tensors()) {
      c.tensors_.push_back(&t);
      c.index_.emplace(t.name, &t);
    }
    return c;
  }
  const std::string text{std::istreambuf_iterator<char>(index_in),
                         std::istreambuf_iterator<char>()};
  ordered_json index;
  try {
    index = ordered_json::parse(text);
  } catch (const ordered_json::exception& e) {
    throw SafetensorsError(index_path + ": not valid JSON: " + e.what());
  }
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
    throw SafetensorsError(index_path + ": no weight_map object");
  }
  // Shards in first-mention order, so that tensors come out in the order the index lists them.
  std::vector<std::string> shards;
  std::unordered_map<std::string, size_t> shard_ids;
  for (const auto& [name, file] : index["weight_map"].items()) {
    if (!file.is_string()) {
      throw SafetensorsError(index_path + ": weight_map['" + name + "'] is not a file name");
    }
    const std::string shard = file.get<std::string>();
    // A plain file name: nothing that could reach outside the folder.
    if (shard.empty() || shard == "." || shard == ".." ||
        shard.find_first_of("/\\") != std::string::npos || shard.find('\0') != std::string::npos) {
      throw SafetensorsError(index_path + ": weight_map['" + name + "'] names shard '" + shard +
                             "', which is not a file name inside " + dir);
    }
    if (shard_ids.emplace(shard, shards.size()).second) shards.push_back(shard);
  }
  for (const std::string& shard : shards) {
    c.files_.push_back(SafetensorsFile::open(dir + "/" + shard));
  }
  for (const auto& [name, file] : index["weight_map"].items()) {
    const SafetensorsFile& shard = *c.files_[shard_ids.at(file.get<std::string>())];
    const SafetensorsTensor* t = shard.find(name);
    if (t == nullptr) {
      throw SafetensorsError(index_path + ": tensor '" + name + "' is mapped to " + shard.path() +
                             ", which does not hold it");
    }
    c.tensors_.push_back(t);
    c.index_.emplace(name, t);
  }
  return c;
}

const SafetensorsTensor* Checkpoint::find(std::string_view name) const {
  const auto it = index_.find(std::string(name));
  return it == index_.end() ? nullptr : it->second;
}

}  // namespace corral::convert
