// A real `corral serve` on a free loopback port over a given store, for the tests that drive the
// CLI through a server; and the shell runner they use.
#pragma once

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cli/client.h"
#include "cli/run_corral.h"
#include "store/local_registry.h"

namespace corral::testing {

using Result = CommandResult;

// Runs `cmd` in sh with stdin from /dev/null; stdout and stderr together.
inline Result shell(const std::string& cmd) { return run_shell(cmd + " 2>&1 </dev/null"); }

inline bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// Polls (no fixed sleep) until a server answers at `host`, or `limit` passes.
inline bool wait_for_server(const std::string& host, std::chrono::seconds limit) {
  cli::Client client(cli::parse_host(host));
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (client.alive()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// Ends a process this test started: SIGTERM, then SIGKILL when it has not gone within 2 s.
inline void stop_process(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGTERM);
  for (int i = 0; i < 200; ++i) {
    if (waitpid(pid, nullptr, WNOHANG) == pid || kill(pid, 0) != 0) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

// `corral serve` on a free port, stopped (SIGTERM, then SIGKILL) when the test ends.
class ServeProcess {
 public:
  // `env`: more variables for the server (CORRAL_MAX_MEMORY, ...).
  explicit ServeProcess(const std::filesystem::path& store,
                        const std::vector<std::pair<std::string, std::string>>& env = {})
      : host_("127.0.0.1:" + std::to_string(free_loopback_port())) {
    pid_ = fork();
    if (pid_ == 0) {
      for (const auto& [name, value] : env) setenv(name.c_str(), value.c_str(), 1);
      setenv("CORRAL_HOST", host_.c_str(), 1);
      setenv("CORRAL_MODELS", store.c_str(), 1);
      // A model the store lacks is pulled: by default from a closed loopback port, never from
      // registry.ollama.ai.
      setenv("CORRAL_REGISTRY_MIRROR",
             ("http://127.0.0.1:" + std::to_string(free_loopback_port())).c_str(), 1);
      const std::string log = (store / "serve.log").string();
      freopen(log.c_str(), "w", stdout);
      freopen(log.c_str(), "a", stderr);
      execl(CORRAL_BINARY, CORRAL_BINARY, "serve", static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  ~ServeProcess() { stop_process(pid_); }
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;
  const std::string& host() const { return host_; }

 private:
  std::string host_;
  pid_t pid_ = -1;
};

}  // namespace corral::testing
