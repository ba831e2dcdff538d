// `corral push NAME [--insecure]`: a model of the store to the OCI registry its name names
// (registry.ollama.ai unless the name has a host), with Ollama's status lines. Through the server
// at CORRAL_HOST when one answers (POST /api/push, which pushes the server's store); with none,
// from this process's store.
#include <memory>
#include <string>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/transfer_progress.h"
#include "store/registry/push.h"

namespace corral::cli {
namespace {

struct PushArgs {
  std::string name;
  bool insecure = false;
};

void push(const PushArgs& a) {
  const store::ModelName name = store::ModelName::parse(a.name);
  TransferPrinter printer;
  if (auto client = connect_if_running()) {
    const nlohmann::json req = {{"model", a.name}, {"insecure", a.insecure}, {"stream", true}};
    client->stream("/api/push", req, [&printer](const nlohmann::json& obj) {
      printer(obj);
      return true;
    });
    return;
  }
  const store::Store st(store::Store::default_root());
  auto options = store::registry::push_options(a.insecure);
  options.progress = [&printer](const store::registry::PushProgress& p) { printer(p); };
  store::registry::push(st, name, options);
}

}  // namespace

void add_push_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("push", "Push a model to a registry");
  auto args = std::make_shared<PushArgs>();
  cmd->add_option("name", args->name, "The model ([host/][namespace/]model[:tag])")->required();
  cmd->add_flag("--insecure", args->insecure,
                "Use plain http to reach the registry (only for a registry you trust, such as one "
                "on this machine)");
  cmd->footer(
      "Uploads the model's blobs that the registry lacks (a blob another model of the same\n"
      "registry has is mounted from that model's repository instead; an interrupted upload asks\n"
      "the registry where it stopped and goes on from there), then its manifest, byte for byte.\n"
      "The registry and repository are the ones the name says: create or copy the model under\n"
      "such a name first (`corral cp stories 127.0.0.1:5000/me/stories`). Through a corral\n"
      "server when one answers at CORRAL_HOST.\n"
      "\n"
      "Example:\n"
      "  corral push me/my-model\n"
      "  corral push 127.0.0.1:5000/me/stories:latest --insecure");
  cmd->callback([args] { push(*args); });
}

}  // namespace corral::cli
