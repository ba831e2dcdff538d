// `corral cp SRC DST`: a second name for a model (the manifest is copied; blobs are shared),
// through the server at CORRAL_HOST when one answers (POST /api/copy), else in the local store.
#include <iostream>
#include <memory>
#include <string>

#include "cli/client.h"
#include "cli/commands.h"
#include "store/store.h"

namespace corral::cli {

void add_cp_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("cp", "Copy a model under a new name");
  auto names = std::make_shared<std::pair<std::string, std::string>>();
  cmd->add_option("source", names->first, "The model to copy")->required();
  cmd->add_option("destination", names->second, "The new name")->required();
  cmd->footer("Only the manifest is copied: both names share the model's files.");
  cmd->callback([names] {
    if (auto client = connect_if_running()) {
      client->post("/api/copy", {{"source", names->first}, {"destination", names->second}});
      std::cout << "copied '" << names->first << "' to '" << names->second << "'\n";
      return;
    }
    const store::ModelName from = store::ModelName::parse(names->first);
    const store::ModelName to = store::ModelName::parse(names->second);
    store::Store st(store::Store::default_root());
    if (!st.find_manifest(from)) {
      throw std::runtime_error("model '" + names->first + "' not found");
    }
    st.copy(from, to);
    std::cout << "copied '" << names->first << "' to '" << names->second << "'\n";
  });
}

}  // namespace corral::cli
