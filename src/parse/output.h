// A model's output as clients receive it: thinking first (when the template has thinking tags and
// thinking is on), then tool calls in what remains (when tools were offered), the rest content.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "parse/thinking.h"
#include "runner/runner.h"
#include "template/toolcall.h"

namespace corral::parse {

// Output as the routes send it: thinking, content, completed tool calls, and the logprobs of the
// tokens it came from.
struct Delta {
  std::string thinking;
  std::string content;
  std::vector<tmpl::ToolCall> calls;
  std::vector<runner::Logprob> logprobs;
  bool empty() const {
    return thinking.empty() && content.empty() && calls.empty() && logprobs.empty();
  }
};

// Malformed calls are passed on as content.
class OutputParser {
 public:
  // `opened`: the prompt already opened the thinking block (see opens_thinking).
  OutputParser(std::optional<ThinkTags> think, std::optional<tmpl::ToolCallFormat> tools,
               bool opened = false);
  Delta push(runner::Piece piece);
  Delta finish();

 private:
  void split_content(std::string text, Delta& out, bool at_end);
  std::optional<ThinkingParser> think_;
  std::optional<tmpl::ToolCallParser> tools_;
};

}  // namespace corral::parse
