// Go text/template semantics: expected outputs are what Go's text/template documents and renders
// (package docs examples, Go 1.22+ range-over-int, Go 1.18+ break/continue and and/or short
// circuit, Go 1.23 else-with).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "template/gotmpl/template.h"

namespace corral::tmpl::gotmpl {
namespace {

// JSON to template data: integers stay Go ints, other numbers float64, objects map[string]any.
Value from_json(const nlohmann::ordered_json& j) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::boolean:
      return Value(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
    case nlohmann::ordered_json::value_t::number_unsigned:
      return Value(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_float:
      return Value(j.get<double>());
    case nlohmann::ordered_json::value_t::string:
      return Value(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      Value::List items;
      for (const auto& e : j) items.push_back(from_json(e));
      return Value::list(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      Value::Map m;
      for (auto it = j.begin(); it != j.end(); ++it) m[it.key()] = from_json(it.value());
      return Value::map(std::move(m));
    }
    default:
      return Value::nil();
  }
}

std::string render(std::string_view text, const Value& data = Value(), Options options = {}) {
  return Template::parse(text, "t", std::move(options)).execute(data);
}
std::string render(std::string_view text, const char* json) {
  return render(text, from_json(nlohmann::ordered_json::parse(json)));
}

TEST(GotmplText, TrimMarkersRemoveAdjacentWhitespace) {
  EXPECT_EQ(render("{{23 -}} < {{- 45}}"), "23<45");  // the example in Go's docs
  EXPECT_EQ(render("a  \n\t{{- 1 -}}\n\n b"), "a1b");
  // A dash without a following space is a negative number, not a trim marker.
  EXPECT_EQ(render("x {{-3}} y"), "x -3 y");
  EXPECT_EQ(render("x {{ 3 -}}\n"), "x 3");
}

TEST(GotmplText, CommentsProduceNothingAndMayTrim) {
  EXPECT_EQ(render("a{{/* a comment */}}b"), "ab");
  EXPECT_EQ(render("a {{- /* multi\nline */ -}} b"), "ab");
}

TEST(GotmplVariables, DeclareAssignAndDollar) {
  EXPECT_EQ(render("{{ $x := 1 }}{{ $x }}{{ $x = 2 }}{{ $x }}"), "12");
  EXPECT_EQ(render("{{ $.a }}{{ with .b }}{{ $.a }}{{ . }}{{ end }}", R"({"a": "A", "b": "B"})"),
            "AAB");
  // A variable declared inside a control structure ends with it; assignment reaches outward.
  EXPECT_EQ(render("{{ $x := 1 }}{{ if true }}{{ $x := 2 }}{{ $x }}{{ end }}{{ $x }}"), "21");
  EXPECT_EQ(render("{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}"), "2");
  EXPECT_EQ(render("{{ $x := .a }}{{ $x.b }}", R"({"a": {"b": "deep"}})"), "deep");
}

TEST(GotmplControl, IfElseIfElseUseGoTruthiness) {
  const char* t = "{{ if .a }}A{{ else if .b }}B{{ else }}C{{ end }}";
  EXPECT_EQ(render(t, R"({"a": 1, "b": 1})"), "A");
  EXPECT_EQ(render(t, R"({"a": 0, "b": "x"})"), "B");
  EXPECT_EQ(render(t, R"({"a": [], "b": {}})"), "C");
  EXPECT_EQ(render(t, R"({"a": "", "b": 0.0})"), "C");
  EXPECT_EQ(render(t, R"({"a": null, "b": false})"), "C");
  EXPECT_EQ(render(t, R"({})"), "C");
  EXPECT_EQ(render(t, R"({"a": [0]})"), "A");
  EXPECT_EQ(render("{{ if $x := .a }}{{ $x }}{{ end }}", R"({"a": "v"})"), "v");
}

TEST(GotmplControl, RangeOverListsWithIndexValueAndElse) {
  EXPECT_EQ(render("{{ range . }}<{{ . }}>{{ end }}", R"(["a", "b"])"), "<a><b>");
  EXPECT_EQ(render("{{ range $i, $e := . }}{{ $i }}={{ $e }} {{ end }}", R"(["a", "b"])"),
            "0=a 1=b ");
  EXPECT_EQ(render("{{ range $e := . }}{{ $e }}{{ end }}", R"(["a", "b"])"), "ab");
  EXPECT_EQ(render("{{ range . }}x{{ else }}empty{{ end }}", R"([])"), "empty");
  EXPECT_EQ(render("{{ range .missing }}x{{ else }}none{{ end }}", R"({})"), "none");
}

TEST(GotmplControl, RangeOverMapVisitsKeysInSortedOrder) {
  EXPECT_EQ(render("{{ range $k, $v := . }}{{ $k }}:{{ $v }};{{ end }}",
                   R"({"zeta": 1, "alpha": 2, "Mid": 3})"),
            "Mid:3;alpha:2;zeta:1;");
  EXPECT_EQ(render("{{ range . }}{{ . }}{{ end }}", R"({"b": 1, "a": 2})"), "21");
}

TEST(GotmplControl, RangeOverIntegerCountsFromZero) {
  EXPECT_EQ(render("{{ range 3 }}{{ . }}{{ end }}"), "012");
  EXPECT_EQ(render("{{ range $i := 3 }}{{ $i }}{{ end }}"), "012");
  EXPECT_EQ(render("{{ range 0 }}x{{ else }}zero{{ end }}"), "zero");
  EXPECT_THROW(render("{{ range $i, $e := 3 }}{{ end }}"), Error);
}

TEST(GotmplControl, BreakAndContinueInRange) {
  EXPECT_EQ(
      render("{{ range . }}{{ if eq . 3 }}{{ break }}{{ end }}{{ . }}{{ end }}", R"([1, 2, 3, 4])"),
      "12");
  EXPECT_EQ(
      render("{{ range . }}{{ if eq . 2 }}{{ continue }}{{ end }}{{ . }}{{ end }}", R"([1, 2, 3])"),
      "13");
}

TEST(GotmplControl, WithSetsDotAndHasElseAndElseWith) {
  EXPECT_EQ(render("{{ with .a }}{{ . }}{{ else }}no{{ end }}", R"({"a": "x"})"), "x");
  EXPECT_EQ(render("{{ with .a }}{{ . }}{{ else }}no{{ end }}", R"({"a": ""})"), "no");
  EXPECT_EQ(render("{{ with .a }}A{{ else with .b }}{{ . }}{{ else }}C{{ end }}", R"({"b": "B"})"),
            "B");
}

TEST(GotmplTemplates, DefineTemplateAndBlock) {
  EXPECT_EQ(render(R"({{define "T1"}}ONE{{end}}{{define "T2"}}TWO {{template "T1"}}{{end}})"
                   R"({{template "T2"}})"),
            "TWO ONE");
  EXPECT_EQ(render(R"({{define "item"}}[{{.}}]{{end}}{{range .}}{{template "item" .}}{{end}})",
                   R"(["a", "b"])"),
            "[a][b]");
  EXPECT_EQ(render(R"({{block "b" .}}default {{.}}{{end}})", R"("x")"), "default x");
  // Templates see only their own $.
  EXPECT_EQ(render(R"({{define "d"}}{{$}}{{end}}{{template "d" "arg"}})", R"("top")"), "arg");
}

TEST(GotmplFunctions, AndOrReturnTheDecidingOperand) {
  EXPECT_EQ(render("{{ and 1 0 2 }}"), "0");
  EXPECT_EQ(render("{{ and 1 2 }}"), "2");
  EXPECT_EQ(render("{{ or 0 \"\" \"x\" }}"), "x");
  EXPECT_EQ(render("{{ or 0 \"\" }}"), "");
  EXPECT_EQ(render("{{ not 0 }} {{ not \"a\" }}"), "true false");
  // Short circuit: the failing call after the deciding operand is never made.
  EXPECT_EQ(render("{{ or 1 (index .a 9) }}", R"({"a": []})"), "1");
  EXPECT_EQ(render("{{ and 0 (index .a 9) }}", R"({"a": []})"), "0");
}

TEST(GotmplFunctions, LenIndexSlice) {
  EXPECT_EQ(render("{{ len . }}", R"([1, 2, 3])"), "3");
  EXPECT_EQ(render("{{ len . }}", R"("héllo")"), "6");  // bytes, as Go's len
  EXPECT_EQ(render("{{ len . }}", R"({"a": 1})"), "1");
  EXPECT_EQ(render("{{ index . 1 }}", R"(["a", "b"])"), "b");
  EXPECT_EQ(render("{{ index . \"k\" 0 }}", R"({"k": ["v"]})"), "v");
  EXPECT_EQ(render("{{ index . \"nope\" }}", R"({"k": 1})"), "<no value>");
  EXPECT_EQ(render("{{ index . 1 }}", R"("abc")"), "98");  // a byte
  EXPECT_EQ(render("{{ slice . 1 3 }}", R"([1, 2, 3, 4])"), "[2 3]");
  EXPECT_EQ(render("{{ slice . 1 }}", R"("hello")"), "ello");
  EXPECT_EQ(render("{{ slice . }}", R"("hello")"), "hello");
  EXPECT_EQ(render("{{ len (slice . 2) }}", R"([1, 2, 3])"), "1");
}

TEST(GotmplFunctions, ComparisonsFollowGoBasicKinds) {
  EXPECT_EQ(render("{{ eq 1 1 }} {{ eq \"a\" \"b\" }} {{ eq 2 1 3 2 }}"), "true false true");
  EXPECT_EQ(render("{{ ne 1 2 }} {{ lt 1 2 }} {{ le 2 2 }} {{ gt \"b\" \"a\" }} {{ ge 1.5 2.5 }}"),
            "true true true true false");
  EXPECT_EQ(render("{{ eq .missing \"x\" }}", R"({})"), "false");
  EXPECT_EQ(render("{{ eq .a .b }}", R"({})"), "true");  // two missing values are both nil
  EXPECT_EQ(render("{{ eq true true }}"), "true");
  EXPECT_EQ(render("{{ eq .a 1.5 }}", R"({"a": 1.5})"), "true");
}

TEST(GotmplFunctions, PrintSprintAndSprintlnSpacing) {
  // Sprint adds spaces between operands when neither is a string.
  EXPECT_EQ(render("{{ print 1 2 \"a\" 3 \"b\" \"c\" }}"), "1 2a3bc");
  EXPECT_EQ(render("{{ println 1 \"a\" }}"), "1 a\n");
  EXPECT_EQ(render("{{ print nil }}"), "<nil>");
  EXPECT_EQ(render("{{ print .missing }}", R"({})"), "<nil>");
}

TEST(GotmplFunctions, EscapersMatchGo) {
  EXPECT_EQ(render("{{ html . }}", R"("<a href=\"x\">&'")"),
            "&lt;a href=&#34;x&#34;&gt;&amp;&#39;");
  EXPECT_EQ(render("{{ js . }}", R"("a'b\"<>=&\n\\")"),
            "a\\'b\\\"\\u003C\\u003E\\u003D\\u0026\\u000A\\\\");
  EXPECT_EQ(render("{{ urlquery . }}", R"("a b&c=d/é~")"), "a+b%26c%3Dd%2F%C3%A9~");
  EXPECT_EQ(render("{{ html 1 2 }}"), "1 2");
  EXPECT_EQ(render("{{ html .missing }}", R"({})"), "&lt;no value&gt;");
  EXPECT_EQ(render("{{ \"<b>\" | html }}"), "&lt;b&gt;");
}

TEST(GotmplFunctions, CallInvokesFunctionValues) {
  Value::Map data;
  data["add"] =
      Value::func([](std::span<const Value> a) { return Value(a[0].as_int() + a[1].as_int()); });
  data["boom"] =
      Value::func([](std::span<const Value>) -> Value { throw std::runtime_error("exploded"); });
  EXPECT_EQ(render("{{ call .add 2 3 }}", Value::map(data)), "5");
  try {
    render("{{ call .boom }}", Value::map(data));
    FAIL() << "call of a failing function must fail";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("error calling call: exploded"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(render("{{ call .add }}", R"({"add": 1})"), Error);
}

TEST(GotmplFunctions, UserFunctionsAndArity) {
  Options opts;
  opts.funcs["twice"] = {
      [](std::span<const Value> a) { return Value(a[0].as_string() + a[0].as_string()); }, 1, 1};
  EXPECT_EQ(render("{{ twice \"ab\" }}{{ \"c\" | twice }}", Value(), opts), "ababcc");
  try {
    render("{{ twice }}", Value(), opts);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("wrong number of args for twice: want 1 got 0"),
              std::string::npos)
        << e.what();
  }
}

TEST(GotmplPipelines, PreviousValueIsTheLastArgument) {
  EXPECT_EQ(render("{{ \"x\" | printf \"%s-%s\" \"a\" }}"), "a-x");
  EXPECT_EQ(render("{{ .a | len | printf \"%03d\" }}", R"({"a": [1, 2]})"), "002");
  EXPECT_EQ(render("{{ (index . 0).name }}", R"([{"name": "n"}])"), "n");
  EXPECT_EQ(render("{{ (print \"a\" \"b\") }}"), "ab");
}

TEST(GotmplConstants, NumbersCharactersAndStrings) {
  EXPECT_EQ(render("{{ 0x1F }} {{ 1e3 }} {{ 'a' }} {{ -3 }} {{ 1.5 }} {{ 1_000 }} {{ 0o17 }}"),
            "31 1000 97 -3 1.5 1000 15");
  EXPECT_EQ(render("{{ \"tab\\there\\u00e9\" }}"), "tab\there\xC3\xA9");
  EXPECT_EQ(render("{{ `raw\\n` }}"), "raw\\n");
  EXPECT_EQ(render("{{ true }} {{ false }}"), "true false");
}

TEST(GotmplPrinting, ValuesPrintAsGoFmtV) {
  EXPECT_EQ(render("{{ . }}", R"(["a", "b"])"), "[a b]");
  EXPECT_EQ(render("{{ . }}", R"({"k": "v", "a": [1, 2]})"), "map[a:[1 2] k:v]");
  EXPECT_EQ(render("{{ . }}", R"([null, 1])"), "[<nil> 1]");
  EXPECT_EQ(render("{{ .missing }}", R"({})"), "<no value>");
  EXPECT_EQ(render("{{ . }}", R"([3.0, 0.1, 1e6, 123456.0, 1e-5, 2.5e-4])"),
            "[3 0.1 1e+06 123456 1e-05 0.00025]");
  EXPECT_EQ(render("{{ .a }}", R"({"a": null})"), "<no value>");
  EXPECT_EQ(render("{{ . }}", Value::object("T", {{"A", Value(1)}, {"B", Value("x")}})), "{1 x}");
}

TEST(GotmplMissingKey, DefaultZeroAndErrorModes) {
  const char* data = R"({"a": 1})";
  EXPECT_EQ(render("{{ .b.c }}", data), "<no value>");
  Options zero;
  zero.missing_key = MissingKey::kZero;
  EXPECT_EQ(render("{{ .b }}", from_json(nlohmann::ordered_json::parse(data)), zero), "<no value>");
  try {
    render("{{ .b.c }}", from_json(nlohmann::ordered_json::parse(data)), zero);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("nil pointer evaluating interface {}.c"),
              std::string::npos)
        << e.what();
  }
  Options error;
  error.missing_key = MissingKey::kError;
  try {
    render("{{ .b }}", from_json(nlohmann::ordered_json::parse(data)), error);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("map has no entry for key \"b\""), std::string::npos)
        << e.what();
  }
}

TEST(GotmplPrintf, VerbsFlagsWidthAndPrecision) {
  auto pf = [](const std::string& args) { return render("{{ printf " + args + " }}"); };
  EXPECT_EQ(pf("\"%5.2f|\" 3.14159"), " 3.14|");
  EXPECT_EQ(pf("\"%-5d|\" 42"), "42   |");
  EXPECT_EQ(pf("\"%05d\" -42"), "-0042");
  EXPECT_EQ(pf("\"%+d % d\" 5 5"), "+5  5");
  EXPECT_EQ(pf("\"%x %X %#x %o %b\" 255 255 255 8 5"), "ff FF 0xff 10 101");
  EXPECT_EQ(pf("\"%q\" \"hi\\n\\\"\""), "\"hi\\n\\\"\"");
  EXPECT_EQ(pf("\"%t %v\" true false"), "true false");
  EXPECT_EQ(pf("\"%s|%10s|%-4s|%.2s\" \"a\" \"right\" \"l\" \"abc\""), "a|     right|l   |ab");
  EXPECT_EQ(pf("\"%e %g %v\" 123456.789 0.000001 1e6"), "1.234568e+05 1e-06 1e+06");
  EXPECT_EQ(pf("\"%.3e %.1f %f\" 1234.5678 2.25 1.0"), "1.235e+03 2.2 1.000000");
  EXPECT_EQ(pf("\"%c%c %U\" 72 105 0x1F999"), "Hi U+1F999");
  EXPECT_EQ(pf("\"%q\" 'x'"), "'x'");
  EXPECT_EQ(pf("\"%x\" \"hi\""), "6869");
  EXPECT_EQ(pf("\"100%%\""), "100%");
  EXPECT_EQ(pf("\"%T %T %T\" 1 \"s\" 1.5"), "int string float64");
  EXPECT_EQ(pf("\"%*d|\" 4 7"), "   7|");
}

TEST(GotmplPrintf, BadVerbsMissingAndExtraArguments) {
  auto pf = [](const std::string& args) { return render("{{ printf " + args + " }}"); };
  EXPECT_EQ(pf("\"%d\" \"x\""), "%!d(string=x)");
  EXPECT_EQ(pf("\"%s\" 5"), "%!s(int=5)");
  EXPECT_EQ(pf("\"%d %d\" 1"), "1 %!d(MISSING)");
  EXPECT_EQ(pf("\"%d\" 1 2 \"a\""), "1%!(EXTRA int=2, string=a)");
  EXPECT_EQ(pf("\"%\""), "%!(NOVERB)");
  EXPECT_EQ(pf("\"%z\" 1"), "%!z(int=1)");
  EXPECT_EQ(render("{{ printf \"%s\" .missing }}", R"({})"), "%!s(<nil>)");
  EXPECT_EQ(render("{{ printf \"%v|%d\" . . }}", R"([1, 2])"), "[1 2]|[1 2]");
  EXPECT_EQ(render("{{ printf \"%s\" . }}", R"([1, "a"])"), "[%!s(int=1) a]");
}

}  // namespace
}  // namespace corral::tmpl::gotmpl
