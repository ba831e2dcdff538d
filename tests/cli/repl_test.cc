// The interactive session and the terminal output of `corral run`, driven through a
// pseudo-terminal as a user drives it: pasted lines, the placeholder, word wrap, the spinner,
// /set format, /load and /save.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "cli/run_corral.h"
#include "cli/terminal.h"
#include "store/temp_store.h"
#include "testdata.h"

namespace corral {
namespace {

using testing::run_corral;
using testing::store_with;
using testing::Terminal;

std::string model() { return testing::testdata_path("tinystories260k/stories260K-f32.gguf"); }

std::vector<std::string> words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> w;
  for (std::string s; in >> s;) w.push_back(s);
  return w;
}

// The lines a terminal `width` columns wide shows after `out` (cursor moves back, erasing to
// the end of the line, carriage returns and its own wrap at the edge); other escape sequences
// are skipped. A UTF-8 character takes one column.
std::vector<std::string> screen(const std::string& out, size_t width) {
  std::vector<std::vector<std::string>> rows(1);
  size_t row = 0, col = 0;
  for (size_t i = 0; i < out.size();) {
    const unsigned char c = out[i];
    if (c == 0x1b && i + 1 < out.size() && out[i + 1] == '[') {
      size_t j = i + 2;
      while (j < out.size() && !(out[j] >= '@' && out[j] <= '~')) ++j;
      const std::string params = out.substr(i + 2, j - i - 2);
      const char final = j < out.size() ? out[j] : 0;
      const size_t n = params.empty() || params[0] == '?' ? 1 : std::stoul(params);
      if (final == 'D') col -= std::min(col, n);
      if (final == 'K' && rows[row].size() > col) rows[row].resize(col);
      i = j + 1;
      continue;
    }
    if (c == '\r' || c == '\n') {
      if (c == '\n' && ++row == rows.size()) rows.emplace_back();
      col = c == '\r' ? 0 : col;
      ++i;
      continue;
    }
    const size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : 4;
    if (col >= width) {  // the terminal's own wrap
      if (++row == rows.size()) rows.emplace_back();
      col = 0;
    }
    if (rows[row].size() <= col) rows[row].resize(col + 1, " ");
    rows[row][col++] = out.substr(i, len);
    i += len;
  }
  std::vector<std::string> lines;
  for (const auto& r : rows) {
    std::string line;
    for (const auto& cell : r) line += cell;
    lines.push_back(line);
  }
  return lines;
}

// A reply on a 40-column terminal is wrapped between words: no line is wider than 39 columns,
// no word is cut, and the words are those of the same run without a terminal.
TEST(RunTerminal, WordsWrapAtTheTerminalWidth) {
  const std::vector<std::string> args = {"run",      model(),          "-t",
                                         "1",        "--option",       "temperature=0",
                                         "--option", "num_predict=60", "Once upon a time"};
  Terminal t(args, {}, 40);
  ASSERT_TRUE(t.started());
  EXPECT_EQ(t.wait_exit(), 0) << t.output();
  const testing::CommandResult plain =
      run_corral("run '" + model() +
                     "' -t 1 --option temperature=0 --option num_predict=60 'Once upon a time'",
                 false);
  ASSERT_EQ(plain.exit_code, 0);
  std::string shown;
  const std::vector<std::string> lines = screen(t.output(), 40);
  for (const std::string& line : lines) {
    EXPECT_LE(line.size(), 39u) << line;
    shown += line + "\n";
  }
  EXPECT_GE(lines.size(), 4u) << shown;
  EXPECT_EQ(words(shown), words(plain.out)) << shown;

  // --nowordwrap: the text as the model wrote it (the terminal cuts words at its edge).
  Terminal raw(
      [&] {
        auto a = args;
        a.push_back("--nowordwrap");
        return a;
      }(),
      {}, 40);
  EXPECT_EQ(raw.wait_exit(), 0) << raw.output();
  EXPECT_NE(raw.output().find(", there was a little girl named Lily. She "), std::string::npos)
      << raw.output();
}

// A spinner on the terminal until the first text (then erased); none when the output is not a
// terminal.
TEST(RunTerminal, SpinnerUntilTheFirstText) {
  Terminal t({"run", model(), "-t", "1", "--option", "num_predict=4", "Once upon a time"});
  ASSERT_TRUE(t.started());
  ASSERT_TRUE(t.wait_for("\xE2\xA0\x8B\x1b[1D")) << t.output();  // "⠋", the cursor back on it
  ASSERT_TRUE(t.wait_for("\x1b[K")) << t.output();
  EXPECT_EQ(t.wait_exit(), 0) << t.output();
  const testing::CommandResult piped =
      run_corral("run '" + model() + "' -t 1 --option num_predict=4 'Once upon a time'");
  EXPECT_EQ(piped.exit_code, 0);
  EXPECT_EQ(piped.out.find("\xE2\xA0\x8B"), std::string::npos) << piped.out;
  EXPECT_EQ(piped.out.find("\x1b["), std::string::npos) << piped.out;
}

// Lines pasted at once (bracketed paste) are one message, sent by Enter; the grey placeholder
// stands at an empty prompt until a key is typed. /save keeps the exchange as MESSAGEs.
TEST(RunTerminal, PastedLinesAreOneMessageAndSaveKeepsIt) {
  const testing::TempDir dir;
  const std::vector<std::string> env =
      store_with(dir, "story", "FROM " + model() + "\nPARAMETER temperature 0\n");
  ASSERT_FALSE(env.empty());
  Terminal t({"run", "story", "-t", "1", "--option", "num_predict=6"}, env);
  ASSERT_TRUE(t.started());
  ASSERT_TRUE(t.wait_for(">>> \x1b[38;5;245mSend a message (/? for help)\x1b[0m")) << t.output();
  t.type("\x1b[200~Once upon\ra time\rthere was\x1b[201~");
  ASSERT_TRUE(t.wait_for("... ")) << t.output();
  ASSERT_TRUE(t.wait_for("there was")) << t.output();
  t.type("\r");
  ASSERT_TRUE(t.wait_for(">>> ")) << t.output();
  t.type("/save pasted\r");
  ASSERT_TRUE(t.wait_for("Created new model 'pasted'")) << t.output();
  t.type("/save\r");
  ASSERT_TRUE(t.wait_for("Usage:\r\n  /save <modelname>")) << t.output();
  t.type("/save bad:name:here\r");
  ASSERT_TRUE(t.wait_for("error: The model name 'bad:name:here' is invalid")) << t.output();
  t.type("/bye\r");
  EXPECT_EQ(t.wait_exit(), 0) << t.output();

  const std::string env_line = env[0] + " " + env[1] + " ";
  const auto [rc, modelfile] =
      testing::sh(env_line + "'" CORRAL_BINARY "' show pasted --modelfile");
  ASSERT_EQ(rc, 0) << modelfile;
  // One user message holding the three lines, one answer.
  EXPECT_NE(modelfile.find("MESSAGE user \"Once upon\na time\nthere was\""), std::string::npos)
      << modelfile;
  size_t users = 0, answers = 0;
  for (size_t at = 0; (at = modelfile.find("MESSAGE user", at)) != std::string::npos; ++at) ++users;
  for (size_t at = 0; (at = modelfile.find("MESSAGE assistant", at)) != std::string::npos; ++at)
    ++answers;
  EXPECT_EQ(users, 1u) << modelfile;
  EXPECT_EQ(answers, 1u) << modelfile;
  EXPECT_NE(modelfile.find("PARAMETER num_predict 6"), std::string::npos) << modelfile;
}

// /set format json: the next answers are JSON; /set noformat: free text again. --format json
// does the same for one prompt; another format is refused.
TEST(RunTerminal, FormatJsonConstrainsTheAnswer) {
  Terminal t(
      {"run", model(), "-t", "1", "--option", "temperature=0", "--option", "num_predict=12"});
  ASSERT_TRUE(t.started());
  ASSERT_TRUE(t.wait_for(">>> ")) << t.output();
  ASSERT_TRUE(t.command("/set format json\r", "Set format to 'json' mode.")) << t.output();
  ASSERT_TRUE(t.command("Once upon a time\r", "{ \"")) << t.output();
  t.type("/set format yaml\r");
  ASSERT_TRUE(t.wait_for("Invalid or missing format. For 'json' mode use '/set format json'"))
      << t.output();
  ASSERT_TRUE(t.command("/set noformat\r", "Disabled format.")) << t.output();
  ASSERT_TRUE(t.command("Once upon a time\r", ", there was")) << t.output();
  t.type("/bye\r");
  EXPECT_EQ(t.wait_exit(), 0) << t.output();

  testing::CommandResult r =
      run_corral("run '" + model() +
                     "' -t 1 --option temperature=0 --option num_predict=12 --format json "
                     "'Once upon a time'",
                 false);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(r.out.starts_with("{")) << r.out;
  r = run_corral("run '" + model() + "' -t 1 --format xml 'Once upon a time'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("invalid format 'xml'"), std::string::npos) << r.out;
}

// /load switches to another model of the store (its MESSAGEs shown, its SYSTEM in force); a
// model the store lacks leaves the session as it was.
TEST(RunTerminal, LoadSwitchesTheModel) {
  const testing::TempDir dir;
  std::vector<std::string> env =
      store_with(dir, "story", "FROM " + model() + "\nPARAMETER temperature 0\nSYSTEM First\n");
  ASSERT_FALSE(env.empty());
  env = store_with(dir, "other",
                   "FROM " + model() +
                       "\nSYSTEM Second\nMESSAGE user Hi there\n"
                       "MESSAGE assistant Hello Lily\n");
  ASSERT_FALSE(env.empty());
  Terminal t({"run", "story", "-t", "1"}, env);
  ASSERT_TRUE(t.started());
  ASSERT_TRUE(t.wait_for(">>> ")) << t.output();
  t.type("/load other\r");
  ASSERT_TRUE(t.wait_for("Loading model 'other'")) << t.output();
  ASSERT_TRUE(t.wait_for(">>> Hi there\r\nHello Lily\r\n")) << t.output();
  ASSERT_TRUE(t.wait_for(">>> ")) << t.output();
  t.type("/show system\r");
  ASSERT_TRUE(t.wait_for("Second\r\n")) << t.output();
  ASSERT_TRUE(t.command("/load missing\r", "Couldn't load model 'missing'")) << t.output();
  t.type("/show system\r");
  ASSERT_TRUE(t.wait_for("Second\r\n")) << t.output();
  t.type("/load\r");
  ASSERT_TRUE(t.wait_for("Usage:\r\n  /load <modelname>")) << t.output();
  t.type("/bye\r");
  EXPECT_EQ(t.wait_exit(), 0) << t.output();
}

}  // namespace
}  // namespace corral
