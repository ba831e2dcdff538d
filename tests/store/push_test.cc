// Pushes to a real registry (Debian's docker-registry on loopback), directly and through a
// FaultProxy: a created model pushed, removed and pulled back is the same model byte for byte and
// runs; a second model sharing the GGUF uploads only its new blobs (the GGUF is mounted from the
// first model's repository, or found by HEAD in the same one); PATCHes dropped mid-upload are
// resumed from the registry's offset without sending a chunk twice (and one the registry half
// received, in a new session); a token is fetched for the
// push scope; a name with no local model is a clear error.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <iterator>

#include "store/create.h"
#include "store/local_registry.h"
#include "store/modelfile.h"
#include "store/registry/pull.h"
#include "store/registry/push.h"
#include "store/temp_store.h"
#include "testdata.h"

namespace corral {
namespace {

namespace fs = std::filesystem;
using store::ModelName;
using store::registry::PushOptions;
using testing::read_text;
using testing::sh;

class RegistryPush : public ::testing::Test {
 protected:
  void SetUp() override {
    registry_ = std::make_unique<testing::LocalRegistry>(dir_.path());
    gguf_path_ = testing::testdata_path("tinystories260k/stories260K-f32.gguf");
    gguf_size_ = fs::file_size(gguf_path_);
  }

  std::string name(int port, const std::string& rest) const {
    return "127.0.0.1:" + std::to_string(port) + "/" + rest;
  }

  // A model from the stories260K GGUF, with `extra` Modelfile lines.
  store::Manifest create(store::Store& st, const std::string& model, const std::string& extra) {
    const std::string text = "FROM " + gguf_path_.string() + "\n" + extra;
    store::create_model(st, ModelName::parse(model), store::parse_modelfile(text), dir_.path());
    return st.manifest(ModelName::parse(model));
  }

  // Small chunks (5 for the GGUF), quick retries, plain http.
  static PushOptions options() {
    PushOptions o;
    o.client.insecure = true;
    o.client.first_backoff = std::chrono::milliseconds(5);
    o.upload.chunk_size = 256 << 10;
    return o;
  }

  static std::string manifest_bytes(const store::Store& st, const std::string& model) {
    return read_text(st.root() / "manifests" / ModelName::parse(model).manifest_path());
  }

  // Pulls `model` into a fresh store and checks that manifest and blobs equal `from`'s.
  void expect_pulls_back(const store::Store& from, const std::string& model) {
    testing::TempDir other;
    store::Store st(other.path());
    store::registry::PullOptions o;
    o.client.insecure = true;
    store::registry::pull(st, ModelName::parse(model), o);
    EXPECT_EQ(manifest_bytes(st, model), manifest_bytes(from, model));
    const store::Manifest m = from.manifest(ModelName::parse(model));
    std::vector<store::Layer> blobs = m.layers;
    blobs.push_back(m.config);
    for (const store::Layer& l : blobs) {
      EXPECT_EQ(read_text(st.blob_path(l.digest)), read_text(from.blob_path(l.digest))) << l.digest;
    }
  }

  testing::TempDir dir_, store_dir_;
  std::unique_ptr<testing::LocalRegistry> registry_;
  fs::path gguf_path_;
  uint64_t gguf_size_ = 0;
};

TEST_F(RegistryPush, PushedRemovedAndPulledBackIsIdenticalAndRuns) {
  const std::string model = name(registry_->port(), "me/stories:latest");
  store::Store st(store_dir_.path());
  const store::Manifest m = create(st, model, "SYSTEM You tell short stories.\n");
  const std::string manifest = manifest_bytes(st, model);
  std::map<std::string, std::string> blobs;
  for (const store::Layer& l : m.layers) blobs[l.digest] = read_text(st.blob_path(l.digest));
  blobs[m.config.digest] = read_text(st.blob_path(m.config.digest));

  const std::string corral =
      "env CORRAL_NO_SERVER=1 CORRAL_MODELS='" + store_dir_.str() + "' '" + CORRAL_BINARY + "' ";
  auto [rc, out] = sh(corral + "push " + model + " --insecure");
  ASSERT_EQ(rc, 0) << out;
  EXPECT_TRUE(out.starts_with("retrieving manifest\n")) << out;
  for (const auto& [digest, bytes] : blobs) {
    EXPECT_NE(out.find("pushing " + digest.substr(7, 12) + " 100%"), std::string::npos) << out;
  }
  EXPECT_TRUE(out.ends_with("pushing manifest\nsuccess\n")) << out;

  std::tie(rc, out) = sh(corral + "rm " + model);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_TRUE(st.list().empty());
  for (const auto& [digest, bytes] : blobs) EXPECT_FALSE(st.has_blob(digest));

  std::tie(rc, out) = sh(corral + "pull " + model + " --insecure");
  ASSERT_EQ(rc, 0) << out;
  EXPECT_EQ(manifest_bytes(st, model), manifest);
  for (const auto& [digest, bytes] : blobs) EXPECT_EQ(read_text(st.blob_path(digest)), bytes);

  std::tie(rc, out) = sh(corral + "run " + model + " --option num_predict=8 'Once upon a time'");
  ASSERT_EQ(rc, 0) << out;
  EXPECT_GT(out.size(), 8u) << out;
}

TEST_F(RegistryPush, SharedLayersAreMountedOrSkippedNotUploadedAgain) {
  testing::FaultProxy proxy(registry_->port());
  store::Store st(store_dir_.path());
  const std::string a = name(proxy.port(), "me/first:latest");
  const store::Manifest ma = create(st, a, "");
  auto result = store::registry::push(st, ModelName::parse(a), options());
  EXPECT_EQ(result.uploaded, static_cast<int>(ma.layers.size()) + 1);  // and the config
  const uint64_t first = proxy.upload_bytes.load();
  EXPECT_EQ(first, result.uploaded_bytes);
  EXPECT_GE(first, gguf_size_);

  // Another repository on the same registry: the GGUF is mounted from me/first.
  const std::string b = name(proxy.port(), "me/second:latest");
  const store::Manifest mb = create(st, b, "SYSTEM Be brief.\nPARAMETER temperature 0.5\n");
  std::vector<store::registry::PushProgress> seen;
  PushOptions o = options();
  o.progress = [&](const store::registry::PushProgress& p) { seen.push_back(p); };
  result = store::registry::push(st, ModelName::parse(b), o);
  EXPECT_EQ(result.mounted, 1);
  EXPECT_EQ(proxy.mounts.load(), 1);
  EXPECT_EQ(result.existed, 0);
  EXPECT_EQ(result.uploaded, static_cast<int>(mb.layers.size() - ma.layers.size()) + 1);
  EXPECT_LT(proxy.upload_bytes.load() - first, 4096u);
  ASSERT_GE(seen.size(), 4u);
  EXPECT_EQ(seen.front().status, "retrieving manifest");
  const std::string model_digest = mb.find_layer(store::kMediaModel)->digest;
  EXPECT_TRUE(std::any_of(seen.begin(), seen.end(), [&](const auto& p) {
    return p.status == "pushing " + model_digest.substr(7, 12) && p.digest == model_digest &&
           p.total == gguf_size_ && p.completed == gguf_size_;
  }));
  EXPECT_EQ(seen[seen.size() - 2].status, "pushing manifest");
  EXPECT_EQ(seen.back().status, "success");
  expect_pulls_back(st, b);

  // Another tag of the same repository: the registry has every shared blob already.
  const std::string c = name(proxy.port(), "me/first:cold");
  const store::Manifest mc = create(st, c, "PARAMETER temperature 0\n");
  const uint64_t before = proxy.upload_bytes.load();
  result = store::registry::push(st, ModelName::parse(c), options());
  EXPECT_EQ(result.existed, static_cast<int>(ma.layers.size()));
  EXPECT_EQ(result.mounted, 0);
  EXPECT_EQ(result.uploaded, static_cast<int>(mc.layers.size() - ma.layers.size()) + 1);
  EXPECT_LT(proxy.upload_bytes.load() - before, 4096u);

  // The same push again uploads nothing.
  const uint64_t again = proxy.upload_bytes.load();
  result = store::registry::push(st, ModelName::parse(c), options());
  EXPECT_EQ(result.uploaded, 0);
  EXPECT_EQ(proxy.upload_bytes.load(), again);
}

TEST_F(RegistryPush, DroppedPatchesResumeFromTheRegistryOffset) {
  testing::FaultProxy proxy(registry_->port());
  store::Store st(store_dir_.path());
  const std::string model = name(proxy.port(), "me/stories:latest");
  create(st, model, "");
  proxy.patch_drops = 3;
  const auto result = store::registry::push(st, ModelName::parse(model), options());
  EXPECT_EQ(proxy.patch_drops.load(), 0);
  // Each chunk reached the registry once: the dropped ones were sent again from the offset the
  // registry reported, nothing before it.
  EXPECT_EQ(proxy.upload_bytes.load(), result.uploaded_bytes);
  expect_pulls_back(st, model);
}

TEST_F(RegistryPush, HalfReceivedPatchStartsAFreshSession) {
  // The distribution server forgets a session whose chunk it half received (its state token no
  // longer matches): the upload starts again in a new session, and still ends verified.
  testing::FaultProxy proxy(registry_->port());
  store::Store st(store_dir_.path());
  const std::string model = name(proxy.port(), "me/stories:latest");
  create(st, model, "");
  proxy.patch_half_drops = 1;
  const auto result = store::registry::push(st, ModelName::parse(model), options());
  EXPECT_EQ(proxy.patch_half_drops.load(), 0);
  EXPECT_GT(proxy.upload_bytes.load(), result.uploaded_bytes);
  EXPECT_LE(proxy.upload_bytes.load(), 2 * result.uploaded_bytes);
  expect_pulls_back(st, model);
}

TEST_F(RegistryPush, ProgressThatThrowsStopsThePush) {
  // As the server's progress does when its client has gone: the push stops with that error, no
  // retry, and no manifest reaches the registry.
  store::Store st(store_dir_.path());
  const std::string model = name(registry_->port(), "me/stories:latest");
  create(st, model, "");
  PushOptions o = options();
  o.progress = [](const store::registry::PushProgress& p) {
    if (p.completed > 0 && p.completed < p.total) throw std::runtime_error("client gone");
  };
  std::string error;
  try {
    store::registry::push(st, ModelName::parse(model), o);
  } catch (const std::exception& e) {
    error = e.what();
  }
  EXPECT_EQ(error, "client gone");
  httplib::Client c("127.0.0.1", registry_->port());
  const auto r = c.Get("/v2/me/stories/manifests/latest");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
}

TEST_F(RegistryPush, TokenIsFetchedForThePushScope) {
  testing::FaultProxy proxy(registry_->port());
  proxy.require_token = true;
  store::Store st(store_dir_.path());
  const std::string model = name(proxy.port(), "me/stories:latest");
  create(st, model, "");
  store::registry::push(st, ModelName::parse(model), options());
  EXPECT_GE(proxy.push_token_requests.load(), 1);
  EXPECT_EQ(proxy.token_query, "service=test&scope=repository:me/stories:pull,push");
  expect_pulls_back(st, model);
}

TEST_F(RegistryPush, ModelNotInTheStoreIsAClearError) {
  store::Store st(store_dir_.path());
  const std::string model = name(registry_->port(), "me/none:latest");
  try {
    store::registry::push(st, ModelName::parse(model), options());
    FAIL() << "pushed a model that is not there";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("model '" + model + "' not found"), std::string::npos)
        << e.what();
  }
  const auto [rc, out] = sh("env CORRAL_NO_SERVER=1 CORRAL_MODELS='" + store_dir_.str() + "' '" +
                            CORRAL_BINARY + "' push " + model + " --insecure");
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("not found"), std::string::npos) << out;
}

TEST(Registry, LocationsResolveAgainstTheRequest) {
  using store::registry::resolve_location;
  const std::string req = "http://h:5000/v2/a/b/blobs/uploads/?mount=x";
  EXPECT_EQ(resolve_location(req, "/v2/a/b/blobs/uploads/u1?_state=s"),
            "http://h:5000/v2/a/b/blobs/uploads/u1?_state=s");
  EXPECT_EQ(resolve_location(req, "https://cdn.example/up/1"), "https://cdn.example/up/1");
  EXPECT_EQ(resolve_location(req, "u2?_state=t"), "http://h:5000/v2/a/b/blobs/uploads/u2?_state=t");
}

}  // namespace
}  // namespace corral
