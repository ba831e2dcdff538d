// The pure parts of the generation routes: request fields, prompts, thinking and tool-call
// output splitting, grammars for forced tool calls, response fields.
#include "server/generation.h"
#include "server/images.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <string>
#include <vector>

#include "ml/gguf/reader.h"
#include "sample/grammar.h"
#include "server/server.h"
#include "testdata.h"
#include "tokenizer/tokenizer.h"

namespace corral::server {
namespace {

using json = OJson;

template <class F>
int status_of(F&& f) {
  try {
    f();
  } catch (const HttpError& e) {
    return e.status;
  }
  return 0;
}

TEST(GenerationFields, CreatedAtIsRfc3339WithNanosecondsTrimmed) {
  using namespace std::chrono;
  const system_clock::time_point t{seconds(1700000000) + nanoseconds(123456000)};
  EXPECT_EQ(rfc3339_nano(t), "2023-11-14T22:13:20.123456Z");
  EXPECT_EQ(rfc3339_nano(system_clock::time_point{seconds(1700000000)}), "2023-11-14T22:13:20Z");
  EXPECT_EQ(rfc3339_nano(system_clock::time_point{seconds(1700000000) + nanoseconds(1)}),
            "2023-11-14T22:13:20.000000001Z");
}

TEST(GenerationFields, RequestOptionsLayerOverModelParametersAndSkipUnknownKeys) {
  store::ModelInfo info;
  info.parameters = {{"temperature", 0.3}, {"top_k", 7}, {"stop", {"<end>"}}};
  const sample::Options o =
      request_options(info, {{"temperature", 0.0}, {"future_option", 1}, {"mirostat", 2}});
  EXPECT_EQ(o.temperature, 0.0f);
  EXPECT_EQ(o.top_k, 7);
  ASSERT_EQ(o.stop.size(), 1u);
  EXPECT_EQ(o.stop[0], "<end>");
  EXPECT_EQ(status_of([&] { request_options(info, {{"temperature", "hot"}}); }), 400);
  EXPECT_EQ(status_of([&] { request_options(info, json::array()); }), 400);
}

TEST(GenerationFields, OrderedJsonKeepsKeyOrderAndIsLinearInKeys) {
  const json j = parse_ordered_json(
      R"({"z": 1, "a": [true, null, {"y": 2.5, "b": "s"}], "m": {}, "z": 3, "u": 18446744073709551615})");
  EXPECT_EQ(j.dump(),
            R"({"z":3,"a":[true,null,{"y":2.5,"b":"s"}],"m":{},"u":18446744073709551615})");
  EXPECT_EQ(parse_ordered_json("[1, -2, \"x\"]").dump(), R"([1,-2,"x"])");
  EXPECT_EQ(parse_ordered_json("7"), 7);
  for (const char* bad : {"", "{", "{\"a\" 1}", "[1,]", "{\"a\": 1} x", "nul"}) {
    EXPECT_EQ(status_of([&] { parse_ordered_json(bad); }), 400) << bad;
  }
  // 100,000 keys in one object: quadratic insertion took minutes; this is a fraction of a second.
  std::string text = "{";
  for (int i = 0; i < 100000; ++i) text += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":0";
  text += "}";
  const auto t0 = std::chrono::steady_clock::now();
  const json big = parse_ordered_json(text);
  EXPECT_EQ(big.size(), 100000u);
  EXPECT_EQ(big.begin().key(), "k0");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(20));
}

// Whatever built a message, an error response carries at most kMaxErrorMessage bytes of it, cut
// at a character boundary.
TEST(GenerationFields, ErrorResponsesAreCutToAShortMessage) {
  httplib::Response res;
  std::string message = "bad value: ";
  for (int i = 0; i < 20000; ++i) message += "\xC3\xA9";  // é
  send_error(res, 400, message);
  EXPECT_EQ(res.status, 400);
  EXPECT_LT(res.body.size(), kMaxErrorMessage + 100);
  const std::string shown = nlohmann::json::parse(res.body)["error"];
  EXPECT_TRUE(shown.starts_with("bad value: \xC3\xA9"));
  EXPECT_NE(shown.find("(40011 bytes)"), std::string::npos) << shown.substr(shown.size() - 40);
  EXPECT_EQ(error_message("short"), "short");
}

TEST(GenerationFields, FormatOtherThanJsonOrSchemaIsRejected) {
  EXPECT_EQ(format_grammar(json()), nullptr);
  EXPECT_EQ(format_grammar(""), nullptr);
  EXPECT_EQ(status_of([] { format_grammar("yaml"); }), 400);
  EXPECT_EQ(status_of([] { format_grammar(42); }), 400);
}

TEST(GenerationFields, ThinkAcceptsBooleansAndLevels) {
  EXPECT_FALSE(parse_think(json()).enabled.has_value());
  EXPECT_TRUE(parse_think(true).on());
  EXPECT_FALSE(parse_think(false).on());
  const parse::Think high = parse_think("high");
  EXPECT_TRUE(high.on());
  EXPECT_EQ(high.level, "high");
  EXPECT_EQ(status_of([] { parse_think("loud"); }), 400);
  EXPECT_EQ(status_of([] { parse_think(3); }), 400);
}

TEST(GenerationFields, KeepAliveParsesDurationsAndRejectsGarbage) {
  EXPECT_FALSE(request_keep_alive(json::object()).has_value());
  EXPECT_EQ(request_keep_alive({{"keep_alive", 0}})->count(), 0);
  EXPECT_EQ(status_of([] { request_keep_alive({{"keep_alive", "soon"}}); }), 400);
}

TEST(GenerationPrompt, MessagesAreNormalizedAndImagesMarked) {
  std::vector<std::string> images;
  const tmpl::Json m = normalize_messages(
      json::array({{{"role", "USER"}, {"content", "hi"}},
                   {{"role", "assistant"}, {"content", nullptr}, {"thinking", "hmm"}},
                   {{"role", "user"}, {"content", "and this?"}, {"images", {"aGk=", "eWF5"}}}}),
      "m", images);
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0]["role"], "user");
  EXPECT_EQ(m[1]["content"], "");
  EXPECT_EQ(m[1]["thinking"], "hmm");
  EXPECT_EQ(m[1]["reasoning_content"], "hmm");
  // Ollama's markers in front of the content; the images decoded in order.
  EXPECT_EQ(m[2]["content"], "[img-0][img-1]and this?");
  EXPECT_EQ(images, (std::vector<std::string>{"hi", "yay"}));
  std::vector<std::string> ignored;
  EXPECT_EQ(
      status_of([&] {
        normalize_messages(json::array({{{"role", "user"}, {"images", {"a!Gk="}}}}), "m", ignored);
      }),
      400);
  EXPECT_EQ(status_of([&] {
              normalize_messages(json::array({{{"role", "user"}, {"images", {5}}}}), "m", ignored);
            }),
            400);
  // Too many: at most kMaxImagesPerRequest images in one request, all messages together.
  std::vector<std::string> many;
  EXPECT_EQ(
      status_of([&] {
        normalize_messages(
            json::array(
                {{{"role", "user"},
                  {"images", json(std::vector<std::string>(kMaxImagesPerRequest + 1, "aGk="))}}}),
            "m", many);
      }),
      400);
  EXPECT_EQ(status_of([&] {
              normalize_messages(json::array({{{"content", "x"}}}), "m", ignored);
            }),
            400);
  EXPECT_EQ(status_of([&] {
              normalize_messages(json::array({{{"role", "user"}, {"content", 5}}}), "m", ignored);
            }),
            400);
}

TEST(GenerationPrompt, ModelSystemGoesFirstUnlessTheRequestBringsOne) {
  store::ModelInfo info;
  info.system = "be brief";
  info.messages = tmpl::Json::array({{{"role", "user"}, {"content", "example"}}});
  const tmpl::Json user = tmpl::Json::array({{{"role", "user"}, {"content", "q"}}});
  tmpl::Json m = chat_messages(info, user);
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0]["content"], "be brief");
  EXPECT_EQ(m[1]["content"], "example");
  EXPECT_EQ(m[2]["content"], "q");
  tmpl::Json own = tmpl::Json::array({{{"role", "system"}, {"content", "mine"}}});
  own.push_back(user[0]);
  m = chat_messages(info, own);
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0]["content"], "example");
  EXPECT_EQ(m[1]["content"], "mine");
}

TEST(GenerationPrompt, LongChatsLoseTheirOldestMessagesButKeepSystemAndLast) {
  const auto file =
      ml::gguf::File::open(testing::testdata_path("tinystories260k/stories260K-f32.gguf"));
  const tokenizer::Tokenizer tok = tokenizer::Tokenizer::from_gguf(file.metadata());
  const tmpl::PromptTemplate t{
      tmpl::Syntax::kGo, "{{ range .Messages }}[{{ .Role }}] {{ .Content }}\n{{ end }}", "test"};
  tmpl::ChatInput in;
  std::string long_text;
  for (int i = 0; i < 40; ++i) long_text += "the cat sat on the mat. ";
  in.messages = tmpl::Json::array({{{"role", "system"}, {"content", "SYS"}},
                                   {{"role", "user"}, {"content", "OLD " + long_text}},
                                   {{"role", "assistant"}, {"content", "MID " + long_text}},
                                   {{"role", "user"}, {"content", "LAST question"}}});
  const std::string full = render_chat(t, in, tok, 100000, true);
  EXPECT_NE(full.find("OLD"), std::string::npos);
  const std::string cut = render_chat(t, in, tok, 60, true);
  EXPECT_NE(cut.find("SYS"), std::string::npos);
  EXPECT_EQ(cut.find("OLD"), std::string::npos);
  EXPECT_EQ(cut.find("MID"), std::string::npos);
  EXPECT_NE(cut.find("LAST question"), std::string::npos);
  EXPECT_LE(tokenize_prompt(tok, cut).size(), 60u);
  // Without truncation everything stays, and the last message stays even when it alone is too
  // long.
  EXPECT_EQ(render_chat(t, in, tok, 60, false), full);
  EXPECT_NE(render_chat(t, in, tok, 2, true).find("LAST question"), std::string::npos);
}

// What render_chat did before it searched: every start from the front, rendered and tokenized,
// until the prompt fits.
std::string render_chat_by_scan(const tmpl::PromptTemplate& t, tmpl::ChatInput input,
                                const tokenizer::Tokenizer& tok, int64_t num_ctx) {
  const tmpl::Json all = input.messages;
  for (size_t start = 0; start < all.size(); ++start) {
    tmpl::Json msgs = tmpl::Json::array();
    for (size_t j = 0; j < start; ++j)
      if (all[j].value("role", "") == "system") msgs.push_back(all[j]);
    for (size_t j = start; j < all.size(); ++j) msgs.push_back(all[j]);
    input.messages = std::move(msgs);
    std::string prompt = tmpl::render_prompt(t, input);
    if (start + 1 == all.size() ||
        static_cast<int64_t>(tokenize_prompt(tok, prompt).size()) <= num_ctx)
      return prompt;
  }
  return "";
}

tmpl::Json long_chat(size_t n) {
  const char* words[] = {"the cat", "sat on the mat and", "a dog ran", "once upon a time", "hi"};
  tmpl::Json m = tmpl::Json::array({{{"role", "system"}, {"content", "SYS"}}});
  for (size_t i = 0; i < n; ++i) {
    std::string content = "m" + std::to_string(i) + " ";
    for (size_t k = 0; k <= i % 7; ++k) content += words[(i + k) % 5];
    const char* role = i == n / 3 ? "system" : i % 2 ? "assistant" : "user";
    m.push_back({{"role", role}, {"content", content}});
  }
  return m;
}

TEST(GenerationPrompt, TruncationKeepsWhatAScanFromTheFrontKept) {
  const auto file =
      ml::gguf::File::open(testing::testdata_path("tinystories260k/stories260K-f32.gguf"));
  const tokenizer::Tokenizer tok = tokenizer::Tokenizer::from_gguf(file.metadata());
  const std::vector<tmpl::PromptTemplate> templates = {
      {tmpl::Syntax::kGo, "{{ range .Messages }}[{{ .Role }}] {{ .Content }}\n{{ end }}", "go"},
      {tmpl::Syntax::kJinja,
       "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"
       "{% if add_generation_prompt %}<assistant>{% endif %}",
       "jinja"}};
  tmpl::ChatInput in;
  in.messages = long_chat(60);
  for (const tmpl::PromptTemplate& t : templates) {
    const int64_t full =
        static_cast<int64_t>(tokenize_prompt(tok, tmpl::render_prompt(t, in)).size());
    for (int64_t num_ctx = 1; num_ctx <= full + 1; num_ctx += num_ctx < 40 ? 3 : 17) {
      EXPECT_EQ(render_chat(t, in, tok, num_ctx, true), render_chat_by_scan(t, in, tok, num_ctx))
          << t.source << " num_ctx " << num_ctx;
    }
  }
}

TEST(GenerationPrompt, LongChatsAreCutInFewRenderings) {
  const auto file =
      ml::gguf::File::open(testing::testdata_path("tinystories260k/stories260K-f32.gguf"));
  const tokenizer::Tokenizer tok = tokenizer::Tokenizer::from_gguf(file.metadata());
  const tmpl::PromptTemplate t{
      tmpl::Syntax::kGo, "{{ range .Messages }}[{{ .Role }}] {{ .Content }}\n{{ end }}", "go"};
  tmpl::ChatInput in;
  in.messages = long_chat(10000);
  // The cancellation check is polled before each rendering (and every few thousand steps within
  // one): a scan from the front would poll it ten thousand times.
  tmpl::Limits limits;
  int polls = 0;
  limits.cancelled = [&] { return ++polls < 0; };
  const std::string cut = render_chat(t, in, tok, 300, true, limits);
  EXPECT_LE(tokenize_prompt(tok, cut).size(), 300u);
  EXPECT_NE(cut.find("[system] SYS\n"), std::string::npos);
  EXPECT_NE(cut.find("m9999 "), std::string::npos);
  EXPECT_EQ(cut.find("m9000 "), std::string::npos);
  EXPECT_LT(polls, 200);
  // A client that leaves stops the rendering.
  limits.cancelled = [] { return true; };
  EXPECT_EQ(status_of([&] { render_chat(t, in, tok, 300, true, limits); }), 400);
  // Limits apply to each rendering.
  tmpl::Limits small;
  small.max_output_bytes = 1000;
  try {
    render_chat(t, in, tok, 300, true, small);
    ADD_FAILURE() << "no error";
  } catch (const std::exception& e) {
    EXPECT_TRUE(tmpl::is_limit_error(e)) << e.what();
  }
}

TEST(GenerationOutput, OllamaToolCallsGetAnIdAndTheirArguments) {
  tmpl::ToolCall call;
  call.name = "get_weather";
  call.arguments = {{"city", "Paris"}};
  const OJson j = ollama_tool_call(call, 0);
  EXPECT_EQ(j["function"]["name"], "get_weather");
  EXPECT_EQ(j["function"]["arguments"]["city"], "Paris");
  EXPECT_TRUE(j["id"].get<std::string>().starts_with("call_"));
}

TEST(GenerationOutput, LogprobsCarryTheTokenBytes) {
  runner::Logprob lp;
  lp.chosen = {5, "\xc3", -0.5f};
  lp.top = {{5, "\xc3", -0.5f}, {6, "a", -1.5f}};
  const OJson j = logprobs_json(std::vector<runner::Logprob>{lp});
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["bytes"], OJson::array({195}));
  EXPECT_EQ(j[0]["top_logprobs"].size(), 2u);
  // Half a UTF-8 character must not make serialization throw.
  EXPECT_NO_THROW(dump_json(j));
}

TEST(GenerationOutput, Base64EmbeddingsAreLittleEndianFloat32) {
  EXPECT_EQ(base64_f32_le({1.0f}), "AACAPw==");
  EXPECT_EQ(base64_f32_le({1.0f, -2.0f}), "AACAPwAAAMA=");
  EXPECT_EQ(base64_f32_le({}), "");
}

TEST(GenerationToolChoice, GbnfRulesAreRenamedOutsideLiteralsAndClasses) {
  const std::string gbnf =
      "root ::= \"a b\" item{2,3} [a-z_]+ # a comment\n"
      "item ::= \"x\\\"y\" | [^\\]a] | ws\n"
      "ws ::= [ \\t]*\n";
  EXPECT_EQ(prefix_gbnf_rules(gbnf, "p-"),
            "p-root ::= \"a b\" p-item{2,3} [a-z_]+ \n"
            "p-item ::= \"x\\\"y\" | [^\\]a] | p-ws\n"
            "p-ws ::= [ \\t]*\n");
}

TEST(GenerationToolChoice, ForcingNeedsAKnownToolAndASyntaxThatCanBeForced) {
  const json tools = json::array(
      {{{"type", "function"}, {"function", {{"name", "f"}, {"parameters", json::object()}}}}});
  const tmpl::ToolCallFormat hermes{tmpl::ToolCallStyle::kHermes, ""};
  EXPECT_EQ(status_of([&] { tool_call_gbnf(hermes, tools, "g"); }), 400);
  EXPECT_EQ(status_of([&] { tool_call_gbnf(hermes, json::array(), ""); }), 400);
  EXPECT_EQ(status_of([&] {
              tool_call_gbnf({tmpl::ToolCallStyle::kMistral, ""}, tools, "");
            }),
            400);
}

TEST(GenerationToolChoice, ForcedHermesCallGrammarParses) {
  const json tools = json::array({{{"type", "function"},
                                   {"function",
                                    {{"name", "get_weather"},
                                     {"parameters",
                                      {{"type", "object"},
                                       {"properties", {{"city", {{"type", "string"}}}}},
                                       {"required", {"city"}}}}}}},
                                  {{"type", "function"}, {"function", {{"name", "now"}}}}});
  const std::string gbnf = tool_call_gbnf({tmpl::ToolCallStyle::kHermes, ""}, tools);
  EXPECT_NE(gbnf.find("<tool_call>\\n{\\\"name\\\": \\\"get_weather\\\""), std::string::npos)
      << gbnf;
  EXPECT_NE(gbnf.find("\\\"now\\\""), std::string::npos) << gbnf;
  EXPECT_NO_THROW(sample::Grammar::parse(gbnf)) << gbnf;
  const std::string only = tool_call_gbnf({tmpl::ToolCallStyle::kHermes, ""}, tools, "now");
  EXPECT_EQ(only.find("get_weather"), std::string::npos);
  EXPECT_NO_THROW(sample::Grammar::parse(only)) << only;
}

}  // namespace
}  // namespace corral::server
