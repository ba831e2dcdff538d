// `corral serve` against hostile and careless clients: each test sends what once crashed, hung or
// exhausted the server, then checks that an ordinary request is still answered promptly.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>

#include "running_server.h"
#include "server/server.h"
#include "store/temp_store.h"

namespace corral::server {
namespace {

namespace fs = std::filesystem;
using Steady = std::chrono::steady_clock;
using nlohmann::json;

// A raw connection, for what httplib's client cannot do (send a request and vanish).
int connect_to(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

void send_all(int fd, const std::string& data) {
  for (size_t at = 0; at < data.size();) {
    const ssize_t n = ::send(fd, data.data() + at, data.size() - at, MSG_NOSIGNAL);
    if (n <= 0) return;
    at += static_cast<size_t>(n);
  }
}

std::string post_request(const std::string& path, const std::string& body) {
  return "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

class ServerAbuse : public ::testing::Test {
 protected:
  void start(ServerOptions o = {}) {
    o.scheduler.n_threads = 1;
    o.scheduler.num_parallel = 1;
    o.scheduler.default_num_ctx = 128;
    o.models = dir_.path() / "models";
    running_ = std::make_unique<RunningServer>(std::move(o));
    port_ = running_->port();
  }
  httplib::Client client(int timeout_s = 30) {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(timeout_s);
    return c;
  }
  // An ordinary request that must be answered, and soon.
  void expect_served() {
    auto c = client(10);
    const auto t0 = Steady::now();
    auto r = c.Post("/api/generate",
                    R"({"model": "stories", "prompt": "Once", "stream": false,
                        "options": {"num_predict": 4, "temperature": 0}})",
                    "application/json");
    ASSERT_TRUE(r) << "no answer";
    EXPECT_EQ(r->status, 200) << r->body;
    EXPECT_LT(Steady::now() - t0, std::chrono::seconds(5));
  }

  corral::testing::TempDir dir_;
  std::unique_ptr<RunningServer> running_;
  int port_ = 0;
};

TEST_F(ServerAbuse, DeeplyNestedJsonIsRefusedWith400) {
  create_stories(dir_.path() / "models");
  start();
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  const std::string bodies[] = {
      R"({"model":"stories","prompt":"x","options":{"num_ctx":)" + deep + "}}",
      R"({"model":"stories","prompt":"x","options":{"stop":)" + deep + "}}",
      R"({"model":"stories","prompt":"x","keep_alive":)" + deep + "}",
      R"({"model":"stories","prompt":"x","format":)" + deep + "}",
  };
  auto c = client();
  for (const std::string& body : bodies) {
    auto r = c.Post("/api/generate", body, "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400);
    EXPECT_NE(r->body.find("nested deeper than"), std::string::npos) << r->body.substr(0, 200);
  }
  for (const char* path : {"/api/chat", "/v1/chat/completions", "/api/show", "/api/embed"}) {
    auto r = c.Post(path, R"({"model":"stories","messages":)" + deep + "}", "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << path;
  }
  // Tool-call arguments are JSON inside a string.
  const json chat = {
      {"model", "stories"},
      {"messages",
       {{{"role", "assistant"},
         {"content", ""},
         {"tool_calls",
          {{{"type", "function"}, {"function", {{"name", "f"}, {"arguments", deep}}}}}}}}}};
  auto r = c.Post("/v1/chat/completions", chat.dump(), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  // Nesting up to the limit is still JSON like any other.
  const std::string ok = std::string(kMaxJsonDepth - 2, '[') + std::string(kMaxJsonDepth - 2, ']');
  r = c.Post("/api/generate", R"({"model":"stories","prompt":"x","options":{"stop":)" + ok + "}}",
             "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(r->body.find("nested deeper"), std::string::npos);
  expect_served();
}

TEST_F(ServerAbuse, ErrorsQuoteAShortExcerptOfWhatTheClientSent) {
  create_stories(dir_.path() / "models");
  start();
  auto c = client();
  const std::string huge(10 << 20, 'a');
  for (const std::string& body :
       {json{{"model", huge}, {"prompt", "x"}}.dump(),
        json{{"model", "stories"}, {"prompt", "x"}, {"keep_alive", huge}}.dump(),
        json{{"model", "stories"}, {"prompt", "x"}, {"think", huge}}.dump(),
        R"({"model": "stories", "prompt": ")" + huge}) {
    auto r = c.Post("/api/generate", body, "application/json");
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->status == 400 || r->status == 404) << r->status;  // 404: no such model
    EXPECT_LT(r->body.size(), 1000u) << r->body.substr(0, 300);
  }
  // Headers and paths too (httplib takes lines and targets of up to 8 KiB).
  const std::string long_text(6000, 'h');
  auto r = c.Get("/api/tags", httplib::Headers{{"Host", long_text}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403);
  EXPECT_LT(r->body.size(), 1000u);
  r = c.Get("/api/tags", httplib::Headers{{"Origin", "http://" + long_text}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403);
  EXPECT_LT(r->body.size(), 1000u);
  r = c.Get("/" + long_text);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_LT(r->body.size(), 1000u);
  expect_served();
}

// A request's own template is client code: it is stopped by the template limits (400), not left to
// take the server's memory.
TEST_F(ServerAbuse, TemplateBombsAreRefusedWith400) {
  create_stories(dir_.path() / "models");
  start();
  auto c = client();
  for (const char* tmpl :
       {"{{range 1000000000}}x{{end}}", "{{range 100000}}{{range 100000}}{{.Prompt}}{{end}}{{end}}",
        "{{define \"t\"}}{{template \"t\" .}}{{end}}{{template \"t\" .}}",
        "{{range 300000}}{{printf \"%0500d\" 1}}{{end}}"}) {
    const auto t0 = Steady::now();
    auto r = c.Post("/api/generate",
                    json{{"model", "stories"}, {"prompt", "x"}, {"template", tmpl}}.dump(),
                    "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << tmpl << ": " << r->body.substr(0, 200);
    EXPECT_LT(Steady::now() - t0, std::chrono::seconds(20)) << tmpl;
  }
  expect_served();
}

// A chat of many messages beyond the context: cut to fit in a few renderings, then answered.
TEST_F(ServerAbuse, AChatOfTwentyThousandMessagesIsCutToTheContext) {
  create_stories(dir_.path() / "models");
  start();
  json messages = json::array();
  for (int i = 0; i < 20000; ++i) {
    messages.push_back({{"role", i % 2 ? "assistant" : "user"}, {"content", "hello there"}});
  }
  auto r = client().Post("/api/chat",
                         json{{"model", "stories"},
                              {"messages", messages},
                              {"stream", false},
                              {"options", {{"num_predict", 2}, {"num_ctx", 128}}}}
                             .dump(),
                         "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body.substr(0, 200);
  EXPECT_LE(json::parse(r->body)["prompt_eval_count"].get<int>(), 128);
  expect_served();
}

// `curl -d @request.json` labels the body as a form; Ollama reads it as JSON whatever its size.
TEST_F(ServerAbuse, AFormLabelledBodyIsReadAsJsonWhateverItsSize) {
  create_stories(dir_.path() / "models");
  start();
  const json body = {{"model", "stories"},
                     {"prompt", std::string(20000, 'a')},
                     {"stream", false},
                     {"options", {{"num_predict", 2}}}};
  auto r = client().Post("/api/generate", body.dump(), "application/x-www-form-urlencoded");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body.substr(0, 200);
}

TEST_F(ServerAbuse, AGenerationWithoutLimitEndsWhenItsContextIsFull) {
  create_stories(dir_.path() / "models");
  start();
  auto c = client();
  auto r = c.Post("/api/generate",
                  R"({"model": "stories", "prompt": "Once upon a time", "stream": false,
                      "options": {"num_predict": -1, "temperature": 0, "num_ctx": 64}})",
                  "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json j = json::parse(r->body);
  EXPECT_EQ(j["done_reason"], "length");
  EXPECT_LE(j["prompt_eval_count"].get<int>() + j["eval_count"].get<int>(), 65);
}

// A `"stream": false` request writes nothing until it ends, so only the connection tells that its
// client left: the generation must stop then, freeing the model's only slot.
TEST_F(ServerAbuse, ANonStreamedGenerationEndsWhenItsClientLeaves) {
  create_stories(dir_.path() / "models");
  start();
  const std::string endless =
      R"({"model": "stories", "prompt": "Once", "stream": false, "shift": true,
          "options": {"num_predict": -1, "num_ctx": 32}})";
  for (int i = 0; i < 2; ++i) {
    const int fd = connect_to(port_);
    ASSERT_GE(fd, 0);
    send_all(fd, post_request("/api/generate", endless));
    // Until the model is loaded and the request holds its only slot.
    auto c = client();
    for (int tries = 0; tries < 200; ++tries) {
      auto ps = c.Get("/api/ps");
      if (ps && ps->body.find("stories") != std::string::npos) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ::close(fd);
  }
  expect_served();
}

TEST_F(ServerAbuse, KeepAliveZeroCancelsWhatTheModelIsRunning) {
  create_stories(dir_.path() / "models");
  start();
  std::string streamed;
  std::thread runaway([&] {
    auto c = client();
    c.Post("/api/generate",
           R"({"model": "stories", "prompt": "Once", "shift": true,
               "options": {"num_predict": -1, "num_ctx": 32}})",
           "application/json");
  });
  auto c = client();
  for (int tries = 0; tries < 200; ++tries) {
    auto ps = c.Get("/api/ps");
    if (ps && ps->body.find("stories") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // What `corral stop stories` sends.
  auto r = c.Post("/api/generate", R"({"model": "stories", "keep_alive": 0})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  runaway.join();  // the stream ends
  // The model unloads once the request has let go of it (just after its last line is sent).
  for (int tries = 0; tries < 100; ++tries) {
    r = c.Get("/api/ps");
    ASSERT_TRUE(r);
    if (json::parse(r->body)["models"].empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(json::parse(r->body)["models"], json::array()) << r->body;
  expect_served();
}

TEST_F(ServerAbuse, WorkFilesOfAKilledCreateAreSweptWhenTheServerStarts) {
  const fs::path work = dir_.path() / "models" / "tmp" / "work-999999-abcdef";
  corral::testing::write_text(work / "blob", std::string(1000, 'x'));
  start();
  EXPECT_FALSE(fs::exists(work));
  auto r = client().Get("/api/tags");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

// SIGTERM stops `corral serve` within seconds even while it runs a generation that would never
// end, as Ollama does.
TEST(ServeProcess, SigtermStopsTheServerWhileItGenerates) {
  corral::testing::TempDir dir;
  create_stories(dir.path() / "models");
  int out[2];
  ASSERT_EQ(::pipe(out), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::close(out[0]);
    ::setenv("CORRAL_HOST", "127.0.0.1:0", 1);
    ::setenv("CORRAL_MODELS", (dir.path() / "models").c_str(), 1);
    ::execl(CORRAL_BINARY, CORRAL_BINARY, "serve", nullptr);
    ::_exit(127);
  }
  ::close(out[1]);
  // "corral is listening on 127.0.0.1:PORT"
  std::string line;
  char ch;
  while (::read(out[0], &ch, 1) == 1 && ch != '\n') line += ch;
  const size_t colon = line.rfind(':');
  ASSERT_NE(colon, std::string::npos) << line;
  const int port = std::stoi(line.substr(colon + 1));
  const int fd = connect_to(port);
  ASSERT_GE(fd, 0);
  send_all(fd, post_request("/api/generate",
                            R"({"model": "stories", "prompt": "Once", "stream": false,
                                "shift": true, "options": {"num_predict": -1}})"));
  httplib::Client c("127.0.0.1", port);
  for (int tries = 0; tries < 200; ++tries) {
    auto ps = c.Get("/api/ps");
    if (ps && ps->body.find("stories") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const auto t0 = Steady::now();
  ::kill(pid, SIGTERM);
  int status = 0;
  pid_t done = 0;
  while ((done = ::waitpid(pid, &status, WNOHANG)) == 0 &&
         Steady::now() - t0 < std::chrono::seconds(10)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (done == 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  ::close(fd);
  ::close(out[0]);
  ASSERT_EQ(done, pid) << "still running 10 s after SIGTERM";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_LT(Steady::now() - t0, std::chrono::seconds(3));
}

}  // namespace
}  // namespace corral::server
