// `corral run EMBEDDING_MODEL "text"`: the text's embedding printed as a JSON array, as `ollama
// run` prints it for a model whose capabilities are "embedding". Run by the server (/api/embed)
// or in this process, through the same tokenization, truncation and `dimensions` as the server.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "cli/client.h"
#include "store/model.h"

namespace corral::cli {

struct EmbedArgs {
  std::string model;
  std::string text;
  std::optional<bool> truncate;  // unset: true, as the server's default
  int dimensions = 0;            // 0: all
  std::optional<int> threads;
  int64_t num_ctx = 0;  // 0: the model's default
};

std::vector<float> embed_remote(Client& client, const EmbedArgs& a);
std::vector<float> embed_local(const store::ModelInfo& info, const EmbedArgs& a);

// A vector as Go's encoding/json writes a []float32: the shortest text that reads back as the
// same float32, in fixed notation unless the magnitude is below 1e-6 or at least 1e21.
std::string embedding_json(std::span<const float> v);

}  // namespace corral::cli
