// Memory before loading, driving build/corral as a user does (issue 18): a context larger than
// memory (CORRAL_MAX_MEMORY here) is lowered to what fits and said in one line, or refused naming
// the sizes, whether the model runs in this process (`corral run FILE`, CORRAL_NO_SERVER=1, an
// embedding model, `corral bench`) or through `corral serve` (then `corral ps` shows the context
// in use).
//
// stories260K was trained for 512 tokens, less than the smallest context a load is lowered to
// (2048): the tests run a copy whose metadata says it was trained for kTrained.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "cli/context_note.h"
#include "ml/gguf/reader.h"
#include "ml/gguf/writer.h"
#include "runner/engine.h"
#include "runner/runner.h"
#include "serve_process.h"
#include "store/temp_store.h"
#include "testdata.h"

namespace corral::testing {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kTrained = 65536;
constexpr int64_t kFits = 8192;  // the context CORRAL_MAX_MEMORY leaves room for

// stories260K-f32 with llama.context_length kTrained.
fs::path write_long_context_stories(const fs::path& dir) {
  const ml::gguf::File in =
      ml::gguf::File::open(testdata_path("tinystories260k/stories260K-f32.gguf"));
  ml::gguf::Writer w;
  for (const auto& [key, value] : in.metadata()) {
    if (key != "general.alignment") w.metadata().set(key, value);
  }
  w.metadata().set("llama.context_length", static_cast<uint32_t>(kTrained));
  for (const ml::gguf::TensorInfo& t : in.tensors()) {
    w.add_tensor(t.name, t.dtype, t.shape(), t.bytes());
  }
  const fs::path out = dir / "stories-long.gguf";
  w.write(out.string());
  return out;
}

// The words of the line of `text` that holds `part`.
std::vector<std::string> words_of_line_with(const std::string& text, const std::string& part) {
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (!contains(line, part)) continue;
    std::istringstream in(line);
    std::vector<std::string> words;
    for (std::string w; in >> w;) words.push_back(w);
    return words;
  }
  return {};
}

std::string binary() { return std::string("'") + CORRAL_BINARY + "' "; }

// In this process, the estimate is the Engine's for one sequence.
TEST(RunMemory, InProcessAContextTooLargeIsLoweredToWhatFitsAndSaid) {
  TempDir work, store;
  const fs::path gguf = write_long_context_stories(work.path());
  const runner::MemoryNeeds needs =
      runner::Engine(gguf.string(), {.n_threads = 1}).memory_needs(kTrained, 512);
  ASSERT_EQ(needs.num_parallel, 1);
  const uint64_t limit = needs.bytes(kFits);
  const std::string said = "num_ctx lowered to " + std::to_string(kFits) + " to fit in " +
                           runner::human_bytes(limit) + " left under CORRAL_MAX_MEMORY (a " +
                           std::to_string(kTrained) + "-token context needs " +
                           runner::human_bytes(needs.bytes(kTrained)) + ")\n";
  const std::string env =
      "CORRAL_MODELS='" + store.str() + "' CORRAL_MAX_MEMORY=" + std::to_string(limit) + " ";
  const std::string args = " --option num_ctx=" + std::to_string(kTrained) +
                           " --option num_predict=4 --option temperature=0 -t 1 'Once upon a time'";

  // A GGUF file named on the command line.
  Result r = shell(env + binary() + "run '" + gguf.string() + "'" + args);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(contains(r.out, gguf.string() + ": " + said)) << r.out;

  // A model of the store with CORRAL_NO_SERVER=1: the same admission, the user's name.
  write_text(work.path() / "Modelfile", "FROM " + gguf.string() + "\n");
  r = shell("cd '" + work.str() + "' && CORRAL_NO_SERVER=1 " + env + binary() + "create long");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = shell("CORRAL_NO_SERVER=1 " + env + binary() + "run long" + args);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(contains(r.out, "long: " + said)) << r.out;
  // The words after the line are the reply: the model ran with the lowered context.
  EXPECT_GT(r.out.size(), r.out.find(said) + said.size()) << r.out;

  // A context that fits is not lowered, and nothing is said.
  r = shell("CORRAL_NO_SERVER=1 " + env + binary() + "run long --option num_ctx=" +
            std::to_string(kFits) + " --option num_predict=4 -t 1 'Once upon a time'");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_FALSE(contains(r.out, "num_ctx lowered")) << r.out;
}

TEST(RunMemory, InProcessAModelThatDoesNotFitEvenTheSmallestContextIsRefused) {
  TempDir work, store;
  const fs::path gguf = write_long_context_stories(work.path());
  const runner::MemoryNeeds needs =
      runner::Engine(gguf.string(), {.n_threads = 1}).memory_needs(kTrained, 512);
  const uint64_t limit = needs.bytes(2048) - 1;
  const std::string env =
      "CORRAL_MODELS='" + store.str() + "' CORRAL_MAX_MEMORY=" + std::to_string(limit) + " ";
  const Result r = shell(env + binary() + "run '" + gguf.string() + "' --option num_ctx=" +
                         std::to_string(kTrained) + " -t 1 'Once upon a time'");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_EQ(r.out, "Error: " + gguf.string() + " needs " +
                       runner::human_bytes(needs.bytes(kTrained)) + " for a " +
                       std::to_string(kTrained) + "-token context but " +
                       runner::human_bytes(limit) +
                       " is left under CORRAL_MAX_MEMORY; even a 2048-token context needs " +
                       runner::human_bytes(needs.bytes(2048)) + "\n");

  // `corral bench` needs its whole context: refused the same way rather than lowered.
  const Result bench = shell("CORRAL_MODELS='" + store.str() + "' CORRAL_MAX_MEMORY=1000 " +
                             binary() + "bench '" + gguf.string() + "' -p 16 -n 4 -r 1 -t 1");
  EXPECT_NE(bench.exit_code, 0) << bench.out;
  EXPECT_TRUE(contains(bench.out, "Error: " + gguf.string() + " needs ")) << bench.out;
  EXPECT_TRUE(contains(bench.out, "for a 16-token context but 1.0 KB is left under")) << bench.out;
  EXPECT_FALSE(contains(bench.out, "t/s")) << bench.out;
}

TEST(RunMemory, InProcessAnEmbeddingModelThatDoesNotFitIsRefused) {
  TempDir work, store;
  const std::string env = "CORRAL_NO_SERVER=1 CORRAL_MODELS='" + store.str() + "' ";
  write_text(work.path() / "Modelfile", "FROM " + testdata_path("reference/tiny-bert") + "\n");
  Result r = shell("cd '" + work.str() + "' && " + env + binary() + "create bert -q F32");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = shell(env + "CORRAL_MAX_MEMORY=1000 " + binary() + "run bert hello");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_TRUE(r.out.starts_with("Error: bert needs ")) << r.out;
  EXPECT_TRUE(contains(r.out, " but 1.0 KB is left under CORRAL_MAX_MEMORY")) << r.out;
  r = shell(env + binary() + "run bert hello");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(r.out.starts_with("[")) << r.out;
}

// What `corral run` compares: the num_ctx asked (its option, else the model's PARAMETER), capped
// at the trained context, with /api/ps's context_length for that model.
TEST(RunMemory, TheServersContextIsComparedWithWhatWasAskedUpToTheTrainedContext) {
  const nlohmann::json show = {
      {"parameters", "num_ctx                        16384\ntemperature                    0"},
      {"model_info", {{"general.architecture", "llama"}, {"llama.context_length", 32768}}}};
  const auto ps = [](int64_t context) {
    return nlohmann::json{
        {"models",
         {{{"name", "other:latest"}, {"context_length", 2048}},
          {{"name", "stories:latest"}, {"context_length", context}, {"size", 12'300'000}}}}};
  };
  const nlohmann::json none = nlohmann::json::object();
  EXPECT_EQ(cli::lowered_context_note("stories", show, none, ps(8192)),
            "num_ctx lowered to 8192 by the server to fit in its memory (16384 was asked; the "
            "model takes 12.3 MB)");
  EXPECT_EQ(cli::lowered_context_note("stories", show, none, ps(16384)), std::nullopt);
  // More than the model was trained for is capped there, as the runner caps it: not lowered.
  EXPECT_EQ(cli::lowered_context_note("stories", show, {{"num_ctx", 100000}}, ps(32768)),
            std::nullopt);
  EXPECT_TRUE(cli::lowered_context_note("Stories:latest", show, {{"num_ctx", 100000}}, ps(4096)));
  // Nothing asked (the server's default is not known here), or the model no longer loaded.
  EXPECT_EQ(cli::lowered_context_note("stories", {}, none, ps(2048)), std::nullopt);
  EXPECT_EQ(cli::lowered_context_note("missing", show, none, ps(2048)), std::nullopt);
}

// Through the server, the estimate is the scheduler's (CORRAL_NUM_PARALLEL sequences); `corral
// run` tells what the server did, `corral ps` shows it, and a refusal is the server's error.
TEST(RunMemory, ThroughTheServerALoweredContextIsSaidAndShownByPsAndNoRoomIsRefused) {
  TempDir server_store, client_store, work;
  const fs::path gguf = write_long_context_stories(work.path());
  runner::MemoryNeeds needs;
  {
    // The server's load (4 sequences, its batch), stopped before the cache is allocated.
    runner::RunnerOptions o{.num_ctx = kTrained, .num_parallel = 4, .n_threads = 1};
    o.fit_memory = [&needs](const runner::MemoryNeeds& n) {
      needs = n;
      return int64_t{256};
    };
    runner::Runner probe(gguf.string(), o);
  }
  ASSERT_EQ(needs.num_parallel, 4);
  const uint64_t limit = needs.bytes(kFits);
  std::string cli;
  {
    ServeProcess serve(server_store.path(), {{"CORRAL_MAX_MEMORY", std::to_string(limit)},
                                             {"CORRAL_NUM_PARALLEL", "4"}});
    ASSERT_TRUE(wait_for_server(serve.host(), std::chrono::seconds(20)));
    cli = "CORRAL_NO_SERVER= CORRAL_HOST=" + serve.host() + " CORRAL_MODELS='" +
          client_store.str() + "' " + binary();
    write_text(work.path() / "Modelfile",
               "FROM " + gguf.string() + "\nPARAMETER temperature 0\nPARAMETER num_thread 1\n");
    Result r = shell("cd '" + work.str() + "' && " + cli + "create stories");
    ASSERT_EQ(r.exit_code, 0) << r.out;

    r = shell(cli + "run stories --option num_ctx=" + std::to_string(kTrained) +
              " --option num_predict=4 'Once upon a time'");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_TRUE(contains(r.out, "\nnum_ctx lowered to " + std::to_string(kFits) +
                                    " by the server to fit in its memory (" +
                                    std::to_string(kTrained) + " was asked; the model takes " +
                                    runner::human_bytes(limit) + ")\n"))
        << r.out;
    r = shell(cli + "ps");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    const std::vector<std::string> header = words_of_line_with(r.out, "CONTEXT");
    const std::vector<std::string> row = words_of_line_with(r.out, "stories:latest");
    ASSERT_FALSE(row.empty()) << r.out;
    // CONTEXT is the number after the PROCESSOR column ("100% CPU").
    const auto cpu = std::find(row.begin(), row.end(), "CPU");
    ASSERT_NE(cpu, row.end()) << r.out;
    ASSERT_NE(cpu + 1, row.end()) << r.out;
    EXPECT_EQ(*(cpu + 1), std::to_string(kFits)) << r.out;
    EXPECT_NE(std::find(header.begin(), header.end(), "CONTEXT"), header.end()) << r.out;
    EXPECT_TRUE(contains(read_text(server_store.path() / "serve.log"),
                         "stories:latest: num_ctx lowered to " + std::to_string(kFits)));

    // A context the server gives whole is not remarked on.
    r = shell(cli + "run stories --option num_ctx=" + std::to_string(kFits) +
              " --option num_predict=4 'Once upon a time'");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_FALSE(contains(r.out, "num_ctx lowered")) << r.out;
  }

  // A server with less room than the smallest context: `corral run` says why and fails.
  ServeProcess tight(server_store.path(), {{"CORRAL_MAX_MEMORY", "1000"}});
  ASSERT_TRUE(wait_for_server(tight.host(), std::chrono::seconds(20)));
  cli = "CORRAL_NO_SERVER= CORRAL_HOST=" + tight.host() + " CORRAL_MODELS='" + client_store.str() +
        "' " + binary();
  const Result r = shell(cli + "run stories --option num_ctx=" + std::to_string(kTrained) +
                         " --option num_predict=4 'Once upon a time'");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_TRUE(r.out.starts_with("Error: stories:latest needs ")) << r.out;
  EXPECT_TRUE(contains(r.out,
                       " but 1.0 KB is left under CORRAL_MAX_MEMORY; even a 2048-token "
                       "context needs "))
      << r.out;
}

}  // namespace
}  // namespace corral::testing
