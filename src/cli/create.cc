// `corral create NAME [-f Modelfile] [-q TYPE]`: a model in the store from a Modelfile, with
// Ollama's progress lines. Through the server at CORRAL_HOST when one answers: the Modelfile is
// parsed here, the files FROM names (a GGUF file, or a safetensors folder's files) are uploaded
// as blobs the server does not have yet, and POST /api/create makes the model from their digests
// and the Modelfile's settings; with no server, the model is made in the local store. Also
// registers the other store commands.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "cli/client.h"
#include "cli/commands.h"
#include "ml/gguf/reader.h"
#include "store/create.h"
#include "store/digest.h"
#include "store/model.h"

namespace corral::cli {
namespace {

// Ctrl+C during a local create: the handler can only set a flag; the next progress report
// throws Interrupted, which unwinds the create.
std::atomic<bool> g_create_interrupted{false};
extern "C" void on_create_sigint(int) { g_create_interrupted.store(true); }
struct Interrupted {};

namespace fs = std::filesystem;

struct CreateArgs {
  std::string name;
  std::string file = "Modelfile";
  std::string quantize;
  bool insecure = false;  // a missing FROM model may be pulled over plain http
};

// Prints status lines: a counted status ("copying file sha256:... 42%") is updated in place on a
// terminal; elsewhere each status is one line, a counted one at its start and end only.
class ProgressPrinter {
 public:
  ProgressPrinter() : tty_(isatty(STDOUT_FILENO) != 0) {}
  ~ProgressPrinter() { finish_line(); }

  void operator()(const convert::Progress& p) {
    const std::string label = p.total ? p.status.substr(0, p.status.rfind(' ')) : p.status;
    if (p.total) {
      if (tty_) {
        std::printf("\r%s", p.status.c_str());
        open_line_ = true;
        if (p.completed >= p.total) finish_line();
      } else if (p.completed == 0 || p.completed >= p.total) {
        if (!(p.completed >= p.total && label == last_label_ && last_done_)) {
          std::printf("%s\n", p.status.c_str());
        }
        last_done_ = p.completed >= p.total;
      }
    } else {
      finish_line();
      std::printf("%s\n", p.status.c_str());
      last_done_ = false;
    }
    last_label_ = label;
    std::fflush(stdout);
  }

 private:
  void finish_line() {
    if (open_line_) std::printf("\n");
    open_line_ = false;
  }

  bool tty_;
  bool open_line_ = false;
  bool last_done_ = false;
  std::string last_label_;
};

// Upload progress on stderr: "uploading sha256:<12 hex> 45%" redrawn in place on a terminal;
// elsewhere one line when an upload starts and one when it ends.
class UploadProgress {
 public:
  UploadProgress() : tty_(isatty(STDERR_FILENO) != 0) {}

  void operator()(const std::string& label, uint64_t done, uint64_t total) {
    const int pct = total ? static_cast<int>(done * 100 / total) : 100;
    if (tty_) {
      if (pct == last_pct_) return;
      std::fprintf(stderr, "\r%s %d%%%s", label.c_str(), pct, done >= total ? "\n" : "");
    } else if (last_pct_ < 0 || (done >= total && last_pct_ < 100)) {
      std::fprintf(stderr, "%s %d%%\n", label.c_str(), pct);
    }
    last_pct_ = pct;
    std::fflush(stderr);
  }

 private:
  bool tty_;
  int last_pct_ = -1;
};

// The files of a FROM folder the server's converter reads (weights, configs, tokenizer).
std::vector<fs::path> model_folder_files(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    const std::string ext = e.path().extension().string();
    if (ext == ".safetensors" || ext == ".json" || ext == ".model" || ext == ".jinja" ||
        ext == ".txt" || ext == ".tiktoken") {
      files.push_back(e.path());
    }
  }
  // A sentence-transformers model's module configs one folder down (1_Pooling/config.json), as
  // Ollama's create sends them.
  for (const auto& sub : fs::directory_iterator(dir)) {
    if (!sub.is_directory() || sub.path().filename().string().starts_with(".")) continue;
    for (const auto& e : fs::directory_iterator(sub.path())) {
      if (e.is_regular_file() && e.path().extension() == ".json") files.push_back(e.path());
    }
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) throw std::runtime_error(dir.string() + ": no model files in this folder");
  return files;
}

// Uploads `file` unless the server has a blob with its content; returns its digest. A GGUF is
// parsed first: a truncated or malformed one is refused here, naming the user's path, before
// any byte is sent.
std::string upload(Client& client, const fs::path& file) {
  if (file.extension() == ".gguf") ml::gguf::File::open(file.string());
  const std::string digest = store::sha256_file(file);
  if (client.has_blob(digest)) return digest;
  UploadProgress progress;
  const std::string label = "uploading " + digest.substr(0, 19);
  client.upload_blob(file, digest,
                     [&](uint64_t done, uint64_t total) { progress(label, done, total); });
  return digest;
}

void stream_create(Client& client, const nlohmann::json& req, ProgressPrinter& printer);

// The server names the files uploaded for a create "<upload>/NAME" (NAME as `files` gives it)
// and their folder "<upload>"; the user is told their own paths, as a local create tells them.
class UploadedPaths {
 public:
  void file(const std::string& name, const fs::path& path) {
    marks_.emplace_back("<upload>/" + name, path.string());
  }
  void folder(const fs::path& path) { folder_ = path.string(); }

  std::string shown(std::string message) const {
    auto marks = marks_;
    if (!folder_.empty()) marks.emplace_back("<upload>", folder_);  // after its files
    for (const auto& [mark, path] : marks) {
      for (size_t at = 0; (at = message.find(mark, at)) != std::string::npos; at += path.size()) {
        message.replace(at, mark.size(), path);
      }
    }
    return message;
  }

 private:
  std::vector<std::pair<std::string, std::string>> marks_;
  std::string folder_;
};

void create_remote(Client& client, const CreateArgs& a, const store::Modelfile& mf,
                   const fs::path& dir) {
  nlohmann::json req = {{"model", a.name}, {"stream", true}};
  UploadedPaths uploaded;
  const fs::path from = store::expand_modelfile_path(mf.from, dir);
  std::error_code ec;
  std::vector<fs::path> ggufs;  // a folder of GGUFs (a vision model: text GGUF and projector)
  if (fs::is_directory(from, ec) && !fs::exists(from / "config.json", ec)) {
    for (const auto& e : fs::directory_iterator(from, ec)) {
      if (e.path().extension() == ".gguf" && e.is_regular_file(ec)) ggufs.push_back(e.path());
    }
    std::sort(ggufs.begin(), ggufs.end());
  }
  if (mf.from2) {
    const fs::path other = store::expand_modelfile_path(*mf.from2, dir);
    for (const fs::path& f : {from, other}) {
      if (!fs::is_regular_file(f, ec)) throw std::runtime_error(f.string() + ": no such file");
    }
    req["files"] = {{from.filename().string(), upload(client, from)},
                    {other.filename().string(), upload(client, other)}};
    uploaded.file(from.filename().string(), from);
    uploaded.file(other.filename().string(), other);
  } else if (!ggufs.empty()) {
    nlohmann::json files = nlohmann::json::object();
    for (const fs::path& f : ggufs) {
      files[f.filename().string()] = upload(client, f);
      uploaded.file(f.filename().string(), f);
    }
    req["files"] = files;
    uploaded.folder(from);
  } else if (fs::is_directory(from, ec)) {
    // Under the folder's own name, so that the server converts a folder of that name, as a local
    // create does (the converter names the model after it: general.name, which `show -v` prints
    // and which decides some tokenizer settings).
    const fs::path normal = from.lexically_normal();
    const std::string folder_name = normal.has_filename()
                                        ? normal.filename().string()
                                        : normal.parent_path().filename().string();
    const std::string prefix = folder_name.empty() || folder_name == ".." ? "" : folder_name + "/";
    nlohmann::json files = nlohmann::json::object();
    for (const fs::path& f : model_folder_files(from)) {
      files[prefix + f.lexically_relative(from).generic_string()] = upload(client, f);
    }
    req["files"] = files;
    uploaded.folder(from);
  } else if (fs::is_regular_file(from, ec)) {
    req["files"] = {{from.filename().string(), upload(client, from)}};
    uploaded.file(from.filename().string(), from);
  } else if (store::is_model_path(mf.from) || store::looks_like_path(mf.from)) {
    throw std::runtime_error(store::missing_path_error("FROM " + mf.from, from));
  } else {
    req["from"] = mf.from;
  }
  if (mf.template_text) req["template"] = *mf.template_text;
  if (mf.system) req["system"] = *mf.system;
  if (!mf.parameters.empty()) req["parameters"] = nlohmann::json::parse(mf.parameters.dump());
  if (!mf.messages.empty()) {
    nlohmann::json messages = nlohmann::json::array();
    for (const auto& m : mf.messages) {
      messages.push_back({{"role", m.role}, {"content", m.content}});
    }
    req["messages"] = messages;
  }
  if (!mf.licenses.empty()) req["license"] = mf.licenses;
  if (mf.requires_version) req["requires"] = *mf.requires_version;
  if (!a.quantize.empty()) req["quantize"] = a.quantize;
  if (a.insecure) req["insecure"] = true;

  ProgressPrinter printer;
  try {
    stream_create(client, req, printer);
  } catch (const ServerError& e) {
    throw ServerError(e.status, uploaded.shown(e.what()));
  }
}

void stream_create(Client& client, const nlohmann::json& req, ProgressPrinter& printer) {
  client.stream("/api/create", req, [&printer](const nlohmann::json& obj) {
    convert::Progress p;
    p.status = obj.value("status", "");
    p.total = obj.value("total", uint64_t{0});
    p.completed = obj.value("completed", uint64_t{0});
    // Ollama's statuses leave the percentage to the client; corral's server may already add it.
    if (p.total && !p.status.ends_with('%')) {
      p.status += " " + std::to_string(p.completed * 100 / p.total) + "%";
    }
    if (!p.status.empty()) printer(p);
    return true;
  });
}

void create(const CreateArgs& a) {
  const store::ModelName name = store::ModelName::parse(a.name);
  std::ifstream in(a.file, std::ios::binary);
  if (!in) {
    throw std::runtime_error(a.file + ": cannot open the Modelfile" +
                             (a.file == "Modelfile" ? " (give one with -f)" : ""));
  }
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  const store::Modelfile mf = store::parse_modelfile(text, a.file);
  for (const std::string& w : mf.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  if (auto client = connect_if_running()) {
    create_remote(*client, a, mf, fs::absolute(a.file).parent_path());
    return;
  }
  store::Store st(store::Store::default_root());
  auto printer = std::make_shared<ProgressPrinter>();
  store::CreateOptions options;
  options.quantize = a.quantize;
  options.insecure = a.insecure;
  // Ctrl+C stops the create at its next progress report and unwinds it, so that its scratch
  // files and the blobs it wrote are removed (the default SIGINT would leave them).
  struct sigaction sa = {}, old_sa = {};
  sa.sa_handler = on_create_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_sa);
  options.progress = [printer](const convert::Progress& p) {
    if (g_create_interrupted.load()) throw Interrupted();
    (*printer)(p);
  };
  try {
    store::create_model(st, name, mf, fs::absolute(a.file).parent_path(), options);
  } catch (const Interrupted&) {
    sigaction(SIGINT, &old_sa, nullptr);
    std::fprintf(stderr, "\ncreate interrupted: nothing was kept\n");
    std::exit(130);
  }
  sigaction(SIGINT, &old_sa, nullptr);
}

}  // namespace

void add_create_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("create", "Create a model in the store from a Modelfile");
  auto args = std::make_shared<CreateArgs>();
  cmd->add_option("name", args->name, "Name of the new model ([namespace/]model[:tag])")
      ->required();
  cmd->add_option("-f,--file", args->file, "The Modelfile (default: ./Modelfile)");
  cmd->add_option("-q,--quantize", args->quantize,
                  "Quantize the model to this type (Q4_K_M, Q8_0, F16, ...; see corral quantize "
                  "--help)");
  cmd->add_flag("--insecure", args->insecure,
                "Pull a missing FROM model over plain http (only from a registry you trust)");
  cmd->footer(
      "A Modelfile names the model and its settings, one instruction per line:\n"
      "  FROM ./model.gguf            a GGUF file, a safetensors folder, or a model name (one\n"
      "                               the store lacks is pulled, as `corral pull` would)\n"
      "  PARAMETER temperature 0.7    a generation option (repeat `stop` for several)\n"
      "  SYSTEM \"\"\"You are ...\"\"\"     the system message\n"
      "  TEMPLATE \"\"\"...\"\"\"           the prompt template (Go template syntax)\n"
      "  MESSAGE user Hello           a message of the conversation to start from\n"
      "  LICENSE \"\"\"...\"\"\"            the license text\n"
      "Relative paths are relative to the Modelfile's folder. Models are stored under\n"
      "$CORRAL_MODELS (default ~/.corral/models), in Ollama's layout. When a corral server\n"
      "answers at CORRAL_HOST, the files FROM names are uploaded to it and it makes the model in\n"
      "its store (CORRAL_NO_SERVER=1: always the local store).\n"
      "\n"
      "Example:\n"
      "  corral create my-model -f ./Modelfile\n"
      "  corral create my-model:q4 -f ./Modelfile -q Q4_K_M");
  cmd->callback([args] { create(*args); });
}

void add_store_commands(CLI::App& app) {
  add_create_command(app);
  add_pull_command(app);
  add_push_command(app);
  add_list_command(app);
  add_cp_command(app);
  add_rm_command(app);
  add_ps_command(app);
  add_stop_command(app);
}

}  // namespace corral::cli
