#include "store/show.h"

#include <cstdio>
#include <filesystem>

namespace corral::store {

std::string format_parameters(const nlohmann::ordered_json& params) {
  std::string out;
  const auto line = [&](const std::string& k, const nlohmann::ordered_json& v) {
    char key[64];
    std::snprintf(key, sizeof key, "%-30s", k.c_str());
    out += std::string(key) + " " + v.dump() + "\n";
  };
  for (const auto& item : params.items()) {
    if (item.value().is_array()) {
      for (const auto& v : item.value()) line(item.key(), v);
    } else {
      line(item.key(), item.value());
    }
  }
  return out;
}

Modelfile modelfile_of(const ModelInfo& info) {
  Modelfile mf;
  mf.from = std::filesystem::absolute(info.gguf).string();
  mf.template_text = info.template_text;
  mf.system = info.system;
  mf.parameters = info.parameters;
  for (const auto& m : info.messages) {
    if (m.is_object()) mf.messages.push_back({m.value("role", ""), m.value("content", "")});
  }
  mf.licenses = info.licenses;
  if (info.config.contains("requires") && info.config["requires"].is_string()) {
    mf.requires_version = info.config["requires"].get<std::string>();
  }
  return mf;
}

}  // namespace corral::store
