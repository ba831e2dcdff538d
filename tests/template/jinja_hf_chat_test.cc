// Hugging Face chat templates rendered by render_hf_chat against what transformers/Jinja2 render.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "template/hf_chat.h"
#include "template/jinja/value.h"
#include "testdata.h"

namespace corral::tmpl {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << "cannot open " << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Json read_json(const std::string& relative) {
  return Json::parse(read_file(testing::testdata_path(relative)));
}

// Renders and compares with the reference: the same text, or an error where it has `error`.
void expect_matches(const std::string& label, const std::string& template_text,
                    const ChatInput& input, const Json& reference) {
  SCOPED_TRACE(label);
  std::string got, error;
  try {
    got = render_hf_chat(template_text, input);
  } catch (const jinja::Error& e) {
    error = e.what();
  }
  if (reference.contains("error")) {
    EXPECT_FALSE(error.empty()) << "expected an error like: " << reference["error"] << "\ngot:\n"
                                << got;
  } else {
    EXPECT_EQ(error, "");
    EXPECT_EQ(got, reference["rendered"].get<std::string>());
  }
}

TEST(HfChat, EveryFixtureTemplateRendersEveryConversationAsJinja2Does) {
  Json reference = read_json("chat-templates/hf-rendered.json");
  Json conversations = read_json("chat-templates/conversations.json");
  size_t checked = 0;
  for (const auto& [name, entry] : reference["templates"].items()) {
    std::string text = read_file(testing::testdata_path("chat-templates/hf/" + name));
    for (const auto& c : entry["cases"]) {
      const Json* conversation = nullptr;
      for (const auto& conv : conversations)
        if (conv["name"] == c["name"]) conversation = &conv;
      ASSERT_NE(conversation, nullptr) << c["name"];
      ChatInput input;
      input.messages = (*conversation)["messages"];
      input.add_generation_prompt = (*conversation)["add_generation_prompt"].get<bool>();
      if (conversation->contains("tools")) input.tools = (*conversation)["tools"];
      input.context = reference["context"];
      expect_matches(name + " / " + c["name"].get<std::string>(), text, input, c);
      ++checked;
    }
  }
  EXPECT_EQ(checked, 17u * 5u);
}

// transformers passes the tokenizer's special tokens (those that are set) as template variables.
void check_tokenizer(const std::string& name) {
  Json config = read_json("tokenizers/" + name + "/tokenizer_config.json");
  Json reference = read_json("reference/tokenizers/" + name + ".json");
  std::string text = config["chat_template"].get<std::string>();
  ASSERT_FALSE(reference["chat_templates"].empty());
  for (const auto& c : reference["chat_templates"]) {
    ChatInput input;
    input.messages = c["messages"];
    input.tools = c["tools"];
    input.add_generation_prompt = c["add_generation_prompt"].get<bool>();
    for (const char* key : {"bos_token", "eos_token", "unk_token", "pad_token"})
      if (config.contains(key) && config[key].is_string()) input.context[key] = config[key];
    expect_matches(name + " / " + c["name"].get<std::string>(), text, input, c);
  }
}

TEST(HfChat, Llama3TokenizerTemplateMatchesTransformers) { check_tokenizer("llama3"); }
TEST(HfChat, Qwen3TokenizerTemplateMatchesTransformers) { check_tokenizer("qwen3"); }
TEST(HfChat, Gemma3TokenizerTemplateMatchesTransformers) { check_tokenizer("gemma3"); }

TEST(HfChat, ToolsAndDocumentsAreNoneWhenNotGiven) {
  ChatInput input;
  input.messages = Json::array({{{"role", "user"}, {"content", "hi"}}});
  EXPECT_EQ(
      render_hf_chat("{{ tools is none }} {{ documents is none }} {{ add_generation_prompt }} "
                     "{{ messages[0].content }}",
                     input),
      "True True True hi");
}

TEST(HfChat, ThinkBecomesEnableThinkingForQwen3) {
  Json config = read_json("tokenizers/qwen3/tokenizer_config.json");
  std::string text = config["chat_template"].get<std::string>();
  ChatInput input;
  input.messages = Json::array({{{"role", "user"}, {"content", "hi"}}});
  EXPECT_EQ(render_hf_chat(text, input), "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
  input.think = false;
  EXPECT_EQ(render_hf_chat(text, input),
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
}

TEST(HfChat, ContextVariablesAndStrftimeNowAreAvailable) {
  ChatInput input;
  input.context = {{"bos_token", "<s>"}, {"custom", {1, 2}}};
  HfChatOptions options;
  options.now = 1721995200;  // 2024-07-26 12:00 UTC
  std::string out =
      render_hf_chat("{{ bos_token }}{{ custom }}{{ strftime_now('%Y') }}", input, options);
  EXPECT_EQ(out, "<s>[1, 2]2024");
}

TEST(HfChat, RaiseExceptionReportsMessageAndPosition) {
  ChatInput input;
  try {
    render_hf_chat("line one\n{% if true %}\n  {{ raise_exception('Bad role') }}{% endif %}",
                   input);
    FAIL() << "no error";
  } catch (const jinja::Error& e) {
    EXPECT_EQ(e.kind(), "TemplateError");
    EXPECT_EQ(e.detail(), "Bad role");
    EXPECT_EQ(e.line(), 3);
    EXPECT_EQ(e.column(), 6);
  }
}

}  // namespace
}  // namespace corral::tmpl
