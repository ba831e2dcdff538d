// Ollama's ed25519 request signing: the signature's bytes against `openssl pkeyutl` on the same
// key and message, the key file against ssh-keygen (both ways), the token request URL and message
// as Ollama's server/auth.go builds them, and key files that are corrupt, truncated or encrypted.
#include "store/registry/signing.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>
#include <vector>

#include "store/base64.h"
#include "store/temp_store.h"

namespace corral {
namespace {

namespace fs = std::filesystem;
using store::registry::SigningKey;
using testing::read_text;
using testing::sh;

std::string hex_bytes(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

// The first two fields of an authorized_keys line ("ssh-ed25519 AAAA...").
std::string type_and_key(const std::string& line) {
  const size_t second = line.find(' ', line.find(' ') + 1);
  return trim(line.substr(0, second));
}

void expect_parse_error(std::string_view text, const std::string& why) {
  try {
    store::registry::parse_openssh_private_key(text, "KEYFILE");
    ADD_FAILURE() << "parsed: " << text;
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("KEYFILE: "), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
  }
}

TEST(Signing, Rfc8032TestVector) {
  // RFC 8032 section 7.1, TEST 1 (the empty message).
  std::array<uint8_t, 32> seed{};
  const std::string s =
      hex_bytes("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
  std::copy(s.begin(), s.end(), seed.begin());
  const SigningKey key = SigningKey::from_seed(seed, "");
  EXPECT_EQ(std::string(key.public_key.begin(), key.public_key.end()),
            hex_bytes("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"));
  EXPECT_EQ(key.sign(""), hex_bytes("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901"
                                    "555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a"
                                    "100b"));
}

TEST(Signing, SignatureBytesEqualOpensslPkeyutl) {
  if (!fs::exists("/usr/bin/openssl"))
    GTEST_SKIP() << "no openssl binary (apt-get install openssl)";
  testing::TempDir dir;
  const SigningKey key = store::registry::load_or_create_key(dir.path() / "id_ed25519");
  // The same key as PKCS#8 PEM, which openssl reads.
  {
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pk(
        EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, key.seed.data(), 32),
        EVP_PKEY_free);
    ASSERT_TRUE(pk);
    FILE* f = fopen((dir.path() / "key.pem").c_str(), "w");
    ASSERT_TRUE(f);
    PEM_write_PrivateKey(f, pk.get(), nullptr, nullptr, 0, nullptr, nullptr);
    fclose(f);
  }
  const std::string url = store::registry::token_request_url(
      "https://registry.ollama.ai/v2/token", "registry.ollama.ai",
      "repository:library/llama3.2:pull", 1765000000, store::registry::new_nonce());
  const std::string message = store::registry::token_request_message(url);
  std::ofstream(dir.path() / "message", std::ios::binary) << message;
  const auto [rc, out] =
      sh("openssl pkeyutl -sign -rawin -inkey '" + dir.str() + "/key.pem' -in '" + dir.str() +
         "/message' -out '" + dir.str() + "/sig'");
  ASSERT_EQ(rc, 0) << out;
  const std::string expected = read_text(dir.path() / "sig");
  ASSERT_EQ(expected.size(), 64u);
  EXPECT_EQ(key.sign(message), expected);
  EXPECT_EQ(store::registry::signed_authorization(key, message),
            key.public_base64() + ":" + store::base64_encode(expected));
}

TEST(Signing, TokenRequestUrlAndMessageAreOllamas) {
  using store::registry::token_request_url;
  // Go's url.Values.Encode: keys sorted, QueryEscape'd values.
  EXPECT_EQ(token_request_url("https://registry.ollama.ai/v2/token", "registry.ollama.ai",
                              "repository:library/llama3.2:pull", 1765000000, "bm9uY2U"),
            "https://registry.ollama.ai/v2/token?nonce=bm9uY2U&scope=repository%3Alibrary%2F"
            "llama3.2%3Apull&service=registry.ollama.ai&ts=1765000000");
  // The realm's own parameters stay; each space-separated scope is a parameter of its own.
  EXPECT_EQ(token_request_url("https://auth.example/token?account=me%40x.org", "svc", "a:b:pull c",
                              7, "n"),
            "https://auth.example/token?account=me%40x.org&nonce=n&scope=a%3Ab%3Apull&scope=c&"
            "service=svc&ts=7");
  const std::string url = "https://h/token?ts=1";
  // base64 of the hex sha256 of the empty body.
  EXPECT_EQ(store::registry::token_request_message(url),
            "GET," + url +
                ",ZTNiMGM0NDI5OGZjMWMxNDlhZmJmNGM4OTk2ZmI5MjQyN2FlNDFlNDY0OWI5MzRjYTQ5NTk5MWI3ODUy"
                "Yjg1NQ==");
  const std::string n1 = store::registry::new_nonce(), n2 = store::registry::new_nonce();
  EXPECT_EQ(n1.size(), 22u);
  EXPECT_NE(n1, n2);
  EXPECT_EQ(
      n1.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
      std::string::npos);
  EXPECT_EQ(store::registry::query_escape("a b/c~d+e"), "a+b%2Fc~d%2Be");
}

TEST(Signing, KeyIsCreatedOnceWithMode0600AndAPublicKeyFile) {
  testing::TempDir dir;
  const fs::path path = dir.path() / ".corral" / "id_ed25519";
  const SigningKey key = store::registry::load_or_create_key(path);
  const std::string text = read_text(path);
  EXPECT_TRUE(text.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n")) << text;
  EXPECT_TRUE(text.ends_with("-----END OPENSSH PRIVATE KEY-----\n")) << text;
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(read_text(path.string() + ".pub"), key.authorized_key() + "\n");
  EXPECT_TRUE(key.authorized_key().starts_with("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI"));
  // Only the key and its .pub: no temporary file is left behind.
  EXPECT_EQ(std::distance(fs::directory_iterator(path.parent_path()), fs::directory_iterator()), 2);

  const SigningKey again = store::registry::load_or_create_key(path);
  EXPECT_EQ(again.seed, key.seed);
  EXPECT_EQ(again.comment, key.comment);
  EXPECT_EQ(read_text(path), text);  // read, not rewritten
  fs::remove(path.string() + ".pub");
  store::registry::load_or_create_key(path);
  EXPECT_EQ(read_text(path.string() + ".pub"), key.authorized_key() + "\n");
}

TEST(Signing, ConcurrentFirstUsesAgreeOnOneKey) {
  testing::TempDir dir;
  const fs::path path = dir.path() / "id_ed25519";
  std::vector<SigningKey> keys(8);
  std::vector<std::thread> threads;
  for (auto& k : keys) {
    threads.emplace_back([&k, &path] { k = store::registry::load_or_create_key(path); });
  }
  for (auto& t : threads) t.join();
  for (const auto& k : keys) EXPECT_EQ(k.seed, keys[0].seed);
  EXPECT_EQ(store::registry::load_or_create_key(path).seed, keys[0].seed);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 2);
}

TEST(Signing, SshKeygenReadsOurKeyAndWeReadItsKeys) {
  if (!fs::exists("/usr/bin/ssh-keygen")) {
    GTEST_SKIP() << "ssh-keygen is not installed (openssh-client): the key file is not checked "
                    "against OpenSSH's own reader";
  }
  testing::TempDir dir;
  const std::string ours = dir.str() + "/id_ed25519";
  const SigningKey key = store::registry::load_or_create_key(ours);
  auto [rc, out] = sh("ssh-keygen -y -f '" + ours + "'");
  ASSERT_EQ(rc, 0) << out;
  EXPECT_EQ(type_and_key(out), type_and_key(key.authorized_key()));

  const std::string theirs = dir.str() + "/theirs";
  std::tie(rc, out) =
      sh("ssh-keygen -q -t ed25519 -N '' -C 'made by ssh-keygen' -f '" + theirs + "'");
  ASSERT_EQ(rc, 0) << out;
  const SigningKey parsed = store::registry::parse_openssh_private_key(read_text(theirs), theirs);
  EXPECT_EQ(parsed.authorized_key(), trim(read_text(theirs + ".pub")));
  EXPECT_EQ(parsed.comment, "made by ssh-keygen");

  const std::string encrypted = dir.str() + "/encrypted";
  std::tie(rc, out) = sh("ssh-keygen -q -t ed25519 -N 'a passphrase' -f '" + encrypted + "'");
  ASSERT_EQ(rc, 0) << out;
  expect_parse_error(read_text(encrypted), "the private key is encrypted (aes256-ctr, bcrypt)");

  const std::string ecdsa = dir.str() + "/ecdsa";
  std::tie(rc, out) = sh("ssh-keygen -q -t ecdsa -N '' -f '" + ecdsa + "'");
  ASSERT_EQ(rc, 0) << out;
  expect_parse_error(read_text(ecdsa),
                     "a ecdsa-sha2-nistp256 key; Ollama's signing needs an ed25519");
}

TEST(Signing, CorruptOrTruncatedKeysGiveClearErrors) {
  const SigningKey key = SigningKey::generate("test");
  const std::string text = key.openssh_private_key();
  // Every truncation of the file before its end line.
  const size_t complete = text.find("-----END OPENSSH PRIVATE KEY-----") + 33;
  for (size_t n = 0; n < complete; ++n) {
    EXPECT_THROW(store::registry::parse_openssh_private_key(text.substr(0, n), "k"),
                 std::runtime_error)
        << n;
  }
  // Every truncation of the key inside a well-formed file.
  std::string b64;
  for (size_t i = text.find('\n') + 1; i < text.find("-----END"); ++i) {
    if (text[i] != '\n') b64.push_back(text[i]);
  }
  const std::string blob = store::base64_decode(b64);
  auto framed = [](const std::string& bytes) {
    return "-----BEGIN OPENSSH PRIVATE KEY-----\n" + store::base64_encode(bytes) +
           "\n-----END OPENSSH PRIVATE KEY-----\n";
  };
  EXPECT_EQ(store::registry::parse_openssh_private_key(framed(blob), "k").seed, key.seed);
  for (size_t n = 0; n < blob.size(); ++n) {
    EXPECT_THROW(store::registry::parse_openssh_private_key(framed(blob.substr(0, n)), "k"),
                 std::runtime_error)
        << n;
  }
  // Every byte flipped: an error or (in the padding) the same key, never anything else.
  for (size_t i = 0; i < blob.size(); ++i) {
    std::string bad = blob;
    bad[i] = static_cast<char>(bad[i] ^ 0x5a);
    try {
      EXPECT_EQ(store::registry::parse_openssh_private_key(framed(bad), "k").seed, key.seed) << i;
    } catch (const std::runtime_error&) {
    }
  }
  expect_parse_error("", "not an OpenSSH private key");
  expect_parse_error(
      "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n",
      "ssh-keygen -p");
  expect_parse_error(
      "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blb*\n-----END OPENSSH PRIVATE KEY-----",
      "not valid base64");
  expect_parse_error(framed("openssh-key-v2"), "not an openssh-key-v1 private key");

  // A corrupt key file is reported, never replaced by a new key.
  testing::TempDir dir;
  const fs::path path = dir.path() / "id_ed25519";
  testing::write_text(path, text.substr(0, text.size() / 2));
  try {
    store::registry::load_or_create_key(path);
    FAIL() << "a truncated key file was read";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path.string() + ": "), std::string::npos) << e.what();
  }
  EXPECT_EQ(read_text(path), text.substr(0, text.size() / 2));
}

TEST(Signing, Base64) {
  using store::base64_decode;
  using store::base64_encode;
  EXPECT_EQ(base64_encode("user:pass"), "dXNlcjpwYXNz");
  EXPECT_EQ(base64_decode("dXNlcjpwYXNz"), "user:pass");
  EXPECT_EQ(base64_decode("YQ=="), "a");
  EXPECT_EQ(base64_decode("YQ"), "a");
  EXPECT_THROW(base64_decode("Y"), std::invalid_argument);
  EXPECT_THROW(base64_decode("a b"), std::invalid_argument);
}

}  // namespace
}  // namespace corral
