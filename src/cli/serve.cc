// `corral serve`: the HTTP server (Ollama's API and the OpenAI-compatible one) on CORRAL_HOST
// until SIGINT or SIGTERM.
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>

#include "cli/commands.h"
#include "server/server.h"

namespace corral::cli {
namespace {

// How long `corral serve` waits for its requests to end after SIGINT/SIGTERM.
constexpr time_t kStopDeadlineSeconds = 5;

// Each connection takes a descriptor: the soft limit (often 1024) is raised to the hard one, so
// that CORRAL_MAX_CONNECTIONS, not the limit, decides how many are served.
void raise_descriptor_limit() {
  rlimit l{};
  if (getrlimit(RLIMIT_NOFILE, &l) != 0 || l.rlim_cur >= l.rlim_max) return;
  l.rlim_cur = l.rlim_max;
  setrlimit(RLIMIT_NOFILE, &l);
}

void serve() {
  server::ServerOptions options = server::server_options_from_env();
  raise_descriptor_limit();
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
  // An IPv6 address is bracketed before its port.
  const auto host_port = [port](const std::string& h) {
    return (h.find(':') != std::string::npos ? "[" + h + "]" : h) + ":" + std::to_string(port);
  };
  std::cout << "corral is listening on " << host_port(host) << std::endl;
  std::cerr << "[corral] models: " << server.context().options.models.string() << std::endl;
  // A server on every interface is opened from this machine by its loopback address.
  std::cerr << "[corral] chat page: http://"
            << host_port(host == "0.0.0.0" ? "127.0.0.1"
                         : host == "::"    ? "::1"
                                           : host)
            << "/ui/" << std::endl;

  std::thread waiter([&server, signals] {
    int sig = 0;
    sigwait(&signals, &sig);
    // Whatever is running is cancelled first (Server::stop), so this takes well under a second;
    // should something still hold on, a second signal or kStopDeadline ends the process anyway.
    std::thread([signals] {
      const auto deadline =
          std::chrono::steady_clock::now() + std::chrono::seconds(kStopDeadlineSeconds);
      int again = -1;
      for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) break;
        const struct timespec wait = {static_cast<time_t>(left.count() / 1000000000),
                                      static_cast<long>(left.count() % 1000000000)};
        siginfo_t info;
        again = sigtimedwait(&signals, &info, &wait);
        // Interrupted (a debugger, the leak checker stopping threads at exit): wait on.
        if (again < 0 && errno == EINTR) continue;
        break;
      }
      std::cerr << "[corral] "
                << (again > 0
                        ? "second signal"
                        : "still stopping after " + std::to_string(kStopDeadlineSeconds) + " s")
                << ": exiting now" << std::endl;
      std::_Exit(again > 0 ? 130 : 1);
    }).detach();
    std::cerr << "[corral] stopping: cancelling requests" << std::endl;
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
      "  CORRAL_MAX_LOADED_MODELS, CORRAL_NUM_PARALLEL, CORRAL_MAX_QUEUE, CORRAL_CONTEXT_LENGTH\n"
      "  CORRAL_ALLOW_IMAGE_URLS  1: fetch http(s) image_url parts (10 s, 32 MiB; default:\n"
      "                         only data: URIs)\n"
      "Connections (durations: \"10s\", \"1m\" or seconds):\n"
      "  CORRAL_HEADER_TIMEOUT  a request's head must arrive within this (default 10s)\n"
      "  CORRAL_IDLE_TIMEOUT    an idle kept-alive connection is closed after this (default 60s)\n"
      "  CORRAL_READ_TIMEOUT    silence within a body ends the request (default 60s)\n"
      "  CORRAL_WRITE_TIMEOUT   a client not reading the answer ends it (default 60s)\n"
      "  CORRAL_MIN_BODY_RATE   bytes/s a body must average after the grace period (default\n"
      "                         16384; 0: none); CORRAL_BODY_RATE_GRACE (default 10s)\n"
      "  CORRAL_MAX_BODY_MEMORY bytes all bodies being handled may hold (default 48 MiB)\n"
      "  CORRAL_MAX_HEADER_SIZE largest request head in bytes (default 65536; larger: 431)\n"
      "  CORRAL_MAX_CONNECTIONS open connections, all clients (default 4096)\n"
      "  CORRAL_MAX_CONNECTIONS_PER_CLIENT  per client address or IPv6 /64 (default 256)\n"
      "  CORRAL_LISTEN_BACKLOG  pending connections the kernel queues (default 1024)\n"
      "Templates (each prompt rendering; beyond a limit: 400):\n"
      "  CORRAL_TEMPLATE_MAX_OUTPUT  bytes (default 64 MiB)\n"
      "  CORRAL_TEMPLATE_MAX_STEPS   evaluation steps (default 20000000)\n"
      "  CORRAL_TEMPLATE_TIMEOUT     seconds (default 10; 0: none)");
  cmd->callback([] { serve(); });
}

}  // namespace corral::cli
