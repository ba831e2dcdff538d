// Thinking (reasoning) output: whether a model can think, which tags its template puts around the
// thinking, and splitting streamed text into thinking and content, as Ollama's thinking.Parser.
// Used by the server's routes and by `corral run` alike.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "template/prompt.h"

namespace corral::parse {

// Ollama's think: unset, true/false, or a level "low" | "medium" | "high" | "max".
struct Think {
  std::optional<bool> enabled;
  std::string level;
  bool on() const { return enabled.value_or(false); }
};

// "true", "false" or a level, as `--think=VALUE` and `/set think VALUE` take it; nullopt for
// anything else.
std::optional<Think> think_from_text(std::string_view text);

// Which tags a template puts around an assistant's thinking, when it has any (a template without
// them cannot think: Ollama's thinking.InferTags).
struct ThinkTags {
  std::string open, close;
};
std::optional<ThinkTags> thinking_tags(const tmpl::PromptTemplate& t);

// Settles a request's think against the template's tags: unset means on for a model that can
// think (as Ollama does). Throws std::invalid_argument "does not support thinking" when thinking
// is asked of a template without tags. Returns the tags to parse the output with, when on.
std::optional<ThinkTags> settle_think(Think& think, const std::optional<ThinkTags>& tags);

// Whether a rendered prompt ends with the opening tag (the template opened the thinking block, so
// the output starts inside it).
bool opens_thinking(std::string_view prompt, const ThinkTags& tags);

// Splits streamed text into thinking (between the tags at the start of the output) and content,
// holding back text that may still be a tag.
class ThinkingParser {
 public:
  explicit ThinkingParser(ThinkTags tags) : tags_(std::move(tags)) {}
  // Appends {thinking, content} that are certain now.
  void push(std::string_view text, std::string& thinking, std::string& content);
  void finish(std::string& thinking, std::string& content);

 private:
  enum class State {
    kLookingForOpen,
    kEatingSpaceAfterOpen,
    kThinking,
    kEatingSpaceAfterClose,
    kDone
  };
  void run(std::string& thinking, std::string& content, bool at_end);

  ThinkTags tags_;
  State state_ = State::kLookingForOpen;
  std::string buf_;
};

}  // namespace corral::parse
