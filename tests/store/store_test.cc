#include "store/store.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>

#include "store/digest.h"
#include "store/temp_store.h"

namespace corral::store {
namespace {

using testing::read_text;
using testing::TempDir;
using testing::write_text;
namespace fs = std::filesystem;

Manifest two_layer_manifest(Store& st, const std::string& model_text, const std::string& sys) {
  Manifest m;
  m.layers.push_back(st.add_blob_bytes(model_text, kMediaModel));
  m.layers.push_back(st.add_blob_bytes(sys, kMediaSystem));
  m.config = st.add_blob_bytes("{\"model_format\":\"gguf\"}\n", kMediaConfig);
  return m;
}

TEST(Store, ManifestJsonIsOllamas) {
  Manifest m;
  m.config = {kMediaConfig, "sha256:" + std::string(64, 'a'), 12, {}};
  m.layers.push_back({kMediaModel, "sha256:" + std::string(64, 'b'), 34, {}});
  EXPECT_EQ(m.to_json(),
            "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest."
            "v2+json\",\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+"
            "json\",\"digest\":\"sha256:" +
                std::string(64, 'a') +
                "\",\"size\":12},\"layers\":[{\"mediaType\":\"application/vnd.ollama.image."
                "model\",\"digest\":\"sha256:" +
                std::string(64, 'b') + "\",\"size\":34}]}\n");
  const Manifest back = Manifest::parse(m.to_json(), "m");
  EXPECT_EQ(back.to_json(), m.to_json());
}

TEST(Store, ManifestWithADigestThatIsNotAHashIsRefused) {
  const std::string bad =
      R"({"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:../../../etc/passwd","size":1},"layers":[]})";
  try {
    Manifest::parse(bad, "/m/file");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/m/file: not a valid manifest: config: invalid digest"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(Manifest::parse("{", "m"), std::runtime_error);
  EXPECT_THROW(Manifest::parse(R"({"layers":[]})", "m"), std::runtime_error);
}

TEST(Store, BlobsAreNamedByTheirDigestAndShared) {
  TempDir dir;
  Store st(dir.path());
  bool created = false;
  const Layer a = st.add_blob_bytes("hello", kMediaSystem, &created);
  EXPECT_TRUE(created);
  EXPECT_EQ(a.digest, "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
  EXPECT_EQ(a.size, 5u);
  EXPECT_EQ(read_text(dir.path() / "blobs" /
                      "sha256-2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"),
            "hello");
  st.add_blob_bytes("hello", kMediaSystem, &created);
  EXPECT_FALSE(created);
  EXPECT_EQ(st.read_blob(a.digest), "hello");
  // Nothing is left in the scratch area.
  EXPECT_TRUE(fs::is_empty(dir.path() / "tmp"));
}

TEST(Store, BlobWithWrongContentIsDetected) {
  TempDir dir;
  Store st(dir.path());
  const Layer small = st.add_blob_bytes("system prompt", kMediaSystem);
  write_text(st.blob_path(small.digest), "tampered");
  try {
    st.read_blob(small.digest);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("is corrupt: its content hashes to sha256:"),
              std::string::npos);
  }
  const fs::path big = dir.path() / "model.bin";
  write_text(big, std::string(3 << 20, 'x'));
  const Layer model = st.add_blob_file(big, kMediaModel);
  EXPECT_NO_THROW(st.verify_blob(model.digest));
  {
    std::fstream f(st.blob_path(model.digest), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(1 << 20);
    f.put('y');
  }
  EXPECT_THROW(st.verify_blob(model.digest), std::runtime_error);
  fs::remove(st.blob_path(model.digest));
  EXPECT_THROW(st.verify_blob(model.digest), std::runtime_error);
}

// Prune removes the blobs no manifest references once they are older than the grace period,
// and keeps referenced blobs, young blobs and a pull's partial files.
TEST(Store, PruneRemovesOldUnreferencedBlobsOnly) {
  TempDir dir;
  Store st(dir.path());
  st.write_manifest(ModelName::parse("a"), two_layer_manifest(st, "weights", "system"));
  const Layer orphan = st.add_blob_bytes("left by a killed create", kMediaModel);
  const Layer young = st.add_blob_bytes("a create still running", kMediaModel);
  const fs::path partial = dir.path() / "blobs" / ("sha256-" + std::string(64, 'a') + "-partial");
  write_text(partial, "half a download");
  const auto old = fs::file_time_type::clock::now() - std::chrono::hours(2);
  for (const auto& e : fs::directory_iterator(dir.path() / "blobs")) {
    if (e.path() != st.blob_path(young.digest)) fs::last_write_time(e.path(), old);
  }

  const auto [count, bytes] = st.prune(std::chrono::hours(1));
  EXPECT_EQ(count, 1u);
  EXPECT_EQ(bytes, orphan.size);
  EXPECT_FALSE(st.has_blob(orphan.digest));
  EXPECT_TRUE(st.has_blob(young.digest));
  EXPECT_TRUE(fs::exists(partial));
  for (const Layer& l : st.manifest(ModelName::parse("a")).layers)
    EXPECT_TRUE(st.has_blob(l.digest));
  EXPECT_EQ(st.prune(std::chrono::seconds(0)).first, 1u);  // the young one, once it may go
}

TEST(Store, ListCopyAndRemoveKeepSharedBlobs) {
  TempDir dir;
  Store st(dir.path());
  const ModelName a = ModelName::parse("a");
  const ModelName b = ModelName::parse("me/b:v1");
  const Manifest ma = two_layer_manifest(st, "weights", "system A");
  const Manifest mb = two_layer_manifest(st, "weights", "system B");  // same model blob
  st.write_manifest(a, ma);
  st.write_manifest(b, mb);
  EXPECT_TRUE(fs::is_regular_file(dir.path() / "manifests/registry.ollama.ai/library/a/latest"));
  EXPECT_TRUE(fs::is_regular_file(dir.path() / "manifests/registry.ollama.ai/me/b/v1"));

  std::vector<ModelEntry> entries = st.list();
  ASSERT_EQ(entries.size(), 2u);
  for (const ModelEntry& e : entries) {
    EXPECT_EQ(e.size, 7u + 8u + 24u);  // model, system, config
    EXPECT_EQ(e.digest.size(), 64u);
  }

  st.copy(a, ModelName::parse("a-copy"));
  EXPECT_EQ(st.list().size(), 3u);
  EXPECT_EQ(st.manifest(ModelName::parse("a-copy")).to_json(), ma.to_json());

  st.remove(a);
  EXPECT_FALSE(st.find_manifest(a));
  EXPECT_TRUE(st.has_blob(ma.layers[1].digest));  // a-copy still uses it
  st.remove(ModelName::parse("a-copy"));
  EXPECT_FALSE(st.has_blob(ma.layers[1].digest));  // "system A": nobody's now
  EXPECT_TRUE(st.has_blob(ma.layers[0].digest));   // the shared weights: b uses them
  EXPECT_TRUE(st.has_blob(ma.config.digest));      // same config bytes as b's
  EXPECT_FALSE(fs::exists(dir.path() / "manifests/registry.ollama.ai/library/a"));
  st.remove(b);
  EXPECT_TRUE(st.list().empty());
  EXPECT_TRUE(fs::is_empty(dir.path() / "blobs"));
  try {
    st.remove(b);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "model 'me/b:v1' not found");
  }
}

TEST(Store, NamesMatchCaseInsensitively) {
  TempDir dir;
  Store st(dir.path());
  st.write_manifest(ModelName::parse("MyModel:Big"), two_layer_manifest(st, "w", "s"));
  EXPECT_TRUE(st.find_manifest(ModelName::parse("mymodel:big")));
  // Writing another spelling replaces the model rather than adding a second one.
  st.write_manifest(ModelName::parse("mymodel:BIG"), two_layer_manifest(st, "w2", "s"));
  ASSERT_EQ(st.list().size(), 1u);
  EXPECT_EQ(st.list()[0].name.tag, "BIG");
}

TEST(Store, ListIgnoresScratchFilesAndForeignFiles) {
  TempDir dir;
  Store st(dir.path());
  write_text(dir.path() / "manifests/registry.ollama.ai/library/broken/latest", "{not json");
  write_text(dir.path() / "manifests/registry.ollama.ai/library/x/.latest.tmp", "{}");
  write_text(dir.path() / "tmp/work-1-abc/manifest", "{}");
  write_text(dir.path() / "blobs/sha256-partial", "xx");
  EXPECT_TRUE(st.list().empty());
}

TEST(Store, ScratchFoldersOfDeadProcessesAreSwept) {
  TempDir dir;
  write_text(dir.path() / "tmp/work-999999-dead/blob", "left by a killed create");
  {
    ScratchDir live(dir.path());
    write_text(live.file("x"), "in use");
    ScratchDir other(dir.path());  // sweeps, but must not take `live`
    EXPECT_FALSE(fs::exists(dir.path() / "tmp/work-999999-dead"));
    EXPECT_TRUE(fs::exists(live.file("x")));
  }
  EXPECT_TRUE(fs::is_empty(dir.path() / "tmp"));
}

TEST(Store, DefaultRootComesFromCorralModels) {
  const char* old = std::getenv("CORRAL_MODELS");
  const std::string saved = old ? old : "";
  setenv("CORRAL_MODELS", "/some/where", 1);
  EXPECT_EQ(Store::default_root(), fs::path("/some/where"));
  unsetenv("CORRAL_MODELS");
  EXPECT_EQ(Store::default_root(), fs::path(std::getenv("HOME")) / ".corral/models");
  if (old) setenv("CORRAL_MODELS", saved.c_str(), 1);
}

}  // namespace
}  // namespace corral::store
