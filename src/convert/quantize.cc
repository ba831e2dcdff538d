#include "convert/quantize.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <stdexcept>

#include "backend/cpu/threadpool.h"
#include "convert/tensor_types.h"
#include "ml/gguf/reader.h"
#include "ml/gguf/writer.h"
#include "ml/quant/quant.h"

namespace corral::convert {
namespace {

using ml::DType;

// llama.cpp's GGML_QNT_VERSION: the block layouts of the current quant formats.
constexpr uint32_t kQuantizationVersion = 2;

struct NamedType {
  const char* name;
  DType base;
  uint32_t ftype;
  const char* canonical;  // where `name` is an alias (llama-quantize's Q4_K means Q4_K_M)
};

constexpr NamedType kTypes[] = {
    {"F32", DType::F32, kFtypeF32, "F32"},
    {"F16", DType::F16, kFtypeF16, "F16"},
    {"BF16", DType::BF16, kFtypeBF16, "BF16"},
    {"Q8_0", DType::Q8_0, kFtypeQ8_0, "Q8_0"},
    {"Q4_0", DType::Q4_0, kFtypeQ4_0, "Q4_0"},
    {"Q4_1", DType::Q4_1, kFtypeQ4_1, "Q4_1"},
    {"Q5_0", DType::Q5_0, kFtypeQ5_0, "Q5_0"},
    {"Q5_1", DType::Q5_1, kFtypeQ5_1, "Q5_1"},
    {"Q2_K", DType::Q2_K, kFtypeQ2_K, "Q2_K"},
    {"Q2_K_S", DType::Q2_K, kFtypeQ2_K_S, "Q2_K_S"},
    {"Q3_K", DType::Q3_K, kFtypeQ3_K_M, "Q3_K_M"},
    {"Q3_K_S", DType::Q3_K, kFtypeQ3_K_S, "Q3_K_S"},
    {"Q3_K_M", DType::Q3_K, kFtypeQ3_K_M, "Q3_K_M"},
    {"Q3_K_L", DType::Q3_K, kFtypeQ3_K_L, "Q3_K_L"},
    {"Q4_K", DType::Q4_K, kFtypeQ4_K_M, "Q4_K_M"},
    {"Q4_K_S", DType::Q4_K, kFtypeQ4_K_S, "Q4_K_S"},
    {"Q4_K_M", DType::Q4_K, kFtypeQ4_K_M, "Q4_K_M"},
    {"Q5_K", DType::Q5_K, kFtypeQ5_K_M, "Q5_K_M"},
    {"Q5_K_S", DType::Q5_K, kFtypeQ5_K_S, "Q5_K_S"},
    {"Q5_K_M", DType::Q5_K, kFtypeQ5_K_M, "Q5_K_M"},
    {"Q6_K", DType::Q6_K, kFtypeQ6_K, "Q6_K"},
};

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// The name a file's general.file_type stands for ("F16", "Q4_K_M"), else "".
std::string ftype_name(uint32_t ftype) {
  for (const NamedType& t : kTypes) {
    if (t.ftype == ftype) return t.canonical;
  }
  return {};
}

int64_t n_elements(const std::vector<int64_t>& ne) {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  return n;
}

// Converts one tensor to `to`, rows split over the pool's threads. From `raw` when it holds the
// source dtype (dequantized a row at a time, so no f32 copy of the whole tensor), else from
// read_f32.
class TensorConverter {
 public:
  explicit TensorConverter(int n_threads) : pool_(n_threads), scratch_(n_threads) {}

  void convert(const TensorSource& src, DType to, std::vector<uint8_t>& out) {
    const int64_t ncols = src.ne[0];
    const int64_t nrows = n_elements(src.ne) / ncols;
    const size_t out_row = ml::row_size(to, ncols);
    out.resize(out_row * static_cast<size_t>(nrows));
    uint8_t* dst = out.data();

    const float* f32 = nullptr;
    const uint8_t* raw = nullptr;
    size_t in_row = 0;
    if (src.dtype == DType::F32 && !src.raw.empty()) {
      f32 = reinterpret_cast<const float*>(src.raw.data());
    } else if (!src.raw.empty()) {
      raw = src.raw.data();
      in_row = ml::row_size(src.dtype, ncols);
    } else {
      if (!src.read_f32) {
        throw std::invalid_argument("tensor '" + src.name + "': no data to read");
      }
      f32_.resize(static_cast<size_t>(nrows * ncols));
      src.read_f32(f32_.data());
      f32 = f32_.data();
    }
    const DType from = src.dtype;
    auto work = [&](int ith, int nth) {
      const int64_t r0 = nrows * ith / nth, r1 = nrows * (ith + 1) / nth;
      std::vector<float>& row = scratch_[static_cast<size_t>(ith)];
      if (raw) row.resize(static_cast<size_t>(ncols));
      for (int64_t r = r0; r < r1; ++r) {
        const float* x = f32 ? f32 + r * ncols : row.data();
        if (!f32)
          ml::quant::dequantize_row(from, raw + static_cast<size_t>(r) * in_row, row.data(), ncols);
        ml::quant::quantize_row(to, x, dst + static_cast<size_t>(r) * out_row, ncols);
      }
    };
    const int nth = static_cast<int>(std::min<int64_t>(pool_.size(), nrows));
    pool_.run(std::max(nth, 1), work);
  }

 private:
  backend::cpu::ThreadPool pool_;
  std::vector<std::vector<float>> scratch_;
  std::vector<float> f32_;
};

void check_source(const TensorSource& t) {
  if (t.ne.empty() || t.ne.size() > 4) {
    throw std::invalid_argument("tensor '" + t.name + "': needs 1 to 4 dimensions");
  }
  for (int64_t d : t.ne) {
    if (d <= 0)
      throw std::invalid_argument("tensor '" + t.name + "': dimension " + std::to_string(d));
  }
  if (!t.raw.empty()) {
    const int64_t n = n_elements(t.ne);
    if (n % ml::block_size(t.dtype) != 0 || t.ne[0] % ml::block_size(t.dtype) != 0 ||
        t.raw.size() != ml::row_size(t.dtype, t.ne[0]) * static_cast<size_t>(n / t.ne[0])) {
      throw std::invalid_argument("tensor '" + t.name + "': " + std::to_string(t.raw.size()) +
                                  " source bytes do not fit its shape as " +
                                  std::string(ml::dtype_name(t.dtype)));
    }
  } else if (!t.read_f32) {
    throw std::invalid_argument("tensor '" + t.name + "': no data to read");
  }
}

}  // namespace

QuantType parse_quant_type(std::string_view name) {
  const std::string wanted = upper(name);
  for (const NamedType& t : kTypes) {
    if (wanted == t.name) return {t.canonical, t.base, t.ftype};
  }
  std::string valid;
  for (const std::string& n : quant_type_names()) valid += (valid.empty() ? "" : ", ") + n;
  throw std::invalid_argument("unknown quantization type '" + std::string(name) +
                              "' (valid: " + valid + ")");
}

std::vector<std::string> quant_type_names() {
  std::vector<std::string> names;
  for (const NamedType& t : kTypes) names.emplace_back(t.name);
  return names;
}

void write_model(ml::gguf::Metadata metadata, std::span<const TensorSource> tensors,
                 const QuantType& type, const std::string& path, const WriteOptions& options) {
  std::vector<TensorDesc> descs;
  descs.reserve(tensors.size());
  for (const TensorSource& t : tensors) {
    check_source(t);
    descs.push_back({t.name, t.ne, t.dtype});
  }
  const std::vector<DType> types = tensor_types(type, ModelShape::from_metadata(metadata), descs);

  const bool any_quantized =
      std::any_of(types.begin(), types.end(), [](DType t) { return ml::is_quantized(t); });
  metadata.set("general.file_type", type.ftype);
  if (any_quantized) {
    metadata.set("general.quantization_version", kQuantizationVersion);
  } else {
    metadata.erase("general.quantization_version");
  }

  ml::gguf::Writer header(std::move(metadata));
  uint64_t total = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    header.declare_tensor(tensors[i].name, types[i], tensors[i].ne);
    total += ml::row_size(types[i], tensors[i].ne[0]) *
             static_cast<uint64_t>(n_elements(tensors[i].ne) / tensors[i].ne[0]);
  }

  const int n_threads = options.n_threads > 0 ? options.n_threads : backend::cpu::physical_cores();
  TensorConverter converter(n_threads);
  ml::gguf::StreamWriter out(header, path);
  const std::string status = "converting to " + type.name;
  uint64_t done = 0;
  if (options.progress) options.progress({status, 0, total});
  std::vector<uint8_t> buffer;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorSource& t = tensors[i];
    if (types[i] == t.dtype && !t.raw.empty()) {
      out.write_tensor(t.raw);
      done += t.raw.size();
    } else {
      converter.convert(t, types[i], buffer);
      out.write_tensor(buffer);
      done += buffer.size();
    }
    if (options.progress) options.progress({status, done, total});
  }
  out.finish();
}

void quantize_file(const std::string& in, const std::string& out, const QuantType& type,
                   const WriteOptions& options) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(out, ec) && fs::equivalent(in, out, ec)) {
    throw std::invalid_argument("output " + out + " is the input file; choose another path");
  }
  {
    std::ifstream f(in, std::ios::binary);
    if (!f) throw std::runtime_error(in + ": cannot open: " + std::strerror(errno));
    char magic[4] = {};
    f.read(magic, 4);
    if (f.gcount() != 4 || std::memcmp(magic, "GGUF", 4) != 0) {
      throw std::runtime_error(in + ": not a GGUF model file (no GGUF magic at the start)");
    }
  }
  const ml::gguf::File file = ml::gguf::File::open(in);

  ml::gguf::Metadata metadata(out);
  for (const auto& [key, value] : file.metadata()) {
    // A quantized file is one file, whatever the input's split was.
    if (key.starts_with("split.")) continue;
    metadata.add(key, value);
  }

  std::vector<TensorSource> sources;
  sources.reserve(file.tensors().size());
  std::map<DType, uint64_t> bytes_by_type;
  for (const ml::gguf::TensorInfo& t : file.tensors()) {
    if (t.n_dims >= 2) bytes_by_type[t.dtype] += t.nbytes;
    const ml::gguf::TensorInfo* info = &t;
    sources.push_back({t.name, t.shape(), t.dtype, t.bytes(), [info](float* y) {
                         ml::quant::dequantize_row(info->dtype, info->data, y, info->n_elements());
                       }});
  }

  // "quantizing F16 model to Q4_K_M", as llama-quantize and Ollama say it.
  std::string from =
      ftype_name(static_cast<uint32_t>(file.metadata().contains("general.file_type")
                                           ? file.metadata().get_integer("general.file_type")
                                           : 9999));
  if (from.empty() && !bytes_by_type.empty()) {
    const auto most =
        std::max_element(bytes_by_type.begin(), bytes_by_type.end(),
                         [](const auto& a, const auto& b) { return a.second < b.second; });
    from = upper(ml::dtype_name(most->first));
  }
  WriteOptions write = options;
  if (options.progress) {
    const std::string status =
        "quantizing " + (from.empty() ? std::string() : from + " ") + "model to " + type.name;
    write.progress = [&options, status](const Progress& p) {
      options.progress({status, p.completed, p.total});
    };
  }
  write_model(std::move(metadata), sources, type, out, write);
}

}  // namespace corral::convert
