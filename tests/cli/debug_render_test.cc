// `corral debug render` and the template choice behind `corral run`: the prompts real chat
// templates make, byte for byte as transformers renders them, from a Hugging Face folder, a
// converted GGUF and a store model with a Modelfile TEMPLATE.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/commands.h"
#include "cli/run_corral.h"
#include "convert/convert.h"
#include "store/temp_store.h"
#include "template/prompt.h"
#include "testdata.h"

namespace corral::testing {
namespace {

namespace fs = std::filesystem;
using tmpl::Json;

Json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  return Json::parse(in);
}

class DebugRender : public ::testing::TestWithParam<std::string> {};

// Every chat_templates case of reference/tokenizers/<name>.json, through the same code the
// command runs, on the tokenizers/<name> folder.
TEST_P(DebugRender, HfFolderRendersAsTransformers) {
  const Json ref = read_json(testdata_path("reference/tokenizers/" + GetParam() + ".json"));
  const cli::RenderSource source = cli::render_source(testdata_path("tokenizers/" + GetParam()));
  EXPECT_EQ(source.chat_template.syntax, tmpl::Syntax::kJinja);
  ASSERT_FALSE(ref["chat_templates"].empty());
  for (const Json& c : ref["chat_templates"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    if (c.contains("rendered")) {
      EXPECT_EQ(cli::render_chat_file(source, c), c["rendered"].get<std::string>());
    } else {
      ASSERT_TRUE(c.contains("error"));
      EXPECT_ANY_THROW(cli::render_chat_file(source, c));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, DebugRender, ::testing::Values("llama3", "qwen3", "gemma3"));

TEST(DebugRenderCommand, PrintsThePromptExactly) {
  const Json ref = read_json(testdata_path("reference/tokenizers/qwen3.json"));
  const Json& c = ref["chat_templates"][1];
  ASSERT_TRUE(c.contains("rendered"));
  TempDir dir;
  write_text(dir.path() / "chat.json", c.dump());
  const auto r = run_corral("debug render '" + testdata_path("tokenizers/qwen3") + "' --chat '" +
                                (dir.path() / "chat.json").string() + "'",
                            /*merge_stderr=*/false);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, c["rendered"].get<std::string>());
}

TEST(DebugRenderCommand, RendersAGivenGoTemplateFile) {
  TempDir dir;
  write_text(dir.path() / "chat.json",
             R"({"messages": [{"role": "system", "content": "Be brief."},
                              {"role": "user", "content": "Hi"}]})");
  write_text(dir.path() / "t.gotmpl",
             "{{ range .Messages }}[{{ .Role }}] {{ .Content }}\n{{ end }}>");
  const auto r = run_corral("debug render '" + testdata_path("tokenizers/qwen3") + "' --chat '" +
                                (dir.path() / "chat.json").string() + "' --template '" +
                                (dir.path() / "t.gotmpl").string() + "'",
                            false);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "[system] Be brief.\n[user] Hi\n>");
}

TEST(DebugRenderCommand, MalformedChatFileIsAClearError) {
  TempDir dir;
  write_text(dir.path() / "chat.json", R"({"messages": {"role": "user"}})");
  auto r = run_corral("debug render '" + testdata_path("tokenizers/qwen3") + "' --chat '" +
                      (dir.path() / "chat.json").string() + "'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("\"messages\" must be an array"), std::string::npos) << r.out;
  write_text(dir.path() / "bad.json", "{\"messages\": [");
  r = run_corral("debug render '" + testdata_path("tokenizers/qwen3") + "' --chat '" +
                 (dir.path() / "bad.json").string() + "'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("bad.json"), std::string::npos) << r.out;
  write_text(dir.path() / "t.jinja", "{% for m in messages %}{{ m.content }");
  write_text(dir.path() / "ok.json", R"({"messages": [{"role": "user", "content": "x"}]})");
  r = run_corral("debug render '" + testdata_path("tokenizers/qwen3") + "' --chat '" +
                 (dir.path() / "ok.json").string() + "' --template '" +
                 (dir.path() / "t.jinja").string() + "'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("line 1"), std::string::npos) << r.out;
}

// A converted checkpoint carries its chat template and special tokens in the GGUF: rendering
// from the GGUF equals rendering from the folder it came from.
TEST(TemplateChoice, ConvertedGgufRendersItsChatTemplate) {
  TempDir dir;
  const std::string folder = testdata_path("reference/tiny-qwen2");
  const fs::path gguf = dir.path() / "tiny-qwen2.gguf";
  convert::ConvertOptions options;
  options.type = "F32";
  convert::convert_hf(folder, gguf.string(), options);
  const cli::RenderSource from_gguf = cli::render_source(gguf.string());
  const cli::RenderSource from_folder = cli::render_source(folder);
  EXPECT_EQ(from_gguf.chat_template.source, "tokenizer.chat_template");
  EXPECT_EQ(from_gguf.chat_template.text, from_folder.chat_template.text);
  const Json conversations = read_json(testdata_path("chat-templates/conversations.json"));
  for (const Json& c : conversations) {
    SCOPED_TRACE(c["name"].get<std::string>());
    EXPECT_EQ(cli::render_chat_file(from_gguf, c), cli::render_chat_file(from_folder, c));
  }
}

// A GGUF without a chat template, and no TEMPLATE: the prompt is the message as it is
// (Ollama's default template {{ .Prompt }}).
TEST(TemplateChoice, NoTemplateMeansThePromptAsItIs) {
  const cli::RenderSource s =
      cli::render_source(testdata_path("tinystories260k/stories260K-f32.gguf"));
  EXPECT_EQ(s.chat_template.syntax, tmpl::Syntax::kGo);
  EXPECT_EQ(s.context.value("bos_token", ""), "<s>");
  const Json chat = Json::parse(R"({"messages": [{"role": "user", "content": "Once upon"}]})");
  EXPECT_EQ(cli::render_chat_file(s, chat), "Once upon");
}

// A store model's TEMPLATE layer wins over the GGUF's own template.
TEST(TemplateChoice, ModelfileTemplateWins) {
  TempDir store_dir, work;
  write_text(work.path() / "Modelfile",
             "FROM " + testdata_path("tinystories260k/stories260K-f32.gguf") +
                 "\nTEMPLATE \"\"\"{{ if .System }}<<{{ .System }}>>{{ end }}{{ .Prompt }}\"\"\"\n"
                 "SYSTEM Tell a story.\n");
  const std::string env = "CORRAL_NO_SERVER=1 CORRAL_MODELS='" + store_dir.str() + "' ";
  const std::string corral = std::string("'") + CORRAL_BINARY + "'";
  ASSERT_EQ(std::system((env + corral + " create story -f '" +
                         (work.path() / "Modelfile").string() + "' >/dev/null 2>&1")
                            .c_str()),
            0);
  write_text(work.path() / "chat.json",
             R"({"messages": [{"role": "system", "content": "Tell a story."},
                              {"role": "user", "content": "Lily"}]})");
  const std::string out_path = (work.path() / "out.txt").string();
  ASSERT_EQ(std::system((env + corral + " debug render story --chat '" +
                         (work.path() / "chat.json").string() + "' > '" + out_path + "'")
                            .c_str()),
            0);
  EXPECT_EQ(read_text(out_path), "<<Tell a story.>>Lily");
}

TEST(TemplateChoice, SyntaxOfEveryFixtureTemplateIsDetected) {
  int go = 0, jinja = 0;
  for (const auto& e : fs::directory_iterator(testdata_path("chat-templates/ollama"))) {
    if (e.path().extension() != ".gotmpl") continue;
    EXPECT_EQ(tmpl::detect_syntax(read_text(e.path())), tmpl::Syntax::kGo) << e.path();
    ++go;
  }
  for (const auto& e : fs::directory_iterator(testdata_path("chat-templates/hf"))) {
    EXPECT_EQ(tmpl::detect_syntax(read_text(e.path())), tmpl::Syntax::kJinja) << e.path();
    ++jinja;
  }
  EXPECT_GE(go, 20);
  EXPECT_GE(jinja, 17);
}

}  // namespace
}  // namespace corral::testing
