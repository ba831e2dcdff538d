#include "parse/output.h"

#include <utility>

namespace corral::parse {

OutputParser::OutputParser(std::optional<ThinkTags> think,
                           std::optional<tmpl::ToolCallFormat> tools, bool opened) {
  if (think) {
    const std::string open = think->open;
    think_.emplace(std::move(*think));
    if (opened) {
      std::string thinking, content;  // nothing comes out of an opening tag alone
      think_->push(open, thinking, content);
    }
  }
  if (tools && tools->supports_tools()) tools_.emplace(*tools);
}

void OutputParser::split_content(std::string text, Delta& out, bool at_end) {
  if (!tools_) {
    out.content += text;
    return;
  }
  tmpl::ToolCallDelta d = tools_->push(text);
  if (at_end) {
    tmpl::ToolCallDelta rest = tools_->finish();
    d.content += rest.content;
    for (auto& c : rest.calls) d.calls.push_back(std::move(c));
    for (auto& e : rest.errors) d.errors.push_back(std::move(e));
  }
  out.content += d.content;
  for (const auto& e : d.errors) out.content += e.text;  // a call written wrongly stays text
  for (auto& c : d.calls) out.calls.push_back(std::move(c));
}

Delta OutputParser::push(runner::Piece piece) {
  Delta out;
  out.logprobs = std::move(piece.logprobs);
  std::string content;
  if (think_)
    think_->push(piece.text, out.thinking, content);
  else
    content = std::move(piece.text);
  if (!content.empty()) split_content(std::move(content), out, false);
  return out;
}

Delta OutputParser::finish() {
  Delta out;
  std::string content;
  if (think_) think_->finish(out.thinking, content);
  split_content(std::move(content), out, true);
  return out;
}

}  // namespace corral::parse
