#include "cli/context_note.h"

#include <sstream>

#include "runner/memory.h"
#include "store/names.h"

namespace corral::cli {
namespace {

// A whole positive number from a JSON number or a string of one (a PARAMETER's value).
std::optional<int64_t> positive(const nlohmann::json& v) {
  if (v.is_number_integer() && v.get<int64_t>() > 0) return v.get<int64_t>();
  if (v.is_number_float() && v.get<double>() >= 1 && v.get<double>() < 1e15) {
    return static_cast<int64_t>(v.get<double>());
  }
  if (v.is_string()) {
    try {
      size_t used = 0;
      const int64_t n = std::stoll(v.get<std::string>(), &used);
      if (used == v.get<std::string>().size() && n > 0) return n;
    } catch (const std::exception&) {
    }
  }
  return std::nullopt;
}

// The num_ctx line of /api/show's "parameters" text ("num_ctx    8192").
std::optional<int64_t> parameter_num_ctx(const nlohmann::json& show) {
  if (!show.is_object() || !show.contains("parameters") || !show["parameters"].is_string()) {
    return std::nullopt;
  }
  std::istringstream lines(show["parameters"].get<std::string>());
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string key, value;
    if (words >> key >> value && key == "num_ctx") return positive(value);
  }
  return std::nullopt;
}

bool same_model(const std::string& a, const std::string& b) {
  try {
    return store::ModelName::parse(a) == store::ModelName::parse(b);
  } catch (const std::exception&) {
    return a == b;
  }
}

}  // namespace

std::optional<std::string> lowered_context_note(const std::string& model,
                                                const nlohmann::json& show,
                                                const nlohmann::json& options,
                                                const nlohmann::json& ps) {
  std::optional<int64_t> asked;
  if (options.is_object() && options.contains("num_ctx")) asked = positive(options["num_ctx"]);
  if (!asked) asked = parameter_num_ctx(show);
  if (!asked) return std::nullopt;
  int64_t want = *asked;
  const nlohmann::json info =
      show.is_object() && show.contains("model_info") && show["model_info"].is_object()
          ? show["model_info"]
          : nlohmann::json::object();
  if (const auto arch = info.find("general.architecture");
      arch != info.end() && arch->is_string()) {
    if (const auto train = info.find(arch->get<std::string>() + ".context_length");
        train != info.end()) {
      if (const auto n = positive(*train)) want = std::min(want, *n);
    }
  }
  if (!ps.is_object() || !ps.contains("models") || !ps["models"].is_array()) return std::nullopt;
  for (const auto& m : ps["models"]) {
    if (!m.is_object() || !m.contains("name") || !m["name"].is_string() ||
        !same_model(m["name"].get<std::string>(), model)) {
      continue;
    }
    const auto got = positive(m.value("context_length", nlohmann::json()));
    if (!got || *got >= want) return std::nullopt;
    std::string note = "num_ctx lowered to " + std::to_string(*got) +
                       " by the server to fit in its memory (" + std::to_string(*asked) +
                       " was asked";
    if (const auto size = positive(m.value("size", nlohmann::json()))) {
      note += "; the model takes " + runner::human_bytes(static_cast<uint64_t>(*size));
    }
    return note + ")";
  }
  return std::nullopt;
}

std::optional<std::string> lowered_context_note(Client& client, const std::string& model,
                                                const nlohmann::json& show,
                                                const nlohmann::json& options) {
  try {
    return lowered_context_note(model, show, options, client.get("/api/ps"));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace corral::cli
