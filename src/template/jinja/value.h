// Values of the Jinja2 engine with Python's semantics: ints and floats stay distinct, dicts keep
// insertion order, lists/tuples print as Python's repr does, and Undefined is empty and falsy the
// way jinja2.Undefined is.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace corral::tmpl::jinja {

// A template syntax or runtime error. `line`/`column` (1-based) locate it in the template source;
// 0 while an error thrown by a builtin has not yet passed through the node that called it.
class Error : public std::runtime_error {
 public:
  Error(const std::string& kind, const std::string& message, int line = 0, int column = 0);
  const std::string& kind() const { return kind_; }  // "TypeError", "UndefinedError", ...
  const std::string& detail() const { return detail_; }
  int line() const { return line_; }
  int column() const { return column_; }
  Error at(int line, int column) const {
    Error e(kind_, detail_, line, column);
    e.limit_ = limit_;
    return e;
  }
  // An error of a rendering stopped by its limits (output, work, time, depth, cancellation,
  // or a value too large to build) rather than by anything wrong in the template.
  static Error limit(const std::string& kind, const std::string& message) {
    Error e(kind, message);
    e.limit_ = true;
    return e;
  }
  bool is_limit() const { return limit_; }

 private:
  std::string kind_, detail_;
  int line_, column_;
  bool limit_ = false;
};

class Value;
using ValueList = std::vector<Value>;

struct CallArgs {
  ValueList args;
  std::vector<std::pair<std::string, Value>> kwargs;
  // The keyword `name` (removed from kwargs) or positional `index`, else nullptr.
  const Value* get(const std::string& name, size_t index) const;
};

using Function = std::function<Value(CallArgs&)>;

class Value {
 public:
  enum class Type { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kFunction };
  // A list also stands for a tuple (printed with parentheses) and for the generator that
  // map/select/... return (which json.dumps refuses, as in Python).
  enum class ListKind { kList, kTuple, kGenerator };

  Value() = default;  // undefined
  static Value undefined(std::string hint) {
    Value v;
    v.str_ = std::move(hint);
    return v;
  }
  static Value none() { return Value(Type::kNone); }
  Value(bool b) : type_(Type::kBool), int_(b) {}
  Value(int v) : type_(Type::kInt), int_(v) {}
  Value(int64_t v) : type_(Type::kInt), int_(v) {}
  Value(size_t v) : type_(Type::kInt), int_(static_cast<int64_t>(v)) {}
  Value(double v) : type_(Type::kFloat), float_(v) {}
  Value(std::string s) : type_(Type::kString), str_(std::move(s)) {}
  Value(const char* s) : type_(Type::kString), str_(s) {}
  static Value list(ValueList items, ListKind kind = ListKind::kList);
  static Value dict();  // empty dict
  static Value namespace_object();
  static Value function(std::string name, Function fn);
  static Value from_json(const nlohmann::ordered_json& j);

  Type type() const { return type_; }
  bool is_undefined() const { return type_ == Type::kUndefined; }
  bool is_none() const { return type_ == Type::kNone; }
  bool is_bool() const { return type_ == Type::kBool; }
  bool is_int() const { return type_ == Type::kInt; }
  bool is_float() const { return type_ == Type::kFloat; }
  bool is_number() const { return is_int() || is_float(); }  // bool excluded, as Jinja's test
  bool is_string() const { return type_ == Type::kString; }
  bool is_list() const { return type_ == Type::kList; }
  bool is_dict() const { return type_ == Type::kDict; }
  bool is_function() const { return type_ == Type::kFunction; }
  bool is_namespace() const { return is_dict() && dict_->is_namespace; }
  ListKind list_kind() const { return list_->kind; }

  bool as_bool() const { return int_ != 0; }
  int64_t as_int() const { return int_; }  // also a bool's 0/1
  double as_float() const { return is_float() ? float_ : static_cast<double>(int_); }
  const std::string& as_string() const { return str_; }
  // Why an undefined value is undefined (Jinja's message), for errors it raises when used.
  const std::string& undefined_hint() const { return str_; }
  const ValueList& items() const { return list_->items; }
  const std::string& function_name() const { return fn_->name; }
  Value call(CallArgs& args) const { return fn_->fn(args); }

  // Dicts: entries in insertion order; lookup by Python equality of keys.
  const std::vector<std::pair<Value, Value>>& entries() const { return dict_->entries; }
  const Value* find(const Value& key) const;
  void set(const Value& key, Value value) const;  // dicts are shared, as Python objects are
  size_t size() const;                            // len(): code points of a string

  bool truthy() const;
  // Python's ==, where 1 == 1.0 == True.
  friend bool operator==(const Value& a, const Value& b);
  friend bool operator!=(const Value& a, const Value& b) { return !(a == b); }

  std::string str() const;   // Python str() (what {{ }} prints); "" for undefined
  std::string repr() const;  // Python repr()
  // json.dumps(value, ensure_ascii=False, indent, separators, sort_keys); indent < 0: none.
  std::string to_json(int indent, const std::string& item_sep, const std::string& key_sep,
                      bool sort_keys) const;
  std::string type_name() const;  // Python's type name for error messages

 private:
  explicit Value(Type t) : type_(t) {}
  // Containers record how deeply they nest and whether a namespace (the one mutable kind) is
  // inside, so that no value can be built deep enough for the recursion of printing, comparing
  // or destroying it to exhaust the stack (see kMaxValueDepth in value.cc).
  struct ListData {
    ValueList items;
    ListKind kind;
    int depth = 1;
    bool has_namespace = false;
  };
  struct DictData {
    std::vector<std::pair<Value, Value>> entries;
    bool is_namespace = false;
    int depth = 1;
    bool has_namespace = false;
  };
  int nesting() const;
  bool holds_namespace() const;
  void note_entry(const Value& value) const;
  static Value from_json(const nlohmann::ordered_json& j, int depth);
  struct FunctionData {
    std::string name;
    Function fn;
  };
  void json_into(std::string& out, int indent, int depth, const std::string& item_sep,
                 const std::string& key_sep, bool sort_keys) const;

  Type type_ = Type::kUndefined;
  int64_t int_ = 0;
  double float_ = 0;
  std::string str_;
  std::shared_ptr<ListData> list_;
  std::shared_ptr<DictData> dict_;
  std::shared_ptr<FunctionData> fn_;
};

// Python's repr() of a float: the shortest text that reads back as the same double.
std::string python_float_repr(double v);
// Python's str.__repr__: single quotes unless the text holds ' and no ".
std::string python_string_repr(const std::string& s);

// UTF-8 code points (strings index and slice by code point, as Python's str does).
std::vector<std::string> utf8_chars(const std::string& s);
size_t utf8_length(const std::string& s);

}  // namespace corral::tmpl::jinja
