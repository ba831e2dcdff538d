// The chat page's files (server/ui/assets.h) and their route (server/routes_ui.cc): the table the
// build compiled holds every file of src/server/ui/web byte for byte plus the libraries, and the
// route answers exact paths only, with the page's headers, conditional requests and redirects;
// paths that try to leave the table, and very long ones, get errors and the server serves on.
#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "running_server.h"
#include "server/server.h"
#include "server/ui/assets.h"
#include "store/temp_store.h"

namespace corral::server {
namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(UiAssets, HoldEveryPageFileAsBuiltAndTheLibraries) {
  const fs::path web = fs::path(CORRAL_SOURCE_DIR) / "src/server/ui/web";
  size_t files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(web)) {
    const std::string rel = fs::relative(entry.path(), web).generic_string();
    if (!entry.is_regular_file() || rel.find("/.") != std::string::npos || rel.starts_with(".") ||
        rel.ends_with("~")) {
      continue;
    }
    ++files;
    const ui::Asset* asset = ui::find_asset(rel);
    ASSERT_NE(asset, nullptr) << rel << " is not in the table (rebuild)";
    EXPECT_EQ(asset->bytes, read_file(entry.path())) << rel;
  }
  EXPECT_GT(files, 0u);
  EXPECT_EQ(ui::assets().size(), files + 2);  // and the two libraries

  const ui::Asset* index = ui::find_asset("index.html");
  ASSERT_NE(index, nullptr);
  EXPECT_EQ(index->content_type, "text/html; charset=utf-8");
  EXPECT_EQ(index->etag.size(), 34u);  // 32 hex digits, quoted
  EXPECT_TRUE(index->etag.starts_with('"') && index->etag.ends_with('"'));
  for (const char* lib : {"vendor/marked.js", "vendor/purify.js"}) {
    const ui::Asset* a = ui::find_asset(lib);
    ASSERT_NE(a, nullptr) << lib;
    EXPECT_EQ(a->content_type, "text/javascript; charset=utf-8");
    EXPECT_NE(a->bytes.find("export"), std::string_view::npos) << lib << " is an ES module";
  }
  EXPECT_NE(ui::find_asset("js/api.js"), nullptr);
  EXPECT_NE(ui::find_asset("models.css"), nullptr);
  EXPECT_EQ(ui::find_asset("models.css")->content_type, "text/css; charset=utf-8");
  // Exact names only.
  for (const char* p : {"", "/index.html", "js", "js/", "./index.html", "js/../index.html",
                        "../index.html", "INDEX.HTML", "index.html/"}) {
    EXPECT_EQ(ui::find_asset(p), nullptr) << p;
  }
}

TEST(UiAssets, EtagMatching) {
  const std::string_view tag = "\"0123abcd\"";
  EXPECT_TRUE(ui::etag_matches("\"0123abcd\"", tag));
  EXPECT_TRUE(ui::etag_matches("W/\"0123abcd\"", tag));
  EXPECT_TRUE(ui::etag_matches("\"x\", \"0123abcd\"", tag));
  EXPECT_TRUE(ui::etag_matches(" \"x\" ,\t\"0123abcd\" ", tag));
  EXPECT_TRUE(ui::etag_matches("*", tag));
  EXPECT_FALSE(ui::etag_matches("", tag));
  EXPECT_FALSE(ui::etag_matches("0123abcd", tag));
  EXPECT_FALSE(ui::etag_matches("\"0123abcd", tag));
  EXPECT_FALSE(ui::etag_matches("\"x\", W/\"y\"", tag));
  EXPECT_FALSE(ui::etag_matches(",,, ,", tag));
}

class UiRoute : public ::testing::Test {
 protected:
  void start(ServerOptions o = {}) {
    o.scheduler.n_threads = 1;
    o.models = dir_.path() / "models";
    running_ = std::make_unique<RunningServer>(std::move(o));
  }
  httplib::Client client() {
    httplib::Client c("127.0.0.1", running_->port());
    c.set_keep_alive(true);
    return c;
  }
  // The server's answer to raw request bytes on one connection: its status line.
  std::string status_line(const std::string& request) {
    const std::string answer = running_->server().answer(request);
    return answer.substr(0, answer.find("\r\n"));
  }

  testing::TempDir dir_;
  std::unique_ptr<RunningServer> running_;
};

TEST_F(UiRoute, ServesThePageWithItsHeaders) {
  start();
  auto c = client();
  auto r = c.Get("/ui/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, ui::find_asset("index.html")->bytes);
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(r->get_header_value("ETag"), ui::find_asset("index.html")->etag);
  EXPECT_EQ(r->get_header_value("Cache-Control"), "no-cache");
  EXPECT_EQ(r->get_header_value("X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(r->get_header_value("Referrer-Policy"), "no-referrer");
  const std::string csp = r->get_header_value("Content-Security-Policy");
  EXPECT_NE(csp.find("default-src 'none'"), std::string::npos);
  EXPECT_NE(csp.find("script-src 'self';"), std::string::npos);
  EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos);
  EXPECT_EQ(csp.find("unsafe"), std::string::npos);

  r = c.Get("/ui/vendor/marked.js");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/javascript; charset=utf-8");
  EXPECT_EQ(r->body, ui::find_asset("vendor/marked.js")->bytes);

  r = c.Head("/ui/js/api.js");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(r->body.empty());
  EXPECT_EQ(r->get_header_value("ETag"), ui::find_asset("js/api.js")->etag);

  // The liveness probe is unchanged.
  r = c.Get("/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "corral is running");
}

TEST_F(UiRoute, RedirectsAndConditionalRequests) {
  start();
  auto c = client();
  auto r = c.Get("/ui");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 308);
  EXPECT_EQ(r->get_header_value("Location"), "/ui/");
  r = c.Head("/ui");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 308);

  const std::string etag(ui::find_asset("index.html")->etag);
  r = c.Get("/ui/", httplib::Headers{{"If-None-Match", etag}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 304);
  EXPECT_TRUE(r->body.empty());
  EXPECT_EQ(r->get_header_value("ETag"), etag);
  r = c.Get("/ui/index.html", httplib::Headers{{"If-None-Match", "\"other\", W/" + etag}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 304);
  r = c.Get("/ui/index.html", httplib::Headers{{"If-None-Match", "\"other\""}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(UiRoute, UnknownAndEscapingPathsAre404AndTheServerServesOn) {
  start();
  auto c = client();
  for (const char* path : {"/ui/nothing.js", "/ui/js/", "/ui/js", "/ui//index.html", "/uix",
                           "/ui/index.html/", "/ui/.", "/ui/vendor/"}) {
    auto r = c.Get(path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 404) << path;
    EXPECT_TRUE(nlohmann::json::parse(r->body)["error"].is_string()) << path;
  }
  // Raw bytes, so that no client tidies the path: dot segments, encoded or not, never leave the
  // table (httplib decodes %2e%2e into "..", which names no file).
  for (const std::string path :
       {"/ui/../index.html", "/ui/%2e%2e/index.html", "/ui/%2E%2E%2Fui%2Findex.html",
        "/ui/js/..%2fapi.js", "/ui/..%2f..%2f..%2fetc%2fpasswd", "/ui/../../../../etc/passwd",
        "/ui/%00index.html", "/ui/index.html%00"}) {
    const std::string status =
        status_line("GET " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    EXPECT_TRUE(status.find(" 404 ") != std::string::npos ||
                status.find(" 400 ") != std::string::npos)
        << path << ": " << status;
  }
  // An encoded slash is decoded: the same file, nothing beyond the table.
  EXPECT_EQ(status_line("GET /ui/js%2fapi.js HTTP/1.1\r\nHost: localhost\r\n\r\n"),
            "HTTP/1.1 200 OK");
  // Very long paths: within the head limit (an unknown file, or a request line too long) and
  // beyond it (the connection is cut).
  for (const size_t n : {size_t{2000}, size_t{8000}, size_t{60000}, size_t{200000}}) {
    const std::string status = status_line("GET /ui/" + std::string(n, 'a') +
                                           " HTTP/1.1\r\nHost: localhost\r\nConnection: "
                                           "close\r\n\r\n");
    EXPECT_EQ(status.find(" 200 "), std::string::npos) << n << ": " << status;
    if (n <= 8000) {
      EXPECT_FALSE(status.empty()) << n;
    }
  }
  auto r = c.Get("/ui/" + std::string(4000, '/'));
  ASSERT_TRUE(r);
  EXPECT_NE(r->status, 200);
  r = c.Get("/ui/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(UiRoute, NeedsNoApiKeyButTheHostAllowList) {
  ServerOptions o;
  o.api_key = "s3cret";
  start(o);
  auto c = client();
  auto r = c.Get("/ui/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  r = c.Get("/ui");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 308);
  r = c.Get("/ui/missing.js");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  r = c.Get("/api/tags");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  // Only the page's own GET/HEAD skip the key.
  r = c.Post("/ui/", "{}", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);

  r = c.Get("/ui/", httplib::Headers{{"Host", "evil.example"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403);
  r = c.Get("/ui/", httplib::Headers{{"Host", "localhost:11434"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

}  // namespace
}  // namespace corral::server
