// `corral debug render MODEL_OR_DIR --chat FILE.json [--template FILE]`: the prompt a model's
// template makes of a conversation, printed exactly, with nothing added.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "cli/commands.h"
#include "ml/gguf/reader.h"
#include "store/model.h"
#include "template/prompt.h"
#include "tokenizer/vocab.h"

namespace corral::cli {
namespace {

namespace fs = std::filesystem;
using tmpl::Json;

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path.string() + ": cannot open");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// tokenizer_config.json spells special tokens as a string or as {"content": ...}.
std::optional<std::string> token_text(const Json& config, const char* key) {
  const auto it = config.find(key);
  if (it == config.end()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
    return (*it)["content"].get<std::string>();
  return std::nullopt;
}

// The chat template and special tokens of a Hugging Face folder, as transformers reads them:
// chat_template.jinja, else tokenizer_config.json's chat_template (a string, or a list of named
// templates of which "default" is used).
RenderSource hf_folder_source(const fs::path& dir) {
  RenderSource source;
  Json config = Json::object();
  if (fs::exists(dir / "tokenizer_config.json")) {
    try {
      config = Json::parse(read_text(dir / "tokenizer_config.json"));
    } catch (const Json::parse_error& e) {
      throw std::runtime_error((dir / "tokenizer_config.json").string() + ": " + e.what());
    }
  }
  std::optional<std::string> text;
  if (fs::exists(dir / "chat_template.jinja")) {
    text = read_text(dir / "chat_template.jinja");
  } else if (auto it = config.find("chat_template"); it != config.end()) {
    if (it->is_string()) {
      text = it->get<std::string>();
    } else if (it->is_array()) {
      for (const auto& entry : *it)
        if (entry.is_object() && entry.value("name", "") == "default" &&
            entry.contains("template") && entry["template"].is_string())
          text = entry["template"].get<std::string>();
    }
  }
  if (!text) throw std::runtime_error(dir.string() + ": no chat template in this folder");
  source.chat_template = tmpl::PromptTemplate{tmpl::detect_syntax(*text), *text, "chat template"};
  for (const char* key : {"bos_token", "eos_token", "unk_token", "pad_token"})
    if (auto t = token_text(config, key)) source.context[key] = *t;
  return source;
}

RenderSource gguf_source(const fs::path& path, const std::optional<std::string>& modelfile) {
  const auto file = ml::gguf::File::open(path.string());
  RenderSource source;
  source.chat_template = *tmpl::choose_template(modelfile, file.metadata());
  try {
    tmpl::add_special_tokens(tokenizer::load_gguf_vocab(file.metadata()), source.context);
  } catch (const tokenizer::VocabError&) {
    // A template can be rendered without a vocabulary; it just sees no special tokens.
  }
  return source;
}

}  // namespace

RenderSource render_source(const std::string& model_or_dir) {
  std::error_code ec;
  if (fs::is_directory(model_or_dir, ec)) return hf_folder_source(model_or_dir);
  const store::Store store(store::Store::default_root());
  const store::ModelInfo info = store::resolve(store, model_or_dir);
  return gguf_source(info.gguf, info.template_text);
}

std::string render_chat_file(const RenderSource& source, const Json& chat) {
  if (!chat.is_object()) throw std::invalid_argument("the chat file must hold a JSON object");
  tmpl::ChatInput input;
  if (chat.contains("messages")) input.messages = chat["messages"];
  if (!input.messages.is_array()) throw std::invalid_argument("\"messages\" must be an array");
  if (chat.contains("tools")) input.tools = chat["tools"];
  if (chat.contains("documents")) input.documents = chat["documents"];
  if (chat.contains("add_generation_prompt")) {
    if (!chat["add_generation_prompt"].is_boolean())
      throw std::invalid_argument("\"add_generation_prompt\" must be true or false");
    input.add_generation_prompt = chat["add_generation_prompt"].get<bool>();
  }
  input.context = source.context;
  if (chat.contains("context")) {
    if (!chat["context"].is_object()) throw std::invalid_argument("\"context\" must be an object");
    for (const auto& [key, value] : chat["context"].items()) input.context[key] = value;
  }
  if (chat.contains("think") && chat["think"].is_boolean()) input.think = chat["think"].get<bool>();
  return tmpl::render_prompt(source.chat_template, input);
}

void add_debug_render_command(CLI::App& debug) {
  struct Args {
    std::string model, chat, template_file;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = debug.add_subcommand(
      "render", "Print the prompt a model's chat template makes of a conversation, exactly");
  cmd->add_option("model", args->model,
                  "A model name, a .gguf file, or a Hugging Face folder (its chat template)")
      ->required();
  cmd->add_option("--chat", args->chat,
                  "JSON file: {\"messages\": [...], \"tools\": [...], "
                  "\"add_generation_prompt\": true, \"context\": {\"bos_token\": ...}}")
      ->required();
  cmd->add_option("--template", args->template_file,
                  "Render this template file (Jinja or Go, detected) instead of the model's");
  cmd->footer(
      "\nExamples:\n"
      "  corral debug render llama3.2 --chat chat.json\n"
      "  corral debug render ./Qwen2.5-0.5B-Instruct --chat chat.json\n"
      "  corral debug render model.gguf --chat chat.json --template my.gotmpl\n");
  cmd->callback([args] {
    Json chat;
    try {
      chat = Json::parse(read_text(args->chat));
    } catch (const Json::parse_error& e) {
      throw std::runtime_error(args->chat + ": " + e.what());
    }
    RenderSource source = render_source(args->model);
    if (!args->template_file.empty()) {
      const std::string text = read_text(args->template_file);
      source.chat_template =
          tmpl::PromptTemplate{tmpl::detect_syntax(text), text, args->template_file};
    }
    std::cout << render_chat_file(source, chat);
    std::cout.flush();
  });
}

}  // namespace corral::cli
