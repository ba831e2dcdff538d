#include "store/model.h"

#include <stdexcept>

namespace corral::store {
namespace fs = std::filesystem;

bool is_model_path(const std::string& text) {
  std::error_code ec;
  return text.ends_with(".gguf") || fs::is_regular_file(text, ec);
}

bool looks_like_path(const std::string& text) {
  return text.starts_with(".") || text.starts_with("/") || text.starts_with("~") ||
         text.ends_with(".gguf");
}

std::string missing_path_error(const std::string& what, const fs::path& resolved) {
  std::string e = what + ": no such file or folder";
  if (!resolved.empty() && resolved.string() != what) e += " (" + resolved.string() + ")";
  const size_t hash = what.find('#');
  if (hash != std::string::npos && hash > 0 && (what[hash - 1] == ' ' || what[hash - 1] == '\t'))
    e += "; a '#' starts a comment only at the beginning of a line";
  return e;
}

ModelInfo resolve(const Store& store, const std::string& name_or_path) {
  ModelInfo info;
  if (is_model_path(name_or_path)) {
    info.name = name_or_path;
    info.gguf = name_or_path;
    return info;
  }
  if ((name_or_path.starts_with("/") || name_or_path.starts_with(".") ||
       name_or_path.starts_with("~")) &&
      !ModelName::valid(name_or_path)) {
    throw std::runtime_error(name_or_path + ": no such file or folder");
  }
  const ModelName name = ModelName::parse(name_or_path);
  std::optional<Manifest> m = store.find_manifest(name);
  if (!m) {
    throw std::runtime_error("model '" + name_or_path +
                             "' not found (see 'corral list'; 'corral create' makes one)");
  }
  return resolve_manifest(store, name, std::move(*m));
}

ModelInfo resolve_manifest(const Store& store, const ModelName& name, Manifest manifest) {
  ModelInfo info;
  std::optional<Manifest> m = std::move(manifest);
  info.name = name.display();
  info.ref = name;
  using Json = nlohmann::ordered_json;
  const auto parse_json = [&](const Layer& l) {
    try {
      return Json::parse(store.read_blob(l.digest));
    } catch (const Json::exception& e) {
      throw std::runtime_error("model '" + info.name + "': layer " + l.digest + " (" +
                               l.media_type + ") is not valid JSON: " + e.what());
    }
  };
  bool have_model = false;
  for (const Layer& l : m->layers) {
    if (l.media_type == kMediaModel) {
      if (have_model) {
        throw std::runtime_error("model '" + info.name +
                                 "' has several model layers (split models are not supported yet)");
      }
      store.verify_blob(l.digest);
      info.gguf = store.blob_path(l.digest);
      have_model = true;
    } else if (l.media_type == kMediaProjector) {
      if (!info.projector.empty()) {
        throw std::runtime_error("model '" + info.name + "' has several projector layers");
      }
      store.verify_blob(l.digest);
      info.projector = store.blob_path(l.digest);
    } else if (l.media_type == kMediaAdapter) {
      throw std::runtime_error("model '" + info.name +
                               "' has an adapter layer: adapters are not "
                               "supported yet");
    } else if (l.media_type == kMediaTemplate) {
      info.template_text = store.read_blob(l.digest);
    } else if (l.media_type == kMediaSystem) {
      info.system = store.read_blob(l.digest);
    } else if (l.media_type == kMediaParams) {
      Json p = parse_json(l);
      if (!p.is_object()) {
        throw std::runtime_error("model '" + info.name + "': the params layer is not an object");
      }
      info.parameters = std::move(p);
    } else if (l.media_type == kMediaMessages) {
      Json msgs = parse_json(l);
      if (!msgs.is_array()) {
        throw std::runtime_error("model '" + info.name + "': the messages layer is not a list");
      }
      info.messages = std::move(msgs);
    } else if (l.media_type == kMediaLicense) {
      info.licenses.push_back(store.read_blob(l.digest));
    }
    // Unknown media types are left for the code that knows them.
  }
  if (!have_model) throw std::runtime_error("model '" + info.name + "' has no model layer");
  if (!m->config.digest.empty() && store.has_blob(m->config.digest)) {
    try {
      info.config = Json::parse(store.read_blob(m->config.digest));
    } catch (const Json::exception&) {
      info.config = Json::object();  // the config is descriptive only; running needs none of it
    }
  }
  info.manifest = std::move(m);
  return info;
}

}  // namespace corral::store
