// The OpenSSH private key format is openssh-key-v1 (OpenSSH's PROTOCOL.key): the magic
// "openssh-key-v1\0", cipher, kdf, kdf options, a key count, the public key, then the private
// section (two equal check integers, the key type, public key, private key as seed || public,
// comment, padding 1, 2, 3... to the cipher's block size, 8 for "none"). Strings are a big-endian
// u32 length and the bytes.
#include "store/registry/signing.h"

#include "store/base64.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <utility>
#include <vector>

#include "store/digest.h"

namespace corral::store::registry {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kBegin = "-----BEGIN OPENSSH PRIVATE KEY-----";
constexpr std::string_view kEnd = "-----END OPENSSH PRIVATE KEY-----";
constexpr std::string_view kMagic{"openssh-key-v1\0", 15};
constexpr std::string_view kKeyType = "ssh-ed25519";
constexpr size_t kMaxKeyFileBytes = 64 << 10;

using Pkey = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

Pkey private_pkey(const std::array<uint8_t, 32>& seed) {
  Pkey k(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed.data(), seed.size()),
         EVP_PKEY_free);
  if (!k) throw std::runtime_error("OpenSSL cannot make an ed25519 key");
  return k;
}

void put_u32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}
void put_string(std::string& out, std::string_view s) {
  put_u32(out, static_cast<uint32_t>(s.size()));
  out.append(s);
}
std::string_view bytes_of(const std::array<uint8_t, 32>& a) {
  return {reinterpret_cast<const char*>(a.data()), a.size()};
}

std::string public_wire(const std::array<uint8_t, 32>& key) {
  std::string out;
  put_string(out, kKeyType);
  put_string(out, bytes_of(key));
  return out;
}

// Reads the fields of a decoded key; every read past the end is a clear error.
class Reader {
 public:
  Reader(std::string_view data, const std::string& source) : data_(data), source_(source) {}
  uint32_t u32() {
    need(4);
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = v << 8 | static_cast<uint8_t>(data_[pos_ + i]);
    pos_ += 4;
    return v;
  }
  std::string_view string() {
    const uint32_t n = u32();
    need(n);
    std::string_view s = data_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  std::string_view rest() const { return data_.substr(pos_); }
  [[noreturn]] void fail(const std::string& why) const {
    throw std::runtime_error(source_ + ": " + why);
  }

 private:
  void need(size_t n) const {
    if (data_.size() - pos_ < n) fail("the OpenSSH private key is truncated or corrupt");
  }
  std::string_view data_;
  const std::string& source_;
  size_t pos_ = 0;
};

std::string read_small_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string() + ": " + std::strerror(errno));
  std::string text;
  text.resize(kMaxKeyFileBytes + 1);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxKeyFileBytes) {
    throw std::runtime_error(path.string() + ": larger than a private key file (" +
                             std::to_string(kMaxKeyFileBytes) + " bytes at most)");
  }
  return text;
}

// Writes `text` to a new temporary file beside `path` with `mode`, synced; returns its name.
fs::path write_temp(const fs::path& path, std::string_view text, mode_t mode) {
  std::array<uint8_t, 6> r{};
  RAND_bytes(r.data(), r.size());
  std::string suffix;
  for (uint8_t b : r) suffix += "0123456789abcdef"[b & 15];
  const fs::path tmp = path.string() + ".tmp-" + std::to_string(getpid()) + "-" + suffix;
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0)
    throw std::runtime_error("cannot create " + tmp.string() + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n <= 0 && errno != EINTR) break;
    if (n > 0) done += static_cast<size_t>(n);
  }
  const bool ok = done == text.size() && ::fsync(fd) == 0;
  const int saved = errno;
  ::close(fd);
  if (!ok) {
    ::unlink(tmp.c_str());
    throw std::runtime_error("cannot write " + tmp.string() + ": " + std::strerror(saved));
  }
  return tmp;
}

void write_public_key(const fs::path& key_path, const SigningKey& key) {
  const fs::path pub = key_path.string() + ".pub";
  const fs::path tmp = write_temp(pub, key.authorized_key() + "\n", 0644);
  if (::rename(tmp.c_str(), pub.c_str()) != 0) {
    const int saved = errno;
    ::unlink(tmp.c_str());
    throw std::runtime_error("cannot write " + pub.string() + ": " + std::strerror(saved));
  }
}

}  // namespace

SigningKey SigningKey::from_seed(const std::array<uint8_t, 32>& seed, std::string comment) {
  SigningKey key;
  key.seed = seed;
  key.comment = std::move(comment);
  const Pkey pk = private_pkey(seed);
  size_t len = key.public_key.size();
  if (EVP_PKEY_get_raw_public_key(pk.get(), key.public_key.data(), &len) != 1 || len != 32) {
    throw std::runtime_error("OpenSSL cannot derive an ed25519 public key");
  }
  return key;
}

SigningKey SigningKey::generate(std::string comment) {
  std::array<uint8_t, 32> seed{};
  if (RAND_bytes(seed.data(), seed.size()) != 1) {
    throw std::runtime_error("OpenSSL has no random bytes for a new key");
  }
  return from_seed(seed, std::move(comment));
}

std::string SigningKey::public_base64() const { return base64_encode(public_wire(public_key)); }

std::string SigningKey::authorized_key() const {
  std::string line = std::string(kKeyType) + " " + public_base64();
  if (!comment.empty()) line += " " + comment;
  return line;
}

std::string SigningKey::openssh_private_key() const {
  std::array<uint8_t, 4> check{};
  RAND_bytes(check.data(), check.size());
  const uint32_t checkint =
      static_cast<uint32_t>(check[0]) << 24 | check[1] << 16 | check[2] << 8 | check[3];
  std::string priv;
  put_u32(priv, checkint);
  put_u32(priv, checkint);
  put_string(priv, kKeyType);
  put_string(priv, bytes_of(public_key));
  put_string(priv, std::string(bytes_of(seed)) + std::string(bytes_of(public_key)));
  put_string(priv, comment);
  for (char pad = 1; priv.size() % 8 != 0; ++pad) priv.push_back(pad);

  std::string blob(kMagic);
  put_string(blob, "none");  // cipher
  put_string(blob, "none");  // kdf
  put_string(blob, "");      // kdf options
  put_u32(blob, 1);
  put_string(blob, public_wire(public_key));
  put_string(blob, priv);

  const std::string b64 = base64_encode(blob);
  std::string text = std::string(kBegin) + "\n";
  for (size_t i = 0; i < b64.size(); i += 70) text += b64.substr(i, 70) + "\n";
  return text + std::string(kEnd) + "\n";
}

std::string SigningKey::sign(std::string_view message) const {
  const Pkey pk = private_pkey(seed);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  std::string sig(64, '\0');
  size_t len = sig.size();
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, pk.get()) != 1 ||
      EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1 ||
      len != 64) {
    throw std::runtime_error("OpenSSL cannot sign with the ed25519 key");
  }
  return sig;
}

SigningKey parse_openssh_private_key(std::string_view text, const std::string& source) {
  const size_t begin = text.find(kBegin);
  if (begin == std::string_view::npos) {
    const bool pem = text.find("-----BEGIN ") != std::string_view::npos;
    throw std::runtime_error(
        source + ": not an OpenSSH private key (no '" + std::string(kBegin) + "' line" +
        (pem ? "; a PEM key can be converted with ssh-keygen -p -f FILE" : "") + ")");
  }
  const size_t end = text.find(kEnd, begin);
  if (end == std::string_view::npos) {
    throw std::runtime_error(source + ": the OpenSSH private key has no '" + std::string(kEnd) +
                             "' line (a truncated file?)");
  }
  std::string b64;
  for (char c : text.substr(begin + kBegin.size(), end - begin - kBegin.size())) {
    if (c != '\n' && c != '\r' && c != ' ' && c != '\t') b64.push_back(c);
  }
  std::string blob;
  try {
    blob = base64_decode(b64);
  } catch (const std::invalid_argument&) {
    throw std::runtime_error(source + ": the OpenSSH private key is not valid base64");
  }
  if (!std::string_view(blob).starts_with(kMagic)) {
    throw std::runtime_error(source + ": not an openssh-key-v1 private key");
  }
  Reader r(std::string_view(blob).substr(kMagic.size()), source);
  const std::string cipher(r.string());
  const std::string kdf(r.string());
  r.string();  // kdf options
  if (cipher != "none" || kdf != "none") {
    r.fail("the private key is encrypted (" + cipher + ", " + kdf +
           "); corral needs a key without a passphrase (remove it with ssh-keygen -p -N '' -f " +
           source + ", or delete the file to have a new key made)");
  }
  if (const uint32_t n = r.u32(); n != 1) {
    r.fail("the file holds " + std::to_string(n) + " keys (1 expected)");
  }
  Reader pub(r.string(), source);
  if (const std::string_view type = pub.string(); type != kKeyType) {
    r.fail("a " + std::string(type) + " key; Ollama's signing needs an ed25519 key");
  }
  const std::string_view pub_key = pub.string();
  Reader priv(r.string(), source);
  if (priv.u32() != priv.u32()) r.fail("the private key's check integers differ (corrupt)");
  if (priv.string() != kKeyType) r.fail("the private key is not an ed25519 key");
  const std::string_view priv_pub = priv.string();
  const std::string_view secret = priv.string();
  std::string comment(priv.string());
  if (pub_key.size() != 32 || priv_pub != pub_key || secret.size() != 64 ||
      secret.substr(32) != pub_key) {
    r.fail("the ed25519 key's parts do not agree (corrupt)");
  }
  std::array<uint8_t, 32> seed{};
  std::memcpy(seed.data(), secret.data(), 32);
  SigningKey key = SigningKey::from_seed(seed, std::move(comment));
  if (bytes_of(key.public_key) != pub_key) {
    r.fail("the ed25519 public key does not belong to the private key (corrupt)");
  }
  return key;
}

SigningKey load_or_create_key(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    if (!path.parent_path().empty() && !fs::exists(path.parent_path(), ec)) {
      fs::create_directories(path.parent_path());
      fs::permissions(path.parent_path(), fs::perms::owner_all, ec);
    }
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    const char* user = std::getenv("USER");
    SigningKey key = SigningKey::generate(std::string(user && *user ? user : "corral") + "@" +
                                          (*host ? host : "localhost"));
    const fs::path tmp = write_temp(path, key.openssh_private_key(), 0600);
    // link() fails if another process put its key there first: then that key is the one.
    const int rc = ::link(tmp.c_str(), path.c_str());
    const int saved = errno;
    ::unlink(tmp.c_str());
    if (rc == 0) {
      write_public_key(path, key);
      return key;
    }
    if (saved != EEXIST) {
      throw std::runtime_error("cannot create " + path.string() + ": " + std::strerror(saved));
    }
  }
  SigningKey key = parse_openssh_private_key(read_small_file(path), path.string());
  if (!fs::exists(path.string() + ".pub", ec)) write_public_key(path, key);
  return key;
}

fs::path default_key_path() {
  const char* home = std::getenv("HOME");
  if (!home || !*home) return {};
  return fs::path(home) / ".corral" / "id_ed25519";
}

std::string query_escape(std::string_view text) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(c);
    } else if (c == ' ') {
      out.push_back('+');
    } else {
      out += {'%', kHex[u >> 4], kHex[u & 15]};
    }
  }
  return out;
}

namespace {

// Go's url.QueryUnescape, leniently: a malformed escape is kept as it is.
std::string query_unescape(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out.push_back(' ');
    } else if (text[i] == '%' && i + 2 < text.size() &&
               std::isxdigit(static_cast<unsigned char>(text[i + 1])) &&
               std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
      out.push_back(static_cast<char>(std::stoi(std::string(text.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

}  // namespace

std::string token_request_url(const std::string& realm, const std::string& service,
                              const std::string& scope, int64_t ts, const std::string& nonce) {
  std::string base = realm.substr(0, realm.find('#'));
  std::vector<std::pair<std::string, std::string>> params;
  if (const size_t q = base.find('?'); q != std::string::npos) {
    std::string_view query = std::string_view(base).substr(q + 1);
    while (!query.empty()) {
      const size_t amp = std::min(query.find('&'), query.size());
      const std::string_view pair = query.substr(0, amp);
      query.remove_prefix(std::min(amp + 1, query.size()));
      if (pair.empty()) continue;
      const size_t eq = std::min(pair.find('='), pair.size());
      params.emplace_back(query_unescape(pair.substr(0, eq)),
                          query_unescape(pair.substr(std::min(eq + 1, pair.size()))));
    }
    base.resize(q);
  }
  params.emplace_back("service", service);
  for (size_t start = 0; start <= scope.size();) {
    const size_t space = std::min(scope.find(' ', start), scope.size());
    if (space > start) params.emplace_back("scope", scope.substr(start, space - start));
    start = space + 1;
  }
  params.emplace_back("ts", std::to_string(ts));
  params.emplace_back("nonce", nonce);
  std::stable_sort(params.begin(), params.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string query;
  for (const auto& [k, v] : params) {
    if (!query.empty()) query += '&';
    query += query_escape(k);
    query += '=';
    query += query_escape(v);
  }
  return base + "?" + query;
}

std::string token_request_message(const std::string& url) {
  const std::string empty_sha256_hex = sha256_digest("").substr(7);  // the body is empty
  return "GET," + url + "," + base64_encode(empty_sha256_hex);
}

std::string signed_authorization(const SigningKey& key, std::string_view message) {
  return key.public_base64() + ":" + base64_encode(key.sign(message));
}

std::string new_nonce() {
  std::array<uint8_t, 16> r{};
  if (RAND_bytes(r.data(), r.size()) != 1) throw std::runtime_error("no random bytes for a nonce");
  std::string s =
      base64_encode(std::string_view(reinterpret_cast<const char*>(r.data()), r.size()));
  while (s.ends_with('=')) s.pop_back();
  std::replace(s.begin(), s.end(), '+', '-');
  std::replace(s.begin(), s.end(), '/', '_');
  return s;
}

}  // namespace corral::store::registry
