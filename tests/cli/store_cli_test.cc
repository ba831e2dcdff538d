// corral create / list / show / run / cp / rm on a store in a temporary folder, run as the real
// binary; and a create killed half-way.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

#include "cli/run_corral.h"
#include "store/digest.h"
#include "store/local_registry.h"
#include "store/modelfile.h"
#include "store/store.h"
#include "store/temp_store.h"
#include "testdata.h"

namespace corral::testing {
namespace {

namespace fs = std::filesystem;

using Result = CommandResult;

// Runs corral with CORRAL_MODELS set to `store`, from folder `cwd`; stderr merged into out. The
// store is used directly (CORRAL_NO_SERVER): no server that may be running is asked, and `run`
// starts none.
Result corral(const fs::path& store, const std::string& args, const fs::path& cwd = "") {
  // A name the store lacks is pulled: from a closed loopback port, never registry.ollama.ai.
  std::string cmd =
      "CORRAL_NO_SERVER=1 CORRAL_MODELS='" + store.string() +
      "' CORRAL_REGISTRY_MIRROR=http://127.0.0.1:" + std::to_string(free_loopback_port()) + " ";
  if (!cwd.empty()) cmd = "cd '" + cwd.string() + "' && " + cmd;
  cmd += std::string("'") + CORRAL_BINARY + "' " + args + " 2>&1 </dev/null";
  return run_shell(cmd);
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

std::string stories() { return testdata_path("tinystories260k/stories260K-f32.gguf"); }

// Every blob's content hashes to its file name, and no manifest names a missing blob.
void expect_store_consistent(const fs::path& root) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root / "blobs", ec)) {
    const std::string name = e.path().filename().string();
    ASSERT_EQ(name.rfind("sha256-", 0), 0u) << name;
    EXPECT_EQ(store::sha256_file(e.path()).substr(7), name.substr(7)) << name;
  }
  const store::Store st(root);
  for (const store::ModelEntry& m : st.list()) {
    EXPECT_TRUE(st.has_blob(m.manifest.config.digest));
    for (const store::Layer& l : m.manifest.layers) EXPECT_TRUE(st.has_blob(l.digest));
  }
}

TEST(CliStore, CreateListShowRunCopyRemove) {
  TempDir store_dir, work;
  // FROM relative to the Modelfile's folder, not to the current folder.
  const fs::path rel = fs::relative(stories(), work.path());
  write_text(work.path() / "Modelfile",
             "# a story model\n"
             "FROM " +
                 rel.string() +
                 "\n"
                 "PARAMETER temperature 0\n"
                 "PARAMETER num_predict 24\n"
                 "PARAMETER num_thread 1\n"
                 "PARAMETER stop \"<never>\"\n"
                 "SYSTEM Once upon a time\n"
                 "TEMPLATE \"\"\"{{ if .System }}{{ .System }}\n{{ end }}{{ .Prompt }}\"\"\"\n"
                 "LICENSE MIT\n");
  Result r =
      corral(store_dir.path(), "create story -f '" + (work.path() / "Modelfile").string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const std::string model_digest = store::sha256_file(stories());
  EXPECT_EQ(r.out.rfind("gathering model components\n", 0), 0u) << r.out;
  EXPECT_TRUE(contains(r.out, "copying file " + model_digest + " 100%\n")) << r.out;
  EXPECT_TRUE(contains(r.out, "using existing layer " + model_digest + "\n")) << r.out;
  EXPECT_TRUE(contains(r.out, "creating new layer sha256:")) << r.out;
  EXPECT_TRUE(r.out.ends_with("writing manifest\nsuccess\n")) << r.out;
  expect_store_consistent(store_dir.path());

  // The config blob describes the model as Ollama's does.
  const store::Store st(store_dir.path());
  const store::Manifest m = st.manifest(store::ModelName::parse("story"));
  const auto cfg = nlohmann::json::parse(st.read_blob(m.config.digest));
  EXPECT_EQ(cfg["model_format"], "gguf");
  EXPECT_EQ(cfg["model_family"], "llama");
  EXPECT_EQ(cfg["model_families"], nlohmann::json::array({"llama"}));
  EXPECT_EQ(cfg["model_type"], "293K");
  EXPECT_EQ(cfg["file_type"], "F32");
  EXPECT_EQ(cfg["rootfs"]["type"], "layers");
  EXPECT_EQ(cfg["rootfs"]["diff_ids"].size(), m.layers.size());
  EXPECT_EQ(m.layers[0].media_type, store::kMediaModel);
  EXPECT_EQ(m.layers[0].digest, model_digest);

  r = corral(store_dir.path(), "list");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out.rfind("NAME            ID              SIZE      MODIFIED\n", 0), 0u) << r.out;
  EXPECT_TRUE(contains(r.out, "story:latest    ")) << r.out;
  EXPECT_TRUE(contains(r.out, " MB    ")) << r.out;
  EXPECT_TRUE(contains(r.out, " ago\n")) << r.out;

  r = corral(store_dir.path(), "show story --modelfile");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const store::Modelfile back = store::parse_modelfile(r.out);
  EXPECT_EQ(back.from, st.blob_path(model_digest).string());
  EXPECT_EQ(back.system, "Once upon a time");
  EXPECT_EQ(back.parameters.dump(),
            R"({"num_predict":24,"num_thread":1,"stop":["<never>"],"temperature":0.0})");
  EXPECT_EQ(back.licenses, std::vector<std::string>{"MIT"});

  r = corral(store_dir.path(), "show story");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(contains(r.out, "architecture        llama\n")) << r.out;
  EXPECT_TRUE(contains(r.out, "  Parameters\n    num_predict")) << r.out;
  EXPECT_TRUE(contains(r.out, "  System\n    Once upon a time\n")) << r.out;
  EXPECT_EQ(corral(store_dir.path(), "show story --system").out, "Once upon a time\n");
  EXPECT_EQ(corral(store_dir.path(), "show story --license").out, "MIT\n");
  EXPECT_TRUE(contains(corral(store_dir.path(), "show story --parameters").out,
                       "temperature                    0.0\n"));

  EXPECT_EQ(corral(store_dir.path(), "show story --template").out,
            "{{ if .System }}{{ .System }}\n{{ end }}{{ .Prompt }}\n");

  // run renders the TEMPLATE with the SYSTEM and applies the PARAMETERs: it matches the file run
  // with them spelled out.
  const Result by_name = corral(store_dir.path(), "run story Lily");
  ASSERT_EQ(by_name.exit_code, 0) << by_name.out;
  const Result by_file =
      corral(store_dir.path(), "run '" + stories() +
                                   "' -t 1 --option temperature=0 --option num_predict=24 "
                                   "'Once upon a time\nLily'");
  ASSERT_EQ(by_file.exit_code, 0) << by_file.out;
  EXPECT_EQ(by_name.out, by_file.out);
  EXPECT_GT(by_name.out.size(), 20u) << by_name.out;
  // --option overrides the model's PARAMETER.
  const Result shorter = corral(store_dir.path(), "run story --option num_predict=4 Lily");
  ASSERT_EQ(shorter.exit_code, 0) << shorter.out;
  EXPECT_LT(shorter.out.size(), by_name.out.size());
  EXPECT_EQ(by_name.out.rfind(shorter.out.substr(0, shorter.out.size() - 1), 0), 0u);

  // debug commands take store names too.
  EXPECT_EQ(corral(store_dir.path(), "debug tokenize story 'Once upon'").out,
            corral(store_dir.path(), "debug tokenize '" + stories() + "' 'Once upon'").out);

  r = corral(store_dir.path(), "cp story me/story2:v2");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out, "copied 'story' to 'me/story2:v2'\n");
  r = corral(store_dir.path(), "list");
  EXPECT_TRUE(contains(r.out, "me/story2:v2")) << r.out;

  // A missing name among others: the others are removed, the missing one reported, exit 1.
  r = corral(store_dir.path(), "rm story missing");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_EQ(r.out, "deleted 'story'\nError: model 'missing' not found\n");
  EXPECT_EQ(corral(store_dir.path(), "run me/story2:v2 Lily").out, by_name.out);
  r = corral(store_dir.path(), "run story Lily");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.out, "pulling manifest\nError: http://127.0.0.1:")) << r.out;
  EXPECT_TRUE(contains(r.out, "/v2/library/story/manifests/latest: ")) << r.out;
  r = corral(store_dir.path(), "rm me/story2:v2");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(fs::is_empty(store_dir.path() / "blobs"));
  EXPECT_EQ(corral(store_dir.path(), "list").out, "NAME    ID    SIZE    MODIFIED\n");
}

// A comment after a FROM path is part of the value, as in Ollama (comments start a line): the
// error names the path as written and says so, instead of taking it for a model name.
TEST(CliStore, FromAMissingPathWithAnInlineCommentSaysWhy) {
  TempDir store_dir, work;
  write_text(work.path() / "Modelfile", "FROM ./Qwen2.5-0.5B-Instruct    # a safetensors folder\n");
  const Result r = corral(store_dir.path(), "create m", work.path());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_TRUE(contains(r.out,
                       "Error: FROM ./Qwen2.5-0.5B-Instruct    # a safetensors folder: no "
                       "such file or folder"))
      << r.out;
  EXPECT_TRUE(contains(r.out, "a '#' starts a comment only at the beginning of a line")) << r.out;
  EXPECT_FALSE(contains(r.out, "invalid model name")) << r.out;
}

// As Ollama, only unquantized weights are quantized: Q4_0 -> Q8_0 is refused naming a quantized
// tensor, leaves nothing in the store, and a -q of the type the file already has is accepted.
TEST(CliStore, QuantizingQuantizedWeightsIsRefused) {
  TempDir store_dir, work;
  const fs::path q4 = work.path() / "q4.gguf";
  ASSERT_EQ(
      corral(store_dir.path(), "quantize '" + stories() + "' '" + q4.string() + "' Q4_0").exit_code,
      0);
  write_text(work.path() / "Modelfile", "FROM " + q4.string() + "\n");
  Result r = corral(store_dir.path(), "create m -q Q8_0", work.path());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_TRUE(contains(r.out,
                       "cannot quantize to Q8_0: the model's weights are already "
                       "quantized (token_embd.weight is Q4_0)"))
      << r.out;
  EXPECT_FALSE(fs::exists(store_dir.path() / "manifests"));
  EXPECT_TRUE(!fs::exists(store_dir.path() / "blobs") || fs::is_empty(store_dir.path() / "blobs"));
  r = corral(store_dir.path(), "create m -q Q4_0", work.path());
  EXPECT_EQ(r.exit_code, 0) << r.out;
}

TEST(CliStore, CreateFromAModelInheritsAndOverridesItsLayers) {
  TempDir store_dir, work;
  write_text(work.path() / "Modelfile", "FROM " + stories() +
                                            "\nPARAMETER temperature 0\nPARAMETER num_predict 8\n"
                                            "SYSTEM first\nMESSAGE user hi\n");
  ASSERT_EQ(corral(store_dir.path(), "create base", work.path()).exit_code, 0);
  write_text(work.path() / "Modelfile", "FROM base\nSYSTEM second\nPARAMETER num_predict 12\n");
  const Result r = corral(store_dir.path(), "create derived", work.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(contains(r.out, "using existing layer " + store::sha256_file(stories()))) << r.out;
  EXPECT_FALSE(contains(r.out, "copying file")) << r.out;
  EXPECT_EQ(corral(store_dir.path(), "show derived --system").out, "second\n");
  const store::Modelfile mf =
      store::parse_modelfile(corral(store_dir.path(), "show derived --modelfile").out);
  EXPECT_EQ(mf.parameters.dump(), R"({"num_predict":12,"temperature":0.0})");
  ASSERT_EQ(mf.messages.size(), 1u);
  EXPECT_EQ(mf.messages[0].content, "hi");
  // The base is untouched.
  EXPECT_EQ(corral(store_dir.path(), "show base --system").out, "first\n");
  expect_store_consistent(store_dir.path());
}

TEST(CliStore, CreateQuantizesWithDashQ) {
  TempDir store_dir, work;
  write_text(work.path() / "Modelfile", "FROM " + stories() + "\nPARAMETER num_predict 8\n");
  Result r = corral(store_dir.path(), "create sq -q q8_0", work.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(contains(r.out, "quantizing F32 model to Q8_0")) << r.out;
  const store::Store st(store_dir.path());
  const store::Manifest m = st.manifest(store::ModelName::parse("sq"));
  EXPECT_NE(m.layers[0].digest, store::sha256_file(stories()));
  const auto cfg = nlohmann::json::parse(st.read_blob(m.config.digest));
  EXPECT_EQ(cfg["file_type"], "Q8_0");
  EXPECT_TRUE(contains(corral(store_dir.path(), "show sq").out, "quantization        Q8_0\n"));
  r = corral(store_dir.path(), "run sq -t 1 --option temperature=0 Lily");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_GT(r.out.size(), 8u) << r.out;
  // The f32 source was only read: its blob was not kept.
  EXPECT_FALSE(st.has_blob(store::sha256_file(stories())));
  r = corral(store_dir.path(), "create bad -q Q9_Z", work.path());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.out, "Q9_Z")) << r.out;
  expect_store_consistent(store_dir.path());
}

TEST(CliStore, CreateConvertsASafetensorsFolder) {
  TempDir store_dir, work;
  const fs::path hf = testdata_path("reference/stories260K");
  write_text(work.path() / "Modelfile", "FROM " + fs::relative(hf, work.path()).string() + "\n");
  const Result r = corral(store_dir.path(), "create conv", work.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(contains(r.out, "gathering model components\nconverting model\n")) << r.out;
  EXPECT_TRUE(r.out.ends_with("writing manifest\nsuccess\n")) << r.out;
  const store::Store st(store_dir.path());
  const store::Manifest m = st.manifest(store::ModelName::parse("conv"));
  const auto cfg = nlohmann::json::parse(st.read_blob(m.config.digest));
  EXPECT_EQ(cfg["file_type"], "F16");
  EXPECT_EQ(cfg["model_family"], "llama");
  // The converted F16 model generates what llama.cpp's F16 conversion of it generates.
  const Result by_name =
      corral(store_dir.path(), "run conv -t 1 --option temperature=0 --option num_predict=16 Lily");
  const Result by_file =
      corral(store_dir.path(), "run '" + testdata_path("tinystories260k/stories260K-f16.gguf") +
                                   "' -t 1 --option temperature=0 --option num_predict=16 Lily");
  ASSERT_EQ(by_name.exit_code, 0) << by_name.out;
  EXPECT_EQ(by_name.out, by_file.out);
  expect_store_consistent(store_dir.path());
  EXPECT_TRUE(fs::is_empty(store_dir.path() / "tmp"));
}

TEST(CliStore, RecreatingAModelDropsBlobsOnlyItUsed) {
  TempDir store_dir, work;
  write_text(work.path() / "Modelfile", "FROM " + stories() + "\nSYSTEM old text\n");
  ASSERT_EQ(corral(store_dir.path(), "create m", work.path()).exit_code, 0);
  const std::string old_system = store::sha256_digest("old text");
  const store::Store st(store_dir.path());
  EXPECT_TRUE(st.has_blob(old_system));
  write_text(work.path() / "Modelfile", "FROM " + stories() + "\nSYSTEM new text\n");
  ASSERT_EQ(corral(store_dir.path(), "create m", work.path()).exit_code, 0);
  EXPECT_FALSE(st.has_blob(old_system));
  EXPECT_EQ(corral(store_dir.path(), "show m --system").out, "new text\n");
}

TEST(CliStore, BadNamesAreRefusedWithAClearError) {
  TempDir store_dir, work;
  write_text(work.path() / "Modelfile", "FROM " + stories() + "\n");
  const std::string long_name(81, 'x');
  for (const std::string name :
       {"../x", "/etc/passwd", "a/b/c/d/e", long_name.c_str(), "bad!name", "a/../../b", "x:.."}) {
    Result r = corral(store_dir.path(), "create '" + name + "'", work.path());
    EXPECT_EQ(r.exit_code, 1) << name;
    EXPECT_EQ(r.out.rfind("Error: invalid model name '" + name + "': ", 0), 0u) << r.out;
    r = corral(store_dir.path(), "cp '" + name + "' ok");
    EXPECT_EQ(r.exit_code, 1) << name;
    EXPECT_TRUE(contains(r.out, "invalid model name")) << r.out;
    r = corral(store_dir.path(), "rm '" + name + "'");
    EXPECT_EQ(r.exit_code, 1) << name;
  }
  // Nothing was written: no manifest, no blob.
  EXPECT_FALSE(fs::exists(store_dir.path() / "manifests"));
  EXPECT_FALSE(fs::exists(store_dir.path() / "blobs"));
  const Result r = corral(store_dir.path(), "run nosuchmodel hello");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.out, "/v2/library/nosuchmodel/manifests/latest: ")) << r.out;
}

TEST(CliStore, CreateErrorsAreClear) {
  TempDir store_dir, work;
  Result r = corral(store_dir.path(), "create m", work.path());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "Error: Modelfile: cannot open the Modelfile (give one with -f)\n");
  write_text(work.path() / "Modelfile", "FROM x\nPARAMETER warmth 3\n");
  r = corral(store_dir.path(), "create m", work.path());
  EXPECT_EQ(r.out, "Error: Modelfile line 2: unknown parameter \"warmth\"\n");
  write_text(work.path() / "Modelfile", "FROM ./missing.gguf\n");
  r = corral(store_dir.path(), "create m", work.path());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.out, "FROM ./missing.gguf: no such file or folder")) << r.out;
  write_text(work.path() / "Modelfile", "FROM nosuch:model\n");
  r = corral(store_dir.path(), "create m", work.path());
  EXPECT_TRUE(contains(r.out, "Error: FROM nosuch:model: http://127.0.0.1:")) << r.out;
  write_text(work.path() / "Modelfile", "FROM ./Modelfile\n");
  r = corral(store_dir.path(), "create m", work.path());
  EXPECT_TRUE(contains(r.out, "Modelfile: not a GGUF file")) << r.out;
  EXPECT_TRUE(store::Store(store_dir.path()).list().empty());
}

// A store laid out exactly as Ollama writes one lists and runs.
TEST(CliStore, OllamaStoreListsAndRuns) {
  TempDir root;
  const std::string model_hex = store::sha256_file(stories()).substr(7);
  fs::create_directories(root.path() / "blobs");
  fs::copy_file(stories(), root.path() / "blobs" / ("sha256-" + model_hex));
  const auto blob = [&](const std::string& bytes) {
    const std::string d = store::sha256_digest(bytes);
    write_text(root.path() / "blobs" / ("sha256-" + d.substr(7)), bytes);
    return d;
  };
  const std::string tmpl = "{{ .Prompt }}";
  const std::string params =
      "{\"num_predict\":16,\"num_thread\":1,\"stop\":[\"<|end|>\"],\"temperature\":0}\n";
  const std::string tmpl_d = blob(tmpl), params_d = blob(params);
  const std::string config =
      "{\"model_format\":\"gguf\",\"model_family\":\"llama\",\"model_families\":[\"llama\"],"
      "\"model_type\":\"293K\",\"file_type\":\"F32\",\"architecture\":\"amd64\",\"os\":\"linux\","
      "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:" +
      model_hex + "\",\"" + tmpl_d + "\",\"" + params_d + "\"]}}\n";
  const std::string config_d = blob(config);
  const std::string manifest =
      "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\","
      "\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\",\"digest\":\"" +
      config_d + "\",\"size\":" + std::to_string(config.size()) +
      "},\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":\"sha256:" +
      model_hex + "\",\"size\":" + std::to_string(fs::file_size(stories())) +
      "},{\"mediaType\":\"application/vnd.ollama.image.template\",\"digest\":\"" + tmpl_d +
      "\",\"size\":" + std::to_string(tmpl.size()) +
      "},{\"mediaType\":\"application/vnd.ollama.image.params\",\"digest\":\"" + params_d +
      "\",\"size\":" + std::to_string(params.size()) + "}]}";
  write_text(root.path() / "manifests/registry.ollama.ai/library/stories/260k", manifest);

  Result r = corral(root.path(), "list");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(contains(r.out, "\nstories:260k    " + store::sha256_digest(manifest).substr(7, 12) +
                                  "    1.2 MB    "))
      << r.out;
  r = corral(root.path(), "run stories:260k 'Once upon a time'");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const Result direct =
      corral(root.path(), "run '" + stories() +
                              "' -t 1 --option temperature=0 --option num_predict=16 "
                              "'Once upon a time'");
  EXPECT_EQ(r.out, direct.out);
  EXPECT_GT(r.out.size(), 16u) << r.out;
  EXPECT_EQ(corral(root.path(), "show stories:260k --template").out, tmpl + "\n");

  // A model blob whose content does not match its name is an error, not a silent run.
  {
    std::fstream f(root.path() / "blobs" / ("sha256-" + model_hex),
                   std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100000);
    f.put('\x7f');
  }
  r = corral(root.path(), "run stories:260k 'Once upon a time'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.out, "is corrupt: its content hashes to sha256:")) << r.out;
}

// Starts `corral create NAME` with its stdout on a pipe; returns the pid and the pipe's read end.
pid_t start_create(const fs::path& store, const fs::path& cwd, const std::string& name,
                   int* out_fd) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    if (chdir(cwd.c_str()) != 0) _exit(127);
    setenv("CORRAL_MODELS", store.c_str(), 1);
    setenv("CORRAL_NO_SERVER", "1", 1);
    execl(CORRAL_BINARY, CORRAL_BINARY, "create", name.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  *out_fd = fds[0];
  return pid;
}

// Reads lines from `fd` until one starts with `prefix`; false at end of output.
bool wait_for_line(int fd, const std::string& prefix, std::string* seen) {
  std::string line;
  char c;
  while (read(fd, &c, 1) == 1) {
    if (c != '\n') {
      line += c;
      continue;
    }
    *seen += line + "\n";
    if (line.rfind(prefix, 0) == 0) return true;
    line.clear();
  }
  return false;
}

void kill_create_at(const std::string& line_prefix) {
  TempDir store_dir, work;
  // A large-ish model file, so that the copy is under way when the line arrives.
  const fs::path big = work.path() / "big.gguf";
  fs::copy_file(stories(), big);
  {
    std::ofstream out(big, std::ios::binary | std::ios::app);
    const std::string chunk(1 << 20, '\0');
    for (int i = 0; i < 48; ++i) out << chunk;
  }
  write_text(work.path() / "Modelfile", "FROM ./big.gguf\nSYSTEM hello\n");
  int fd = -1;
  const pid_t pid = start_create(store_dir.path(), work.path(), "big", &fd);
  ASSERT_GT(pid, 0);
  std::string seen;
  const bool found = wait_for_line(fd, line_prefix, &seen);
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  close(fd);
  ASSERT_TRUE(found) << "no line starting with '" << line_prefix << "' in:\n" << seen;
  ASSERT_TRUE(WIFSIGNALED(status)) << seen;  // killed before it finished

  // Nothing half-made is visible: no manifest, every blob whole.
  EXPECT_TRUE(store::Store(store_dir.path()).list().empty());
  std::error_code ec;
  EXPECT_TRUE(!fs::exists(store_dir.path() / "manifests") ||
              fs::recursive_directory_iterator(store_dir.path() / "manifests") ==
                  fs::recursive_directory_iterator() ||
              [&] {
                for (const auto& e :
                     fs::recursive_directory_iterator(store_dir.path() / "manifests"))
                  if (e.is_regular_file()) return false;
                return true;
              }());
  expect_store_consistent(store_dir.path());
  Result r = corral(store_dir.path(), "list");
  EXPECT_EQ(r.out, "NAME    ID    SIZE    MODIFIED\n");
  r = corral(store_dir.path(), "run big hello");
  EXPECT_TRUE(contains(r.out, "/v2/library/big/manifests/latest: ")) << r.out;

  // The next create sweeps what the killed one left in the scratch area, and succeeds.
  write_text(work.path() / "Modelfile", "FROM " + stories() + "\n");
  r = corral(store_dir.path(), "create small", work.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(fs::is_empty(store_dir.path() / "tmp")) << "scratch files left behind";
}

// The regular files under the store (blobs, manifests, scratch files).
std::vector<std::string> files_in(const fs::path& root) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::exists(root)) return out;
  for (const auto& e : fs::recursive_directory_iterator(root, ec)) {
    if (e.is_regular_file(ec)) out.push_back(fs::relative(e.path(), root).string());
  }
  return out;
}

// A truncated GGUF is refused before anything is copied: the error names the user's file and
// the store holds nothing afterwards.
TEST(CliStore, TruncatedGgufCreateLeavesNothingInTheStore) {
  TempDir store_dir, work;
  const std::string whole = read_text(stories());
  write_text(work.path() / "cut.gguf", whole.substr(0, whole.size() / 2));
  write_text(work.path() / "Modelfile", "FROM ./cut.gguf\n");
  const Result r = corral(store_dir.path(), "create m", work.path());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_TRUE(contains(r.out, "Error: " + (work.path() / "cut.gguf").string())) << r.out;
  EXPECT_EQ(files_in(store_dir.path()), std::vector<std::string>{});
}

// Ctrl+C while the model file is copied: the create stops, says so, and removes what it wrote.
TEST(CliStore, CreateInterruptedByCtrlCLeavesNothingInTheStore) {
  TempDir store_dir, work;
  const fs::path big = work.path() / "big.gguf";
  fs::copy_file(stories(), big);
  {
    std::ofstream out(big, std::ios::binary | std::ios::app);
    const std::string chunk(1 << 20, '\0');
    for (int i = 0; i < 64; ++i) out << chunk;
  }
  write_text(work.path() / "Modelfile", "FROM ./big.gguf\nSYSTEM hello\n");
  int fd = -1;
  const pid_t pid = start_create(store_dir.path(), work.path(), "big", &fd);
  ASSERT_GT(pid, 0);
  std::string seen;
  const bool found = wait_for_line(fd, "copying file", &seen);
  kill(pid, SIGINT);
  int status = 0;
  waitpid(pid, &status, 0);
  close(fd);
  ASSERT_TRUE(found) << seen;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) GTEST_SKIP() << "the copy finished first";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 130) << status;
  EXPECT_EQ(files_in(store_dir.path()), std::vector<std::string>{});
}

TEST(CliStore, CreateKilledAfterItsFirstLineLeavesNothingVisible) {
  kill_create_at("gathering model components");
}

TEST(CliStore, CreateKilledWhileCopyingLeavesNothingVisible) { kill_create_at("copying file"); }

TEST(CliStore, HelpTextsDescribeTheCommands) {
  TempDir store_dir;
  Result r = corral(store_dir.path(), "create --help");
  EXPECT_TRUE(contains(r.out, "Modelfile")) << r.out;
  EXPECT_TRUE(contains(r.out, "-q,--quantize")) << r.out;
  r = corral(store_dir.path(), "list --help");
  EXPECT_TRUE(contains(r.out, "CORRAL_MODELS")) << r.out;
  r = corral(store_dir.path(), "show --help");
  EXPECT_TRUE(contains(r.out, "--modelfile")) << r.out;
  EXPECT_TRUE(contains(corral(store_dir.path(), "rm --help").out, "Remove models")) << r.out;
  EXPECT_TRUE(contains(corral(store_dir.path(), "cp --help").out, "new name")) << r.out;
  // `corral help [COMMAND]` and -v, as Ollama spells them.
  r = corral(store_dir.path(), "help");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(contains(r.out, "Subcommands:")) << r.out;
  EXPECT_TRUE(contains(r.out, "run ")) << r.out;
  r = corral(store_dir.path(), "help create");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(contains(r.out, "-q,--quantize")) << r.out;
  r = corral(store_dir.path(), "help debug tensors");
  EXPECT_TRUE(contains(r.out, "debug tensors [OPTIONS] model")) << r.out;
  r = corral(store_dir.path(), "help nonsense");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_TRUE(contains(r.out, "unknown help topic 'nonsense'")) << r.out;
  r = corral(store_dir.path(), "-v");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(r.out.starts_with("corral version ")) << r.out;
}

}  // namespace
}  // namespace corral::testing
