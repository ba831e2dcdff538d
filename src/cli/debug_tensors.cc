// `corral debug tensors MODEL --tokens 1,2,3 [--filter PATTERN] [--json]`: the named
// intermediate tensors of one prefill (f32 KV cache) — the embedding output, the residual stream
// after each block, the final norm and the logits — so that an implementer finds the first layer
// that diverges from transformers' hidden states. Text: shape, the first values of the first and
// last rows and summary statistics, like llama.cpp's eval-callback; --json: every value.
#include <fnmatch.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
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

void run_tensors(const TensorsArgs& a) {
  std::vector<int32_t> ids;
  if (a.tokens) ids = parse_tokens(*a.tokens);
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
  cmd->add_option("-t,--threads", a->threads, "CPU threads (default: physical cores)");
  cmd->callback([a] { run_tensors(*a); });
}

}  // namespace corral::cli
