#include "server/access.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <stdexcept>

#include "server/server.h"
#include "store/digest.h"

namespace corral::server {
namespace {

TEST(ListenAddress, ParsesOllamaHostForms) {
  auto a = parse_listen_address("");
  EXPECT_EQ(a.host, "127.0.0.1");
  EXPECT_EQ(a.port, 11434);
  a = parse_listen_address("0.0.0.0");
  EXPECT_EQ(a.host, "0.0.0.0");
  EXPECT_EQ(a.port, 11434);
  a = parse_listen_address("127.0.0.1:0");
  EXPECT_EQ(a.host, "127.0.0.1");
  EXPECT_EQ(a.port, 0);
  a = parse_listen_address(":8080");
  EXPECT_EQ(a.host, "127.0.0.1") << "an empty host stays on loopback";
  EXPECT_EQ(a.port, 8080);
  a = parse_listen_address("http://example.com");
  EXPECT_EQ(a.host, "example.com");
  EXPECT_EQ(a.port, 80);
  a = parse_listen_address("https://example.com/some/path");
  EXPECT_EQ(a.port, 443);
  a = parse_listen_address("  http://10.0.0.2:9000/  ");
  EXPECT_EQ(a.host, "10.0.0.2");
  EXPECT_EQ(a.port, 9000);
  a = parse_listen_address("[::1]:7000");
  EXPECT_EQ(a.host, "::1");
  EXPECT_EQ(a.port, 7000);
  a = parse_listen_address("::1");
  EXPECT_EQ(a.host, "::1");
  EXPECT_EQ(a.port, 11434);
  a = parse_listen_address("[::]");
  EXPECT_EQ(a.host, "::");
}

TEST(ListenAddress, RejectsBadPortsNamingTheVariable) {
  for (const char* bad : {"localhost:abc", "localhost:70000", "localhost:-1", "host:", "h:1x"}) {
    try {
      parse_listen_address(bad);
      ADD_FAILURE() << bad << " was accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("CORRAL_HOST"), std::string::npos) << e.what();
    }
  }
}

TEST(HostHeader, NameIsLowercasedWithoutPortOrBrackets) {
  EXPECT_EQ(host_header_name("LocalHost:11434"), "localhost");
  EXPECT_EQ(host_header_name("[::1]:80"), "::1");
  EXPECT_EQ(host_header_name("[::1]"), "::1");
  EXPECT_EQ(host_header_name("example.com"), "example.com");
  EXPECT_EQ(host_header_name(""), "");
}

TEST(HostHeader, AllowsOnlyNamesOfThisMachine) {
  for (const char* ok : {"", "localhost", "LOCALHOST:11434", "127.0.0.1", "127.0.0.1:5",
                         "127.1.2.3:80", "[::1]:11434", "0.0.0.0:11434", "[::]:1", "10.1.2.3",
                         "192.168.0.10:11434", "172.16.5.4", "[fd00::1]:80", "app.localhost",
                         "my-box.local:11434", "svc.internal", "[::ffff:127.0.0.1]:80"}) {
    EXPECT_TRUE(host_allowed(ok, "127.0.0.1")) << ok;
  }
  for (const char* bad :
       {"evil.example", "evil.example:11434", "localhost.evil.example", "8.8.8.8", "172.32.0.1",
        "[2001:db8::1]:80", "127.0.0.1.evil.example", "local", "internal.example"}) {
    EXPECT_FALSE(host_allowed(bad, "127.0.0.1")) << bad;
  }
}

TEST(HostHeader, AllowsTheBoundHostAndTheMachineName) {
  EXPECT_TRUE(host_allowed("corral-box:11434", "corral-box"));
  EXPECT_TRUE(host_allowed("Corral-Box", "corral-box"));
  EXPECT_FALSE(host_allowed("other-box", "corral-box"));
  EXPECT_TRUE(host_allowed("workstation:11434", "127.0.0.1", "workstation"));
}

TEST(ListenAddress, LoopbackMeansThisMachineOnly) {
  EXPECT_TRUE(is_loopback_address("127.0.0.1"));
  EXPECT_TRUE(is_loopback_address("127.0.0.53"));
  EXPECT_TRUE(is_loopback_address("::1"));
  EXPECT_TRUE(is_loopback_address("localhost"));
  EXPECT_FALSE(is_loopback_address("0.0.0.0"));
  EXPECT_FALSE(is_loopback_address("::"));
  EXPECT_FALSE(is_loopback_address("192.168.1.1"));
  EXPECT_FALSE(is_loopback_address("example.com"));
}

TEST(Origins, DefaultsAllowLocalPagesAndAppSchemes) {
  const auto origins = allowed_origins("");
  for (const char* ok :
       {"http://localhost", "http://localhost:3000", "https://127.0.0.1:8443", "http://0.0.0.0:80",
        "HTTP://LOCALHOST:5173", "app://desktop", "file://", "tauri://localhost",
        "vscode-webview://abc", "chrome-extension://abcdef"}) {
    EXPECT_TRUE(origin_allowed(ok, origins)) << ok;
  }
  for (const char* bad : {"http://evil.example", "http://localhost.evil.example",
                          "https://127.0.0.1.evil.example", "null", "http://10.0.0.1:3000"}) {
    EXPECT_FALSE(origin_allowed(bad, origins)) << bad;
  }
}

TEST(Origins, CorralOriginsAddPatterns) {
  const auto origins = allowed_origins(" https://*.example.org , http://lan-box:8080");
  EXPECT_EQ(origins.front(), "https://*.example.org");
  EXPECT_TRUE(origin_allowed("https://app.example.org", origins));
  EXPECT_TRUE(origin_allowed("http://lan-box:8080", origins));
  EXPECT_FALSE(origin_allowed("http://lan-box:8081", origins));
  EXPECT_FALSE(origin_allowed("https://example.com", origins));
  EXPECT_TRUE(origin_allowed("http://localhost:1", origins)) << "the defaults stay";
  EXPECT_TRUE(origin_allowed("https://anything.example", allowed_origins("*")));
}

TEST(ApiKey, BearerMustMatchExactly) {
  EXPECT_TRUE(bearer_matches("Bearer s3cret", "s3cret"));
  EXPECT_TRUE(bearer_matches("bearer  s3cret ", "s3cret"));
  EXPECT_FALSE(bearer_matches("Bearer s3cre", "s3cret"));
  EXPECT_FALSE(bearer_matches("Bearer s3cretX", "s3cret"));
  EXPECT_FALSE(bearer_matches("s3cret", "s3cret"));
  EXPECT_FALSE(bearer_matches("Basic s3cret", "s3cret"));
  EXPECT_FALSE(bearer_matches("", "s3cret"));
  EXPECT_FALSE(bearer_matches("Bearer ", ""));
}

TEST(BlobDigest, OnlySha256HexNamesABlob) {
  const std::string hex(64, 'a');
  EXPECT_EQ(store::canonical_digest("sha256:" + hex), "sha256:" + hex);
  EXPECT_EQ(store::canonical_digest("sha256-" + hex), "sha256:" + hex);
  for (const std::string& bad :
       {std::string("sha256:") + std::string(63, 'a'),
        std::string("sha256:") + std::string(65, 'a'), std::string("md5:") + hex,
        std::string("sha256:../../") + std::string(58, 'a'),
        std::string("sha256:") + std::string(63, 'a') + "g", std::string()}) {
    EXPECT_THROW(store::canonical_digest(bad), std::invalid_argument) << bad;
  }
}

// Sets environment variables for one test and restores them after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    had_ = std::getenv(name) != nullptr;
    if (value) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (had_) {
      setenv(name_, old_.c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

TEST(ServerOptions, ReadFromTheEnvironment) {
  ScopedEnv host("CORRAL_HOST", "0.0.0.0:12345");
  ScopedEnv origins("CORRAL_ORIGINS", "https://a.example,https://b.example");
  ScopedEnv key("CORRAL_API_KEY", "k");
  ScopedEnv body("CORRAL_MAX_BODY_SIZE", "1000");
  ScopedEnv models("CORRAL_MODELS", "/tmp/corral-models-test");
  const ServerOptions o = server_options_from_env();
  EXPECT_EQ(o.host, "0.0.0.0");
  EXPECT_EQ(o.port, 12345);
  EXPECT_EQ(o.origins, (std::vector<std::string>{"https://a.example", "https://b.example"}));
  EXPECT_EQ(o.api_key, "k");
  EXPECT_EQ(o.max_body_bytes, 1000u);
  EXPECT_EQ(o.models, "/tmp/corral-models-test");
}

TEST(ServerOptions, DefaultsAreLoopbackWithoutKey) {
  ScopedEnv host("CORRAL_HOST", nullptr);
  ScopedEnv origins("CORRAL_ORIGINS", nullptr);
  ScopedEnv key("CORRAL_API_KEY", nullptr);
  ScopedEnv body("CORRAL_MAX_BODY_SIZE", nullptr);
  const ServerOptions o = server_options_from_env();
  EXPECT_EQ(o.host, "127.0.0.1");
  EXPECT_EQ(o.port, 11434);
  EXPECT_TRUE(o.origins.empty());
  EXPECT_TRUE(o.api_key.empty());
  EXPECT_EQ(o.max_body_bytes, size_t{32} << 20);
}

TEST(ServerOptions, TemplateLimitsComeFromTheEnvironment) {
  {
    ScopedEnv output("CORRAL_TEMPLATE_MAX_OUTPUT", nullptr);
    ScopedEnv steps("CORRAL_TEMPLATE_MAX_STEPS", nullptr);
    ScopedEnv timeout("CORRAL_TEMPLATE_TIMEOUT", nullptr);
    const tmpl::Limits defaults;
    const ServerOptions o = server_options_from_env();
    EXPECT_EQ(o.template_limits.max_output_bytes, defaults.max_output_bytes);
    EXPECT_EQ(o.template_limits.max_steps, defaults.max_steps);
    EXPECT_EQ(o.template_limits.max_duration, defaults.max_duration);
  }
  ScopedEnv output("CORRAL_TEMPLATE_MAX_OUTPUT", "1048576");
  ScopedEnv steps("CORRAL_TEMPLATE_MAX_STEPS", "5000");
  ScopedEnv timeout("CORRAL_TEMPLATE_TIMEOUT", "2.5");
  const ServerOptions o = server_options_from_env();
  EXPECT_EQ(o.template_limits.max_output_bytes, size_t{1} << 20);
  EXPECT_EQ(o.template_limits.max_steps, 5000u);
  EXPECT_EQ(o.template_limits.max_duration, std::chrono::milliseconds(2500));
  for (const char* bad : {"0", "-1", "many"}) {
    ScopedEnv again("CORRAL_TEMPLATE_MAX_STEPS", bad);
    EXPECT_THROW(server_options_from_env(), std::invalid_argument) << bad;
  }
  ScopedEnv negative("CORRAL_TEMPLATE_TIMEOUT", "-3");
  EXPECT_THROW(server_options_from_env(), std::invalid_argument);
}

TEST(ServerOptions, BadValuesNameTheVariable) {
  {
    ScopedEnv host("CORRAL_HOST", "localhost:port");
    EXPECT_THROW(server_options_from_env(), std::invalid_argument);
  }
  {
    ScopedEnv body("CORRAL_MAX_BODY_SIZE", "lots");
    try {
      server_options_from_env();
      ADD_FAILURE() << "accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("CORRAL_MAX_BODY_SIZE"), std::string::npos);
    }
  }
}

}  // namespace
}  // namespace corral::server
