// Errors carry the template position; malformed or hostile templates fail cleanly (no crash, no
// unbounded recursion or allocation).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "template/jinja/template.h"
#include "testdata.h"

namespace corral::tmpl::jinja {
namespace {

Error error_of(const std::string& source, const Value& context = Value::dict()) {
  try {
    Template::parse(source).render(context);
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "no error for: " << source;
  return Error("none", "");
}

TEST(JinjaErrors, SyntaxErrorsGiveLineAndColumn) {
  Error e = error_of("a\nb {{ 1 + }}");
  EXPECT_EQ(e.kind(), "TemplateSyntaxError");
  EXPECT_EQ(e.line(), 2);
  EXPECT_EQ(e.column(), 10);  // the `}}` where an operand was expected

  e = error_of("{% for x in y %}\n  {% if x %}\n{% endfor %}");
  EXPECT_EQ(e.kind(), "TemplateSyntaxError");
  EXPECT_EQ(e.line(), 3);

  e = error_of("x\n\n   {% frobnicate %}");
  EXPECT_EQ(e.line(), 3);
  EXPECT_EQ(e.column(), 7);

  e = error_of("ok\n{{ 'unterminated }}");
  EXPECT_EQ(e.line(), 2);
  EXPECT_EQ(e.column(), 4);

  e = error_of("{# never closed");
  EXPECT_EQ(e.line(), 1);
  EXPECT_EQ(e.column(), 1);
}

TEST(JinjaErrors, RuntimeErrorsGiveLineAndColumnOfTheFailingNode) {
  Error e = error_of(
      "line1\n{% for m in messages %}\n    {{ m.content + 1 }}{% endfor %}",
      Value::from_json(nlohmann::ordered_json::parse(R"({"messages": [{"content": "x"}]})")));
  EXPECT_EQ(e.kind(), "TypeError");
  EXPECT_EQ(e.detail(), "can only concatenate str (not \"int\") to str");
  EXPECT_EQ(e.line(), 3);
  EXPECT_EQ(e.column(), 8);

  e = error_of("\n{{ missing.attr }}");
  EXPECT_EQ(e.kind(), "UndefinedError");
  EXPECT_EQ(e.detail(), "'missing' is undefined");
  EXPECT_EQ(e.line(), 2);

  e = error_of("{% set d = {'a': 1} %}{{ d.b.c }}");
  EXPECT_EQ(e.kind(), "UndefinedError");
  EXPECT_EQ(e.detail(), "'dict object' has no attribute 'b'");

  e = error_of("{% for x in none %}{% endfor %}");
  EXPECT_EQ(e.detail(), "'NoneType' object is not iterable");
}

TEST(JinjaErrors, DeepNestingIsRejectedNotOverflowingTheStack) {
  const int n = 20000;
  EXPECT_EQ(error_of("{{ " + std::string(n, '(') + "1" + std::string(n, ')') + " }}").kind(),
            "TemplateSyntaxError");
  EXPECT_EQ(error_of("{{ " + std::string(n, '[') + std::string(n, ']') + " }}").kind(),
            "TemplateSyntaxError");
  std::string minus;
  for (int i = 0; i < n; ++i) minus += "- ";
  EXPECT_EQ(error_of("{{ " + minus + "1 }}").kind(), "TemplateSyntaxError");
  std::string nots;
  for (int i = 0; i < n; ++i) nots += "not ";
  EXPECT_EQ(error_of("{{ " + nots + "1 }}").kind(), "TemplateSyntaxError");
  std::string sum = "1";
  for (int i = 0; i < n; ++i) sum += "+1";
  EXPECT_EQ(error_of("{{ " + sum + " }}").kind(), "TemplateSyntaxError");
  std::string ifs;
  for (int i = 0; i < n; ++i) ifs += "{% if true %}";
  EXPECT_EQ(error_of(ifs).kind(), "TemplateSyntaxError");
  std::string filters = "{{ 'a'";
  for (int i = 0; i < n; ++i) filters += "|trim";
  EXPECT_EQ(error_of(filters + " }}").kind(), "TemplateSyntaxError");
  std::string attrs = "{{ a";
  for (int i = 0; i < n; ++i) attrs += ".b";
  EXPECT_EQ(error_of(attrs + " }}").kind(), "TemplateSyntaxError");
}

TEST(JinjaErrors, RunawayRecursionAndAllocationAreStopped) {
  EXPECT_EQ(error_of("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}").kind(),
            "RecursionError");
  std::string tall = "f(n + 1)";
  for (int i = 0; i < 250; ++i) tall += " + 1";
  EXPECT_EQ(error_of("{% macro f(n) %}{{ " + tall + " }}{% endmacro %}{{ f(0) }}").kind(),
            "RecursionError");
  EXPECT_EQ(error_of("{{ 'abc' * 1000000000 }}").kind(), "MemoryError");
  EXPECT_EQ(error_of("{{ [1, 2] * 1000000000 }}").kind(), "MemoryError");
  EXPECT_EQ(error_of("{{ 2 ** 64 }}").kind(), "OverflowError");
  EXPECT_EQ(error_of("{% for i in range(100001) %}{% endfor %}").kind(), "OverflowError");
  EXPECT_EQ(error_of("{% set s = 'x' * 40000000 %}{{ s ~ s }}").kind(), "MemoryError");
}

// Random edits of the real templates: parsing and rendering either succeed or throw
// jinja::Error; nothing else escapes and nothing crashes (run under ASan in CI).
TEST(JinjaErrors, MutatedRealTemplatesNeverCrash) {
  std::vector<std::string> sources;
  std::filesystem::path dir =
      std::filesystem::path(
          testing::testdata_path("chat-templates/hf/Qwen-Qwen2.5-7B-Instruct.jinja"))
          .parent_path();
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    sources.push_back(ss.str());
  }
  ASSERT_EQ(sources.size(), 17u);
  Value context = Value::from_json(nlohmann::ordered_json::parse(R"({
    "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"},
                 {"role": "assistant", "content": "a", "tool_calls": [{"type": "function",
                  "function": {"name": "f", "arguments": {"x": 1}}}]},
                 {"role": "tool", "content": "r"}],
    "tools": [{"type": "function", "function": {"name": "f", "description": "d",
               "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}}}}],
    "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>"})"));
  std::mt19937 rng(1234);
  const std::string alphabet = "{}%#-+()[]'\"|.,:=~*/ \nabcxyz0129ifendforsetmacro";
  int rendered = 0, failed = 0;
  for (int round = 0; round < 1500; ++round) {
    std::string s = sources[rng() % sources.size()];
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < edits && !s.empty(); ++k) {
      size_t pos = rng() % s.size();
      switch (rng() % 4) {
        case 0:
          s.erase(pos, 1 + rng() % 8);
          break;
        case 1:
          s.insert(pos, 1, alphabet[rng() % alphabet.size()]);
          break;
        case 2:
          s.resize(pos);
          break;
        default: {
          size_t from = rng() % s.size();
          s.insert(pos, s.substr(from, 1 + rng() % 40));
        }
      }
    }
    try {
      Template::parse(s).render(context);
      ++rendered;
    } catch (const Error& e) {
      EXPECT_GT(e.line(), 0) << e.what();
      ++failed;
    }
  }
  EXPECT_GT(rendered, 0);
  EXPECT_GT(failed, 0);
}

}  // namespace
}  // namespace corral::tmpl::jinja
