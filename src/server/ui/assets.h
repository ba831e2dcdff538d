// The chat page's files (src/server/ui/web plus the browser builds of marked and DOMPurify from
// npm), compiled into corral at build time by src/server/ui/embed.cmake: the page works offline
// and is served from memory, never from the file system.
#pragma once

#include <span>
#include <string_view>

namespace corral::server::ui {

struct Asset {
  std::string_view path;          // below /ui/, no leading slash: "index.html", "vendor/marked.js"
  std::string_view content_type;  // from the extension; text types say charset=utf-8
  std::string_view etag;          // a strong ETag, quoted: the first 128 bits of the SHA-256
  std::string_view bytes;
};

// Every file, as the build found them (generated ui_assets.cc).
std::span<const Asset> assets();

// The file at exactly `path` (no normalisation: "js/../x" and "js/" name no file), or null.
const Asset* find_asset(std::string_view path);

// Whether an If-None-Match header names `etag` ("*", a list, weak W/ forms: RFC 9110 13.1.2
// compares ETags weakly for GET).
bool etag_matches(std::string_view if_none_match, std::string_view etag);

}  // namespace corral::server::ui
