#include "store/digest.h"

#include <openssl/evp.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <vector>

namespace corral::store {

struct Sha256::State {
  EVP_MD_CTX* ctx = nullptr;
};

Sha256::Sha256() : state_(std::make_unique<State>()) {
  state_->ctx = EVP_MD_CTX_new();
  if (!state_->ctx || EVP_DigestInit_ex(state_->ctx, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("sha256: cannot initialise OpenSSL's digest");
  }
}

Sha256::~Sha256() { EVP_MD_CTX_free(state_->ctx); }

void Sha256::update(const void* data, size_t size) {
  if (size > 0) EVP_DigestUpdate(state_->ctx, data, size);
}

std::string Sha256::digest() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(state_->ctx, md, &n);
  static const char* kHex = "0123456789abcdef";
  std::string out = "sha256:";
  for (unsigned int i = 0; i < n; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

std::string sha256_digest(std::string_view bytes) {
  Sha256 h;
  h.update(bytes.data(), bytes.size());
  return h.digest();
}

std::string sha256_file(const std::filesystem::path& file,
                        const std::function<void(uint64_t, uint64_t)>& progress) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error(file.string() + ": cannot open: " + std::strerror(errno));
  std::error_code ec;
  const uint64_t total = std::filesystem::file_size(file, ec);
  Sha256 h;
  std::vector<char> buf(1 << 20);
  uint64_t done = 0;
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto n = static_cast<size_t>(in.gcount());
    if (n == 0) break;
    h.update(buf.data(), n);
    done += n;
    if (progress) progress(done, ec ? 0 : total);
  }
  if (in.bad()) throw std::runtime_error(file.string() + ": read error");
  return h.digest();
}

std::string canonical_digest(std::string_view digest) {
  const auto bad = [&] {
    return std::invalid_argument("invalid digest '" + std::string(digest) +
                                 "' (expected sha256:<64 hex digits>)");
  };
  if (digest.size() != 7 + 64 || digest.substr(0, 6) != "sha256" ||
      (digest[6] != ':' && digest[6] != '-')) {
    throw bad();
  }
  std::string out = "sha256:";
  for (char c : digest.substr(7)) {
    if (c >= '0' && c <= '9') {
      out += c;
    } else if (c >= 'a' && c <= 'f') {
      out += c;
    } else if (c >= 'A' && c <= 'F') {
      out += static_cast<char>(c - 'A' + 'a');
    } else {
      throw bad();
    }
  }
  return out;
}

}  // namespace corral::store
