// One converter per architecture family: the `<arch>.*` metadata llama.cpp's convert_hf_to_gguf.py
// writes for it, and its tensors renamed to GGUF names with shapes in ggml order. The shared
// decoder plumbing (renaming tables, shape checks, missing-tensor errors) lives in decoder.cc.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "convert/hf_config.h"
#include "convert/quantize.h"
#include "convert/safetensors.h"
#include "ml/gguf/metadata.h"

namespace corral::convert::arch {

struct Arch {
  std::string_view gguf_name;  // general.architecture
  // Writes the `<arch>.*` keys (and general.file_type at llama.cpp's position) into `md`.
  std::function<void(const HfConfig&, const QuantType&, ml::gguf::Metadata&)> set_parameters;
  // Every tensor to write, in llama.cpp's order (generated tensors first, then checkpoint order).
  std::function<std::vector<TensorSource>(const HfConfig&, const Checkpoint&)> tensors;
  // The keys of the rest of the folder, written after the model keys: a vision model's
  // preprocessor_config.json, BERT's sentence-transformers pooling. Null for most text models.
  std::function<void(const std::string& dir, const HfConfig&, ml::gguf::Metadata&)> set_vision;
  // The vocabulary size the tokenizer is checked against; null: config.json's vocab_size.
  std::function<int64_t(const HfConfig&)> vocab_size;
};

// The converter for a config's architectures[0] ("LlamaForCausalLM", ...), or nullptr.
const Arch* find(std::string_view hf_class);
// The supported classes, for error messages.
std::string supported_classes();

Arch llama();
Arch qwen2();
Arch qwen2vl();
Arch qwen3();
Arch mllama();
Arch bert();
Arch gemma3();

// --- shared by the architectures ---

// The keys of llama.cpp's TextModel.set_gguf_parameters, in its order: block_count,
// context_length, embedding_length, feed_forward_length, head counts, RoPE scaling (linear,
// yarn), rope.freq_base, layer_norm_rms_epsilon, key/value_length (when head_dim is given),
// general.file_type.
void set_text_parameters(const HfConfig& config, std::string_view arch, const QuantType& type,
                         ml::gguf::Metadata& md);

// A tensor the architecture expects, by GGUF name, with its ggml shape.
struct Expected {
  std::string gguf;
  std::vector<int64_t> ne;
  bool required = true;
};

struct Layout {
  // Whole-model tensors (HF name -> GGUF name) and per-layer ones (suffix after
  // "model.layers.<i>." -> suffix after "blk.<i>.").
  std::vector<std::pair<std::string, std::string>> globals;
  std::vector<std::pair<std::string, std::string>> layer;
  // HF tensors that carry nothing GGUF needs (rotary_emb.inv_freq buffers).
  std::vector<std::string> ignored_suffixes;
  // HF tensors another part of the converter writes (a vision tower: "visual.").
  std::vector<std::string> ignored_prefixes;
  std::vector<Expected> expected;
  // Drop lm_head.weight: the output projection is the token embedding.
  bool tied = false;
  // Rearranges a tensor's values (given its HF name and PyTorch shape) after reading, e.g.
  // llama's Q/K row permutation; returns false when it leaves the tensor as is.
  std::function<bool(const std::string& hf, const std::vector<int64_t>& shape, float* data)>
      transform;
  // Returns whether `transform` would act on this HF tensor (its raw bytes cannot then be
  // copied as they are).
  std::function<bool(const std::string& hf)> transforms;
};

// Maps every checkpoint tensor through `layout`. Throws std::runtime_error naming the tensor and
// its file for an unknown name, a shape other than expected, or a dtype other than F32/F16/BF16;
// naming the GGUF and HF names of a required tensor the checkpoint lacks.
std::vector<TensorSource> map_tensors(const HfConfig& config, const Checkpoint& checkpoint,
                                      const Layout& layout);

// The standard llama/qwen2 decoder layout: embeddings, final norm, output, and per layer the
// attention and SwiGLU MLP with their norms; biases on q/k/v when `qkv_bias`.
Layout decoder_layout(const HfConfig& config, bool qkv_bias);

}  // namespace corral::convert::arch
