// Ollama's management API (server/routes.go): /, /api/version, /api/tags, /api/show,
// /api/create, /api/blobs/:digest, /api/copy, /api/delete, /api/ps, /api/pull and /api/push (to
// and from an OCI registry, streaming Ollama's status objects). Field names and shapes follow
// Ollama's
// api/types.go so that its clients (ollama-js, ollama-python, the Ollama CLI) work unchanged.
#include <httplib.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>

#include "convert/quantize.h"
#include "ml/gguf/json.h"
#include "ml/gguf/reader.h"
#include "model/model.h"
#include "parse/thinking.h"
#include "sample/options.h"
#include "server/images.h"
#include "server/server.h"
#include "server/show.h"
#include "store/create.h"
#include "store/digest.h"
#include "store/model.h"
#include "store/registry/pull.h"
#include "store/registry/push.h"
#include "store/show.h"
#include "template/prompt.h"

namespace corral::server {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

// Throws HttpError 400 unless `body[key]` is absent, null or of the wanted kind.
const nlohmann::json* field(const nlohmann::json& body, const char* key, nlohmann::json::value_t t,
                            const char* kind) {
  const auto it = body.find(key);
  if (it == body.end() || it->is_null()) return nullptr;
  const bool ok = t == nlohmann::json::value_t::number_integer ? it->is_number_integer()
                  : t == nlohmann::json::value_t::number_float ? it->is_number()
                                                               : it->type() == t;
  if (!ok) {
    throw HttpError(400, std::string("'") + key + "' must be " + kind + ", not " + it->type_name());
  }
  return &*it;
}

std::optional<std::string> string_field(const nlohmann::json& body, const char* key) {
  const nlohmann::json* v = field(body, key, nlohmann::json::value_t::string, "a string");
  if (!v) return std::nullopt;
  return v->get<std::string>();
}

bool bool_field(const nlohmann::json& body, const char* key, bool fallback) {
  const nlohmann::json* v = field(body, key, nlohmann::json::value_t::boolean, "true or false");
  return v ? v->get<bool>() : fallback;
}

store::ModelName parse_name(const std::string& text) {
  try {
    return store::ModelName::parse(text);
  } catch (const store::NameError& e) {
    throw HttpError(400, e.what());
  }
}

// A model in the store by name (never a file path: a request may not open files by name).
store::ModelInfo lookup_model(Context& ctx, const std::string& name) {
  const store::ModelName parsed = parse_name(name);
  std::optional<store::Manifest> manifest = ctx.store.find_manifest(parsed);
  if (!manifest) throw HttpError(404, "model '" + name + "' not found");
  return store::resolve_manifest(ctx.store, parsed, std::move(*manifest));
}

void handle_tags(Context& ctx, httplib::Response& res) {
  Json models = Json::array();
  for (const store::ModelEntry& e : ctx.store.list()) {
    Json m = Json::object();
    m["name"] = e.name.display();
    m["model"] = e.name.display();
    m["modified_at"] = format_time(to_system(e.modified));
    m["size"] = e.size;
    m["digest"] = e.digest;
    m["details"] = details_of(config_of(ctx.store, e.manifest));
    models.push_back(std::move(m));
  }
  send_json(res, nlohmann::json{{"models", nlohmann::json::parse(models.dump())}});
}

void handle_show(Context& ctx, const httplib::Request& req, httplib::Response& res) {
  const nlohmann::json body = parse_body(req);
  const std::string name = request_model(body);
  const bool verbose = bool_field(body, "verbose", false);
  const store::ModelInfo info = lookup_model(ctx, name);
  const Json out = show_json(ctx.store, info, verbose);
  send_json(res, nlohmann::json::parse(out.dump(-1, ' ', false, Json::error_handler_t::replace)));
}

bool is_loopback_peer(const std::string& addr) {
  return addr.starts_with("127.") || addr == "::1" || addr.starts_with("::ffff:127.");
}

// ---- Blobs ----------------------------------------------------------------------------------

std::string digest_param(const httplib::Request& req) {
  const std::string text = req.matches.size() > 1 ? std::string(req.matches[1]) : std::string();
  try {
    return store::canonical_digest(text);
  } catch (const std::invalid_argument&) {
    throw HttpError(400, "invalid digest '" + text + "': expected sha256:<64 hex digits>");
  }
}

void handle_head_blob(Context& ctx, const httplib::Request& req, httplib::Response& res) {
  if (req.method != "HEAD") throw HttpError(405, "use HEAD to ask for a blob, POST to upload one");
  const std::string digest = digest_param(req);
  res.status = ctx.store.has_blob(digest) ? 200 : 404;
}

// The body goes to a scratch file while it is hashed; the file becomes the blob only when its
// hash is the digest it was sent under. A blob that is already there is not written again.
void handle_post_blob(Context& ctx, const httplib::Request& req, httplib::Response& res,
                      const httplib::ContentReader& read) {
  std::string digest;
  try {
    digest = digest_param(req);
  } catch (const HttpError& e) {
    read([](const char*, size_t) { return true; });
    throw;
  }
  if (ctx.store.has_blob(digest)) {
    read([](const char*, size_t) { return true; });
    res.status = 200;
    return;
  }
  store::ScratchDir scratch(ctx.store.root());
  const fs::path file = scratch.file("upload");
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> out(std::fopen(file.c_str(), "wb"), std::fclose);
  if (!out) throw std::runtime_error("cannot write " + file.string());
  store::Sha256 hash;
  bool write_failed = false;
  const bool complete = read([&](const char* data, size_t n) {
    hash.update(data, n);
    if (!write_failed && std::fwrite(data, 1, n, out.get()) != n) write_failed = true;
    return true;  // keep reading even after a write error, so that the answer reaches the client
  });
  if (std::fflush(out.get()) != 0) write_failed = true;
  out.reset();
  if (!complete) throw HttpError(400, "the upload of " + digest + " ended early");
  if (write_failed) throw std::runtime_error("cannot write " + file.string() + " (disk full?)");
  const std::string actual = hash.digest();
  if (actual != digest) {
    throw HttpError(400, "digest mismatch, expected \"" + digest + "\", got \"" + actual + "\"");
  }
  ctx.store.adopt_hashed(file, digest, store::kMediaModel);
  res.status = 201;
}

// ---- Create ---------------------------------------------------------------------------------

bool is_gguf_blob(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  return in.gcount() == 4 && std::string(magic, 4) == "GGUF";
}

// A filename of `files`: relative, no "..", no empty parts (it becomes a path in a scratch
// folder).
void check_filename(const std::string& name) {
  const fs::path p(name);
  bool ok = !name.empty() && p.is_relative() && name.find('\\') == std::string::npos &&
            name.find('\0') == std::string::npos;
  for (const auto& part : p) {
    if (part == ".." || part == "." || part.empty()) ok = false;
  }
  if (!ok) throw HttpError(400, "invalid file name '" + name + "' in 'files'");
}

struct CreateJob {
  store::ModelName name;
  store::Modelfile modelfile;
  std::string quantize;
  bool insecure = false;                       // pull a missing FROM model over plain http
  std::unique_ptr<store::ScratchDir> scratch;  // links to uploaded files; relative FROMs see it
  std::vector<std::string> uploads;            // digests of the uploaded files it uses
  // The server's paths of the uploaded files (blobs, the scratch folder they are linked into) and
  // how errors name them instead: "<upload>" for the folder, "<upload>/NAME" for a file, as the
  // client named it. The client knows which of its own paths that is (`corral create` puts them
  // back); the server's paths mean nothing to it.
  std::vector<std::pair<std::string, std::string>> shown_paths;
};

constexpr std::string_view kUploadMark = "<upload>";

// `message` with the server's paths of uploaded files replaced by their names on the client.
std::string client_paths(std::string message, const CreateJob& job) {
  for (const auto& [path, shown] : job.shown_paths) {
    for (size_t at = 0; (at = message.find(path, at)) != std::string::npos; at += shown.size()) {
      message.replace(at, path.size(), shown);
    }
  }
  return message;
}

// The model layer given by blobs: one GGUF is used in place (two: a vision model's text GGUF and
// its projector, into *second); several files (safetensors, config.json, tokenizer files) are
// linked under their names into a folder that is converted.
std::string from_files(Context& ctx, const nlohmann::json& files, CreateJob& job,
                       std::optional<std::string>* second = nullptr) {
  const fs::path& scratch = job.scratch->path();
  if (files.empty()) throw HttpError(400, "'files' is empty");
  std::vector<std::pair<std::string, fs::path>> blobs;
  for (const auto& [filename, digest_json] : files.items()) {
    check_filename(filename);
    if (!digest_json.is_string()) {
      throw HttpError(400,
                      "'files' maps file names to digests; '" + filename + "' is not a string");
    }
    std::string digest;
    try {
      digest = store::canonical_digest(digest_json.get<std::string>());
    } catch (const std::invalid_argument& e) {
      throw HttpError(400, "'files' " + filename + ": " + e.what());
    }
    if (!ctx.store.has_blob(digest)) {
      throw HttpError(400, "'files' " + filename + ": blob " + digest +
                               " has not been uploaded (POST /api/blobs/" + digest + " first)");
    }
    blobs.emplace_back(filename, ctx.store.blob_path(digest));
    job.uploads.push_back(digest);
  }
  if (blobs.size() == 1 && is_gguf_blob(blobs[0].second)) {
    job.shown_paths.emplace_back(blobs[0].second.string(),
                                 std::string(kUploadMark) + "/" + blobs[0].first);
    return blobs[0].second.string();
  }
  if (blobs.size() == 2 && second && is_gguf_blob(blobs[0].second) &&
      is_gguf_blob(blobs[1].second)) {
    for (const auto& [filename, blob] : blobs) {
      job.shown_paths.emplace_back(blob.string(), std::string(kUploadMark) + "/" + filename);
    }
    *second = blobs[1].second.string();
    return blobs[0].second.string();
  }
  for (const auto& [filename, blob] : blobs) {
    if (filename.ends_with(".gguf")) {
      throw HttpError(400,
                      "'files' holds a GGUF file among others; send one GGUF alone (or a vision "
                      "model's text GGUF and its projector GGUF)");
    }
  }
  fs::path dir = scratch / "model";
  for (const auto& [filename, blob] : blobs) {
    const fs::path dest = dir / filename;
    fs::create_directories(dest.parent_path());
    std::error_code ec;
    fs::create_hard_link(blob, dest, ec);
    if (ec) fs::create_symlink(blob, dest);
  }
  // The files may all be in one folder, named as the client's (`corral create` sends them so):
  // the converter names the model after its folder, as a local create does.
  if (!fs::exists(dir / "config.json")) {
    std::vector<fs::path> entries;
    for (const auto& e : fs::directory_iterator(dir)) entries.push_back(e.path());
    if (entries.size() == 1 && fs::is_directory(entries[0]) &&
        fs::exists(entries[0] / "config.json")) {
      dir = entries[0];
    }
  }
  if (!fs::exists(dir / "config.json")) {
    throw HttpError(400, "'files' has no GGUF file and no config.json of a safetensors model");
  }
  job.shown_paths.emplace_back(dir.string(), std::string(kUploadMark));
  return dir.string();
}

CreateJob parse_create(Context& ctx, const nlohmann::json& body) {
  CreateJob job;
  job.name = parse_name(request_model(body));
  job.scratch = std::make_unique<store::ScratchDir>(ctx.store.root());
  store::Modelfile& mf = job.modelfile;

  // Older clients send a Modelfile; its FROM is a model name or "@sha256:..." of an upload.
  if (std::optional<std::string> text = string_field(body, "modelfile"); text && !text->empty()) {
    try {
      mf = store::parse_modelfile(*text);
    } catch (const store::ModelfileError& e) {
      throw HttpError(400, e.what());
    }
    if (mf.from.starts_with("@")) {
      mf.from = from_files(ctx, nlohmann::json{{"model.gguf", mf.from.substr(1)}}, job);
    } else if (!store::ModelName::valid(mf.from)) {
      throw HttpError(400, "FROM " + mf.from +
                               ": over the API a Modelfile names a model or an uploaded blob "
                               "(@sha256:...), not a path");
    } else {
      mf.from = parse_name(mf.from).display();  // pulled by create_model when missing
    }
  }

  const std::optional<std::string> from = string_field(body, "from");
  const nlohmann::json* files = field(body, "files", nlohmann::json::value_t::object, "an object");
  if (field(body, "adapters", nlohmann::json::value_t::object, "an object")) {
    throw HttpError(400, "adapters are not supported yet");
  }
  if (from && !from->empty()) {
    mf.from = parse_name(*from).display();  // pulled by create_model when missing
  } else if (files) {
    mf.from = from_files(ctx, *files, job, &mf.from2);
  } else if (mf.from.empty()) {
    throw HttpError(400, "neither 'from' or 'files' was specified");
  }

  job.insecure = bool_field(body, "insecure", false);
  if (std::optional<std::string> q = string_field(body, "quantize")) job.quantize = *q;
  if (std::optional<std::string> q = string_field(body, "quantization");
      q && job.quantize.empty()) {
    job.quantize = *q;
  }
  if (!job.quantize.empty()) {
    try {
      convert::parse_quant_type(job.quantize);
    } catch (const std::exception& e) {
      throw HttpError(400, std::string("quantize: ") + e.what());
    }
  }
  if (std::optional<std::string> t = string_field(body, "template")) mf.template_text = *t;
  if (std::optional<std::string> s = string_field(body, "system")) mf.system = *s;
  if (const auto it = body.find("license"); it != body.end() && !it->is_null()) {
    mf.licenses.clear();
    if (it->is_string()) {
      mf.licenses.push_back(it->get<std::string>());
    } else if (it->is_array() &&
               std::all_of(it->begin(), it->end(), [](const auto& l) { return l.is_string(); })) {
      for (const auto& l : *it) mf.licenses.push_back(l.get<std::string>());
    } else {
      throw HttpError(400, "'license' must be a string or a list of strings");
    }
  }
  if (const nlohmann::json* p =
          field(body, "parameters", nlohmann::json::value_t::object, "an object")) {
    sample::Options check;
    check.apply(*p);  // std::invalid_argument (400) naming an unknown option or a bad value
    for (const auto& [key, value] : p->items()) {
      if (value.is_null() || sample::is_removed_option(key)) continue;
      mf.parameters[key] = Json::parse(value.dump());
    }
  }
  if (const nlohmann::json* msgs =
          field(body, "messages", nlohmann::json::value_t::array, "a list")) {
    mf.messages.clear();
    for (const auto& m : *msgs) {
      if (!m.is_object()) throw HttpError(400, "each of 'messages' must be an object");
      const std::string role = m.value("role", std::string());
      if (role != "system" && role != "user" && role != "assistant" && role != "tool") {
        throw HttpError(400,
                        "message role '" + role + "' is not one of system, user, assistant, tool");
      }
      const auto content = m.find("content");
      if (content != m.end() && !content->is_null() && !content->is_string()) {
        throw HttpError(400, "message content must be a string");
      }
      mf.messages.push_back(
          {role, content != m.end() && content->is_string() ? content->get<std::string>() : ""});
    }
  }
  return job;
}

void run_create(Context& ctx, CreateJob& job, const convert::ProgressFn& progress) {
  store::CreateOptions options;
  options.quantize = job.quantize;
  options.insecure = job.insecure;
  options.progress = progress;
  try {
    store::create_model(ctx.store, job.name, job.modelfile, job.scratch->path(), options);
  } catch (...) {
    // A failed (or abandoned) create keeps none of the files uploaded for it, unless another
    // model uses them.
    job.scratch.reset();
    try {
      ctx.store.remove_unreferenced(job.uploads);
    } catch (const std::exception&) {
      // Best effort: the next server start prunes what remains.
    }
    try {
      throw;
    } catch (const store::FromPullError& e) {
      // The registry lacks the FROM model, or failed: not the server's fault.
      throw HttpError(e.not_found ? 404 : 502, e.what());
    } catch (const std::exception&) {
      std::string message;
      const int status = error_status(std::current_exception(), &message);
      const std::string shown = client_paths(message, job);
      if (shown != message) throw HttpError(status, shown);
      throw;
    }
  }
}

// Thrown from the progress callback when the client has gone: it unwinds the work (create_model's
// scratch files are removed and its manifest is never written; a pull keeps its finished parts).
struct ClientGone {};

using SendLine = std::function<void(const nlohmann::json&)>;

// Answers with the NDJSON lines `work` sends, as create, pull and push stream: a client that goes
// away stops the work at its next line; an error ends the stream with an {"error"} line.
void stream_lines(httplib::Response& res, std::function<void(const SendLine&)> work) {
  res.set_chunked_content_provider(
      "application/x-ndjson", [work = std::move(work)](size_t, httplib::DataSink& sink) {
        const SendLine send = [&](const nlohmann::json& line) {
          const std::string text =
              line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
          if (!sink.write(text.data(), text.size())) throw ClientGone{};
        };
        try {
          work(send);
        } catch (const ClientGone&) {
          return false;
        } catch (...) {
          std::string message;
          error_status(std::current_exception(), &message);
          try {
            send(nlohmann::json{{"error", message}});
          } catch (const ClientGone&) {
            return false;
          }
        }
        sink.done();
        return true;
      });
}

void handle_create(Context& ctx, const httplib::Request& req, httplib::Response& res) {
  const nlohmann::json body = parse_body(req);
  const bool stream = bool_field(body, "stream", true);
  auto job = std::make_shared<CreateJob>(parse_create(ctx, body));
  if (!stream) {
    run_create(ctx, *job, {});
    send_json(res, nlohmann::json{{"status", "success"}});
    return;
  }
  stream_lines(res, [&ctx, job](const SendLine& send) {
    run_create(ctx, *job, [&](const convert::Progress& p) {
      nlohmann::json line = {{"status", p.status}};
      if (p.status.starts_with("copying file ") || p.status.starts_with("using existing") ||
          p.status.starts_with("creating new")) {
        const size_t at = p.status.find("sha256:");
        if (at != std::string::npos) line["digest"] = p.status.substr(at, 71);
      }
      if (p.total > 0) {
        line["total"] = p.total;
        line["completed"] = p.completed;
      }
      send(line);
    });
  });
}

// ---- Copy, delete, ps -----------------------------------------------------------------------

void handle_copy(Context& ctx, const httplib::Request& req, httplib::Response& res) {
  const nlohmann::json body = parse_body(req);
  const std::optional<std::string> source = string_field(body, "source");
  const std::optional<std::string> destination = string_field(body, "destination");
  if (!source || source->empty()) throw HttpError(400, "'source' is required");
  if (!destination || destination->empty()) throw HttpError(400, "'destination' is required");
  const store::ModelName from = parse_name(*source);
  const store::ModelName to = parse_name(*destination);
  if (!ctx.store.find_manifest(from)) throw HttpError(404, "model '" + *source + "' not found");
  ctx.store.copy(from, to);
  res.status = 200;
}

void handle_delete(Context& ctx, const httplib::Request& req, httplib::Response& res) {
  const nlohmann::json body = parse_body(req);
  const std::string text = request_model(body);
  const store::ModelName name = parse_name(text);
  const std::optional<store::Manifest> m = ctx.store.find_manifest(name);
  if (!m) throw HttpError(404, "model '" + text + "' not found");
  ctx.store.remove(name);
  // A model file no other model shares is gone from the store; its loaded copy goes too.
  if (const store::Layer* l = m->find_layer(store::kMediaModel);
      l && !ctx.store.has_blob(l->digest)) {
    ctx.scheduler.unload(ctx.store.blob_path(l->digest).string());
  }
  res.status = 200;
}

void handle_ps(Context& ctx, httplib::Response& res) {
  nlohmann::json models = nlohmann::json::array();
  std::vector<runner::RunningModel> running = ctx.scheduler.running();
  // Ollama's ps shows the manifest digest, the ID `list` shows, not the model blob's.
  std::map<std::string, std::string> manifest_digest;
  for (const store::ModelEntry& e : ctx.store.list()) manifest_digest[e.name.display()] = e.digest;
  // Longest time left first, as Ollama lists them.
  std::stable_sort(running.begin(), running.end(),
                   [](const auto& a, const auto& b) { return a.expires_at > b.expires_at; });
  for (const runner::RunningModel& r : running) {
    nlohmann::json m = nlohmann::json::object();
    m["name"] = r.name;
    m["model"] = r.name;
    m["size"] = r.size;
    const auto found = manifest_digest.find(r.name);
    m["digest"] = found != manifest_digest.end() ? found->second : r.digest;
    m["details"] = nlohmann::json::parse(r.details.is_null() ? "{}" : r.details.dump());
    m["expires_at"] = format_time(r.expires_at);
    m["size_vram"] = r.size_vram;
    m["context_length"] = r.context_length;
    models.push_back(std::move(m));
  }
  send_json(res, nlohmann::json{{"models", models}});
}

// ---- Pull and push -----------------------------------------------------------------------------

nlohmann::json progress_line(const store::registry::PullProgress& p) {
  nlohmann::json line = {{"status", p.status}};
  if (!p.digest.empty()) line["digest"] = p.digest;
  if (p.total > 0) {
    line["total"] = p.total;
    line["completed"] = p.completed;
  }
  return line;
}

// POST /api/pull {"model", "insecure", "stream"}: Ollama's statuses, one object per line, with
// digest, total and completed while a blob downloads. A client that goes away stops the pull (its
// finished parts are kept for the next one).
void handle_pull(Context& ctx, const httplib::Request& req, httplib::Response& res) {
  const nlohmann::json body = parse_body(req);
  const store::ModelName name = parse_name(request_model(body));
  const bool insecure = bool_field(body, "insecure", false);
  if (!bool_field(body, "stream", true)) {
    store::registry::pull(ctx.store, name, store::registry::pull_options_from_env(insecure));
    send_json(res, nlohmann::json{{"status", "success"}});
    return;
  }
  stream_lines(res, [&ctx, name, insecure](const SendLine& send) {
    auto options = store::registry::pull_options_from_env(insecure);
    options.progress = [&](const store::registry::PullProgress& p) { send(progress_line(p)); };
    store::registry::pull(ctx.store, name, options);
  });
}

// POST /api/push {"model", "insecure", "stream"}: Ollama's push statuses ("retrieving manifest",
// "pushing <12 hex>" with digest, total and completed, "pushing manifest", "success"). A model
// the store lacks is a 404 before anything streams. A client that goes away stops the push; the
// registry keeps what it took, so the next push skips or continues it.
void handle_push(Context& ctx, const httplib::Request& req, httplib::Response& res) {
  const nlohmann::json body = parse_body(req);
  const std::string text = request_model(body);
  const store::ModelName name = parse_name(text);
  const bool insecure = bool_field(body, "insecure", false);
  if (!ctx.store.find_manifest(name)) throw HttpError(404, "model '" + text + "' not found");
  if (!bool_field(body, "stream", true)) {
    store::registry::push(ctx.store, name, store::registry::push_options(insecure));
    send_json(res, nlohmann::json{{"status", "success"}});
    return;
  }
  stream_lines(res, [&ctx, name, insecure](const SendLine& send) {
    auto options = store::registry::push_options(insecure);
    options.progress = [&](const store::registry::PushProgress& p) { send(progress_line(p)); };
    store::registry::push(ctx.store, name, options);
  });
}

}  // namespace

void add_ollama_routes(httplib::Server& http, Context& ctx) {
  Context* c = &ctx;
  http.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("corral is running", "text/plain; charset=utf-8");
  });
  http.Get("/api/version", [c](const httplib::Request& req, httplib::Response& res) {
    nlohmann::json answer = {{"version", CORRAL_VERSION}};
    // The store's path, beyond Ollama's answer, for `corral` on this machine: its "model not
    // found" says which store it asked. Not told to other machines.
    if (is_loopback_peer(req.remote_addr)) answer["models"] = c->store.root().string();
    send_json(res, answer);
  });
  http.Get("/api/tags",
           [c](const httplib::Request&, httplib::Response& res) { handle_tags(*c, res); });
  http.Post("/api/show", [c](const httplib::Request& req, httplib::Response& res) {
    handle_show(*c, req, res);
  });
  http.Post("/api/create", [c](const httplib::Request& req, httplib::Response& res) {
    handle_create(*c, req, res);
  });
  http.Get(R"(/api/blobs/(.*))", [c](const httplib::Request& req, httplib::Response& res) {
    handle_head_blob(*c, req, res);
  });
  http.Post(R"(/api/blobs/(.*))",
            [c](const httplib::Request& req, httplib::Response& res,
                const httplib::ContentReader& read) { handle_post_blob(*c, req, res, read); });
  http.Post("/api/copy", [c](const httplib::Request& req, httplib::Response& res) {
    handle_copy(*c, req, res);
  });
  http.Delete("/api/delete", [c](const httplib::Request& req, httplib::Response& res) {
    handle_delete(*c, req, res);
  });
  http.Get("/api/ps", [c](const httplib::Request&, httplib::Response& res) { handle_ps(*c, res); });
  http.Post("/api/pull", [c](const httplib::Request& req, httplib::Response& res) {
    handle_pull(*c, req, res);
  });
  http.Post("/api/push", [c](const httplib::Request& req, httplib::Response& res) {
    handle_push(*c, req, res);
  });
}

}  // namespace corral::server
