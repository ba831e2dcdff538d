// The server in-process on a free loopback port, driven by httplib's client: the checks every
// request passes (Host, API key, body size), that the client is served on after a refusal, and
// blob uploads. The routes through real clients are tested in tests/clients/.
#include "server/server.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <string>
#include <thread>

#include "running_server.h"
#include "store/create.h"
#include "store/digest.h"
#include "store/model.h"
#include "store/temp_store.h"
#include "testdata.h"

namespace corral::server {
namespace {

namespace fs = std::filesystem;

class ServerHttp : public ::testing::Test {
 protected:
  void start(ServerOptions o = {}) {
    o.scheduler.n_threads = 1;
    o.scheduler.num_parallel = 1;
    o.scheduler.default_num_ctx = 128;
    o.host = "127.0.0.1";
    o.port = 0;
    o.models = dir_.path() / "models";
    if (o.max_body_bytes == ServerOptions{}.max_body_bytes) o.max_body_bytes = 4096;
    running_ = std::make_unique<RunningServer>(std::move(o));
    server_ = &running_->server();
    port_ = running_->port();
  }
  httplib::Client client() {
    httplib::Client c("127.0.0.1", port_);
    c.set_keep_alive(true);
    return c;
  }
  static nlohmann::json json(const httplib::Result& r) { return nlohmann::json::parse(r->body); }

  testing::TempDir dir_;
  std::unique_ptr<RunningServer> running_;
  Server* server_ = nullptr;
  int port_ = 0;
};

TEST_F(ServerHttp, RootVersionAndTagsAnswer) {
  start();
  auto c = client();
  auto r = c.Get("/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "corral is running");
  r = c.Get("/api/version");
  ASSERT_TRUE(r);
  EXPECT_EQ(json(r)["version"], CORRAL_VERSION);
  r = c.Get("/api/tags");
  ASSERT_TRUE(r);
  EXPECT_EQ(json(r), nlohmann::json::parse(R"({"models": []})"));
}

TEST_F(ServerHttp, UnknownRouteIsAJson404) {
  start();
  auto c = client();
  auto r = c.Get("/api/nothing");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_TRUE(json(r)["error"].is_string());
}

TEST_F(ServerHttp, OversizedBodyIs413AndTheConnectionKeepsServing) {
  start();
  auto c = client();
  const std::string big(64 * 1024, 'x');
  auto r = c.Post("/api/show", big, "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_NE(json(r)["error"].get<std::string>().find("too large"), std::string::npos);
  // The 64 KiB body was not read: the answer came from the head, with Connection: close, and the
  // client reconnects (reading a refused body only to drop it would hand a sender of gigabytes
  // the server's time; tests/server/http_front_test.cc).
  EXPECT_EQ(r->get_header_value("Connection"), "close");
  r = c.Get("/api/tags");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  r = c.Post("/api/show", R"({"model": "absent"})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
}

TEST_F(ServerHttp, ErrorsAreJsonWithTheirStatus) {
  start();
  auto c = client();
  auto r = c.Post("/api/show", "{oops", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  r = c.Post("/api/show", R"({"model": "../../etc/passwd"})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_TRUE(json(r)["error"].is_string());
  r = c.Post("/api/show", R"({"model": ["a"]})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  r = c.Post("/api/pull", R"({"model": "../x"})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  // A push of a model the store lacks fails before any registry is asked.
  r = c.Post("/api/push", R"({"model": "no-such-model"})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_NE(json(r)["error"].get<std::string>().find("no-such-model"), std::string::npos);
}

TEST_F(ServerHttp, ForeignHostIs403AndTheConnectionKeepsServing) {
  start();
  auto c = client();
  auto r = c.Post("/api/show", httplib::Headers{{"Host", "evil.example"}}, R"({"model": "x"})",
                  "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403);
  EXPECT_TRUE(json(r)["error"].is_string());
  r = c.Get("/api/tags");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  r = c.Get("/api/tags", httplib::Headers{{"Host", "localhost:11434"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(ServerHttp, ApiKeyIsRequiredExceptForTheRoot) {
  ServerOptions o;
  o.api_key = "s3cret";
  start(o);
  auto c = client();
  auto r = c.Get("/api/tags");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  r = c.Post("/api/show", R"({"model": "x"})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  r = c.Get("/api/tags", httplib::Headers{{"Authorization", "Bearer s3cret"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  r = c.Get("/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(ServerHttp, BlobUploadIsVerifiedAndNotHeldToTheBodyLimit) {
  start();
  auto c = client();
  const std::string content(100 * 1024, 'b');  // over the 4 KiB body limit of this server
  const std::string digest = store::sha256_digest(content);
  auto r = c.Head("/api/blobs/" + digest);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  r = c.Post("/api/blobs/" + digest, content, "application/octet-stream");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 201) << r->body;
  r = c.Head("/api/blobs/" + digest);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(store::sha256_file(server_->context().store.blob_path(digest)), digest);
  r = c.Post("/api/blobs/" + digest, content, "application/octet-stream");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << "a blob already there is not written again";

  // Chunked (no Content-Length), as Ollama's CLI uploads.
  const std::string chunked(50 * 1024, 'c');
  const std::string chunked_digest = store::sha256_digest(chunked);
  r = c.Post(
      "/api/blobs/" + chunked_digest,
      [&](size_t, httplib::DataSink& sink) {
        for (size_t at = 0; at < chunked.size(); at += 1000) {
          sink.write(chunked.data() + at, std::min<size_t>(1000, chunked.size() - at));
        }
        sink.done();
        return true;
      },
      "application/octet-stream");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 201) << r->body;
  EXPECT_TRUE(server_->context().store.has_blob(chunked_digest));
}

TEST_F(ServerHttp, MismatchedBlobIs400AndLeavesNothing) {
  start();
  auto c = client();
  const std::string claimed = store::sha256_digest("the promised bytes");
  auto r = c.Post("/api/blobs/" + claimed, std::string(10000, 'z'), "application/octet-stream");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(json(r)["error"].get<std::string>().find("digest mismatch"), std::string::npos);
  EXPECT_FALSE(server_->context().store.has_blob(claimed));
  const fs::path tmp = server_->context().store.root() / "tmp";
  EXPECT_TRUE(!fs::exists(tmp) || fs::is_empty(tmp));
  r = c.Post("/api/blobs/sha256:1234", "x", "application/octet-stream");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  r = c.Get("/api/tags");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(ServerHttp, PsListsLoadedModelsWithOllamaFields) {
  start();
  store::Store& st = server_->context().store;
  create_stories(st);
  const store::ModelInfo info = store::resolve(st, "stories");
  auto c = client();
  auto r = c.Get("/api/ps");
  ASSERT_TRUE(r);
  EXPECT_EQ(json(r)["models"], nlohmann::json::array());
  {
    runner::Lease lease = server_->context().scheduler.acquire(info, sample::Options{});
    r = c.Get("/api/ps");
    ASSERT_TRUE(r);
    const nlohmann::json models = json(r)["models"];
    ASSERT_EQ(models.size(), 1u) << r->body;
    const nlohmann::json& m = models[0];
    EXPECT_EQ(m["name"], "stories:latest");
    EXPECT_EQ(m["model"], "stories:latest");
    EXPECT_GT(m["size"].get<uint64_t>(), fs::file_size(info.gguf));
    EXPECT_TRUE(m["size_vram"].is_number());
    EXPECT_EQ(m["context_length"], 128);
    EXPECT_EQ(m["digest"].get<std::string>().size(), 64u);
    EXPECT_TRUE(m["expires_at"].is_string());
    EXPECT_EQ(m["details"]["family"], "llama");
  }
  // Deleting the model unloads it: its file is gone from the store.
  r = c.Delete("/api/delete", R"({"model": "stories"})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  r = c.Get("/api/ps");
  ASSERT_TRUE(r);
  EXPECT_EQ(json(r)["models"], nlohmann::json::array()) << r->body;
}

}  // namespace
}  // namespace corral::server
