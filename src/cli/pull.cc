// `corral pull NAME [--insecure]`: a model from an OCI registry (registry.ollama.ai unless the
// name has a host; CORRAL_REGISTRY_MIRROR redirects the default) into the store, with Ollama's
// status lines. Through the server at CORRAL_HOST when one answers (POST /api/pull, so the
// server's store gets the model); with none, in this process.
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/pull.h"
#include "store/registry/pull.h"

namespace corral::cli {
namespace {

struct PullArgs {
  std::string name;
  bool insecure = false;
};

// "pulling 1a2b3c4d5e6f  45% ▕ 533 KB/1.2 MB" redrawn in place on a terminal; elsewhere a counted
// status is printed when it starts and when it ends.
class PullPrinter {
 public:
  PullPrinter() : tty_(isatty(STDOUT_FILENO) != 0) {}
  ~PullPrinter() {
    if (open_) std::printf("\n");
  }

  void operator()(const store::registry::PullProgress& p) {
    if (p.total == 0) {
      if (open_) std::printf("\n");
      open_ = false;
      std::printf("%s\n", p.status.c_str());
    } else {
      const bool done = p.completed >= p.total;
      const int pct = static_cast<int>(p.completed * 100 / p.total);
      const std::string line = p.status + " " + std::to_string(pct) + "% " +
                               human_decimal_bytes(p.completed) + "/" +
                               human_decimal_bytes(p.total);
      if (tty_) {
        std::printf("\r%s\033[K", line.c_str());
        open_ = true;
      } else if (p.status != last_ || (done && !last_done_)) {
        std::printf("%s\n", line.c_str());
      }
      last_done_ = p.status == last_ && last_done_ ? true : done;
    }
    last_ = p.status;
    std::fflush(stdout);
  }

 private:
  bool tty_;
  bool open_ = false;
  bool last_done_ = false;
  std::string last_;
};

}  // namespace

void pull_model(Client* client, const std::string& model, bool insecure) {
  const store::ModelName name = store::ModelName::parse(model);
  PullPrinter printer;
  if (client) {
    const nlohmann::json req = {{"model", model}, {"insecure", insecure}, {"stream", true}};
    client->stream("/api/pull", req, [&printer](const nlohmann::json& obj) {
      store::registry::PullProgress p;
      p.status = obj.value("status", "");
      p.digest = obj.value("digest", "");
      p.total = obj.value("total", uint64_t{0});
      p.completed = obj.value("completed", uint64_t{0});
      if (!p.status.empty()) printer(p);
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
