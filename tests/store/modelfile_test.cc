#include "store/modelfile.h"

#include <gtest/gtest.h>

#include <string>

namespace corral::store {
namespace {

using Json = nlohmann::ordered_json;

std::string error_of(const std::string& text) {
  try {
    parse_modelfile(text);
  } catch (const ModelfileError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Modelfile, ParsesEveryInstruction) {
  const Modelfile mf = parse_modelfile(
      "# a comment\n"
      "FROM ./model.gguf\n"
      "\n"
      "  parameter temperature 0.7\n"
      "PARAMETER stop <|im_end|>\n"
      "PARAMETER stop \"User:\"\n"
      "PARAMETER num_ctx 4096\n"
      "PARAMETER use_mmap false\n"
      "TEMPLATE \"\"\"{{ .System }}\n"
      "{{ .Prompt }}\"\"\"\n"
      "System You are a pirate.\n"
      "MESSAGE user Hello there\n"
      "MESSAGE assistant \"Arr, hello.\"\n"
      "MESSAGE system be brief\n"
      "MESSAGE tool {\"ok\": true}\n"
      "LICENSE MIT\n"
      "LICENSE \"\"\"Apache\n2.0\"\"\"\n"
      "REQUIRES 0.14.0\n");
  EXPECT_EQ(mf.from, "./model.gguf");
  EXPECT_EQ(mf.parameters.dump(),
            R"({"num_ctx":4096,"stop":["<|im_end|>","User:"],"temperature":0.7,"use_mmap":false})");
  ASSERT_TRUE(mf.template_text);
  EXPECT_EQ(*mf.template_text, "{{ .System }}\n{{ .Prompt }}");
  EXPECT_EQ(mf.system, "You are a pirate.");
  ASSERT_EQ(mf.messages.size(), 4u);
  EXPECT_EQ(mf.messages[0], (ModelfileMessage{"user", "Hello there"}));
  EXPECT_EQ(mf.messages[1], (ModelfileMessage{"assistant", "Arr, hello."}));
  EXPECT_EQ(mf.messages[2], (ModelfileMessage{"system", "be brief"}));
  EXPECT_EQ(mf.messages[3], (ModelfileMessage{"tool", "{\"ok\": true}"}));
  ASSERT_EQ(mf.licenses.size(), 2u);
  EXPECT_EQ(mf.licenses[1], "Apache\n2.0");
  EXPECT_EQ(mf.requires_version, "0.14.0");
  EXPECT_TRUE(mf.warnings.empty());
}

TEST(Modelfile, QuotedValuesKeepSpacesQuotesAndLineEnds) {
  const Modelfile mf = parse_modelfile(
      "FROM \"/models/with space.gguf\"\n"
      "SYSTEM \"  padded  \"\n"
      "TEMPLATE \"\"\"say \"hi\"\r\n  twice\"\"\"\n");
  EXPECT_EQ(mf.from, "/models/with space.gguf");
  EXPECT_EQ(mf.system, "  padded  ");
  EXPECT_EQ(mf.template_text, "say \"hi\"\r\n  twice");
}

TEST(Modelfile, LaterTemplateAndSystemReplaceEarlierOnes) {
  const Modelfile mf = parse_modelfile("FROM m\nSYSTEM one\nSYSTEM two\nTEMPLATE a\nTEMPLATE b\n");
  EXPECT_EQ(mf.system, "two");
  EXPECT_EQ(mf.template_text, "b");
}

TEST(Modelfile, DeprecatedParameterIsAWarning) {
  const Modelfile mf = parse_modelfile("FROM m\nPARAMETER mirostat 2\n");
  ASSERT_EQ(mf.warnings.size(), 1u);
  EXPECT_EQ(mf.warnings[0], "Modelfile line 2: parameter mirostat is deprecated and ignored");
  EXPECT_TRUE(mf.parameters.empty());
}

TEST(Modelfile, EveryErrorNamesItsLine) {
  EXPECT_EQ(error_of("FROM m\nPARAMETER temprature 0.5\n"),
            "Modelfile line 2: unknown parameter \"temprature\"");
  EXPECT_NE(error_of("FROM m\n\nPARAMETER num_ctx lots\n").find("Modelfile line 3: "),
            std::string::npos);
  EXPECT_NE(error_of("FROM m\n\nPARAMETER num_ctx lots\n").find("num_ctx"), std::string::npos);
  EXPECT_EQ(error_of("FROM m\nPARAMETER stop\n"), "Modelfile line 2: PARAMETER stop has no value");
  EXPECT_EQ(error_of("FROM m\nPARAMETER \n"),
            "Modelfile line 2: PARAMETER needs a name and a value");
  EXPECT_EQ(error_of("FROM m\nPARAMETER top-k 4\n"),
            "Modelfile line 2: unexpected '-' after PARAMETER top");
  EXPECT_EQ(error_of("FROM m\nMESSAGE robot hi\n"),
            "Modelfile line 2: MESSAGE role 'robot' is not one of \"system\", \"user\", "
            "\"assistant\" or \"tool\"");
  EXPECT_EQ(error_of("FROM m\nMESSAGE user\n"), "Modelfile line 2: MESSAGE user has no message");
  EXPECT_EQ(error_of("FROM m\nADAPTER ./lora.gguf\n"),
            "Modelfile line 2: ADAPTER is not supported yet");
  EXPECT_EQ(error_of("FROM m\nDRAFT ./small.gguf\n"),
            "Modelfile line 2: DRAFT is not supported yet");
  EXPECT_EQ(error_of("FROM m\nREQUIRES latest\n"),
            "Modelfile line 2: REQUIRES must be a valid version (e.g. 0.14.0), not 'latest'");
  EXPECT_EQ(error_of("FROM m\nREQUIRES 01.2\n").substr(0, 29), "Modelfile line 2: REQUIRES mu");
  EXPECT_EQ(error_of("FROM m\nFROM n\nFROM o\n"),
            "Modelfile line 3: a third FROM: a Modelfile names one model, or (a vision model in "
            "two files) its text GGUF and its projector GGUF");
  EXPECT_EQ(error_of("FROM m\nINSTRUCT x\n"),
            "Modelfile line 2: unknown instruction 'INSTRUCT' (instructions: FROM, PARAMETER, "
            "TEMPLATE, SYSTEM, ADAPTER, LICENSE, MESSAGE, REQUIRES)");
  EXPECT_EQ(error_of("FROM m\nSYSTEM: x\n").substr(0, 47),
            "Modelfile line 2: unknown instruction 'SYSTEM:'");
  EXPECT_EQ(error_of("FROM m\nSYSTEM\n"), "Modelfile line 2: SYSTEM needs a value");
  EXPECT_EQ(error_of("FROM m\n\nSYSTEM \"\"\"never\nclosed\n"),
            "Modelfile line 3: SYSTEM value has an unterminated quote (\"\"\" opened here is "
            "never closed)");
  EXPECT_EQ(error_of("FROM \"m\n"),
            "Modelfile line 1: FROM value has an unterminated quote (\" opened here is never "
            "closed)");
  EXPECT_EQ(error_of("FROM \"\"\n"),
            "Modelfile line 1: FROM needs a model: a .gguf file, a folder or a name");
  EXPECT_EQ(error_of("# nothing\nSYSTEM hi\n"), "Modelfile: no FROM line");
  EXPECT_EQ(error_of(""), "Modelfile: no FROM line");
}

TEST(Modelfile, ErrorsNameTheGivenSource) {
  try {
    parse_modelfile("FROM m\nPARAMETER x 1\n", "/tmp/My.modelfile");
    FAIL();
  } catch (const ModelfileError& e) {
    EXPECT_EQ(std::string(e.what()), "/tmp/My.modelfile line 2: unknown parameter \"x\"");
  }
}

TEST(Modelfile, PrinterOutputParsesBackToTheSameModel) {
  Modelfile mf;
  mf.from = "/store/blobs/sha256-abc";
  mf.template_text = "{{ if .System }}<|system|>\n{{ .System }}{{ end }}\"quoted\"\n";
  mf.system = "  You are \"helpful\".\nTwo lines.";
  mf.parameters = Json::parse(
      R"({"num_ctx":2048,"stop":["<|end|>","  spaced ","\"q\""],"temperature":0.25,"use_mmap":true})");
  mf.messages = {{"user", "hi"}, {"assistant", "hello\nthere"}, {"system", "\"x\""}};
  mf.licenses = {"MIT", "line one\nline two"};
  mf.requires_version = "0.14.0";
  const std::string text = format_modelfile(mf, "my-model:latest");
  EXPECT_EQ(text.rfind("# Modelfile generated by \"corral show\"\n", 0), 0u) << text;
  EXPECT_NE(text.find("# FROM my-model:latest\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nFROM /store/blobs/sha256-abc\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nPARAMETER temperature 0.25\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nPARAMETER stop <|end|>\n"), std::string::npos) << text;

  const Modelfile back = parse_modelfile(text);
  EXPECT_EQ(back.from, mf.from);
  EXPECT_EQ(back.template_text, mf.template_text);
  EXPECT_EQ(back.system, mf.system);
  EXPECT_EQ(back.parameters.dump(), mf.parameters.dump());
  EXPECT_EQ(back.messages, mf.messages);
  EXPECT_EQ(back.licenses, mf.licenses);
  EXPECT_EQ(back.requires_version, mf.requires_version);
  // And printing the parsed model again gives the same text.
  EXPECT_EQ(format_modelfile(back, "my-model:latest"), text);
}

TEST(Modelfile, PrinterRefusesTextNoQuotingCanHold) {
  Modelfile mf;
  mf.from = "m";
  mf.system = "\"a\"\nends with three quotes\"\"\"\nand \"more\"";
  EXPECT_THROW(format_modelfile(mf, "m"), ModelfileError);
}

TEST(Modelfile, PathsResolveAgainstTheModelfileFolder) {
  EXPECT_EQ(expand_modelfile_path("model.gguf", "/work/dir"), "/work/dir/model.gguf");
  EXPECT_EQ(expand_modelfile_path("../m/x.gguf", "/work/dir"), "/work/m/x.gguf");
  EXPECT_EQ(expand_modelfile_path("/abs/x.gguf", "/work/dir"), "/abs/x.gguf");
  const char* home = std::getenv("HOME");
  ASSERT_NE(home, nullptr);
  EXPECT_EQ(expand_modelfile_path("~/m.gguf", "/work"), std::filesystem::path(home) / "m.gguf");
  EXPECT_THROW(expand_modelfile_path("~no-such-user-xyz/m.gguf", "/w"), ModelfileError);
}

}  // namespace
}  // namespace corral::store
