// `corral debug tensors MODEL --tokens 1,2,3 [--filter PATTERN] [--json]`: the named
// intermediate tensors of one prefill (f32 KV cache) — the embedding output, the residual stream
// after each block, the final norm and the logits — so that an implementer finds the first layer
// that diverges from transformers' hidden states. Text: shape, the first values of the first and
// last rows and summary statistics, like llama.cpp's eval-callback; --json: every value;
// --compare: each layer's largest difference from transformers' hidden states.
#include <fnmatch.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "runner/engine.h"
#include "store/model.h"

namespace corral::cli {
namespace {

using Json = nlohmann::ordered_json;

struct TensorsArgs {
  std::string model;
  std::optional<std::string> tokens;
  std::optional<std::string> text;
  std::optional<std::string> filter;
  bool json = false;
  std::optional<int> threads;
  std::optional<std::string> compare;  // transformers' hidden states (JSON)
  double tolerance = 1e-4;
};

// "1,2,3" (spaces allowed): every entry a decimal integer, none missing.
std::vector<int32_t> parse_tokens(const std::string& s) {
  std::vector<int32_t> ids;
  size_t i = 0;
  while (true) {
    while (i < s.size() && s[i] == ' ') ++i;
    size_t end = s.find(',', i);
    if (end == std::string::npos) end = s.size();
    std::string item = s.substr(i, end - i);
    while (!item.empty() && item.back() == ' ') item.pop_back();
    if (item.empty()) {
      if (end == s.size() && ids.empty()) break;  // "" is caught by the caller
      throw std::invalid_argument("--tokens: empty entry in '" + s + "' (expected ids like 1,2,3)");
    }
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || v < INT32_MIN || v > INT32_MAX) {
      throw std::invalid_argument("--tokens: '" + item + "' is not a token id (expected 1,2,3)");
    }
    ids.push_back(static_cast<int32_t>(v));
    if (end == s.size()) break;
    i = end + 1;
  }
  return ids;
}

// A pattern with glob characters matches the whole name; otherwise it is a substring.
bool selected(const std::string& name, const std::optional<std::string>& filter) {
  if (!filter || filter->empty()) return true;
  if (filter->find_first_of("*?[") != std::string::npos) {
    return ::fnmatch(filter->c_str(), name.c_str(), 0) == 0;
  }
  return name.find(*filter) != std::string::npos;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// Row `r` of a tensor seen as [rows, row_len]: its first and last three values.
void print_row(const runner::NamedTensor& t, size_t row_len, size_t r) {
  const float* row = t.values.data() + r * row_len;
  std::printf("    [%zu]", r);
  for (size_t i = 0; i < row_len; ++i) {
    if (row_len > 6 && i == 3) {
      std::printf(" ...");
      i = row_len - 3;
    }
    std::printf(" %12.6f", row[i]);
  }
  std::printf("\n");
}

void print_text(const runner::NamedTensor& t) {
  double sum = 0, sum_sq = 0;
  float lo = INFINITY, hi = -INFINITY;
  size_t non_finite = 0;
  for (const float v : t.values) {
    if (!std::isfinite(v)) {
      ++non_finite;
      continue;
    }
    sum += v;
    sum_sq += static_cast<double>(v) * v;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  const double n = static_cast<double>(t.values.size() - non_finite);
  const double mean = n > 0 ? sum / n : 0.0;
  const double var = n > 0 ? std::max(0.0, sum_sq / n - mean * mean) : 0.0;
  std::printf("%s %s\n", t.name.c_str(), shape_text(t.shape).c_str());
  const size_t row_len = t.shape.empty() ? 1 : static_cast<size_t>(t.shape.back());
  const size_t rows = row_len == 0 ? 0 : t.values.size() / row_len;
  for (size_t r = 0; r < rows; ++r) {
    if (rows > 4 && r == 2) {
      std::printf("    ...\n");
      r = rows - 2;
    }
    print_row(t, row_len, r);
  }
  std::printf("    sum %.6f  mean %.6f  std %.6f  min %.6f  max %.6f", sum, mean, std::sqrt(var),
              lo, hi);
  if (non_finite > 0) std::printf("  non-finite %zu", non_finite);
  std::printf("\n");
}

// transformers' hidden states as `output_hidden_states` returns them: [n_layers + 1][n_tokens]
// [n_embd], the embedding output first. From {"hidden_states": ...}, or from the first case of a
// reference.json ({"cases": [{"input_ids", "hidden_states"}]}) whose input_ids fill `ids` when
// they are empty.
struct Reference {
  std::vector<std::vector<float>> layers;  // each flattened [n_tokens * n_embd]
};

Reference read_reference(const std::string& path, std::vector<int32_t>& ids) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path + ": not JSON: " + e.what());
  }
  const nlohmann::json* holder = nullptr;
  if (doc.is_object() && doc.contains("hidden_states")) {
    holder = &doc;
  } else if (doc.is_object() && doc.contains("cases") && doc["cases"].is_array()) {
    for (const auto& c : doc["cases"]) {
      if (!c.is_object() || !c.contains("hidden_states")) continue;
      holder = &c;
      if (ids.empty() && c.contains("input_ids")) ids = c["input_ids"].get<std::vector<int32_t>>();
      break;
    }
  }
  const char* kExpected =
      " (expected [n_layers + 1][n_tokens][n_embd], nested or flat with "
      "hidden_states_shape)";
  if (holder == nullptr || !(*holder)["hidden_states"].is_array()) {
    throw std::runtime_error(path + ": no hidden_states" + kExpected);
  }
  const nlohmann::json& hs = (*holder)["hidden_states"];
  Reference r;
  try {
    if (holder->contains("hidden_states_shape")) {
      // Flat, row-major in the shape's order.
      const auto shape = (*holder)["hidden_states_shape"].get<std::vector<size_t>>();
      if (shape.size() != 3 || shape[0] * shape[1] * shape[2] != hs.size())
        throw std::runtime_error("hidden_states_shape does not match the values");
      const size_t per_layer = shape[1] * shape[2];
      for (size_t l = 0; l < shape[0]; ++l) {
        std::vector<float> flat(per_layer);
        for (size_t i = 0; i < per_layer; ++i) flat[i] = hs[l * per_layer + i].get<float>();
        r.layers.push_back(std::move(flat));
      }
    } else {
      for (const auto& layer : hs) {
        std::vector<float> flat;
        for (const auto& row : layer)
          for (const auto& v : row) flat.push_back(v.get<float>());
        r.layers.push_back(std::move(flat));
      }
    }
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": hidden_states: " + e.what() + kExpected);
  }
  if (r.layers.empty()) throw std::runtime_error(path + ": hidden_states is empty" + kExpected);
  return r;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(double{a[i]} - b[i]));
  return m;
}

// Compares the embedding output and each block's output with the reference, layer by layer;
// transformers' last entry may be after the final norm (Llama, Qwen) or before it, so the last
// layer is compared with both. Returns whether every layer is within the tolerance.
bool compare(const std::vector<runner::NamedTensor>& all, const Reference& ref, double tolerance) {
  const auto find = [&](const std::string& name) -> const runner::NamedTensor* {
    for (const runner::NamedTensor& t : all)
      if (t.name == name) return &t;
    return nullptr;
  };
  std::printf("%-6s %-18s %12s\n", "layer", "tensor", "max |diff|");
  std::optional<std::string> first_bad;
  for (size_t i = 0; i < ref.layers.size(); ++i) {
    std::vector<std::string> names = {i == 0 ? "token_embd.out"
                                             : "blk." + std::to_string(i - 1) + ".out"};
    if (i + 1 == ref.layers.size()) names.push_back("output_norm.out");
    std::string best_name;
    double best = INFINITY;
    for (const std::string& name : names) {
      const runner::NamedTensor* t = find(name);
      if (t == nullptr) continue;
      if (t->values.size() != ref.layers[i].size()) {
        throw std::runtime_error("reference layer " + std::to_string(i) + " holds " +
                                 std::to_string(ref.layers[i].size()) + " values, " + name +
                                 " has " + std::to_string(t->values.size()) + " " +
                                 shape_text(t->shape) + " (same tokens?)");
      }
      const double d = max_abs_diff(t->values, ref.layers[i]);
      if (d < best) {
        best = d;
        best_name = name;
      }
    }
    if (best_name.empty()) {
      throw std::runtime_error("the reference has " + std::to_string(ref.layers.size()) +
                               " hidden states; this model names no " + names[0]);
    }
    std::printf("%-6zu %-18s %12.3e%s\n", i, best_name.c_str(), best,
                best > tolerance ? "  <- beyond the tolerance" : "");
    if (best > tolerance && !first_bad) first_bad = best_name;
  }
  if (first_bad) {
    std::printf("first divergence: %s (tolerance %.1e)\n", first_bad->c_str(), tolerance);
    return false;
  }
  std::printf("every layer within %.1e\n", tolerance);
  return true;
}

void run_tensors(const TensorsArgs& a) {
  std::vector<int32_t> ids;
  if (a.tokens) ids = parse_tokens(*a.tokens);
  std::optional<Reference> reference;
  if (a.compare) reference = read_reference(*a.compare, ids);
  if (!a.text && ids.empty()) {
    throw std::invalid_argument("no tokens: give --tokens 1,2,3 or --text TEXT");
  }
  const store::ModelInfo info = store::resolve(store::Store(store::Store::default_root()), a.model);
  runner::Engine engine(info.gguf.string(), {.n_threads = a.threads.value_or(0)});
  if (a.text) ids = engine.tokenize(*a.text);
  if (ids.empty()) throw std::invalid_argument("no tokens: --text gave none");
  const int64_t n_vocab = engine.model().config().n_vocab;
  for (const int32_t id : ids) {
    if (id < 0 || id >= n_vocab) {
      throw std::invalid_argument("--tokens: token " + std::to_string(id) +
                                  " is outside the vocabulary (" + std::to_string(n_vocab) +
                                  " tokens: 0 to " + std::to_string(n_vocab - 1) + ")");
    }
  }
  std::vector<runner::NamedTensor> all = engine.intermediates(ids);
  if (reference) {
    if (!compare(all, *reference, a.tolerance)) std::exit(1);
    return;
  }
  std::vector<const runner::NamedTensor*> shown;
  for (const runner::NamedTensor& t : all) {
    if (selected(t.name, a.filter)) shown.push_back(&t);
  }
  if (shown.empty()) {
    std::string names;
    for (const runner::NamedTensor& t : all) names += (names.empty() ? "" : ", ") + t.name;
    throw std::invalid_argument("--filter '" + a.filter.value_or("") +
                                "' matches no tensor; the names are: " + names);
  }

  if (a.json) {
    Json tensors = Json::array();
    for (const runner::NamedTensor* t : shown) {
      tensors.push_back({{"name", t->name}, {"shape", t->shape}, {"values", t->values}});
    }
    const Json doc{{"model", a.model},
                   {"architecture", engine.model().config().architecture},
                   {"tokens", ids},
                   {"tensors", std::move(tensors)}};
    std::cout << doc.dump() << "\n";
    return;
  }
  std::printf("%s: %s, %zu tokens, %zu of %zu tensors\n", a.model.c_str(),
              engine.model().config().architecture.c_str(), ids.size(), shown.size(), all.size());
  for (const runner::NamedTensor* t : shown) print_text(*t);
}

}  // namespace

void add_debug_tensors_command(CLI::App& debug) {
  auto* cmd = debug.add_subcommand(
      "tensors",
      "Print the named intermediate tensors of one prefill (embeddings, each block's output, the "
      "final norm, the logits) for comparing with transformers' hidden states");
  auto a = std::make_shared<TensorsArgs>();
  cmd->add_option("model", a->model, "GGUF model file, or a model in the store")->required();
  auto* tokens = cmd->add_option("--tokens", a->tokens, "Token ids, comma-separated (1,403,407)");
  auto* text =
      cmd->add_option("--text", a->text, "Text to tokenize instead (BOS as the model asks)");
  tokens->excludes(text);
  cmd->add_option("--filter", a->filter,
                  "Only tensors whose name contains this, or matches it as a glob (blk.*.out)");
  cmd->add_flag("--json", a->json,
                "Print {\"tokens\", \"tensors\": [{\"name\", \"shape\", \"values\"}]}, values "
                "row-major in shape's order (outermost first)");
  cmd->add_option("--compare", a->compare,
                  "transformers' hidden states to compare with, layer by layer: a JSON file "
                  "{\"hidden_states\": [n_layers + 1][n_tokens][n_embd]} (output_hidden_states), "
                  "or a reference.json whose first case has them (its input_ids are used when "
                  "--tokens is not given); prints each layer's largest difference and the first "
                  "beyond --tolerance (exit status 1 then)");
  cmd->add_option("--tolerance", a->tolerance, "Largest difference taken as equal (default 1e-4)");
  cmd->add_option("-t,--threads", a->threads, "CPU threads (default: physical cores)");
  cmd->callback([a] { run_tensors(*a); });
}

}  // namespace corral::cli
