// corral: one executable, one subcommand per file in src/cli/.
#include <CLI/CLI.hpp>
#include <exception>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"corral: run large language models locally"};
  app.set_version_flag("-v,--version", std::string("corral version ") + CORRAL_VERSION);
  app.require_subcommand(0, 1);
  // `corral help [COMMAND]`, as `ollama help` answers.
  auto* help = app.add_subcommand("help", "Help about any command");
  auto help_topic = std::make_shared<std::vector<std::string>>();
  help->add_option("command", *help_topic,
                   "The command to explain (run, create, debug tensors, ...)");
  help->callback([&app, help_topic] {
    const CLI::App* at = &app;
    std::string path = app.get_name();
    for (const std::string& name : *help_topic) {
      path += " " + name;
      const CLI::App* sub = nullptr;
      for (const CLI::App* s : at->get_subcommands([](const CLI::App*) { return true; })) {
        if (s->get_name() == name) sub = s;
      }
      if (sub == nullptr) {
        throw std::runtime_error("unknown help topic '" + name +
                                 "'; `corral help` lists the commands");
      }
      at = sub;
    }
    // Not at->help(): it would describe the command being run, `help` itself.
    std::cout << at->get_formatter()->make_help(at, path, CLI::AppFormatMode::Normal);
  });
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
