// README.md's examples, run as a new user runs them, so that they cannot rot: every ```sh block
// that follows a "<!-- example -->" line (the bytes the reader sees, read from README.md itself),
// in order, under `bash -e`, from a folder laid out like a checkout (build/corral, models/,
// ../shared/testdata) with a fresh HOME (so the default store, ~/.corral/models). Once with a
// server (the one `corral run` starts in the background, on a free port: "11434" in a block
// becomes that port), and once with CORRAL_NO_SERVER=1, where the blocks marked
// "<!-- example: server -->" are left out.
#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "cli/serve_process.h"
#include "store/temp_store.h"
#include "testdata.h"

namespace corral::testing {
namespace {

namespace fs = std::filesystem;

struct Example {
  bool needs_server = false;
  int line = 0;  // of README.md, where the block starts
  std::string script;
};

std::vector<Example> readme_examples() {
  std::istringstream in(read_text(fs::path(CORRAL_SOURCE_DIR) / "README.md"));
  std::vector<Example> out;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (!line.starts_with("<!-- example")) continue;
    Example e;
    e.needs_server = line.find("server") != std::string::npos;
    e.line = number + 1;
    if (!std::getline(in, line) || line != "```sh") {
      ADD_FAILURE() << "README.md:" << number << ": an example marker not followed by ```sh";
      continue;
    }
    ++number;
    while (std::getline(in, line) && line != "```") {
      ++number;
      e.script += line + "\n";
    }
    ++number;
    out.push_back(e);
  }
  return out;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = 0; (at = s.find(from, at)) != std::string::npos; at += to.size()) {
    s.replace(at, from.size(), to);
  }
  return s;
}

// The background servers the examples' `corral run` started (it prints their pid), stopped when
// the test ends, pass or fail.
struct StartedServers {
  std::vector<pid_t> pids;
  void note(const std::string& out) {
    const std::string said = "started corral server in the background (pid ";
    for (size_t at = 0; (at = out.find(said, at)) != std::string::npos; ++at) {
      pids.push_back(std::stoi(out.substr(at + said.size())));
    }
  }
  ~StartedServers() {
    for (const pid_t pid : pids) stop_process(pid);
  }
};

TEST(ReadmeExamples, RunAsWrittenWithAndWithoutAServer) {
  const std::vector<Example> examples = readme_examples();
  ASSERT_GE(examples.size(), 3u) << "README.md has lost its <!-- example --> blocks";
  TempDir root;
  const fs::path checkout = root.path() / "corral";
  fs::create_directories(checkout / "build");
  fs::create_directories(root.path() / "shared");
  fs::create_symlink(CORRAL_BINARY, checkout / "build" / "corral");
  fs::create_symlink(fs::path(CORRAL_SOURCE_DIR) / "models", checkout / "models");
  fs::create_symlink(testdata_dir(), root.path() / "shared" / "testdata");
  const std::string port = std::to_string(free_loopback_port());

  StartedServers servers;
  for (const bool with_server : {true, false}) {
    const fs::path home = root.path() / (with_server ? "home-server" : "home-local");
    fs::create_directories(home);
    fs::remove(checkout / "Modelfile");
    // Nothing is pulled from the network: a missing model would come from a closed port.
    const std::string env =
        "env -u CORRAL_MODELS HOME='" + home.string() +
        "' CORRAL_NO_SERVER=" + (with_server ? "" : "1") + " CORRAL_HOST=127.0.0.1:" + port +
        " CORRAL_REGISTRY_MIRROR=http://127.0.0.1:" + std::to_string(free_loopback_port()) + " ";
    for (size_t i = 0; i < examples.size(); ++i) {
      const Example& e = examples[i];
      if (e.needs_server && !with_server) continue;
      const fs::path script = root.path() / ("example" + std::to_string(i) + ".sh");
      write_text(script, replace_all(e.script, "11434", port));
      const Result r =
          shell("cd '" + checkout.string() + "' && " + env + "bash -e '" + script.string() + "'");
      servers.note(r.out);
      const std::string where = std::string("README.md:") + std::to_string(e.line) +
                                (with_server ? " (with a server)" : " (CORRAL_NO_SERVER=1)");
      EXPECT_EQ(r.exit_code, 0) << where << "\n" << r.out;
      EXPECT_FALSE(contains(r.out, "Error")) << where << "\n" << r.out;
      EXPECT_FALSE(contains(r.out, "\"error\"")) << where << "\n" << r.out;
    }
    // With a server, the first `corral run` started one (and only one); without, none.
    EXPECT_EQ(servers.pids.size(), 1u) << (with_server ? "with" : "without") << " a server";
  }
}

}  // namespace
}  // namespace corral::testing
