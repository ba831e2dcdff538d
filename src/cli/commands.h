// Subcommands of the corral executable, one file each. Every add_* function registers its
// subcommand on the app; the command's callback throws std::exception on failure, and main prints
// "Error: <what>" and exits 1.
#pragma once

#include <CLI/CLI.hpp>

namespace corral::cli {

void add_show_command(CLI::App& app);   // show.cc
void add_debug_command(CLI::App& app);  // debug.cc

}  // namespace corral::cli
