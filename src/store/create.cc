#include "store/create.h"
#include "store/model.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <stdexcept>

#include "convert/convert.h"
#include "ml/gguf/reader.h"
#include "model/model.h"
#include "store/digest.h"
#include "store/registry/pull.h"

namespace corral::store {
namespace fs = std::filesystem;
namespace {

using Json = nlohmann::ordered_json;

// llama.cpp's llama_ftype numbers (general.file_type) and their names, as Ollama's
// FileType.String() gives them.
std::string ftype_name(int64_t ftype) {
  static const std::map<int64_t, const char*> kNames = {
      {0, "F32"},      {1, "F16"},      {2, "Q4_0"},    {3, "Q4_1"},    {7, "Q8_0"},
      {8, "Q5_0"},     {9, "Q5_1"},     {10, "Q2_K"},   {11, "Q3_K_S"}, {12, "Q3_K_M"},
      {13, "Q3_K_L"},  {14, "Q4_K_S"},  {15, "Q4_K_M"}, {16, "Q5_K_S"}, {17, "Q5_K_M"},
      {18, "Q6_K"},    {19, "IQ2_XXS"}, {20, "IQ2_XS"}, {21, "Q2_K_S"}, {22, "IQ3_XS"},
      {23, "IQ3_XXS"}, {24, "IQ1_S"},   {25, "IQ4_NL"}, {26, "IQ3_S"},  {27, "IQ3_M"},
      {28, "IQ2_S"},   {29, "IQ2_M"},   {30, "IQ4_XS"}, {31, "IQ1_M"},  {32, "BF16"},
  };
  auto it = kNames.find(ftype);
  return it == kNames.end() ? std::string("unknown") : std::string(it->second);
}

struct GgufFacts {
  std::string architecture;
  uint64_t parameter_count = 0;
  std::string file_type;
};

GgufFacts describe(const fs::path& path) {
  const ml::gguf::File f = ml::gguf::File::open(path.string());
  GgufFacts g;
  const ml::gguf::Metadata& m = f.metadata();
  if (const ml::gguf::Value* a = m.find("general.architecture"); a && a->is<std::string>()) {
    g.architecture = a->as_string();
  }
  for (const auto& t : f.tensors()) g.parameter_count += static_cast<uint64_t>(t.n_elements());
  if (const ml::gguf::Value* ft = m.find("general.file_type"); ft && ft->as_integer()) {
    g.file_type = ftype_name(*ft->as_integer());
  } else {
    // No general.file_type: the type of the first matrix, as Ollama's reader falls back.
    g.file_type = "unknown";
    for (const auto& t : f.tensors()) {
      if (t.n_dims >= 2) {
        std::string n(ml::dtype_name(t.dtype));
        for (char& c : n) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        g.file_type = n;
        break;
      }
    }
  }
  return g;
}

// The first matrix of the file stored in a quantized type ("blk.0.attn_q.weight is Q4_0"), or
// nullopt when every matrix is F32, F16 or BF16.
std::optional<std::string> quantized_tensor(const fs::path& path) {
  const ml::gguf::File f = ml::gguf::File::open(path.string());
  for (const auto& t : f.tensors()) {
    if (t.n_dims < 2 || t.dtype == ml::DType::F32 || t.dtype == ml::DType::F16 ||
        t.dtype == ml::DType::BF16)
      continue;
    std::string n(ml::dtype_name(t.dtype));
    for (char& c : n) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return t.name + " is " + n;
  }
  return std::nullopt;
}

bool is_gguf_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  return in.gcount() == 4 && std::string(magic, 4) == "GGUF";
}

class Creator {
 public:
  Creator(Store& store, const CreateOptions& options) : store_(store), options_(options) {}
  // A create that failed or was interrupted leaves no blob of its own behind (blobs another
  // manifest references stay).
  ~Creator() {
    if (added_.empty()) return;
    try {
      store_.remove_unreferenced(added_);
    } catch (const std::exception&) {
      // Best effort: what remains is pruned when the server starts.
    }
  }
  Creator(const Creator&) = delete;
  Creator& operator=(const Creator&) = delete;

  // A finished scratch file moved into blobs/ as the model layer.
  Layer adopt(const fs::path& file) {
    bool created = false;
    const Layer l = store_.adopt_blob_file(file, kMediaModel, &created);
    added(l, created);
    return l;
  }

  void status(const std::string& s, uint64_t completed = 0, uint64_t total = 0) const {
    if (options_.progress) options_.progress({s, completed, total});
  }

  // A GGUF file outside the store made into a blob (skipped when the store already has it).
  Layer import_gguf(const fs::path& path, const char* media_type = kMediaModel) {
    // A truncated or malformed file is refused before it is copied, naming the user's path.
    ml::gguf::File::open(path.string());
    const std::string digest = sha256_file(path);
    const uint64_t size = fs::file_size(path);
    if (!store_.has_blob(digest)) {
      const std::string label = "copying file " + digest;
      bool created = false;
      const Layer copied = store_.add_blob_file(
          path, media_type, [&](uint64_t done, uint64_t total) { percent(label, done, total); },
          &created);
      added(copied, created);
      if (copied.digest != digest) {
        throw std::runtime_error(path.string() + " changed while it was being copied");
      }
    }
    status("copying file " + digest + " 100%", size, size);
    return Layer{media_type, digest, size, {}};
  }

  // A model FROM names that the store lacks, pulled with the pull's statuses (its "success" is
  // left to the create's own).
  void pull(const ModelName& name, const std::string& from) {
    status("pulling model");
    auto po = registry::pull_options_from_env(options_.insecure);
    po.progress = [&](const registry::PullProgress& p) {
      if (p.total) {
        percent(p.status, p.completed, p.total);
      } else if (p.status != "success") {
        status(p.status);
      }
    };
    try {
      registry::pull(store_, name, po);
    } catch (const registry::ManifestNotFound& e) {
      throw FromPullError("FROM " + from + ": " + e.what(), true);
    } catch (const std::exception& e) {
      throw FromPullError("FROM " + from + ": " + e.what(), false);
    }
  }

  // Status lines with a percentage, each percent once (a terminal shows them in place).
  void percent(const std::string& label, uint64_t done, uint64_t total) {
    const int pct = total ? static_cast<int>(done * 100 / total) : 100;
    if (pct == last_percent_ && label == last_label_) return;
    last_percent_ = pct;
    last_label_ = label;
    status(label + " " + std::to_string(pct) + "%", done, total);
  }

  // The model in `src` (a blob, or a file outside the store that is then never copied in)
  // quantized into a new blob; nullopt when it already has that type.
  std::optional<Layer> quantize(const fs::path& src, const convert::QuantType& type) {
    const GgufFacts facts = describe(src);
    if (facts.file_type == type.name) return std::nullopt;
    // As Ollama: only unquantized weights are quantized. Quantizing again compounds the errors
    // of both types, silently.
    if (const std::optional<std::string> q = quantized_tensor(src)) {
      throw std::runtime_error("cannot quantize to " + type.name + ": the model's weights are " +
                               "already quantized (" + *q +
                               "); quantizing needs F32, F16 or BF16 weights (FROM the original "
                               "safetensors folder, or a GGUF of them)");
    }
    const std::string label = "quantizing " + facts.file_type + " model to " + type.name;
    status(label);
    ScratchDir scratch(store_.root());
    const fs::path out = scratch.file("quantized.gguf");
    convert::WriteOptions wo;
    wo.progress = [&](const convert::Progress& p) {
      if (p.total) percent(label, p.completed, p.total);
    };
    convert::quantize_file(src.string(), out.string(), type, wo);
    return adopt(out);
  }

  Layer convert_folder(const fs::path& dir) {
    status("converting model");
    ScratchDir scratch(store_.root());
    const fs::path out = scratch.file("converted.gguf");
    convert::ConvertOptions co;
    co.type = options_.quantize.empty() ? "F16" : convert::parse_quant_type(options_.quantize).name;
    co.write.progress = [&](const convert::Progress& p) {
      if (p.total) percent("converting model", p.completed, p.total);
    };
    convert::convert_hf(dir.string(), out.string(), co);
    return adopt(out);
  }

  // A text layer, with Ollama's "creating new layer" / "using existing layer" line.
  Layer text_layer(const std::string& bytes, const char* media_type) {
    bool created = false;
    Layer l = store_.add_blob_bytes(bytes, media_type, &created);
    created_.insert(l.digest);
    if (!created) created_.erase(l.digest);
    added(l, created);
    return l;
  }

  // A blob this create wrote (not one the store had): removed again unless the create commits.
  void added(const Layer& l, bool created) {
    if (created) added_.push_back(l.digest);
  }
  // The manifest is written: the blobs are the model's now.
  void commit() { added_.clear(); }

  void report_layer(const Layer& l) const {
    status((created_.count(l.digest) ? "creating new layer " : "using existing layer ") + l.digest);
  }

 private:
  Store& store_;
  const CreateOptions& options_;
  std::set<std::string> created_;
  std::vector<std::string> added_;
  int last_percent_ = -1;
  std::string last_label_;
};

}  // namespace

std::string human_number(uint64_t n) {
  char buf[32];
  const auto scaled = [&](double v, int decimals, char suffix) {
    if (v == std::floor(v)) decimals = 0;
    std::snprintf(buf, sizeof buf, "%.*f%c", decimals, v, suffix);
    return std::string(buf);
  };
  if (n >= 1000000000ull) return scaled(static_cast<double>(n) / 1e9, 1, 'B');
  if (n >= 1000000ull) return scaled(static_cast<double>(n) / 1e6, 2, 'M');
  if (n >= 1000ull) {
    std::snprintf(buf, sizeof buf, "%.0fK", static_cast<double>(n) / 1e3);
    return buf;
  }
  return std::to_string(n);
}

namespace {

// Whether a GGUF is a vision projector: llama.cpp's mmproj (general.architecture "clip"), or a
// vision tower without a text model (Ollama's projector blobs: v.* tensors, no token_embd).
bool is_projector(const fs::path& path) {
  const ml::gguf::File f = ml::gguf::File::open(path.string());
  const ml::gguf::Value* a = f.metadata().find("general.architecture");
  if (a && a->is<std::string>() && a->as_string() == "clip") return true;
  bool vision = false;
  for (const auto& t : f.tensors()) {
    if (t.name == "token_embd.weight") return false;
    vision = vision || t.name.starts_with("v.");
  }
  return vision;
}

// A text GGUF and its projector, in either order: checked by loading the pair as the engine will
// (so that a mismatch is an error now, naming both, rather than at the first run).
std::pair<fs::path, fs::path> text_and_projector(const fs::path& a, const fs::path& b) {
  const bool pa = is_projector(a), pb = is_projector(b);
  if (pa == pb) {
    throw std::runtime_error(
        "two model files (" + a.string() + ", " + b.string() +
        ") need to be a text model GGUF "
        "and its vision projector (an mmproj GGUF, general.architecture \"clip\"); " +
        (pa ? std::string("both are projectors") : std::string("neither is a projector")));
  }
  const fs::path& text = pa ? b : a;
  const fs::path& projector = pa ? a : b;
  const ml::gguf::File t = ml::gguf::File::open(text.string());
  const ml::gguf::File p = ml::gguf::File::open(projector.string());
  try {
    model::load(t, &p);
  } catch (const std::exception& e) {
    throw std::runtime_error("the projector " + projector.string() + " does not fit the model " +
                             text.string() + ": " + e.what());
  }
  return {text, projector};
}

}  // namespace

void create_model(Store& store, const ModelName& name, const Modelfile& mf, const fs::path& dir,
                  const CreateOptions& options) {
  Creator c(store, options);
  std::optional<convert::QuantType> qtype;
  if (!options.quantize.empty()) qtype = convert::parse_quant_type(options.quantize);

  c.status("gathering model components");
  std::vector<Layer> base_layers;  // model (and projector) layers, then inherited text layers
  Json config = Json::object();
  Json base_params = Json::object();

  std::error_code ec;
  const fs::path path = expand_modelfile_path(mf.from, dir);
  if (mf.from2) {
    // llama.cpp's vision layout: the text GGUF and its projector, stored as Ollama stores them
    // (a model layer and a projector layer).
    const fs::path other = expand_modelfile_path(*mf.from2, dir);
    for (const fs::path& p : {path, other}) {
      if (!fs::is_regular_file(p, ec) || !is_gguf_file(p)) {
        throw std::runtime_error("FROM " + p.string() +
                                 ": with two FROM lines, each must be a GGUF file (a text model "
                                 "and its vision projector)");
      }
    }
    const auto [text, projector] = text_and_projector(path, other);
    std::optional<Layer> quantized;
    if (qtype) quantized = c.quantize(text, *qtype);
    base_layers.push_back(quantized ? *quantized : c.import_gguf(text));
    base_layers.push_back(c.import_gguf(projector, kMediaProjector));
  } else if (fs::exists(path, ec)) {
    Layer model;
    std::optional<fs::path> projector_file;
    if (fs::is_directory(path, ec)) {
      if (convert::is_hf_folder(path.string())) {
        model = c.convert_folder(path);
      } else {
        std::vector<fs::path> ggufs;
        for (const auto& e : fs::directory_iterator(path, ec)) {
          if (e.path().extension() == ".gguf" && e.is_regular_file(ec)) ggufs.push_back(e.path());
        }
        std::sort(ggufs.begin(), ggufs.end());
        if (ggufs.size() == 2 && is_projector(ggufs[0]) != is_projector(ggufs[1])) {
          // A vision model as llama.cpp ships it: the text GGUF and its mmproj, side by side.
          const auto [text, projector] = text_and_projector(ggufs[0], ggufs[1]);
          ggufs = {text};
          projector_file = projector;
        }
        if (ggufs.size() != 1) {
          throw std::runtime_error(
              "FROM " + path.string() + ": " +
              (ggufs.empty() ? std::string("no safetensors model (config.json and "
                                           "*.safetensors) or .gguf file in this folder")
                             : std::string("several .gguf files in this folder; name one")));
        }
        std::optional<Layer> quantized;
        if (qtype) quantized = c.quantize(ggufs[0], *qtype);
        model = quantized ? *quantized : c.import_gguf(ggufs[0]);
      }
    } else if (is_gguf_file(path)) {
      std::optional<Layer> quantized;
      if (qtype) quantized = c.quantize(path, *qtype);
      model = quantized ? *quantized : c.import_gguf(path);
    } else {
      throw std::runtime_error("FROM " + path.string() + ": not a GGUF file");
    }
    base_layers.push_back(model);
    if (projector_file) base_layers.push_back(c.import_gguf(*projector_file, kMediaProjector));
  } else {
    const bool path_like = looks_like_path(mf.from);
    if (path_like || !ModelName::valid(mf.from)) {
      throw std::runtime_error(missing_path_error("FROM " + mf.from, path) +
                               (path_like ? "" : ", and not a model name"));
    }
    const ModelName from = ModelName::parse(mf.from);
    std::optional<Manifest> base = store.find_manifest(from);
    if (!base) {
      c.pull(from, mf.from);
      base = store.find_manifest(from);
      if (!base) {
        throw std::runtime_error("FROM " + mf.from + ": model '" + mf.from + "' not found");
      }
    }
    try {
      config = Json::parse(store.read_blob(base->config.digest));
      if (!config.is_object()) config = Json::object();
    } catch (const Json::exception&) {
      config = Json::object();
    }
    for (Layer l : base->layers) {
      if (!store.has_blob(l.digest)) {
        throw std::runtime_error("FROM " + mf.from + ": blob " + l.digest + " is missing");
      }
      if (l.media_type == kMediaModel && qtype) {
        if (const std::optional<Layer> q = c.quantize(store.blob_path(l.digest), *qtype)) {
          l = *q;
          config.erase("file_type");
          config.erase("model_type");
        }
      }
      if (l.media_type == kMediaParams) {
        base_params = Json::parse(store.read_blob(l.digest));
        continue;  // merged with the Modelfile's below
      }
      if ((l.media_type == kMediaTemplate && mf.template_text) ||
          (l.media_type == kMediaSystem && mf.system) ||
          (l.media_type == kMediaMessages && !mf.messages.empty()) ||
          (l.media_type == kMediaLicense && !mf.licenses.empty())) {
        continue;  // overridden
      }
      base_layers.push_back(l);
    }
  }

  // The config describes the model layer (as Ollama fills model_format etc. from the GGUF).
  const Layer* model_layer = nullptr;
  for (const Layer& l : base_layers) {
    if (l.media_type == kMediaModel) model_layer = &l;
  }
  if (!model_layer) throw std::runtime_error("FROM " + mf.from + ": the model has no model layer");
  c.status("parsing GGUF");
  const GgufFacts facts = describe(store.blob_path(model_layer->digest));
  Json cfg = Json::object();
  cfg["model_format"] = config.value("model_format", std::string("gguf"));
  cfg["model_family"] = config.value("model_family", facts.architecture);
  Json families = config.contains("model_families") && config["model_families"].is_array()
                      ? config["model_families"]
                      : Json::array();
  if (std::find(families.begin(), families.end(), Json(facts.architecture)) == families.end()) {
    families.push_back(facts.architecture);
  }
  cfg["model_families"] = families;
  cfg["model_type"] = config.value("model_type", human_number(facts.parameter_count));
  cfg["file_type"] = config.value("file_type", facts.file_type);
  const std::string requires_version =
      mf.requires_version.value_or(config.value("requires", std::string()));
  if (!requires_version.empty()) cfg["requires"] = requires_version;

  std::vector<Layer> layers = base_layers;
  if (mf.template_text) layers.push_back(c.text_layer(*mf.template_text, kMediaTemplate));
  if (mf.system) layers.push_back(c.text_layer(*mf.system, kMediaSystem));
  for (const std::string& l : mf.licenses) layers.push_back(c.text_layer(l, kMediaLicense));
  Json params = base_params.is_object() ? base_params : Json::object();
  for (const auto& item : mf.parameters.items()) params[item.key()] = item.value();
  if (!params.empty()) {
    // Sorted keys, as Go encodes a map.
    const nlohmann::json sorted = nlohmann::json::parse(params.dump());
    layers.push_back(c.text_layer(sorted.dump() + "\n", kMediaParams));
  }
  if (!mf.messages.empty()) {
    Json msgs = Json::array();
    for (const ModelfileMessage& m : mf.messages) {
      msgs.push_back({{"role", m.role}, {"content", m.content}});
    }
    layers.push_back(c.text_layer(msgs.dump() + "\n", kMediaMessages));
  }

  Json diff_ids = Json::array();
  for (const Layer& l : layers) diff_ids.push_back(l.digest);
  cfg["architecture"] = "amd64";
  cfg["os"] = "linux";
  cfg["rootfs"] = {{"type", "layers"}, {"diff_ids", diff_ids}};
  Manifest manifest;
  bool config_created = false;
  manifest.config = store.add_blob_bytes(cfg.dump() + "\n", kMediaConfig, &config_created);
  c.added(manifest.config, config_created);
  manifest.layers = layers;

  for (const Layer& l : layers) c.report_layer(l);
  const std::optional<Manifest> old = store.find_manifest(name);
  c.status("writing manifest");
  store.write_manifest(name, manifest);
  c.commit();
  if (old) {
    std::vector<std::string> digests = {old->config.digest};
    for (const Layer& l : old->layers) digests.push_back(l.digest);
    store.remove_unreferenced(digests);
  }
  c.status("success");
}

}  // namespace corral::store
