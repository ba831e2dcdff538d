#include "server/show.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <string>

#include "ml/gguf/json.h"
#include "model/model.h"
#include "parse/thinking.h"
#include "server/images.h"
#include "server/server.h"
#include "store/show.h"
#include "template/prompt.h"

namespace corral::server {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

namespace {

// One GGUF metadata value as JSON; arrays become null unless `arrays` (Ollama leaves the
// vocabulary out of /api/show unless verbose).
Json gguf_value(const ml::gguf::Value& v, bool arrays) {
  if (v.type() == ml::gguf::ValueType::kArray && !arrays) return nullptr;
  return ml::gguf::to_json(v);
}

}  // namespace

Json config_of(const store::Store& st, const store::Manifest& m) {
  try {
    Json c = Json::parse(st.read_blob(m.config.digest));
    if (c.is_object()) return c;
  } catch (const std::exception&) {
    // The config only describes the model; a missing or broken one leaves the details empty.
  }
  return Json::object();
}

// Ollama's api.ModelDetails from a model's config blob.
Json details_of(const Json& config) {
  const auto str = [&](const char* key) {
    const auto it = config.find(key);
    return it != config.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  Json d = Json::object();
  d["parent_model"] = str("parent_model");
  d["format"] = str("model_format").empty() ? std::string("gguf") : str("model_format");
  d["family"] = str("model_family");
  const auto families = config.find("model_families");
  d["families"] = families != config.end() && families->is_array() ? *families : Json(nullptr);
  d["parameter_size"] = str("model_type");
  d["quantization_level"] = str("file_type");
  return d;
}

std::chrono::system_clock::time_point to_system(fs::file_time_type t) {
  return std::chrono::time_point_cast<std::chrono::system_clock::duration>(
      std::chrono::file_clock::to_sys(t));
}

// Ollama's capabilities: what the model file and its template can do.
Json capabilities_of(const store::ModelInfo& info, const ml::gguf::File& f) {
  const ml::gguf::Metadata& m = f.metadata();
  Json caps = Json::array();
  caps.push_back(model::is_embedding_model(m) ? "embedding" : "completion");
  std::string tmpl = info.template_text.value_or("");
  if (const ml::gguf::Value* t = m.find("tokenizer.chat_template"); t && t->is<std::string>()) {
    if (!info.template_text) tmpl = t->as_string();
  }
  if (tmpl.find(".Tools") != std::string::npos || tmpl.find("tools") != std::string::npos) {
    caps.push_back("tools");
  }
  if (tmpl.find(".Suffix") != std::string::npos) caps.push_back("insert");
  if (has_vision(info)) caps.push_back("vision");
  // Thinking as the generation routes read it: the template has thinking tags.
  const std::optional<tmpl::PromptTemplate> chosen = tmpl::choose_template(info.template_text, m);
  if (chosen && parse::thinking_tags(*chosen)) {
    caps.push_back("thinking");
  }
  return caps;
}

Json show_json(const store::Store& store, const store::ModelInfo& info, bool verbose) {
  const ml::gguf::File f = ml::gguf::File::open(info.gguf.string());

  Json out = Json::object();
  if (!info.licenses.empty()) {
    std::string all;
    for (size_t i = 0; i < info.licenses.size(); ++i) all += (i ? "\n" : "") + info.licenses[i];
    out["license"] = all;
  }
  try {
    out["modelfile"] = store::format_modelfile(store::modelfile_of(info), info.name);
  } catch (const store::ModelfileError&) {
    // A value no Modelfile can quote; the other fields still describe the model.
  }
  if (!info.parameters.empty()) {
    std::string p = store::format_parameters(info.parameters);
    if (!p.empty()) p.pop_back();
    out["parameters"] = p;
  }
  if (info.template_text) {
    out["template"] = *info.template_text;
  } else if (const ml::gguf::Value* t = f.metadata().find("tokenizer.chat_template");
             t && t->is<std::string>()) {
    out["template"] = t->as_string();
  }
  if (info.system) out["system"] = *info.system;
  out["details"] = details_of(info.config);
  if (!info.messages.empty()) out["messages"] = info.messages;

  Json model_info = Json::object();
  uint64_t n_params = 0;
  for (const auto& t : f.tensors()) n_params += static_cast<uint64_t>(t.n_elements());
  for (const auto& [key, value] : f.metadata()) {
    if (key == "general.name" || key == "tokenizer.chat_template") continue;
    model_info[key] = gguf_value(value, verbose);
  }
  model_info["general.parameter_count"] = n_params;
  out["model_info"] = model_info;
  if (verbose) {
    Json tensors = Json::array();
    for (const auto& t : f.tensors()) {
      std::string type(ml::dtype_name(t.dtype));
      std::transform(type.begin(), type.end(), type.begin(), ::toupper);
      tensors.push_back({{"name", t.name}, {"type", type}, {"shape", t.shape()}});
    }
    out["tensors"] = tensors;
  }
  out["capabilities"] = capabilities_of(info, f);
  for (const store::ModelEntry& e : store.list()) {
    if (info.ref && e.name == *info.ref) out["modified_at"] = format_time(to_system(e.modified));
  }
  return out;
}

}  // namespace corral::server
