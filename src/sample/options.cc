#include "sample/options.h"

#include <array>
#include <charconv>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <variant>

namespace corral::sample {
namespace {

// A client's value as an error message quotes it: at most 80 bytes of its JSON.
std::string shown(const nlohmann::json& v) {
  std::string s = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (s.size() > 80) s = s.substr(0, 80) + "... (" + std::to_string(s.size()) + " bytes)";
  return s;
}

using Member = std::variant<int Options::*, int64_t Options::*, float Options::*,
                            std::optional<int> Options::*, std::optional<bool> Options::*,
                            std::vector<std::string> Options::*>;

struct Field {
  std::string_view key;
  Member member;
};

// The one table of options; JSON keys are Ollama's json tags.
const std::array<Field, 20> kFields = {{
    {"num_ctx", &Options::num_ctx},
    {"num_batch", &Options::num_batch},
    {"num_gpu", &Options::num_gpu},
    {"main_gpu", &Options::main_gpu},
    {"use_mmap", &Options::use_mmap},
    {"num_thread", &Options::num_thread},
    {"draft_num_predict", &Options::draft_num_predict},
    {"num_keep", &Options::num_keep},
    {"seed", &Options::seed},
    {"num_predict", &Options::num_predict},
    {"top_k", &Options::top_k},
    {"top_p", &Options::top_p},
    {"min_p", &Options::min_p},
    {"typical_p", &Options::typical_p},
    {"repeat_last_n", &Options::repeat_last_n},
    {"temperature", &Options::temperature},
    {"repeat_penalty", &Options::repeat_penalty},
    {"presence_penalty", &Options::presence_penalty},
    {"frequency_penalty", &Options::frequency_penalty},
    {"stop", &Options::stop},
}};

// Ollama's parser/parser.go deprecatedParameters, plus tfs_z (dropped from api.Options along
// with llama.cpp's tail-free sampler) and numa (dropped from the Runner options).
constexpr std::array<std::string_view, 11> kRemoved = {
    "mirostat",   "mirostat_eta", "mirostat_tau", "tfs_z", "penalize_newline", "low_vram", "f16_kv",
    "logits_all", "vocab_only",   "use_mlock",    "numa",
};

const Field* find_field(std::string_view key) {
  for (const Field& f : kFields) {
    if (f.key == key) return &f;
  }
  return nullptr;
}

[[noreturn]] void fail(std::string_view key, const std::string& what) {
  throw std::invalid_argument("option \"" + std::string(key) + "\" " + what);
}

template <class Int>
Int json_integer(std::string_view key, const nlohmann::json& v) {
  // JSON has one number type; clients written in JavaScript send 40.0 for 40. A fractional
  // value is a mistake, not something to truncate silently.
  if (v.is_number_integer()) {
    if (v.is_number_unsigned()) {
      if (v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<Int>::max())) {
        fail(key, "is out of range: " + shown(v));
      }
      return static_cast<Int>(v.get<uint64_t>());
    }
    const int64_t i = v.get<int64_t>();
    if (i < std::numeric_limits<Int>::min() || i > std::numeric_limits<Int>::max()) {
      fail(key, "is out of range: " + shown(v));
    }
    return static_cast<Int>(i);
  }
  if (!v.is_number_float()) fail(key, "must be an integer, got " + shown(v));
  const double d = v.get<double>();
  if (d != std::trunc(d)) fail(key, "must be an integer, got " + shown(v));
  if (d < static_cast<double>(std::numeric_limits<Int>::min()) ||
      d >= -static_cast<double>(std::numeric_limits<Int>::min())) {
    fail(key, "is out of range: " + shown(v));
  }
  return static_cast<Int>(d);
}

float json_float(std::string_view key, const nlohmann::json& v) {
  if (!v.is_number()) fail(key, "must be a number, got " + shown(v));
  const double d = v.get<double>();
  if (!std::isfinite(d) || std::abs(d) > std::numeric_limits<float>::max()) {
    fail(key, "is out of range: " + shown(v));
  }
  return static_cast<float>(d);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

int64_t text_integer(std::string_view key, std::string_view value) {
  std::string_view s = trim(value);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  int64_t out = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) {
    fail(key, "must be an integer, got \"" + std::string(value) + "\"");
  }
  return out;
}

double text_float(std::string_view key, std::string_view value) {
  std::string_view s = trim(value);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  double out = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || !std::isfinite(out)) {
    fail(key, "must be a number, got \"" + std::string(value) + "\"");
  }
  return out;
}

bool text_bool(std::string_view key, std::string_view value) {
  // The spellings Go's strconv.ParseBool accepts.
  const std::string_view s = trim(value);
  for (std::string_view t : {"1", "t", "T", "true", "TRUE", "True"}) {
    if (s == t) return true;
  }
  for (std::string_view f : {"0", "f", "F", "false", "FALSE", "False"}) {
    if (s == f) return false;
  }
  fail(key, "must be a boolean, got \"" + std::string(value) + "\"");
}

template <class... Fs>
struct Overloaded : Fs... {
  using Fs::operator()...;
};
template <class... Fs>
Overloaded(Fs...) -> Overloaded<Fs...>;

}  // namespace

bool is_removed_option(std::string_view key) {
  for (std::string_view r : kRemoved) {
    if (r == key) return true;
  }
  return false;
}

void Options::apply(const nlohmann::json& options, std::vector<std::string>* unknown) {
  if (options.is_null()) return;
  if (!options.is_object()) {
    throw std::invalid_argument("options must be a JSON object, got " + shown(options));
  }
  // Parse into a copy so that a bad value leaves *this untouched.
  Options next = *this;
  for (const auto& item : options.items()) {
    // Named references rather than a structured binding: clang 14 cannot capture those.
    const std::string& key = item.key();
    const nlohmann::json& value = item.value();
    const Field* field = find_field(key);
    if (field == nullptr) {
      if (is_removed_option(key)) continue;
      if (unknown == nullptr) throw std::invalid_argument("unknown option \"" + key + "\"");
      unknown->push_back(key);
      continue;
    }
    if (value.is_null()) continue;
    std::visit(Overloaded{
                   [&](int Options::*m) { next.*m = json_integer<int>(key, value); },
                   [&](int64_t Options::*m) { next.*m = json_integer<int64_t>(key, value); },
                   [&](float Options::*m) { next.*m = json_float(key, value); },
                   [&](std::optional<int> Options::*m) { next.*m = json_integer<int>(key, value); },
                   [&](std::optional<bool> Options::*m) {
                     if (!value.is_boolean()) fail(key, "must be a boolean, got " + shown(value));
                     next.*m = value.get<bool>();
                   },
                   [&](std::vector<std::string> Options::*m) {
                     // OpenAI's `stop` may be one string; Ollama's is a list.
                     std::vector<std::string> list;
                     if (value.is_string()) {
                       list.push_back(value.get<std::string>());
                     } else if (value.is_array()) {
                       for (const auto& item : value) {
                         if (!item.is_string()) {
                           fail(key, "must be a list of strings, got " + shown(value));
                         }
                         list.push_back(item.get<std::string>());
                       }
                     } else {
                       fail(key, "must be a list of strings, got " + shown(value));
                     }
                     next.*m = std::move(list);
                   },
               },
               field->member);
  }
  *this = std::move(next);
}

void Options::apply_params(std::span<const std::pair<std::string, std::string>> params) {
  apply(params_to_json(params));
}

nlohmann::json Options::to_json() const {
  nlohmann::json out = nlohmann::json::object();
  for (const Field& f : kFields) {
    const std::string key(f.key);
    std::visit(Overloaded{
                   [&](float Options::*m) {
                     // Through the shortest decimal of the float, so 0.9f shows as 0.9.
                     char buf[32];
                     const auto r = std::to_chars(buf, buf + sizeof buf, this->*m);
                     out[key] = std::stod(std::string(buf, r.ptr));
                   },
                   [&](auto m) {
                     using T = std::remove_cvref_t<decltype(this->*m)>;
                     if constexpr (std::is_same_v<T, std::optional<int>> ||
                                   std::is_same_v<T, std::optional<bool>>) {
                       if ((this->*m).has_value()) out[key] = *(this->*m);
                     } else {
                       out[key] = this->*m;
                     }
                   },
               },
               f.member);
  }
  return out;
}

std::pair<std::string, std::string> split_param(std::string_view key_value) {
  const size_t eq = key_value.find('=');
  if (eq == std::string_view::npos) {
    throw std::invalid_argument("option \"" + std::string(key_value) +
                                "\" must be written as key=value");
  }
  const std::string_view key = trim(key_value.substr(0, eq));
  if (key.empty()) {
    throw std::invalid_argument("option \"" + std::string(key_value) + "\" has no key");
  }
  return {std::string(key), std::string(key_value.substr(eq + 1))};
}

nlohmann::json params_to_json(std::span<const std::pair<std::string, std::string>> params) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& param : params) {
    const std::string& key = param.first;  // not a structured binding: lambdas capture it
    const std::string& value = param.second;
    const Field* field = find_field(key);
    if (field == nullptr) {
      if (is_removed_option(key)) continue;
      throw std::invalid_argument("unknown parameter \"" + key + "\"");
    }
    std::visit(
        Overloaded{
            [&](int Options::*) {
              const int64_t v = text_integer(key, value);
              if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max()) {
                fail(key, "is out of range: \"" + value + "\"");
              }
              out[key] = v;
            },
            [&](std::optional<int> Options::*) {
              const int64_t v = text_integer(key, value);
              if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max()) {
                fail(key, "is out of range: \"" + value + "\"");
              }
              out[key] = v;
            },
            [&](int64_t Options::*) { out[key] = text_integer(key, value); },
            [&](float Options::*) {
              const double v = text_float(key, value);
              if (std::abs(v) > std::numeric_limits<float>::max()) {
                fail(key, "is out of range: \"" + value + "\"");
              }
              out[key] = v;
            },
            [&](std::optional<bool> Options::*) { out[key] = text_bool(key, value); },
            [&](std::vector<std::string> Options::*) {
              if (!out.contains(key)) out[key] = nlohmann::json::array();
              out[key].push_back(value);
            },
        },
        field->member);
  }
  return out;
}

}  // namespace corral::sample
