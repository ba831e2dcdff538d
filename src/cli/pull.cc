// `corral pull NAME [--insecure]`: a model from an OCI registry (registry.ollama.ai unless the
// name has a host; CORRAL_REGISTRY_MIRROR redirects the default) into the store, with Ollama's
// status lines. Through the server at CORRAL_HOST when one answers (POST /api/pull, so the
// server's store gets the model); with none, in this process.
#include <cstdio>
#include <memory>
#include <string>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/pull.h"
#include "cli/transfer_progress.h"
#include "store/registry/pull.h"

namespace corral::cli {
namespace {

struct PullArgs {
  std::string name;
  bool insecure = false;
};

}  // namespace

void pull_model(Client* client, const std::string& model, bool insecure) {
  const store::ModelName name = store::ModelName::parse(model);
  TransferPrinter printer;
  if (client) {
    const nlohmann::json req = {{"model", model}, {"insecure", insecure}, {"stream", true}};
    client->stream("/api/pull", req, [&printer](const nlohmann::json& obj) {
      printer(obj);
      return true;
    });
    return;
  }
  store::Store st(store::Store::default_root());
  auto options = store::registry::pull_options_from_env(insecure);
  options.progress = [&printer](const store::registry::PullProgress& p) { printer(p); };
  store::registry::pull(st, name, options);
}

namespace {

void pull(const PullArgs& a) { pull_model(connect_if_running().get(), a.name, a.insecure); }

}  // namespace

void add_pull_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("pull", "Pull a model from a registry");
  auto args = std::make_shared<PullArgs>();
  cmd->add_option("name", args->name, "The model ([host/][namespace/]model[:tag])")->required();
  cmd->add_flag("--insecure", args->insecure,
                "Use plain http to reach the registry (only for a registry you trust, such as one "
                "on this machine)");
  cmd->footer(
      "Downloads the model's blobs (in parallel parts; an interrupted pull continues where it\n"
      "stopped), checks each against its sha256 digest, and writes the manifest last, so the\n"
      "model appears in `corral list` only when it is complete. The default registry is\n"
      "registry.ollama.ai; CORRAL_REGISTRY_MIRROR=host[:port] (or scheme://host[:port]) fetches\n"
      "its models from a mirror instead. Through a corral server when one answers at CORRAL_HOST.\n"
      "A registry that asks for a password gets the one for its host from\n"
      "~/.corral/credentials.json or ~/.docker/config.json ({\"auths\": {\"HOST\": {\"auth\":\n"
      "base64 of user:password}}}); token requests to a registry's own host are signed as Ollama\n"
      "signs them, with ~/.corral/id_ed25519 (made on first use; add its .pub to ollama.com).\n"
      "\n"
      "Example:\n"
      "  corral pull llama3.2\n"
      "  corral pull hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M\n"
      "  corral pull 127.0.0.1:5000/library/stories:latest --insecure");
  cmd->callback([args] { pull(*args); });
}

}  // namespace corral::cli
