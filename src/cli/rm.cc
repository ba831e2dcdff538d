// `corral rm NAME...`: removes models, and the files no other model uses; through the server at
// CORRAL_HOST when one answers (unloading the model first, then DELETE /api/delete, as `ollama rm`
// does), else in the local store.
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/client.h"
#include "cli/commands.h"
#include "store/store.h"

namespace corral::cli {
namespace {

void remove_remote(Client& client, const std::string& n) {
  try {
    client.post("/api/generate", {{"model", n}, {"keep_alive", 0}});
  } catch (const ServerError& e) {
    if (e.status != 404) std::cerr << "Warning: unable to stop model '" << n << "'\n";
  }
  client.del("/api/delete", {{"model", n}});
}

}  // namespace

void add_rm_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("rm", "Remove models from the store");
  auto names = std::make_shared<std::vector<std::string>>();
  cmd->add_option("names", *names, "The models to remove")->required();
  cmd->footer("Files another model still uses (after corral cp, or a shared base) are kept.");
  cmd->callback([names] {
    // Each name on its own, as `ollama rm`: the models that exist are removed, each error is
    // reported, and the exit status says whether any failed.
    std::unique_ptr<Client> client = connect_if_running();
    std::optional<store::Store> local;
    if (!client) local.emplace(store::Store::default_root());
    bool failed = false;
    for (const std::string& n : *names) {
      try {
        if (client) {
          remove_remote(*client, n);
        } else {
          const store::ModelName parsed = store::ModelName::parse(n);
          if (!local->find_manifest(parsed))
            throw std::runtime_error("model '" + n + "' not found");
          local->remove(parsed);
        }
        std::cout << "deleted '" << n << "'\n" << std::flush;
      } catch (const std::exception& e) {
        std::cerr << "Error: " << e.what() << "\n";
        failed = true;
      }
    }
    if (failed) std::exit(1);
  });
}

}  // namespace corral::cli
