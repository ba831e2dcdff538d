// A Go text/template engine: the template language of Modelfile TEMPLATEs and Ollama's built-in
// prompt formats, executed as Go 1.22+'s text/template executes it (same output, same truthiness,
// same fmt printing of values, errors in "template: NAME:LINE:COL: ..." form).
#pragma once

#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "template/gotmpl/ast.h"
#include "template/gotmpl/value.h"
#include "template/limits.h"

namespace corral::tmpl::gotmpl {

// A parse or execution error; the message names the template, line and column.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// An execution stopped by its Limits (output, steps, time, depth, cancellation) rather than by
// anything wrong in the template.
class LimitError : public Error {
 public:
  using Error::Error;
};

// A template function beyond Go's built-ins. max_args -1: variadic.
struct FuncDef {
  Function fn;
  int min_args = 0;
  int max_args = -1;
};
using FuncMap = std::map<std::string, FuncDef, std::less<>>;

// What a missing map key evaluates to (Go's Option("missingkey=...")): default and zero both
// print "<no value>" for a map of interface values; they differ when a field of the missing value
// is taken (default: no value again; zero: "nil pointer evaluating interface {}.X").
enum class MissingKey { kDefault, kZero, kError };

struct Options {
  FuncMap funcs;
  MissingKey missing_key = MissingKey::kDefault;
};

class Template {
 public:
  // Parses text (with its {{define}} and {{block}} templates). Throws Error.
  static Template parse(std::string_view text, std::string name = "", Options options = {});

  // Executes with dot and $ set to data, appending to out, within limits. Throws Error
  // (LimitError where a limit stopped it).
  std::string execute(const Value& data, const Limits& limits = {}) const;
  void execute(std::string& out, const Value& data, const Limits& limits = {}) const;
  // The same, charged to an account that several executions share (their output together is
  // out, which must stay within the budget's output limit).
  void execute(std::string& out, const Value& data, Budget& budget) const;

  const std::string& name() const { return name_; }
  const std::string& text() const { return *text_; }
  const std::vector<Node>& root() const { return root_; }
  std::vector<Node>& mutable_root() { return root_; }
  // Templates made by {{define}} and {{block}}, by name.
  const std::map<std::string, std::vector<Node>>& definitions() const { return defs_; }
  // A template of this text whose body is root, without the defined templates or added functions
  // (Go's template.New("").AddParseTree of a bare tree).
  Template with_bare_root(std::vector<Node> root) const;

 private:
  friend class Executor;
  std::shared_ptr<const std::string> text_ = std::make_shared<const std::string>();
  std::string name_;
  std::vector<Node> root_;
  std::map<std::string, std::vector<Node>> defs_;
  std::shared_ptr<const Options> options_ = std::make_shared<const Options>();
};

// "name:line:col" of a byte offset into the template text (col counts bytes from 0, as Go's
// ErrorContext does).
std::string error_location(const std::string& name, std::string_view text, size_t pos);

// The built-in functions (and, or, not, len, index, slice, eq, ne, lt, le, gt, ge, print, printf,
// println, html, js, urlquery, call) are always present; these are their implementations for the
// executor. Go's fmt.Sprintf over template values.
std::string sprintf(std::string_view format, std::span<const Value> args);
std::string sprint(std::span<const Value> args);
std::string sprintln(std::span<const Value> args);
bool is_builtin(std::string_view name);

}  // namespace corral::tmpl::gotmpl
