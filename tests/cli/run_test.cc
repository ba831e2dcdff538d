// `corral run` and `corral debug tokenize|detokenize|logits`, run as the built binary on
// Karpathy's stories260K; the interactive session is driven through a pseudo-terminal.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cli/run_corral.h"
#include "cli/terminal.h"
#include "ml/gguf/reader.h"
#include "ml/gguf/writer.h"
#include "store/temp_store.h"
#include "testdata.h"
#include "tokenizer/tokenizer.h"

namespace corral {
namespace {

using testing::run_corral;
using testing::store_with;
using testing::Terminal;

std::string fixture(const std::string& name) {
  return corral::testing::testdata_path("tinystories260k/" + name);
}

std::string model() { return fixture("stories260K-f32.gguf"); }

// The model path, quoted for the shell, and one thread (the test machine is shared).
std::string model_arg() { return "'" + model() + "' -t 1"; }

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<int32_t> parse_ids(const std::string& text) {
  std::istringstream in(text);
  std::vector<int32_t> ids;
  for (int32_t v; in >> v;) ids.push_back(v);
  return ids;
}

// The line after `label:` in prompt_once.ids.txt.
std::vector<int32_t> prompt_once(const std::string& label) {
  std::istringstream in(read_text(fixture("stories260K.prompt_once.ids.txt")));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(label + ":", 0) == 0) return parse_ids(line.substr(label.size() + 1));
  }
  ADD_FAILURE() << "no '" << label << ":' line in prompt_once.ids.txt";
  return {};
}

tokenizer::Tokenizer stories_tokenizer() {
  const auto file = ml::gguf::File::open(model());
  return tokenizer::Tokenizer::from_gguf(file.metadata());
}

// Stdout of a shell command line, and its exit status.
std::pair<std::string, int> shell(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return {out, -1};
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  const int status = pclose(p);
  return {out, WIFEXITED(status) ? WEXITSTATUS(status) : -1};
}

// What `run` prints for a generated text: the text, then a newline unless it ends with one.
std::string as_printed(std::string text) {
  if (!text.empty() && text.back() != '\n') text += '\n';
  return text;
}

// llama2.c's test text is what it prints over 200 positions: the token sampled at each, i.e.
// 200 generated tokens after BOS.
TEST(RunCli, GreedyFromBosPrintsLlama2csTextExactly) {
  const auto r =
      run_corral("run " + model_arg() + " --option temperature=0 --option num_predict=200 ''",
                 /*merge_stderr=*/false);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, as_printed(read_text(fixture("stories260K.greedy_bos.expected.txt"))));
}

TEST(RunCli, GreedyFromBosPrintsTheDecodedIdsOfLlama2csRun) {
  const auto r =
      run_corral("run " + model_arg() + " --option temperature=0 --option num_predict=199 ''",
                 /*merge_stderr=*/false);
  EXPECT_EQ(r.exit_code, 0);
  const std::vector<int32_t> ids = parse_ids(read_text(fixture("stories260K.greedy_bos.ids.txt")));
  ASSERT_EQ(ids.size(), 200u);
  const std::vector<int32_t> generated(ids.begin() + 1, ids.end());
  EXPECT_EQ(r.out, as_printed(stories_tokenizer().decode(generated)));
}

TEST(RunCli, OnceUponATimeContinuesAsTheGreedyIds) {
  const auto r = run_corral("run " + model_arg() +
                                " --option temperature=0 --option num_predict=64 "
                                "'Once upon a time'",
                            /*merge_stderr=*/false);
  EXPECT_EQ(r.exit_code, 0);
  std::vector<int32_t> all = prompt_once("prompt");
  const std::vector<int32_t> greedy = prompt_once("greedy");
  ASSERT_EQ(greedy.size(), 64u);
  all.insert(all.end(), greedy.begin(), greedy.end());
  const std::string full = stories_tokenizer().decode(all, /*skip_special=*/true);
  ASSERT_EQ(full.rfind("Once upon a time", 0), 0u) << full;
  EXPECT_EQ(r.out, as_printed(full.substr(16)));
}

TEST(RunCli, PromptWordsAreJoinedAndStdinIsThePromptWithoutThem) {
  const std::string opts = " --option temperature=0 --option num_predict=20";
  const auto words = run_corral("run " + model_arg() + opts + " Once upon a time", false);
  const auto quoted = run_corral("run " + model_arg() + opts + " 'Once upon a time'", false);
  const auto piped = run_corral("run " + model_arg() + opts + " < /dev/null", false);
  EXPECT_EQ(words.exit_code, 0);
  EXPECT_EQ(words.out, quoted.out);
  // Empty stdin is an empty prompt: BOS only, the start of llama2.c's story.
  EXPECT_EQ(piped.exit_code, 0);
  EXPECT_EQ(piped.out.rfind("Once upon a time, there was a little girl named Lily.", 0), 0u)
      << piped.out;
  const std::string cmd =
      "printf 'Once upon a time' | '" CORRAL_BINARY "' run " + model_arg() + opts + " 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  EXPECT_EQ(pclose(p), 0);
  EXPECT_EQ(out, quoted.out);
}

TEST(RunCli, SameSeedGivesTheSameTextTwice) {
  const std::string args =
      "run " + model_arg() + " --option temperature=0.8 --option num_predict=60 --seed 42 ''";
  const auto a = run_corral(args, false);
  const auto b = run_corral(args, false);
  EXPECT_EQ(a.exit_code, 0);
  EXPECT_GT(a.out.size(), 60u);
  EXPECT_EQ(a.out, b.out);
  const auto other = run_corral("run " + model_arg() +
                                    " --option temperature=0.8 --option num_predict=60 "
                                    "--option seed=7 ''",
                                false);
  EXPECT_NE(other.out, a.out);
}

TEST(RunCli, StopOptionEndsTheOutputBeforeTheStopString) {
  const auto r =
      run_corral("run " + model_arg() + " --option temperature=0 --option stop=Lily ''", false);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "Once upon a time, there was a little girl named \n");
}

TEST(RunCli, VerbosePrintsOllamasTimingsToStderr) {
  // Stderr alone: the timings.
  const auto [err, status] = shell("'" CORRAL_BINARY "' run " + model_arg() +
                                   " --verbose --option temperature=0 --option num_predict=5 "
                                   "'Once upon a time' 2>&1 >/dev/null");
  EXPECT_EQ(status, 0);
  for (const char* line :
       {"total duration:       ", "load duration:        ", "prompt eval count:    5 token(s)\n",
        "prompt eval duration: ", "prompt eval rate:     ", "eval count:           5 token(s)\n",
        "eval duration:        ", "eval rate:            "}) {
    EXPECT_NE(err.find(line), std::string::npos) << line << " in:\n" << err;
  }
}

TEST(RunCli, BadInputsExitNonZeroWithClearMessages) {
  auto r = run_corral("run /no/such/model.gguf hello");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out.rfind("Error: ", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("/no/such/model.gguf"), std::string::npos) << r.out;

  r = run_corral("run '" + fixture("stories260K.greedy_bos.expected.txt") + "' hello");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("not a GGUF file"), std::string::npos) << r.out;

  // A valid GGUF file of an architecture nobody implements.
  const std::string path = ::testing::TempDir() + "/corral_run_unknown_arch.gguf";
  ml::gguf::Writer w;
  w.metadata().set("general.architecture", ml::gguf::Value(std::string("mamba9")));
  const std::vector<float> zeros(32, 0.0f);
  w.add_tensor("token_embd.weight", ml::DType::F32, {32},
               {reinterpret_cast<const uint8_t*>(zeros.data()), zeros.size() * sizeof(float)});
  w.write(path);
  r = run_corral("run '" + path + "' hello");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out.rfind("Error: ", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("mamba9"), std::string::npos) << r.out;

  r = run_corral("run " + model_arg() + " --option no_such_option=1 hello");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("no_such_option"), std::string::npos) << r.out;

  r = run_corral("run " + model_arg() + " --option temperature=warm hello");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("temperature"), std::string::npos) << r.out;

  r = run_corral("run");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("model"), std::string::npos) << r.out;
}

// A path names a file or folder, never a model name: a folder holding one GGUF runs it, a
// Hugging Face folder is explained (create a model first), a missing path is said to be one.
TEST(RunCli, FoldersAndMissingPathsAreNamedAsSuch) {
  const testing::TempDir dir;
  std::filesystem::create_directories(dir.path() / "one");
  std::filesystem::copy_file(model(), dir.path() / "one" / "m.gguf");
  auto r = run_corral("run '" + dir.str() +
                      "/one' -t 1 --option temperature=0 "
                      "--option num_predict=6 'Once upon a time'");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out, run_corral("run " + model_arg() +
                              " --option temperature=0 --option num_predict=6 'Once upon a time'")
                       .out);
  r = run_corral("run '" + testing::testdata_path("reference/tiny-qwen3") + "' hi");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("is a Hugging Face model folder; make a model of it first"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("corral create my-model -f Modelfile"), std::string::npos) << r.out;
  r = run_corral("run '" + dir.str() + "/nothere' hi");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("nothere: no such file or folder"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("invalid model name"), std::string::npos) << r.out;
}

TEST(DebugTokenizeCli, EncodesOnceUponATimeAsSentencePieceDoes) {
  auto r = run_corral("debug tokenize '" + model() + "' 'Once upon a time'", false);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "1 403 407 261 378\n");

  r = run_corral("debug tokenize '" + model() + "' 'Once upon a time' --no-special", false);
  EXPECT_EQ(r.out, "403 407 261 378\n");

  r = run_corral("debug tokenize '" + model() + "' 'Once upon a time' --json", false);
  const auto doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["ids"], nlohmann::json({1, 403, 407, 261, 378}));
  EXPECT_EQ(doc["tokens"][1], "\xE2\x96\x81Once");
}

TEST(DebugTokenizeCli, HuggingFaceFolderAndSentencePieceModelGiveTheGgufIds) {
  const std::string hf = corral::testing::testdata_path("reference/stories260K");
  auto r = run_corral("debug tokenize '" + hf + "' 'Once upon a time'", false);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "1 403 407 261 378\n");
  r = run_corral("debug tokenize '" + fixture("tok512.model") + "' 'Once upon a time'", false);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "1 403 407 261 378\n");
}

TEST(DebugTokenizeCli, DetokenizeTakesCommaOrSpaceSeparatedIds) {
  auto r = run_corral("debug detokenize '" + model() + "' 403,407,261,378", false);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "Once upon a time\n");
  r = run_corral("debug detokenize '" + model() + "' '1 403 407' 261, 378 --skip-special", false);
  EXPECT_EQ(r.out, "Once upon a time\n");
  r = run_corral("debug detokenize '" + model() + "' 403,407 --json", false);
  EXPECT_EQ(nlohmann::json::parse(r.out)["text"], "Once upon");

  r = run_corral("debug detokenize '" + model() + "' 403,99999");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("99999"), std::string::npos) << r.out;
  r = run_corral("debug detokenize '" + model() + "' 403,abc");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("abc"), std::string::npos) << r.out;
  r = run_corral("debug tokenize /no/such/folder hello");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("/no/such/folder"), std::string::npos) << r.out;
}

TEST(DebugLogitsCli, JsonLogitsMatchLlama2cAndTextShowsTheTopToken) {
  const std::vector<int32_t> ids = parse_ids(read_text(fixture("stories260K.greedy_bos.ids.txt")));
  std::string list;
  for (int i = 0; i < 16; ++i) list += (i ? "," : "") + std::to_string(ids[i]);
  auto r = run_corral("debug logits " + model_arg() + " --tokens " + list + " --json", false);
  ASSERT_EQ(r.exit_code, 0);
  const auto doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["logits_shape"], nlohmann::json({16, 512}));
  const std::string bytes = read_text(fixture("stories260K.greedy_bos.logits16.f32"));
  ASSERT_EQ(bytes.size(), 16u * 512 * 4);
  const auto* want = reinterpret_cast<const float*>(bytes.data());
  float worst = 0;
  for (size_t p = 0; p < 16; ++p) {
    for (size_t v = 0; v < 512; ++v) {
      worst = std::max(worst, std::abs(doc["logits"][p][v].get<float>() - want[p * 512 + v]));
    }
  }
  EXPECT_LE(worst, 1e-4f);

  r = run_corral("debug logits " + model_arg() + " --tokens 1,403", false);
  EXPECT_EQ(r.exit_code, 0);
  // The greedy id after BOS (403) tops position 0; after "▁Once" comes 407.
  EXPECT_NE(r.out.find("pos 0 token 1 \"<s>\":  403="), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("pos 1 token 403 \" Once\":  407="), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("checksum: "), std::string::npos) << r.out;

  r = run_corral("debug logits " + model_arg() + " --tokens 1,512");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("512"), std::string::npos) << r.out;
}

TEST(RunTerminal, TypedPromptStreamsCtrlCStopsItAndByeExits) {
  Terminal t({"run", model(), "-t", "1", "--option", "temperature=0"});
  ASSERT_TRUE(t.started());
  ASSERT_TRUE(t.wait_for(">>> ")) << t.output();
  t.type("Once upon a time\r");
  // Unlimited greedy generation: only Ctrl+C ends it.
  ASSERT_TRUE(t.wait_for(", there was a little girl named Lily.")) << t.output();
  t.type("\x03");
  ASSERT_TRUE(t.wait_for(">>> ")) << t.output();
  t.type("/bye\r");
  EXPECT_EQ(t.wait_exit(), 0) << t.output();
}

TEST(RunTerminal, SecondCtrlCAtAnEmptyPromptExits) {
  Terminal t({"run", model(), "-t", "1"});
  ASSERT_TRUE(t.started());
  ASSERT_TRUE(t.wait_for(">>> ")) << t.output();
  t.type("\x03");
  ASSERT_TRUE(t.wait_for("Use Ctrl + d or /bye to exit.")) << t.output();
  ASSERT_TRUE(t.wait_for(">>> ")) << t.output();
  t.type("\x03");
  EXPECT_EQ(t.wait_exit(), 0) << t.output();
}

TEST(RunTerminal, CommandsAndMultiLineInput) {
  Terminal t({"run", model(), "-t", "1", "--option", "temperature=0"});
  ASSERT_TRUE(t.started());
  ASSERT_TRUE(t.wait_for(">>> ")) << t.output();
  ASSERT_TRUE(t.command("/?\r", "/set parameter K V")) << t.output();
  ASSERT_TRUE(t.command("/show info\r", "architecture        llama")) << t.output();
  ASSERT_TRUE(t.command("/set parameter num_predict 6\r", "Set parameter 'num_predict' to '6'"))
      << t.output();
  ASSERT_TRUE(t.command("/nonsense\r", "Unknown command '/nonsense'")) << t.output();
  t.type("\"\"\"Once upon\r");
  ASSERT_TRUE(t.wait_for("... ")) << t.output();
  // The message "Once upon\na time": six tokens, then the prompt again without a Ctrl+C.
  ASSERT_TRUE(t.command("a time\"\"\"\r", "\r\n\r\n")) << t.output();
  // Six tokens of the greedy continuation (the last is " g").
  ASSERT_TRUE(t.command("Once upon a time\r", ", there was a little g\r\n")) << t.output();
  t.type("\x04");
  EXPECT_EQ(t.wait_exit(), 0) << t.output();
}

// A model that always thinks (tests/clients/thinking_model.mjs writes its checkpoint), made in a
// fresh store: `/set think` and `/set nothink` change what the next answer shows.
TEST(RunTerminal, SetThinkAndNothinkChangeTheNextAnswer) {
  if (std::system("node --version > /dev/null 2>&1") != 0) GTEST_SKIP() << "node is not installed";
  const testing::TempDir dir;
  const auto [wrote, out] = testing::sh(
      "node '" CORRAL_SOURCE_DIR "/tests/clients/thinking_model.mjs' '" + dir.str() + "/hf'");
  ASSERT_EQ(wrote, 0) << out;
  const std::vector<std::string> env = store_with(dir, "think", "FROM " + dir.str() + "/hf\n");
  ASSERT_FALSE(env.empty());

  Terminal t({"run", "think", "-t", "1"}, env);
  ASSERT_TRUE(t.started());
  ASSERT_TRUE(t.wait_for(">>> ")) << t.output();
  // Thinking in grey after a bold "Thinking...", then the answer in the default colour.
  t.type("Say hello\r");
  ASSERT_TRUE(t.wait_for("\x1b[38;5;245m\x1b[1mThinking...\r\n\x1b[0m\x1b[38;5;245mHmm.\r\n"))
      << t.output();
  ASSERT_TRUE(t.wait_for("...done thinking.\r\n\r\n\x1b[0mHello!")) << t.output();
  ASSERT_TRUE(t.wait_for(">>> ")) << t.output();

  t.type("/set nothink\r");
  ASSERT_TRUE(t.wait_for("Set 'nothink' mode.")) << t.output();
  ASSERT_TRUE(t.wait_for(">>> ")) << t.output();
  const size_t before = t.output().size();
  t.type("Say hello\r");
  ASSERT_TRUE(t.wait_for("Hello!")) << t.output();
  ASSERT_TRUE(t.wait_for(">>> ")) << t.output();
  EXPECT_EQ(t.output().find("Thinking...", before), std::string::npos) << t.output();

  t.type("/set think low\r");
  ASSERT_TRUE(t.wait_for("Set 'think' mode to 'low'.")) << t.output();
  ASSERT_TRUE(t.wait_for(">>> ")) << t.output();
  t.type("Say hello\r");
  ASSERT_TRUE(t.wait_for("Thinking...")) << t.output();
  ASSERT_TRUE(t.wait_for("Hello!")) << t.output();
  ASSERT_TRUE(t.wait_for(">>> ")) << t.output();
  t.type("/set think loud\r");
  ASSERT_TRUE(t.wait_for("Invalid think value 'loud'")) << t.output();
  ASSERT_TRUE(t.wait_for(">>> ")) << t.output();
  t.type("/bye\r");
  EXPECT_EQ(t.wait_exit(), 0) << t.output();
}

// The REPL's /show commands, as `ollama run` answers them, with what the session set over the
// model's own settings.
TEST(RunTerminal, ShowCommandsAnswerFromTheModelAndTheSession) {
  const testing::TempDir dir;
  const std::vector<std::string> env = store_with(dir, "story",
                                                  "FROM " + model() +
                                                      "\nPARAMETER temperature 0\nSYSTEM Lily\n"
                                                      "LICENSE MIT\n");
  ASSERT_FALSE(env.empty());
  Terminal t({"run", "story", "-t", "1"}, env);
  ASSERT_TRUE(t.started());
  ASSERT_TRUE(t.wait_for(">>> ")) << t.output();
  EXPECT_TRUE(t.command("/show system\r", "Lily\r\n")) << t.output();
  EXPECT_TRUE(t.command("/show license\r", "MIT\r\n")) << t.output();
  EXPECT_TRUE(t.command("/show parameters\r",
                        "Model defined parameters:\r\n  temperature                    0.0"))
      << t.output();
  EXPECT_TRUE(t.command("/show template\r", "No prompt template was specified for this model."))
      << t.output();
  EXPECT_TRUE(t.command("/show modelfile\r", "FROM ")) << t.output();
  EXPECT_TRUE(t.command("/set parameter num_predict 4\r", "Set parameter")) << t.output();
  EXPECT_TRUE(t.command("/show parameters\r", "User defined parameters:\r\n  num_predict"))
      << t.output();
  EXPECT_TRUE(t.command("/set system Be brief\r", "Set system message.")) << t.output();
  EXPECT_TRUE(t.command("/show system\r", "Be brief\r\n")) << t.output();
  EXPECT_TRUE(t.command("/show info\r", "  System\r\n    Be brief")) << t.output();
  EXPECT_TRUE(t.command("/show nonsense\r", "Unknown command '/show nonsense'")) << t.output();
  t.type("/bye\r");
  EXPECT_EQ(t.wait_exit(), 0) << t.output();
}

// Input lines are saved to ~/.corral/history: the next session recalls them with Up, and
// /set nohistory stops the saving.
TEST(RunTerminal, HistoryPersistsAcrossSessions) {
  const testing::TempDir home;
  const std::string env = "HOME=" + home.str();
  {
    Terminal t({"run", model(), "-t", "1"}, {env});
    ASSERT_TRUE(t.started());
    ASSERT_TRUE(t.wait_for(">>> ")) << t.output();
    t.type("/show license\r");
    ASSERT_TRUE(t.wait_for("No license was specified for this model.")) << t.output();
    ASSERT_TRUE(t.wait_for(">>> ")) << t.output();
    t.type("/set nohistory\r");
    ASSERT_TRUE(t.wait_for("Set 'nohistory' mode.")) << t.output();
    ASSERT_TRUE(t.wait_for(">>> ")) << t.output();
    t.type("/show template\r");
    ASSERT_TRUE(t.wait_for(">>> ")) << t.output();
    t.type("/bye\r");
    EXPECT_EQ(t.wait_exit(), 0) << t.output();
  }
  const std::string saved = testing::read_text(home.path() / ".corral" / "history");
  // libedit's format: a header line, then each line with spaces escaped.
  EXPECT_NE(saved.find("/show\\040license"), std::string::npos) << saved;
  EXPECT_EQ(saved.find("template"), std::string::npos) << saved;
  Terminal t({"run", model(), "-t", "1"}, {env});
  ASSERT_TRUE(t.started());
  ASSERT_TRUE(t.wait_for(">>> ")) << t.output();
  t.type("\x1b[A");  // Up: the last line saved (/set nohistory), then the one before
  ASSERT_TRUE(t.wait_for("/set nohistory")) << t.output();
  t.type("\x1b[A\r");  // (libedit redraws only what changed: the answer tells the line)
  ASSERT_TRUE(t.wait_for("No license was specified for this model.")) << t.output();
  ASSERT_TRUE(t.wait_for(">>> ")) << t.output();
  t.type("/bye\r");
  EXPECT_EQ(t.wait_exit(), 0) << t.output();
}

// A model's MESSAGEs are the conversation the session continues: shown when it starts.
TEST(RunTerminal, ModelMessagesAreShownWhenTheSessionStarts) {
  const testing::TempDir dir;
  const std::vector<std::string> env = store_with(dir, "story",
                                                  "FROM " + model() +
                                                      "\nMESSAGE user Tell me a story\n"
                                                      "MESSAGE assistant Once upon a time\n");
  ASSERT_FALSE(env.empty());
  Terminal t({"run", "story", "-t", "1"}, env);
  ASSERT_TRUE(t.started());
  ASSERT_TRUE(t.wait_for(">>> Tell me a story\r\nOnce upon a time\r\n\r\n")) << t.output();
  ASSERT_TRUE(t.wait_for(">>> ")) << t.output();
  t.type("/bye\r");
  EXPECT_EQ(t.wait_exit(), 0) << t.output();
}

}  // namespace
}  // namespace corral
