// The CLI against a real `corral serve` on a free port with a temporary store: create (uploading
// the GGUF), list, show, cp, rm, run one-shot through the server (the same greedy text as the
// model run in-process), ps and stop; `corral run` starting a server when none answers; and a
// vision model (one file, and llama.cpp's two) asked about an image path in the prompt.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "cli/client.h"
#include "cli/serve_process.h"
#include "cli/terminal.h"
#include "convert/convert.h"
#include "ml/gguf/reader.h"
#include "ml/gguf/writer.h"
#include "store/digest.h"
#include "store/registry_model.h"
#include "store/temp_store.h"
#include "testdata.h"

namespace corral::testing {
namespace {

namespace fs = std::filesystem;

Result sh(const std::string& cmd) { return shell(cmd); }

TEST(CliThroughServe, CreateListShowRunPsStopCopyRemove) {
  TempDir server_store, client_store, work;
  ServeProcess serve(server_store.path());
  ASSERT_TRUE(wait_for_server(serve.host(), std::chrono::seconds(20)));
  const std::string cli = "CORRAL_NO_SERVER= CORRAL_HOST=" + serve.host() + " CORRAL_MODELS='" +
                          client_store.str() + "' '" + CORRAL_BINARY + "' ";
  const std::string gguf = testdata_path("tinystories260k/stories260K-f32.gguf");
  write_text(work.path() / "Modelfile",
             "FROM " + gguf +
                 "\nPARAMETER temperature 0\nPARAMETER num_thread 1\nSYSTEM Lily\n"
                 "TEMPLATE \"\"\"{{ if .System }}{{ .System }} {{ end }}{{ .Prompt }}\"\"\"\n");

  Result r = sh("cd '" + work.str() + "' && " + cli + "create story");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const std::string digest = store::sha256_file(gguf);
  EXPECT_TRUE(contains(r.out, "uploading " + digest.substr(0, 19) + " 100%")) << r.out;
  EXPECT_TRUE(r.out.ends_with("success\n")) << r.out;
  // The model went to the server's store, not the client's.
  EXPECT_TRUE(fs::exists(server_store.path() / "blobs" / ("sha256-" + digest.substr(7))));
  EXPECT_FALSE(fs::exists(client_store.path() / "blobs"));

  r = sh(cli + "list");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(contains(r.out, "story:latest")) << r.out;
  r = sh(cli + "show story --system");
  EXPECT_EQ(r.out, "Lily\n");
  r = sh(cli + "show story");
  EXPECT_TRUE(contains(r.out, "    architecture        llama\n")) << r.out;

  // Greedy text through the server equals the model run in this process.
  r = sh(cli + "run story --option num_predict=12 'Once upon a time'");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const Result local = sh("CORRAL_NO_SERVER=1 CORRAL_MODELS='" + server_store.str() + "' '" +
                          CORRAL_BINARY + "' run story --option num_predict=12 'Once upon a time'");
  ASSERT_EQ(local.exit_code, 0) << local.out;
  EXPECT_EQ(r.out, local.out);
  EXPECT_FALSE(r.out.empty());

  r = sh(cli + "ps");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(contains(r.out, "story:latest")) << r.out;
  EXPECT_TRUE(contains(r.out, "100% CPU")) << r.out;
  r = sh(cli + "stop story");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  // Unloading may finish just after the answer: poll.
  for (int i = 0; i < 100 && contains(sh(cli + "ps").out, "story:latest"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_FALSE(contains(sh(cli + "ps").out, "story:latest"));

  r = sh(cli + "cp story copy");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = sh(cli + "rm story");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = sh(cli + "list");
  EXPECT_TRUE(contains(r.out, "copy:latest")) << r.out;
  EXPECT_FALSE(contains(r.out, "story:latest")) << r.out;
  r = sh(cli + "run story hello");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.out, "pulling manifest\nError: ")) << r.out;
  EXPECT_TRUE(contains(r.out, "/v2/library/story/manifests/latest: ")) << r.out;
}

// Through a server, a FROM path that names nothing is the same error as locally (the client
// never sends it as a model name).
TEST(CliThroughServe, FromAMissingPathIsTheLocalError) {
  TempDir store, work;
  ServeProcess serve(store.path());
  ASSERT_TRUE(wait_for_server(serve.host(), std::chrono::seconds(20)));
  write_text(work.path() / "Modelfile", "FROM ./Qwen2.5-0.5B-Instruct    # a safetensors folder\n");
  const std::string create = "cd '" + work.str() + "' && CORRAL_MODELS='" + store.str() + "' '" +
                             CORRAL_BINARY + "' create m";
  const Result remote = sh("CORRAL_NO_SERVER= CORRAL_HOST=" + serve.host() + " " + create);
  const Result local = sh("CORRAL_NO_SERVER=1 " + create);
  EXPECT_EQ(remote.exit_code, 1) << remote.out;
  EXPECT_TRUE(contains(remote.out, "a '#' starts a comment only at the beginning of a line"))
      << remote.out;
  EXPECT_TRUE(local.out.ends_with(remote.out)) << local.out << "\n---\n" << remote.out;
}

// A truncated GGUF: the CLI refuses it before uploading (naming the user's file), and a create
// of such a blob uploaded by another client fails and removes the blob: the store ends as it
// began.
TEST(CliThroughServe, AFailedCreateLeavesNoBlobInTheServersStore) {
  TempDir store, work;
  ServeProcess serve(store.path());
  ASSERT_TRUE(wait_for_server(serve.host(), std::chrono::seconds(20)));
  const std::string whole = read_text(testdata_path("tinystories260k/stories260K-f32.gguf"));
  const fs::path cut = work.path() / "cut.gguf";
  write_text(cut, whole.substr(0, whole.size() / 2));
  write_text(work.path() / "Modelfile", "FROM ./cut.gguf\n");
  const Result r = sh("cd '" + work.str() + "' && CORRAL_NO_SERVER= CORRAL_HOST=" + serve.host() +
                      " '" + CORRAL_BINARY + "' create m");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_TRUE(contains(r.out, "Error: " + cut.string())) << r.out;
  EXPECT_FALSE(contains(r.out, "uploading")) << r.out;

  cli::Client client(cli::parse_host(serve.host()));
  const std::string digest = store::sha256_file(cut);
  client.upload_blob(cut, digest);
  EXPECT_TRUE(fs::exists(store.path() / "blobs" / ("sha256-" + digest.substr(7))));
  EXPECT_THROW(client.post("/api/create",
                           {{"model", "m"}, {"files", {{"cut.gguf", digest}}}, {"stream", false}}),
               cli::ServerError);
  EXPECT_FALSE(fs::exists(store.path() / "blobs" / ("sha256-" + digest.substr(7))));
  EXPECT_TRUE(store::Store(store.path()).list().empty());
}

// `corral serve` prunes blobs no model uses when it starts (an hour old at least), unless
// CORRAL_NOPRUNE is set.
TEST(CliThroughServe, ServePrunesUnusedBlobsWhenItStarts) {
  TempDir store_dir;
  store::Store st(store_dir.path());
  const store::Layer orphan = st.add_blob_bytes("left by a killed create", store::kMediaModel);
  fs::last_write_time(st.blob_path(orphan.digest),
                      fs::file_time_type::clock::now() - std::chrono::hours(2));
  setenv("CORRAL_NOPRUNE", "1", 1);
  {
    ServeProcess serve(store_dir.path());
    ASSERT_TRUE(wait_for_server(serve.host(), std::chrono::seconds(20)));
  }
  unsetenv("CORRAL_NOPRUNE");
  EXPECT_TRUE(st.has_blob(orphan.digest));
  {
    ServeProcess serve(store_dir.path());
    ASSERT_TRUE(wait_for_server(serve.host(), std::chrono::seconds(20)));
  }
  EXPECT_FALSE(st.has_blob(orphan.digest));
}

// `corral show` prints the same bytes with and without a server, for every part of a model: both
// print what one function (server::show_json) says.
TEST(CliThroughServe, ShowIsTheSameWithAndWithoutAServer) {
  TempDir store, work;
  write_text(work.path() / "Modelfile.story",
             "FROM " + testdata_path("tinystories260k/stories260K-f32.gguf") +
                 "\nPARAMETER temperature 0\nPARAMETER stop end\nSYSTEM Lily\nLICENSE MIT\n"
                 "TEMPLATE \"\"\"{{ .System }} {{ .Prompt }}\"\"\"\nMESSAGE user hi\n");
  const std::string local =
      "CORRAL_NO_SERVER=1 CORRAL_MODELS='" + store.str() + "' '" + CORRAL_BINARY + "' ";
  ASSERT_EQ(sh(local + "create story -f '" + work.str() + "/Modelfile.story'").exit_code, 0);
  // Every fixture checkpoint, each architecture (text, vision, embedding) made a store model.
  std::vector<std::string> models = {"story"};
  for (const char* name : {"small-llama-256", "tiny-bert", "tiny-gemma3", "tiny-llama3",
                           "tiny-mllama", "tiny-qwen2", "tiny-qwen2vl", "tiny-qwen3"}) {
    write_text(work.path() / name,
               "FROM " + testdata_path(std::string("reference/") + name) + "\n");
    const Result made = sh(local + "create " + name + " -f '" + work.str() + "/" + name + "'");
    ASSERT_EQ(made.exit_code, 0) << name << ": " << made.out;
    models.push_back(name);
  }
  ServeProcess serve(store.path());
  ASSERT_TRUE(wait_for_server(serve.host(), std::chrono::seconds(20)));
  const std::string remote = "CORRAL_NO_SERVER= CORRAL_HOST=" + serve.host() + " CORRAL_MODELS='" +
                             work.str() + "' '" + CORRAL_BINARY + "' ";
  for (const std::string& model : models) {
    for (const char* flag :
         {"", "--template", "--parameters", "--system", "--license", "--modelfile", "-v"}) {
      const std::string args = "show " + model + " " + flag;
      const Result here = sh(local + args);
      const Result there = sh(remote + args);
      EXPECT_EQ(here.exit_code, 0) << args << ": " << here.out;
      EXPECT_EQ(here.out, there.out) << args;
    }
  }
  // What the store model holds shows in both.
  EXPECT_TRUE(contains(sh(local + "show tiny-qwen3 --template").out, "<|im_start|>"));
  EXPECT_TRUE(contains(sh(local + "show story").out, "  Capabilities\n    completion\n"));
}

// `corral run --keepalive` sets how long the server keeps the model: 0 unloads it at once.
TEST(CliThroughServe, RunKeepaliveTellsTheServerHowLongToKeepTheModel) {
  TempDir store, work;
  write_text(work.path() / "Modelfile", "FROM " +
                                            testdata_path("tinystories260k/stories260K-f32.gguf") +
                                            "\nPARAMETER temperature 0\nPARAMETER num_thread 1\n");
  ASSERT_EQ(sh("CORRAL_NO_SERVER=1 CORRAL_MODELS='" + store.str() + "' '" + CORRAL_BINARY +
               "' create story -f '" + work.str() + "/Modelfile'")
                .exit_code,
            0);
  ServeProcess serve(store.path());
  ASSERT_TRUE(wait_for_server(serve.host(), std::chrono::seconds(20)));
  const std::string cli =
      "CORRAL_NO_SERVER= CORRAL_HOST=" + serve.host() + " '" + CORRAL_BINARY + "' ";
  Result r = sh(cli + "run story --keepalive 1h --option num_predict=4 Lily");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = sh(cli + "ps");
  EXPECT_TRUE(contains(r.out, "story:latest")) << r.out;
  // UNTIL: an hour from now, not the default 5 minutes.
  EXPECT_TRUE(contains(r.out, "59 minutes from now") || contains(r.out, "About an hour")) << r.out;
  r = sh(cli + "run story --keepalive 0 --option num_predict=4 Lily");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  for (int i = 0; i < 100 && contains(sh(cli + "ps").out, "story:latest"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_FALSE(contains(sh(cli + "ps").out, "story:latest"));
}

// A second `corral serve` on an address in use exits at once saying so, instead of sharing the
// port with the first (which would answer every other request).
TEST(CliThroughServe, ASecondServerOnTheSameAddressExitsSayingItIsInUse) {
  TempDir store;
  ServeProcess serve(store.path());
  ASSERT_TRUE(wait_for_server(serve.host(), std::chrono::seconds(20)));
  const Result r = sh("CORRAL_HOST=" + serve.host() + " CORRAL_MODELS='" + store.str() +
                      "' timeout 20 '" + CORRAL_BINARY + "' serve");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_TRUE(contains(r.out, "cannot listen on " + serve.host() + ": address already in use"))
      << r.out;
}

// `corral run NAME` and `FROM NAME` pull a model the server's store lacks, through the server
// (POST /api/pull; /api/create pulls it itself), from a real registry on loopback.
TEST(CliThroughServe, RunAndCreatePullAMissingModelIntoTheServersStore) {
  TempDir server_store, client_store, registry_dir, work;
  LocalRegistry registry(registry_dir.path());
  const std::string manifest = push_stories_model(registry, "library/stories", "latest");
  const std::string host = "127.0.0.1:" + std::to_string(registry.port());
  const std::string name = host + "/library/stories:latest";
  const fs::path manifest_file =
      server_store.path() / "manifests" / host / "library" / "stories" / "latest";
  ServeProcess serve(server_store.path());
  ASSERT_TRUE(wait_for_server(serve.host(), std::chrono::seconds(20)));
  const std::string cli = "CORRAL_NO_SERVER= CORRAL_HOST=" + serve.host() + " CORRAL_MODELS='" +
                          client_store.str() + "' '" + CORRAL_BINARY + "' ";

  Result r = sh(cli + "run " + name + " --insecure --option num_predict=12 'Once upon a time'");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(r.out.starts_with("pulling manifest\n")) << r.out;
  const std::string done = "verifying sha256 digest\nwriting manifest\nsuccess\n";
  const size_t at = r.out.find(done);
  ASSERT_NE(at, std::string::npos) << r.out;
  EXPECT_EQ(read_text(manifest_file), manifest);
  EXPECT_FALSE(fs::exists(client_store.path() / "manifests"));
  // The same greedy story as a second run, which pulls nothing.
  const Result again = sh(cli + "run " + name + " --option num_predict=12 'Once upon a time'");
  ASSERT_EQ(again.exit_code, 0) << again.out;
  EXPECT_EQ(again.out, r.out.substr(at + done.size()));

  // FROM a name neither store has: the server pulls it (its statuses stream to the client).
  const std::string other = host + "/library/other:v1";
  push_stories_model(registry, "library/other", "v1");
  write_text(work.path() / "Modelfile", "FROM " + other + "\nSYSTEM Lily\n");
  r = sh("cd '" + work.str() + "' && " + cli + "create mine --insecure");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(contains(r.out, "pulling model\npulling manifest\n")) << r.out;
  EXPECT_TRUE(r.out.ends_with("success\n")) << r.out;
  r = sh(cli + "list");
  EXPECT_TRUE(contains(r.out, "mine:latest")) << r.out;
  EXPECT_TRUE(contains(r.out, other)) << r.out;
  EXPECT_FALSE(fs::exists(client_store.path() / "manifests"));

  // A name the registry lacks: one clear error, and no model.
  r = sh(cli + "run " + host + "/library/none --insecure hello");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_TRUE(contains(r.out, "/v2/library/none/manifests/latest: model")) << r.out;
  EXPECT_EQ(r.out.find("Error:"), r.out.rfind("Error:")) << r.out;
  EXPECT_FALSE(contains(sh(cli + "list").out, "none")) << r.out;
}

TEST(CliThroughServe, RunStartsAServerWhenNoneAnswers) {
  TempDir home, store_dir, work;
  const std::string host = "127.0.0.1:" + std::to_string(free_loopback_port());
  const std::string env = "HOME='" + home.str() + "' CORRAL_NO_SERVER= CORRAL_HOST=" + host +
                          " CORRAL_MODELS='" + store_dir.str() + "' ";
  write_text(work.path() / "Modelfile", "FROM " +
                                            testdata_path("tinystories260k/stories260K-f32.gguf") +
                                            "\nPARAMETER temperature 0\nPARAMETER num_thread 1\n");
  // No server yet: create works on the local store.
  ASSERT_EQ(
      sh("cd '" + work.str() + "' && " + env + "'" + CORRAL_BINARY + "' create story").exit_code,
      0);
  const Result r = sh(env + "'" + CORRAL_BINARY + "' run story --option num_predict=4 Lily");
  const std::string said = "started corral server in the background (pid ";
  const size_t at = r.out.find(said);
  ASSERT_NE(at, std::string::npos) << r.out;
  const pid_t pid = std::stoi(r.out.substr(at + said.size()));
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(contains(r.out, "log: " + (home.path() / ".corral/logs/server.log").string()))
      << r.out;
  // It keeps running, and the next command finds it.
  EXPECT_TRUE(cli::Client(cli::parse_host(host)).alive());
  const Result again = sh(env + "'" + CORRAL_BINARY + "' run story --option num_predict=4 Lily");
  EXPECT_FALSE(contains(again.out, "started corral server")) << again.out;
  kill(pid, SIGTERM);
  for (int i = 0; i < 200 && kill(pid, 0) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (kill(pid, 0) == 0) kill(pid, SIGKILL);
}

// Eight `corral run` started at once with no server running: one of them starts a server, the
// others use it, and all eight answer.
TEST(CliThroughServe, ConcurrentRunsStartOneServer) {
  TempDir home, store_dir, work;
  const std::string host = "127.0.0.1:" + std::to_string(free_loopback_port());
  const std::string env = "HOME='" + home.str() + "' CORRAL_NO_SERVER= CORRAL_HOST=" + host +
                          " CORRAL_MODELS='" + store_dir.str() + "' ";
  write_text(work.path() / "Modelfile", "FROM " +
                                            testdata_path("tinystories260k/stories260K-f32.gguf") +
                                            "\nPARAMETER temperature 0\nPARAMETER num_thread 1\n");
  ASSERT_EQ(
      sh("cd '" + work.str() + "' && " + env + "'" + CORRAL_BINARY + "' create story").exit_code,
      0);
  std::string runs;
  for (int i = 0; i < 8; ++i) {
    runs += "(" + env + "'" + CORRAL_BINARY + "' run story --option num_predict=4 Lily > '" +
            work.str() + "/out" + std::to_string(i) + "' 2>&1; echo $? >> '" + work.str() + "/out" +
            std::to_string(i) + "') & ";
  }
  sh(runs + "wait");
  const std::string said = "started corral server in the background (pid ";
  int started = 0;
  pid_t pid = -1;
  for (int i = 0; i < 8; ++i) {
    const std::string out = read_text(work.path() / ("out" + std::to_string(i)));
    EXPECT_TRUE(out.ends_with("\n0\n")) << "run " << i << ": " << out;
    EXPECT_FALSE(contains(out, "Error")) << "run " << i << ": " << out;
    if (const size_t at = out.find(said); at != std::string::npos) {
      ++started;
      pid = std::stoi(out.substr(at + said.size()));
    }
  }
  EXPECT_EQ(started, 1);
  if (pid > 0) {
    kill(pid, SIGTERM);
    for (int i = 0; i < 200 && kill(pid, 0) == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (kill(pid, 0) == 0) kill(pid, SIGKILL);
  }
}

// The interactive session through a server: /set format json reaches it, /save makes a model in
// the server's store, /load runs it (its MESSAGEs shown).
TEST(CliThroughServe, ReplFormatSaveAndLoadGoThroughTheServer) {
  TempDir server_store, client_store, work, home;
  ServeProcess serve(server_store.path());
  ASSERT_TRUE(wait_for_server(serve.host(), std::chrono::seconds(20)));
  const std::vector<std::string> env = {"CORRAL_NO_SERVER=", "CORRAL_HOST=" + serve.host(),
                                        "CORRAL_MODELS=" + client_store.str(),
                                        "HOME=" + home.str()};
  const std::string cli = "CORRAL_NO_SERVER= CORRAL_HOST=" + serve.host() + " CORRAL_MODELS='" +
                          client_store.str() + "' '" + CORRAL_BINARY + "' ";
  write_text(work.path() / "Modelfile",
             "FROM " + testdata_path("tinystories260k/stories260K-f32.gguf") +
                 "\nPARAMETER temperature 0\nPARAMETER num_thread 1\nPARAMETER num_predict 8\n");
  ASSERT_EQ(sh("cd '" + work.str() + "' && " + cli + "create story").exit_code, 0);

  Terminal t({"run", "story"}, env);
  ASSERT_TRUE(t.started());
  ASSERT_TRUE(t.wait_for(">>> ")) << t.output();
  ASSERT_TRUE(t.command("/set format json\r", "Set format to 'json' mode.")) << t.output();
  ASSERT_TRUE(t.command("Once upon a time\r", "{ \"")) << t.output();
  t.type("/save saved\r");
  ASSERT_TRUE(t.wait_for("Created new model 'saved'")) << t.output();
  t.type("/load saved\r");
  ASSERT_TRUE(t.wait_for("Loading model 'saved'")) << t.output();
  ASSERT_TRUE(t.wait_for(">>> Once upon a time\r\n{ \"")) << t.output();
  ASSERT_TRUE(t.wait_for(">>> ")) << t.output();
  t.type("/load nothing-here\r");
  ASSERT_TRUE(t.wait_for("Couldn't load model 'nothing-here'")) << t.output();
  t.type("/bye\r");
  EXPECT_EQ(t.wait_exit(), 0) << t.output();

  // The model is the server's; the client's store is untouched.
  const Result r = sh(cli + "show saved --modelfile");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(contains(r.out, "MESSAGE user Once upon a time")) << r.out;
  EXPECT_TRUE(contains(r.out, "MESSAGE assistant ")) << r.out;
  EXPECT_FALSE(fs::exists(client_store.path() / "manifests"));
}

// The text (or vision) half of a one-file qwen2vl GGUF, as llama.cpp lays the two files out.
void write_half(const ml::gguf::File& whole, bool vision, const fs::path& out) {
  ml::gguf::Writer w;
  auto& md = w.metadata();
  for (const auto& [key, value] : whole.metadata()) {
    if (key == "general.alignment") continue;
    if (key.starts_with("general.") || key.starts_with("clip.") == vision) md.set(key, value);
  }
  if (vision) md.set("general.architecture", "clip");
  for (const ml::gguf::TensorInfo& t : whole.tensors()) {
    const bool v = t.name.starts_with("v.") || t.name.starts_with("mm.");
    if (v == vision) w.add_tensor(t.name, t.dtype, t.shape(), t.bytes());
  }
  w.write(out.string());
}

// Text as the server's JSON carries it: each byte that is not part of valid UTF-8 becomes U+FFFD
// (a model with random weights emits stray bytes, which `corral run` in-process prints as they
// are).
std::string lossy_utf8(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool ok = n > 0 && i + n <= s.size();
    for (size_t k = 1; ok && k < n; ++k) ok = (static_cast<unsigned char>(s[i + k]) >> 6) == 2;
    if (ok) {
      out.append(s, i, n);
      i += n;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

TEST(CliThroughServe, AVisionModelAnswersAboutAnImagePathWithAndWithoutTheServer) {
  TempDir server_store, client_store, work;
  ServeProcess serve(server_store.path());
  ASSERT_TRUE(wait_for_server(serve.host(), std::chrono::seconds(20)));
  const std::string cli = "CORRAL_NO_SERVER= CORRAL_HOST=" + serve.host() + " CORRAL_MODELS='" +
                          client_store.str() + "' '" + CORRAL_BINARY + "' ";
  const std::string local =
      "CORRAL_NO_SERVER=1 CORRAL_MODELS='" + server_store.str() + "' '" + CORRAL_BINARY + "' ";
  const std::string dir = testdata_path("reference/tiny-qwen2vl");
  fs::copy_file(dir + "/image.png", work.path() / "photo.png");

  // One file, converted by the server from the uploaded folder.
  write_text(work.path() / "Modelfile", "FROM " + dir + "\nPARAMETER temperature 0\n");
  Result r = sh("cd '" + work.str() + "' && " + cli + "create vl -q F32");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = sh(cli + "show vl");
  EXPECT_TRUE(contains(r.out, "vision")) << r.out;

  // llama.cpp's two files, uploaded and stored as a model and a projector layer.
  convert::ConvertOptions co;
  co.type = "F32";
  co.write.n_threads = 1;
  const fs::path whole = work.path() / "whole.gguf";
  convert::convert_hf(dir, whole.string(), co);
  const ml::gguf::File f = ml::gguf::File::open(whole.string());
  write_half(f, false, work.path() / "text.gguf");
  write_half(f, true, work.path() / "mmproj.gguf");
  write_text(work.path() / "Modelfile.two",
             "FROM ./mmproj.gguf\nFROM ./text.gguf\nPARAMETER temperature 0\n");
  r = sh("cd '" + work.str() + "' && " + cli + "create vl2 -f Modelfile.two");
  ASSERT_EQ(r.exit_code, 0) << r.out;

  const std::string ask = " --option num_predict=6 'what is in " + work.str() + "/photo.png?'";
  const Result served = sh(cli + "run vl" + ask);
  ASSERT_EQ(served.exit_code, 0) << served.out;
  EXPECT_TRUE(contains(served.out, "Added image '" + work.str() + "/photo.png'")) << served.out;
  const Result in_process = sh(local + "run vl" + ask);
  ASSERT_EQ(in_process.exit_code, 0) << in_process.out;
  EXPECT_EQ(served.out, lossy_utf8(in_process.out));
  const Result two = sh(cli + "run vl2" + ask);
  EXPECT_EQ(two.out, served.out);
  // Without the image the model says something else (the image is what it answers about).
  const Result blind = sh(local + "run vl --option num_predict=6 'what is in this?'");
  EXPECT_NE(blind.out, served.out.substr(served.out.find('\n') + 1));

  // The debug commands against transformers' numbers: the processor's pixel_values, and the
  // logits of the reference input_ids with the image.
  const nlohmann::json ref = nlohmann::json::parse(read_text(dir + "/reference.json"));
  r = sh(local + "debug preprocess vl '" + work.str() + "/photo.png' --json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const nlohmann::json pre = nlohmann::json::parse(r.out);
  EXPECT_EQ(pre["pixel_values_shape"], ref["pixel_values_shape"]);
  EXPECT_EQ(pre["image_grid_thw"][0], ref["image_grid_thw"]);
  double max_diff = 0;
  for (size_t i = 0; i < ref["pixel_values"].size(); ++i) {
    max_diff = std::max(max_diff, std::fabs(pre["pixel_values"][i].get<double>() -
                                            ref["pixel_values"][i].get<double>()));
  }
  EXPECT_LE(max_diff, 1e-5);
  std::string ids;
  for (const auto& id : ref["input_ids"]) ids += (ids.empty() ? "" : ",") + id.dump();
  r = sh(local + "debug logits vl --tokens " + ids + " --image '" + work.str() +
         "/photo.png' --json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const nlohmann::json logits = nlohmann::json::parse(r.out);
  max_diff = 0;
  size_t k = 0;
  for (const auto& row : logits["logits"]) {
    for (const auto& v : row) {
      max_diff = std::max(max_diff, std::fabs(v.get<double>() - ref["logits"][k++].get<double>()));
    }
  }
  EXPECT_EQ(k, ref["logits"].size());
  EXPECT_LE(max_diff, 1e-3);
}

// `corral run EMBEDDING_MODEL "text"` prints the embedding as `ollama run` does: one JSON array
// on a line, the same through the server as in this process, and reference.json's mean-pooled
// vector. A sentence-transformers folder's 1_Pooling/config.json reaches the server's converter.
TEST(CliThroughServe, RunAnEmbeddingModelPrintsItsVectorAsJson) {
  TempDir server_store, client_store, work;
  ServeProcess serve(server_store.path());
  ASSERT_TRUE(wait_for_server(serve.host(), std::chrono::seconds(20)));
  const std::string cli = "CORRAL_NO_SERVER= CORRAL_HOST=" + serve.host() + " CORRAL_MODELS='" +
                          client_store.str() + "' '" + CORRAL_BINARY + "' ";
  const fs::path bert = testdata_path("reference/tiny-bert");
  const fs::path folder = work.path() / "tiny-bert-cls";
  fs::create_directories(folder / "1_Pooling");
  for (const char* f :
       {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"}) {
    fs::copy_file(bert / f, folder / f);
  }
  write_text(
      folder / "modules.json",
      R"([{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},)"
      R"({"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"}])");
  write_text(folder / "1_Pooling" / "config.json",
             R"({"pooling_mode_cls_token":true,"pooling_mode_mean_tokens":false})");
  write_text(work.path() / "Modelfile", "FROM " + bert.string() + "\n");
  write_text(work.path() / "Modelfile.cls", "FROM " + folder.string() + "\n");
  Result r = sh("cd '" + work.str() + "' && " + cli + "create bert -q F32");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = sh("cd '" + work.str() + "' && " + cli + "create bert-cls -q F32 -f Modelfile.cls");
  ASSERT_EQ(r.exit_code, 0) << r.out;

  std::ifstream in(bert / "reference.json");
  const nlohmann::json c = nlohmann::json::parse(in).at("cases").at(1);
  const std::string text = c.at("text");
  for (const auto& [model, key] :
       {std::pair<std::string, const char*>{"bert", "mean_pooled_normalized"},
        {"bert-cls", "cls_normalized"}}) {
    r = sh(cli + "run " + model + " '" + text + "'");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    ASSERT_TRUE(r.out.starts_with("[") && r.out.ends_with("]\n")) << r.out;
    EXPECT_EQ(r.out.find(' '), std::string::npos) << r.out;
    const std::vector<float> got = nlohmann::json::parse(r.out);
    const std::vector<float> want = c.at(key);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-4f) << model << i;
    const Result local = sh("CORRAL_NO_SERVER=1 CORRAL_MODELS='" + server_store.str() + "' '" +
                            CORRAL_BINARY + "' run " + model + " -t 1 '" + text + "'");
    ASSERT_EQ(local.exit_code, 0) << local.out;
    EXPECT_EQ(nlohmann::json::parse(local.out).size(), want.size());
    const std::vector<float> local_v = nlohmann::json::parse(local.out);
    for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(local_v[i], got[i], 1e-6f) << model << i;
  }
  r = sh(cli + "run bert --dimensions 8 '" + text + "'");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(nlohmann::json::parse(r.out).size(), 8u);
  r = sh(cli + "run bert");  // stdin is /dev/null: no text
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.out, "embedding models require input text")) << r.out;
}

}  // namespace
}  // namespace corral::testing
