#include "model/model.h"

#include <stdexcept>

namespace corral::model {

ml::Tensor Model::forward(ml::Graph& g, const Batch& batch, kvcache::Causal& cache) {
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
  Inputs in{leaf(batch.tokens, "tokens"), leaf(batch.positions, "positions"), {}};
  if (batch.outputs.size() != n) in.outputs = leaf(batch.outputs, "outputs");
  return build(in, cache);
}

int64_t Keys::integer(std::string_view key) const { return meta_.get_integer(full(key)); }

int64_t Keys::integer_or(std::string_view key, int64_t fallback) const {
  return has(key) ? integer(key) : fallback;
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
