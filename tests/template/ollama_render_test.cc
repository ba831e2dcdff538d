// Ollama's prompt data model and execution modes. Expected outputs come from Ollama's own
// template tests (template_test.go: TestExecuteWithMessages, TestExecuteWithSuffix, TestParse,
// TestParseError, TestDateFunctions) and from the behaviour of its Execute/collate/deleteNode.
#include <gtest/gtest.h>

#include <ctime>

#include "template/ollama.h"

namespace corral::tmpl {
namespace {

ChatInput chat(const char* messages_json) {
  ChatInput in;
  in.messages = Json::parse(messages_json);
  return in;
}

std::string render(std::string_view text, const ChatInput& in, const OllamaOptions& opts = {}) {
  return render_ollama(parse_ollama(text), in, opts);
}

constexpr const char* kMistralMessages = R"([
  {"role": "user", "content": "Hello friend!"},
  {"role": "assistant", "content": "Hello human!"},
  {"role": "user", "content": "What is your name?"}])";

TEST(OllamaRender, LegacyAndMessagesTemplatesRenderTheSameConversation) {
  const std::string want =
      "[INST] Hello friend![/INST] Hello human![INST] What is your name?[/INST] ";
  const ChatInput in = chat(kMistralMessages);
  // Legacy: one execution per turn; the final one cut after .Response.
  EXPECT_EQ(render("[INST] {{ if .System }}{{ .System }}\n\n{{ end }}{{ .Prompt }}[/INST] ", in),
            want);
  EXPECT_EQ(render("[INST] {{ if .System }}{{ .System }}\n\n{{ end }}{{ .Prompt }}[/INST] "
                   "{{ .Response }}",
                   in),
            want);
  EXPECT_EQ(render("[INST] {{ if .System }}{{ .System }}\n\n{{ end }}\n"
                   "{{- range .Messages }}\n"
                   "{{- if eq .Role \"user\" }}{{ .Content }}[/INST] {{ else if eq .Role "
                   "\"assistant\" }}{{ .Content }}[INST] {{ end }}\n"
                   "{{- end }}",
                   in),
            want);
}

TEST(OllamaRender, LegacySystemMessageOpensTheFirstTurn) {
  const ChatInput in = chat(R"([
    {"role": "system", "content": "You are a helpful assistant!"},
    {"role": "user", "content": "Hello friend!"},
    {"role": "assistant", "content": "Hello human!"},
    {"role": "user", "content": "What is your name?"}])");
  const std::string want =
      "[INST] You are a helpful assistant!\n\nHello friend![/INST] Hello human![INST] What is "
      "your name?[/INST] ";
  EXPECT_EQ(render("[INST] {{ if .System }}{{ .System }}\n\n{{ end }}{{ .Prompt }}[/INST] ", in),
            want);
  EXPECT_EQ(render("[INST] {{ if .System }}{{ .System }}\n\n{{ end }}\n{{- range .Messages }}\n"
                   "{{- if eq .Role \"user\" }}{{ .Content }}[/INST] {{ else if eq .Role "
                   "\"assistant\" }}{{ .Content }}[INST] {{ end }}\n{{- end }}",
                   in),
            want);
}

TEST(OllamaRender, LegacyTrailingAssistantMessageIsContinued) {
  const ChatInput in = chat(R"([
    {"role": "user", "content": "Hello friend!"},
    {"role": "assistant", "content": "Hello human!"},
    {"role": "user", "content": "What is your name?"},
    {"role": "assistant", "content": "My name is Ollama and I"}])");
  const std::string want =
      "[INST] Hello friend![/INST] Hello human![INST] What is your name?[/INST] My name is Ollama "
      "and I";
  EXPECT_EQ(render("[INST] {{ .Prompt }}[/INST] ", in), want);
  EXPECT_EQ(render("[INST] {{ .Prompt }}[/INST] {{ .Response }}", in), want);
  EXPECT_EQ(render("\n{{- range $i, $m := .Messages }}\n{{- if eq .Role \"user\" }}[INST] "
                   "{{ .Content }}[/INST] {{ else if eq .Role \"assistant\" }}{{ .Content }}"
                   "{{ end }}\n{{- end }}",
                   in),
            want);
}

TEST(OllamaRender, ChatMLLegacyMatchesMessages) {
  const ChatInput in = chat(R"([
    {"role": "system", "content": "You are a helpful assistant!"},
    {"role": "user", "content": "Hello friend!"},
    {"role": "assistant", "content": "Hello human!"},
    {"role": "user", "content": "What is your name?"}])");
  const std::string want =
      "<|im_start|>system\nYou are a helpful assistant!<|im_end|>\n<|im_start|>user\nHello "
      "friend!<|im_end|>\n<|im_start|>assistant\nHello human!<|im_end|>\n<|im_start|>user\nWhat "
      "is your name?<|im_end|>\n<|im_start|>assistant\n";
  EXPECT_EQ(render("{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
                   "{{ if .Prompt }}<|im_start|>user\n{{ .Prompt }}<|im_end|>\n{{ end }}"
                   "<|im_start|>assistant\n{{ .Response }}<|im_end|>\n",
                   in),
            want);
  EXPECT_EQ(render("\n{{- range $index, $_ := .Messages }}<|im_start|>{{ .Role }}\n"
                   "{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n",
                   in),
            want);
}

TEST(OllamaRender, LegacyCutDropsACommandLeftWithoutArguments) {
  // deleteNode keeps the .Response operand but deletes every later node; the printf command
  // after it loses all its arguments, which deletes the whole pipeline.
  const ChatInput in = chat(R"([{"role": "user", "content": "a"},
                               {"role": "assistant", "content": "b"}])");
  EXPECT_EQ(render("{{ .Prompt }}: {{ .Response | printf \"%s\" }}END", in), "a: ");
  EXPECT_EQ(render("{{ .Prompt }}: {{ print .Response \"x\" }}END", in), "a: b");
  // Templates mentioning neither .Messages nor .Response get {{ .Response }} appended.
  EXPECT_EQ(render("<{{ .Prompt }}>", chat(kMistralMessages)),
            "<Hello friend!>Hello human!<What is your name?>");
}

TEST(OllamaRender, LegacyCutInsideABranchWithElseFailsAsInOllama) {
  // Ollama's deleteNode panics on the deleted else list; the request fails instead of crashing.
  const ChatInput in = chat(R"([{"role": "user", "content": "a"}])");
  EXPECT_THROW(render("{{ if .Prompt }}{{ .Response }}{{ else }}none{{ end }}", in), gotmpl::Error);
  EXPECT_EQ(render("{{ if .Prompt }}[{{ .Prompt }}]{{ .Response }}tail{{ end }}after", in), "[a]");
}

TEST(OllamaRender, SuffixSelectsFillInTheMiddle) {
  const gotmpl::Template t = parse_ollama(
      "{{- if .Suffix }}<PRE> {{ .Prompt }} <SUF>{{ .Suffix }} <MID>\n"
      "{{- else }}{{ .Prompt }}\n{{- end }}");
  EXPECT_EQ(render_ollama(t, chat(R"([{"role": "user", "content": "hello"}])")), "hello");
  EXPECT_EQ(render_ollama(t, ChatInput{}, {.prompt = "def add(", .suffix = "return x"}),
            "<PRE> def add( <SUF>return x <MID>");
}

TEST(OllamaParse, VarsAreTheLowerCasedIdentifiers) {
  auto vars = [](const char* text) { return ollama_vars(parse_ollama(text)); };
  using V = std::vector<std::string>;
  EXPECT_EQ(vars("{{ .Prompt }}"), (V{"prompt", "response"}));
  EXPECT_EQ(vars("{{ .System }} {{ .Prompt }}"), (V{"prompt", "response", "system"}));
  EXPECT_EQ(vars("{{ with .Tools }}{{ . }}{{ end }} {{ .System }} {{ .Prompt }}"),
            (V{"prompt", "response", "system", "tools"}));
  EXPECT_EQ(vars("{{ range .Messages }}{{ .Role }} {{ .Content }}{{ end }}"),
            (V{"content", "messages", "role"}));
  EXPECT_EQ(vars("{{ range .Messages }}{{ if eq .Role \"tool\" }}Tool Result: {{ .ToolName }} "
                 "{{ .Content }}{{ end }}{{ end }}"),
            (V{"content", "messages", "role", "toolname"}));
}

TEST(OllamaParse, RejectsWhatOllamaRejects) {
  try {
    parse_ollama("{{ .Prompt ");
    FAIL();
  } catch (const gotmpl::Error& e) {
    EXPECT_NE(std::string(e.what()).find("unclosed action"), std::string::npos);
  }
  try {
    parse_ollama(R"({{define "x"}}{{template "x"}}{{end}}{{template "x"}})");
    FAIL();
  } catch (const gotmpl::Error& e) {
    EXPECT_NE(std::string(e.what()).find("undefined template specified"), std::string::npos);
  }
}

TEST(OllamaFunctions, DatesAreTodayAndYesterdayInLocalTime) {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char today[16];
  std::strftime(today, sizeof today, "%Y-%m-%d", &tm);
  tm.tm_mday -= 1;
  tm.tm_isdst = -1;
  const std::time_t y = std::mktime(&tm);
  localtime_r(&y, &tm);
  char yesterday[16];
  std::strftime(yesterday, sizeof yesterday, "%Y-%m-%d", &tm);
  const ChatInput in = chat(R"([{"role": "user", "content": "Hello"}])");
  EXPECT_EQ(render("{{- range .Messages }}{{ .Content }}{{ end }} Today is {{ currentDate }}", in),
            std::string("Hello Today is ") + today);
  EXPECT_EQ(render("{{- range .Messages }}{{ end }}{{ yesterdayDate \"ignored\" }}", in),
            yesterday);
}

TEST(OllamaMessages, CollateMergesConsecutiveRolesExceptToolAndJoinsSystem) {
  const ChatInput in = chat(R"([
    {"role": "system", "content": "s1"}, {"role": "System", "content": "s2"},
    {"role": "user", "content": "u1"}, {"role": "user", "content": "u2"},
    {"role": "tool", "content": "t1"}, {"role": "tool", "content": "t2"}])");
  EXPECT_EQ(render("[{{ .System }}]{{ range .Messages }}<{{ .Role }}:{{ .Content }}>{{ end }}", in),
            "[s1\n\ns2]<system:s1\n\ns2><user:u1\n\nu2><tool:t1><tool:t2>");
}

TEST(OllamaMessages, FieldsToolCallsAndArgumentsPrintAsOllamaDoes) {
  const ChatInput in = chat(R"([
    {"role": "assistant", "content": "", "thinking": "hmm",
     "tool_calls": [{"id": "c1", "function": {"index": 2, "name": "get_weather",
                     "arguments": {"units": "C", "city": "Paris<1>", "days": 3}}},
                    {"function": {"name": "noargs"}}]},
    {"role": "tool", "content": "20", "tool_name": "get_weather", "tool_call_id": "c1"}])");
  EXPECT_EQ(
      render("{{ range .Messages }}{{ .Role }}|{{ .Thinking }}|{{ range .ToolCalls }}"
             "{{ .ID }}:{{ .Function.Index }}:{{ .Function.Name }}"
             "{{ .Function.Arguments }};{{ end }}|{{ .ToolName }}|{{ .ToolCallID }}\n{{ end }}",
             in),
      "assistant|hmm|c1:2:get_weather{\"city\":\"Paris\\u003c1\\u003e\",\"days\":3,"
      "\"units\":\"C\"};:0:noargs{};||\ntool|||get_weather|c1\n");
  // Arguments are a map: ranged in key order, fields by name; json marshals nil arguments as null.
  EXPECT_EQ(render("{{ range .Messages }}{{ range .ToolCalls }}{{ range $k, $v := .Function."
                   "Arguments }}{{ $k }}={{ $v }} {{ end }}{{ .Function.Arguments.city }} "
                   "{{ json .Function.Arguments }};{{ end }}{{ end }}",
                   in),
            "city=Paris<1> days=3 units=C Paris<1> "
            "{\"city\":\"Paris\\u003c1\\u003e\",\"days\":3,\"units\":\"C\"};<no value> null;");
  // OpenAI-style string arguments are decoded.
  const ChatInput openai = chat(R"([{"role": "assistant", "content": "",
      "tool_calls": [{"function": {"name": "f", "arguments": "{\"b\": [1, 2.5], \"a\": true}"}}]}])");
  EXPECT_EQ(render("{{ range .Messages }}{{ range .ToolCalls }}{{ .Function.Arguments }}{{ end }}"
                   "{{ end }}",
                   openai),
            "{\"a\":true,\"b\":[1,2.5]}");
}

constexpr const char* kTools = R"([{"type": "function", "function": {
  "name": "get_weather", "description": "Get the weather",
  "parameters": {"type": "object", "required": ["city"],
    "properties": {"unit": {"type": ["string", "null"], "enum": ["C", "F"]},
                   "city": {"type": "string", "description": "City name"}}}}}])";

TEST(OllamaMessages, ImagesAndPrintingAMessageAsAGoStructPointer) {
  const ChatInput in = chat(R"([{"role": "user", "content": "look", "images": ["aGk="]},
                               {"role": "assistant", "content": "ok"}])");
  // (Go holds image bytes; here an image is its base64 text, so only its presence is asserted.)
  EXPECT_EQ(render("{{ range .Messages }}{{ len .Images }}{{ if .Images }} image{{ end }};{{ end }}"
                   "{{ index .Messages 1 }}",
                   in),
            "1 image;0;&{assistant ok  [] []  }");
}

TEST(OllamaTools, PrintAsJsonAndExposeFunctionFields) {
  ChatInput in = chat(R"([{"role": "user", "content": "hi"}])");
  in.tools = Json::parse(kTools);
  const std::string tools_json =
      "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Get the "
      "weather\",\"parameters\":{\"type\":\"object\",\"required\":[\"city\"],\"properties\":{"
      "\"city\":{\"type\":\"string\",\"description\":\"City name\"},\"unit\":{\"type\":["
      "\"string\",\"null\"],\"enum\":[\"C\",\"F\"]}}}}}]";
  EXPECT_EQ(render("{{ .Tools }}{{ range .Messages }}{{ end }}", in), tools_json);
  EXPECT_EQ(render("{{ json .Tools }}{{ range .Messages }}{{ end }}", in), tools_json);
  EXPECT_EQ(render("{{ range .Tools }}{{ . }}{{ end }}{{ range .Messages }}{{ end }}", in),
            tools_json.substr(1, tools_json.size() - 2));
  EXPECT_EQ(render("{{ range .Tools }}{{ .Function.Name }}({{ range $name, $p := .Function."
                   "Parameters.Properties }}{{ $name }}: {{ $p.Type }} [{{ toTypeScriptType $p }}]"
                   "{{ with $p.Description }} - {{ . }}{{ end }}, {{ end }}) required={{ .Function."
                   "Parameters.Required }}{{ end }}{{ range .Messages }}{{ end }}",
                   in),
            "get_weather(city: string [string] - City name, unit: [string null] [string | null], "
            ") required=[city]");
  // templateToolFunction has no String method: Go's fmt prints it as a struct, with the
  // properties (which do have one) as JSON.
  EXPECT_EQ(
      render("{{ range .Tools }}{{ .Function }}{{ end }}{{ range .Messages }}{{ end }}", in),
      "{get_weather Get the weather {object <nil> <nil> [city] {\"city\":{\"type\":\"string\","
      "\"description\":\"City name\"},\"unit\":{\"type\":[\"string\",\"null\"],\"enum\":["
      "\"C\",\"F\"]}}}}");
  EXPECT_EQ(render("{{ toTypeScriptType \"x\" }}{{ range .Messages }}{{ end }}", in), "any");
  // Go methods are callable as fields: ToolProperty.ToTypeScriptType, String of the wrappers.
  EXPECT_EQ(render("{{ range .Tools }}{{ .Function.Parameters.Properties.unit.ToTypeScriptType }}"
                   "{{ end }}{{ range .Messages }}{{ end }}",
                   in),
            "string | null");
  EXPECT_EQ(render("{{ .Tools.String }}{{ range .Messages }}{{ end }}", in), tools_json);
  // No tools: .Tools is false and prints as JSON null.
  EXPECT_EQ(
      render("{{ if .Tools }}yes{{ else }}no{{ end }} {{ .Tools }}{{ .Messages }}", chat("[]")),
      "no null[]");
}

TEST(OllamaThink, ThinkLevelAndIsThinkSetFollowOllamasThinkValue) {
  const char* t = "{{ .Think }} {{ .ThinkLevel }} {{ .IsThinkSet }}{{ range .Messages }}{{ end }}";
  ChatInput in = chat("[]");
  EXPECT_EQ(render(t, in), "false  false");
  in.think = true;
  EXPECT_EQ(render(t, in), "true medium true");
  in.think = false;
  EXPECT_EQ(render(t, in), "false  true");
  in.think.reset();
  in.think_level = "high";
  EXPECT_EQ(render(t, in), "true high true");
}

TEST(OllamaRender, MissingKeysPrintNoValueAsGoDoes) {
  // Legacy data has no .Messages or .Tools; a missing key prints "<no value>".
  EXPECT_EQ(render("{{ .Prompt }}|{{ .Tools }}|{{ .Suffix }}", chat(kMistralMessages)),
            "Hello friend!|<no value>|<no value>Hello human!What is your name?|<no value>|"
            "<no value>");
}

}  // namespace
}  // namespace corral::tmpl
