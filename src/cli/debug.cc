// `corral debug gguf FILE`: every metadata key (type and value) and the tensor table, as text or
// as one JSON document. Long arrays are cut to their first items unless --verbose.
#include <charconv>
#include <iostream>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/commands.h"
#include "ml/gguf/json.h"
#include "ml/gguf/reader.h"

namespace corral::cli {
namespace {

using ml::gguf::Array;
using ml::gguf::File;
using ml::gguf::Value;
using ml::gguf::ValueType;
using Json = nlohmann::ordered_json;

constexpr size_t kShownItems = 8;

struct DebugOptions {
  std::string path;
  bool json = false;
  bool verbose = false;
};

// Quoted and escaped; bytes that are not UTF-8 become U+FFFD instead of failing.
std::string quoted(const std::string& s) {
  return Json(s).dump(-1, ' ', false, Json::error_handler_t::replace);
}

template <class T>
std::string shortest(T x) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, x);
  return std::string(buf, r.ptr);
}

std::string value_text(const Value& v, bool verbose) {
  switch (v.type()) {
    case ValueType::kUint8:
      return std::to_string(v.as<uint8_t>());
    case ValueType::kInt8:
      return std::to_string(v.as<int8_t>());
    case ValueType::kUint16:
      return std::to_string(v.as<uint16_t>());
    case ValueType::kInt16:
      return std::to_string(v.as<int16_t>());
    case ValueType::kUint32:
      return std::to_string(v.as<uint32_t>());
    case ValueType::kInt32:
      return std::to_string(v.as<int32_t>());
    case ValueType::kUint64:
      return std::to_string(v.as<uint64_t>());
    case ValueType::kInt64:
      return std::to_string(v.as<int64_t>());
    case ValueType::kFloat32:
      return shortest(v.as<float>());
    case ValueType::kFloat64:
      return shortest(v.as<double>());
    case ValueType::kBool:
      return v.as<bool>() ? "true" : "false";
    case ValueType::kString:
      return quoted(v.as_string());
    case ValueType::kArray: {
      const Array& a = v.as_array();
      const size_t shown = verbose ? a.items.size() : std::min(a.items.size(), kShownItems);
      std::string s = "[";
      for (size_t i = 0; i < shown; ++i) {
        if (i > 0) s += ", ";
        s += value_text(a.items[i], verbose);
      }
      if (shown < a.items.size()) s += ", ... " + std::to_string(a.items.size()) + " items";
      return s + "]";
    }
  }
  return "?";
}

Json value_json(const Value& v, bool verbose) {
  return ml::gguf::to_json(v, verbose ? std::numeric_limits<size_t>::max() : kShownItems);
}

std::string shape_text(const ml::gguf::TensorInfo& t) {
  std::string s = "[";
  for (int d = 0; d < t.n_dims; ++d) s += (d ? ", " : "") + std::to_string(t.ne[d]);
  return s + "]";
}

std::string pad(const std::string& s, size_t width) {
  return s.size() >= width ? s + " " : s + std::string(width - s.size(), ' ');
}

void print_json(const File& f, const DebugOptions& o) {
  Json doc;
  doc["file"] = f.source();
  doc["version"] = f.version();
  doc["alignment"] = f.alignment();
  doc["data_offset"] = f.data_offset();
  doc["file_size"] = f.size();
  Json meta = Json::object();
  for (const auto& [key, value] : f.metadata()) {
    Json entry;
    entry["type"] = std::string(ml::gguf::type_name(value.type()));
    if (value.is<Array>()) {
      const Array& a = value.as_array();
      entry["element_type"] = std::string(ml::gguf::type_name(a.type));
      entry["count"] = a.items.size();
      if (!o.verbose && a.items.size() > kShownItems) entry["truncated"] = true;
    }
    entry["value"] = value_json(value, o.verbose);
    meta[key] = std::move(entry);
  }
  doc["metadata"] = std::move(meta);
  Json tensors = Json::array();
  for (const auto& t : f.tensors()) {
    tensors.push_back({{"name", t.name},
                       {"dtype", std::string(ml::dtype_name(t.dtype))},
                       {"shape", t.shape()},
                       {"offset", t.offset},
                       {"nbytes", t.nbytes}});
  }
  doc["tensors"] = std::move(tensors);
  std::cout << doc.dump(2, ' ', false, Json::error_handler_t::replace) << "\n";
}

void print_text(const File& f, const DebugOptions& o) {
  std::ostream& out = std::cout;
  out << f.source() << ": GGUF v" << f.version() << ", " << f.size() << " bytes, alignment "
      << f.alignment() << ", data at " << f.data_offset() << "\n\n";

  size_t key_width = 4;
  for (const auto& [key, value] : f.metadata()) key_width = std::max(key_width, key.size());
  out << "Metadata (" << f.metadata().size() << " keys):\n";
  out << "  " << pad("KEY", key_width + 2) << pad("TYPE", 16) << "VALUE\n";
  for (const auto& [key, value] : f.metadata()) {
    out << "  " << pad(key, key_width + 2) << pad(value.type_string(), 16)
        << value_text(value, o.verbose) << "\n";
  }

  size_t name_width = 4;
  for (const auto& t : f.tensors()) name_width = std::max(name_width, t.name.size());
  out << "\nTensors (" << f.tensors().size() << "):\n";
  out << "  " << pad("NAME", name_width + 2) << pad("DTYPE", 8) << pad("SHAPE", 24)
      << pad("OFFSET", 14) << "BYTES\n";
  for (const auto& t : f.tensors()) {
    out << "  " << pad(t.name, name_width + 2) << pad(std::string(ml::dtype_name(t.dtype)), 8)
        << pad(shape_text(t), 24) << pad(std::to_string(t.offset), 14) << t.nbytes << "\n";
  }
}

}  // namespace

void add_debug_command(CLI::App& app) {
  auto* debug = app.add_subcommand("debug", "Inspect files and internals (for developers)");
  debug->require_subcommand(1);
  auto* gguf =
      debug->add_subcommand("gguf",
                            "Print a GGUF file's metadata (key, type, value) and tensor table "
                            "(name, dtype, shape, offset in the data section, bytes)");
  auto opts = std::make_shared<DebugOptions>();
  gguf->add_option("file", opts->path, "GGUF file")->required();
  gguf->add_flag("--json", opts->json,
                 "Print one JSON document with \"metadata\" (key -> type, value) and \"tensors\"");
  gguf->add_flag("-v,--verbose", opts->verbose,
                 "Print every array item (default: the first 8, then the item count)");
  add_debug_tokenize_commands(*debug);
  add_debug_logits_command(*debug);
  add_debug_tensors_command(*debug);
  add_debug_preprocess_command(*debug);
  add_debug_render_command(*debug);
  add_debug_synth_command(*debug);
  gguf->callback([opts] {
    const File f = File::open(opts->path);
    if (opts->json) {
      print_json(f, *opts);
    } else {
      print_text(f, *opts);
    }
  });
}

}  // namespace corral::cli
