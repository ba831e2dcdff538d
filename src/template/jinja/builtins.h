// Jinja2's operators, filters, tests and the methods of Python's str/dict/list that templates
// call, with Python's semantics (what the evaluator delegates to).
#pragma once

#include <string>

#include "template/jinja/value.h"

namespace corral::tmpl::jinja {

// Jinja2's environment.getattr (attribute, then item) and getitem (item, then attribute). Both
// return an undefined value for a missing member and throw UndefinedError on an undefined object.
Value get_attr(const Value& object, const std::string& name);
Value get_item(const Value& object, const Value& key);
// object[start:stop:step], each bound none when omitted.
Value get_slice(const Value& object, const Value& start, const Value& stop, const Value& step);

// Python iteration: a list's items, a dict's keys, a string's characters; undefined iterates as
// empty; anything else throws TypeError.
ValueList iterate(const Value& value);

// Arithmetic: + - * / // % ** and ~ (string concatenation).
Value binary_op(const std::string& op, const Value& a, const Value& b);
Value negate(const Value& value);
// == != < <= > >= in, "not in".
bool compare(const std::string& op, const Value& a, const Value& b);

Value call_filter(const std::string& name, const Value& input, CallArgs& args);
bool call_test(const std::string& name, const Value& value, CallArgs& args);

// Globals every template sees: range, dict, namespace.
Value builtin_globals();

}  // namespace corral::tmpl::jinja
