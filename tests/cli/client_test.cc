// The CLI as a client of the server's API: CORRAL_HOST parsing, API timestamps, the Client against
// a small fake server in this process (JSON, NDJSON streams, errors, blob uploads), and the corral
// binary's list/show/cp/rm/create/ps/stop/run talking to that fake server; and what each command
// does when no server answers.
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cli/client.h"
#include "cli/run_corral.h"
#include "store/digest.h"
#include "store/temp_store.h"
#include "testdata.h"

namespace corral::testing {
namespace {

namespace fs = std::filesystem;
using cli::Client;
using cli::HostAddress;
using cli::parse_host;
using nlohmann::json;

TEST(CorralHost, ParsesAsOllamaReadsOllamaHost) {
  const auto check = [](const char* value, const char* scheme, const char* host, int port) {
    const HostAddress a = parse_host(value);
    EXPECT_EQ(a.scheme, scheme) << value;
    EXPECT_EQ(a.host, host) << value;
    EXPECT_EQ(a.port, port) << value;
  };
  check("", "http", "127.0.0.1", 11434);
  check("example.com", "http", "example.com", 11434);
  check("example.com:1234", "http", "example.com", 1234);
  check(":5678", "http", "127.0.0.1", 5678);
  check("0.0.0.0", "http", "0.0.0.0", 11434);
  check("http://example.com", "http", "example.com", 80);
  check("https://example.com", "https", "example.com", 443);
  check("http://10.0.0.2:99/", "http", "10.0.0.2", 99);
  check("[::1]:8080", "http", "::1", 8080);
  check("::1", "http", "::1", 11434);
  check(" \"localhost:1\" ", "http", "localhost", 1);
  EXPECT_EQ(parse_host("[::1]:8080").url(), "http://[::1]:8080");
  EXPECT_EQ(parse_host(":5678").url(), "http://127.0.0.1:5678");
  EXPECT_THROW(parse_host("example.com:http"), std::invalid_argument);
  EXPECT_THROW(parse_host("example.com:70000"), std::invalid_argument);
}

TEST(ApiTime, ParsesRfc3339AsGoWritesIt) {
  EXPECT_EQ(cli::parse_api_time("1970-01-01T00:00:00Z"), 0.0);
  EXPECT_EQ(cli::parse_api_time("2024-05-01T12:34:56Z"), 1714566896.0);
  EXPECT_EQ(cli::parse_api_time("2024-05-01T05:34:56.5-07:00"), 1714566896.5);
  EXPECT_EQ(cli::parse_api_time("2024-05-01T14:34:56.250000000+02:00"), 1714566896.25);
  EXPECT_EQ(cli::parse_api_time("0001-01-01T00:00:00Z"), cli::kZeroTime);
  EXPECT_FALSE(cli::parse_api_time("2024-05-01 garbage"));
  EXPECT_FALSE(cli::parse_api_time("2024-05-01T12:34:56"));  // no zone
  EXPECT_FALSE(cli::parse_api_time(""));
}

// A server with the routes a test gives it, on a free port, serving on its own thread.
class FakeServer {
 public:
  FakeServer() = default;
  ~FakeServer() { stop(); }

  httplib::Server& http() { return http_; }

  void start() {
    port_ = http_.bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { http_.listen_after_bind(); });
    // The socket listens from bind on: connections wait in its backlog until the thread accepts.
  }
  void stop() {
    http_.stop();
    if (thread_.joinable()) thread_.join();
  }
  int port() const { return port_; }
  HostAddress address() const { return parse_host("127.0.0.1:" + std::to_string(port_)); }

  // Requests seen, as "METHOD PATH BODY".
  void record(const httplib::Request& req) {
    std::lock_guard<std::mutex> lock(mu_);
    requests_.push_back(req.method + " " + req.path + " " + req.body);
  }
  std::vector<std::string> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  // The JSON body of the last request to `path`.
  json last_body(const std::string& method, const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = requests_.rbegin(); it != requests_.rend(); ++it) {
      const std::string prefix = method + " " + path + " ";
      if (it->starts_with(prefix)) return json::parse(it->substr(prefix.size()));
    }
    return nullptr;
  }

 private:
  httplib::Server http_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mu_;
  std::vector<std::string> requests_;
};

// Streams `lines` (each one NDJSON object) as separate chunks.
void stream_lines(httplib::Response& res, std::vector<std::string> lines) {
  res.set_chunked_content_provider("application/x-ndjson",
                                   [lines = std::move(lines)](size_t, httplib::DataSink& sink) {
                                     for (const std::string& l : lines) {
                                       const std::string line = l + "\n";
                                       if (!sink.write(line.data(), line.size())) return false;
                                     }
                                     sink.done();
                                     return true;
                                   });
}

// A port nothing listens on: one the kernel gave a socket that was then closed.
int closed_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    return 1;  // nothing listens on port 1 either
  }
  close(fd);
  return ntohs(addr.sin_port);
}

TEST(Client, TurnsErrorAnswersIntoExceptionsWithTheServersMessage) {
  FakeServer server;
  server.http().Get("/api/tags", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"models":[{"name":"a:latest"}]})", "application/json");
  });
  server.http().Post("/api/show", [](const httplib::Request&, httplib::Response& res) {
    res.status = 404;
    res.set_content(R"({"error":"model 'nope' not found"})", "application/json");
  });
  server.http().Post("/api/copy", [](const httplib::Request&, httplib::Response& res) {
    res.status = 500;
    res.set_content("<html>oops</html>", "text/html");
  });
  server.start();
  Client client(server.address());
  EXPECT_TRUE(client.alive());
  EXPECT_EQ(client.get("/api/tags")["models"][0]["name"], "a:latest");
  try {
    client.post("/api/show", {{"model", "nope"}});
    FAIL() << "no exception";
  } catch (const cli::ServerError& e) {
    EXPECT_EQ(e.status, 404);
    // A "not found" names the server asked (this one tells no store: it is not corral's).
    EXPECT_EQ(std::string(e.what()),
              "model 'nope' not found (asked the corral server at 127.0.0.1:" +
                  std::to_string(server.port()) + ")");
  }
  try {
    client.post("/api/copy", json::object());
    FAIL() << "no exception";
  } catch (const cli::ServerError& e) {
    EXPECT_EQ(e.status, 500);
    EXPECT_STREQ(e.what(), "the server answered HTTP 500: <html>oops</html>");
  }
}

TEST(Client, SaysWhereItFoundNoServer) {
  const int port = closed_port();
  Client client(parse_host("127.0.0.1:" + std::to_string(port)));
  EXPECT_FALSE(client.alive());
  try {
    client.get("/api/tags");
    FAIL() << "no exception";
  } catch (const cli::ConnectionError& e) {
    EXPECT_NE(std::string(e.what()).find("could not connect to corral server at http://127.0.0.1:" +
                                         std::to_string(port)),
              std::string::npos)
        << e.what();
  }
}

TEST(Client, StreamsNdjsonObjectsInOrderAndStopsAtAnErrorLine) {
  FakeServer server;
  server.http().Post("/api/generate", [](const httplib::Request& req, httplib::Response& res) {
    const json body = json::parse(req.body);
    if (body["model"] == "bad") {
      stream_lines(res, {R"({"response":"a","done":false})", R"({"error":"out of memory"})",
                         R"({"response":"never","done":false})"});
    } else if (body["model"] == "missing") {
      res.status = 404;
      res.set_content(R"({"error":"model 'missing' not found"})", "application/json");
    } else {
      // The last line without its newline: still an object.
      res.set_chunked_content_provider("application/x-ndjson", [](size_t, httplib::DataSink& s) {
        const std::string text =
            "{\"response\":\"Once\",\"done\":false}\n{\"response\":\" upon\",\"done\":false}\n"
            "{\"response\":\"\",\"done\":true,\"eval_count\":2}";
        // Split mid-object: lines may arrive in pieces.
        s.write(text.data(), 20);
        s.write(text.data() + 20, text.size() - 20);
        s.done();
        return true;
      });
    }
  });
  server.start();
  Client client(server.address());
  std::string text;
  int objects = 0;
  client.stream("/api/generate", {{"model", "good"}}, [&](const json& obj) {
    text += obj.value("response", "");
    ++objects;
    if (obj.value("done", false)) {
      EXPECT_EQ(obj["eval_count"], 2);
    }
    return true;
  });
  EXPECT_EQ(text, "Once upon");
  EXPECT_EQ(objects, 3);

  text.clear();
  EXPECT_THROW(
      {
        try {
          client.stream("/api/generate", {{"model", "bad"}}, [&](const json& obj) {
            text += obj.value("response", "");
            return true;
          });
        } catch (const cli::ServerError& e) {
          EXPECT_STREQ(e.what(), "out of memory");
          throw;
        }
      },
      cli::ServerError);
  EXPECT_EQ(text, "a");

  try {
    client.stream("/api/generate", {{"model", "missing"}}, [](const json&) { return true; });
    FAIL() << "no exception";
  } catch (const cli::ServerError& e) {
    EXPECT_EQ(e.status, 404);
    EXPECT_EQ(std::string(e.what()),
              "model 'missing' not found (asked the corral server at 127.0.0.1:" +
                  std::to_string(server.port()) + ")");
  }

  // A sink that says stop ends the stream quietly.
  objects = 0;
  client.stream("/api/generate", {{"model", "good"}}, [&](const json&) { return ++objects < 1; });
  EXPECT_EQ(objects, 1);
}

TEST(Client, UploadsABlobTheServerLacksAndSkipsNone) {
  FakeServer server;
  std::mutex mu;
  std::map<std::string, std::string> blobs;
  server.http().Get(R"(/api/blobs/(sha256:[0-9a-f]+))",
                    [&](const httplib::Request& req, httplib::Response& res) {
                      std::lock_guard<std::mutex> lock(mu);
                      res.status = blobs.count(req.matches[1].str()) ? 200 : 404;
                    });
  server.http().Post(R"(/api/blobs/(sha256:[0-9a-f]+))",
                     [&](const httplib::Request& req, httplib::Response& res) {
                       const std::string digest = req.matches[1].str();
                       if (store::sha256_digest(req.body) != digest) {
                         res.status = 400;
                         res.set_content(R"({"error":"digest mismatch"})", "application/json");
                         return;
                       }
                       std::lock_guard<std::mutex> lock(mu);
                       blobs[digest] = req.body;
                       res.status = 201;
                     });
  server.start();
  TempDir dir;
  std::string bytes(3 << 20, 'x');  // larger than one upload chunk
  for (size_t i = 0; i < bytes.size(); i += 7) bytes[i] = static_cast<char>(i);
  write_text(dir.path() / "model.bin", bytes);
  const std::string digest = store::sha256_digest(bytes);

  Client client(server.address());
  EXPECT_FALSE(client.has_blob(digest));
  uint64_t last_done = 0, calls = 0;
  client.upload_blob(dir.path() / "model.bin", digest, [&](uint64_t done, uint64_t total) {
    EXPECT_EQ(total, bytes.size());
    EXPECT_GE(done, last_done);
    last_done = done;
    ++calls;
  });
  EXPECT_EQ(last_done, bytes.size());
  EXPECT_GE(calls, 4u);
  EXPECT_TRUE(client.has_blob(digest));
  EXPECT_EQ(blobs.at(digest), bytes);
  const std::string wrong = store::sha256_digest("other");
  try {
    client.upload_blob(dir.path() / "model.bin", wrong);
    FAIL() << "no exception";
  } catch (const cli::ServerError& e) {
    EXPECT_STREQ(e.what(), "digest mismatch");
  }
}

// The corral binary run with CORRAL_HOST set; stderr merged into the output.
using Result = CommandResult;

Result corral(const std::string& env, const std::string& args, const fs::path& cwd = "") {
  std::string cmd =
      "CORRAL_NO_SERVER= " + env + " '" + CORRAL_BINARY + "' " + args + " 2>&1 </dev/null";
  if (!cwd.empty()) cmd = "cd '" + cwd.string() + "' && " + cmd;
  return run_shell(cmd);
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// Go's time.Time text for `seconds` from now (UTC).
std::string api_time_from_now(double seconds) {
  const auto t = std::chrono::system_clock::now() +
                 std::chrono::duration_cast<std::chrono::system_clock::duration>(
                     std::chrono::duration<double>(seconds));
  const std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// The fake server the CLI tests talk to: a store of two models, one loaded.
class CliAgainstServer : public ::testing::Test {
 protected:
  void SetUp() override {
    auto& h = server_.http();
    const auto json_reply = [](httplib::Response& res, const json& j) {
      res.set_content(j.dump(), "application/json");
    };
    h.Get("/", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("corral is running", "text/plain");
    });
    h.Get("/api/tags", [&, json_reply](const httplib::Request& req, httplib::Response& res) {
      server_.record(req);
      json_reply(res, {{"models",
                        {{{"name", "alpha:latest"},
                          {"model", "alpha:latest"},
                          {"size", 1234567890},
                          {"digest", "0123456789abcdef0123456789abcdef"},
                          {"modified_at", api_time_from_now(-3 * 3600 - 60)}},
                         {{"name", "beta:v2"},
                          {"model", "beta:v2"},
                          {"size", 2600},
                          {"digest", "fedcba9876543210fedcba9876543210"},
                          {"modified_at", api_time_from_now(-90)}}}}});
    });
    h.Get("/api/ps", [&, json_reply](const httplib::Request& req, httplib::Response& res) {
      server_.record(req);
      json_reply(res, {{"models",
                        {{{"name", "alpha:latest"},
                          {"size", 1234567890},
                          {"size_vram", 0},
                          {"digest", "0123456789abcdef0123456789abcdef"},
                          {"context_length", 4096},
                          {"expires_at", api_time_from_now(4 * 60 + 30)}},
                         {{"name", "beta:v2"},
                          {"size", 1000},
                          {"size_vram", 250},
                          {"digest", "fedcba9876543210fedcba9876543210"},
                          {"context_length", 2048},
                          {"expires_at", "2318-01-01T00:00:00Z"}},
                         {{"name", "gamma:latest"},
                          {"size", 1000},
                          {"size_vram", 1000},
                          {"digest", "aaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
                          {"context_length", 8192},
                          {"expires_at", api_time_from_now(-5)}}}}});
    });
    h.Post("/api/show", [&, json_reply](const httplib::Request& req, httplib::Response& res) {
      server_.record(req);
      const json body = json::parse(req.body);
      if (body["model"] != "alpha") {
        res.status = 404;
        json_reply(res, {{"error", "model '" + body["model"].get<std::string>() + "' not found"}});
        return;
      }
      json_reply(res, {{"system", "You are terse."},
                       {"template", "{{ .Prompt }}"},
                       {"license", "MIT"},
                       {"parameters", "temperature                    0"},
                       {"modelfile", "FROM alpha\n"},
                       {"details", {{"family", "llama"}, {"quantization_level", "Q8_0"}}},
                       {"model_info",
                        {{"general.architecture", "llama"},
                         {"general.parameter_count", 292480},
                         {"llama.context_length", 128}}}});
    });
    // The registry lacks every model (as a server whose pull fails answers).
    h.Post("/api/pull", [&](const httplib::Request& req, httplib::Response& res) {
      server_.record(req);
      stream_lines(res, {R"({"status":"pulling manifest"})",
                         R"({"error":"pull model manifest: file does not exist"})"});
    });
    h.Post("/api/copy",
           [&](const httplib::Request& req, httplib::Response&) { server_.record(req); });
    h.Delete("/api/delete",
             [&](const httplib::Request& req, httplib::Response&) { server_.record(req); });
    h.Post("/api/generate", [&](const httplib::Request& req, httplib::Response& res) {
      server_.record(req);
      const json body = json::parse(req.body);
      if (body.contains("keep_alive") && !body.contains("prompt")) {
        res.set_content(R"({"model":"alpha","done":true,"done_reason":"unload"})",
                        "application/json");
        return;
      }
      stream_lines(res, {R"({"response":"raw:","done":false})",
                         json({{"response", body.value("prompt", "")}, {"done", false}}).dump(),
                         R"({"response":"","done":true,"done_reason":"stop"})"});
    });
    h.Post("/api/chat", [&](const httplib::Request& req, httplib::Response& res) {
      server_.record(req);
      stream_lines(res, {R"({"message":{"role":"assistant","content":"Once"},"done":false})",
                         R"({"message":{"role":"assistant","content":" upon"},"done":false})",
                         R"({"message":{"role":"assistant","content":""},"done":true,)"
                         R"("done_reason":"length","total_duration":3000000000,)"
                         R"("load_duration":1000000,"prompt_eval_count":7,)"
                         R"("prompt_eval_duration":500000000,"eval_count":2,)"
                         R"("eval_duration":1000000000})"});
    });
    h.Get(R"(/api/blobs/(sha256:[0-9a-f]+))",
          [&](const httplib::Request& req, httplib::Response& res) {
            server_.record(req);
            std::lock_guard<std::mutex> lock(blob_mu_);
            res.status = blobs_.count(req.matches[1].str()) ? 200 : 404;
          });
    h.Post(R"(/api/blobs/(sha256:[0-9a-f]+))",
           [&](const httplib::Request& req, httplib::Response& res) {
             std::lock_guard<std::mutex> lock(blob_mu_);
             blobs_[req.matches[1].str()] = store::sha256_digest(req.body);
             res.status = 201;
           });
    h.Post("/api/create", [&](const httplib::Request& req, httplib::Response& res) {
      server_.record(req);
      stream_lines(res, {R"({"status":"parsing GGUF"})",
                         R"({"status":"copying file","digest":"sha256:x","total":4,"completed":4})",
                         R"({"status":"writing manifest"})", R"({"status":"success"})"});
    });
    server_.start();
    env_ = "CORRAL_HOST=127.0.0.1:" + std::to_string(server_.port()) + " CORRAL_MODELS='" +
           store_.str() + "' HOME='" + store_.str() + "'";
  }

  Result run(const std::string& args, const fs::path& cwd = "") { return corral(env_, args, cwd); }

  FakeServer server_;
  TempDir store_;  // stays empty: everything goes through the server
  std::string env_;
  std::mutex blob_mu_;
  std::map<std::string, std::string> blobs_;  // digest -> digest of what was uploaded
};

TEST_F(CliAgainstServer, ListShowsTheServersModels) {
  const Result r = run("list");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(r.out.starts_with("NAME            ID              SIZE      MODIFIED\n")) << r.out;
  EXPECT_TRUE(contains(r.out, "alpha:latest    0123456789ab    1.2 GB    3 hours ago\n")) << r.out;
  EXPECT_TRUE(contains(r.out, "beta:v2         fedcba987654    2.6 KB    About a minute ago\n"))
      << r.out;
  const Result only_beta = run("list BE");
  EXPECT_FALSE(contains(only_beta.out, "alpha")) << only_beta.out;
  EXPECT_TRUE(contains(only_beta.out, "beta:v2")) << only_beta.out;
}

TEST_F(CliAgainstServer, PsShowsProcessorContextAndUntil) {
  const Result r = run("ps");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(
      r.out.starts_with("NAME            ID              SIZE      PROCESSOR          "
                        "CONTEXT    UNTIL\n"))
      << r.out;
  EXPECT_TRUE(contains(r.out,
                       "alpha:latest    0123456789ab    1.2 GB    100% CPU           "
                       "4096       4 minutes from now\n"))
      << r.out;
  EXPECT_TRUE(contains(r.out,
                       "beta:v2         fedcba987654    1 KB      75%/25% CPU/GPU    "
                       "2048       Forever\n"))
      << r.out;
  EXPECT_TRUE(contains(r.out,
                       "gamma:latest    aaaaaaaaaaaa    1 KB      100% GPU           "
                       "8192       Stopping...\n"))
      << r.out;
}

TEST_F(CliAgainstServer, ShowAsksTheServer) {
  Result r = run("show alpha --system");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out, "You are terse.\n");
  EXPECT_EQ(run("show alpha --template").out, "{{ .Prompt }}\n");
  EXPECT_EQ(run("show alpha --license").out, "MIT\n");
  EXPECT_EQ(run("show alpha --modelfile").out, "FROM alpha\n\n");
  r = run("show alpha");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(contains(r.out, "    architecture        llama\n")) << r.out;
  EXPECT_TRUE(contains(r.out, "    parameters          292.5K\n")) << r.out;
  EXPECT_TRUE(contains(r.out, "    context length      128\n")) << r.out;
  EXPECT_TRUE(contains(r.out, "    quantization        Q8_0\n")) << r.out;
  EXPECT_TRUE(contains(r.out, "  System\n    You are terse.\n")) << r.out;
  r = run("show nope");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "Error: model 'nope' not found (asked the corral server at 127.0.0.1:" +
                       std::to_string(server_.port()) + ")\n");
}

TEST_F(CliAgainstServer, CopyAndRemoveGoThroughTheServer) {
  Result r = run("cp alpha me/alpha2");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out, "copied 'alpha' to 'me/alpha2'\n");
  EXPECT_EQ(server_.last_body("POST", "/api/copy"),
            json({{"source", "alpha"}, {"destination", "me/alpha2"}}));
  r = run("rm me/alpha2");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out, "deleted 'me/alpha2'\n");
  EXPECT_EQ(server_.last_body("DELETE", "/api/delete"), json({{"model", "me/alpha2"}}));
  // Unloaded first, as `ollama rm` does.
  EXPECT_EQ(server_.last_body("POST", "/api/generate"),
            json({{"model", "me/alpha2"}, {"keep_alive", 0}}));
}

TEST_F(CliAgainstServer, StopUnloadsWithKeepAliveZero) {
  const Result r = run("stop alpha");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(server_.last_body("POST", "/api/generate"),
            json({{"model", "alpha"}, {"keep_alive", 0}}));
}

TEST_F(CliAgainstServer, CreateUploadsTheGgufThenCreatesFromItsDigest) {
  TempDir work;
  const std::string gguf = testdata_path("tinystories260k/stories260K-f32.gguf");
  write_text(work.path() / "Modelfile", "FROM " + gguf +
                                            "\nPARAMETER temperature 0.5\nPARAMETER stop a\n"
                                            "PARAMETER stop b\nSYSTEM Be brief.\n"
                                            "MESSAGE user Hi\nLICENSE MIT\n");
  const Result r = run("create mine -q q8_0", work.path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const std::string digest = store::sha256_file(gguf);
  {
    std::lock_guard<std::mutex> lock(blob_mu_);
    EXPECT_EQ(blobs_.at(digest), digest);  // the bytes that arrived are the file's
  }
  // Not a terminal: one line at the start of the upload and one at its end.
  EXPECT_TRUE(contains(r.out, "uploading " + digest.substr(0, 19) + " 0%\n")) << r.out;
  EXPECT_TRUE(contains(r.out, "uploading " + digest.substr(0, 19) + " 100%\n")) << r.out;
  EXPECT_TRUE(r.out.ends_with("parsing GGUF\ncopying file 100%\nwriting manifest\nsuccess\n"))
      << r.out;
  const json body = server_.last_body("POST", "/api/create");
  EXPECT_EQ(body["model"], "mine");
  EXPECT_EQ(body["files"], json({{"stories260K-f32.gguf", digest}}));
  EXPECT_EQ(body["system"], "Be brief.");
  EXPECT_EQ(body["parameters"], json({{"temperature", 0.5}, {"stop", {"a", "b"}}}));
  EXPECT_EQ(body["messages"], json::array({{{"role", "user"}, {"content", "Hi"}}}));
  EXPECT_EQ(body["license"], json::array({"MIT"}));
  EXPECT_EQ(body["quantize"], "q8_0");
  EXPECT_FALSE(body.contains("from"));

  // A blob the server has is not sent again; FROM a model name sends `from`.
  const size_t heads = server_.requests().size();
  const Result again = run("create mine2", work.path());
  ASSERT_EQ(again.exit_code, 0) << again.out;
  EXPECT_FALSE(contains(again.out, "uploading")) << again.out;
  EXPECT_GT(server_.requests().size(), heads);
  write_text(work.path() / "Modelfile", "FROM alpha\nSYSTEM x\n");
  ASSERT_EQ(run("create derived", work.path()).exit_code, 0);
  EXPECT_EQ(server_.last_body("POST", "/api/create")["from"], "alpha");
}

TEST_F(CliAgainstServer, RunStreamsTheChatWithOptionsAndVerboseStats) {
  Result r =
      run("run alpha --option temperature=0 --option num_predict=2 --seed 7 -t 1 --verbose "
          "Once upon a time");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(r.out.starts_with("Once upon\n")) << r.out;
  EXPECT_TRUE(contains(r.out, "prompt eval count:    7 token(s)")) << r.out;
  EXPECT_TRUE(contains(r.out, "eval count:           2 token(s)")) << r.out;
  const json body = server_.last_body("POST", "/api/chat");
  EXPECT_EQ(body["model"], "alpha");
  EXPECT_EQ(body["messages"], json::array({{{"role", "user"}, {"content", "Once upon a time"}}}));
  EXPECT_EQ(body["options"],
            json({{"temperature", 0.0}, {"num_predict", 2}, {"seed", 7}, {"num_thread", 1}}));
  EXPECT_EQ(body["stream"], true);

  r = run("run alpha --raw 'hello there'");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out, "raw:hello there\n");
  const json raw = server_.last_body("POST", "/api/generate");
  EXPECT_EQ(raw["raw"], true);
  EXPECT_EQ(raw["prompt"], "hello there");

  // A model the server lacks is pulled through it first (here the pull fails).
  r = run("run nope --insecure hello");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "pulling manifest\nError: pull model manifest: file does not exist\n");
  EXPECT_EQ(server_.last_body("POST", "/api/pull"),
            json({{"model", "nope"}, {"insecure", true}, {"stream", true}}));
  r = run("run alpha --option no_such_option=1 hello");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.out, "no_such_option")) << r.out;
}

TEST(CliWithoutServer, PsSaysNoServerStopFailsOthersUseTheLocalStore) {
  TempDir store;
  const std::string env = "CORRAL_HOST=127.0.0.1:" + std::to_string(closed_port()) +
                          " CORRAL_MODELS='" + store.str() + "'";
  Result r = corral(env, "ps");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(r.out.starts_with("no corral server is running at http://127.0.0.1:")) << r.out;
  r = corral(env, "stop alpha");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_TRUE(r.out.starts_with("Error: could not connect to corral server at http://127.0.0.1:"))
      << r.out;
  r = corral(env, "list");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out, "NAME    ID    SIZE    MODIFIED\n");
  r = corral(env, "show alpha");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_TRUE(contains(r.out, "not found")) << r.out;
}

TEST_F(CliAgainstServer, NoServerSettingKeepsEverythingLocal) {
  const Result r = corral("CORRAL_NO_SERVER=1 " + env_, "list");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out, "NAME    ID    SIZE    MODIFIED\n");
  EXPECT_TRUE(server_.requests().empty());
}

}  // namespace
}  // namespace corral::testing
