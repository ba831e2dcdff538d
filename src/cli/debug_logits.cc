// `corral debug logits MODEL --tokens 1,2,3`: the logits of every position of one prefill (f32
// KV cache), for comparing the forward pass with a research implementation. Text: the top 5 per
// position and checksums; --json: every value.
#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/debug_images.h"
#include "runner/engine.h"
#include "store/model.h"

namespace corral::cli {
namespace {

using Json = nlohmann::ordered_json;

struct LogitsArgs {
  std::string model;
  std::string tokens;
  std::optional<std::string> text;
  bool json = false;
  std::optional<int> threads;
  std::vector<std::string> images;
};

std::vector<int32_t> parse_token_list(const std::string& s) {
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] == ',' || s[i] == ' ') {
      ++i;
      continue;
    }
    size_t used = 0;
    long v = 0;
    try {
      v = std::stol(s.substr(i), &used);
    } catch (const std::exception&) {
      throw std::invalid_argument("--tokens: not a token id at '" + s.substr(i) + "'");
    }
    ids.push_back(static_cast<int32_t>(v));
    i += used;
    if (i < s.size() && s[i] != ',' && s[i] != ' ') {
      throw std::invalid_argument("--tokens: not a token id at '" + s.substr(i) + "'");
    }
  }
  return ids;
}

void run_logits(const LogitsArgs& a) {
  const store::ModelInfo info = store::resolve(store::Store(store::Store::default_root()), a.model);
  runner::Engine engine(info.gguf.string(),
                        {.n_threads = a.threads.value_or(0), .projector = info.projector.string()});
  std::vector<int32_t> ids;
  if (a.text) {
    ids = engine.tokenize(*a.text);
  } else {
    ids = parse_token_list(a.tokens);
  }
  if (ids.empty()) throw std::invalid_argument("no tokens: give --tokens 1,2,3 or --text TEXT");
  // The ids hold each image's placeholder as transformers' processor writes it: each is taken
  // out and the image placed where it was.
  std::vector<int32_t> text_ids = ids;
  std::vector<runner::PromptImage> images;
  size_t from = 0;
  for (const std::string& path : a.images) {
    runner::PromptImage image = read_prompt_image(engine.model(), path);
    const model::Placeholder p = engine.image_placeholder(image);
    const auto it = std::search(text_ids.begin() + static_cast<std::ptrdiff_t>(from),
                                text_ids.end(), p.tokens.begin(), p.tokens.end());
    if (p.tokens.empty() || it == text_ids.end()) {
      throw std::invalid_argument(path + ": the tokens hold no placeholder of " +
                                  std::to_string(p.tokens.size()) +
                                  " tokens for this image (as transformers' processor expands it)");
    }
    image.at = static_cast<size_t>(it - text_ids.begin());
    text_ids.erase(it, it + static_cast<std::ptrdiff_t>(p.tokens.size()));
    from = image.at;
    images.push_back(std::move(image));
  }
  const std::vector<float> logits = engine.logits(text_ids, images);
  const size_t n_vocab = static_cast<size_t>(engine.model().config().n_vocab);

  if (a.json) {
    Json rows = Json::array();
    for (size_t p = 0; p < ids.size(); ++p) {
      rows.push_back(
          std::vector<float>(logits.begin() + p * n_vocab, logits.begin() + (p + 1) * n_vocab));
    }
    Json doc{{"model", a.model},
             {"n_vocab", n_vocab},
             {"tokens", ids},
             {"logits_shape", {ids.size(), n_vocab}},
             {"logits", std::move(rows)}};
    std::cout << doc.dump() << "\n";
    return;
  }

  const auto& tok = engine.tokenizer();
  std::printf("%s: %s, %zu tokens, n_vocab %zu\n", a.model.c_str(),
              engine.model().config().architecture.c_str(), ids.size(), n_vocab);
  std::vector<int32_t> order(n_vocab);
  for (size_t p = 0; p < ids.size(); ++p) {
    const float* row = logits.data() + p * n_vocab;
    std::iota(order.begin(), order.end(), 0);
    const size_t k = std::min<size_t>(5, n_vocab);
    std::partial_sort(
        order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(),
        [row](int32_t x, int32_t y) { return row[x] > row[y] || (row[x] == row[y] && x < y); });
    std::printf("pos %zu token %d %s:", p, ids[p],
                Json(tok.token_to_piece(ids[p]))
                    .dump(-1, ' ', false, Json::error_handler_t::replace)
                    .c_str());
    for (size_t i = 0; i < k; ++i) std::printf("  %d=%.6f", order[i], row[order[i]]);
    std::printf("\n");
  }
  double sum = 0, sum_abs = 0, max_abs = 0;
  for (float v : logits) {
    sum += v;
    sum_abs += std::fabs(v);
    max_abs = std::max(max_abs, static_cast<double>(std::fabs(v)));
  }
  std::printf("checksum: sum %.6f  sum|x| %.6f  max|x| %.6f over %zu values\n", sum, sum_abs,
              max_abs, logits.size());
}

}  // namespace

void add_debug_logits_command(CLI::App& debug) {
  auto* cmd = debug.add_subcommand(
      "logits",
      "Print the logits of every position of one prefill (f32 KV cache): top 5 per position "
      "and checksums, or every value with --json");
  auto a = std::make_shared<LogitsArgs>();
  cmd->add_option("model", a->model, "GGUF model file, or a model in the store")->required();
  auto* tokens = cmd->add_option("--tokens", a->tokens, "Token ids, comma-separated (1,403,407)");
  auto* text =
      cmd->add_option("--text", a->text, "Text to tokenize instead (BOS as the model asks)");
  tokens->excludes(text);
  cmd->add_flag("--json", a->json,
                "Print {\"tokens\", \"logits_shape\": [n_tokens, n_vocab], \"logits\": rows}");
  cmd->add_option("--image", a->images,
                  "An image the tokens show (vision models; repeatable, in order): --tokens then "
                  "hold its placeholder tokens as transformers' processor writes them");
  cmd->add_option("-t,--threads", a->threads, "CPU threads (default: physical cores)");
  cmd->callback([a] { run_logits(*a); });
}

}  // namespace corral::cli
