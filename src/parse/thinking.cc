#include "parse/thinking.h"

#include <algorithm>
#include <regex>
#include <stdexcept>

namespace corral::parse {
namespace {

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

size_t leading_space(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && is_space(s[i])) ++i;
  return i;
}

// Length of the longest suffix of s that is a proper prefix of tag.
size_t partial_suffix(std::string_view s, std::string_view tag) {
  for (size_t n = std::min(s.size(), tag.size() - 1); n > 0; --n)
    if (s.substr(s.size() - n) == tag.substr(0, n)) return n;
  return 0;
}

}  // namespace

std::optional<Think> think_from_text(std::string_view text) {
  Think t;
  if (text == "true" || text == "false") {
    t.enabled = text == "true";
    return t;
  }
  if (text == "low" || text == "medium" || text == "high" || text == "max") {
    t.enabled = true;
    t.level = std::string(text);
    return t;
  }
  return std::nullopt;
}

std::optional<ThinkTags> thinking_tags(const tmpl::PromptTemplate& t) {
  if (t.syntax == tmpl::Syntax::kJinja) {
    if (t.text.find("<think>") != std::string::npos) return ThinkTags{"<think>", "</think>"};
    return std::nullopt;
  }
  if (t.text.find(".Thinking") == std::string::npos) return std::nullopt;
  // The literal text around {{ .Thinking }} inside the template's message loop.
  static const std::regex around(
      R"((<[^<>{}\s]+>)\s*(?:\{\{-?\s*\.Thinking\s*-?\}\})\s*(</?[^<>{}\s]+>))");
  std::smatch m;
  if (std::regex_search(t.text, m, around)) return ThinkTags{m[1].str(), m[2].str()};
  return ThinkTags{"<think>", "</think>"};
}

std::optional<ThinkTags> settle_think(Think& think, const std::optional<ThinkTags>& tags) {
  if (think.on() && !tags) throw std::invalid_argument("does not support thinking");
  if (tags && !think.enabled) think.enabled = true;
  if (think.on()) return tags;
  return std::nullopt;
}

bool opens_thinking(std::string_view prompt, const ThinkTags& tags) {
  while (!prompt.empty() && is_space(prompt.back())) prompt.remove_suffix(1);
  return prompt.ends_with(tags.open);
}

void ThinkingParser::push(std::string_view text, std::string& thinking, std::string& content) {
  buf_.append(text);
  run(thinking, content, false);
}

void ThinkingParser::finish(std::string& thinking, std::string& content) {
  run(thinking, content, true);
}

void ThinkingParser::run(std::string& thinking, std::string& content, bool at_end) {
  for (;;) {
    switch (state_) {
      case State::kLookingForOpen: {
        const size_t ws = leading_space(buf_);
        const std::string_view rest = std::string_view(buf_).substr(ws);
        if (rest.starts_with(tags_.open)) {
          buf_.erase(0, ws + tags_.open.size());
          state_ = State::kEatingSpaceAfterOpen;
          continue;
        }
        if (!at_end && std::string_view(tags_.open).starts_with(rest)) return;  // undecided
        state_ = State::kDone;
        continue;
      }
      case State::kEatingSpaceAfterOpen: {
        buf_.erase(0, leading_space(buf_));
        if (buf_.empty() && !at_end) return;
        state_ = State::kThinking;
        continue;
      }
      case State::kThinking: {
        const size_t close = buf_.find(tags_.close);
        if (close != std::string::npos) {
          std::string_view before = std::string_view(buf_).substr(0, close);
          while (!before.empty() && is_space(before.back())) before.remove_suffix(1);
          thinking.append(before);
          buf_.erase(0, close + tags_.close.size());
          state_ = State::kEatingSpaceAfterClose;
          continue;
        }
        // Hold back a possible partial closing tag and trailing whitespace (which belongs to
        // the thinking only if more thinking follows).
        const size_t keep = at_end ? 0 : partial_suffix(buf_, tags_.close);
        size_t end = buf_.size() - keep;
        while (end > 0 && is_space(buf_[end - 1])) --end;
        thinking.append(buf_, 0, end);
        buf_.erase(0, at_end ? buf_.size() : end);
        return;
      }
      case State::kEatingSpaceAfterClose: {
        buf_.erase(0, leading_space(buf_));
        if (buf_.empty() && !at_end) return;
        state_ = State::kDone;
        continue;
      }
      case State::kDone:
        content.append(buf_);
        buf_.clear();
        return;
    }
  }
}

}  // namespace corral::parse
