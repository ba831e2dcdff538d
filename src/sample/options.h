// Generation options with Ollama's names, meanings and defaults (api/types.go `Options` and
// `DefaultOptions`, docs/modelfile.md). They arrive as JSON (`"options"` of an API request, the
// params layer of a model) or as text `key value` pairs (Modelfile PARAMETER lines, the CLI's
// `--option K=V`); both are checked against one table of options.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace corral::sample {

// Limits. Here a value is checked for its type and its field's range (an integer beyond int32, a
// float beyond float's or not finite: 400). What a value may cost is bounded where it is used,
// clamped as Ollama does rather than refused:
//   num_ctx        <= 0: the server's default; beyond the trained context: that; beyond what
//                  memory holds: lowered to fit, or the load is refused (runner/scheduler.h).
//   num_batch      <= 0: 512; above runner::kMaxNumBatch (4096): that.
//   num_thread     <= 0: the default (physical cores); above the machine's logical CPUs: those.
//   num_gpu, main_gpu, use_mmap, draft_num_predict: accepted; the CPU backend ignores them.
//   num_keep       clamped to [0, num_ctx - 1] where a prompt is cut or the context shifts.
//   num_predict    > 0: that many tokens; -2: until the context is full; else unlimited.
//   top_k          <= 0 or >= the vocabulary: off.
//   repeat_last_n  -1: num_ctx; below -1: off; beyond the history: the history.
//   seed           any; negative: a random one.
//   top_p, min_p, typical_p, temperature, penalties: out of their useful range they turn the
//                  sampler off (or greedy, for temperature <= 0).
struct Options {
  // Load-time options (Ollama's `Runner` struct): they change how a model is loaded.
  int num_ctx = 0;  // context window; 0: the server picks (Ollama: 4096 without a large GPU)
  int num_batch = 512;
  int num_gpu = -1;  // layers to offload; -1: decide from free memory
  std::optional<int> main_gpu;
  std::optional<bool> use_mmap;
  int num_thread = 0;  // 0: the runtime decides
  int draft_num_predict = 4;

  // Per-request options.
  int num_keep = 4;          // prompt tokens kept when the context shifts
  int64_t seed = -1;         // -1: a random seed per request
  int num_predict = -1;      // tokens to generate; -1: unlimited, -2: until the context is full
  int top_k = 40;            // <= 0 disables
  float top_p = 0.9f;        // >= 1 disables
  float min_p = 0.0f;        // <= 0 disables
  float typical_p = 1.0f;    // >= 1 disables
  int repeat_last_n = 64;    // window of the penalties; 0 disables, -1: num_ctx
  float temperature = 0.8f;  // <= 0: greedy
  // Ollama's default was 1.1 until August 2026 (commit 6a261db7 "api: stop applying
  // repeat_penalty 1.1 to models that don't set one"); it is now 1.0, i.e. no penalty.
  float repeat_penalty = 1.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  std::vector<std::string> stop;

  // Layers a JSON object of options over these values: each present key replaces the value
  // (`stop` replaces the whole list), null values are skipped, removed options are ignored.
  // Throws std::invalid_argument naming the key for a value of the wrong type, and for an unknown
  // key unless `unknown` is given: then unknown keys are appended to it and skipped, which is
  // what Ollama's server does with request options (it logs them and carries on).
  void apply(const nlohmann::json& options, std::vector<std::string>* unknown = nullptr);

  // Layers text parameters over these values (see params_to_json).
  void apply_params(std::span<const std::pair<std::string, std::string>> params);

  // Every option with its current value; unset optionals are left out.
  nlohmann::json to_json() const;
};

// True for options Ollama accepted once and has since removed (mirostat, mirostat_eta,
// mirostat_tau, tfs_z, penalize_newline and the old load-time flags); they are accepted and
// ignored so that old Modelfiles and clients keep working.
bool is_removed_option(std::string_view key);

// Splits "K=V" at the first '='. Throws std::invalid_argument when there is no '=' or no key.
std::pair<std::string, std::string> split_param(std::string_view key_value);

// Converts text parameters to a typed JSON object, as Ollama's FormatParams does for Modelfile
// PARAMETER lines: each value is parsed by its option's type (integers and floats in decimal,
// booleans as Go's strconv.ParseBool spells them); repeated `stop` parameters accumulate into one
// list, other repeated keys keep the last value; removed options are dropped. Throws
// std::invalid_argument naming the key and the value for an unknown key or an unparsable value.
nlohmann::json params_to_json(std::span<const std::pair<std::string, std::string>> params);

}  // namespace corral::sample
