#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "sample/options.h"

namespace corral::sample {
namespace {

using nlohmann::json;
using Params = std::vector<std::pair<std::string, std::string>>;

// Expects `f` to throw std::invalid_argument whose message contains every one of `parts`.
template <class F>
void expect_error(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    for (const std::string& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << msg;
  }
}

TEST(Options, DefaultsAreOllamas) {
  const Options o;
  EXPECT_EQ(o.num_predict, -1);
  EXPECT_EQ(o.num_keep, 4);
  EXPECT_FLOAT_EQ(o.temperature, 0.8f);
  EXPECT_EQ(o.top_k, 40);
  EXPECT_FLOAT_EQ(o.top_p, 0.9f);
  EXPECT_FLOAT_EQ(o.min_p, 0.0f);
  EXPECT_FLOAT_EQ(o.typical_p, 1.0f);
  EXPECT_EQ(o.repeat_last_n, 64);
  EXPECT_FLOAT_EQ(o.repeat_penalty, 1.0f);
  EXPECT_FLOAT_EQ(o.presence_penalty, 0.0f);
  EXPECT_FLOAT_EQ(o.frequency_penalty, 0.0f);
  EXPECT_EQ(o.seed, -1);
  EXPECT_TRUE(o.stop.empty());
  EXPECT_EQ(o.num_batch, 512);
  EXPECT_EQ(o.num_gpu, -1);
  EXPECT_EQ(o.num_thread, 0);
  EXPECT_FALSE(o.use_mmap.has_value());
}

TEST(Options, JsonLayersPresentKeysOverCurrentValues) {
  Options o;
  o.stop = {"old"};
  o.apply(json::parse(R"({
    "temperature": 0.2, "top_k": 5, "top_p": 1, "seed": 1234567890123, "num_predict": -2,
    "repeat_last_n": -1, "stop": ["</s>", "User:"], "use_mmap": false, "main_gpu": 1,
    "num_ctx": 8192.0, "min_p": null
  })"));
  EXPECT_FLOAT_EQ(o.temperature, 0.2f);
  EXPECT_EQ(o.top_k, 5);
  EXPECT_FLOAT_EQ(o.top_p, 1.0f);  // an integer is a fine float
  EXPECT_EQ(o.seed, 1234567890123);
  EXPECT_EQ(o.num_predict, -2);
  EXPECT_EQ(o.repeat_last_n, -1);
  EXPECT_EQ(o.stop, (std::vector<std::string>{"</s>", "User:"}));  // replaced, not appended
  EXPECT_EQ(o.use_mmap, false);
  EXPECT_EQ(o.main_gpu, 1);
  EXPECT_EQ(o.num_ctx, 8192);      // an integral float is a fine integer
  EXPECT_FLOAT_EQ(o.min_p, 0.0f);  // null leaves the value alone
  EXPECT_EQ(o.top_p, 1.0f);
  EXPECT_FLOAT_EQ(o.repeat_penalty, 1.0f);  // absent keys leave values alone

  o.apply(json::parse(R"({"stop": "###"})"));  // one string, as OpenAI clients send it
  EXPECT_EQ(o.stop, (std::vector<std::string>{"###"}));
  o.apply(json());  // a request without options
  EXPECT_EQ(o.top_k, 5);
}

TEST(Options, RemovedOptionsAreAcceptedAndIgnored) {
  Options o;
  o.apply(json::parse(R"({"mirostat": 2, "mirostat_eta": 0.1, "mirostat_tau": 5.0,
                          "tfs_z": 0.95, "penalize_newline": true, "f16_kv": true,
                          "top_k": 7})"));
  EXPECT_EQ(o.top_k, 7);
  EXPECT_EQ(o.to_json(), [] {
    Options expected;
    expected.top_k = 7;
    return expected.to_json();
  }());
  const json p = params_to_json(Params{{"mirostat", "2"}, {"tfs_z", "x"}, {"temperature", "1"}});
  EXPECT_EQ(p, json::parse(R"({"temperature": 1.0})"));
}

TEST(Options, JsonRejectsUnknownKeysAndWrongTypesNamingTheKey) {
  Options o;
  expect_error([&] { o.apply(json::parse(R"({"temprature": 0.5})")); },
               {"unknown option", "temprature"});
  expect_error([&] { o.apply(json::parse(R"({"top_k": "40"})")); }, {"top_k", "integer", "40"});
  expect_error([&] { o.apply(json::parse(R"({"top_k": 40.5})")); }, {"top_k", "integer"});
  expect_error([&] { o.apply(json::parse(R"({"temperature": "hot"})")); },
               {"temperature", "number"});
  expect_error([&] { o.apply(json::parse(R"({"stop": [1, 2]})")); }, {"stop", "strings"});
  expect_error([&] { o.apply(json::parse(R"({"use_mmap": 1})")); }, {"use_mmap", "boolean"});
  expect_error([&] { o.apply(json::parse(R"({"num_ctx": 1e12})")); }, {"num_ctx", "range"});
  expect_error([&] { o.apply(json::parse(R"({"temperature": 1e300})")); },
               {"temperature", "range"});
  expect_error([&] { o.apply(json::parse(R"([1, 2])")); }, {"object"});

  // A failed apply changes nothing, even for keys before the bad one.
  expect_error([&] { o.apply(json::parse(R"({"num_ctx": 4096, "zzz": 1})")); }, {"zzz"});
  EXPECT_EQ(o.num_ctx, 0);
}

TEST(Options, UnknownKeysCanBeCollectedInsteadOfRejected) {
  Options o;
  std::vector<std::string> unknown;
  o.apply(json::parse(R"({"top_k": 3, "foo": 1, "mirostat": 1, "bar": null})"), &unknown);
  EXPECT_EQ(o.top_k, 3);
  EXPECT_EQ(unknown, (std::vector<std::string>{"bar", "foo"}));  // removed ones are not unknown
  // Wrong types still fail.
  expect_error([&] { o.apply(json::parse(R"({"top_k": true})"), &unknown); }, {"top_k"});
}

TEST(Options, ParamsAreTypedByTheOptionAndStopAccumulates) {
  const Params params = {{"temperature", "0.7"}, {"top_k", " 20 "},    {"stop", "<|im_start|>"},
                         {"stop", "<|im_end|>"}, {"use_mmap", "True"}, {"seed", "-1"},
                         {"num_ctx", "4096"},    {"num_ctx", "+8192"}};
  const json j = params_to_json(params);
  EXPECT_EQ(j["top_k"], 20);
  EXPECT_EQ(j["stop"], json::parse(R"(["<|im_start|>", "<|im_end|>"])"));
  EXPECT_EQ(j["use_mmap"], true);
  EXPECT_EQ(j["num_ctx"], 8192);  // the last value wins

  Options o;
  o.apply_params(params);
  EXPECT_FLOAT_EQ(o.temperature, 0.7f);
  EXPECT_EQ(o.top_k, 20);
  EXPECT_EQ(o.stop, (std::vector<std::string>{"<|im_start|>", "<|im_end|>"}));
  EXPECT_EQ(o.use_mmap, true);
  EXPECT_EQ(o.num_ctx, 8192);
  EXPECT_EQ(o.seed, -1);

  // A stop value keeps its spaces: " " and "\n" are real stop strings.
  EXPECT_EQ(params_to_json(Params{{"stop", " User"}})["stop"][0], " User");
}

TEST(Options, ParamsRejectUnknownKeysAndUnparsableValuesNamingBoth) {
  expect_error([] { params_to_json(Params{{"top_kk", "4"}}); }, {"unknown parameter", "top_kk"});
  expect_error([] { params_to_json(Params{{"top_k", "forty"}}); }, {"top_k", "forty"});
  expect_error([] { params_to_json(Params{{"top_k", "4.5"}}); }, {"top_k", "4.5"});
  expect_error([] { params_to_json(Params{{"top_k", ""}}); }, {"top_k", "integer"});
  expect_error([] { params_to_json(Params{{"temperature", "0.7x"}}); }, {"temperature", "0.7x"});
  expect_error([] { params_to_json(Params{{"temperature", "nan"}}); }, {"temperature", "nan"});
  expect_error([] { params_to_json(Params{{"use_mmap", "yes"}}); }, {"use_mmap", "yes"});
  expect_error([] { params_to_json(Params{{"num_ctx", "99999999999"}}); }, {"num_ctx", "range"});
}

TEST(Options, SplitParamTakesKeyBeforeTheFirstEquals) {
  EXPECT_EQ(split_param("temperature=0.5"),
            (std::pair<std::string, std::string>{"temperature", "0.5"}));
  EXPECT_EQ(split_param("stop=a=b"), (std::pair<std::string, std::string>{"stop", "a=b"}));
  EXPECT_EQ(split_param("stop="), (std::pair<std::string, std::string>{"stop", ""}));
  expect_error([] { split_param("temperature"); }, {"temperature", "key=value"});
  expect_error([] { split_param("=5"); }, {"no key"});
}

TEST(Options, AnyValueForAnyKeyEitherAppliesOrThrowsInvalidArgument) {
  // Request options are untrusted: whatever arrives, the only failure is a clear message.
  const std::vector<json> values = {json(),
                                    json(true),
                                    json(0),
                                    json(-1),
                                    json(40),
                                    json(uint64_t{1} << 63),
                                    json(int64_t{-1} << 40),
                                    json(0.5),
                                    json(-1e30),
                                    json(1e300),
                                    json("x"),
                                    json("4"),
                                    json::array(),
                                    json::array({"a", "b"}),
                                    json::array({1}),
                                    json::object({{"a", 1}})};
  Options every;  // to_json leaves out unset optionals
  every.main_gpu = 0;
  every.use_mmap = true;
  const json keys = every.to_json();
  ASSERT_EQ(keys.size(), 20u);
  for (const auto& [key, _] : keys.items()) {
    for (const json& v : values) {
      Options o;
      try {
        o.apply(json{{key, v}});
      } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
      }
    }
    for (const char* text : {"", "1", "-1", "1.5", "true", "abc", "1e99", "99999999999999999999"}) {
      try {
        Options o;
        o.apply_params(Params{{key, text}});
      } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
      }
    }
  }
}

TEST(Options, ToJsonRoundTrips) {
  Options a;
  a.temperature = 0.3f;
  a.top_p = 0.95f;
  a.seed = 7;
  a.stop = {"x", "y"};
  a.main_gpu = 2;
  const json j = a.to_json();
  EXPECT_EQ(j["top_p"], 0.95);  // the float's shortest decimal, not 0.949999988079071
  EXPECT_FALSE(j.contains("use_mmap"));
  Options b;
  b.apply(j);
  EXPECT_EQ(b.to_json(), j);
  EXPECT_EQ(b.stop, a.stop);
  EXPECT_EQ(b.main_gpu, 2);
}

}  // namespace
}  // namespace corral::sample
