// Subcommands of the corral executable, one file each. Every add_* function registers its
// subcommand on the app; the command's callback throws std::exception on failure, and main prints
// "Error: <what>" and exits 1.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "store/model.h"
#include "store/store.h"
#include "template/prompt.h"

namespace corral::ml::gguf {
class File;
}

namespace corral::cli {

void add_show_command(CLI::App& app);      // show.cc
void add_debug_command(CLI::App& app);     // debug.cc
void add_run_command(CLI::App& app);       // run.cc
void add_quantize_command(CLI::App& app);  // quantize.cc
void add_store_commands(CLI::App& app);    // create, pull, list, cp, rm, ps, stop (create.cc)
void add_bench_command(CLI::App& app);     // bench.cc
void add_serve_command(CLI::App& app);     // serve.cc

// `corral debug tokenize|detokenize|logits` (debug_tokenize.cc, debug_logits.cc), registered by
// add_debug_command.
void add_debug_tokenize_commands(CLI::App& debug);
void add_debug_logits_command(CLI::App& debug);
void add_debug_tensors_command(CLI::App& debug);  // debug_tensors.cc
void add_debug_preprocess_command(CLI::App& debug);
void add_debug_render_command(CLI::App& debug);  // debug_render.cc
void add_debug_synth_command(CLI::App& debug);   // debug_synth.cc

// What `corral debug render` renders with: a model's chat template and the variables it sees
// (bos_token, eos_token...). From a Hugging Face folder (chat_template.jinja or
// tokenizer_config.json), a .gguf file or a store name (TEMPLATE layer, else
// tokenizer.chat_template).
struct RenderSource {
  tmpl::PromptTemplate chat_template;
  tmpl::Json context = tmpl::Json::object();
};
RenderSource render_source(const std::string& model_or_dir);
// Renders a chat file's {"messages", "tools", "documents", "add_generation_prompt", "context",
// "think"} with `source`. Throws std::invalid_argument for a malformed chat, and the template
// engine's error.
std::string render_chat_file(const RenderSource& source, const tmpl::Json& chat);

void add_create_command(CLI::App& app);  // create.cc
void add_list_command(CLI::App& app);    // list.cc
void add_cp_command(CLI::App& app);      // cp.cc
void add_rm_command(CLI::App& app);      // rm.cc
void add_ps_command(CLI::App& app);      // ps.cc
void add_stop_command(CLI::App& app);    // stop.cc
void add_pull_command(CLI::App& app);    // pull.cc
void add_push_command(CLI::App& app);    // push.cc

// Table and time formatting shared by list and ps (list.cc), as Ollama's CLI prints them.
// format.HumanBytes: decimal units ("1.2 GB", "260 KB").
std::string human_decimal_bytes(uint64_t bytes);
// format.HumanTime's duration part: "Less than a second", "About a minute", "3 days".
std::string human_duration(double seconds);
// "... ago" for a positive argument, "... from now" for a negative one.
std::string human_time_since(double seconds_ago);
// Left-aligned columns, four spaces apart (Ollama's table writer without borders).
void print_table(const std::vector<std::vector<std::string>>& rows, std::ostream& out);
double seconds_since_epoch();

// The name llama.cpp gives a general.file_type number ("Q4_K_M"), if it is one (show.cc).
std::optional<std::string> file_type_name(int64_t ftype);

// The `corral show` summary of a model file (show.cc).
void print_model_summary(const ml::gguf::File& file, std::ostream& out);
// server::show_json's answer, through JSON text as a server's answer arrives (invalid UTF-8
// replaced the same way): what `corral show` and the REPL's /show print in this process.
nlohmann::json show_answer(const store::Store& st, const store::ModelInfo& info, bool verbose);
// The same summary from a server's /api/show answer (show.cc); also the REPL's `/show info` on a
// server. `verbose` adds the model_info keys.
void print_show_answer(const nlohmann::json& answer, bool verbose, std::ostream& out);

}  // namespace corral::cli
