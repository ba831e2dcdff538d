// Tool-call syntax detection from chat templates, and the streaming tool-call parser.
#include "template/toolcall.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "testdata.h"

namespace corral::tmpl {
namespace {

using Json = nlohmann::ordered_json;

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Everything a parser produced over a whole output, the deltas joined.
struct Parsed {
  std::string content;
  std::vector<ToolCall> calls;
  std::vector<ToolCallError> errors;
};

void append(Parsed& p, ToolCallDelta d) {
  p.content += d.content;
  for (auto& c : d.calls) p.calls.push_back(std::move(c));
  for (auto& e : d.errors) p.errors.push_back(std::move(e));
}

Parsed parse_chunks(const ToolCallFormat& format, const std::vector<std::string>& chunks) {
  ToolCallParser parser(format);
  Parsed p;
  for (const std::string& chunk : chunks) append(p, parser.push(chunk));
  append(p, parser.finish());
  return p;
}

Parsed parse(ToolCallStyle style, const std::string& text) {
  return parse_chunks({style, ""}, {text});
}

// Raw model text need not be valid UTF-8; shown escaped, with bad bytes replaced.
std::string quoted(const std::string& text) {
  return Json(text).dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string describe(const Parsed& p) {
  std::string s = "content=" + quoted(p.content);
  // Throws if the parser let invalid UTF-8 into a call.
  for (const ToolCall& c : p.calls)
    s += " call=" + Json(c.name).dump() + c.arguments.dump() + "#" + Json(c.id).dump();
  for (const ToolCallError& e : p.errors) s += " error=" + e.message + ":" + quoted(e.text);
  return s;
}

// The result must not depend on how the output was cut into pieces: every split into two
// chunks, and one byte at a time, give what the whole text gives.
void expect_same_for_every_split(const ToolCallFormat& format, const std::string& text) {
  const std::string whole = describe(parse_chunks(format, {text}));
  for (size_t i = 0; i <= text.size(); ++i) {
    ASSERT_EQ(describe(parse_chunks(format, {text.substr(0, i), text.substr(i)})), whole)
        << "split at byte " << i << " of " << quoted(text);
  }
  std::vector<std::string> bytes;
  for (const char c : text) bytes.emplace_back(1, c);
  EXPECT_EQ(describe(parse_chunks(format, bytes)), whole) << "byte by byte: " << text;
}

const Json kParis = {{"city", "Paris"}, {"unit", "celsius"}};

// --- detection ---

TEST(ToolCallFormat, DetectedOnEveryHuggingFaceFixtureTemplate) {
  const std::map<std::string, ToolCallStyle> expected = {
      {"CohereForAI-c4ai-command-r-plus-tool_use.jinja", ToolCallStyle::kCommandR},
      {"CohereForAI-c4ai-command-r7b-12-2024-tool_use.jinja", ToolCallStyle::kCommandR7B},
      {"NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja", ToolCallStyle::kHermes},
      {"NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja", ToolCallStyle::kHermes},
      {"Qwen-Qwen2.5-7B-Instruct.jinja", ToolCallStyle::kHermes},
      {"deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja", ToolCallStyle::kDeepSeekR1},
      {"deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja", ToolCallStyle::kDeepSeekR1},
      {"fireworks-ai-llama-3-firefunction-v2.jinja", ToolCallStyle::kFireFunction},
      {"google-gemma-2-2b-it.jinja", ToolCallStyle::kNone},
      {"llama-cpp-deepseek-r1.jinja", ToolCallStyle::kDeepSeekR1},
      {"meetkai-functionary-medium-v3.1.jinja", ToolCallStyle::kFunctionaryV31},
      {"meetkai-functionary-medium-v3.2.jinja", ToolCallStyle::kFunctionaryV32},
      {"meta-llama-Llama-3.1-8B-Instruct.jinja", ToolCallStyle::kLlama31},
      {"meta-llama-Llama-3.2-3B-Instruct.jinja", ToolCallStyle::kJson},
      {"meta-llama-Llama-3.3-70B-Instruct.jinja", ToolCallStyle::kLlama31},
      {"microsoft-Phi-3.5-mini-instruct.jinja", ToolCallStyle::kNone},
      {"mistralai-Mistral-Nemo-Instruct-2407.jinja", ToolCallStyle::kMistral},
  };
  const std::string dir = testing::testdata_path("chat-templates/hf");
  size_t seen = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (entry.path().extension() != ".jinja") continue;
    ++seen;
    const auto it = expected.find(name);
    ASSERT_NE(it, expected.end()) << "no expectation for fixture " << name;
    const ToolCallFormat format = detect_tool_call_format(read_text(entry.path().string()));
    EXPECT_EQ(to_string(format.style), to_string(it->second)) << name;
  }
  EXPECT_EQ(seen, expected.size());
}

TEST(ToolCallFormat, DetectedOnOllamaBuiltinsOnlyWhereTheyTakeTools) {
  const std::string dir = testing::testdata_path("chat-templates/ollama");
  size_t seen = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".gotmpl") continue;
    ++seen;
    const std::string name = entry.path().stem().string();
    const std::string text = read_text(entry.path().string());
    const ToolCallStyle want =
        name == "command-r" ? ToolCallStyle::kCommandR : ToolCallStyle::kNone;
    EXPECT_EQ(to_string(detect_tool_call_format(text).style), to_string(want)) << name;
  }
  EXPECT_GE(seen, 20u);
}

TEST(ToolCallFormat, DetectedOnTokenizerConfigChatTemplates) {
  const std::map<std::string, ToolCallStyle> expected = {
      {"qwen3", ToolCallStyle::kHermes},
      {"llama3", ToolCallStyle::kNone},
      {"gemma3", ToolCallStyle::kNone},
  };
  for (const auto& [model, style] : expected) {
    // Plain (sorted) json: gemma3's config holds 260k keys, which ordered_json inserts slowly.
    const nlohmann::json config = nlohmann::json::parse(
        read_text(testing::testdata_path("tokenizers/" + model + "/tokenizer_config.json")));
    const std::string tmpl = config.at("chat_template").get<std::string>();
    EXPECT_EQ(to_string(detect_tool_call_format(tmpl).style), to_string(style)) << model;
  }
}

TEST(ToolCallFormat, OllamaGoTemplateTagIsTheTextInsideTheToolCallsBlock) {
  const std::string tools_header = "{{ if .Tools }}Tools: {{ json .Tools }}{{ end }}";
  const std::string hermes =
      tools_header +
      "{{ range .Messages }}{{ if .ToolCalls }}<tool_call>\n{{ range .ToolCalls }}"
      "{\"name\": \"{{ .Function.Name }}\", \"arguments\": {{ .Function.Arguments }}}"
      "{{ end }}</tool_call>{{ end }}{{ end }}";
  EXPECT_EQ(detect_tool_call_format(hermes), (ToolCallFormat{ToolCallStyle::kHermes, ""}));

  // No text before the JSON: Ollama parses a leading JSON object.
  const std::string llama = tools_header +
                            "{{- if .ToolCalls }}{{ range .ToolCalls }}{\"name\": "
                            "\"{{ .Function.Name }}\", \"parameters\": {{ .Function.Arguments }}}"
                            "{{ end }}{{ end }}";
  EXPECT_EQ(detect_tool_call_format(llama), (ToolCallFormat{ToolCallStyle::kJson, ""}));

  const std::string mistral = tools_header +
                              "{{- if .ToolCalls }}[TOOL_CALLS] [{{ range .ToolCalls }}"
                              "{\"name\": \"{{ .Function.Name }}\"}{{ end }}]{{ end }}";
  EXPECT_EQ(detect_tool_call_format(mistral), (ToolCallFormat{ToolCallStyle::kMistral, ""}));

  const std::string custom = tools_header +
                             "{{ if .Content }}{{ .Content }}{{- else if .ToolCalls -}}\n"
                             "  <functioncall> [{{ range .ToolCalls }}{}{{ end }}]{{ end }}";
  EXPECT_EQ(detect_tool_call_format(custom),
            (ToolCallFormat{ToolCallStyle::kTagged, "<functioncall>"}));

  // Where Ollama's tag search stops: blank text is skipped, nested blocks are entered, any other
  // action ends the search (then a leading JSON object is the call).
  const std::map<std::string, ToolCallFormat> tags = {
      {"{{if .ToolCalls}}{{end}}", {ToolCallStyle::kJson, ""}},
      {"{{if .ToolCalls}} \n {{range .ToolCalls}}{{ . }}{{end}}]{{end}}",
       {ToolCallStyle::kJson, ""}},
      {"{{if .ToolCalls}}\r\n{{range .ToolCalls}}\r\n<tool_call>{{ . }}{{end}}{{end}}",
       {ToolCallStyle::kHermes, ""}},
      {"{{if .ToolCalls}}Action: ```json\n{{end}}", {ToolCallStyle::kCommandR, ""}},
      {"{{if .ToolCalls}} functools[{{end}}", {ToolCallStyle::kFireFunction, ""}},
      {"{{if .ToolCalls}}[TOOL_CALL] [{{end}}", {ToolCallStyle::kTagged, "[TOOL_CALL]"}},
      {"{{if .ToolCalls}}Calls:{{if .X}}inner{{end}}{{end}}", {ToolCallStyle::kTagged, "Calls:"}},
      {"{{ if .ToolCalls -}}\n[{{range .ToolCalls}}{{ . }}{{end}}]{{end}}",
       {ToolCallStyle::kJson, ""}},
  };
  for (const auto& [body, want] : tags) {
    EXPECT_EQ(detect_tool_call_format("{{ .Tools }}" + body), want) << body;
  }

  // Renders tool calls but never offers tools: no tool support.
  const std::string no_tools = "{{ if .ToolCalls }}<tool_call>{{ end }}";
  EXPECT_FALSE(detect_tool_call_format(no_tools).supports_tools());
  EXPECT_FALSE(detect_tool_call_format("{{ .Prompt }}").supports_tools());
  EXPECT_FALSE(detect_tool_call_format("plain text").supports_tools());
}

// The assistant turn a real template renders for a tool call, parsed back with the format
// detected from the same template, gives the call that went in.
TEST(ToolCallParser, ParsesToolCallsAsTheirOwnTemplatesRenderThem) {
  struct Turn {
    std::string open, close;
  };
  const std::map<std::string, Turn> turns = {
      {"CohereForAI-c4ai-command-r7b-12-2024-tool_use.jinja",
       {"<|CHATBOT_TOKEN|>", "<|END_OF_TURN_TOKEN|>"}},
      {"NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja",
       {"<|im_start|>assistant\n", "<|im_end|>"}},
      {"NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja",
       {"<|im_start|>assistant\n", "<|im_end|>"}},
      {"Qwen-Qwen2.5-7B-Instruct.jinja", {"<|im_start|>assistant\n", "<|im_end|>"}},
      {"meta-llama-Llama-3.1-8B-Instruct.jinja",
       {"<|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>"}},
      {"meta-llama-Llama-3.2-3B-Instruct.jinja",
       {"<|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>"}},
      {"meta-llama-Llama-3.3-70B-Instruct.jinja",
       {"<|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>"}},
  };
  const Json rendered =
      Json::parse(read_text(testing::testdata_path("chat-templates/hf-rendered.json")));
  for (const auto& [name, turn] : turns) {
    SCOPED_TRACE(name);
    std::string text;
    for (const Json& c : rendered.at("templates").at(name).at("cases")) {
      if (c.at("name") == "tools") text = c.at("rendered").get<std::string>();
    }
    ASSERT_FALSE(text.empty());
    const size_t start = text.find(turn.open, text.find("Paris?")) + turn.open.size();
    const size_t end = text.find(turn.close, start);
    ASSERT_NE(end, std::string::npos);
    const std::string output = text.substr(start, end - start);

    const ToolCallFormat format =
        detect_tool_call_format(read_text(testing::testdata_path("chat-templates/hf/" + name)));
    const Parsed p = parse_chunks(format, {output});
    ASSERT_EQ(p.calls.size(), 1u) << output << "\n" << describe(p);
    EXPECT_EQ(p.calls[0].name, "get_weather");
    EXPECT_EQ(p.calls[0].arguments, kParis);
    EXPECT_TRUE(p.errors.empty());
    EXPECT_EQ(p.content.find("get_weather"), std::string::npos) << p.content;
    expect_same_for_every_split(format, output);
  }
}

// --- parsing ---

TEST(ToolCallParser, ParsesACompleteHermesCall) {
  const Parsed p = parse(ToolCallStyle::kHermes,
                         "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": "
                         "\"Paris\", \"unit\": \"celsius\"}}\n</tool_call>");
  ASSERT_EQ(p.calls.size(), 1u) << describe(p);
  EXPECT_EQ(p.calls[0].name, "get_weather");
  EXPECT_EQ(p.calls[0].arguments, kParis);
  EXPECT_EQ(p.calls[0].id, "");
  EXPECT_EQ(p.content, "");
  EXPECT_TRUE(p.errors.empty());
}

TEST(ToolCallParser, TextBeforeACallIsContent) {
  const Parsed p = parse(ToolCallStyle::kHermes,
                         "Let me check that.\n<tool_call>{\"name\": \"f\", \"arguments\": {}}"
                         "</tool_call>\n\nDone.");
  ASSERT_EQ(p.calls.size(), 1u) << describe(p);
  EXPECT_EQ(p.calls[0].name, "f");
  EXPECT_EQ(p.calls[0].arguments, Json::object());
  EXPECT_EQ(p.content, "Let me check that.\nDone.");
}

TEST(ToolCallParser, HoldsBackAPartialTagUntilTheNextChunkDecides) {
  ToolCallParser parser({ToolCallStyle::kHermes, ""});
  EXPECT_EQ(parser.push("Hi <tool").content, "Hi ");
  EXPECT_EQ(parser.push("s are fun").content, "<tools are fun");
  EXPECT_EQ(parser.push(" <").content, " ");
  ToolCallDelta d = parser.push("tool_call>{\"name\": \"f\", \"arguments\"");
  EXPECT_TRUE(d.empty());
  d = parser.push(": {\"x\": 1}}</tool_");
  ASSERT_EQ(d.calls.size(), 1u);
  EXPECT_EQ(d.calls[0].arguments, (Json{{"x", 1}}));
  EXPECT_EQ(parser.calls_emitted(), 1u);
  EXPECT_TRUE(parser.push("call>").empty());
  EXPECT_TRUE(parser.finish().empty());
}

TEST(ToolCallParser, ResultDoesNotDependOnWhereChunksSplit) {
  const std::vector<std::pair<ToolCallStyle, std::string>> outputs = {
      {ToolCallStyle::kHermes,
       "Sure. <tool_call>\n{\"name\": \"a\", \"arguments\": {\"q\": \"x}<\\\"\"}}\n</tool_call>\n"
       "<tool_call>{\"name\": \"b\", \"arguments\": \"{\\\"n\\\": 2}\"}</tool_call>"},
      {ToolCallStyle::kMistral,
       "[TOOL_CALLS][{\"name\": \"a\", \"arguments\": {\"n\": 1}, \"id\": \"abcDEF123\"}, "
       "{\"name\": \"b\", \"arguments\": {}, \"id\": \"zzzzzzzz9\"}]"},
      {ToolCallStyle::kJson,
       "\n {\"name\": \"a\", \"parameters\": {\"n\": [1, {\"m\": 2}]}}; {\"type\": \"function\", "
       "\"name\": \"b\", \"parameters\": {}}"},
      {ToolCallStyle::kLlama31, "<|python_tag|>brave_search.call(query=\"paris (fr), \\\"x\\\"\")"},
      {ToolCallStyle::kFunctionaryV31,
       "<function=get_weather>{\"city\": \"Paris\"}</function><function=b>{}</function>"},
      {ToolCallStyle::kFunctionaryV32,
       "all\nChecking.\n>>>get_weather\n{\"city\": \"Paris\"}>>>python\nprint(1 >> 2)"},
      {ToolCallStyle::kCommandR,
       "Action: ```json\n[\n    {\n        \"tool_name\": \"get_weather\",\n        "
       "\"parameters\": {\"city\": \"Paris\"}\n    }\n]```"},
      {ToolCallStyle::kCommandR7B,
       "<|START_THINKING|>plan<|END_THINKING|><|START_ACTION|>[\n    {\"tool_call_id\": \"0\", "
       "\"tool_name\": \"a\", \"parameters\": {}}\n]<|END_ACTION|>"},
      {ToolCallStyle::kFireFunction,
       " functools[{\"name\": \"a\", \"arguments\": {\"n\": 1}}, {\"name\": \"b\", "
       "\"arguments\": {}}]"},
      {ToolCallStyle::kDeepSeekR1,
       "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n"
       "{\"city\": \"Paris\"}\n```<｜tool▁call▁end｜>\n<｜tool▁call▁begin｜>function<｜tool▁sep｜>b"
       "\n```json\n{}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>"},
      {ToolCallStyle::kHermes, "<tool_call>{\"name\": \"a\", \"arguments\": {]}</tool_call>ok"},
  };
  for (const auto& [style, text] : outputs) {
    SCOPED_TRACE(std::string(to_string(style)) + ": " + text);
    const Parsed whole = parse(style, text);
    EXPECT_FALSE(whole.calls.empty() && whole.errors.empty()) << describe(whole);
    expect_same_for_every_split({style, ""}, text);
  }
}

TEST(ToolCallParser, ParsesSeveralCallsOneAfterAnotherAndInArrays) {
  Parsed p = parse(ToolCallStyle::kHermes,
                   "<tool_call>{\"name\": \"a\", \"arguments\": {\"n\": 1}}</tool_call>\n"
                   "<tool_call>{\"name\": \"b\", \"arguments\": {\"n\": 2}}</tool_call>");
  ASSERT_EQ(p.calls.size(), 2u) << describe(p);
  EXPECT_EQ(p.calls[0].name, "a");
  EXPECT_EQ(p.calls[1].name, "b");
  EXPECT_EQ(p.calls[1].arguments, (Json{{"n", 2}}));
  EXPECT_EQ(p.content, "");

  p = parse(ToolCallStyle::kMistral,
            "[TOOL_CALLS][{\"name\": \"a\", \"arguments\": {\"n\": 1}, \"id\": \"abcDEF123\"}, "
            "{\"name\": \"b\", \"arguments\": {}, \"id\": \"zzzzzzzz9\"}]");
  ASSERT_EQ(p.calls.size(), 2u) << describe(p);
  EXPECT_EQ(p.calls[0].id, "abcDEF123");
  EXPECT_EQ(p.calls[1].id, "zzzzzzzz9");

  p = parse(ToolCallStyle::kJson,
            "{\"name\": \"a\", \"parameters\": {\"n\": 1}}; {\"name\": \"b\", \"parameters\": {}}");
  ASSERT_EQ(p.calls.size(), 2u) << describe(p);
  EXPECT_EQ(p.calls[1].name, "b");
  EXPECT_EQ(p.content, "");

  p = parse(ToolCallStyle::kJson,
            "[{\"name\": \"a\", \"parameters\": {}}, {\"name\": \"b\", "
            "\"arguments\": {\"k\": true}}]");
  ASSERT_EQ(p.calls.size(), 2u) << describe(p);
  EXPECT_EQ(p.calls[1].arguments, (Json{{"k", true}}));

  p = parse(ToolCallStyle::kCommandR7B,
            "<|START_ACTION|>[{\"tool_call_id\": \"0\", \"tool_name\": \"a\", \"parameters\": "
            "{\"n\": 1}}, {\"tool_call_id\": \"1\", \"tool_name\": \"b\", \"parameters\": {}}]"
            "<|END_ACTION|>");
  ASSERT_EQ(p.calls.size(), 2u) << describe(p);
  EXPECT_EQ(p.calls[0].id, "0");
  EXPECT_EQ(p.calls[1].name, "b");

  p = parse(ToolCallStyle::kFunctionaryV32,
            "get_weather\n{\"city\": \"Paris\"}>>>get_time\n{\"tz\": \"CET\"}");
  ASSERT_EQ(p.calls.size(), 2u) << describe(p);
  EXPECT_EQ(p.calls[0].arguments, (Json{{"city", "Paris"}}));
  EXPECT_EQ(p.calls[1].name, "get_time");
  EXPECT_EQ(p.content, "");

  p = parse(
      ToolCallStyle::kDeepSeekR1,
      "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n"
      "{\"city\": \"Paris\"}\n```<｜tool▁call▁end｜>\n<｜tool▁call▁begin｜>function<｜tool▁sep｜>"
      "b\n```json\n{}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>");
  ASSERT_EQ(p.calls.size(), 2u) << describe(p);
  EXPECT_EQ(p.calls[0].arguments, (Json{{"city", "Paris"}}));
  EXPECT_EQ(p.calls[1].name, "b");
  EXPECT_EQ(p.content, "");
}

TEST(ToolCallParser, MistralNameAndArgsSyntax) {
  const std::string text =
      "[TOOL_CALLS]get_weather[CALL_ID]abcDEF123[ARGS]{\"city\": \"Paris\", \"unit\": "
      "\"celsius\"}[TOOL_CALLS]get_time[ARGS]{}";
  const Parsed p = parse(ToolCallStyle::kMistral, text);
  ASSERT_EQ(p.calls.size(), 2u) << describe(p);
  EXPECT_EQ(p.calls[0].name, "get_weather");
  EXPECT_EQ(p.calls[0].id, "abcDEF123");
  EXPECT_EQ(p.calls[0].arguments, kParis);
  EXPECT_EQ(p.calls[1].name, "get_time");
  EXPECT_EQ(p.calls[1].id, "");
  EXPECT_TRUE(p.errors.empty());
  EXPECT_EQ(p.content, "");
  expect_same_for_every_split({ToolCallStyle::kMistral, ""}, text);
}

TEST(ToolCallParser, LeadingJsonAnswerStreamsOnceItsFirstKeyRulesOutACall) {
  ToolCallParser parser({ToolCallStyle::kJson, ""});
  EXPECT_EQ(parser.push("{\"na").content, "");  // could still be "name"
  EXPECT_EQ(parser.push("tion\": \"Fr").content, "{\"nation\": \"Fr");
  EXPECT_EQ(parser.push("ance\"}").content, "ance\"}");
  EXPECT_TRUE(parser.finish().empty());

  ToolCallParser array({ToolCallStyle::kJson, ""});
  EXPECT_EQ(array.push("[1, ").content, "[1, ");
}

TEST(ToolCallParser, CopiesParseIndependently) {
  ToolCallParser a({ToolCallStyle::kHermes, ""});
  EXPECT_TRUE(a.push("<tool_call>{\"name\": \"f\", ").empty());
  ToolCallParser b = a;
  const ToolCallDelta da = a.push("\"arguments\": {\"n\": 1}}</tool_call>");
  const ToolCallDelta db = b.push("\"arguments\": {\"n\": 2}}</tool_call>");
  ASSERT_EQ(da.calls.size(), 1u);
  ASSERT_EQ(db.calls.size(), 1u);
  EXPECT_EQ(da.calls[0].arguments, (Json{{"n", 1}}));
  EXPECT_EQ(db.calls[0].arguments, (Json{{"n", 2}}));
}

TEST(ToolCallParser, ArgumentsGivenAsAJsonStringAreParsed) {
  const Parsed p = parse(ToolCallStyle::kHermes,
                         "<tool_call>{\"name\": \"f\", \"arguments\": \"{\\\"city\\\": "
                         "\\\"Paris\\\", \\\"unit\\\": \\\"celsius\\\"}\"}</tool_call>");
  ASSERT_EQ(p.calls.size(), 1u) << describe(p);
  EXPECT_EQ(p.calls[0].arguments, kParis);
}

TEST(ToolCallParser, ToleratesRawNewlinesInsideJsonStrings) {
  const Parsed p = parse(ToolCallStyle::kHermes,
                         "<tool_call>\n{\"name\": \"run\", \"arguments\": {\"code\": "
                         "\"x = 1\n\tprint(x)\"}}\n</tool_call>");
  ASSERT_EQ(p.calls.size(), 1u) << describe(p);
  EXPECT_EQ(p.calls[0].arguments, (Json{{"code", "x = 1\n\tprint(x)"}}));
}

TEST(ToolCallParser, ReportsMalformedCallsAndCarriesOn) {
  // The JSON is cut short by the closing tag; the next call still parses.
  Parsed p = parse(ToolCallStyle::kHermes,
                   "<tool_call>{\"name\": \"a\", \"arguments\": {\"n\": 1}</tool_call>"
                   "<tool_call>{\"name\": \"b\", \"arguments\": {}}</tool_call>after");
  ASSERT_EQ(p.errors.size(), 1u) << describe(p);
  EXPECT_EQ(p.errors[0].text, "<tool_call>{\"name\": \"a\", \"arguments\": {\"n\": 1}");
  EXPECT_FALSE(p.errors[0].message.empty());
  ASSERT_EQ(p.calls.size(), 1u);
  EXPECT_EQ(p.calls[0].name, "b");
  EXPECT_EQ(p.content, "after");

  // Balanced but not JSON.
  p = parse(ToolCallStyle::kMistral, "[TOOL_CALLS][{'name': 'a'}]");
  ASSERT_EQ(p.errors.size(), 1u) << describe(p);
  EXPECT_TRUE(p.calls.empty());

  // Cut off by the end of generation.
  p = parse(ToolCallStyle::kHermes, "<tool_call>{\"name\": \"a\", \"argu");
  ASSERT_EQ(p.errors.size(), 1u) << describe(p);
  EXPECT_EQ(p.errors[0].text, "<tool_call>{\"name\": \"a\", \"argu");
  EXPECT_EQ(p.content, "");

  // Valid JSON, wrong shape: no name; arguments a string that is not JSON.
  p = parse(ToolCallStyle::kHermes,
            "<tool_call>{\"arguments\": {}}</tool_call><tool_call>{\"name\": \"f\", "
            "\"arguments\": \"city=Paris\"}</tool_call>");
  ASSERT_EQ(p.errors.size(), 2u) << describe(p);
  EXPECT_TRUE(p.calls.empty());

  // Not JSON at all inside the tag.
  p = parse(ToolCallStyle::kHermes, "<tool_call>get_weather(city=Paris)</tool_call>");
  ASSERT_EQ(p.errors.size(), 1u) << describe(p);
  EXPECT_EQ(p.errors[0].text, "<tool_call>get_weather(city=Paris)");

  p = parse(ToolCallStyle::kFunctionaryV31, "<function=f>{\"a\": }</function>");
  ASSERT_EQ(p.errors.size(), 1u) << describe(p);
  EXPECT_TRUE(p.calls.empty());
}

TEST(ToolCallParser, TemplateWithoutToolsPassesEverythingThrough) {
  const ToolCallFormat format = detect_tool_call_format(
      read_text(testing::testdata_path("chat-templates/hf/google-gemma-2-2b-it.jinja")));
  ASSERT_FALSE(format.supports_tools());
  ToolCallParser parser(format);
  // Nothing is held back, not even what looks like the start of a tag.
  EXPECT_EQ(parser.push("{\"name\": \"f\", \"parameters\": {}} <tool_").content,
            "{\"name\": \"f\", \"parameters\": {}} <tool_");
  EXPECT_EQ(parser.push("call>{}</tool_call>").content, "call>{}</tool_call>");
  EXPECT_TRUE(parser.finish().empty());
}

TEST(ToolCallParser, LeadingJsonThatIsNotACallIsContent) {
  Parsed p = parse(ToolCallStyle::kJson, "{\"answer\": 42}");
  EXPECT_TRUE(p.calls.empty());
  EXPECT_TRUE(p.errors.empty());
  EXPECT_EQ(p.content, "{\"answer\": 42}");

  // JSON after text is never a call in this style.
  p = parse(ToolCallStyle::kJson, "Here: {\"name\": \"f\", \"parameters\": {}}");
  EXPECT_TRUE(p.calls.empty());
  EXPECT_EQ(p.content, "Here: {\"name\": \"f\", \"parameters\": {}}");

  // Cut off: what there is goes out as text.
  p = parse(ToolCallStyle::kJson, "  {\"name\": \"f\"");
  EXPECT_TRUE(p.calls.empty());
  EXPECT_EQ(p.content, "{\"name\": \"f\"");

  p = parse(ToolCallStyle::kJson, "{not json} and more");
  EXPECT_TRUE(p.calls.empty());
  EXPECT_EQ(p.content, "{not json} and more");
}

TEST(ToolCallParser, Llama31PythonTagCalls) {
  Parsed p = parse(ToolCallStyle::kLlama31,
                   "<|python_tag|>brave_search.call(query=\"weather in Paris\", count=3, "
                   "safe=True, lang='fr')");
  ASSERT_EQ(p.calls.size(), 1u) << describe(p);
  EXPECT_EQ(p.calls[0].name, "brave_search");
  EXPECT_EQ(p.calls[0].arguments,
            (Json{{"query", "weather in Paris"}, {"count", 3}, {"safe", true}, {"lang", "fr"}}));

  p = parse(ToolCallStyle::kLlama31, "<|python_tag|>import math\nprint(math.pi)\n");
  ASSERT_EQ(p.calls.size(), 1u) << describe(p);
  EXPECT_EQ(p.calls[0].name, "python");
  EXPECT_EQ(p.calls[0].arguments, (Json{{"code", "import math\nprint(math.pi)"}}));

  p = parse(ToolCallStyle::kLlama31,
            "<|python_tag|>{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\", "
            "\"unit\": \"celsius\"}}");
  ASSERT_EQ(p.calls.size(), 1u) << describe(p);
  EXPECT_EQ(p.calls[0].arguments, kParis);
}

TEST(ToolCallParser, FunctionaryFormats) {
  Parsed p = parse(ToolCallStyle::kFunctionaryV31,
                   "Sure.<function=get_weather>{\"city\": \"Paris\", \"unit\": \"celsius\"}"
                   "</function>");
  ASSERT_EQ(p.calls.size(), 1u) << describe(p);
  EXPECT_EQ(p.calls[0].name, "get_weather");
  EXPECT_EQ(p.calls[0].arguments, kParis);
  EXPECT_EQ(p.content, "Sure.");

  p = parse(ToolCallStyle::kFunctionaryV32, "all\nHello there >> friend");
  EXPECT_TRUE(p.calls.empty());
  EXPECT_EQ(p.content, "Hello there >> friend");

  p = parse(ToolCallStyle::kFunctionaryV32,
            "all\nChecking.\n>>>get_weather\n{\"city\": \"Paris\"}");
  ASSERT_EQ(p.calls.size(), 1u) << describe(p);
  EXPECT_EQ(p.content, "Checking.\n");
}

TEST(ToolCallParser, CommandRFormats) {
  Parsed p =
      parse(ToolCallStyle::kCommandR,
            "Action: ```json\n[\n    {\n        \"tool_name\": \"get_weather\",\n"
            "        \"parameters\": {\"city\": \"Paris\", \"unit\": \"celsius\"}\n    }\n]```");
  ASSERT_EQ(p.calls.size(), 1u) << describe(p);
  EXPECT_EQ(p.calls[0].arguments, kParis);
  EXPECT_EQ(p.content, "");

  // "Action:" not followed by JSON is just a word.
  p = parse(ToolCallStyle::kCommandR, "Action: none needed.");
  EXPECT_TRUE(p.calls.empty());
  EXPECT_TRUE(p.errors.empty());
  EXPECT_EQ(p.content, "Action: none needed.");

  p = parse(ToolCallStyle::kCommandR7B, "<|START_RESPONSE|>Hello!<|END_RESPONSE|>");
  EXPECT_EQ(p.content, "Hello!");
}

// Random outputs built from every syntax's pieces, JSON punctuation and text: the parser must
// never crash (this runs under the sanitizers in CI) and must give the same result however the
// output is chunked.
TEST(ToolCallParser, RandomOutputsParseTheSameInAnyChunking) {
  const std::vector<std::string> pieces = {"<tool_call>",
                                           "</tool_call>",
                                           "[TOOL_CALLS]",
                                           "[ARGS]",
                                           "[CALL_ID]",
                                           "<|python_tag|>",
                                           "<function=",
                                           "</function>",
                                           ">>>",
                                           "all\n",
                                           "Action:",
                                           "```json",
                                           "```",
                                           "functools",
                                           "<|START_ACTION|>",
                                           "<|END_ACTION|>",
                                           "<｜tool▁calls▁begin｜>",
                                           "<｜tool▁call▁begin｜>",
                                           "<｜tool▁sep｜>",
                                           "<｜tool▁call▁end｜>",
                                           "{",
                                           "}",
                                           "[",
                                           "]",
                                           "\"",
                                           "\\",
                                           ":",
                                           ",",
                                           ";",
                                           "\"name\"",
                                           "\"arguments\"",
                                           "\"parameters\"",
                                           "\"f\"",
                                           "1",
                                           " ",
                                           "\n",
                                           "x",
                                           ".call(",
                                           "=",
                                           ")",
                                           "<",
                                           ">",
                                           "{\"name\": \"f\", \"arguments\": {\"a\": 1}}",
                                           "\xe2\x96"};
  const ToolCallStyle styles[] = {
      ToolCallStyle::kJson,           ToolCallStyle::kLlama31,      ToolCallStyle::kHermes,
      ToolCallStyle::kMistral,        ToolCallStyle::kFireFunction, ToolCallStyle::kFunctionaryV31,
      ToolCallStyle::kFunctionaryV32, ToolCallStyle::kCommandR,     ToolCallStyle::kCommandR7B,
      ToolCallStyle::kDeepSeekR1,     ToolCallStyle::kNone};
  std::mt19937 rng(1234);
  for (const ToolCallStyle style : styles) {
    const ToolCallFormat format{style, ""};
    for (int trial = 0; trial < 300; ++trial) {
      std::string text;
      const int n = static_cast<int>(rng() % 24);
      for (int i = 0; i < n; ++i) text += pieces[rng() % pieces.size()];
      const std::string whole = describe(parse_chunks(format, {text}));
      for (int cut = 0; cut < 3; ++cut) {
        std::vector<std::string> chunks;
        for (size_t pos = 0; pos < text.size();) {
          const size_t len = 1 + rng() % 7;
          chunks.push_back(text.substr(pos, len));
          pos += len;
        }
        ASSERT_EQ(describe(parse_chunks(format, chunks)), whole)
            << to_string(style) << " " << quoted(text);
      }
    }
  }
}

}  // namespace
}  // namespace corral::tmpl
