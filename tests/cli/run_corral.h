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

// `args` is pasted after the binary path; merge_stderr adds 2>&1, else stderr goes to /dev/null.
inline CommandResult run_corral(const std::string& args, bool merge_stderr = true) {
  const std::string cmd =
      std::string("'") + CORRAL_BINARY + "' " + args + (merge_stderr ? " 2>&1" : " 2>/dev/null");
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

}  // namespace corral::testing
