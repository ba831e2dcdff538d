// Ctrl+C while `corral create -q` quantizes, locally and through a server (where the client that
// goes away is the Ctrl+C'd CLI): the store ends holding exactly the blobs its manifests
// reference, with no scratch file left (the case was a 443 MB `.quantized.gguf.tmp-*`).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cli/serve_process.h"
#include "ml/gguf/reader.h"
#include "ml/gguf/writer.h"
#include "store/model.h"
#include "store/store.h"
#include "store/temp_store.h"
#include "testdata.h"

namespace corral::testing {
namespace {

namespace fs = std::filesystem;

// stories260K with one more F32 matrix of 4096 x 4096 (64 MiB), so that quantizing it takes a
// while: long enough for a Ctrl+C to land in the middle.
void write_big_f32_model(const fs::path& out) {
  const ml::gguf::File small =
      ml::gguf::File::open(testdata_path("tinystories260k/stories260K-f32.gguf"));
  ml::gguf::Writer w;
  for (const auto& [key, value] : small.metadata()) {
    if (key != "general.alignment") w.metadata().set(key, value);
  }
  for (const ml::gguf::TensorInfo& t : small.tensors()) {
    w.add_tensor(t.name, t.dtype, t.shape(), t.bytes());
  }
  std::vector<float> big(size_t{4096} * 4096);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<float>(i % 251) / 251.0f - 0.5f;
  w.add_tensor("blk.0.ffn_extra.weight", ml::DType::F32, {4096, 4096},
               std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(big.data()),
                                        big.size() * sizeof(float)));
  w.write(out.string());
}

// The files under the store `root` (relative) that no manifest references: scratch files and
// unreferenced blobs.
std::vector<std::string> unreferenced_or_scratch(const fs::path& root) {
  store::Store st(root);
  std::set<std::string> referenced;
  for (const auto& model : st.list()) {
    const store::Manifest& m = model.manifest;
    referenced.insert("blobs/sha256-" + m.config.digest.substr(7));
    for (const store::Layer& l : m.layers) referenced.insert("blobs/sha256-" + l.digest.substr(7));
  }
  std::vector<std::string> out;
  for (const std::string& f : files_under(root)) {
    if (f.starts_with("manifests/") || f == "serve.log" || referenced.count(f)) continue;
    out.push_back(f);
  }
  return out;
}

// `corral create big -q Q8_0` in `cwd`, its output (stdout and stderr) on *out_fd.
pid_t start_create(const std::string& env_host, const fs::path& store, const fs::path& cwd,
                   int* out_fd) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    dup2(fds[1], STDERR_FILENO);
    close(fds[0]);
    close(fds[1]);
    if (chdir(cwd.c_str()) != 0) _exit(127);
    setenv("CORRAL_MODELS", store.c_str(), 1);
    if (env_host.empty()) {
      setenv("CORRAL_NO_SERVER", "1", 1);
    } else {
      unsetenv("CORRAL_NO_SERVER");
      setenv("CORRAL_HOST", env_host.c_str(), 1);
    }
    execl(CORRAL_BINARY, CORRAL_BINARY, "create", "big", "-q", "Q8_0", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  *out_fd = fds[0];
  return pid;
}

// Reads `fd` until a line (or a progress redraw) starts with `prefix`; false at end of output.
bool wait_for(int fd, const std::string& prefix, std::string* seen) {
  std::string line;
  char c;
  while (read(fd, &c, 1) == 1) {
    *seen += c;
    if (c == '\n' || c == '\r') {
      line.clear();
      continue;
    }
    line += c;
    if (line == prefix) return true;
  }
  return false;
}

// Starts the create, Ctrl+C's it once it is quantizing; false when it finished first.
bool interrupt_while_quantizing(const std::string& host, const fs::path& store,
                                const fs::path& work, std::string* seen) {
  int fd = -1;
  const pid_t pid = start_create(host, store, work, &fd);
  EXPECT_GT(pid, 0);
  const bool found = wait_for(fd, "quantizing F32 model to Q8_0", seen);
  kill(pid, SIGINT);
  int status = 0;
  waitpid(pid, &status, 0);
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) seen->append(buf, static_cast<size_t>(n));
  close(fd);
  EXPECT_TRUE(found) << *seen;
  return !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST(CreateLeftovers, CtrlCWhileQuantizingLeavesOnlyReferencedBlobs) {
  TempDir store_dir, work;
  write_big_f32_model(work.path() / "big.gguf");
  write_text(work.path() / "Modelfile", "FROM ./big.gguf\n");
  // Another model in the store, whose blobs must stay.
  write_text(work.path() / "Modelfile.small",
             "FROM " + testdata_path("tinystories260k/stories260K-f32.gguf") + "\n");
  ASSERT_EQ(shell("cd '" + work.str() + "' && CORRAL_NO_SERVER=1 CORRAL_MODELS='" +
                  store_dir.str() + "' '" + CORRAL_BINARY + "' create small -f Modelfile.small")
                .exit_code,
            0);
  std::string seen;
  if (!interrupt_while_quantizing("", store_dir.path(), work.path(), &seen)) {
    GTEST_SKIP() << "the create finished before the Ctrl+C";
  }
  EXPECT_TRUE(contains(seen, "create interrupted: nothing was kept")) << seen;
  EXPECT_EQ(unreferenced_or_scratch(store_dir.path()), std::vector<std::string>{}) << seen;
  EXPECT_EQ(store::Store(store_dir.path()).list().size(), 1u);
}

TEST(CreateLeftovers, CtrlCWhileTheServerQuantizesLeavesOnlyReferencedBlobs) {
  TempDir store_dir, client_store, work;
  ServeProcess serve(store_dir.path());
  ASSERT_TRUE(wait_for_server(serve.host(), std::chrono::seconds(20)));
  write_big_f32_model(work.path() / "big.gguf");
  write_text(work.path() / "Modelfile", "FROM ./big.gguf\n");
  std::string seen;
  if (!interrupt_while_quantizing(serve.host(), client_store.path(), work.path(), &seen)) {
    GTEST_SKIP() << "the create finished before the Ctrl+C";
  }
  // The server notices the client has gone at its next progress line, and unwinds the create.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::vector<std::string> left = unreferenced_or_scratch(store_dir.path());
  while (!left.empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    left = unreferenced_or_scratch(store_dir.path());
  }
  EXPECT_EQ(left, std::vector<std::string>{}) << seen;
  EXPECT_TRUE(store::Store(store_dir.path()).list().empty());
}

}  // namespace
}  // namespace corral::testing
