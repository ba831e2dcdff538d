// The parse tree of a Go text/template, shaped like Go's text/template/parse nodes (positions are
// byte offsets into the template text, for "name:line:col" in error messages).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace corral::tmpl::gotmpl {

struct Pipe;

enum class ArgKind {
  kField,     // .A.B              ident = {"A", "B"}
  kVariable,  // $x.A              ident = {"$x", "A"}
  kDot,       // .
  kNil,       // nil
  kBool,      // true / false
  kNumber,    // 1, 1.5, 0x1F, 'a'
  kString,    // "..." or `...` (str holds the unquoted value)
  kIdent,     // a function name   ident = {"printf"}
  kPipe,      // ( pipeline )
  kChain,     // (pipeline).A.B    pipe holds the base, ident the fields
};

struct Arg {
  ArgKind kind = ArgKind::kDot;
  size_t pos = 0;
  std::vector<std::string> ident;
  bool boolean = false;
  bool is_float = false;  // a number constant with . e E p P (Go: float64), else int
  int64_t int_value = 0;
  double float_value = 0;
  std::string str;  // string literal value; number text as written
  std::shared_ptr<Pipe> pipe;
};

struct Command {
  size_t pos = 0;
  std::vector<Arg> args;
};

struct Pipe {
  size_t pos = 0;
  bool is_assign = false;         // $x = ... rather than $x := ...
  std::vector<std::string> decl;  // declared or assigned variables
  std::vector<Command> cmds;
};

enum class NodeType { kText, kAction, kIf, kRange, kWith, kTemplate, kBreak, kContinue };

struct Node {
  NodeType type = NodeType::kText;
  size_t pos = 0;
  std::string text;            // kText: the text; kTemplate: the template name
  std::shared_ptr<Pipe> pipe;  // kAction, kIf, kRange, kWith, kTemplate (may be null)
  std::vector<Node> list;      // body of if/range/with
  std::vector<Node> else_list;
  bool has_else = false;
};

// Go's String() of an argument or command, as "executing ... at <...>" quotes it.
std::string to_string(const Arg& arg);
std::string to_string(const Command& cmd);
std::string to_string(const Pipe& pipe);

}  // namespace corral::tmpl::gotmpl
