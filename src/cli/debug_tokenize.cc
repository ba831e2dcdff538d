// `corral debug tokenize MODEL TEXT` and `corral debug detokenize MODEL IDS`: the tokenizer of a
// GGUF file, a Hugging Face folder (tokenizer.json, or tokenizer.model) or a SentencePiece
// .model file, on its own.
#include <charconv>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "ml/gguf/reader.h"
#include "store/model.h"
#include "tokenizer/tokenizer.h"

namespace corral::cli {
namespace {

namespace fs = std::filesystem;
using tokenizer::Tokenizer;
using Json = nlohmann::ordered_json;

Tokenizer load_tokenizer(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    if (fs::exists(fs::path(path) / "tokenizer.json")) return Tokenizer::from_hf(path);
    if (fs::exists(fs::path(path) / "tokenizer.model")) {
      return Tokenizer::from_sentencepiece((fs::path(path) / "tokenizer.model").string());
    }
    throw std::runtime_error(path + ": no tokenizer.json or tokenizer.model in this folder");
  }
  if (path.ends_with(".model") && fs::exists(path, ec)) {
    return Tokenizer::from_sentencepiece(path);
  }
  // A GGUF file, or a model in the store.
  if (!fs::exists(path, ec) && !store::ModelName::valid(path)) {
    throw std::runtime_error(path + ": no such file or folder");
  }
  const store::ModelInfo info = store::resolve(store::Store(store::Store::default_root()), path);
  const ml::gguf::File file = ml::gguf::File::open(info.gguf.string());
  return Tokenizer::from_gguf(file.metadata());
}

// Ids separated by commas and/or whitespace, over one or more arguments.
std::vector<int32_t> parse_ids(const std::vector<std::string>& args) {
  std::vector<int32_t> ids;
  for (const std::string& arg : args) {
    size_t i = 0;
    while (i < arg.size()) {
      if (arg[i] == ',' || arg[i] == ' ' || arg[i] == '\t' || arg[i] == '\n' || arg[i] == '[' ||
          arg[i] == ']') {
        ++i;
        continue;
      }
      int32_t v = 0;
      const auto r = std::from_chars(arg.data() + i, arg.data() + arg.size(), v);
      if (r.ec != std::errc()) {
        throw std::invalid_argument("not a token id: '" +
                                    arg.substr(i, arg.find_first_of(", ", i) - i) + "'");
      }
      ids.push_back(v);
      i = static_cast<size_t>(r.ptr - arg.data());
      if (i < arg.size() && arg[i] != ',' && arg[i] != ' ' && arg[i] != '\t' && arg[i] != '\n' &&
          arg[i] != ']') {
        throw std::invalid_argument("not a token id: '" + arg + "'");
      }
    }
  }
  return ids;
}

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

struct TokenizeArgs {
  std::string model;
  std::string text;
  bool json = false;
  bool no_special = false;
  bool pieces = false;
};

struct DetokenizeArgs {
  std::string model;
  std::vector<std::string> ids;
  bool json = false;
  bool skip_special = false;
};

void run_tokenize(const TokenizeArgs& a) {
  const Tokenizer tok = load_tokenizer(a.model);
  const std::vector<int32_t> ids = tok.encode(a.text, !a.no_special, !a.no_special);
  if (a.json) {
    Json pieces = Json::array();
    for (int32_t id : ids) pieces.push_back(tok.vocab().text(id));
    std::cout << dump(Json{{"ids", ids}, {"tokens", pieces}}) << "\n";
    return;
  }
  if (a.pieces) {
    for (int32_t id : ids) std::cout << id << "\t" << dump(Json(tok.vocab().text(id))) << "\n";
    return;
  }
  for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
  std::cout << "\n";
}

void run_detokenize(const DetokenizeArgs& a) {
  const Tokenizer tok = load_tokenizer(a.model);
  const std::vector<int32_t> ids = parse_ids(a.ids);
  for (int32_t id : ids) {
    if (id < 0 || static_cast<size_t>(id) >= tok.vocab().size()) {
      throw std::invalid_argument("token id " + std::to_string(id) +
                                  " is outside the vocabulary (" +
                                  std::to_string(tok.vocab().size()) + " tokens)");
    }
  }
  const std::string text = tok.decode(ids, a.skip_special);
  if (a.json) {
    std::cout << dump(Json{{"text", text}}) << "\n";
  } else {
    std::cout << text << "\n";
  }
}

}  // namespace

void add_debug_tokenize_commands(CLI::App& debug) {
  const char* kModelHelp =
      "GGUF file, Hugging Face folder (tokenizer.json [+ tokenizer_config.json], or "
      "tokenizer.model), SentencePiece .model file, or a model in the store";

  auto* tok = debug.add_subcommand("tokenize", "Print the token ids of a text");
  auto ta = std::make_shared<TokenizeArgs>();
  tok->add_option("model", ta->model, kModelHelp)->required();
  tok->add_option("text", ta->text, "Text to encode")->required();
  tok->add_flag("--json", ta->json, "Print {\"ids\": [...], \"tokens\": [...]}");
  tok->add_flag("--no-special", ta->no_special,
                "Add no BOS/EOS, and read special-token text (\"<s>\") as plain text");
  tok->add_flag("--pieces", ta->pieces, "Print one token per line: id, then its vocabulary text");
  tok->callback([ta] { run_tokenize(*ta); });

  auto* detok = debug.add_subcommand("detokenize", "Print the text of token ids");
  auto da = std::make_shared<DetokenizeArgs>();
  detok->add_option("model", da->model, kModelHelp)->required();
  detok->add_option("ids", da->ids, "Token ids, separated by commas or spaces")->required();
  detok->add_flag("--json", da->json, "Print {\"text\": ...} (exact, with escapes)");
  detok->add_flag("--skip-special", da->skip_special, "Leave out control tokens (BOS, EOS, ...)");
  detok->callback([da] { run_detokenize(*da); });
}

}  // namespace corral::cli
