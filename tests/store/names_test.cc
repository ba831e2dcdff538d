#include "store/names.h"

#include <gtest/gtest.h>

#include <string>

namespace corral::store {
namespace {

TEST(ModelName, DefaultsHostNamespaceAndTag) {
  const ModelName n = ModelName::parse("llama3.2");
  EXPECT_EQ(n.host, "registry.ollama.ai");
  EXPECT_EQ(n.ns, "library");
  EXPECT_EQ(n.model, "llama3.2");
  EXPECT_EQ(n.tag, "latest");
  EXPECT_EQ(n.display(), "llama3.2:latest");
  EXPECT_EQ(n.manifest_path(), "registry.ollama.ai/library/llama3.2/latest");
}

TEST(ModelName, ParsesEveryPart) {
  const ModelName n = ModelName::parse("localhost:5000/me/my-model_2:q4_K.M");
  EXPECT_EQ(n.host, "localhost:5000");
  EXPECT_EQ(n.ns, "me");
  EXPECT_EQ(n.model, "my-model_2");
  EXPECT_EQ(n.tag, "q4_K.M");
  EXPECT_EQ(n.display(), "localhost:5000/me/my-model_2:q4_K.M");
  EXPECT_EQ(ModelName::parse("me/model:7b").display(), "me/model:7b");
  EXPECT_EQ(ModelName::parse("https://example.com/a/b").host, "example.com");
}

// Hugging Face serves GGUF repositories through the registry API at hf.co (and huggingface.co):
// Ollama parses such a name as any other, keeping the repository's case; the tag picks the
// quantization, and "latest" lets Hugging Face choose (Q4_K_M when the repository has it).
TEST(ModelName, HuggingFaceNamesAreHostNamespaceModelTag) {
  const ModelName n = ModelName::parse("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M");
  EXPECT_EQ(n.host, "hf.co");
  EXPECT_EQ(n.ns, "bartowski");
  EXPECT_EQ(n.model, "Llama-3.2-1B-Instruct-GGUF");
  EXPECT_EQ(n.tag, "Q4_K_M");
  EXPECT_EQ(n.display(), "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M");
  EXPECT_EQ(n.manifest_path(), "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF/Q4_K_M");
  EXPECT_EQ(ModelName::parse("huggingface.co/unsloth/Qwen3-0.6B-GGUF").tag, "latest");
  EXPECT_EQ(ModelName::parse("https://hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M"), n);
  EXPECT_EQ(ModelName::parse("HF.co/Bartowski/llama-3.2-1b-instruct-gguf:q4_k_m"), n);
  // A repository name may hold '.', a user name may not (Ollama's namespace rule).
  EXPECT_FALSE(ModelName::valid("hf.co/some.user/repo"));
}

TEST(ModelName, ComparesCaseInsensitively) {
  EXPECT_EQ(ModelName::parse("Llama3:Latest"), ModelName::parse("llama3"));
  EXPECT_FALSE(ModelName::parse("llama3:7b") == ModelName::parse("llama3"));
}

void expect_refused(const std::string& text, const std::string& why) {
  try {
    ModelName::parse(text);
    ADD_FAILURE() << "'" << text << "' was accepted";
  } catch (const NameError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("invalid model name"), std::string::npos) << msg;
    EXPECT_NE(msg.find(why), std::string::npos) << msg;
  }
  EXPECT_FALSE(ModelName::valid(text));
}

TEST(ModelName, RefusesNamesThatWouldLeaveTheStore) {
  expect_refused("../x", "namespace '..' must start with");
  expect_refused("/etc/passwd", "host is empty");
  expect_refused("a/b/c/d/e", "5 parts");
  expect_refused("..", "model '..' must start with");
  expect_refused(".hidden", "model '.hidden' must start with");
  expect_refused("a/../b", "namespace '..'");
  expect_refused("x:..", "tag '..' must start with");
  expect_refused("x:a/b", "namespace 'x:a' holds ':'");  // a tag cannot hold '/'
  expect_refused("", "empty");
  expect_refused("a//b", "empty");
  expect_refused("model:", "tag is empty");
}

TEST(ModelName, RefusesBadCharactersAndLengths) {
  expect_refused("my model", "holds ' '");
  expect_refused("m\xC3\xA9", "byte 0xc3");
  expect_refused("a\\b", "holds '\\'");
  expect_refused("name:tag:x", "holds ':'");
  expect_refused("n.s/model", "namespace 'n.s' holds '.'");
  expect_refused(std::string(81, 'a'), "81 characters long (at most 80)");
  expect_refused("m:" + std::string(81, 't'), "tag is 81 characters");
  expect_refused(std::string(1000, 'a'), "too long");
  EXPECT_TRUE(ModelName::valid(std::string(80, 'a')));
  EXPECT_TRUE(ModelName::valid(std::string(350, 'h') + "/ns/m:t"));
}

}  // namespace
}  // namespace corral::store
