// Pulls from a real registry (Debian's docker-registry on loopback) into a temp store, directly
// and through a FaultProxy: the manifest and blobs arrive byte for byte, dropped connections
// resume without fetching much again, a corrupted blob is fetched again, and a stalled pull
// leaves no model in the store but a partial file that the next pull continues.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <thread>

#include "store/local_registry.h"
#include "store/registry/pull.h"
#include "store/temp_store.h"
#include "testdata.h"

namespace corral {
namespace {

namespace fs = std::filesystem;
using store::ModelName;
using store::registry::PullOptions;
using testing::read_text;
using testing::sh;

// A registry holding library/stories:latest (the stories260K GGUF and a config blob).
class RegistryPull : public ::testing::Test {
 protected:
  void SetUp() override {
    registry_ = std::make_unique<testing::LocalRegistry>(dir_.path());
    gguf_ = read_text(testing::testdata_path("tinystories260k/stories260K-f32.gguf"));
    ASSERT_GT(gguf_.size(), 1000000u);
    config_ = R"({"model_format":"gguf","model_family":"llama","file_type":"F32"})";
    gguf_digest_ = registry_->push_blob("library/stories", gguf_);
    config_digest_ = registry_->push_blob("library/stories", config_);
    manifest_ =
        nlohmann::json{
            {"schemaVersion", 2},
            {"mediaType", store::kMediaManifest},
            {"config",
             {{"mediaType", store::kMediaConfig},
              {"digest", config_digest_},
              {"size", config_.size()}}},
            {"layers",
             {{{"mediaType", store::kMediaModel},
               {"digest", gguf_digest_},
               {"size", gguf_.size()}}}},
        }
            .dump();
    registry_->push_manifest("library/stories", "latest", manifest_);
  }

  ModelName name(int port) const {
    return ModelName::parse("127.0.0.1:" + std::to_string(port) + "/library/stories:latest");
  }

  // Small parts (5 of the GGUF), quick retries, plain http.
  static PullOptions options() {
    PullOptions o;
    o.client.insecure = true;
    o.client.first_backoff = std::chrono::milliseconds(5);
    o.parts.min_part_size = 256 << 10;
    return o;
  }

  void expect_pulled(const store::Store& st, const ModelName& n) {
    const fs::path manifest = st.root() / "manifests" / n.manifest_path();
    EXPECT_EQ(read_text(manifest), manifest_);
    EXPECT_EQ(read_text(st.blob_path(gguf_digest_)), gguf_);
    EXPECT_EQ(read_text(st.blob_path(config_digest_)), config_);
    EXPECT_FALSE(fs::exists(st.blob_path(gguf_digest_).string() + "-partial"));
  }

  testing::TempDir dir_, store_dir_;
  std::unique_ptr<testing::LocalRegistry> registry_;
  std::string gguf_, config_, gguf_digest_, config_digest_, manifest_;
};

TEST_F(RegistryPull, ManifestAndBlobsArriveIdenticalAndTheModelRuns) {
  const std::string model =
      "127.0.0.1:" + std::to_string(registry_->port()) + "/library/stories:latest";
  const std::string corral =
      "env CORRAL_NO_SERVER=1 CORRAL_MODELS='" + store_dir_.str() + "' '" + CORRAL_BINARY + "' ";
  const auto [rc, out] = sh(corral + "pull " + model + " --insecure");
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("pulling manifest\n"), std::string::npos) << out;
  EXPECT_NE(out.find("pulling " + gguf_digest_.substr(7, 12)), std::string::npos) << out;
  EXPECT_NE(out.find("verifying sha256 digest\nwriting manifest\nsuccess\n"), std::string::npos)
      << out;
  store::Store st(store_dir_.path());
  expect_pulled(st, name(registry_->port()));

  const auto [run_rc, text] =
      sh(corral + "run " + model + " --option num_predict=8 'Once upon a time'");
  ASSERT_EQ(run_rc, 0) << text;
  EXPECT_GT(text.size(), 8u) << text;
}

TEST_F(RegistryPull, PlainHttpNeedsInsecure) {
  store::Store st(store_dir_.path());
  PullOptions o = options();
  o.client.insecure = false;
  o.client.max_attempts = 1;
  try {
    store::registry::pull(st, name(registry_->port()), o);
    FAIL() << "an https pull of an http registry succeeded";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("https://127.0.0.1:"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--insecure"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(st.list().empty());
}

TEST_F(RegistryPull, MissingTagNamesTheRegistryUrl) {
  store::Store st(store_dir_.path());
  const ModelName n =
      ModelName::parse("127.0.0.1:" + std::to_string(registry_->port()) + "/library/none:x");
  try {
    store::registry::pull(st, n, options());
    FAIL() << "pulled a model that is not there";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("/v2/library/none/manifests/x"), std::string::npos)
        << e.what();
  }
}

TEST_F(RegistryPull, DroppedConnectionsAnd503ResumeWithoutRefetching) {
  testing::FaultProxy proxy(registry_->port());
  proxy.drops = 3;
  proxy.unavailable = 1;
  store::Store st(store_dir_.path());
  std::vector<store::registry::PullProgress> seen;
  PullOptions o = options();
  o.progress = [&](const store::registry::PullProgress& p) { seen.push_back(p); };
  store::registry::pull(st, name(proxy.port()), o);
  expect_pulled(st, name(proxy.port()));
  EXPECT_EQ(proxy.drops.load(), 0);
  EXPECT_EQ(proxy.unavailable.load(), 0);
  const uint64_t blobs = gguf_.size() + config_.size();
  EXPECT_LE(proxy.blob_bytes.load(), blobs + blobs / 10);
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back().status, "success");
}

TEST_F(RegistryPull, CorruptedBlobIsFetchedAgainOnce) {
  testing::FaultProxy proxy(registry_->port());
  store::Store st(store_dir_.path());
  PullOptions o = options();
  o.parts.min_part_size = 64 << 20;  // one part, so the corrupted answer is a whole blob
  proxy.corruptions = 1;
  store::registry::pull(st, name(proxy.port()), o);
  expect_pulled(st, name(proxy.port()));
  EXPECT_GE(proxy.blob_bytes.load(), 2 * gguf_.size());

  testing::TempDir other;
  store::Store st2(other.path());
  proxy.corruptions = 1000;
  try {
    store::registry::pull(st2, name(proxy.port()), o);
    FAIL() << "a blob that never matches its digest was accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("expected " + gguf_digest_), std::string::npos)
        << e.what();
  }
  EXPECT_TRUE(st2.list().empty());
  EXPECT_FALSE(st2.has_blob(gguf_digest_));
}

TEST_F(RegistryPull, StalledPullLeavesNoModelAndTheNextOneResumes) {
  testing::FaultProxy proxy(registry_->port());
  store::Store st(store_dir_.path());
  PullOptions o = options();
  o.client.http.stall_timeout_s = 1;
  o.client.max_attempts = 1;
  proxy.stall = true;
  EXPECT_ANY_THROW(store::registry::pull(st, name(proxy.port()), o));
  proxy.stall = false;
  EXPECT_TRUE(st.list().empty());
  EXPECT_FALSE(st.find_manifest(name(proxy.port())));
  const fs::path partial = st.blob_path(gguf_digest_).string() + "-partial";
  EXPECT_TRUE(fs::exists(partial));
  EXPECT_TRUE(fs::exists(store::registry::progress_file(partial)));

  const uint64_t first = proxy.blob_bytes.load();
  EXPECT_GT(first, gguf_.size() / 4);
  store::registry::pull(st, name(proxy.port()), options());
  expect_pulled(st, name(proxy.port()));
  // The second pull fetched only what the first one lacked.
  EXPECT_LE(proxy.blob_bytes.load() - first, gguf_.size() - first + config_.size() + 65536);
}

TEST_F(RegistryPull, BearerChallengeGetsAnAnonymousToken) {
  testing::FaultProxy proxy(registry_->port());
  proxy.require_token = true;
  store::Store st(store_dir_.path());
  store::registry::pull(st, name(proxy.port()), options());
  expect_pulled(st, name(proxy.port()));
  EXPECT_EQ(proxy.token_requests.load(), 1);
  EXPECT_EQ(proxy.token_query, "service=test&scope=repository:library/stories:pull");
}

TEST_F(RegistryPull, ANewerTagPrunesTheBlobsOnlyTheOldOneUsed) {
  store::Store st(store_dir_.path());
  const ModelName n = name(registry_->port());
  store::registry::pull(st, n, options());
  ASSERT_TRUE(st.has_blob(config_digest_));
  // The tag moves to a manifest with another config blob and the same GGUF.
  const std::string other_config = R"({"model_format":"gguf","model_family":"llama","x":1})";
  const std::string other_digest = registry_->push_blob("library/stories", other_config);
  auto manifest = nlohmann::json::parse(manifest_);
  manifest["config"]["digest"] = other_digest;
  manifest["config"]["size"] = other_config.size();
  registry_->push_manifest("library/stories", "latest", manifest.dump());
  store::registry::pull(st, n, options());
  EXPECT_FALSE(st.has_blob(config_digest_));
  EXPECT_TRUE(st.has_blob(other_digest));
  EXPECT_TRUE(st.has_blob(gguf_digest_));
  ASSERT_EQ(st.list().size(), 1u);
  EXPECT_EQ(st.list()[0].manifest.config.digest, other_digest);
}

// The store on a 1.6 MB tmpfs (in a mount namespace of its own: root only) that fills up while the
// blob is half way: the pull stops with the system's error and no model; once there is room, the
// next pull ends the blob.
TEST_F(RegistryPull, DiskFullMidBlobStopsCleanlyAndTheNextPullEndsIt) {
  if (geteuid() != 0 || sh("unshare -m true").first != 0) {
    GTEST_SKIP() << "needs root (unshare -m) to mount a small tmpfs as the store";
  }
  testing::FaultProxy proxy(registry_->port());
  proxy.stall = true;
  const fs::path small = dir_.path() / "small", marks = dir_.path() / "marks";
  fs::create_directories(small);
  fs::create_directories(marks);
  const std::string m = small.string(), k = marks.string();
  const std::string corral =
                        "env CORRAL_NO_SERVER=1 CORRAL_MODELS=" + m + " '" + CORRAL_BINARY + "' ",
                    model = "127.0.0.1:" + std::to_string(proxy.port()) + "/library/stories";
  const std::string script =
      "mount -t tmpfs -o size=1600k tmpfs " + m + " || exit 9\n" +
      // The first pull, in the background, until its progress file shows half the blob.
      "(" + corral + "pull --insecure " + model + " > " + k + "/out1 2>&1; echo $? > " + k +
      "/rc1) &\n" + "for i in $(seq 600); do [ -s " + m + "/blobs/*-partial.json ] && break; " +
      "sleep 0.05; done\n" + "head -c 1000k /dev/zero > " + m + "/filler 2>/dev/null\n" + "touch " +
      k + "/filled\nwait\n" + corral + "list > " + k + "/list1 2>&1\n" + "rm " + m + "/filler\n" +
      corral + "pull --insecure " + model + " > " + k + "/out2 2>&1; echo $? > " + k + "/rc2\n" +
      corral + "list > " + k + "/list2 2>&1\n";
  std::ofstream(marks / "script.sh") << script;
  std::pair<int, std::string> result;
  std::thread run([&] { result = sh("unshare -m sh " + (marks / "script.sh").string()); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(2);
  while (!fs::exists(marks / "filled") && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  proxy.stall = false;  // the rest of the blob now meets a full disk
  run.join();
  ASSERT_EQ(result.first, 0) << result.second;
  EXPECT_NE(read_text(marks / "rc1"), "0\n");
  EXPECT_NE(read_text(marks / "out1").find("No space left on device"), std::string::npos)
      << read_text(marks / "out1");
  EXPECT_EQ(read_text(marks / "list1").find("stories"), std::string::npos)
      << read_text(marks / "list1");
  EXPECT_EQ(read_text(marks / "rc2"), "0\n") << read_text(marks / "out2");
  EXPECT_NE(read_text(marks / "list2").find("stories"), std::string::npos)
      << read_text(marks / "list2");
}

// registry.ollama.ai answers a blob with a 307 to a CDN: the parts go there directly, without the
// registry's token, and an expired signed URL sends the download back to the registry.
TEST_F(RegistryPull, BlobsRedirectedToAnotherHostAreFetchedThereWithoutTheToken) {
  testing::FaultProxy cdn(registry_->port()), front(registry_->port());
  front.require_token = true;
  front.redirect_port = cdn.port();
  cdn.forbidden = 1;
  store::Store st(store_dir_.path());
  store::registry::pull(st, name(front.port()), options());
  expect_pulled(st, name(front.port()));
  EXPECT_TRUE(front.saw_authorization.load());
  EXPECT_FALSE(cdn.saw_authorization.load());
  EXPECT_EQ(cdn.forbidden.load(), 0);
  // Each blob's location is asked once, and once more after the 403; the GGUF's 5 parts and the
  // config come from the CDN.
  EXPECT_LE(front.blob_requests.load(), 3);
  EXPECT_GE(cdn.blob_requests.load(), 7);
  EXPECT_EQ(front.blob_bytes.load(), 0u);
}

TEST(Registry, ParsesBearerChallenges) {
  const auto c = store::registry::parse_bearer_challenge(
      R"(Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push")");
  EXPECT_EQ(c.realm, "https://auth.example/token");
  EXPECT_EQ(c.service, "registry.example");
  EXPECT_EQ(c.scope, "repository:a/b:pull,push");
  EXPECT_TRUE(store::registry::parse_bearer_challenge("Basic realm=\"x\"").realm.empty());
}

TEST(Registry, UrlsFollowInsecureAndTheMirror) {
  using store::registry::Client;
  using store::registry::ClientOptions;
  EXPECT_EQ(Client(ModelName::parse("llama3.2"), {}).repository_url(),
            "https://registry.ollama.ai/v2/library/llama3.2");
  ClientOptions insecure;
  insecure.insecure = true;
  EXPECT_EQ(Client(ModelName::parse("127.0.0.1:5000/me/m:q4"), insecure).repository_url(),
            "http://127.0.0.1:5000/v2/me/m");
  ClientOptions mirror;
  mirror.mirror = "mirror.example:8443/";
  EXPECT_EQ(Client(ModelName::parse("llama3.2"), mirror).repository_url(),
            "https://mirror.example:8443/v2/library/llama3.2");
  mirror.mirror = "http://10.0.0.2:5000";
  EXPECT_EQ(Client(ModelName::parse("llama3.2"), mirror).repository_url(),
            "http://10.0.0.2:5000/v2/library/llama3.2");
  // A name with a host of its own is not redirected.
  EXPECT_EQ(Client(ModelName::parse("other.example/a/b"), mirror).repository_url(),
            "https://other.example/v2/a/b");
}

}  // namespace
}  // namespace corral
