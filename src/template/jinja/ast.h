// The syntax tree the parser builds and the evaluator walks.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "template/jinja/value.h"

namespace corral::tmpl::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    kLiteral,  // literal
    kName,     // name
    kList,     // children
    kTuple,    // children
    kDict,     // children: key, value, key, value, ...
    kGetAttr,  // children[0].name
    kGetItem,  // children[0][children[1]]
    kSlice,    // children[0][children[1]:children[2]:children[3]] (null when omitted)
    kCall,     // children[0](args); see Expr::kwnames
    kFilter,   // children[0] | name(args)
    kTest,     // children[0] is name(args); `negated` for `is not`
    kNeg,      // -children[0]
    kPos,      // +children[0]
    kNot,      // not children[0]
    kBinary,   // children[0] op children[1]: + - * / // % ** ~
    kAnd,      // children[0] and children[1]
    kOr,       // children[0] or children[1]
    kCompare,  // children[0] ops[0] children[1] ops[1] children[2] ... (chained)
    kCond,     // children[1] if children[0] else children[2] (null: undefined)
  };
  Kind kind;
  int line = 0, column = 0;
  int depth = 1;  // height of this subtree, bounded by the parser
  Value literal;
  std::string name;              // name, attribute, filter, test or operator
  std::vector<std::string> ops;  // kCompare operators
  std::vector<ExprPtr> children;
  // kCall/kFilter/kTest: children after the target are positional arguments, then keyword
  // arguments, whose names are the trailing kwnames.size() entries.
  std::vector<std::string> kwnames;
  bool negated = false;
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

// Parameters of a macro or a call block: names with optional default expressions.
struct Params {
  std::vector<std::string> names;
  std::vector<ExprPtr> defaults;  // null where none
};

struct Stmt {
  enum class Kind {
    kText,         // text
    kOutput,       // {{ expr }}
    kIf,           // conditions[i] -> bodies[i]; else_body
    kFor,          // for targets in expr [if filter] body [else else_body]
    kSet,          // set targets = expr; or set targets[0].attr = expr (namespace)
    kSetBlock,     // set targets[0] [| filter] body endset
    kMacro,        // macro name(params) body
    kCallBlock,    // call(params) expr body
    kFilterBlock,  // filter (filter chain in expr, applied to body's output)
    kBreak,
    kContinue,
    kBody,  // a plain body (the `generation` extension's block renders its content)
  };
  Kind kind;
  int line = 0, column = 0;
  std::string text;  // kText; kMacro: the name; kSet with attr: the attribute
  ExprPtr expr;
  ExprPtr filter;  // kFor: the inline `if`; kSetBlock: the filter chain (or null)
  std::vector<std::string> targets;
  bool unpack = false;  // the target was a tuple (`for a, b in ...`, `set a, b = ...`)
  std::vector<ExprPtr> conditions;
  std::vector<Body> bodies;
  Body body, else_body;
  Params params;
};

// The placeholder name a filter chain of {% filter %} / {% set x | f %} reads its input from.
inline constexpr const char* kBlockInput = "\x01block";

}  // namespace corral::tmpl::jinja
