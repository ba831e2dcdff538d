// A 1 GB synthetic model (`corral debug synth qwen2.5-0.5b --type F16`) pulled from a real
// registry (Debian's docker-registry on loopback) through the FaultProxy: five dropped
// connections and a stalled one cost no more than what was in flight; `kill -9` in the middle of
// a pull leaves no model that list or show can see, and the next pull continues from the partial
// file; two pulls of one blob at once share one download.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "store/digest.h"
#include "store/local_registry.h"
#include "store/registry/pull.h"
#include "store/temp_store.h"

namespace corral {
namespace {

namespace fs = std::filesystem;
using store::ModelName;
using store::registry::PullOptions;
using testing::read_text;
using testing::sh;

class PullLarge : public ::testing::Test {
 protected:
  // One registry and one 1 GB model for the suite: making them takes longer than a pull.
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir;
    registry_ = new testing::LocalRegistry(dir_->path());
    const fs::path gguf = dir_->path() / "synth.gguf";
    const auto [rc, out] = sh(std::string("'") + CORRAL_BINARY +
                              "' debug synth qwen2.5-0.5b --type F16 -o '" + gguf.string() + "'");
    ASSERT_EQ(rc, 0) << out;
    size_ = fs::file_size(gguf);
    ASSERT_GT(size_, 900u << 20);
    digest_ = registry_->push_blob_file("library/big", gguf);
    fs::remove(gguf);
    const std::string config =
        R"({"model_format":"gguf","model_family":"qwen2","file_type":"F16"})";
    const std::string config_digest = registry_->push_blob("library/big", config);
    *manifest_ =
        nlohmann::json{
            {"schemaVersion", 2},
            {"mediaType", store::kMediaManifest},
            {"config",
             {{"mediaType", store::kMediaConfig},
              {"digest", config_digest},
              {"size", config.size()}}},
            {"layers", {{{"mediaType", store::kMediaModel}, {"digest", digest_}, {"size", size_}}}},
        }
            .dump();
    registry_->push_manifest("library/big", "latest", *manifest_);
  }
  static void TearDownTestSuite() {
    delete registry_;
    delete dir_;
  }

  static std::string model(int port) {
    return "127.0.0.1:" + std::to_string(port) + "/library/big:latest";
  }
  static PullOptions options() {
    PullOptions o;
    o.client.insecure = true;
    o.client.first_backoff = std::chrono::milliseconds(5);
    o.client.http.stall_timeout_s = 2;
    return o;
  }
  void expect_pulled(const store::Store& st, int port) {
    EXPECT_EQ(read_text(st.root() / "manifests" / ModelName::parse(model(port)).manifest_path()),
              *manifest_);
    EXPECT_EQ(fs::file_size(st.blob_path(digest_)), size_);
    EXPECT_FALSE(fs::exists(st.blob_path(digest_).string() + "-partial"));
    ASSERT_EQ(st.list().size(), 1u);
  }

  static inline testing::TempDir* dir_ = nullptr;
  static inline testing::LocalRegistry* registry_ = nullptr;
  static inline uint64_t size_ = 0;
  static inline std::string digest_;
  static inline std::unique_ptr<std::string> manifest_ = std::make_unique<std::string>();
  testing::TempDir store_dir_;
};

TEST_F(PullLarge, FiveDisconnectsAndAStallCostOnlyWhatWasInFlight) {
  testing::FaultProxy proxy(registry_->port());
  proxy.drops = 5;
  proxy.stalls = 1;
  store::Store st(store_dir_.path());
  std::vector<store::registry::PullProgress> seen;
  PullOptions o = options();
  o.progress = [&](const store::registry::PullProgress& p) { seen.push_back(p); };
  store::registry::pull(st, ModelName::parse(model(proxy.port())), o);
  expect_pulled(st, proxy.port());
  EXPECT_EQ(proxy.drops.load(), 0);
  EXPECT_EQ(proxy.stalls.load(), 0);
  EXPECT_LE(proxy.blob_bytes.load(), size_ + size_ / 10);
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back().status, "success");
}

TEST_F(PullLarge, KillNineMidPullShowsNoModelAndThePullResumes) {
  testing::FaultProxy proxy(registry_->port());
  proxy.stall = true;  // every part stops half way, so the kill lands mid-pull
  const std::string name = model(proxy.port());
  const std::string env = "CORRAL_NO_SERVER=1 CORRAL_MODELS=" + store_dir_.str();
  const pid_t pid = fork();
  if (pid == 0) {
    setenv("CORRAL_NO_SERVER", "1", 1);
    setenv("CORRAL_MODELS", store_dir_.str().c_str(), 1);
    freopen("/dev/null", "w", stdout);
    execl(CORRAL_BINARY, CORRAL_BINARY, "pull", name.c_str(), "--insecure",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(3);
  while (proxy.blob_bytes.load() < size_ * 2 / 5 && std::chrono::steady_clock::now() < deadline) {
    ASSERT_EQ(waitpid(pid, nullptr, WNOHANG), 0) << "the pull ended before it was killed";
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_GE(proxy.blob_bytes.load(), size_ * 2 / 5);
  const std::string corral = "env " + env + " '" + CORRAL_BINARY + "' ";
  {
    const auto [rc, out] = sh(corral + "list");
    EXPECT_EQ(rc, 0) << out;
    EXPECT_EQ(out.find("big"), std::string::npos) << out;
    EXPECT_NE(sh(corral + "show " + name).first, 0);
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  proxy.stall = false;

  store::Store st(store_dir_.path());
  EXPECT_TRUE(st.list().empty());
  const fs::path partial = st.blob_path(digest_).string() + "-partial";
  EXPECT_TRUE(fs::exists(partial));
  EXPECT_NE(sh(corral + "show " + name).first, 0);

  const uint64_t first = proxy.blob_bytes.load();
  store::registry::pull(st, ModelName::parse(name), options());
  expect_pulled(st, proxy.port());
  // What the killed pull had received and saved is not fetched again (its progress file is
  // saved every MiB; what the proxy had sent into socket buffers may be lost).
  EXPECT_LE(proxy.blob_bytes.load() - first, size_ - first + (64u << 20));
  EXPECT_LE(proxy.blob_bytes.load(), size_ + size_ / 10);
}

TEST_F(PullLarge, TwoPullsOfOneBlobShareOneDownload) {
  testing::FaultProxy proxy(registry_->port());
  proxy.stall = true;  // the first pull is half way when the second one starts
  store::Store st(store_dir_.path());
  const ModelName name = ModelName::parse(model(proxy.port()));
  std::exception_ptr first_error;
  std::thread first([&] {
    try {
      store::Store own(store_dir_.path());
      store::registry::pull(own, name, options());
    } catch (...) {
      first_error = std::current_exception();
    }
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(3);
  while (proxy.blob_bytes.load() < size_ / 4 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::vector<uint64_t> waited;
  PullOptions o = options();
  o.progress = [&](const store::registry::PullProgress& p) {
    if (p.digest == digest_) {
      if (waited.empty()) proxy.stall = false;  // the second pull waits: let the first go on
      waited.push_back(p.completed);
    }
  };
  std::string second_error;
  try {
    store::registry::pull(st, name, o);
  } catch (const std::exception& e) {
    second_error = e.what();
  }
  proxy.stall = false;
  first.join();
  ASSERT_EQ(second_error, "");
  if (first_error) std::rethrow_exception(first_error);
  expect_pulled(st, proxy.port());
  // One download: the blob's bytes were served once (the first pull's stall cost nothing).
  EXPECT_LE(proxy.blob_bytes.load(), size_ + (16u << 20));
  // The waiting pull showed the first one's progress as it grew, up to the whole blob.
  ASSERT_GE(waited.size(), 2u) << ::testing::PrintToString(waited);
  EXPECT_GT(waited.front(), 0u) << ::testing::PrintToString(waited);
  EXPECT_EQ(waited.back(), size_);
}

}  // namespace
}  // namespace corral
