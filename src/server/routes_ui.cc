// The chat page: GET/HEAD /ui (308 to /ui/), /ui/ (index.html) and /ui/<file>, answered from the
// table compiled into the binary (server/ui/assets.h). A path is looked up exactly, never mapped
// onto the file system, so no path reaches a file outside the page. The API key is not asked for
// here (the page must load to ask the user for it, server.cc); the Host allow-list is.
#include <httplib.h>

#include <string>

#include "server/server.h"
#include "server/ui/assets.h"

namespace corral::server {
namespace {

// The page runs its own scripts and styles only: no inline script or style, no other origin, no
// framing (clickjacking), no form posts. Images from data: and blob: are the user's attachments.
constexpr const char* kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'";

void set_page_headers(httplib::Response& res) {
  res.set_header("Content-Security-Policy", kContentSecurityPolicy);
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("Referrer-Policy", "no-referrer");
  res.set_header("X-Frame-Options", "DENY");
}

void handle_ui(const httplib::Request& req, httplib::Response& res) {
  set_page_headers(res);
  if (req.path == "/ui") {
    // 308 keeps the method (HEAD stays HEAD); relative to /ui/ the page's own links resolve.
    res.status = 308;
    res.set_header("Location", "/ui/");
    return;
  }
  std::string_view path = req.path;
  path.remove_prefix(4);  // "/ui/"
  if (path.empty()) path = "index.html";
  const ui::Asset* asset = ui::find_asset(path);
  if (!asset) {
    send_error(res, 404, "404 page not found: " + excerpt(req.method) + " " + excerpt(req.path));
    return;
  }
  res.set_header("ETag", std::string(asset->etag));
  // Revalidated on every load (a 304 costs a round trip on loopback), so a new corral's page is
  // never mixed with files of an older one from the cache.
  res.set_header("Cache-Control", "no-cache");
  if (ui::etag_matches(req.get_header_value("If-None-Match"), asset->etag)) {
    res.status = 304;
    return;
  }
  res.set_content(asset->bytes.data(), asset->bytes.size(), std::string(asset->content_type));
}

}  // namespace

void add_ui_routes(httplib::Server& http) {
  // httplib matches routes with std::regex, whose matcher recurses once a character: a bounded
  // repetition keeps a long path from exhausting the stack (longer ones get the JSON 404 of
  // unknown routes).
  http.Get(R"(/ui(/[^\r\n]{0,1024})?)", handle_ui);
}

}  // namespace corral::server
