// What one request's options and inputs may cost the server (issue 14): a context larger than
// memory is lowered or refused (507), load-time options are bounded, an options object of 100,000
// keys, 600 embedding inputs, a burst of slots + queue requests, token ids beyond int32. After each
// hostile request a normal one is served.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "runner/runner.h"
#include "running_server.h"
#include "server/server.h"
#include "store/create.h"
#include "store/model.h"
#include "store/temp_store.h"
#include "testdata.h"

namespace corral::server {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string stories_path() {
  return corral::testing::testdata_path("tinystories260k/stories260K-f32.gguf");
}

class ServerLimits : public ::testing::Test {
 protected:
  void start(runner::SchedulerOptions so = {}) {
    ServerOptions o;
    so.n_threads = 1;
    so.default_num_ctx = 256;
    so.min_num_ctx = 256;
    so.log = [this](const std::string& line) {
      std::lock_guard lock(log_mu_);
      log_.push_back(line);
    };
    o.scheduler = std::move(so);
    o.models = dir_.path() / "models";
    running_ = std::make_unique<RunningServer>(std::move(o));
    server_ = &running_->server();
    port_ = running_->port();
    create_stories(server_->context().store);
  }
  httplib::Client client() {
    httplib::Client c("127.0.0.1", port_);
    // A hang fails the test instead of stalling it.
    c.set_read_timeout(60, 0);
    return c;
  }
  httplib::Result post(const std::string& path, const json& body) {
    return client().Post(path, body.dump(), "application/json");
  }
  // A short greedy generation with `options` over the defaults.
  httplib::Result generate(json options = json::object(), json extra = json::object()) {
    options["temperature"] = 0;
    if (!options.contains("num_predict")) options["num_predict"] = 4;
    json body = {{"model", "stories"},
                 {"prompt", "Once upon a time"},
                 {"raw", true},
                 {"stream", false},
                 {"options", options}};
    body.update(extra);
    return post("/api/generate", body);
  }
  // A normal request after a hostile one is served.
  void expect_normal_request_served() {
    auto r = generate();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(json::parse(r->body)["eval_count"], 4) << r->body;
  }

  corral::testing::TempDir dir_;
  std::unique_ptr<RunningServer> running_;
  Server* server_ = nullptr;
  int port_ = 0;
  std::mutex log_mu_;
  std::vector<std::string> log_;
};

TEST_F(ServerLimits, AHugeContextIsLoweredToFitMemoryAndNoRoomAtAllIs507) {
  // What a load with the server's options needs, from a load of its own.
  runner::MemoryNeeds needs;
  {
    runner::Runner r(stories_path(), {.num_ctx = 512, .num_parallel = 2, .n_threads = 1});
    needs = r.memory_needs();
  }
  auto available = std::make_shared<std::atomic<uint64_t>>(needs.bytes(512) - 1);
  runner::SchedulerOptions so;
  so.num_parallel = 2;
  so.available_memory = [available]() -> std::optional<uint64_t> { return available->load(); };
  start(so);

  auto r = generate({{"num_ctx", 1'000'000'000}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  r = client().Get("/api/ps");
  ASSERT_TRUE(r);
  const json ps = json::parse(r->body)["models"];
  ASSERT_EQ(ps.size(), 1u) << r->body;
  EXPECT_EQ(ps[0]["context_length"], 256);
  {
    std::lock_guard lock(log_mu_);
    ASSERT_EQ(log_.size(), 1u);
    EXPECT_NE(log_[0].find("num_ctx lowered to 256"), std::string::npos) << log_[0];
  }

  // Unloaded, and with less memory than the smallest context needs: refused, with the sizes.
  r = post("/api/generate", {{"model", "stories"}, {"keep_alive", 0}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  available->store(needs.bytes(256) - 1);
  r = generate({{"num_ctx", 1'000'000'000}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 507) << r->body;
  const std::string error = json::parse(r->body)["error"];
  EXPECT_NE(
      error.find("needs " + runner::human_bytes(needs.bytes(512)) + " for a 512-token context"),
      std::string::npos)
      << error;
  EXPECT_NE(error.find("is available"), std::string::npos) << error;

  available->store(uint64_t{1} << 40);
  expect_normal_request_served();
}

TEST_F(ServerLimits, HugeNumBatchAndNumThreadAnswerPromptly) {
  start();
  auto r = generate({{"num_batch", 2147483647}, {"num_thread", 100000}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  const json j = json::parse(r->body);
  EXPECT_EQ(j["eval_count"], 4);
  EXPECT_FALSE(j["response"].get<std::string>().empty());
  expect_normal_request_served();
}

TEST_F(ServerLimits, AHundredThousandUnknownOptionKeysAnswerPromptly) {
  start();
  json options = json::object();
  for (int i = 0; i < 100000; ++i) options["unknown_option_" + std::to_string(i)] = i;
  auto r = generate(options);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body.substr(0, 200);
  EXPECT_EQ(json::parse(r->body)["eval_count"], 4);
  expect_normal_request_served();
}

TEST_F(ServerLimits, SixHundredEmbeddingInputsWaitForSlotsInsteadOf503) {
  runner::SchedulerOptions so;
  so.max_queue = 4;
  start(so);
  json inputs = json::array();
  for (int i = 0; i < 600; ++i) inputs.push_back("input number " + std::to_string(i));
  auto r = post("/api/embed", {{"model", "stories"}, {"input", inputs}});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body.substr(0, 200);
  const json j = json::parse(r->body);
  ASSERT_EQ(j["embeddings"].size(), 600u);
  // In input order: the same text gives the same vector wherever it stands.
  r = post("/api/embed", {{"model", "stories"}, {"input", inputs[599]}});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["embeddings"][0], j["embeddings"][599]);
  expect_normal_request_served();
}

TEST_F(ServerLimits, ABurstOfSlotsPlusQueueRequestsIsAllServed) {
  runner::SchedulerOptions so;
  so.num_parallel = 4;
  so.max_queue = 4;
  start(so);
  expect_normal_request_served();  // loaded before the burst
  std::vector<int> status(8, 0);
  std::vector<std::string> body(8);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < status.size(); ++i) {
    threads.emplace_back([this, i, &status, &body] {
      auto r = generate({{"num_predict", 16}});
      status[i] = r ? r->status : -1;
      if (r) body[i] = r->body;
    });
  }
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < status.size(); ++i) EXPECT_EQ(status[i], 200) << i << ": " << body[i];
  expect_normal_request_served();
}

TEST_F(ServerLimits, ContextIdsBeyondInt32OrTheVocabularyAre400) {
  start();
  const auto with_context = [&](json context) {
    return generate(json::object(), {{"context", std::move(context)}, {"raw", false}});
  };
  auto r = with_context({1, 4294967699ull});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_NE(r->body.find("4294967699"), std::string::npos) << r->body;
  r = with_context({1, -1});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;
  r = with_context({1, 512});  // the vocabulary has 512 tokens
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_NE(r->body.find("512"), std::string::npos) << r->body;
  r = with_context({1, 403});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  expect_normal_request_served();
}

}  // namespace
}  // namespace corral::server
