// corral: one executable, one subcommand per file in src/cli/.
#include <CLI/CLI.hpp>
#include <iostream>

int main(int argc, char** argv) {
  CLI::App app{"corral: run large language models locally"};
  app.set_version_flag("--version", std::string("corral ") + CORRAL_VERSION);
  app.require_subcommand(0, 1);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (argc == 1) std::cout << app.help();
  return 0;
}
