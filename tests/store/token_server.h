// A token server for docker-registry's `auth: token` (distribution's token authentication:
// https://distribution.github.io/distribution/spec/auth/token/), on loopback, that hands out
// tokens only for requests signed as Ollama signs them: Authorization "<public key>:<signature>",
// where the public key is the SSH wire form of an ed25519 key it was told to trust and the
// signature covers "GET,<the request's URL>,<base64 of the hex sha256 of the empty body>".
//
// Tokens are JWTs signed RS256 by a key whose self-signed certificate is the registry's
// rootcertbundle, with the certificate in the x5c header, and the claims distribution 2.8 checks
// (iss, aud = the service, exp and nbf within a minute's leeway) plus sub, iat, jti and access.
//
// It also forwards /v2/... to the registry (GET, and a push's HEAD, POST, PATCH and PUT, with
// relative Locations), so that the realm is on the registry's own host:port, the only place
// Ollama (and corral) sends a signed request.
#pragma once

#include <httplib.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>

namespace corral::testing {

class TokenServer {
 public:
  static constexpr const char* kService = "corral-test-registry";
  static constexpr const char* kIssuer = "corral-test-token-server";

  std::atomic<int> issued{0}, refused{0};

  explicit TokenServer(const std::filesystem::path& dir)
      : key_(EVP_RSA_gen(2048), EVP_PKEY_free), cert_path_(dir / "token-signer.crt") {
    if (!key_) throw std::runtime_error("cannot make an RSA key");
    make_certificate();
    server_.Get("/token",
                [this](const httplib::Request& req, httplib::Response& res) { token(req, res); });
    server_.Get(R"(/v2/.*)",
                [this](const httplib::Request& req, httplib::Response& res) { forward(req, res); });
    server_.Get("/v2/",
                [this](const httplib::Request& req, httplib::Response& res) { forward(req, res); });
    const httplib::Server::Handler push = [this](const httplib::Request& req,
                                                 httplib::Response& res) { forward(req, res); };
    server_.Post(R"(/v2/.*)", push);
    server_.Patch(R"(/v2/.*)", push);
    server_.Put(R"(/v2/.*)", push);
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~TokenServer() {
    server_.stop();
    thread_.join();
  }
  TokenServer(const TokenServer&) = delete;
  TokenServer& operator=(const TokenServer&) = delete;

  int port() const { return port_; }
  // The `auth:` section of the registry's configuration.
  std::string registry_auth_yaml() const {
    return "  token:\n    realm: http://127.0.0.1:" + std::to_string(port_) + "/token\n" +
           "    service: " + kService + "\n    issuer: " + kIssuer +
           "\n    rootcertbundle: " + cert_path_.string() + "\n";
  }
  void set_upstream(int registry_port) { upstream_ = registry_port; }
  // Signed requests with this key (the base64 of its SSH wire form) get tokens.
  void trust(const std::string& public_base64) {
    std::lock_guard lock(mutex_);
    trusted_.insert(public_base64);
  }
  // A token for `scope` ("repository:NAME:ACTIONS"), as the registry's owner would mint one.
  std::string mint(const std::string& subject, const std::string& scope) {
    return jwt(subject, {scope});
  }

 private:
  using Pkey = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

  static std::string b64(std::string_view bytes, bool url) {
    std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
    out.resize(EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                               reinterpret_cast<const unsigned char*>(bytes.data()),
                               static_cast<int>(bytes.size())));
    if (url) {
      while (out.ends_with('=')) out.pop_back();
      for (char& c : out) c = c == '+' ? '-' : c == '/' ? '_' : c;
    }
    return out;
  }
  static std::string unb64(const std::string& text) {
    std::string out(text.size(), '\0');
    const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(text.data()),
                                  static_cast<int>(text.size()));
    if (n < 0 || text.size() % 4 != 0) return {};
    out.resize(static_cast<size_t>(n) - (text.ends_with("==") ? 2 : text.ends_with("=") ? 1 : 0));
    return out;
  }

  void make_certificate() {
    std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), X509_free);
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(kIssuer), -1, -1, 0);
    X509_set_issuer_name(cert.get(), name);
    X509_set_pubkey(cert.get(), key_.get());
    if (X509_sign(cert.get(), key_.get(), EVP_sha256()) <= 0) {
      throw std::runtime_error("cannot sign the token certificate");
    }
    FILE* f = fopen(cert_path_.c_str(), "w");
    if (!f) throw std::runtime_error("cannot write " + cert_path_.string());
    PEM_write_X509(f, cert.get());
    fclose(f);
    unsigned char* der = nullptr;
    const int n = i2d_X509(cert.get(), &der);
    cert_der_b64_ = b64(std::string_view(reinterpret_cast<char*>(der), n), false);
    OPENSSL_free(der);
  }

  std::string jwt(const std::string& subject, const std::vector<std::string>& scopes) {
    nlohmann::json access = nlohmann::json::array();
    for (const std::string& scope : scopes) {
      // "repository:library/stories:pull,push": the name may itself hold ':' (a port).
      const size_t first = scope.find(':'), last = scope.rfind(':');
      if (first == std::string::npos || first == last) continue;
      nlohmann::json actions = nlohmann::json::array();
      std::string list = scope.substr(last + 1);
      for (size_t s = 0; s <= list.size();) {
        const size_t comma = std::min(list.find(',', s), list.size());
        if (comma > s) actions.push_back(list.substr(s, comma - s));
        s = comma + 1;
      }
      access.push_back({{"type", scope.substr(0, first)},
                        {"name", scope.substr(first + 1, last - first - 1)},
                        {"actions", actions}});
    }
    const int64_t now = std::time(nullptr);
    unsigned char id[12];
    RAND_bytes(id, sizeof id);
    const nlohmann::json header = {{"typ", "JWT"}, {"alg", "RS256"}, {"x5c", {cert_der_b64_}}};
    const nlohmann::json claims = {
        {"iss", kIssuer},
        {"sub", subject},
        {"aud", kService},
        {"exp", now + 300},
        {"nbf", now - 10},
        {"iat", now},
        {"jti", b64(std::string_view(reinterpret_cast<char*>(id), sizeof id), true)},
        {"access", access}};
    const std::string signing_input = b64(header.dump(), true) + "." + b64(claims.dump(), true);
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    size_t len = 0;
    EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_.get());
    EVP_DigestSign(ctx.get(), nullptr, &len,
                   reinterpret_cast<const unsigned char*>(signing_input.data()),
                   signing_input.size());
    std::string sig(len, '\0');
    EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                   reinterpret_cast<const unsigned char*>(signing_input.data()),
                   signing_input.size());
    sig.resize(len);
    return signing_input + "." + b64(sig, true);
  }

  // Empty when the request is signed by a trusted key, else why not.
  std::string check_signature(const httplib::Request& req) {
    const std::string auth = req.get_header_value("Authorization");
    const size_t colon = auth.find(':');
    if (auth.empty() || colon == std::string::npos || auth.find(' ') != std::string::npos) {
      return "the request is not signed";
    }
    const std::string pub_b64 = auth.substr(0, colon);
    {
      std::lock_guard lock(mutex_);
      if (!trusted_.count(pub_b64)) return "the key " + pub_b64 + " is not known here";
    }
    // The SSH wire form: string "ssh-ed25519", string <32 bytes>.
    const std::string wire = unb64(pub_b64);
    const std::string prefix = std::string("\0\0\0\x0bssh-ed25519\0\0\0\x20", 19);
    if (wire.size() != 19 + 32 || !wire.starts_with(prefix)) return "not an ed25519 public key";
    const std::string sig = unb64(auth.substr(colon + 1));
    const Pkey pub(
        EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                    reinterpret_cast<const unsigned char*>(wire.data() + 19), 32),
        EVP_PKEY_free);
    // The body is empty: base64 of the hex sha256 of nothing.
    const std::string message =
        "GET,http://127.0.0.1:" + std::to_string(port_) + req.target +
        ",ZTNiMGM0NDI5OGZjMWMxNDlhZmJmNGM4OTk2ZmI5MjQyN2FlNDFlNDY0OWI5MzRjYTQ5NTk5MWI3ODUyYjg1NQ==";
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    if (!pub || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pub.get()) != 1 ||
        EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                         reinterpret_cast<const unsigned char*>(message.data()),
                         message.size()) != 1) {
      return "the signature does not match " + message;
    }
    const int64_t ts = std::atoll(req.get_param_value("ts").c_str());
    if (std::llabs(ts - std::time(nullptr)) > 300) return "ts is not now";
    if (req.get_param_value("nonce").size() < 16) return "no nonce";
    return {};
  }

  void token(const httplib::Request& req, httplib::Response& res) {
    if (const std::string why = check_signature(req); !why.empty()) {
      ++refused;
      res.status = 401;
      res.set_content(
          nlohmann::json{{"errors", {{{"code", "UNAUTHORIZED"}, {"message", why}}}}}.dump(),
          "application/json");
      return;
    }
    if (req.get_param_value("service") != kService) {
      res.status = 400;
      return;
    }
    std::vector<std::string> scopes;
    for (size_t i = 0; i < req.get_param_value_count("scope"); ++i) {
      scopes.push_back(req.get_param_value("scope", i));
    }
    ++issued;
    const std::string t = jwt("signed-user", scopes);
    res.set_content(nlohmann::json{{"token", t}, {"expires_in", 300}}.dump(), "application/json");
  }

  void forward(const httplib::Request& req, httplib::Response& res) {
    httplib::Client c("127.0.0.1", upstream_.load());
    httplib::Headers h;
    for (const char* name : {"Accept", "Authorization", "Content-Range"}) {
      if (req.has_header(name)) h.emplace(name, req.get_header_value(name));
    }
    const std::string type = req.get_header_value("Content-Type");
    // Whole answers: httplib serves a Range request's part itself.
    auto up = req.method == "HEAD"    ? c.Head(req.target, h)
              : req.method == "POST"  ? c.Post(req.target, h, req.body, type)
              : req.method == "PATCH" ? c.Patch(req.target, h, req.body, type)
              : req.method == "PUT"   ? c.Put(req.target, h, req.body, type)
                                      : c.Get(req.target, h);
    if (!up) {
      res.status = 502;
      return;
    }
    // A 200 is left to httplib, which makes it a 206 for a Range request.
    if (up->status != 200) res.status = up->status;
    for (const char* name : {"WWW-Authenticate", "Docker-Content-Digest", "Range"}) {
      if (up->has_header(name)) res.set_header(name, up->get_header_value(name));
    }
    if (up->has_header("Location")) {  // made relative, so the client comes back through here
      std::string location = up->get_header_value("Location");
      if (location.starts_with("http")) location = location.substr(location.find('/', 8));
      res.set_header("Location", location);
    }
    res.set_content(up->body, up->get_header_value("Content-Type"));
  }

  Pkey key_;
  std::filesystem::path cert_path_;
  std::string cert_der_b64_;
  std::mutex mutex_;
  std::set<std::string> trusted_;
  std::atomic<int> upstream_{0};
  int port_ = 0;
  httplib::Server server_;
  std::thread thread_;
};

}  // namespace corral::testing
