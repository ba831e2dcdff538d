// `corral run NAME` and `FROM NAME` in a Modelfile pull a model the store lacks, in this process
// (CORRAL_NO_SERVER), from a real registry (Debian's docker-registry on loopback): the pull's
// status lines, then the story. A name the registry lacks, or a registry that is not there, is
// one clear error and leaves nothing in the store; a path is never pulled. And the model setup
// ships: byte for byte the test data's stories260K, put into a store as `stories` idempotently.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "store/digest.h"
#include "store/registry_model.h"
#include "store/temp_store.h"
#include "testdata.h"

namespace corral::testing {
namespace {

namespace fs = std::filesystem;

struct Result {
  int exit_code = -1;
  std::string out;
};

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// corral on the store `store` only (no server asked or started), stdout and stderr merged. The
// default registry is a closed loopback port, so that no test reaches registry.ollama.ai.
Result corral(const fs::path& store, const std::string& args, const fs::path& cwd = "") {
  std::string cmd =
      "CORRAL_NO_SERVER=1 CORRAL_MODELS='" + store.string() + "' HOME='" + store.string() +
      "' CORRAL_REGISTRY_MIRROR=http://127.0.0.1:" + std::to_string(free_loopback_port()) + " ";
  if (!cwd.empty()) cmd = "cd '" + cwd.string() + "' && " + cmd;
  cmd += std::string("'") + CORRAL_BINARY + "' " + args + " 2>&1 </dev/null";
  Result r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  for (size_t n; (n = fread(buf.data(), 1, buf.size(), p)) > 0;) r.out.append(buf.data(), n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// The regular files under `dir` (none when it does not exist).
size_t file_count(const fs::path& dir) {
  size_t n = 0;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) n += e.is_regular_file() ? 1 : 0;
  return n;
}

class RunPull : public ::testing::Test {
 protected:
  void SetUp() override {
    registry_ = std::make_unique<LocalRegistry>(registry_dir_.path());
    manifest_ = push_stories_model(*registry_, "library/stories", "latest");
    name_ = "127.0.0.1:" + std::to_string(registry_->port()) + "/library/stories:latest";
  }
  fs::path manifest_file() const {
    return store_.path() / "manifests" / ("127.0.0.1:" + std::to_string(registry_->port())) /
           "library" / "stories" / "latest";
  }

  TempDir registry_dir_, store_, work_;
  std::unique_ptr<LocalRegistry> registry_;
  std::string manifest_, name_;
};

TEST_F(RunPull, AMissingNameIsPulledWithProgressThenRun) {
  const Result r = corral(store_.path(), "run " + name_ +
                                             " --insecure --option num_predict=12 "
                                             "'Once upon a time'");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(r.out.starts_with("pulling manifest\n")) << r.out;
  const std::string done = "verifying sha256 digest\nwriting manifest\nsuccess\n";
  const size_t at = r.out.find(done);
  ASSERT_NE(at, std::string::npos) << r.out;
  const std::string story = r.out.substr(at + done.size());
  EXPECT_GT(story.size(), 12u) << r.out;
  EXPECT_EQ(read_text(manifest_file()), manifest_);

  // Now in the store: run again without a pull, and the same greedy story (the model's
  // temperature 0 came with its params layer).
  const Result again = corral(store_.path(), "run " + name_ +
                                                 " --option num_predict=12 "
                                                 "'Once upon a time'");
  ASSERT_EQ(again.exit_code, 0) << again.out;
  EXPECT_EQ(again.out, story);
}

TEST_F(RunPull, ANameTheRegistryLacksIsOneClearErrorAndLeavesNothing) {
  const std::string missing = "127.0.0.1:" + std::to_string(registry_->port()) + "/library/none";
  const Result r = corral(store_.path(), "run " + missing + " --insecure hello");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_TRUE(r.out.starts_with("pulling manifest\nError: ")) << r.out;
  EXPECT_TRUE(contains(
      r.out, "/v2/library/none/manifests/latest: model '" + missing + ":latest' not found"))
      << r.out;
  EXPECT_EQ(r.out.find("Error:"), r.out.rfind("Error:")) << "one error: " << r.out;
  EXPECT_EQ(file_count(store_.path() / "manifests"), 0u);
  EXPECT_EQ(file_count(store_.path() / "blobs"), 0u);
}

TEST_F(RunPull, PlainHttpNeedsInsecure) {
  const Result r = corral(store_.path(), "run " + name_ + " hello");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_TRUE(contains(r.out, "https://127.0.0.1:")) << r.out;
  EXPECT_TRUE(contains(r.out, "--insecure")) << r.out;
  EXPECT_EQ(file_count(store_.path() / "manifests"), 0u);
}

TEST(RunPullOffline, AnUnreachableRegistryIsOneClearErrorAndPathsAreNeverPulled) {
  TempDir store;
  // The default registry (the mirror: a closed port) refuses the connection.
  Result r = corral(store.path(), "run nosuch hello");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_TRUE(contains(r.out, "/v2/library/nosuch/manifests/latest: ")) << r.out;
  EXPECT_EQ(file_count(store.path() / "manifests"), 0u);
  EXPECT_EQ(file_count(store.path() / "blobs"), 0u);

  r = corral(store.path(), "run ./missing.gguf hello");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_FALSE(contains(r.out, "pulling")) << r.out;
  r = corral(store.path(), "run ./missing hello");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_FALSE(contains(r.out, "pulling")) << r.out;
  EXPECT_TRUE(contains(r.out, "./missing: no such file or folder")) << r.out;
}

TEST_F(RunPull, FromAMissingNameInAModelfilePullsIt) {
  write_text(work_.path() / "Modelfile", "FROM " + name_ + "\nSYSTEM Lily\n");
  Result r = corral(store_.path(), "create mine", work_.path());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_TRUE(contains(r.out, "--insecure")) << r.out;
  EXPECT_EQ(file_count(store_.path() / "manifests"), 0u);

  r = corral(store_.path(), "create mine --insecure", work_.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(contains(r.out, "pulling model\npulling manifest\n")) << r.out;
  EXPECT_TRUE(r.out.ends_with("writing manifest\nsuccess\n")) << r.out;
  EXPECT_EQ(read_text(manifest_file()), manifest_);
  r = corral(store_.path(), "list");
  EXPECT_TRUE(contains(r.out, "mine:latest")) << r.out;
  EXPECT_TRUE(contains(r.out, name_)) << r.out;
  r = corral(store_.path(), "run mine --option num_predict=4 'Once upon a time'");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_FALSE(contains(r.out, "pulling")) << r.out;

  // A missing name on a registry that lacks it: a clear error, and no model.
  write_text(work_.path() / "Modelfile",
             "FROM 127.0.0.1:" + std::to_string(registry_->port()) + "/library/none:x\n");
  r = corral(store_.path(), "create other --insecure", work_.path());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_TRUE(contains(r.out, "Error: FROM 127.0.0.1:")) << r.out;
  EXPECT_TRUE(contains(r.out, "/v2/library/none/manifests/x: model")) << r.out;
  EXPECT_FALSE(contains(corral(store_.path(), "list").out, "other")) << r.out;
}

// The model scripts/setup.sh puts into the store: the test data's stories260K byte for byte (its
// golden outputs hold for it), made into `stories` as often as setup runs.
TEST(ShippedModel, IsTheTestDataModelAndSetupsCreateIsIdempotent) {
  const fs::path dir = fs::path(CORRAL_SOURCE_DIR) / "models" / "stories260K";
  EXPECT_EQ(store::sha256_file(dir / "stories260K-f32.gguf"),
            store::sha256_file(testdata_path("tinystories260k/stories260K-f32.gguf")));
  EXPECT_TRUE(fs::exists(dir / "LICENSE"));
  TempDir store;
  const std::string create = "create stories -f '" + (dir / "Modelfile").string() + "'";
  Result r = corral(store.path(), create);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const fs::path manifest = store.path() / "manifests/registry.ollama.ai/library/stories/latest";
  const std::string first = read_text(manifest);
  r = corral(store.path(), create);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(read_text(manifest), first);
  r = corral(store.path(), "run stories --option num_predict=16 'Once upon a time'");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_GT(r.out.size(), 20u) << r.out;
}

}  // namespace
}  // namespace corral::testing
