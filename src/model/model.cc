#include "model/model.h"

#include <stdexcept>

namespace corral::model {

ml::Tensor Model::forward(ml::Graph& g, const Batch& batch, kvcache::Causal& cache, Output output) {
  const size_t n = batch.tokens.size();
  if (n == 0 || batch.positions.size() != n || batch.seq_ids.size() != n) {
    throw std::invalid_argument("forward: a batch needs a position and a sequence per token");
  }
  for (size_t i = 0; i < batch.outputs.size(); ++i) {
    const int32_t o = batch.outputs[i];
    if (o < 0 || static_cast<size_t>(o) >= n || (i > 0 && o <= batch.outputs[i - 1])) {
      throw std::invalid_argument("forward: outputs must be ascending token indices");
    }
  }
  cache.start_forward(g, batch.positions, batch.seq_ids);
  // The graph reads its inputs where the batch holds them; it never writes them.
  auto leaf = [&](const std::vector<int32_t>& v, const char* name) {
    return g.leaf(ml::DType::I32, {static_cast<int64_t>(v.size())}, const_cast<int32_t*>(v.data()),
                  name);
  };
  if (!batch.rope_positions.empty() && batch.rope_positions.size() != 4 * n) {
    throw std::invalid_argument("forward: rope_positions must hold 4 per token");
  }
  if (!batch.cross.empty() && batch.cross.size() != n) {
    throw std::invalid_argument("forward: cross must hold one image (or null) per token");
  }
  for (const Batch::ImageRows& r : batch.images) {
    if (r.states == nullptr || r.n <= 0 || r.first < 0 || r.row < 0 ||
        static_cast<size_t>(r.first) + static_cast<size_t>(r.n) > n) {
      throw std::invalid_argument("forward: image rows outside the batch");
    }
  }
  Inputs in{leaf(batch.tokens, "tokens"), leaf(batch.positions, "positions"), {}, output};
  in.batch = &batch;
  if (!batch.rope_positions.empty()) in.rope_positions = leaf(batch.rope_positions, "rope_pos");
  if (batch.outputs.size() != n) in.outputs = leaf(batch.outputs, "outputs");
  return build(in, cache);
}

int64_t Keys::integer(std::string_view key) const { return meta_.get_integer(full(key)); }

int64_t Keys::integer_or(std::string_view key, int64_t fallback) const {
  return has(key) ? integer(key) : fallback;
}

int64_t Keys::positive(std::string_view key, int64_t max) const {
  const int64_t v = integer(key);
  if (v <= 0 || v > max) {
    throw std::runtime_error(meta_.source() + ": " + full(key) + " = " + std::to_string(v) +
                             " is out of range (1.." + std::to_string(max) + ")");
  }
  return v;
}

int64_t Keys::positive_or(std::string_view key, int64_t fallback, int64_t max) const {
  return has(key) ? positive(key, max) : fallback;
}

float Keys::number(std::string_view key) const {
  const std::string k = full(key);
  const ml::gguf::Value& v = meta_.at(k);
  if (v.is<double>()) return static_cast<float>(v.as<double>());
  return meta_.get_f32(k);
}

float Keys::number_or(std::string_view key, float fallback) const {
  return has(key) ? number(key) : fallback;
}

std::string Keys::string_or(std::string_view key, std::string fallback) const {
  return has(key) ? meta_.get_string(full(key)) : fallback;
}

void check_config(const ml::gguf::File& file, const Config& c, const ml::op::Rope& rope) {
  auto fail = [&](const std::string& what) {
    throw std::runtime_error(file.source() + ": " + c.architecture + ": " + what);
  };
  // Each layer has several tensors; more layers than tensors cannot be a real file.
  if (c.n_layer <= 0 || static_cast<size_t>(c.n_layer) > file.tensors().size()) {
    fail("block_count " + std::to_string(c.n_layer) + " does not fit the file's " +
         std::to_string(file.tensors().size()) + " tensors");
  }
  if (c.n_head % c.n_head_kv != 0) {
    fail("attention.head_count " + std::to_string(c.n_head) +
         " is not a multiple of attention.head_count_kv " + std::to_string(c.n_head_kv));
  }
  if (c.head_dim_k <= 0 || c.head_dim_v <= 0) fail("the attention head size is zero");
  if (rope.n_dims <= 0 || rope.n_dims % 2 != 0 || rope.n_dims > c.head_dim_k) {
    fail("rope.dimension_count " + std::to_string(rope.n_dims) +
         " must be even and at most the head size " + std::to_string(c.head_dim_k));
  }
}

bool is_embedding_model(const ml::gguf::Metadata& md) {
  const ml::gguf::Value* a = md.find("general.architecture");
  if (a == nullptr || !a->is<std::string>()) return false;
  const std::string& arch = a->as<std::string>();
  const ml::gguf::Value* causal = md.find(arch + ".attention.causal");
  return md.contains(arch + ".pooling_type") ||
         (causal != nullptr && causal->is<bool>() && !causal->as<bool>());
}

int64_t vocab_size(const ml::gguf::File& file) {
  if (const auto* t = file.find_tensor("token_embd.weight")) return t->ne[1];
  if (const auto* v = file.metadata().find("tokenizer.ggml.tokens");
      v && v->is<ml::gguf::Array>()) {
    return static_cast<int64_t>(v->as_array().items.size());
  }
  throw std::runtime_error(
      file.source() + ": no token_embd.weight nor tokenizer.ggml.tokens to size the vocabulary");
}

}  // namespace corral::model
