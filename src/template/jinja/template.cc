#include "template/jinja/template.h"

#include "template/jinja/builtins.h"
#include "template/jinja/parser.h"

namespace corral::tmpl::jinja {
namespace {

constexpr int kMaxCallDepth = 100;
// A loop iteration builds a scope and a loop object of a dozen entries: several times the work of
// an expression node.
constexpr uint64_t kLoopIterationSteps = 4;

// Variables of one scope. Loop iterations and macro calls open a child scope; `set` writes to
// the innermost one, so assignments inside a loop do not leak out (Jinja2's scoping).
struct Frame {
  std::vector<std::pair<std::string, Value>> vars;
  std::shared_ptr<Frame> parent;

  const Value* find(const std::string& name) const {
    for (const Frame* f = this; f; f = f->parent.get())
      for (const auto& [key, value] : f->vars)
        if (key == name) return &value;
    return nullptr;
  }
  void set(const std::string& name, Value value) {
    for (auto& [key, existing] : vars) {
      if (key == name) {
        existing = std::move(value);
        return;
      }
    }
    vars.emplace_back(name, std::move(value));
  }
};
using FramePtr = std::shared_ptr<Frame>;

enum class Flow { kNormal, kBreak, kContinue };

class Renderer {
 public:
  Renderer(const Value& context, std::string& out, Budget& budget) : out_(&out), budget_(budget) {
    auto globals = std::make_shared<Frame>();
    const Value builtins = builtin_globals();
    for (const auto& [key, value] : builtins.entries()) globals->set(key.as_string(), value);
    root_ = std::make_shared<Frame>();
    root_->parent = globals;
    if (context.is_dict())
      for (const auto& [key, value] : context.entries())
        if (key.is_string()) root_->set(key.as_string(), value);
  }

  void run(const Body& body) { exec(body, root_); }

 private:
  [[noreturn]] void exceeded() { throw Error::limit("LimitError", budget_.error()); }
  void step(uint64_t n = 1) {
    if (!budget_.step(n)) exceeded();
  }

  void write(const std::string& text) {
    if (!budget_.output(out_->size() + text.size()) || !budget_.bytes(text.size())) exceeded();
    *out_ += text;
  }

  Flow exec(const Body& body, const FramePtr& frame) {
    for (const auto& stmt : body) {
      Flow flow;
      try {
        step();
        DepthGuard guard(*this);
        flow = exec_stmt(*stmt, frame);
      } catch (const Error& e) {
        if (e.line() == 0) throw e.at(stmt->line, stmt->column);
        throw;
      }
      if (flow != Flow::kNormal) return flow;
    }
    return Flow::kNormal;
  }

  // Renders a body into a string of its own (macros, set blocks, filter blocks).
  std::string capture(const Body& body, const FramePtr& frame) {
    std::string buffer;
    std::string* saved = out_;
    out_ = &buffer;
    try {
      exec(body, frame);
    } catch (...) {
      out_ = saved;
      throw;
    }
    out_ = saved;
    return buffer;
  }

  Flow exec_stmt(const Stmt& s, const FramePtr& frame) {
    switch (s.kind) {
      case Stmt::Kind::kText:
        write(s.text);
        return Flow::kNormal;
      case Stmt::Kind::kOutput:
        write(eval(*s.expr, frame).str());
        return Flow::kNormal;
      case Stmt::Kind::kIf:
        for (size_t i = 0; i < s.conditions.size(); ++i)
          if (eval(*s.conditions[i], frame).truthy()) return exec(s.bodies[i], frame);
        return exec(s.else_body, frame);
      case Stmt::Kind::kFor:
        return exec_for(s, frame);
      case Stmt::Kind::kSet:
        exec_set(s, frame);
        return Flow::kNormal;
      case Stmt::Kind::kSetBlock: {
        Value value(capture(s.body, frame));
        if (s.filter) value = apply_block_filter(*s.filter, value, frame);
        frame->set(s.targets[0], value);
        return Flow::kNormal;
      }
      case Stmt::Kind::kMacro:
        frame->set(s.text, make_macro(s.text, s.params, s.body, frame));
        return Flow::kNormal;
      case Stmt::Kind::kCallBlock:
        exec_call_block(s, frame);
        return Flow::kNormal;
      case Stmt::Kind::kFilterBlock: {
        Value body(capture(s.body, frame));
        write(apply_block_filter(*s.filter, body, frame).str());
        return Flow::kNormal;
      }
      case Stmt::Kind::kBreak:
        return Flow::kBreak;
      case Stmt::Kind::kContinue:
        return Flow::kContinue;
      case Stmt::Kind::kBody:
        return exec(s.body, frame);
    }
    return Flow::kNormal;
  }

  Value apply_block_filter(const Expr& filter, const Value& input, const FramePtr& frame) {
    auto scope = std::make_shared<Frame>();
    scope->parent = frame;
    scope->set(kBlockInput, input);
    return eval(filter, scope);
  }

  static void bind_targets(const Stmt& s, const Value& value, Frame& frame) {
    if (!s.unpack) {
      frame.set(s.targets[0], value);
      return;
    }
    ValueList items = iterate(value);
    if (items.size() != s.targets.size())
      throw Error(
          "ValueError",
          items.size() > s.targets.size()
              ? "too many values to unpack (expected " + std::to_string(s.targets.size()) + ")"
              : "not enough values to unpack (expected " + std::to_string(s.targets.size()) +
                    ", got " + std::to_string(items.size()) + ")");
    for (size_t i = 0; i < items.size(); ++i) frame.set(s.targets[i], items[i]);
  }

  Flow exec_for(const Stmt& s, const FramePtr& frame) {
    ValueList items = iterate(eval(*s.expr, frame));
    if (s.filter) {
      ValueList kept;
      for (const Value& item : items) {
        auto scope = std::make_shared<Frame>();
        scope->parent = frame;
        bind_targets(s, item, *scope);
        if (eval(*s.filter, scope).truthy()) kept.push_back(item);
      }
      items = std::move(kept);
    }
    const size_t n = items.size();
    for (size_t i = 0; i < n; ++i) {
      auto scope = std::make_shared<Frame>();
      scope->parent = frame;
      Value loop = Value::dict();
      loop.set("index", Value(i + 1));
      loop.set("index0", Value(i));
      loop.set("revindex", Value(n - i));
      loop.set("revindex0", Value(n - i - 1));
      loop.set("first", Value(i == 0));
      loop.set("last", Value(i + 1 == n));
      loop.set("length", Value(n));
      loop.set("depth", Value(1));
      loop.set("depth0", Value(0));
      if (i > 0) loop.set("previtem", items[i - 1]);
      if (i + 1 < n) loop.set("nextitem", items[i + 1]);
      loop.set("cycle", Value::function("cycle", [i](CallArgs& args) {
                 if (args.args.empty()) throw Error("TypeError", "no items for cycling given");
                 return args.args[i % args.args.size()];
               }));
      scope->set("loop", loop);
      bind_targets(s, items[i], *scope);
      step(kLoopIterationSteps);
      if (exec(s.body, scope) == Flow::kBreak) break;
    }
    if (n == 0) exec(s.else_body, frame);
    return Flow::kNormal;
  }

  void exec_set(const Stmt& s, const FramePtr& frame) {
    Value value = eval(*s.expr, frame);
    if (!s.text.empty()) {
      const Value* target = frame->find(s.targets[0]);
      if (!target || !target->is_namespace())
        throw Error("TemplateRuntimeError", "cannot assign attribute on non-namespace object");
      target->set(Value(s.text), value);
      return;
    }
    bind_targets(s, value, *frame);
  }

  // A macro: a function that binds its parameters in a scope below the one it was defined in
  // and returns its rendered body.
  Value make_macro(const std::string& name, const Params& params, const Body& body,
                   const FramePtr& defined_in) {
    std::weak_ptr<Frame> weak_scope = defined_in;
    const Params* p = &params;
    const Body* b = &body;
    return Value::function(name, [this, name, p, b, weak_scope](CallArgs& call) {
      FramePtr parent = weak_scope.lock();
      if (!parent) parent = root_;
      if (call_depth_ >= kMaxCallDepth)
        throw Error::limit("RecursionError",
                           "maximum recursion depth exceeded in macro '" + name + "'");
      auto scope = std::make_shared<Frame>();
      scope->parent = parent;
      ValueList varargs;
      for (size_t i = p->names.size(); i < call.args.size(); ++i) varargs.push_back(call.args[i]);
      Value kwargs = Value::dict();
      for (const auto& [key, value] : call.kwargs) {
        if (key == "caller") {
          scope->set("caller", value);
        } else if (std::find(p->names.begin(), p->names.end(), key) == p->names.end()) {
          kwargs.set(Value(key), value);
        }
      }
      for (size_t i = 0; i < p->names.size(); ++i) {
        const std::string& param = p->names[i];
        Value arg;
        bool given = false;
        if (i < call.args.size()) {
          arg = call.args[i];
          given = true;
        } else {
          for (const auto& [key, value] : call.kwargs)
            if (key == param) {
              arg = value;
              given = true;
            }
        }
        if (!given) {
          arg = p->defaults[i] ? eval(*p->defaults[i], scope)
                               : Value::undefined("parameter '" + param + "' was not provided");
        }
        scope->set(param, arg);
      }
      scope->set("varargs", Value::list(std::move(varargs), Value::ListKind::kTuple));
      scope->set("kwargs", kwargs);
      ++call_depth_;
      std::string rendered;
      try {
        rendered = capture(*b, scope);
      } catch (...) {
        --call_depth_;
        throw;
      }
      --call_depth_;
      return Value(std::move(rendered));
    });
  }

  void exec_call_block(const Stmt& s, const FramePtr& frame) {
    Value caller = make_macro("caller", s.params, s.body, frame);
    const Expr& call = *s.expr;
    Value callee = eval(*call.children[0], frame);
    CallArgs args = eval_args(call, frame);
    args.kwargs.emplace_back("caller", caller);
    write(invoke(callee, args).str());
  }

  CallArgs eval_args(const Expr& e, const FramePtr& frame) {
    CallArgs args;
    size_t n_kw = e.kwnames.size();
    size_t n_pos = e.children.size() - 1 - n_kw;
    for (size_t i = 0; i < n_pos; ++i) args.args.push_back(eval(*e.children[1 + i], frame));
    for (size_t i = 0; i < n_kw; ++i)
      args.kwargs.emplace_back(e.kwnames[i], eval(*e.children[1 + n_pos + i], frame));
    return args;
  }

  static Value invoke(const Value& callee, CallArgs& args) {
    if (callee.is_function()) return callee.call(args);
    if (callee.is_undefined()) throw Error("UndefinedError", callee.undefined_hint());
    throw Error("TypeError", "'" + callee.type_name() + "' object is not callable");
  }

  // Bound on nested evaluation (statements, expression nodes and macro calls together), so that
  // macro recursion through tall expressions cannot exhaust the stack.
  struct DepthGuard {
    explicit DepthGuard(Renderer& r) : renderer(r) {
      if (++renderer.eval_depth_ > renderer.budget_.limits().max_depth) {
        --renderer.eval_depth_;
        throw Error::limit("RecursionError", "maximum recursion depth exceeded");
      }
    }
    ~DepthGuard() { --renderer.eval_depth_; }
    DepthGuard(const DepthGuard&) = delete;
    DepthGuard& operator=(const DepthGuard&) = delete;
    Renderer& renderer;
  };

  Value eval(const Expr& e, const FramePtr& frame) {
    try {
      step();
      DepthGuard guard(*this);
      Value v = eval_node(e, frame);
      // What the node built is charged by size: strings by their bytes (concatenation and
      // repetition in a loop), lists made by calls, filters and operators by their items.
      if (v.is_string()) {
        if (!budget_.bytes(v.as_string().size())) exceeded();
      } else if (v.is_list() && (e.kind == Expr::Kind::kCall || e.kind == Expr::Kind::kFilter ||
                                 e.kind == Expr::Kind::kBinary || e.kind == Expr::Kind::kSlice)) {
        step(v.items().size());
      }
      return v;
    } catch (const Error& err) {
      if (err.line() == 0) throw err.at(e.line, e.column);
      throw;
    }
  }

  Value eval_node(const Expr& e, const FramePtr& frame) {
    switch (e.kind) {
      case Expr::Kind::kLiteral:
        return e.literal;
      case Expr::Kind::kName: {
        const Value* v = frame->find(e.name);
        return v ? *v : Value::undefined("'" + e.name + "' is undefined");
      }
      case Expr::Kind::kList:
      case Expr::Kind::kTuple: {
        ValueList items;
        for (const auto& child : e.children) items.push_back(eval(*child, frame));
        return Value::list(std::move(items), e.kind == Expr::Kind::kTuple ? Value::ListKind::kTuple
                                                                          : Value::ListKind::kList);
      }
      case Expr::Kind::kDict: {
        Value d = Value::dict();
        for (size_t i = 0; i + 1 < e.children.size(); i += 2) {
          Value key = eval(*e.children[i], frame);
          if (key.is_list() && key.list_kind() != Value::ListKind::kTuple)
            throw Error("TypeError", "unhashable type: 'list'");
          if (key.is_dict()) throw Error("TypeError", "unhashable type: 'dict'");
          d.set(key, eval(*e.children[i + 1], frame));
        }
        return d;
      }
      case Expr::Kind::kGetAttr:
        return get_attr(eval(*e.children[0], frame), e.name);
      case Expr::Kind::kGetItem:
        return get_item(eval(*e.children[0], frame), eval(*e.children[1], frame));
      case Expr::Kind::kSlice: {
        Value target = eval(*e.children[0], frame);
        Value bounds[3];
        for (int i = 0; i < 3; ++i)
          bounds[i] = e.children[1 + i] ? eval(*e.children[1 + i], frame) : Value::none();
        return get_slice(target, bounds[0], bounds[1], bounds[2]);
      }
      case Expr::Kind::kCall: {
        Value callee = eval(*e.children[0], frame);
        CallArgs args = eval_args(e, frame);
        return invoke(callee, args);
      }
      case Expr::Kind::kFilter: {
        Value input = eval(*e.children[0], frame);
        CallArgs args = eval_args(e, frame);
        return call_filter(e.name, input, args);
      }
      case Expr::Kind::kTest: {
        Value input = eval(*e.children[0], frame);
        CallArgs args = eval_args(e, frame);
        return Value(call_test(e.name, input, args) != e.negated);
      }
      case Expr::Kind::kNeg:
        return negate(eval(*e.children[0], frame));
      case Expr::Kind::kPos: {
        Value v = eval(*e.children[0], frame);
        if (v.is_undefined()) throw Error("UndefinedError", v.undefined_hint());
        if (!v.is_number() && !v.is_bool())
          throw Error("TypeError", "bad operand type for unary +: '" + v.type_name() + "'");
        return v.is_bool() ? Value(v.as_int()) : v;
      }
      case Expr::Kind::kNot:
        return Value(!eval(*e.children[0], frame).truthy());
      case Expr::Kind::kBinary:
        return binary_op(e.name, eval(*e.children[0], frame), eval(*e.children[1], frame));
      case Expr::Kind::kAnd: {
        Value left = eval(*e.children[0], frame);
        return left.truthy() ? eval(*e.children[1], frame) : left;
      }
      case Expr::Kind::kOr: {
        Value left = eval(*e.children[0], frame);
        return left.truthy() ? left : eval(*e.children[1], frame);
      }
      case Expr::Kind::kCompare: {
        Value left = eval(*e.children[0], frame);
        for (size_t i = 0; i < e.ops.size(); ++i) {
          Value right = eval(*e.children[i + 1], frame);
          if (!compare(e.ops[i], left, right)) return Value(false);
          left = std::move(right);
        }
        return Value(true);
      }
      case Expr::Kind::kCond:
        if (eval(*e.children[0], frame).truthy()) return eval(*e.children[1], frame);
        if (e.children[2]) return eval(*e.children[2], frame);
        return Value::undefined("the inline if-expression on line " + std::to_string(e.line) +
                                " evaluated to false and no else section was defined.");
    }
    return Value();
  }

  std::string* out_;
  Budget& budget_;
  FramePtr root_;
  int call_depth_ = 0;
  int eval_depth_ = 0;
};

}  // namespace

// Library exceptions that escape a builtin (a number out of range, say) become template errors,
// so callers only ever see jinja::Error.
Template Template::parse(const std::string& source) {
  Template t;
  try {
    t.body_ = std::make_shared<const Body>(jinja::parse(source));
  } catch (const std::logic_error& e) {
    throw Error("TemplateSyntaxError", e.what());
  }
  return t;
}

std::string Template::render(const Value& context, const Limits& limits) const {
  std::string out;
  Budget budget(limits);
  try {
    Renderer(context, out, budget).run(*body_);
  } catch (const std::logic_error& e) {
    throw Error("TemplateRuntimeError", e.what());
  }
  return out;
}

}  // namespace corral::tmpl::jinja
