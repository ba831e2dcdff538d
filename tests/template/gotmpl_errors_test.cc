// Malformed templates and failing executions: an Error naming template, line and column, with
// Go's message; never a crash (also under ASan/UBSan), whatever the input.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "template/gotmpl/template.h"
#include "template/ollama.h"
#include "testdata.h"

namespace corral::tmpl::gotmpl {
namespace {

// The error message of parsing (and, when parsing succeeds, executing) text.
std::string error_of(std::string_view text, const Value& data = Value()) {
  try {
    Template::parse(text, "t").execute(data);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(GotmplParseErrors, NameLineColumnAndGoMessage) {
  EXPECT_EQ(error_of("{{ .Prompt "), "template: t:1:11: unclosed action");
  EXPECT_EQ(error_of("a\nb\n{{ .X | nope }}"), "template: t:3:8: function \"nope\" not defined");
  EXPECT_EQ(error_of("{{ if .X }}open"), "template: t:1:15: unexpected EOF");
  EXPECT_EQ(error_of("x{{ end }}"), "template: t:1:4: unexpected {{end}}");
  EXPECT_EQ(error_of("{{ else }}"), "template: t:1:3: unexpected {{else}}");
  EXPECT_EQ(error_of("\n  {{ $x }}"), "template: t:2:5: undefined variable \"$x\"");
  EXPECT_EQ(error_of("{{ break }}"), "template: t:1:3: {{break}} outside {{range}}");
  EXPECT_EQ(error_of("{{ continue }}"), "template: t:1:3: {{continue}} outside {{range}}");
  EXPECT_EQ(error_of("{{ .X | \"s\" }}"),
            "template: t:1:8: non executable command in pipeline stage 2");
  EXPECT_EQ(error_of("{{ \"open }}"), "template: t:1:3: unterminated quoted string");
  EXPECT_EQ(error_of("{{ `open }}"), "template: t:1:3: unterminated raw quoted string");
  EXPECT_EQ(error_of("{{ ( .X }}"), "template: t:1:8: unclosed left paren");
  EXPECT_EQ(error_of("{{ .X ) }}"), "template: t:1:6: unexpected right paren");
  EXPECT_EQ(error_of("{{ 3x }}"), "template: t:1:3: bad number syntax: \"3x\"");
  EXPECT_EQ(error_of("{{/* open }}"), "template: t:1:0: unclosed comment");
  EXPECT_EQ(error_of("{{/* c */ x}}"), "template: t:1:0: comment ends before closing delimiter");
  EXPECT_EQ(error_of("{{ if }}{{ end }}"), "template: t:1:6: missing value for if");
  EXPECT_EQ(error_of("{{ range $a, $b, $c := . }}{{ end }}"),
            "template: t:1:13: too many declarations in range");
  EXPECT_EQ(error_of("{{ define \"a\" }}x{{ end }}{{ define \"a\" }}y{{ end }}"),
            "template: t:1:36: template: multiple definition of template \"a\"");
  EXPECT_EQ(error_of("{{ 1.x }}"), "template: t:1:3: bad number syntax: \"1.x\"");
  EXPECT_EQ(error_of("{{ \"s\".Field }}"),
            "template: t:1:3: unexpected . after term \"\\\"s\\\"\"");
  EXPECT_EQ(error_of("{{ .X @ }}"), "template: t:1:6: unexpected \"@\" in operand");
  EXPECT_EQ(error_of("{{ % }}"), "template: t:1:3: unexpected \"%\" in command");
}

TEST(GotmplExecErrors, NameLineColumnCommandAndGoMessage) {
  Value::Map m;
  m["L"] = Value::list({Value(1)});
  const Value data = Value::map(m);
  EXPECT_EQ(error_of("{{ index .L 5 }}", data),
            "template: t:1:3: executing \"t\" at <index .L 5>: error calling index: index out of "
            "range: 5");
  EXPECT_EQ(
      error_of("\n{{ eq 1 \"a\" }}", data),
      "template: t:2:3: executing \"t\" at <eq 1 \"a\">: error calling eq: incompatible types "
      "for comparison");
  EXPECT_EQ(error_of("{{ lt true false }}", data),
            "template: t:1:3: executing \"t\" at <lt true false>: error calling lt: invalid type "
            "for comparison");
  EXPECT_EQ(error_of("{{ len 3 }}", data),
            "template: t:1:3: executing \"t\" at <len 3>: error calling len: len of type int");
  EXPECT_EQ(error_of("{{ .L.X }}", data),
            "template: t:1:3: executing \"t\" at <.L.X>: can't evaluate field X in type "
            "[]interface {}");
  EXPECT_EQ(error_of("{{ template \"none\" }}", data),
            "template: t:1:3: executing \"t\" at <{{template \"none\"}}>: template \"none\" not "
            "defined");
  EXPECT_EQ(error_of("{{ range 1.5 }}{{ end }}", data),
            "template: t:1:3: executing \"t\" at <{{range 1.5}}>: range can't iterate over 1.5");
  EXPECT_EQ(error_of("{{ nil }}", data),
            "template: t:1:3: executing \"t\" at <nil>: nil is not a command");
  EXPECT_EQ(error_of("{{ 1 2 }}", data),
            "template: t:1:3: executing \"t\" at <1>: can't give argument to non-function 1");
  EXPECT_EQ(error_of("{{ printf 3 }}", data),
            "template: t:1:3: executing \"t\" at <printf 3>: wrong type for value; expected "
            "string; got int");
  EXPECT_EQ(error_of("{{ not 1 2 }}", data),
            "template: t:1:3: executing \"t\" at <not 1 2>: wrong number of args for not: want 1 "
            "got 2");
  EXPECT_EQ(error_of("{{ slice .L 2 1 }}", data),
            "template: t:1:3: executing \"t\" at <slice .L 2 1>: error calling slice: index out "
            "of range: 2");
  // The error context is cut at 20 characters, as Go's ErrorContext does.
  EXPECT_EQ(error_of("{{ index .L 100000000000 }}", data),
            "template: t:1:3: executing \"t\" at <index .L 10000000000...>: error calling index: "
            "index out of range: 100000000000");
}

TEST(GotmplExecErrors, SelfRecursiveTemplateStopsAtTheDepthLimit) {
  const std::string msg = error_of(
      "{{ define \"r\" }}{{ template \"r\" . }}{{ end }}"
      "{{ template \"r\" . }}");
  EXPECT_NE(msg.find("exceeded maximum template depth"), std::string::npos) << msg;
}

TEST(GotmplParseErrors, DeepNestingIsAnErrorNotAStackOverflow) {
  std::string ifs, parens;
  for (int i = 0; i < 5000; ++i) ifs += "{{ if 1 }}";
  for (int i = 0; i < 5000; ++i) parens += "(";
  EXPECT_NE(error_of(ifs).find("max nesting depth exceeded"), std::string::npos);
  EXPECT_NE(error_of("{{ " + parens + "1").find("template: t:1:"), std::string::npos);
  // Nesting within the limit works.
  std::string ok;
  for (int i = 0; i < 200; ++i) ok += "{{ if 1 }}";
  ok += "x";
  for (int i = 0; i < 200; ++i) ok += "{{ end }}";
  EXPECT_EQ(Template::parse(ok).execute(Value()), "x");
}

// Mutates real templates (Ollama's built-ins) byte by byte and runs each mutant: parsing and
// executing either succeed or throw Error, never anything else.
TEST(GotmplFuzz, MutatedTemplatesFailCleanly) {
  std::vector<std::string> seeds = {
      "{{ range $i, $m := .Messages }}{{ if eq $m.Role \"user\" }}{{ printf \"%q\" $m.Content }}"
      "{{ else if and $m.Content (gt (len .) 1) }}{{ slice $m.Content 1 }}{{ end }}{{ end }}",
      "{{ define \"x\" }}{{ . | html | js }}{{ end }}{{ block \"b\" . }}{{ template \"x\" . }}"
      "{{ end }}{{ with $x := index .Messages 0 }}{{ $x.Role }}{{ else }}none{{ end }}"};
  const std::string dir = corral::testing::testdata_path("chat-templates/ollama");
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() != ".gotmpl") continue;
    std::ifstream in(e.path());
    std::stringstream ss;
    ss << in.rdbuf();
    seeds.push_back(ss.str());
  }
  ChatInput input;
  input.messages = Json::parse(R"([{"role": "system", "content": "s"},
      {"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo",
       "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}]},
      {"role": "tool", "content": "r"}, {"role": "user", "content": "more"}])");
  input.tools = Json::parse(R"([{"type": "function", "function": {"name": "f",
      "parameters": {"type": "object", "properties": {"a": {"type": "number"}}}}}])");
  const std::string alphabet = "{}-$.|()\"'`/* \n:=,0123456789abcdefghijklmnopqrstuvwxyzRMT";
  std::mt19937 rng(1234);
  int parsed = 0, failed = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string s = seeds[rng() % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < edits && !s.empty(); ++k) {
      const size_t pos = rng() % s.size();
      switch (rng() % 4) {
        case 0:
          s.erase(pos, 1 + rng() % 3);
          break;
        case 1:
          s.insert(pos, 1, alphabet[rng() % alphabet.size()]);
          break;
        case 2:
          s[pos] = alphabet[rng() % alphabet.size()];
          break;
        default:
          s.resize(pos);
      }
    }
    try {
      const Template t = parse_ollama(s);
      ++parsed;
      render_ollama(t, input);
    } catch (const Error&) {
      ++failed;
    }
  }
  // Both outcomes occur: the mutants exercise the parser's and the executor's error paths.
  EXPECT_GT(parsed, 100);
  EXPECT_GT(failed, 100);
}

}  // namespace
}  // namespace corral::tmpl::gotmpl
