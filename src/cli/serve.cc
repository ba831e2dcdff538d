// `corral serve`: the HTTP server (Ollama's API and the OpenAI-compatible one) on CORRAL_HOST
// until SIGINT or SIGTERM.
#include <pthread.h>
#include <signal.h>

#include <iostream>
#include <thread>

#include "cli/commands.h"
#include "server/server.h"

namespace corral::cli {
namespace {

void serve() {
  server::ServerOptions options = server::server_options_from_env();
  // Signals are taken by one thread (sigwait) rather than a handler, so that stopping the server
  // runs as ordinary code. They are blocked before any other thread exists, and so in all of them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  server::Server server(std::move(options));
  const int port = server.bind();
  const std::string& host = server.context().options.host;
  const bool v6 = host.find(':') != std::string::npos;
  std::cout << "corral is listening on " << (v6 ? "[" + host + "]" : host) << ":" << port
            << std::endl;
  std::cerr << "[corral] models: " << server.context().options.models.string() << std::endl;

  std::thread waiter([&server, signals] {
    int sig = 0;
    sigwait(&signals, &sig);
    server.stop();
  });
  server.listen();
  // listen() also returns when the server fails; the waiter is then woken by a signal of our own.
  pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  std::cerr << "[corral] stopped" << std::endl;
}

}  // namespace

void add_serve_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("serve", "Start the HTTP server (Ollama's and OpenAI's APIs)");
  cmd->footer(
      "Environment:\n"
      "  CORRAL_HOST            address to listen on (default 127.0.0.1:11434; port 0: any)\n"
      "  CORRAL_MODELS          the model store (default ~/.corral/models)\n"
      "  CORRAL_ORIGINS         extra allowed CORS origins, comma-separated (`*` wildcards)\n"
      "  CORRAL_API_KEY         require 'Authorization: Bearer <key>' on every request\n"
      "  CORRAL_MAX_BODY_SIZE   largest request body in bytes (default 32 MiB; blobs exempt)\n"
      "  CORRAL_KEEP_ALIVE      how long an idle model stays loaded (default 5m)\n"
      "  CORRAL_MAX_MEMORY      most bytes all loaded models may take (16G, 512M; default: what\n"
      "                         the machine has available)\n"
      "  CORRAL_MAX_LOADED_MODELS, CORRAL_NUM_PARALLEL, CORRAL_MAX_QUEUE, CORRAL_CONTEXT_LENGTH");
  cmd->callback([] { serve(); });
}

}  // namespace corral::cli
