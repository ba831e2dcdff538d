// Synthetic models for benchmarks: a GGUF with the exact shapes, metadata and vocabulary size of
// a released model (Llama 3.x, Qwen2.5) and pseudo-random weights. Speed does not depend on the
// weight values, so these stand in for the real checkpoints wherever only speed is measured.
// The metadata comes from the same converter code that turns a real config.json into GGUF.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "convert/hf_config.h"
#include "convert/quantize.h"
#include "ml/gguf/metadata.h"

namespace corral::convert {

// A released model's config.json numbers and its tokenizer's special tokens.
struct SynthPreset {
  std::string name;      // "llama-3.2-1b"
  std::string hf_class;  // "LlamaForCausalLM" or "Qwen2ForCausalLM"
  int64_t hidden_size, intermediate_size, num_hidden_layers, num_attention_heads,
      num_key_value_heads;
  int64_t head_dim;  // 0: not in config.json (hidden_size / num_attention_heads)
  int64_t vocab_size, max_position_embeddings;
  double rms_norm_eps, rope_theta;
  double llama3_rope_factor;  // 0: no Llama 3 RoPE scaling
  bool tie_word_embeddings;
  std::string pre;  // tokenizer.ggml.pre
  int64_t bos_id, eos_id;
  bool add_bos;
  // Special tokens (text at id), written as control tokens.
  std::vector<std::pair<int64_t, std::string>> specials;
};

// Every preset, the released models first, then the tiny ones the tests use.
const std::vector<SynthPreset>& synth_presets();
// The preset named `name`; throws std::invalid_argument listing the valid names.
const SynthPreset& find_synth_preset(std::string_view name);

// The config.json a checkpoint of `preset` carries (the fields the converter reads).
HfConfig synth_config(const SynthPreset& preset);
// general.*, the architecture keys and a synthetic byte-level BPE tokenizer of exactly
// vocab_size tokens: the 256 GPT-2 byte symbols, two-symbol tokens with their merges, unique
// filler tokens, and the preset's special tokens at their ids.
ml::gguf::Metadata synth_metadata(const SynthPreset& preset, const QuantType& type);
// Every tensor with its GGUF name and ggml shape, in the converter's order; each read_f32 fills
// values drawn from a generator seeded by (seed, name): about N(0, 0.02) for matrices and biases,
// about 1 for norm weights, and the real Llama 3 factors for rope_freqs.weight.
std::vector<TensorSource> synth_tensors(const SynthPreset& preset, uint64_t seed);

// Writes the synthetic model of `preset` in `type` to `path`.
void write_synth_model(const SynthPreset& preset, const QuantType& type, uint64_t seed,
                       const std::string& path, const WriteOptions& options = {});

}  // namespace corral::convert
