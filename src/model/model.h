// The Model interface: an architecture's module tree, its options read from GGUF metadata and
// its forward pass recorded into a graph. Architectures are listed in registry.cc.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kvcache/causal.h"
#include "ml/gguf/reader.h"
#include "ml/graph.h"
#include "model/batch.h"
#include "model/vision.h"
#include "nn/module.h"

namespace corral::model {

// What the engine around a model needs to know of it.
struct Config {
  std::string architecture;
  int n_layer = 0;
  int64_t n_embd = 0;
  int64_t n_vocab = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim_k = 0;
  int64_t head_dim_v = 0;
  int64_t n_ctx_train = 0;
  // False for encoders (BERT): attention sees the whole sequence, which must be evaluated in one
  // batch; such models only embed.
  bool causal = true;
  // Sliding-window attention: the window and which layers use it (empty: none).
  int32_t sliding_window = 0;
  std::vector<bool> sliding_layers;
};

// What a forward pass returns for the batch's output rows.
enum class Output {
  kLogits,      // f32 [n_vocab, n_outputs]
  kEmbeddings,  // the final hidden states after the output norm, f32 [n_embd, n_outputs]
};

// The graph inputs of a batch, as leaves.
struct Inputs {
  ml::Tensor tokens;     // I32 [n_tokens]
  ml::Tensor positions;  // I32 [n_tokens]
  ml::Tensor outputs;    // I32 [n_outputs]; empty when every token's logits are wanted, in order
  Output output = Output::kLogits;
  // I32 [4 * n_tokens] when the batch has rope_positions (M-RoPE models), else empty.
  ml::Tensor rope_positions;
  // The batch itself, for its images (Batch::images, Batch::cross).
  const Batch* batch = nullptr;
};

class Model : public nn::Module {
 public:
  const Config& config() const { return config_; }

  // Records the forward pass of a batch into g; returns logits f32 [n_vocab, n_outputs] (or the
  // hidden states, see Output). The batch's vectors are the graph's inputs: keep them unchanged
  // until it is computed.
  ml::Tensor forward(ml::Graph& g, const Batch& batch, kvcache::Causal& cache,
                     Output output = Output::kLogits);

  // Rotates cached keys [head_dim_k, n_head_kv, n] by positions delta I32 [n] (context shift).
  virtual ml::Tensor shift(ml::Tensor keys, ml::Tensor delta, int layer) const = 0;

  // A cache fitted to this model (its sliding-window layers included).
  kvcache::Causal make_cache(kvcache::CausalOptions options) const {
    options.causal = config_.causal;
    options.window = config_.sliding_window;
    options.sliding = config_.sliding_layers;
    return kvcache::Causal(config_.n_layer, config_.n_head_kv, config_.head_dim_k,
                           config_.head_dim_v, options);
  }

  // The vision part of a multimodal model; null for text-only models.
  virtual const Vision* vision() const { return nullptr; }

  // Tensors of the file that no weight consumed (after binding).
  const std::vector<std::string>& unused_tensors() const { return unused_; }

 protected:
  explicit Model(Config config) : config_(std::move(config)) {}
  virtual ml::Tensor build(const Inputs& in, kvcache::Causal& cache) const = 0;

 private:
  friend std::unique_ptr<Model> load(const ml::gguf::File& file, const ml::gguf::File* projector);
  Config config_;
  std::vector<std::string> unused_;
};

// Typed access to the `<arch>.<key>` metadata of a file. Errors name the file and the key.
class Keys {
 public:
  Keys(const ml::gguf::File& file, std::string arch)
      : meta_(file.metadata()), arch_(std::move(arch)) {}
  int64_t integer(std::string_view key) const;
  int64_t integer_or(std::string_view key, int64_t fallback) const;
  // A count or size: positive and at most `max` (hostile files must not size allocations).
  int64_t positive(std::string_view key, int64_t max = int64_t{1} << 24) const;
  int64_t positive_or(std::string_view key, int64_t fallback, int64_t max = int64_t{1} << 24) const;
  float number(std::string_view key) const;  // f32 or f64
  float number_or(std::string_view key, float fallback) const;
  std::string string_or(std::string_view key, std::string fallback) const;
  bool has(std::string_view key) const { return meta_.contains(full(key)); }
  std::string full(std::string_view key) const { return arch_ + "." + std::string(key); }

 private:
  const ml::gguf::Metadata& meta_;
  std::string arch_;
};

// The vocabulary size: rows of token_embd.weight, else the tokenizer's token count.
int64_t vocab_size(const ml::gguf::File& file);

// Checks what every decoder's options must satisfy (head counts that divide, a layer count the
// file can hold, a rotation that fits the head); throws naming the file and the values.
void check_config(const ml::gguf::File& file, const Config& c, const ml::op::Rope& rope);

// Whether a file is an embedding model (Ollama's "embedding" capability instead of
// "completion"): it names a `<arch>.pooling_type`, or it is an encoder (`<arch>.attention.causal`
// false, as llama.cpp and Ollama write BERT).
bool is_embedding_model(const ml::gguf::Metadata& md);

// One row of the registry: general.architecture and the constructor of its module tree.
struct Architecture {
  std::string_view name;
  std::unique_ptr<Model> (*make)(const ml::gguf::File& file, const ml::gguf::File* projector);
};
std::span<const Architecture> architectures();

// Builds the model general.architecture names and binds its weights to the file's tensors (the
// file must outlive the model). A vision model stored as two files (the llama.cpp layout: a text
// GGUF and an mmproj projector GGUF) takes the second as `projector`; its tensors bind too.
// Throws naming an unknown architecture, or BindError.
std::unique_ptr<Model> load(const ml::gguf::File& file, const ml::gguf::File* projector = nullptr);

}  // namespace corral::model
