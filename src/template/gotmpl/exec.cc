// Execution of a parsed template, following Go's text/template/exec.go: variable scopes, pipelines
// with the previous command's value passed as the final argument, field chains on maps and
// structs, Go's truthiness, range over slices, maps (sorted keys) and integers, break/continue,
// and the built-in functions (and/or short-circuit, Go 1.18+ comparison rules).
#include <algorithm>

#include "template/gotmpl/funcs.h"
#include "template/gotmpl/template.h"

namespace corral::tmpl::gotmpl {

class Executor {
 public:
  Executor(const Template& t, std::string& out, Budget& budget)
      : t_(t), out_(out), opts_(*t.options_), budget_(budget) {}

  void run(const Value& data) {
    vars_.push_back({"$", data});
    tmpl_name_ = t_.name_;
    walk_list(data, t_.root_);
  }

 private:
  enum class Flow { kNormal, kBreak, kContinue };
  struct Var {
    std::string name;
    Value value;
  };

  const Template& t_;
  std::string& out_;
  const Options& opts_;
  Budget& budget_;
  std::vector<Var> vars_;
  std::string tmpl_name_;
  int depth_ = 0;
  size_t at_pos_ = 0;
  std::string at_str_;
  bool at_set_ = false;

  void at(size_t pos, std::string str) {
    at_pos_ = pos;
    at_str_ = std::move(str);
    at_set_ = true;
  }

  std::string located(const std::string& msg) const {
    if (!at_set_) return "template: " + tmpl_name_ + ": " + msg;
    std::string context = at_str_;
    if (context.size() > 20) context = context.substr(0, 20) + "...";
    return "template: " + error_location(t_.name_, *t_.text_, at_pos_) + ": executing \"" +
           tmpl_name_ + "\" at <" + context + ">: " + msg;
  }

  [[noreturn]] void fail(const std::string& msg) const { throw Error(located(msg)); }
  [[noreturn]] void fail_limit(const std::string& msg) const { throw LimitError(located(msg)); }

  void step() {
    if (!budget_.step()) fail_limit(budget_.error());
  }
  void append(std::string_view text) {
    if (!budget_.output(out_.size() + text.size()) || !budget_.bytes(text.size())) {
      fail_limit(budget_.error());
    }
    out_ += text;
  }

  // Every level of blocks, template calls and parenthesized pipelines being executed is a few C++
  // frames, so their nesting together is bounded (Go allows 100000 template calls; its stacks
  // grow).
  struct DepthGuard {
    explicit DepthGuard(Executor& e) : ex(e) {
      if (++ex.depth_ > ex.budget_.limits().max_depth) {
        --ex.depth_;
        ex.fail_limit("exceeded maximum template depth (" +
                      std::to_string(ex.budget_.limits().max_depth) + ")");
      }
    }
    ~DepthGuard() { --ex.depth_; }
    DepthGuard(const DepthGuard&) = delete;
    DepthGuard& operator=(const DepthGuard&) = delete;
    Executor& ex;
  };

  Flow walk_list(const Value& dot, const std::vector<Node>& list) {
    for (const Node& n : list) {
      const Flow f = walk(dot, n);
      if (f != Flow::kNormal) return f;
    }
    return Flow::kNormal;
  }

  Flow walk(const Value& dot, const Node& n) {
    step();
    switch (n.type) {
      case NodeType::kText:
        append(n.text);
        return Flow::kNormal;
      case NodeType::kAction: {
        const Value v = eval_pipeline(dot, *n.pipe);
        if (n.pipe->decl.empty()) print_value(n, v);
        return Flow::kNormal;
      }
      case NodeType::kIf:
      case NodeType::kWith: {
        DepthGuard guard(*this);
        const size_t mark = vars_.size();
        const Value v = eval_pipeline(dot, *n.pipe);
        Flow f = Flow::kNormal;
        if (v.truthy()) {
          f = walk_list(n.type == NodeType::kWith ? v : dot, n.list);
        } else if (n.has_else) {
          f = walk_list(dot, n.else_list);
        }
        vars_.resize(mark);
        return f;
      }
      case NodeType::kRange: {
        DepthGuard guard(*this);
        return walk_range(dot, n);
      }
      case NodeType::kTemplate: {
        DepthGuard guard(*this);
        walk_template(dot, n);
        return Flow::kNormal;
      }
      case NodeType::kBreak:
        return Flow::kBreak;
      case NodeType::kContinue:
        return Flow::kContinue;
    }
    return Flow::kNormal;
  }

  void print_value(const Node& n, const Value& v) {
    if (v.kind() == Kind::kFunc) {
      at(n.pos, "{{" + to_string(*n.pipe) + "}}");
      fail("can't print {{" + to_string(*n.pipe) + "}} of type " + v.type_name());
    }
    append(format_value(v));
  }

  void set_var(const std::string& name, const Value& v) {
    for (size_t i = vars_.size(); i-- > 0;) {
      if (vars_[i].name == name) {
        vars_[i].value = v;
        return;
      }
    }
    fail("undefined variable: " + name);
  }

  const Value& var_value(const std::string& name) {
    for (size_t i = vars_.size(); i-- > 0;) {
      if (vars_[i].name == name) return vars_[i].value;
    }
    fail("undefined variable: " + name);
  }

  Flow walk_range(const Value& dot, const Node& n) {
    at(n.pos, "{{range " + to_string(*n.pipe) + "}}");
    const size_t scope = vars_.size();
    const Value v = eval_pipeline(dot, *n.pipe);
    const size_t mark = vars_.size();
    const Pipe& p = *n.pipe;
    bool any = false;
    bool stop = false;
    auto iteration = [&](const Value& index, const Value& elem) {
      any = true;
      step();
      if (!p.decl.empty()) {
        if (p.is_assign) {
          set_var(p.decl[0], p.decl.size() > 1 ? index : elem);
        } else {
          vars_[vars_.size() - 1].value = elem;
        }
      }
      if (p.decl.size() > 1) {
        if (p.is_assign) {
          set_var(p.decl[1], elem);
        } else {
          vars_[vars_.size() - 2].value = index;
        }
      }
      const Flow f = walk_list(elem, n.list);
      vars_.resize(mark);
      if (f == Flow::kBreak) stop = true;
    };
    switch (v.kind()) {
      case Kind::kList:
        for (size_t i = 0; i < v.items().size() && !stop; ++i) {
          iteration(Value(static_cast<int64_t>(i)), v.items()[i]);
        }
        break;
      case Kind::kMap:
        for (auto it = v.entries().begin(); it != v.entries().end() && !stop; ++it) {
          iteration(Value(it->first), it->second);
        }
        break;
      case Kind::kInt:
        if (p.decl.size() > 1) {
          at(n.pos, "{{range " + to_string(*n.pipe) + "}}");
          fail("can't use " + format_value(v) + " to iterate over more than one variable");
        }
        for (int64_t i = 0; i < v.as_int() && !stop; ++i) iteration(Value(i), Value(i));
        break;
      case Kind::kInvalid:
        break;
      default:
        at(n.pos, "{{range " + to_string(*n.pipe) + "}}");
        fail("range can't iterate over " + format_value(v));
    }
    Flow f = Flow::kNormal;
    if (!any && n.has_else) f = walk_list(dot, n.else_list);
    vars_.resize(scope);
    return f;
  }

  void walk_template(const Value& dot, const Node& n) {
    std::string context = "{{template \"" + n.text + "\"";
    if (n.pipe) {
      context += ' ';
      context += to_string(*n.pipe);
    }
    context += "}}";
    at(n.pos, std::move(context));
    const std::vector<Node>* body = nullptr;
    auto it = t_.defs_.find(n.text);
    if (it != t_.defs_.end()) {
      body = &it->second;
    } else if (n.text == t_.name_) {
      body = &t_.root_;
    }
    if (!body) fail("template \"" + n.text + "\" not defined");
    const Value new_dot = n.pipe ? eval_pipeline(dot, *n.pipe) : Value();
    std::vector<Var> saved_vars = std::move(vars_);
    std::string saved_name = std::move(tmpl_name_);
    vars_ = {{"$", new_dot}};
    tmpl_name_ = n.text;
    walk_list(new_dot, *body);
    vars_ = std::move(saved_vars);
    tmpl_name_ = std::move(saved_name);
  }

  // A nil interface stored in a map or slice becomes "no value" at the end of each command
  // (Go digs an interface{} down to its dynamic value).
  static Value dig(Value v) { return v.is_nil() ? Value() : v; }

  Value eval_pipeline(const Value& dot, const Pipe& p) {
    DepthGuard guard(*this);
    Value v;
    bool have = false;
    for (const Command& c : p.cmds) {
      v = dig(eval_command(dot, c, have ? &v : nullptr));
      have = true;
    }
    for (const std::string& name : p.decl) {
      if (p.is_assign) {
        set_var(name, v);
      } else {
        vars_.push_back({name, v});
      }
    }
    return v;
  }

  void not_a_function(const Command& c, const Value* final) {
    if (c.args.size() > 1 || final) {
      fail("can't give argument to non-function " + to_string(c.args[0]));
    }
  }

  Value eval_command(const Value& dot, const Command& c, const Value* final) {
    step();
    const Arg& first = c.args[0];
    switch (first.kind) {
      case ArgKind::kField:
        at(first.pos, to_string(first));
        return eval_field_chain(dot, first.ident, 0, c, final);
      case ArgKind::kChain: {
        at(first.pos, to_string(first));
        const Value base = eval_pipeline(dot, *first.pipe);
        at(first.pos, to_string(first));
        return eval_field_chain(base, first.ident, 0, c, final);
      }
      case ArgKind::kIdent:
        return eval_function(dot, c, final);
      case ArgKind::kPipe:
        at(first.pos, to_string(first));
        not_a_function(c, final);
        return eval_pipeline(dot, *first.pipe);
      case ArgKind::kVariable: {
        at(first.pos, to_string(first));
        const Value& v = var_value(first.ident[0]);
        if (first.ident.size() == 1) {
          not_a_function(c, final);
          return v;
        }
        const Value base = v;
        return eval_field_chain(base, first.ident, 1, c, final);
      }
      default:
        break;
    }
    at(first.pos, to_string(first));
    not_a_function(c, final);
    switch (first.kind) {
      case ArgKind::kBool:
        return Value(first.boolean);
      case ArgKind::kDot:
        return dot;
      case ArgKind::kNil:
        fail("nil is not a command");
      case ArgKind::kNumber:
        return number(first);
      case ArgKind::kString:
        return Value(first.str);
      default:
        fail("can't evaluate command");
    }
  }

  static Value number(const Arg& a) {
    return a.is_float ? Value(a.float_value) : Value(a.int_value);
  }

  // Evaluates receiver.ident[from].ident[from+1]...; the last field gets the command's arguments.
  Value eval_field_chain(Value receiver, const std::vector<std::string>& ident, size_t from,
                         const Command& c, const Value* final) {
    for (size_t i = from; i + 1 < ident.size(); ++i) {
      receiver = eval_field(ident[i], receiver, false);
    }
    const bool has_args = c.args.size() > 1 || final;
    return eval_field(ident.back(), receiver, has_args);
  }

  Value eval_field(const std::string& name, const Value& receiver, bool has_args) {
    // Methods first, as Go looks them up before map keys and fields.
    const std::function<Value()>* method = receiver.method(name);
    if (method || (name == "String" && receiver.text())) {
      if (has_args) fail("wrong number of args for " + name + ": want 0 got 1");
      return method ? (*method)() : Value(*receiver.text());
    }
    switch (receiver.kind()) {
      case Kind::kInvalid:
        if (opts_.missing_key == MissingKey::kError) {
          fail("nil data; no entry for key \"" + name + "\"");
        }
        return Value();
      case Kind::kNil:
        fail("nil pointer evaluating interface {}." + name);
      case Kind::kMap: {
        if (has_args) fail(name + " is not a method but has arguments");
        auto it = receiver.entries().find(name);
        if (it != receiver.entries().end()) return it->second;
        switch (opts_.missing_key) {
          case MissingKey::kDefault:
            return Value();
          case MissingKey::kZero:
            return Value::nil();
          case MissingKey::kError:
            fail("map has no entry for key \"" + name + "\"");
        }
        return Value();
      }
      case Kind::kObject: {
        if (const Value* f = receiver.field(name)) {
          if (has_args) fail(name + " has arguments but cannot be invoked as function");
          return *f;
        }
        break;
      }
      default:
        break;
    }
    fail("can't evaluate field " + name + " in type " + receiver.type_name());
  }

  // An argument as Go's evalArg passes it to a function parameter of type any / reflect.Value.
  Value eval_arg(const Value& dot, const Arg& a) {
    at(a.pos, to_string(a));
    switch (a.kind) {
      case ArgKind::kBool:
        return Value(a.boolean);
      case ArgKind::kDot:
        return dot;
      case ArgKind::kNil:
        // Every parameter of the built-ins and of Ollama's functions accepts nil (Go:
        // reflect.Value and interface parameters).
        return Value::nil();
      case ArgKind::kNumber:
        return number(a);
      case ArgKind::kString:
        return Value(a.str);
      case ArgKind::kField: {
        Command c;
        c.pos = a.pos;
        c.args.push_back(a);
        return eval_field_chain(dot, a.ident, 0, c, nullptr);
      }
      case ArgKind::kVariable: {
        const Value v = var_value(a.ident[0]);
        if (a.ident.size() == 1) return v;
        Command c;
        c.args.push_back(a);
        return eval_field_chain(v, a.ident, 1, c, nullptr);
      }
      case ArgKind::kIdent: {
        Command c;
        c.pos = a.pos;
        c.args.push_back(a);
        return eval_function(dot, c, nullptr);
      }
      case ArgKind::kPipe:
        return eval_pipeline(dot, *a.pipe);
      case ArgKind::kChain: {
        const Value base = eval_pipeline(dot, *a.pipe);
        at(a.pos, to_string(a));
        Command c;
        c.args.push_back(a);
        return eval_field_chain(base, a.ident, 0, c, nullptr);
      }
    }
    return Value();
  }

  Value eval_function(const Value& dot, const Command& c, const Value* final) {
    const std::string& name = c.args[0].ident[0];
    at(c.args[0].pos, name);
    const auto user = opts_.funcs.find(name);
    const bool builtin = user == opts_.funcs.end() && is_builtin(name);
    if (user == opts_.funcs.end() && !builtin) fail("\"" + name + "\" is not a defined function");
    const int n_args = static_cast<int>(c.args.size()) - 1 + (final ? 1 : 0);
    int min_args = 0, max_args = -1;
    if (builtin) {
      builtin_arity(name, min_args, max_args);
    } else {
      min_args = user->second.min_args;
      max_args = user->second.max_args;
    }
    at(c.pos, to_string(c));
    if (max_args >= 0 && min_args == max_args && n_args != min_args) {
      fail("wrong number of args for " + name + ": want " + std::to_string(min_args) + " got " +
           std::to_string(n_args));
    }
    if (n_args < min_args || (max_args >= 0 && n_args > max_args)) {
      fail("wrong number of args for " + name + ": want at least " + std::to_string(min_args) +
           " got " + std::to_string(n_args));
    }
    if (builtin && (name == "and" || name == "or")) {
      const bool want = name == "or";
      Value v;
      for (size_t i = 1; i < c.args.size(); ++i) {
        v = eval_arg(dot, c.args[i]);
        if (v.truthy() == want) return v;
      }
      if (final) v = *final;
      return v;
    }
    std::vector<Value> args;
    args.reserve(static_cast<size_t>(n_args));
    for (size_t i = 1; i < c.args.size(); ++i) args.push_back(eval_arg(dot, c.args[i]));
    if (final) args.push_back(*final);
    at(c.pos, to_string(c));
    if (builtin && name == "printf" && args[0].kind() != Kind::kString) {
      if (args[0].is_invalid() || args[0].is_nil()) fail("invalid value; expected string");
      fail("wrong type for value; expected string; got " + args[0].type_name());
    }
    try {
      Value result = builtin ? call_builtin(name, args) : user->second.fn(args);
      if (result.kind() == Kind::kString && !budget_.bytes(result.as_string().size())) {
        fail_limit(budget_.error());
      }
      return result;
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      fail("error calling " + name + ": " + e.what());
    }
  }
};

std::string Template::execute(const Value& data, const Limits& limits) const {
  std::string out;
  execute(out, data, limits);
  return out;
}

void Template::execute(std::string& out, const Value& data, const Limits& limits) const {
  Budget budget(limits);
  execute(out, data, budget);
}

void Template::execute(std::string& out, const Value& data, Budget& budget) const {
  Executor(*this, out, budget).run(data);
}

}  // namespace corral::tmpl::gotmpl
