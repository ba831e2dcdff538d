// `corral rm NAME...`: removes models, and the files no other model uses; through the server at
// CORRAL_HOST when one answers (unloading the model first, then DELETE /api/delete, as `ollama rm`
// does), else in the local store.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/client.h"
#include "cli/commands.h"
#include "store/store.h"

namespace corral::cli {
namespace {

void remove_remote(Client& client, const std::vector<std::string>& names) {
  for (const std::string& n : names) {
    try {
      client.post("/api/generate", {{"model", n}, {"keep_alive", 0}});
    } catch (const ServerError& e) {
      if (e.status != 404) std::cerr << "Warning: unable to stop model '" << n << "'\n";
    }
    client.del("/api/delete", {{"model", n}});
    std::cout << "deleted '" << n << "'\n";
  }
}

}  // namespace

void add_rm_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("rm", "Remove models from the store");
  auto names = std::make_shared<std::vector<std::string>>();
  cmd->add_option("names", *names, "The models to remove")->required();
  cmd->footer("Files another model still uses (after corral cp, or a shared base) are kept.");
  cmd->callback([names] {
    if (auto client = connect_if_running()) {
      remove_remote(*client, *names);
      return;
    }
    store::Store st(store::Store::default_root());
    // Every name is checked before anything is removed.
    std::vector<store::ModelName> parsed;
    for (const std::string& n : *names) {
      parsed.push_back(store::ModelName::parse(n));
      if (!st.find_manifest(parsed.back())) throw std::runtime_error("model '" + n + "' not found");
    }
    for (size_t i = 0; i < parsed.size(); ++i) {
      st.remove(parsed[i]);
      std::cout << "deleted '" << (*names)[i] << "'\n";
    }
  });
}

}  // namespace corral::cli
