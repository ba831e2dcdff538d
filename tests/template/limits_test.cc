// Templates that would exhaust the server (output, work, time, nesting, values too large to
// build) are refused by both engines with a limit error, quickly and in bounded memory; the limits
// are configurable, and a rendering polls its cancellation check.
#include "template/limits.h"

#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/resource.h>

#include <functional>
#include <string>

#include "template/gotmpl/template.h"
#include "template/jinja/template.h"
#include "template/prompt.h"

namespace corral::tmpl {
namespace {

// How much a refused bomb may raise the peak resident memory: a bomb that got to allocate would
// raise it by gigabytes. AddressSanitizer keeps freed memory in quarantine and maps shadow memory
// for what is allocated, so the same work shows more there.
// Its instrumentation also makes stack frames several times larger.
#if defined(__SANITIZE_ADDRESS__)
#define CORRAL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CORRAL_ASAN 1
#endif
#endif
#ifdef CORRAL_ASAN
constexpr long kMaxGrowthMib = 1536;
constexpr size_t kSmallStack = 4096 * 1024;
#else
constexpr long kMaxGrowthMib = 512;
constexpr size_t kSmallStack = 512 * 1024;
#endif

// The process's peak resident memory, in MiB.
long peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024;
}

// Runs f on a thread with a 512 KiB stack (4 MiB under ASan; smaller than any thread a server
// runs templates on), so that nesting up to the limits is shown to fit it.
void on_small_stack(const std::function<void()>& f) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, kSmallStack);
  pthread_t thread;
  auto* fn = new std::function<void()>(f);
  ASSERT_EQ(pthread_create(
                &thread, &attr,
                [](void* p) -> void* {
                  auto* g = static_cast<std::function<void()>*>(p);
                  (*g)();
                  delete g;
                  return nullptr;
                },
                fn),
            0);
  pthread_join(thread, nullptr);
  pthread_attr_destroy(&attr);
}

std::string repeat(std::string_view s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

// ---- Go templates ----------------------------------------------------------------------------

std::string go_error(std::string_view text, const Limits& limits = {}, bool* limit = nullptr) {
  try {
    gotmpl::Template::parse(text, "t").execute(gotmpl::Value(), limits);
  } catch (const gotmpl::Error& e) {
    if (limit) *limit = dynamic_cast<const gotmpl::LimitError*>(&e) != nullptr;
    return e.what();
  }
  return "(no error)";
}

TEST(GotmplLimits, RangeBombIsStoppedInBoundedMemory) {
  const long before = peak_rss_mib();
  bool limit = false;
  const std::string msg = go_error("{{range 1000000000}}x{{end}}", {}, &limit);
  EXPECT_TRUE(limit) << msg;
  EXPECT_NE(msg.find("template exceeds 20,000,000 steps"), std::string::npos) << msg;
  EXPECT_LT(peak_rss_mib() - before, kMaxGrowthMib);
}

TEST(GotmplLimits, NestedRangesAreStoppedByTheStepLimit) {
  Limits limits;
  limits.max_steps = 1'000'000;
  const std::string msg = go_error("{{range 100000}}{{range 100000}}{{end}}{{end}}", limits);
  EXPECT_NE(msg.find("template exceeds 1,000,000 steps"), std::string::npos) << msg;
}

TEST(GotmplLimits, OutputLimitStopsTheRenderingBeforeItGrows) {
  Limits limits;
  limits.max_output_bytes = 1000;
  const std::string text = "{{range 200}}0123456789{{end}}";
  EXPECT_EQ(go_error(text), "(no error)");
  bool limit = false;
  const std::string msg = go_error(text, limits, &limit);
  EXPECT_TRUE(limit);
  EXPECT_NE(msg.find("template output exceeds 1,000 bytes"), std::string::npos) << msg;
  EXPECT_NE(go_error("{{range 5000000}}0123456789abcdef{{end}}").find("exceeds 64 MiB"),
            std::string::npos);
}

TEST(GotmplLimits, StringsBuiltByFunctionsAreHeldToTheOutputLimit) {
  // Doubling a variable with printf: 2^40 bytes unless stopped.
  const std::string doubling =
      "{{$x := \"xxxxxxxx\"}}{{range 40}}{{$x = printf \"%s%s\" $x $x}}{{end}}";
  Limits limits;
  limits.max_output_bytes = 1 << 20;
  EXPECT_NE(go_error(doubling, limits).find("template output exceeds 1 MiB"), std::string::npos);
  // Go's fmt refuses widths beyond a million rather than padding to a gigabyte.
  EXPECT_EQ(
      gotmpl::Template::parse("{{printf \"%*d|%.*d\" 1000000000 1 -5 2}}").execute(gotmpl::Value()),
      "%!(BADWIDTH)1|%!(BADPREC)2");
  EXPECT_EQ(gotmpl::Template::parse("{{len (printf \"%*d\" 1000000 1)}}").execute(gotmpl::Value()),
            "1000000");
}

TEST(GotmplLimits, TemplateRecursionAndNestingStopAtTheDepthLimit) {
  bool limit = false;
  std::string msg =
      go_error("{{define \"r\"}}{{template \"r\" .}}{{end}}{{template \"r\" .}}", {}, &limit);
  EXPECT_TRUE(limit);
  EXPECT_NE(msg.find("exceeded maximum template depth (256)"), std::string::npos) << msg;
  // Recursion through nested blocks counts every level.
  msg = go_error(
      "{{define \"r\"}}{{if 1}}{{with 1}}{{template \"r\" .}}{{end}}{{end}}{{end}}"
      "{{template \"r\" .}}");
  EXPECT_NE(msg.find("exceeded maximum template depth (256)"), std::string::npos) << msg;
  Limits shallow;
  shallow.max_depth = 5;
  msg = go_error(repeat("{{if 1}}", 5) + "x" + repeat("{{end}}", 5), shallow);
  EXPECT_NE(msg.find("exceeded maximum template depth (5)"), std::string::npos) << msg;
}

TEST(GotmplLimits, DeepSourcesAreRefusedByTheParser) {
  EXPECT_NE(go_error(repeat("{{if 1}}", 100000)).find("max nesting depth exceeded"),
            std::string::npos);
  EXPECT_NE(go_error("{{" + repeat("(", 100000) + "1" + repeat(")", 100000) + "}}")
                .find("max nesting depth exceeded"),
            std::string::npos);
}

TEST(GotmplLimits, NestingUpToTheLimitsFitsASmallStack) {
  // The deepest template the parser takes, and recursion through blocks to the depth limit.
  const std::string deep = repeat("{{if 1}}", 200) + "{{" + repeat("(", 50) + "print 1" +
                           repeat(")", 50) + "}}" + repeat("{{end}}", 200);
  const std::string recursive =
      "{{define \"r\"}}{{if 1}}{{with 1}}{{range 1}}{{template \"r\" .}}{{end}}{{end}}{{end}}"
      "{{end}}{{template \"r\" .}}";
  std::string a, b;
  on_small_stack([&] {
    a = gotmpl::Template::parse(deep, "t").execute(gotmpl::Value());
    b = go_error(recursive);
  });
  EXPECT_EQ(a, "1");
  EXPECT_NE(b.find("exceeded maximum template depth"), std::string::npos) << b;
}

TEST(GotmplLimits, DeadlineAndCancellationStopARendering) {
  Limits timed;
  timed.max_steps = UINT64_MAX;
  timed.max_duration = std::chrono::milliseconds(20);
  std::string msg = go_error("{{range 1000000000}}{{range 1000000000}}{{end}}{{end}}", timed);
  EXPECT_NE(msg.find("template rendering exceeds 20 ms"), std::string::npos) << msg;

  Limits cancellable;
  int polls = 0;
  cancellable.cancelled = [&] { return ++polls == 3; };
  msg = go_error("{{range 1000000000}}{{end}}", cancellable);
  EXPECT_NE(msg.find("template rendering cancelled"), std::string::npos) << msg;
  EXPECT_EQ(polls, 3);
}

// ---- Jinja templates -------------------------------------------------------------------------

jinja::Error jinja_error(const std::string& source, const Limits& limits = {}) {
  try {
    jinja::Template::parse(source).render(jinja::Value::dict(), limits);
  } catch (const jinja::Error& e) {
    return e;
  }
  ADD_FAILURE() << "no error for: " << source;
  return jinja::Error("none", "");
}

TEST(JinjaLimits, HugeRangesAndRepetitionAreRefusedBeforeTheyAllocate) {
  const long before = peak_rss_mib();
  jinja::Error e = jinja_error("{% for i in range(10**9) %}x{% endfor %}");
  EXPECT_EQ(e.kind(), "OverflowError");
  EXPECT_TRUE(e.is_limit());
  e = jinja_error("{{ 'x' * 10**12 }}");
  EXPECT_EQ(e.kind(), "MemoryError");
  EXPECT_TRUE(e.is_limit());
  e = jinja_error("{{ 'x' * 10**7 }}", [] {
    Limits l;
    l.max_output_bytes = 1 << 20;
    return l;
  }());
  EXPECT_TRUE(e.is_limit());
  EXPECT_EQ(e.detail(), "template output exceeds 1 MiB");
  EXPECT_LT(peak_rss_mib() - before, kMaxGrowthMib);
}

TEST(JinjaLimits, NestedLoopsAreStoppedByTheStepLimit) {
  Limits limits;
  limits.max_steps = 2'000'000;
  // The step limit, not the clock, must end it, however slow the build (sanitizers) or busy the
  // machine: 2M steps took over 10 s under ASan on a loaded 2-core machine.
  limits.max_duration = std::chrono::minutes(10);
  jinja::Error e = jinja_error(
      "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", limits);
  EXPECT_TRUE(e.is_limit());
  EXPECT_EQ(e.detail(), "template exceeds 2,000,000 steps");
  Limits small;
  small.max_steps = 1000;
  e = jinja_error("{% for i in range(1000) %}{{ i }}{% endfor %}", small);
  EXPECT_EQ(e.detail(), "template exceeds 1,000 steps");
  EXPECT_EQ(jinja::Template::parse("{% for i in range(1000) %}{% endfor %}ok")
                .render(jinja::Value::dict()),
            "ok");
}

TEST(JinjaLimits, ConcatenationInALoopIsHeldToTheOutputLimit) {
  const long before = peak_rss_mib();
  const jinja::Error e = jinja_error(
      "{% set ns = namespace(s='xxxxxxxx') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
      "{% endfor %}");
  EXPECT_TRUE(e.is_limit());
  EXPECT_LT(peak_rss_mib() - before, kMaxGrowthMib);
  // Strings built and dropped again are charged as work: 100,000 strings of 30 MB would take
  // minutes of copying.
  Limits limits;
  limits.max_steps = 2'000'000;
  const jinja::Error work =
      jinja_error("{% for i in range(100000) %}{% set s = 'x' * 30000000 %}{% endfor %}", limits);
  EXPECT_EQ(work.detail(), "template exceeds 2,000,000 steps");
}

TEST(JinjaLimits, RecursionAndDeepSourcesAreRefused) {
  jinja::Error e = jinja_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
  EXPECT_EQ(e.kind(), "RecursionError");
  EXPECT_TRUE(e.is_limit());
  EXPECT_EQ(jinja_error("{{ " + repeat("(", 100000) + "1" + repeat(")", 100000) + " }}").kind(),
            "TemplateSyntaxError");
  EXPECT_EQ(jinja_error(repeat("{% if 1 %}", 100000)).kind(), "TemplateSyntaxError");
  EXPECT_EQ(jinja_error("{{ x" + repeat("|trim", 100000) + " }}").kind(), "TemplateSyntaxError");
}

TEST(JinjaLimits, NestingUpToTheLimitsFitsASmallStack) {
  // Blocks as deep as the parser takes them around an expression as tall as the evaluator takes,
  // and macro recursion to the depth limit through tall expressions.
  const std::string deep = repeat("{% if 1 %}", 80) + "{{ " + repeat("(", 4) + "1" +
                           repeat(" + 1", 150) + repeat(")", 4) + " }}" + repeat("{% endif %}", 80);
  const std::string tall = "f(n + 1)" + repeat(" + 1", 40);
  const std::string recursive = "{% macro f(n) %}{{ " + tall + " }}{% endmacro %}{{ f(0) }}";
  std::string a;
  std::string b;
  on_small_stack([&] {
    a = jinja::Template::parse(deep).render(jinja::Value::dict());
    try {
      jinja::Template::parse(recursive).render(jinja::Value::dict());
    } catch (const jinja::Error& e) {
      b = e.kind();
    }
  });
  EXPECT_EQ(a, "151");
  EXPECT_EQ(b, "RecursionError");
}

TEST(JinjaLimits, ValuesCannotNestDeeperThanTheStackAllows) {
  // A list wrapped in itself 100,000 times would overflow the stack when printed or destroyed.
  jinja::Error e = jinja_error(
      "{% set ns = namespace(x=[]) %}{% for i in range(100000) %}{% set ns.x = [ns.x] %}"
      "{% endfor %}{{ ns.x }}");
  EXPECT_EQ(e.kind(), "RecursionError");
  EXPECT_TRUE(e.is_limit());
  // A namespace holding itself would be a cycle.
  e = jinja_error("{% set ns = namespace(a=1) %}{% set ns.self = ns %}{{ ns }}");
  EXPECT_TRUE(e.is_limit()) << e.what();
  e = jinja_error("{% set ns = namespace(a=1) %}{% set ns.list = [1, {'n': ns}] %}");
  EXPECT_TRUE(e.is_limit()) << e.what();
  // Deep JSON from a request is refused before the conversion recurses.
  const auto deep =
      nlohmann::ordered_json::parse(std::string(100000, '[') + std::string(100000, ']'));
  EXPECT_THROW(jinja::Value::from_json(deep), jinja::Error);
  // Nesting as deep as real data gets is fine.
  EXPECT_EQ(jinja::Template::parse("{% set ns = namespace(x=[]) %}{% for i in range(50) %}"
                                   "{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x|length }}")
                .render(jinja::Value::dict()),
            "1");
}

TEST(JinjaLimits, DeadlineAndCancellationStopARendering) {
  Limits timed;
  timed.max_steps = UINT64_MAX;
  timed.max_duration = std::chrono::milliseconds(20);
  const std::string forever =
      "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}";
  jinja::Error e = jinja_error(forever, timed);
  EXPECT_TRUE(e.is_limit());
  EXPECT_EQ(e.detail(), "template rendering exceeds 20 ms");

  Limits cancellable;
  int polls = 0;
  cancellable.cancelled = [&] { return ++polls == 3; };
  e = jinja_error(forever, cancellable);
  EXPECT_EQ(e.detail(), "template rendering cancelled");
  EXPECT_EQ(polls, 3);
}

// ---- Both ------------------------------------------------------------------------------------

TEST(TemplateLimits, LimitErrorsAreToldApartFromTemplateErrors) {
  ChatInput input;
  input.messages = Json::array({{{"role", "user"}, {"content", "hi"}}});
  Limits small;
  small.max_output_bytes = 10;
  const PromptTemplate go{Syntax::kGo, "{{range .Messages}}{{.Content}} {{.Content}}{{end}}", ""};
  const PromptTemplate jinja{Syntax::kJinja, "{% for m in messages %}{{ m.content }}{% endfor %}",
                             ""};
  EXPECT_EQ(render_prompt(go, input), "hi hi");
  EXPECT_EQ(render_prompt(jinja, input), "hi");
  input.messages[0]["content"] = "a longer message";
  for (const PromptTemplate& t : {go, jinja}) {
    try {
      render_prompt(t, input, small);
      ADD_FAILURE() << "no error";
    } catch (const std::exception& e) {
      EXPECT_TRUE(is_limit_error(e)) << e.what();
    }
  }
  try {
    render_prompt({Syntax::kJinja, "{{ raise_exception('no') }}", ""}, input);
    ADD_FAILURE() << "no error";
  } catch (const std::exception& e) {
    EXPECT_FALSE(is_limit_error(e));
  }
  // Tool-call arguments nested beyond what the converters recurse through.
  input.messages[0]["tool_calls"] = Json::array(
      {{{"function",
         {{"name", "f"},
          {"arguments", {{"x", Json::parse(std::string(1000, '[') + std::string(1000, ']'))}}}}}}});
  for (const PromptTemplate& t : {go, jinja}) {
    try {
      render_prompt(t, input);
      ADD_FAILURE() << "no error";
    } catch (const std::exception& e) {
      EXPECT_TRUE(is_limit_error(e)) << e.what();
    }
  }
  EXPECT_EQ(format_bytes(16 << 20), "16 MiB");
  EXPECT_EQ(format_count(10'000'000), "10,000,000");
}

}  // namespace
}  // namespace corral::tmpl
