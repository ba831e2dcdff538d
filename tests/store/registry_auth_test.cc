// Pulls from Debian's docker-registry behind authentication, on loopback: token auth with a token
// server that only answers requests signed as Ollama signs them (token_server.h), and htpasswd
// (Basic) auth with the password in a Docker config.json-format credentials file. Also the
// credentials file's lookup rules and the URLs the client builds for hf.co names.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

#include "store/base64.h"
#include "store/local_registry.h"
#include "store/registry/credentials.h"
#include "store/registry/pull.h"
#include "store/registry/push.h"
#include "store/temp_store.h"
#include "store/token_server.h"

namespace corral {
namespace {

namespace fs = std::filesystem;
using store::ModelName;
using store::registry::PullOptions;
using testing::read_text;
using testing::sh;

// bcrypt (cost 4) of kPassword, as distribution's htpasswd reads it; made with libxcrypt's
// crypt() ($2b$ is the prefix Go's bcrypt accepts, like $2a$ and $2y$).
constexpr const char* kUser = "corral-user";
constexpr const char* kPassword = "hunter2-correct";
constexpr const char* kBcrypt = "$2b$04$1/ggZjrI5RKCZkBqcvoSoOr1Ia8WcdrrUU.nqFFnMC8Zh0RC1uJH6";

std::string random_bytes(size_t n) {
  std::mt19937 rng(42);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

// Fills `registry` with library/tiny:latest (a config and one layer); returns the manifest.
std::string push_model(testing::LocalRegistry& registry, std::string* layer_digest) {
  const std::string config = R"({"model_format":"gguf","model_family":"llama"})";
  const std::string layer = random_bytes(700 << 10);
  const std::string config_digest = registry.push_blob("library/tiny", config);
  *layer_digest = registry.push_blob("library/tiny", layer);
  const std::string manifest =
      nlohmann::json{
          {"schemaVersion", 2},
          {"mediaType", store::kMediaManifest},
          {"config",
           {{"mediaType", store::kMediaConfig},
            {"digest", config_digest},
            {"size", config.size()}}},
          {"layers",
           {{{"mediaType", store::kMediaModel},
             {"digest", *layer_digest},
             {"size", layer.size()}}}},
      }
          .dump();
  registry.push_manifest("library/tiny", "latest", manifest);
  return manifest;
}

PullOptions quick_options() {
  PullOptions o;
  o.client.insecure = true;
  o.client.first_backoff = std::chrono::milliseconds(5);
  o.client.max_attempts = 2;
  o.parts.min_part_size = 256 << 10;
  return o;
}

// `corral` with HOME (where the key and credentials are looked for) and the store in temp folders,
// never a running server.
std::string corral_in(const testing::TempDir& home, const testing::TempDir& store,
                      const std::string& env = "") {
  return "env -u DOCKER_CONFIG HOME='" + home.str() + "' CORRAL_NO_SERVER=1 CORRAL_MODELS='" +
         store.str() + "' " + env + " '" + CORRAL_BINARY + "' ";
}

std::string pull_error(store::Store& st, const ModelName& name, const PullOptions& o) {
  try {
    store::registry::pull(st, name, o);
  } catch (const std::exception& e) {
    return e.what();
  }
  ADD_FAILURE() << "the pull of " << name.display() << " succeeded";
  return {};
}

// docker-registry with `auth: token`, behind a TokenServer that also forwards /v2/.
class RegistryTokenAuth : public ::testing::Test {
 protected:
  void SetUp() override {
    tokens_ = std::make_unique<testing::TokenServer>(dir_.path());
    registry_ =
        std::make_unique<testing::LocalRegistry>(dir_.path(), tokens_->registry_auth_yaml());
    tokens_->set_upstream(registry_->port());
    registry_->authorization =
        "Bearer " + tokens_->mint("test-setup", "repository:library/tiny:pull,push");
    manifest_ = push_model(*registry_, &layer_digest_);
  }
  ModelName name() const {
    return ModelName::parse("127.0.0.1:" + std::to_string(tokens_->port()) + "/library/tiny");
  }

  testing::TempDir dir_, store_dir_, home_;
  std::unique_ptr<testing::TokenServer> tokens_;
  std::unique_ptr<testing::LocalRegistry> registry_;
  std::string manifest_, layer_digest_;
};

TEST_F(RegistryTokenAuth, PullWithARequestSignedByAKnownKey) {
  const fs::path key_file = home_.path() / ".corral" / "id_ed25519";
  tokens_->trust(store::registry::load_or_create_key(key_file).public_base64());
  store::Store st(store_dir_.path());
  PullOptions o = quick_options();
  o.client.key_file = key_file;
  store::registry::pull(st, name(), o);
  EXPECT_EQ(testing::read_text(st.root() / "manifests" / name().manifest_path()), manifest_);
  EXPECT_TRUE(st.has_blob(layer_digest_));
  EXPECT_GE(tokens_->issued.load(), 1);
  EXPECT_EQ(tokens_->refused.load(), 0);
}

TEST_F(RegistryTokenAuth, UnknownKeyIsUnauthorizedAndTheKeyIsMadeOnFirstUse) {
  const fs::path key_file = home_.path() / ".corral" / "id_ed25519";
  store::Store st(store_dir_.path());
  PullOptions o = quick_options();
  o.client.key_file = key_file;
  const std::string error = pull_error(st, name(), o);
  EXPECT_NE(error.find("401 Unauthorized"), std::string::npos) << error;
  EXPECT_NE(error.find("is not known here"), std::string::npos) << error;
  EXPECT_NE(error.find("signed with the key " + key_file.string()), std::string::npos) << error;
  EXPECT_NE(error.find(name().host), std::string::npos) << error;
  EXPECT_TRUE(fs::exists(key_file));
  EXPECT_TRUE(fs::exists(key_file.string() + ".pub"));
  EXPECT_TRUE(st.list().empty());
  EXPECT_GE(tokens_->refused.load(), 1);

  // Once the token server knows the key that was made, the same pull works.
  tokens_->trust(store::registry::load_or_create_key(key_file).public_base64());
  store::registry::pull(st, name(), o);
  EXPECT_TRUE(st.has_blob(layer_digest_));
}

TEST_F(RegistryTokenAuth, CorralPullSignsWithTheKeyMadeInHome) {
  const std::string pull =
      corral_in(home_, store_dir_) + "pull " + name().display() + " --insecure";
  auto [rc, out] = sh(pull);
  EXPECT_NE(rc, 0) << out;
  EXPECT_NE(out.find("401 Unauthorized"), std::string::npos) << out;
  const fs::path key_file = home_.path() / ".corral" / "id_ed25519";
  EXPECT_NE(out.find("signed with the key " + key_file.string()), std::string::npos) << out;
  ASSERT_TRUE(fs::exists(key_file));

  tokens_->trust(store::registry::load_or_create_key(key_file).public_base64());
  std::tie(rc, out) = sh(pull);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("success"), std::string::npos) << out;
  store::Store st(store_dir_.path());
  EXPECT_EQ(testing::read_text(st.root() / "manifests" / name().manifest_path()), manifest_);
}

TEST_F(RegistryTokenAuth, PushGetsATokenForThePushScopeWithASignedRequest) {
  // Pulled, then pushed under another repository of the registry: distribution asks the pull
  // token's holder for one with the push scope, which the signed request gets.
  store::Store st(store_dir_.path());
  PullOptions o = quick_options();
  o.client.key_file = home_.path() / "id_ed25519";
  tokens_->trust(store::registry::load_or_create_key(o.client.key_file).public_base64());
  store::registry::pull(st, name(), o);
  const ModelName copy =
      ModelName::parse("127.0.0.1:" + std::to_string(tokens_->port()) + "/me/tiny:v1");
  st.copy(name(), copy);
  store::registry::PushOptions p;
  p.client = o.client;
  p.upload.chunk_size = 256 << 10;
  const int before = tokens_->issued.load();
  const auto result = store::registry::push(st, copy, p);
  EXPECT_EQ(result.mounted, 2);  // from library/tiny, which the pull came from
  EXPECT_GT(tokens_->issued.load(), before);
  EXPECT_EQ(tokens_->refused.load(), 0);
  httplib::Client c("127.0.0.1", registry_->port());
  c.set_default_headers(
      {{"Authorization", "Bearer " + tokens_->mint("test-check", "repository:me/tiny:pull")},
       {"Accept", store::kMediaManifest}});
  const auto r = c.Get("/v2/me/tiny/manifests/v1");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, testing::read_text(st.root() / "manifests" / copy.manifest_path()));
}

TEST_F(RegistryTokenAuth, WithoutAKeyTheRequestIsUnsignedAndRefused) {
  store::Store st(store_dir_.path());
  const std::string error = pull_error(st, name(), quick_options());
  EXPECT_NE(error.find("401 Unauthorized"), std::string::npos) << error;
  EXPECT_NE(error.find("the request is not signed"), std::string::npos) << error;
  EXPECT_NE(error.find("sent anonymously"), std::string::npos) << error;
}

// docker-registry with `auth: htpasswd` (plain http: distribution does not insist on TLS).
class RegistryBasicAuth : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::write_text(dir_.path() / "htpasswd", std::string(kUser) + ":" + kBcrypt + "\n");
    registry_ = std::make_unique<testing::LocalRegistry>(
        dir_.path(), "  htpasswd:\n    realm: corral-test\n    path: " +
                         (dir_.path() / "htpasswd").string() + "\n");
    registry_->authorization =
        "Basic " + store::base64_encode(std::string(kUser) + ":" + kPassword);
    manifest_ = push_model(*registry_, &layer_digest_);
    host_ = "127.0.0.1:" + std::to_string(registry_->port());
  }
  ModelName name() const { return ModelName::parse(host_ + "/library/tiny"); }
  // A credentials file with `password` for the registry.
  fs::path credentials(const std::string& password) {
    const fs::path file = home_.path() / ".corral" / "credentials.json";
    const nlohmann::json j = {
        {"auths",
         {{"other.example", {{"auth", store::base64_encode("x:y")}}},
          {"http://" + host_,
           {{"auth", store::base64_encode(std::string(kUser) + ":" + password)}}}}}};
    testing::write_text(file, j.dump());
    return file;
  }

  testing::TempDir dir_, store_dir_, home_;
  std::unique_ptr<testing::LocalRegistry> registry_;
  std::string manifest_, layer_digest_, host_;
};

TEST_F(RegistryBasicAuth, PullWithThePasswordFromTheCredentialsFile) {
  store::Store st(store_dir_.path());
  PullOptions o = quick_options();
  o.client.credential_files = {home_.path() / "missing.json", credentials(kPassword)};
  store::registry::pull(st, name(), o);
  EXPECT_EQ(testing::read_text(st.root() / "manifests" / name().manifest_path()), manifest_);
  EXPECT_TRUE(st.has_blob(layer_digest_));
}

TEST_F(RegistryBasicAuth, WrongPasswordNamesTheRegistryAndTheFile) {
  store::Store st(store_dir_.path());
  PullOptions o = quick_options();
  const fs::path file = credentials("wrong");
  o.client.credential_files = {file};
  const std::string error = pull_error(st, name(), o);
  EXPECT_NE(error.find("unauthorized: the registry " + host_ + " refused the password of user '" +
                       kUser + "' from " + file.string()),
            std::string::npos)
      << error;
  EXPECT_TRUE(st.list().empty());
}

TEST_F(RegistryBasicAuth, NoCredentialsSaysWhereToPutThem) {
  store::Store st(store_dir_.path());
  PullOptions o = quick_options();
  o.client.credential_files = {home_.path() / ".corral" / "credentials.json"};
  const std::string error = pull_error(st, name(), o);
  EXPECT_NE(error.find("the registry " + host_ + " asks for a user name and password"),
            std::string::npos)
      << error;
  EXPECT_NE(error.find((home_.path() / ".corral" / "credentials.json").string()), std::string::npos)
      << error;
}

TEST_F(RegistryBasicAuth, PushWithThePasswordFromTheCredentialsFile) {
  // The pulled model under another repository of the registry: its blobs are mounted from
  // library/tiny, then its manifest is put, all with the password.
  store::Store st(store_dir_.path());
  PullOptions o = quick_options();
  o.client.credential_files = {credentials(kPassword)};
  store::registry::pull(st, name(), o);
  const ModelName copy = ModelName::parse(host_ + "/me/tiny:v1");
  st.copy(name(), copy);
  store::registry::PushOptions p;
  p.client = o.client;
  const auto result = store::registry::push(st, copy, p);
  EXPECT_EQ(result.mounted, 2);
  httplib::Client c("127.0.0.1", registry_->port());
  c.set_default_headers(
      {{"Authorization", registry_->authorization}, {"Accept", store::kMediaManifest}});
  const auto r = c.Get("/v2/me/tiny/manifests/v1");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, testing::read_text(st.root() / "manifests" / copy.manifest_path()));

  // Without the password the push is refused, saying where a password would go.
  p.client.credential_files = {home_.path() / "none.json"};
  const ModelName other = ModelName::parse(host_ + "/me/other:v1");
  st.copy(name(), other);
  try {
    store::registry::push(st, other, p);
    ADD_FAILURE() << "pushed without a password";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("asks for a user name and password"), std::string::npos)
        << e.what();
  }
}

TEST_F(RegistryBasicAuth, CorralPullReadsDockersConfigWhenCorralHasNone) {
  testing::TempDir docker;
  testing::write_text(
      docker.path() / "config.json",
      nlohmann::json{
          {"auths",
           {{host_, {{"auth", store::base64_encode(std::string(kUser) + ":" + kPassword)}}}}}}
          .dump());
  const std::string pull = "pull " + name().display() + " --insecure";
  auto [rc, out] = sh(corral_in(home_, store_dir_) + pull);
  EXPECT_NE(rc, 0) << out;
  EXPECT_NE(out.find("asks for a user name and password"), std::string::npos) << out;
  std::tie(rc, out) =
      sh(corral_in(home_, store_dir_, "DOCKER_CONFIG='" + docker.str() + "'") + pull);
  ASSERT_EQ(rc, 0) << out;
  store::Store st(store_dir_.path());
  EXPECT_TRUE(st.has_blob(layer_digest_));
}

TEST(RegistryCredentials, LookupByHostInDockerConfigFiles) {
  using store::registry::find_credentials;
  testing::TempDir dir;
  const fs::path a = dir.path() / "a.json", b = dir.path() / "b.json";
  testing::write_text(a,
                      R"({"auths": {"https://index.docker.io/v1/": {"auth": "aHVidXNlcjpwYTpzcw=="},
                                        "Registry.Example:5000": {"username": "u", "password": "p"},
                                        "token-only.example": {"identitytoken": "t"}}})");
  testing::write_text(b, R"({"auths": {"registry.example:5000": {"auth": "b3RoZXI6eA=="},
                                        "ghcr.io": {"auth": "Z2g6cGFzcw=="}}})");
  const std::vector<fs::path> files = {dir.path() / "none.json", a, b};
  auto hub = find_credentials(files, "index.docker.io");
  ASSERT_TRUE(hub);
  EXPECT_EQ(hub->user, "hubuser");  // the first ':' ends the user name, as in Docker
  EXPECT_EQ(hub->password, "pa:ss");
  EXPECT_EQ(hub->source, a);
  auto first = find_credentials(files, "registry.example:5000");
  ASSERT_TRUE(first);
  EXPECT_EQ(first->user, "u");
  EXPECT_EQ(first->password, "p");
  EXPECT_EQ(first->basic_authorization(), "Basic dTpw");
  auto gh = find_credentials(files, "GHCR.io");
  ASSERT_TRUE(gh);
  EXPECT_EQ(gh->source, b);
  EXPECT_EQ(gh->password, "pass");
  EXPECT_FALSE(find_credentials(files, "registry.example"));  // another port is another registry
  EXPECT_FALSE(find_credentials(files, "token-only.example"));

  testing::write_text(b, "{\"auths\": ");
  try {
    find_credentials({b}, "ghcr.io");
    FAIL() << "a truncated file was read";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(b.string() + ": not JSON"), std::string::npos) << e.what();
  }
  testing::write_text(b, R"({"auths": {"ghcr.io": {"auth": "bm8gY29sb24="}}})");
  EXPECT_THROW(find_credentials({b}, "ghcr.io"), std::runtime_error);
}

TEST(RegistryNames, HuggingFaceNamesUseTheRegistryApiOfTheirHost) {
  using store::registry::Client;
  const ModelName n = ModelName::parse("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M");
  EXPECT_EQ(Client(n, {}).repository_url(),
            "https://hf.co/v2/bartowski/Llama-3.2-1B-Instruct-GGUF");
  // The mirror stands in for the default registry only.
  store::registry::ClientOptions mirror;
  mirror.mirror = "http://10.0.0.2:5000";
  EXPECT_EQ(
      Client(ModelName::parse("huggingface.co/unsloth/Qwen3-0.6B-GGUF"), mirror).repository_url(),
      "https://huggingface.co/v2/unsloth/Qwen3-0.6B-GGUF");
}

}  // namespace
}  // namespace corral
