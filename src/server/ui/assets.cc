#include "server/ui/assets.h"

namespace corral::server::ui {

const Asset* find_asset(std::string_view path) {
  for (const Asset& a : assets()) {
    if (a.path == path) return &a;
  }
  return nullptr;
}

bool etag_matches(std::string_view if_none_match, std::string_view etag) {
  constexpr std::string_view kSpace = " \t";
  while (!if_none_match.empty()) {
    const size_t comma = if_none_match.find(',');
    std::string_view tag = if_none_match.substr(0, comma);
    if_none_match =
        comma == std::string_view::npos ? std::string_view{} : if_none_match.substr(comma + 1);
    const size_t first = tag.find_first_not_of(kSpace);
    if (first == std::string_view::npos) continue;
    tag = tag.substr(first, tag.find_last_not_of(kSpace) - first + 1);
    if (tag == "*") return true;
    if (tag.starts_with("W/")) tag.remove_prefix(2);
    if (tag == etag) return true;
  }
  return false;
}

}  // namespace corral::server::ui
