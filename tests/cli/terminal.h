// `corral run` in a pseudo-terminal (Terminal) and the store models the terminal tests run.
#pragma once

#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "store/temp_store.h"

namespace corral::testing {

// `corral run` in a pseudo-terminal: what a user types, what the session shows.
class Terminal {
 public:
  // `env`: "K=V" settings added to the child's environment.
  // `columns`: the terminal's width.
  explicit Terminal(const std::vector<std::string>& args, const std::vector<std::string>& env = {},
                    int columns = 120) {
    winsize ws{};
    ws.ws_row = 40;
    ws.ws_col = static_cast<unsigned short>(columns);
    pid_ = forkpty(&fd_, nullptr, nullptr, &ws);
    if (pid_ == 0) {
      for (const auto& kv : env) putenv(const_cast<char*>(kv.c_str()));
      std::vector<char*> argv;
      argv.push_back(const_cast<char*>(CORRAL_BINARY));
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv(CORRAL_BINARY, argv.data());
      _exit(127);
    }
  }
  ~Terminal() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (fd_ >= 0) close(fd_);
  }
  bool started() const { return pid_ > 0 && fd_ >= 0; }

  // Keys typed ahead of the prompt reach a terminal in cooked mode (a ^D there is lost), so the
  // tests type only once the prompt of the line editor is shown.
  void type(const std::string& keys) {
    cursor_ = out_.size();
    ASSERT_EQ(write(fd_, keys.data(), keys.size()), static_cast<ssize_t>(keys.size()));
  }

  // Types `keys`, then waits for `answer` and the next prompt.
  bool command(const std::string& keys, const std::string& answer) {
    type(keys);
    return wait_for(answer) && wait_for(">>> ");
  }

  // Waits until `needle` appears in the output after the last typed keys and after what the
  // previous wait found.
  bool wait_for(const std::string& needle, std::chrono::seconds limit = std::chrono::seconds(30)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    size_t at;
    while ((at = out_.find(needle, cursor_)) == std::string::npos) {
      if (!read_some(deadline)) return false;
    }
    cursor_ = at + needle.size();
    return true;
  }

  // Waits for the process to end; its exit status, or -1 on timeout or a signal.
  int wait_exit(std::chrono::seconds limit = std::chrono::seconds(30)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      if (std::chrono::steady_clock::now() >= deadline) return -1;
      read_some(deadline);
    }
  }

  const std::string& output() const { return out_; }

 private:
  // Reads what is available, waiting at most until the deadline (in short polls, so that a
  // process that has exited is noticed); false when the deadline passed.
  bool read_some(std::chrono::steady_clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    const int rc = poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 100)));
    if (rc > 0 && (p.revents & POLLIN)) {
      char buf[4096];
      const ssize_t n = read(fd_, buf, sizeof buf);
      if (n > 0) out_.append(buf, static_cast<size_t>(n));
    }
    return true;
  }

  pid_t pid_ = -1;
  int fd_ = -1;
  bool exited_ = false;
  std::string out_;
  size_t cursor_ = 0;
};

// Makes model `name` from `modelfile` in a store under `dir` (in this process, no server);
// returns the environment that points corral at that store. Empty when create failed (the
// failure is recorded).
inline std::vector<std::string> store_with(const TempDir& dir, const std::string& name,
                                           const std::string& modelfile) {
  const std::string store = "CORRAL_MODELS=" + dir.str() + "/models";
  write_text(dir.path() / "Modelfile", modelfile);
  const auto [created, log] = sh(store + " CORRAL_NO_SERVER=1 '" CORRAL_BINARY "' create " + name +
                                 " -f '" + dir.str() + "/Modelfile'");
  if (created != 0) {
    ADD_FAILURE() << "corral create " << name << ": " << log;
    return {};
  }
  return {store, "CORRAL_NO_SERVER=1"};
}

}  // namespace corral::testing
