// `corral create NAME [-f Modelfile] [-q TYPE]`: a model in the store from a Modelfile, with
// Ollama's progress lines. Also registers the other store commands (list, cp, rm).
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "store/create.h"

namespace corral::cli {
namespace {

namespace fs = std::filesystem;

struct CreateArgs {
  std::string name;
  std::string file = "Modelfile";
  std::string quantize;
};

// Prints status lines: a counted status ("copying file sha256:... 42%") is updated in place on a
// terminal; elsewhere each status is one line, a counted one at its start and end only.
class ProgressPrinter {
 public:
  ProgressPrinter() : tty_(isatty(STDOUT_FILENO) != 0) {}
  ~ProgressPrinter() { finish_line(); }

  void operator()(const convert::Progress& p) {
    const std::string label = p.total ? p.status.substr(0, p.status.rfind(' ')) : p.status;
    if (p.total) {
      if (tty_) {
        std::printf("\r%s", p.status.c_str());
        open_line_ = true;
        if (p.completed >= p.total) finish_line();
      } else if (p.completed == 0 || p.completed >= p.total) {
        if (!(p.completed >= p.total && label == last_label_ && last_done_)) {
          std::printf("%s\n", p.status.c_str());
        }
        last_done_ = p.completed >= p.total;
      }
    } else {
      finish_line();
      std::printf("%s\n", p.status.c_str());
      last_done_ = false;
    }
    last_label_ = label;
    std::fflush(stdout);
  }

 private:
  void finish_line() {
    if (open_line_) std::printf("\n");
    open_line_ = false;
  }

  bool tty_;
  bool open_line_ = false;
  bool last_done_ = false;
  std::string last_label_;
};

void create(const CreateArgs& a) {
  const store::ModelName name = store::ModelName::parse(a.name);
  std::ifstream in(a.file, std::ios::binary);
  if (!in) {
    throw std::runtime_error(a.file + ": cannot open the Modelfile" +
                             (a.file == "Modelfile" ? " (give one with -f)" : ""));
  }
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  const store::Modelfile mf = store::parse_modelfile(text, a.file);
  for (const std::string& w : mf.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  store::Store st(store::Store::default_root());
  auto printer = std::make_shared<ProgressPrinter>();
  store::CreateOptions options;
  options.quantize = a.quantize;
  options.progress = [printer](const convert::Progress& p) { (*printer)(p); };
  store::create_model(st, name, mf, fs::absolute(a.file).parent_path(), options);
}

}  // namespace

void add_create_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("create", "Create a model in the store from a Modelfile");
  auto args = std::make_shared<CreateArgs>();
  cmd->add_option("name", args->name, "Name of the new model ([namespace/]model[:tag])")
      ->required();
  cmd->add_option("-f,--file", args->file, "The Modelfile (default: ./Modelfile)");
  cmd->add_option("-q,--quantize", args->quantize,
                  "Quantize the model to this type (Q4_K_M, Q8_0, F16, ...; see corral quantize "
                  "--help)");
  cmd->footer(
      "A Modelfile names the model and its settings, one instruction per line:\n"
      "  FROM ./model.gguf            a GGUF file, a safetensors folder, or a model in the store\n"
      "  PARAMETER temperature 0.7    a generation option (repeat `stop` for several)\n"
      "  SYSTEM \"\"\"You are ...\"\"\"     the system message\n"
      "  TEMPLATE \"\"\"...\"\"\"           the prompt template (Go template syntax)\n"
      "  MESSAGE user Hello           a message of the conversation to start from\n"
      "  LICENSE \"\"\"...\"\"\"            the license text\n"
      "Relative paths are relative to the Modelfile's folder. Models are stored under\n"
      "$CORRAL_MODELS (default ~/.corral/models), in Ollama's layout.\n"
      "\n"
      "Example:\n"
      "  corral create my-model -f ./Modelfile\n"
      "  corral create my-model:q4 -f ./Modelfile -q Q4_K_M");
  cmd->callback([args] { create(*args); });
}

void add_store_commands(CLI::App& app) {
  add_create_command(app);
  add_list_command(app);
  add_cp_command(app);
  add_rm_command(app);
}

}  // namespace corral::cli
