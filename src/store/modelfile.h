// Modelfiles with Ollama's grammar (parser/parser.go, docs/modelfile.md): one instruction per
// line, case-insensitive (FROM, PARAMETER, TEMPLATE, SYSTEM, ADAPTER, LICENSE, MESSAGE,
// REQUIRES), `#` comments, values plain to the end of the line or quoted in "..." or """...""",
// which may span lines. And the printer `corral show --modelfile` uses, whose output parses back
// to the same model.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace corral::store {

class ModelfileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ModelfileMessage {
  std::string role;  // system | user | assistant | tool
  std::string content;
  bool operator==(const ModelfileMessage&) const = default;
};

struct Modelfile {
  std::string from;  // as written: a .gguf path, a safetensors folder or a model name
  // A second FROM (vision models in llama.cpp's two files): the other of the text GGUF and its
  // projector (mmproj) GGUF; which is which is read from the files.
  std::optional<std::string> from2;
  std::optional<std::string> template_text;
  std::optional<std::string> system;
  // Typed as Ollama's api.Options (sample::params_to_json): repeated `stop` lines make a list.
  nlohmann::ordered_json parameters = nlohmann::ordered_json::object();
  std::vector<ModelfileMessage> messages;
  std::vector<std::string> licenses;
  std::optional<std::string> requires_version;  // REQUIRES, without a leading 'v'
  // Non-fatal notes (deprecated parameters that are ignored), for the caller to print.
  std::vector<std::string> warnings;
};

// Throws ModelfileError "<source> line N: <what>" (or "<source>: no FROM line").
Modelfile parse_modelfile(std::string_view text, const std::string& source = "Modelfile");

// Ollama's `show --modelfile` layout: a header comment naming `name`, then FROM, TEMPLATE, SYSTEM,
// PARAMETER lines, LICENSE and MESSAGE lines. Values are quoted so that they parse back exactly;
// throws ModelfileError for a value no Modelfile can hold (one containing `"""` that also needs
// quoting).
std::string format_modelfile(const Modelfile& modelfile, const std::string& name);

// A FROM/ADAPTER argument as a path: `~` and `~/...` are the home folder, relative paths are
// relative to `dir` (the Modelfile's folder).
std::filesystem::path expand_modelfile_path(const std::string& arg,
                                            const std::filesystem::path& dir);

}  // namespace corral::store
