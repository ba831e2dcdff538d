// The store's files. Every write lands in a ScratchDir first and is renamed into place after an
// fsync, blobs before the manifest that names them, so a process killed at any moment leaves
// either the old state or the new one; never a manifest naming a missing or partial blob.
#include "store/store.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <set>
#include <stdexcept>
#include <vector>

#include "store/digest.h"

namespace corral::store {
namespace fs = std::filesystem;
namespace {

constexpr const char* kVerifiedAttr = "user.corral.verified";

[[noreturn]] void throw_errno(const std::string& what, const fs::path& path) {
  throw std::runtime_error(path.string() + ": " + what + ": " + std::strerror(errno));
}

void fsync_path(const fs::path& path, bool directory) {
  const int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) throw_errno("cannot open", path);
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0 && !directory) throw_errno("fsync failed", path);
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_errno("cannot open", path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Writes `bytes` to `path` and syncs it.
void write_synced(const fs::path& path, std::string_view bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw_errno("cannot create", path);
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      ::close(fd);
      errno = e;
      throw_errno("write failed", path);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) throw_errno("cannot finish writing", path);
}

std::string random_suffix() {
  std::random_device rd;
  static const char* kChars = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string s;
  for (int i = 0; i < 10; ++i) s += kChars[rd() % 36];
  return s;
}

std::string stat_stamp(const fs::path& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return {};
  return std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
         std::to_string(st.st_mtim.tv_nsec) + ":" + std::to_string(st.st_ino);
}

// Marks a blob as verified (best effort: a filesystem without user xattrs just re-hashes).
void mark_verified(const fs::path& path) {
  const std::string stamp = stat_stamp(path);
  if (!stamp.empty()) ::setxattr(path.c_str(), kVerifiedAttr, stamp.data(), stamp.size(), 0);
}

bool is_marked_verified(const fs::path& path) {
  char buf[128];
  const ssize_t n = ::getxattr(path.c_str(), kVerifiedAttr, buf, sizeof buf);
  return n > 0 && std::string(buf, static_cast<size_t>(n)) == stat_stamp(path);
}

// Sweeps scratch folders whose owner is gone (their lock can be taken).
void sweep_scratch(const fs::path& tmp) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(tmp, ec)) {
    const fs::path p = entry.path();
    if (!entry.is_directory(ec) || p.filename().string().ends_with(".new")) continue;
    const int fd = ::open(p.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) continue;
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) fs::remove_all(p, ec);
    ::close(fd);
  }
}

}  // namespace

ScratchDir::ScratchDir(const fs::path& store_root) {
  const fs::path tmp = store_root / "tmp";
  fs::create_directories(tmp);
  sweep_scratch(tmp);
  const std::string name = "work-" + std::to_string(::getpid()) + "-" + random_suffix();
  // Created under a ".new" name, locked, then renamed: a sweeper never sees it unlocked.
  const fs::path staging = tmp / (name + ".new");
  fs::create_directory(staging);
  lock_fd_ = ::open(staging.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (lock_fd_ < 0 || ::flock(lock_fd_, LOCK_EX) != 0) throw_errno("cannot lock", staging);
  path_ = tmp / name;
  fs::rename(staging, path_);
}

void ScratchDir::sweep(const fs::path& store_root) {
  std::error_code ec;
  if (fs::is_directory(store_root / "tmp", ec)) sweep_scratch(store_root / "tmp");
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

Store::Store(fs::path root) : root_(std::move(root)) {}

fs::path Store::default_root() {
  if (const char* env = std::getenv("CORRAL_MODELS"); env && *env) return fs::path(env);
  std::string home;
  if (const char* h = std::getenv("HOME"); h && *h) {
    home = h;
  } else if (const passwd* pw = getpwuid(getuid()); pw && pw->pw_dir) {
    home = pw->pw_dir;
  }
  if (home.empty()) {
    throw std::runtime_error("cannot find the model store: set CORRAL_MODELS or HOME");
  }
  return fs::path(home) / ".corral" / "models";
}

fs::path Store::blob_path(const std::string& digest) const {
  std::string d = canonical_digest(digest);
  d[6] = '-';
  return root_ / "blobs" / d;
}

bool Store::has_blob(const std::string& digest) const {
  std::error_code ec;
  return fs::is_regular_file(blob_path(digest), ec);
}

Layer Store::adopt_blob_file(const fs::path& file, const std::string& media_type, bool* created) {
  return adopt_hashed(file, sha256_file(file), media_type, created);
}

Layer Store::adopt_hashed(const fs::path& file, const std::string& digest,
                          const std::string& media_type, bool* created) {
  Layer layer{media_type, digest, fs::file_size(file), {}};
  const fs::path dest = blob_path(digest);
  fs::create_directories(dest.parent_path());
  const bool fresh = !has_blob(digest);
  if (fresh) {
    fsync_path(file, false);
    ::chmod(file.c_str(), 0644);
    fs::rename(file, dest);
    fsync_path(dest.parent_path(), true);
    mark_verified(dest);
  } else {
    std::error_code ec;
    fs::remove(file, ec);
  }
  if (created) *created = fresh;
  return layer;
}

Layer Store::add_blob_bytes(const std::string& bytes, const std::string& media_type,
                            bool* created) {
  const std::string digest = sha256_digest(bytes);
  if (has_blob(digest)) {
    if (created) *created = false;
    return Layer{media_type, digest, bytes.size(), {}};
  }
  ScratchDir scratch(root_);
  const fs::path tmp = scratch.file("blob");
  write_synced(tmp, bytes);
  return adopt_hashed(tmp, digest, media_type, created);
}

Layer Store::add_blob_file(const fs::path& file, const std::string& media_type,
                           const ByteProgress& progress, bool* created) {
  ScratchDir scratch(root_);
  const fs::path tmp = scratch.file("blob");
  std::error_code ec;
  const uint64_t total = fs::file_size(file, ec);
  Sha256 hash;
  if (ec) throw std::runtime_error(file.string() + ": cannot read: " + ec.message());
  {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw_errno("cannot open", file);
    std::ofstream out(tmp, std::ios::binary);
    if (!out) throw_errno("cannot create", tmp);
    std::vector<char> buf(1 << 20);
    uint64_t done = 0;
    if (progress) progress(0, total);
    while (in) {
      in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      const auto n = static_cast<size_t>(in.gcount());
      if (n == 0) break;
      hash.update(buf.data(), n);
      out.write(buf.data(), static_cast<std::streamsize>(n));
      if (!out) throw_errno("write failed", tmp);
      done += n;
      if (progress) progress(done, total);
    }
    if (in.bad()) throw std::runtime_error(file.string() + ": read error");
    out.close();
    if (!out) throw_errno("write failed", tmp);
  }
  return adopt_hashed(tmp, hash.digest(), media_type, created);
}

std::string Store::read_blob(const std::string& digest) const {
  const fs::path path = blob_path(digest);
  if (!fs::exists(path)) {
    throw std::runtime_error("blob " + canonical_digest(digest) + " is missing (" + path.string() +
                             ")");
  }
  std::string bytes = read_file(path);
  const std::string actual = sha256_digest(bytes);
  if (actual != canonical_digest(digest)) {
    throw std::runtime_error("blob " + path.string() + " is corrupt: its content hashes to " +
                             actual);
  }
  return bytes;
}

void Store::verify_blob(const std::string& digest, const ByteProgress& progress) const {
  const fs::path path = blob_path(digest);
  if (!fs::exists(path)) {
    throw std::runtime_error("blob " + canonical_digest(digest) + " is missing (" + path.string() +
                             ")");
  }
  if (is_marked_verified(path)) return;
  const std::string actual = sha256_file(path, progress);
  if (actual != canonical_digest(digest)) {
    throw std::runtime_error("blob " + path.string() + " is corrupt: its content hashes to " +
                             actual + "; remove the model and create it again");
  }
  mark_verified(path);
}

fs::path Store::manifest_file(const ModelName& name) const {
  return root_ / "manifests" / name.host / name.ns / name.model / name.tag;
}

fs::path Store::find_manifest_file(const ModelName& name) const {
  std::error_code ec;
  const fs::path exact = manifest_file(name);
  if (fs::is_regular_file(exact, ec)) return exact;
  // Ollama matches names case-insensitively; look for another spelling.
  fs::path dir = root_ / "manifests";
  const std::string parts[] = {name.host, name.ns, name.model, name.tag};
  for (const std::string& part : parts) {
    fs::path found;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      const std::string f = e.path().filename().string();
      if (f.size() == part.size() &&
          std::equal(f.begin(), f.end(), part.begin(), [](char a, char b) {
            return std::tolower(static_cast<unsigned char>(a)) ==
                   std::tolower(static_cast<unsigned char>(b));
          })) {
        found = e.path();
        break;
      }
    }
    if (found.empty()) return {};
    dir = found;
  }
  return fs::is_regular_file(dir, ec) ? dir : fs::path();
}

std::optional<Manifest> Store::find_manifest(const ModelName& name) const {
  const fs::path file = find_manifest_file(name);
  if (file.empty()) return std::nullopt;
  return Manifest::parse(read_file(file), file.string());
}

Manifest Store::manifest(const ModelName& name) const {
  std::optional<Manifest> m = find_manifest(name);
  if (!m) throw std::runtime_error("model '" + name.display() + "' not found");
  return *m;
}

void Store::write_manifest(const ModelName& name, const Manifest& manifest) {
  write_manifest_json(name, manifest.to_json());
}

void Store::write_manifest_json(const ModelName& name, const std::string& json) {
  Manifest::parse(json, "the manifest of " + name.display());
  const fs::path dest = manifest_file(name);
  fs::create_directories(dest.parent_path());
  ScratchDir scratch(root_);
  const fs::path tmp = scratch.file("manifest");
  write_synced(tmp, json);
  // Another spelling of the same name is replaced, not kept beside it.
  const fs::path existing = find_manifest_file(name);
  fs::rename(tmp, dest);
  fsync_path(dest.parent_path(), true);
  std::error_code ec;
  if (!existing.empty() && existing != dest) fs::remove(existing, ec);
}

std::vector<ModelEntry> Store::list() const {
  std::vector<ModelEntry> out;
  const fs::path base = root_ / "manifests";
  std::error_code ec;
  if (!fs::is_directory(base, ec)) return out;
  for (auto it = fs::recursive_directory_iterator(base, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (it.depth() != 3 || !it->is_regular_file(ec)) continue;
    const fs::path rel = fs::relative(it->path(), base, ec);
    std::vector<std::string> parts;
    for (const auto& p : rel) parts.push_back(p.string());
    if (parts.size() != 4) continue;
    ModelEntry e;
    try {
      e.name = ModelName::parse(parts[0] + "/" + parts[1] + "/" + parts[2] + ":" + parts[3]);
      const std::string bytes = read_file(it->path());
      e.manifest = Manifest::parse(bytes, it->path().string());
      e.digest = sha256_digest(bytes).substr(7);
    } catch (const std::exception&) {
      continue;  // not a model this store can show (foreign file, broken manifest)
    }
    e.size = e.manifest.config.size;
    for (const Layer& l : e.manifest.layers) e.size += l.size;
    e.modified = fs::last_write_time(it->path(), ec);
    out.push_back(std::move(e));
  }
  std::sort(out.begin(), out.end(),
            [](const ModelEntry& a, const ModelEntry& b) { return a.modified > b.modified; });
  return out;
}

void Store::copy(const ModelName& from, const ModelName& to) {
  const Manifest m = manifest(from);
  std::vector<const Layer*> all = {&m.config};
  for (const Layer& l : m.layers) all.push_back(&l);
  for (const Layer* l : all) {
    if (!has_blob(l->digest)) {
      throw std::runtime_error("model '" + from.display() + "': blob " + l->digest + " is missing");
    }
  }
  write_manifest(to, m);
}

void Store::remove(const ModelName& name) {
  const fs::path file = find_manifest_file(name);
  if (file.empty()) throw std::runtime_error("model '" + name.display() + "' not found");
  std::set<std::string> candidates;
  try {
    const Manifest m = Manifest::parse(read_file(file), file.string());
    candidates.insert(m.config.digest);
    for (const Layer& l : m.layers) candidates.insert(l.digest);
  } catch (const std::runtime_error&) {
    // A broken manifest is still removed; its blobs are left for no one to guess at.
  }
  fs::remove(file);
  fsync_path(file.parent_path(), true);
  // Empty folders of the name go too (never manifests/ itself).
  std::error_code ec;
  for (fs::path dir = file.parent_path(); dir != root_ / "manifests" && fs::is_empty(dir, ec);
       dir = dir.parent_path()) {
    fs::remove(dir, ec);
  }
  remove_unreferenced({candidates.begin(), candidates.end()});
}

void Store::remove_unreferenced(const std::vector<std::string>& digests) {
  std::set<std::string> candidates(digests.begin(), digests.end());
  for (const ModelEntry& e : list()) {
    candidates.erase(e.manifest.config.digest);
    for (const Layer& l : e.manifest.layers) candidates.erase(l.digest);
  }
  std::error_code ec;
  for (const std::string& digest : candidates) fs::remove(blob_path(digest), ec);
}

std::pair<size_t, uint64_t> Store::prune(std::chrono::seconds min_age) {
  std::set<std::string> used;
  for (const ModelEntry& e : list()) {
    used.insert(e.manifest.config.digest);
    for (const Layer& l : e.manifest.layers) used.insert(l.digest);
  }
  std::error_code ec;
  const auto now = fs::file_time_type::clock::now();
  size_t count = 0;
  uint64_t bytes = 0;
  for (const auto& entry : fs::directory_iterator(root_ / "blobs", ec)) {
    const std::string name = entry.path().filename().string();
    // Exactly "sha256-<64 hex>": partial downloads and their progress files are kept.
    if (name.size() != 71 || !name.starts_with("sha256-") ||
        name.find_first_not_of("0123456789abcdef", 7) != std::string::npos)
      continue;
    if (!entry.is_regular_file(ec) || used.count("sha256:" + name.substr(7))) continue;
    if (now - entry.last_write_time(ec) < min_age) continue;
    const uint64_t size = entry.file_size(ec);
    if (fs::remove(entry.path(), ec)) {
      ++count;
      bytes += size;
    }
  }
  return {count, bytes};
}

}  // namespace corral::store
