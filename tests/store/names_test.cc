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
