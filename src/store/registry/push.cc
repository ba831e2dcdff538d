#include "store/registry/push.h"

#include "store/registry/credentials.h"
#include "store/registry/signing.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <iterator>

namespace corral::store::registry {
namespace {

namespace fs = std::filesystem;

bool same_host(const std::string& a, const std::string& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](unsigned char x, unsigned char y) {
    return std::tolower(x) == std::tolower(y);
  });
}

// A repository of `name`'s registry that probably holds `digest` (see push.h), or "".
std::string mount_source(const std::vector<ModelEntry>& models, const ModelName& name,
                         const Layer& layer) {
  const auto other_repo = [&](const ModelName& n) {
    return same_host(n.host, name.host) &&
           !(same_host(n.ns, name.ns) && same_host(n.model, name.model));
  };
  if (!layer.from.empty() && ModelName::valid(layer.from)) {
    const ModelName from = ModelName::parse(layer.from);
    if (other_repo(from)) return from.ns + "/" + from.model;
  }
  for (const ModelEntry& e : models) {
    if (!other_repo(e.name)) continue;
    const Manifest& m = e.manifest;
    const bool refers = m.config.digest == layer.digest ||
                        std::any_of(m.layers.begin(), m.layers.end(),
                                    [&](const Layer& l) { return l.digest == layer.digest; });
    if (refers) return e.name.ns + "/" + e.name.model;
  }
  return "";
}

void report(const PushOptions& o, PushProgress p) {
  if (o.progress) o.progress(p);
}

}  // namespace

PushOptions push_options(bool insecure) {
  PushOptions o;
  o.client.insecure = insecure;
  o.client.key_file = default_key_path();
  o.client.credential_files = default_credential_files();
  return o;
}

PushResult push(const Store& st, const ModelName& name, const PushOptions& o) {
  report(o, {"retrieving manifest", "", 0, 0});
  const std::vector<ModelEntry> models = st.list();
  const auto entry = std::find_if(models.begin(), models.end(),
                                  [&](const ModelEntry& e) { return e.name == name; });
  if (entry == models.end()) throw std::runtime_error("model '" + name.display() + "' not found");
  // The stored bytes, so the registry's manifest digest is the local one.
  const fs::path file = st.root() / "manifests" / entry->name.manifest_path();
  std::ifstream in(file, std::ios::binary);
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  const Manifest manifest = Manifest::parse(text, file.string());

  std::vector<Layer> blobs = manifest.layers;
  blobs.push_back(manifest.config);
  for (const Layer& layer : blobs) {
    std::error_code ec;
    const auto size = fs::file_size(st.blob_path(layer.digest), ec);
    if (ec || size != layer.size) {
      throw std::runtime_error("model '" + name.display() + "': its blob " + layer.digest +
                               (ec ? " is missing from " : " has the wrong size in ") +
                               st.root().string() + " (pull or create the model again)");
    }
  }

  Client client(name, o.client);
  PushResult result;
  for (const Layer& layer : blobs) {
    const std::string status = "pushing " + layer.digest.substr(7, 12);
    const BlobPushed what =
        push_blob(client, layer, st.blob_path(layer.digest), mount_source(models, name, layer),
                  o.upload, [&](uint64_t done, uint64_t total) {
                    report(o, {status, layer.digest, total, done});
                  });
    switch (what) {
      case BlobPushed::kExisted:
        ++result.existed;
        break;
      case BlobPushed::kMounted:
        ++result.mounted;
        break;
      case BlobPushed::kUploaded:
        ++result.uploaded;
        result.uploaded_bytes += layer.size;
        break;
    }
  }

  report(o, {"pushing manifest", "", 0, 0});
  const std::string path = "/manifests/" + name.tag;
  RequestBody body;
  body.memory = &text;
  for (int attempt = 1;; ++attempt) {
    try {
      const Response r =
          client.request("PUT", path, {std::string("Content-Type: ") + kMediaManifest}, body);
      if (r.status == 201 || r.status == 200) break;
      if (!retryable_status(r.status) || attempt >= o.client.max_attempts) {
        throw std::runtime_error(client.repository_url() + path + ": the registry answered " +
                                 std::to_string(r.status) + " to the manifest (" +
                                 r.body.substr(0, 300) + ")");
      }
    } catch (const TransportError&) {
      if (attempt >= o.client.max_attempts) throw;
    }
    client.backoff(attempt);
  }
  report(o, {"success", "", 0, 0});
  return result;
}

}  // namespace corral::store::registry
