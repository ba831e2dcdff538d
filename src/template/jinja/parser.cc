#include "template/jinja/parser.h"

#include <algorithm>
#include <initializer_list>

#include "template/jinja/lexer.h"

namespace corral::tmpl::jinja {
namespace {

// Bounds on nesting: the parser and evaluator recurse once per level, so these keep a hostile
// template far from the stack limit (Python's own recursion limit stops Jinja2 similarly).
constexpr int kMaxNesting = 100;
constexpr int kMaxTreeHeight = 256;

using TT = Token::Type;

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  Body parse_template() {
    Body body = parse_body({});
    if (cur().type != TT::kEof) fail("unexpected '" + cur().value + "'");
    return body;
  }

 private:
  struct Guard {
    explicit Guard(Parser& p) : parser(p) {
      if (++parser.nesting_ > kMaxNesting) parser.fail("template nested too deeply");
    }
    ~Guard() { --parser.nesting_; }
    Parser& parser;
  };

  const Token& cur() const { return tokens_[pos_]; }
  const Token& peek(size_t ahead = 1) const {
    return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)];
  }
  void advance() {
    if (pos_ + 1 < tokens_.size()) ++pos_;
  }
  [[noreturn]] void fail(const std::string& message) const {
    throw Error("TemplateSyntaxError", message, cur().line, cur().column);
  }
  bool is_op(const char* op) const { return cur().type == TT::kOp && cur().value == op; }
  bool is_name(const char* name) const { return cur().type == TT::kName && cur().value == name; }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    advance();
    return true;
  }
  bool skip_name(const char* name) {
    if (!is_name(name)) return false;
    advance();
    return true;
  }
  void expect_op(const char* op) {
    if (!skip_op(op)) fail(std::string("expected '") + op + "', got " + describe(cur()));
  }
  void expect_block_end() {
    if (cur().type != TT::kBlockEnd)
      fail("expected end of statement block, got " + describe(cur()));
    advance();
  }
  std::string expect_name() {
    if (cur().type != TT::kName) fail("expected a name, got " + describe(cur()));
    std::string name = cur().value;
    advance();
    return name;
  }
  static std::string describe(const Token& t) {
    switch (t.type) {
      case TT::kEof:
        return "end of template";
      case TT::kBlockEnd:
        return "end of statement block";
      case TT::kVarEnd:
        return "end of print statement";
      case TT::kText:
        return "template data";
      default:
        return "'" + t.value + "'";
    }
  }

  ExprPtr node(Expr::Kind kind, const Token& at) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = at.line;
    e->column = at.column;
    return e;
  }
  ExprPtr node(Expr::Kind kind, int line, int column) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    e->column = column;
    return e;
  }
  // Records a child and keeps the subtree height (which bounds evaluator recursion).
  void add(Expr& parent, ExprPtr child) {
    if (child) {
      parent.depth = std::max(parent.depth, child->depth + 1);
      if (parent.depth > kMaxTreeHeight) fail("expression nested too deeply");
    }
    parent.children.push_back(std::move(child));
  }
  ExprPtr binary(Expr::Kind kind, const std::string& op, ExprPtr left, ExprPtr right) {
    auto e = node(kind, left->line, left->column);
    e->name = op;
    add(*e, std::move(left));
    add(*e, std::move(right));
    return e;
  }

  StmtPtr stmt(Stmt::Kind kind, const Token& at) {
    auto s = std::make_unique<Stmt>();
    s->kind = kind;
    s->line = at.line;
    s->column = at.column;
    return s;
  }

  // Parses statements until a `{% name %}` with name in `end_tags` (left at that name) or EOF.
  Body parse_body(std::initializer_list<const char*> end_tags) {
    Guard guard(*this);
    Body body;
    while (true) {
      const Token& t = cur();
      if (t.type == TT::kEof) {
        if (end_tags.size() != 0)
          fail(std::string("unexpected end of template, expected '") + *end_tags.begin() + "'");
        return body;
      }
      if (t.type == TT::kText) {
        auto s = stmt(Stmt::Kind::kText, t);
        s->text = t.value;
        body.push_back(std::move(s));
        advance();
      } else if (t.type == TT::kVarBegin) {
        auto s = stmt(Stmt::Kind::kOutput, t);
        advance();
        s->expr = parse_tuple(true);
        if (cur().type != TT::kVarEnd)
          fail("expected end of print statement, got " + describe(cur()));
        advance();
        body.push_back(std::move(s));
      } else if (t.type == TT::kBlockBegin) {
        const Token& name = peek();
        if (name.type != TT::kName) {
          advance();
          fail("tag name expected");
        }
        for (const char* end : end_tags)
          if (name.value == end) {
            advance();
            advance();
            return body;
          }
        advance();
        body.push_back(parse_statement());
      } else {
        fail("unexpected " + describe(t));
      }
    }
  }

  StmtPtr parse_statement() {
    const Token& t = cur();
    std::string tag = t.value;
    if (tag == "if") return parse_if();
    if (tag == "for") return parse_for();
    if (tag == "set") return parse_set();
    if (tag == "macro") return parse_macro();
    if (tag == "call") return parse_call_block();
    if (tag == "filter") return parse_filter_block();
    if (tag == "break" || tag == "continue") {
      if (loop_depth_ == 0) fail("'" + tag + "' outside of a loop");
      auto s = stmt(tag == "break" ? Stmt::Kind::kBreak : Stmt::Kind::kContinue, t);
      advance();
      expect_block_end();
      return s;
    }
    if (tag == "generation") {
      auto s = stmt(Stmt::Kind::kBody, t);
      advance();
      expect_block_end();
      s->body = parse_body({"endgeneration"});
      expect_block_end();
      return s;
    }
    fail("Encountered unknown tag '" + tag + "'");
  }

  StmtPtr parse_if() {
    auto s = stmt(Stmt::Kind::kIf, cur());
    advance();
    while (true) {
      s->conditions.push_back(parse_tuple(false));
      expect_block_end();
      s->bodies.push_back(parse_body({"elif", "else", "endif"}));
      const std::string which = tokens_[pos_ - 1].value;
      if (which == "elif") continue;
      if (which == "else") {
        expect_block_end();
        s->else_body = parse_body({"endif"});
      }
      expect_block_end();
      return s;
    }
  }

  // Assignment targets: a name or a tuple of names (optionally parenthesized).
  void parse_targets(Stmt& s) {
    bool paren = skip_op("(");
    s.targets.push_back(expect_name());
    while (skip_op(",")) {
      s.unpack = true;
      if (cur().type != TT::kName) break;
      s.targets.push_back(expect_name());
    }
    if (paren) {
      s.unpack = true;
      expect_op(")");
    }
  }

  StmtPtr parse_for() {
    auto s = stmt(Stmt::Kind::kFor, cur());
    advance();
    parse_targets(*s);
    if (!skip_name("in")) fail("expected 'in', got " + describe(cur()));
    s->expr = parse_tuple(false, /*with_condexpr=*/false);
    if (skip_name("if")) s->filter = parse_expression();
    if (skip_name("recursive")) fail("recursive loops are not supported");
    expect_block_end();
    ++loop_depth_;
    s->body = parse_body({"endfor", "else"});
    --loop_depth_;
    if (tokens_[pos_ - 1].value == "else") {
      expect_block_end();
      int saved = loop_depth_;
      loop_depth_ = 0;
      s->else_body = parse_body({"endfor"});
      loop_depth_ = saved;
    }
    expect_block_end();
    return s;
  }

  StmtPtr parse_set() {
    const Token& at = cur();
    advance();
    if (cur().type == TT::kName && peek().type == TT::kOp && peek().value == "." &&
        peek(2).type == TT::kName) {
      auto s = stmt(Stmt::Kind::kSet, at);
      s->targets.push_back(expect_name());
      advance();
      s->text = expect_name();
      expect_op("=");
      s->expr = parse_tuple(false);
      expect_block_end();
      return s;
    }
    auto s = stmt(Stmt::Kind::kSet, at);
    parse_targets(*s);
    if (skip_op("=")) {
      s->expr = parse_tuple(false);
      expect_block_end();
      return s;
    }
    if (s->unpack) fail("expected '='");
    s->kind = Stmt::Kind::kSetBlock;
    if (is_op("|")) s->filter = parse_filter_chain();
    expect_block_end();
    s->body = parse_body({"endset"});
    expect_block_end();
    return s;
  }

  // `| f(args) | g` applied to the placeholder input kBlockInput.
  ExprPtr parse_filter_chain() {
    auto input = node(Expr::Kind::kName, cur());
    input->name = kBlockInput;
    return parse_filters(std::move(input), /*leading_pipe=*/is_op("|"));
  }

  void parse_params(Params& params) {
    expect_op("(");
    while (!is_op(")")) {
      if (!params.names.empty()) expect_op(",");
      if (is_op(")")) break;
      params.names.push_back(expect_name());
      if (skip_op("=")) {
        params.defaults.push_back(parse_expression());
      } else {
        params.defaults.push_back(nullptr);
      }
    }
    expect_op(")");
  }

  StmtPtr parse_macro() {
    auto s = stmt(Stmt::Kind::kMacro, cur());
    advance();
    s->text = expect_name();
    parse_params(s->params);
    expect_block_end();
    int saved = loop_depth_;
    loop_depth_ = 0;
    s->body = parse_body({"endmacro"});
    loop_depth_ = saved;
    if (cur().type == TT::kName) advance();  // `{% endmacro name %}`
    expect_block_end();
    return s;
  }

  StmtPtr parse_call_block() {
    auto s = stmt(Stmt::Kind::kCallBlock, cur());
    advance();
    if (is_op("(")) parse_params(s->params);
    s->expr = parse_expression();
    if (s->expr->kind != Expr::Kind::kCall) fail("expected call");
    expect_block_end();
    int saved = loop_depth_;
    loop_depth_ = 0;
    s->body = parse_body({"endcall"});
    loop_depth_ = saved;
    expect_block_end();
    return s;
  }

  StmtPtr parse_filter_block() {
    auto s = stmt(Stmt::Kind::kFilterBlock, cur());
    advance();
    auto input = node(Expr::Kind::kName, cur());
    input->name = kBlockInput;
    s->filter = parse_filters(std::move(input), /*leading_pipe=*/false);
    expect_block_end();
    s->body = parse_body({"endfilter"});
    expect_block_end();
    return s;
  }

  // Expression or tuple `a, b` (no parentheses) as allowed in {{ }}, set and for.
  ExprPtr parse_tuple(bool allow_empty, bool with_condexpr = true) {
    const Token& at = cur();
    auto parse_one = [&] { return with_condexpr ? parse_expression() : parse_or(); };
    if (allow_empty && (cur().type == TT::kVarEnd)) fail("expected an expression");
    ExprPtr first = parse_one();
    if (!is_op(",")) return first;
    auto tuple = node(Expr::Kind::kTuple, at);
    add(*tuple, std::move(first));
    while (skip_op(",")) {
      if (cur().type == TT::kVarEnd || cur().type == TT::kBlockEnd || is_op(")") || is_name("if") ||
          is_name("in"))
        break;
      add(*tuple, parse_one());
    }
    return tuple;
  }

  ExprPtr parse_expression() {
    Guard guard(*this);
    ExprPtr expr = parse_or();
    while (is_name("if")) {
      auto cond = node(Expr::Kind::kCond, cur());
      advance();
      ExprPtr test = parse_or();
      ExprPtr otherwise = skip_name("else") ? parse_expression() : nullptr;
      cond->line = expr->line;
      cond->column = expr->column;
      add(*cond, std::move(test));
      add(*cond, std::move(expr));
      add(*cond, std::move(otherwise));
      expr = std::move(cond);
    }
    return expr;
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (skip_name("or")) left = binary(Expr::Kind::kOr, "or", std::move(left), parse_and());
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (skip_name("and")) left = binary(Expr::Kind::kAnd, "and", std::move(left), parse_not());
    return left;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      Guard guard(*this);
      auto e = node(Expr::Kind::kNot, cur());
      advance();
      add(*e, parse_not());
      return e;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    ExprPtr first = parse_math1();
    ExprPtr cmp;
    while (true) {
      std::string op;
      if (cur().type == TT::kOp &&
          (cur().value == "==" || cur().value == "!=" || cur().value == "<" ||
           cur().value == "<=" || cur().value == ">" || cur().value == ">=")) {
        op = cur().value;
        advance();
      } else if (is_name("in")) {
        op = "in";
        advance();
      } else if (is_name("not") && peek().type == TT::kName && peek().value == "in") {
        op = "not in";
        advance();
        advance();
      } else {
        break;
      }
      if (!cmp) {
        cmp = node(Expr::Kind::kCompare, first->line, first->column);
        add(*cmp, std::move(first));
      }
      cmp->ops.push_back(op);
      add(*cmp, parse_math1());
    }
    return cmp ? std::move(cmp) : std::move(first);
  }

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      std::string op = cur().value;
      advance();
      left = binary(Expr::Kind::kBinary, op, std::move(left), parse_concat());
    }
    return left;
  }

  ExprPtr parse_concat() {
    ExprPtr left = parse_math2();
    while (skip_op("~")) left = binary(Expr::Kind::kBinary, "~", std::move(left), parse_math2());
    return left;
  }

  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      std::string op = cur().value;
      advance();
      left = binary(Expr::Kind::kBinary, op, std::move(left), parse_pow());
    }
    return left;
  }

  ExprPtr parse_pow() {
    ExprPtr left = parse_unary(true);
    while (skip_op("**"))
      left = binary(Expr::Kind::kBinary, "**", std::move(left), parse_unary(true));
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    Guard guard(*this);
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      e = node(is_op("-") ? Expr::Kind::kNeg : Expr::Kind::kPos, cur());
      advance();
      add(*e, parse_unary(false));
    } else {
      e = parse_postfix(parse_primary());
    }
    if (with_filter) e = parse_filter_expr(std::move(e));
    return e;
  }

  ExprPtr parse_primary() {
    const Token& t = cur();
    switch (t.type) {
      case TT::kName: {
        auto e = node(Expr::Kind::kLiteral, t);
        if (t.value == "true" || t.value == "True") {
          e->literal = Value(true);
        } else if (t.value == "false" || t.value == "False") {
          e->literal = Value(false);
        } else if (t.value == "none" || t.value == "None") {
          e->literal = Value::none();
        } else {
          e->kind = Expr::Kind::kName;
          e->name = t.value;
        }
        advance();
        return e;
      }
      case TT::kString: {
        auto e = node(Expr::Kind::kLiteral, t);
        std::string s;
        while (cur().type == TT::kString) {
          s += cur().value;
          advance();
        }
        e->literal = Value(std::move(s));
        return e;
      }
      case TT::kInt: {
        auto e = node(Expr::Kind::kLiteral, t);
        try {
          e->literal = Value(static_cast<int64_t>(std::stoll(t.value)));
        } catch (const std::exception&) {
          e->literal = Value(std::stod(t.value));
        }
        advance();
        return e;
      }
      case TT::kFloat: {
        auto e = node(Expr::Kind::kLiteral, t);
        e->literal = Value(std::strtod(t.value.c_str(), nullptr));
        advance();
        return e;
      }
      case TT::kOp:
        if (t.value == "(") {
          advance();
          if (skip_op(")")) return node(Expr::Kind::kTuple, t);
          ExprPtr inner = parse_expression();
          if (is_op(",")) {
            auto tuple = node(Expr::Kind::kTuple, t);
            add(*tuple, std::move(inner));
            while (skip_op(",")) {
              if (is_op(")")) break;
              add(*tuple, parse_expression());
            }
            inner = std::move(tuple);
          }
          expect_op(")");
          return inner;
        }
        if (t.value == "[") {
          auto e = node(Expr::Kind::kList, t);
          advance();
          while (!is_op("]")) {
            if (!e->children.empty()) expect_op(",");
            if (is_op("]")) break;
            add(*e, parse_expression());
          }
          expect_op("]");
          return e;
        }
        if (t.value == "{") {
          auto e = node(Expr::Kind::kDict, t);
          advance();
          while (!is_op("}")) {
            if (!e->children.empty()) expect_op(",");
            if (is_op("}")) break;
            add(*e, parse_expression());
            expect_op(":");
            add(*e, parse_expression());
          }
          expect_op("}");
          return e;
        }
        break;
      default:
        break;
    }
    fail("unexpected " + describe(t));
  }

  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      if (is_op(".")) {
        advance();
        if (cur().type == TT::kName) {
          auto g = node(Expr::Kind::kGetAttr, e->line, e->column);
          g->name = cur().value;
          advance();
          add(*g, std::move(e));
          e = std::move(g);
        } else if (cur().type == TT::kInt) {
          auto g = node(Expr::Kind::kGetItem, e->line, e->column);
          auto index = node(Expr::Kind::kLiteral, cur());
          try {
            index->literal = Value(static_cast<int64_t>(std::stoll(cur().value)));
          } catch (const std::exception&) {
            fail("integer index out of range");
          }
          advance();
          add(*g, std::move(e));
          add(*g, std::move(index));
          e = std::move(g);
        } else {
          fail("expected name or number after '.'");
        }
      } else if (is_op("[")) {
        e = parse_subscript(std::move(e));
      } else if (is_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr target) {
    advance();
    ExprPtr parts[3];
    int colons = 0;
    while (!is_op("]")) {
      if (skip_op(":")) {
        if (++colons > 2) fail("unexpected ':'");
        continue;
      }
      if (parts[colons]) fail("expected ']'");
      parts[colons] = parse_expression();
    }
    advance();
    if (colons == 0) {
      if (!parts[0]) fail("expected subscript expression");
      auto g = node(Expr::Kind::kGetItem, target->line, target->column);
      add(*g, std::move(target));
      add(*g, std::move(parts[0]));
      return g;
    }
    auto s = node(Expr::Kind::kSlice, target->line, target->column);
    add(*s, std::move(target));
    for (auto& part : parts) add(*s, std::move(part));
    return s;
  }

  // Arguments `(a, b, key=c)` into e (after its target), with keyword names in kwnames.
  void parse_args(Expr& e) {
    expect_op("(");
    bool first = true;
    while (!is_op(")")) {
      if (!first) expect_op(",");
      first = false;
      if (is_op(")")) break;
      if (is_op("*") || is_op("**")) fail("*args and **kwargs are not supported");
      if (cur().type == TT::kName && peek().type == TT::kOp && peek().value == "=") {
        e.kwnames.push_back(cur().value);
        advance();
        advance();
        add(e, parse_expression());
      } else {
        if (!e.kwnames.empty()) fail("positional argument after keyword argument");
        add(e, parse_expression());
      }
    }
    expect_op(")");
  }

  ExprPtr parse_call(ExprPtr callee) {
    auto c = node(Expr::Kind::kCall, callee->line, callee->column);
    add(*c, std::move(callee));
    parse_args(*c);
    return c;
  }

  ExprPtr parse_filters(ExprPtr input, bool leading_pipe) {
    bool first = true;
    while (first ? (!leading_pipe || skip_op("|")) : skip_op("|")) {
      first = false;
      auto f = node(Expr::Kind::kFilter, cur());
      f->name = expect_name();
      while (skip_op(".")) f->name.append(".").append(expect_name());
      add(*f, std::move(input));
      if (is_op("(")) parse_args(*f);
      input = std::move(f);
    }
    return input;
  }

  ExprPtr parse_filter_expr(ExprPtr e) {
    while (true) {
      if (is_op("|")) {
        e = parse_filters(std::move(e), true);
      } else if (is_name("is")) {
        auto t = node(Expr::Kind::kTest, cur());
        advance();
        t->negated = skip_name("not");
        t->name = expect_name();
        while (skip_op(".")) t->name.append(".").append(expect_name());
        add(*t, std::move(e));
        if (is_op("(")) {
          parse_args(*t);
        } else if ((cur().type == TT::kName || cur().type == TT::kString ||
                    cur().type == TT::kInt || cur().type == TT::kFloat || is_op("(") ||
                    is_op("[") || is_op("{")) &&
                   !is_name("else") && !is_name("or") && !is_name("and")) {
          if (is_name("is")) fail("You cannot chain multiple tests with is");
          add(*t, parse_postfix(parse_primary()));
        }
        e = std::move(t);
      } else if (is_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int nesting_ = 0;
  int loop_depth_ = 0;
};

}  // namespace

Body parse(const std::string& source) { return Parser(tokenize(source)).parse_template(); }

}  // namespace corral::tmpl::jinja
