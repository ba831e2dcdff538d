#include "cli/embed.h"

#include <charconv>
#include <cmath>
#include <stdexcept>

#include "runner/runner.h"
#include "server/generation.h"

namespace corral::cli {

std::vector<float> embed_remote(Client& client, const EmbedArgs& a) {
  nlohmann::json req = {{"model", a.model}, {"input", a.text}};
  if (a.truncate) req["truncate"] = *a.truncate;
  if (a.dimensions > 0) req["dimensions"] = a.dimensions;
  if (a.num_ctx > 0) req["options"] = {{"num_ctx", a.num_ctx}};
  const nlohmann::json resp = client.post("/api/embed", req);
  const auto it = resp.find("embeddings");
  if (it == resp.end() || !it->is_array() || it->empty() || !(*it)[0].is_array()) {
    throw std::runtime_error("no embeddings returned");
  }
  return (*it)[0].get<std::vector<float>>();
}

std::vector<float> embed_local(const store::ModelInfo& info, const EmbedArgs& a) {
  runner::RunnerOptions o;
  o.num_parallel = 1;
  o.n_threads = a.threads.value_or(0);
  if (a.num_ctx > 0) o.num_ctx = a.num_ctx;
  o.fit_memory = [&a](const runner::MemoryNeeds& n) {
    return runner::admit_in_process(a.model, n);
  };
  runner::Runner r(info.gguf.string(), o);
  runner::SequenceRequest req;
  req.embed = true;
  req.prompt =
      server::embed_tokens(r.tokenizer(), a.text, r.options().num_ctx, a.truncate.value_or(true));
  std::vector<float> v = r.submit(std::move(req))->result().embedding;
  server::truncate_dimensions(v, a.dimensions);
  return v;
}

std::string embedding_json(std::span<const float> v) {
  std::string out = "[";
  char buf[64];
  for (size_t i = 0; i < v.size(); ++i) {
    if (i > 0) out += ',';
    const float f = v[i];
    if (!std::isfinite(f)) throw std::runtime_error("the embedding holds NaN or Inf values");
    const float abs = std::fabs(f);
    const bool exp = abs != 0 && (abs < 1e-6f || abs >= 1e21f);
    const auto r = std::to_chars(buf, buf + sizeof buf, f,
                                 exp ? std::chars_format::scientific : std::chars_format::fixed);
    std::string s(buf, r.ptr);
    // Go writes e-07 as e-7.
    if (const size_t e = s.find('e');
        e != std::string::npos && e + 2 < s.size() && s[e + 2] == '0' && e + 3 < s.size()) {
      s.erase(e + 2, 1);
    }
    out += s;
  }
  return out + "]";
}

}  // namespace corral::cli
