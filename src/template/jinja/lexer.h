// Jinja2's lexer with the environment transformers uses: trim_blocks (the first newline after a
// block or comment tag is dropped), lstrip_blocks (spaces and tabs before a block or comment tag
// at the start of a line are dropped), `-`/`+` whitespace control, raw blocks, Python string
// literals, and keep_trailing_newline off (one trailing newline of the source is dropped).
#pragma once

#include <string>
#include <vector>

namespace corral::tmpl::jinja {

struct Token {
  enum class Type {
    kText,
    kVarBegin,
    kVarEnd,
    kBlockBegin,
    kBlockEnd,
    kName,
    kString,
    kInt,
    kFloat,
    kOp,
    kEof
  };
  Type type;
  std::string value;  // text, name, decoded string, number text or operator
  int line = 0, column = 0;
};

// Throws jinja::Error (TemplateSyntaxError) with the position of the problem.
std::vector<Token> tokenize(const std::string& source);

}  // namespace corral::tmpl::jinja
