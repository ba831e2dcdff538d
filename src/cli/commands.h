// Subcommands of the corral executable, one file each. Every add_* function registers its
// subcommand on the app; the command's callback throws std::exception on failure, and main prints
// "Error: <what>" and exits 1.
#pragma once

#include <CLI/CLI.hpp>
#include <ostream>

namespace corral::ml::gguf {
class File;
}

namespace corral::cli {

void add_show_command(CLI::App& app);      // show.cc
void add_debug_command(CLI::App& app);     // debug.cc
void add_run_command(CLI::App& app);       // run.cc
void add_quantize_command(CLI::App& app);  // quantize.cc
void add_store_commands(CLI::App& app);    // create.cc list.cc cp.cc rm.cc: create, list, cp, rm

// `corral debug tokenize|detokenize|logits` (debug_tokenize.cc, debug_logits.cc), registered by
// add_debug_command.
void add_debug_tokenize_commands(CLI::App& debug);
void add_debug_logits_command(CLI::App& debug);

void add_create_command(CLI::App& app);  // create.cc
void add_list_command(CLI::App& app);    // list.cc
void add_cp_command(CLI::App& app);      // cp.cc
void add_rm_command(CLI::App& app);      // rm.cc

// The `corral show` summary of a model file (show.cc); also the REPL's `/show info`.
void print_model_summary(const ml::gguf::File& file, std::ostream& out);

}  // namespace corral::cli
