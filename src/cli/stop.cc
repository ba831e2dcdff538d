// `corral stop MODEL`: asks the server at CORRAL_HOST to unload a model now (a generate request
// with keep_alive 0, as `ollama stop` sends).
#include <iostream>
#include <memory>
#include <string>

#include "cli/client.h"
#include "cli/commands.h"

namespace corral::cli {

void add_stop_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("stop", "Stop a running model (unload it from the server)");
  auto model = std::make_shared<std::string>();
  cmd->add_option("model", *model, "The model to unload (corral ps lists them)")->required();
  cmd->footer("Asks the corral server at CORRAL_HOST (default 127.0.0.1:11434).");
  cmd->callback([model] {
    const std::unique_ptr<Client> client = connect_or_throw();
    client->post("/api/generate", {{"model", *model}, {"keep_alive", 0}});
  });
}

}  // namespace corral::cli
