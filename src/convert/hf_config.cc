#include "convert/hf_config.h"

#include <fstream>
#include <iterator>
#include <stdexcept>

namespace corral::convert {

using Json = nlohmann::json;

HfConfig HfConfig::load(const std::string& dir) {
  const std::string path = dir + "/config.json";
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open (not a Hugging Face model folder?)");
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  Json j;
  try {
    j = Json::parse(text);
  } catch (const Json::exception& e) {
    throw std::runtime_error(path + ": not valid JSON: " + e.what());
  }
  return HfConfig(std::move(j), path);
}

HfConfig::HfConfig(Json j, std::string path) : json_(std::move(j)), path_(std::move(path)) {
  if (!json_.is_object()) throw std::runtime_error(path_ + ": not a JSON object");
  // transformers 5 writes rope_parameters, keyed by layer type when layer types differ; older
  // files have rope_theta beside a rope_scaling object whose kind is "type" or "rope_type".
  rope_ = Json::object();
  if (has("rope_parameters") && json_["rope_parameters"].is_object()) {
    const Json& p = json_["rope_parameters"];
    rope_ =
        p.contains("full_attention") && p["full_attention"].is_object() ? p["full_attention"] : p;
  } else if (has("rope_scaling") && json_["rope_scaling"].is_object()) {
    rope_ = json_["rope_scaling"];
  }
  if (!rope_.contains("rope_type") && rope_.contains("type")) rope_["rope_type"] = rope_["type"];
  if (!rope_.contains("rope_theta") && has("rope_theta")) rope_["rope_theta"] = json_["rope_theta"];
}

std::string HfConfig::architecture() const {
  const auto it = json_.find("architectures");
  if (it == json_.end() || !it->is_array() || it->empty() || !(*it)[0].is_string()) {
    throw std::runtime_error(path_ + ": no \"architectures\" list naming the model class");
  }
  return (*it)[0].get<std::string>();
}

bool HfConfig::has(std::string_view key) const {
  const auto it = json_.find(key);
  return it != json_.end() && !it->is_null();
}

std::optional<int64_t> HfConfig::find_int(std::string_view key) const {
  if (!has(key)) return std::nullopt;
  const Json& v = json_.find(key).value();
  if (!v.is_number_integer() ||
      (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))) {
    throw std::runtime_error(path_ + ": key '" + std::string(key) + "' is " + v.dump() +
                             ", expected an integer");
  }
  return v.get<int64_t>();
}

std::optional<double> HfConfig::find_number(std::string_view key) const {
  if (!has(key)) return std::nullopt;
  const Json& v = json_.find(key).value();
  if (!v.is_number()) {
    throw std::runtime_error(path_ + ": key '" + std::string(key) + "' is " + v.dump() +
                             ", expected a number");
  }
  return v.get<double>();
}

int64_t HfConfig::get_int(std::string_view key) const {
  const auto v = find_int(key);
  if (!v) throw std::runtime_error(path_ + ": missing key '" + std::string(key) + "'");
  return *v;
}

double HfConfig::get_number(std::string_view key) const {
  const auto v = find_number(key);
  if (!v) throw std::runtime_error(path_ + ": missing key '" + std::string(key) + "'");
  return *v;
}

bool HfConfig::get_bool(std::string_view key, bool fallback) const {
  if (!has(key)) return fallback;
  const Json& v = json_.find(key).value();
  if (!v.is_boolean()) {
    throw std::runtime_error(path_ + ": key '" + std::string(key) + "' is " + v.dump() +
                             ", expected true or false");
  }
  return v.get<bool>();
}

std::string HfConfig::rope_type() const {
  const auto it = rope_.find("rope_type");
  return it != rope_.end() && it->is_string() ? it->get<std::string>() : "default";
}

int64_t HfConfig::head_dim() const {
  if (const auto d = find_int("head_dim")) return *d;
  const int64_t n_head = get_int("num_attention_heads");
  if (n_head <= 0) throw std::runtime_error(path_ + ": num_attention_heads must be positive");
  return get_int("hidden_size") / n_head;
}

}  // namespace corral::convert
