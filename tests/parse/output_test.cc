// Splitting model output into thinking, content and tool calls (parse/), as the server's routes
// and `corral run` both do.
#include "parse/output.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "parse/thinking.h"

namespace corral::parse {
namespace {

TEST(Thinking, ThinkingTagsComeFromTheTemplate) {
  const auto jinja = thinking_tags({tmpl::Syntax::kJinja, "{{ '<think>\\n' }}", "t"});
  ASSERT_TRUE(jinja);
  EXPECT_EQ(jinja->open, "<think>");
  EXPECT_EQ(jinja->close, "</think>");
  const auto go = thinking_tags(
      {tmpl::Syntax::kGo,
       "{{ range .Messages }}{{ if .Thinking }}<reason>{{ .Thinking }}</reason>{{ end }}{{ end }}",
       "t"});
  ASSERT_TRUE(go);
  EXPECT_EQ(go->open, "<reason>");
  EXPECT_EQ(go->close, "</reason>");
  EXPECT_FALSE(thinking_tags({tmpl::Syntax::kGo, "{{ .Prompt }}", "t"}));
}

// Parses `text` split into pieces of `step` bytes.
std::pair<std::string, std::string> think_split(const std::string& text, size_t step) {
  ThinkingParser p({"<think>", "</think>"});
  std::string thinking, content;
  for (size_t i = 0; i < text.size(); i += step) p.push(text.substr(i, step), thinking, content);
  p.finish(thinking, content);
  return {thinking, content};
}

TEST(Thinking, IsSeparatedWhateverThePieceBoundaries) {
  const std::string text = "  <think>\nweighing it up\n</think>\n\nThe answer.";
  for (size_t step = 1; step <= text.size(); ++step) {
    const auto [thinking, content] = think_split(text, step);
    EXPECT_EQ(thinking, "weighing it up") << "step " << step;
    EXPECT_EQ(content, "The answer.") << "step " << step;
  }
  const auto [t2, c2] = think_split("No tags here <think>x</think>", 3);
  EXPECT_EQ(t2, "");
  EXPECT_EQ(c2, "No tags here <think>x</think>");
  const auto [t3, c3] = think_split("<think>cut off", 4);
  EXPECT_EQ(t3, "cut off");
  EXPECT_EQ(c3, "");
}

TEST(OutputParser, ToolCallsAreParsedOutOfContent) {
  OutputParser p(std::nullopt, tmpl::ToolCallFormat{tmpl::ToolCallStyle::kHermes, ""});
  const std::string text =
      "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n"
      "</tool_call>";
  std::string content;
  std::vector<tmpl::ToolCall> calls;
  for (size_t i = 0; i < text.size(); i += 5) {
    Delta d = p.push(runner::Piece{text.substr(i, 5), {}});
    content += d.content;
    for (auto& c : d.calls) calls.push_back(c);
  }
  Delta d = p.finish();
  content += d.content;
  for (auto& c : d.calls) calls.push_back(c);
  EXPECT_EQ(content, "");
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].name, "get_weather");
  EXPECT_EQ(calls[0].arguments.dump(), R"({"city":"Paris"})");
}

TEST(OutputParser, WithoutToolsEverythingIsContent) {
  OutputParser p(std::nullopt, std::nullopt);
  const std::string text = "<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>";
  Delta d = p.push(runner::Piece{text, {}});
  EXPECT_EQ(d.content, text);
  EXPECT_TRUE(p.finish().empty());
}

TEST(Thinking, UnsetMeansOnForAModelThatCanThinkAndAskingAModelThatCannotIsAnError) {
  const ThinkTags tags{"<think>", "</think>"};
  Think unset;
  EXPECT_TRUE(settle_think(unset, tags));
  EXPECT_TRUE(unset.on());
  Think off{false, ""};
  EXPECT_FALSE(settle_think(off, tags));
  Think none;
  EXPECT_FALSE(settle_think(none, std::nullopt));
  EXPECT_FALSE(none.enabled.has_value());
  Think on{true, "high"};
  EXPECT_THROW(settle_think(on, std::nullopt), std::invalid_argument);
}

TEST(Thinking, LevelsAndBooleansAsTheCommandLineSpellsThem) {
  EXPECT_EQ(think_from_text("true")->enabled, true);
  EXPECT_EQ(think_from_text("false")->enabled, false);
  EXPECT_EQ(think_from_text("low")->level, "low");
  EXPECT_TRUE(think_from_text("max")->on());
  EXPECT_FALSE(think_from_text("loud"));
  EXPECT_FALSE(think_from_text(""));
}

TEST(OutputParser, APromptThatOpensTheBlockMakesTheOutputStartInsideIt) {
  const ThinkTags tags{"<think>", "</think>"};
  EXPECT_TRUE(opens_thinking("<|im_start|>assistant\n<think>\n", tags));
  EXPECT_FALSE(opens_thinking("<|im_start|>assistant\n<think>\n\n</think>\n\n", tags));
  OutputParser p(tags, std::nullopt, /*opened=*/true);
  Delta d = p.push(runner::Piece{"weighing\n</think>\n\nHello", {}});
  Delta end = p.finish();
  EXPECT_EQ(d.thinking + end.thinking, "weighing");
  EXPECT_EQ(d.content + end.content, "Hello");
}

}  // namespace
}  // namespace corral::parse
