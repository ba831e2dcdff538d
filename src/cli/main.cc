// corral: one executable, one subcommand per file in src/cli/.
#include <CLI/CLI.hpp>
#include <exception>
#include <iostream>

#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"corral: run large language models locally"};
  app.set_version_flag("--version", std::string("corral ") + CORRAL_VERSION);
  app.require_subcommand(0, 1);
  corral::cli::add_run_command(app);
  corral::cli::add_show_command(app);
  corral::cli::add_debug_command(app);
  corral::cli::add_quantize_command(app);
  corral::cli::add_store_commands(app);
  corral::cli::add_bench_command(app);
  corral::cli::add_serve_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::cout.flush();
    std::cerr << "Error: " << e.what() << "\n";
    return 1;
  }
  if (argc == 1) std::cout << app.help();
  return 0;
}
