// A Hugging Face config.json with typed, error-naming accessors, and the RoPE parameters in one
// form whichever way the file spells them: transformers 5's `rope_parameters` (possibly per layer
// type) or the older top-level `rope_theta` with a `rope_scaling` object.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace corral::convert {

class HfConfig {
 public:
  // Reads `<dir>/config.json`; throws std::runtime_error naming the file when it is missing or
  // not a JSON object.
  static HfConfig load(const std::string& dir);
  HfConfig(nlohmann::json json, std::string path);

  const nlohmann::json& json() const { return json_; }
  const std::string& path() const { return path_; }

  // architectures[0], e.g. "LlamaForCausalLM"; throws when absent.
  std::string architecture() const;

  bool has(std::string_view key) const;  // present and not null
  // Throw std::runtime_error "<path>: key '<key>' ..." when missing or of another type.
  int64_t get_int(std::string_view key) const;
  double get_number(std::string_view key) const;
  bool get_bool(std::string_view key, bool fallback) const;
  std::optional<int64_t> find_int(std::string_view key) const;
  std::optional<double> find_number(std::string_view key) const;

  // RoPE parameters as one object: rope_theta, rope_type ("default" when unscaled), and the
  // scaling fields (factor, original_max_position_embeddings, low_freq_factor, ...).
  const nlohmann::json& rope() const { return rope_; }
  std::string rope_type() const;

  // head_dim when given, else hidden_size / num_attention_heads.
  int64_t head_dim() const;

 private:
  nlohmann::json json_;
  std::string path_;
  nlohmann::json rope_;
};

}  // namespace corral::convert
