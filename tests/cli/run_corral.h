// Runs the built corral binary (CORRAL_BINARY) through the shell and captures its output.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace corral::testing {

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout, or stdout then stderr when merged
};

// Runs `cmd` through the shell; what it writes to stdout (redirect stderr in `cmd` to keep it).
inline CommandResult run_shell(const std::string& cmd) {
  CommandResult r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// `args` is pasted after the binary path; merge_stderr adds 2>&1, else stderr goes to /dev/null.
inline CommandResult run_corral(const std::string& args, bool merge_stderr = true) {
  return run_shell(std::string("'") + CORRAL_BINARY + "' " + args +
                   (merge_stderr ? " 2>&1" : " 2>/dev/null"));
}

}  // namespace corral::testing
