// Expected outputs were rendered by Jinja2 3.1.6 in transformers' chat-template environment
// (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols, transformers' tojson
// and raise_exception) from the cases in this file; Errors cases are the ones Jinja2 rejects.
#include <gtest/gtest.h>

#include "template/jinja/template.h"

namespace corral::tmpl::jinja {
namespace {

struct Case {
  const char* name;
  const char* source;
  const char* context;   // JSON
  const char* expected;  // nullptr: Jinja2 raises
};

void check_cases(const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Value context = Value::from_json(nlohmann::ordered_json::parse(c.context));
    context.set(Value("raise_exception"),
                Value::function("raise_exception", [](CallArgs& a) -> Value {
                  throw Error("TemplateError", a.args.empty() ? "" : a.args[0].str());
                }));
    if (c.expected) {
      std::string got;
      EXPECT_NO_THROW(got = Template::parse(c.source).render(context)) << c.source;
      EXPECT_EQ(got, c.expected) << c.source;
    } else {
      EXPECT_THROW(Template::parse(c.source).render(context), Error) << c.source;
    }
  }
}

TEST(JinjaLexer, WhitespaceControlAndLiteralsMatchJinja2) {
  check_cases({
      {"trim_blocks_drops_newline_after_block", "{% if true %}\nA\n{% endif %}\nB", "{}", "A\nB"},
      {"lstrip_blocks_strips_indent_before_block",
       "x\n    {% if true %}\n    y\n    {% endif %}\nz", "{}", "x\n    y\nz"},
      {"lstrip_not_for_variables", "a\n    {{ 1 }}\n", "{}", "a\n    1"},
      {"minus_strips_all_whitespace",
       "a  \n\n  {%- if true -%}  \n\n  b  {{- ' c ' -}}  \n d {%- endif %}", "{}", "ab c d"},
      {"plus_disables_lstrip", "a\n    {%+ if true %}b{% endif %}", "{}", "a\n    b"},
      {"plus_disables_trim", "{% if true +%}\nb{% endif %}", "{}", "\nb"},
      {"comments_are_dropped_and_trimmed", "a\n  {# note #}\nb{#- x -#}  c", "{}", "a\nbc"},
      {"raw_block_keeps_tags", "{% raw %}{{ x }}{% if %}{% endraw %}!", "{}", "{{ x }}{% if %}!"},
      {"trailing_newline_dropped_once", "a\n\n", "{}", "a\n"},
      {"crlf_normalized", "a\015\nb{% if true %}\015\nc{% endif %}", "{}", "a\nbc"},
      {"text_before_first_tag_on_line_start", "  {% if true %}x{% endif %}", "{}", "x"},
      {"variable_minus_strips_after", "{{ 'a' -}}\n\n  b", "{}", "ab"},
      {"string_escapes", "{{ 'a\\nb\\t\\'c\\\\ \\u00e9 \\x41' }}|{{ \"q\\\"\" }}", "{}",
       "a\nb\t'c\\ \303\251 A|q\""},
      {"adjacent_strings_concatenate", "{{ 'a' 'b' \"c\" }}", "{}", "abc"},
      {"string_containing_tag_end", "{{ '%}' ~ '}}' }}", "{}", "%}}}"},
      {"dict_literal_braces_balance", "{{ {'a': {'b': 1}} }}", "{}", "{'a': {'b': 1}}"},
  });
}

TEST(JinjaStatements, RenderAsJinja2Does) {
  check_cases({
      {"if_elif_else",
       "{% for x in [1, 2, 3] %}{% if x == 1 %}one{% elif x == 2 %}two{% else %}many{% endif %},{% "
       "endfor %}",
       "{}", "one,two,many,"},
      {"for_loop_variables",
       "{% for x in 'abc' %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 "
       "}}{{ loop.first }}{{ loop.last }}{{ loop.length }};{% endfor %}",
       "{}", "1032TrueFalse3;2121FalseFalse3;3210FalseTrue3;"},
      {"for_previtem_nextitem",
       "{% for x in [1, 2, 3] %}{{ loop.previtem }}<{{ x }}>{{ loop.nextitem }}|{{ loop.previtem "
       "is defined }} {% endfor %}",
       "{}", "<1>2|False 1<2>3|True 2<3>|True "},
      {"for_cycle", "{% for x in range(5) %}{{ loop.cycle('a', 'b', 'c') }}{% endfor %}", "{}",
       "abcab"},
      {"for_else_runs_on_empty", "{% for x in [] %}x{% else %}empty{% endfor %}", "{}", "empty"},
      {"for_inline_if_filters_and_counts",
       "{% for x in range(10) if x is odd %}{{ x }}/{{ loop.length }}{{ ',' if not loop.last }}{% "
       "endfor %}",
       "{}", "1/5,3/5,5/5,7/5,9/5"},
      {"for_break_continue",
       "{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 5 %}{% break "
       "%}{% endif %}{{ x }}{% endfor %}",
       "{}", "0134"},
      {"for_unpacks_tuples",
       "{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}{% for (a, b) in "
       "[[1, 2], [3, 4]] %}{{ a + b }}{% endfor %}",
       "{}", "a=1;b=2;37"},
      {"for_over_dict_yields_keys", "{% for k in {'z': 1, 'a': 2} %}{{ k }}{% endfor %}", "{}",
       "za"},
      {"nested_loops_have_own_loop",
       "{% for a in [1, 2] %}{% for b in 'xy' %}{{ loop.index }}{{ b }}{% endfor %}{{ loop.index "
       "}};{% endfor %}",
       "{}", "1x2y1;1x2y2;"},
      {"set_in_loop_does_not_leak",
       "{% set x = 1 %}{% for i in range(3) %}{% set x = x + i %}{{ x }}{% endfor %}|{{ x }}", "{}",
       "123|1"},
      {"set_in_if_is_visible", "{% if true %}{% set x = 5 %}{% endif %}{{ x }}", "{}", "5"},
      {"namespace_attribute_assignment",
       "{% set ns = namespace(n=0, s='') %}{% for i in range(4) %}{% set ns.n = ns.n + i %}{% set "
       "ns.s = ns.s ~ i %}{% endfor %}{{ ns.n }} {{ ns.s }}",
       "{}", "6 0123"},
      {"set_tuple_unpacking", "{% set a, b = 1, 'two' %}{{ a }}{{ b }}", "{}", "1two"},
      {"block_set", "{% set x %}hello {{ 'world' }}{% endset %}[{{ x }}]", "{}", "[hello world]"},
      {"block_set_with_filter", "{% set x | upper %}abc{% endset %}{{ x }}", "{}", "ABC"},
      {"macro_with_defaults",
       "{% macro greet(name, greeting='Hello') %}{{ greeting }}, {{ name }}!{% endmacro %}{{ "
       "greet('Ann') }} {{ greet('Bob', greeting='Hi') }} {{ greet(name='Cy') }}",
       "{}", "Hello, Ann! Hi, Bob! Hello, Cy!"},
      {"macro_missing_argument_is_undefined",
       "{% macro f(a, b) %}[{{ a }}|{{ b }}|{{ b is defined }}]{% endmacro %}{{ f(1) }}", "{}",
       "[1||False]"},
      {"macro_varargs_kwargs",
       "{% macro f(a) %}{{ a }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ f(1, 2, 3, k='v') }}",
       "{}", "1(2, 3){'k': 'v'}"},
      {"macro_recursion",
       "{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1)|int }}{% endif %}{% "
       "endmacro %}{{ fact(5) }}",
       "{}", "120"},
      {"call_block_with_caller",
       "{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('b') "
       "%}bold{% endcall %}",
       "{}", "<b>bold</b>"},
      {"call_block_caller_args",
       "{% macro each(items) %}{% for i in items %}{{ caller(i) }}{% endfor %}{% endmacro %}{% "
       "call(x) each([1, 2]) %}({{ x }}){% endcall %}",
       "{}", "(1)(2)"},
      {"filter_block",
       "{% filter upper %}hello {{ 'x' }}{% endfilter %}|{% filter replace('a', 'o') | trim %}  "
       "banana  {% endfilter %}",
       "{}", "HELLO X|bonono"},
      {"generation_block_renders_content", "{% generation %}abc{% endgeneration %}", "{}", "abc"},
      {"loop_scope_reads_outer_until_set",
       "{% set x = 9 %}{% for i in range(3) %}{{ x }}{% set x = i %}{{ x }};{% endfor %}{{ x }}",
       "{}", "90;91;92;9"},
      {"set_in_iteration_does_not_carry_over",
       "{% for i in range(2) %}{% if i == 0 %}{% set y = 'a' %}{% endif %}[{{ y }}]{% endfor %}",
       "{}", "[a][]"},
      {"outer_loop_object_can_be_saved",
       "{% for a in [1] %}{% set outer = loop %}{% for b in [1, 2] %}{{ outer.index }}{{ "
       "loop.index }}{% endfor %}{% endfor %}",
       "{}", "1112"},
      {"macro_sees_outer_variables",
       "{% set g = 'G' %}{% macro m() %}{{ g }}{% endmacro %}{{ m() }}", "{}", "G"},
  });
}

TEST(JinjaExpressions, EvaluateWithPythonSemantics) {
  check_cases({
      {"arithmetic",
       "{{ 1 + 2 }} {{ 7 - 10 }} {{ 3 * 4 }} {{ 7 / 2 }} {{ 6 / 3 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ "
       "7 % 3 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 1.5 + 1 }}",
       "{}", "3 -3 12 3.5 2.0 3 -4 1 2 1024 0.5 2.5"},
      {"precedence",
       "{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ -2 ** 2 }} {{ 2 ** 3 ** 2 }} {{ 10 - 2 - 3 }} {{ (1 + "
       "2) ~ 3 }}",
       "{}", "7 9 4 64 5 33"},
      {"string_concat_and_repeat",
       "{{ 'a' + 'b' }} {{ 'ab' * 3 }} {{ 3 * 'x' }} {{ 'n' ~ 1 ~ none ~ true }} {{ [1] + [2] }} "
       "{{ [0] * 3 }}",
       "{}", "ab ababab xxx n1NoneTrue [1, 2] [0, 0, 0]"},
      {"comparisons",
       "{{ 1 < 2 }} {{ 2 <= 1 }} {{ 'a' < 'b' }} {{ 1 == 1.0 }} {{ 1 != 2 }} {{ 1 < 2 < 3 }} {{ 3 "
       "> 2 > 5 }} {{ [1, 2] < [1, 3] }} {{ true == 1 }}",
       "{}", "True False True True True True False True True"},
      {"in_and_not_in",
       "{{ 'b' in 'abc' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 'z' not in 'abc' }} {{ 3 not "
       "in [1, 2] }}",
       "{}", "True True True True True"},
      {"and_or_not_return_operands",
       "{{ 0 or 'x' }} {{ 'a' and 'b' }} {{ '' and 'b' }} {{ not 0 }} {{ not [1] }} {{ none or [] "
       "}}",
       "{}", "x b  True False []"},
      {"conditional_expression",
       "{{ 'yes' if 1 else 'no' }} {{ 'yes' if 0 else 'no' }} [{{ 'only' if false }}] {{ 1 if "
       "false else 2 if true else 3 }}",
       "{}", "yes no [] 2"},
      {"literals",
       "{{ [1, 'a', none, true, 1.5] }} {{ (1, 2) }} {{ (1,) }} {{ () }} {{ {'k': [1, {'n': "
       "none}]} }} {{ 1_000 }} {{ 1e3 }} {{ 0x1F }}",
       "{}", "[1, 'a', None, True, 1.5] (1, 2) (1,) () {'k': [1, {'n': None}]} 1000 1000.0 31"},
      {"slicing",
       "{{ 'hello'[1:3] }} {{ 'hello'[::-1] }} {{ [1, 2, 3, 4, 5][::2] }} {{ [1, 2, 3][-2:] }} {{ "
       "'abc'[:-1] }} {{ [1, 2, 3, 4][3:0:-1] }} {{ 'h\303\251llo'[1:3] }}",
       "{}", "el olleh [1, 3, 5] [2, 3] ab [4, 3, 2] \303\251l"},
      {"negative_indices", "{{ [1, 2, 3][-1] }} {{ 'abc'[-2] }} {{ messages[-1].content }}",
       "{\"messages\": [{\"role\": \"system\", \"content\": \"sys\"}, {\"role\": \"user\", "
       "\"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"yo\"}]}",
       "3 b yo"},
      {"attribute_and_item_fallback",
       "{{ messages[0].role }} {{ messages[0]['role'] }} {{ messages.0.content }} {{ {'a': {'b': "
       "'c'}}.a['b'] }}",
       "{\"messages\": [{\"role\": \"system\", \"content\": \"sys\"}, {\"role\": \"user\", "
       "\"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"yo\"}]}",
       "system system sys c"},
      {"missing_member_is_undefined",
       "[{{ messages[0].nope }}][{{ messages[0]['nope'] }}][{{ messages[9] }}][{{ none.x }}]{{ "
       "messages[0].nope is defined }}",
       "{\"messages\": [{\"role\": \"system\", \"content\": \"sys\"}, {\"role\": \"user\", "
       "\"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"yo\"}]}",
       "[][][][]False"},
      {"dict_methods_win_over_keys",
       "{{ {'items': 1}['items'] }} {{ {'a': 1}.get('a') }} {{ {'a': 1}.get('b', 'dflt') }} {{ "
       "{'a': 1}.get('b') }}",
       "{}", "1 1 dflt None"},
      {"undefined_is_empty_and_falsy",
       "[{{ nothing }}]{{ nothing is defined }}{{ nothing is undefined }}{% if not nothing %}F{% "
       "endif %}{% for x in nothing %}x{% endfor %}{{ nothing | length }}",
       "{}", "[]FalseTrueF0"},
      {"division_result_types",
       "{{ 4 / 2 }} {{ 1 / 3 }} {{ 2.5 // 1 }} {{ 7.5 % 2 }} {{ 10 ** 15 / 4 }} {{ 2 ** 62 }}",
       "{}", "2.0 0.3333333333333333 2.0 1.5 250000000000000.0 4611686018427387904"},
  });
}

TEST(JinjaPrinting, ValuesPrintAsPythonStr) {
  check_cases({
      {"python_reprs",
       "{{ true }} {{ false }} {{ none }} {{ 1.0 }} {{ 0.1 }} {{ 1e16 }} {{ 1e-5 }} {{ "
       "123456789.123 }} {{ 2.5e-7 }} {{ -0.0 }}",
       "{}", "True False None 1.0 0.1 1e+16 1e-05 123456789.123 2.5e-07 -0.0"},
      {"containers_print_as_python",
       "{{ ['a', \"it's\", 1, none, true] }} {{ {'k': 'v', 'n': [1.5]} }} {{ {'q': 'say \"hi\"'} "
       "}}",
       "{}", "['a', \"it's\", 1, None, True] {'k': 'v', 'n': [1.5]} {'q': 'say \"hi\"'}"},
      {"nested_json_values", "{{ tools }}",
       "{\"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": "
       "{\"required\": [\"a\"], \"x\": 2.0, \"y\": null, \"z\": false}}}]}",
       "[{'type': 'function', 'function': {'name': 'f', 'parameters': {'required': ['a'], 'x': "
       "2.0, 'y': None, 'z': False}}}]"},
      {"string_repr_escapes", "{{ ['a\\nb', 'tab\\t', 'back\\\\slash', \"q'uote\", 'both\\'\"'] }}",
       "{}", "['a\\nb', 'tab\\t', 'back\\\\slash', \"q'uote\", 'both\\'\"']"},
  });
}

TEST(JinjaFilters, MatchJinja2Filters) {
  check_cases({
      {"tojson_defaults",
       "{{ {'a': '\303\251', 'b': [1, 2.5, none, true], 'c': 'x\"y\\n'} | tojson }}", "{}",
       "{\"a\": \"\303\251\", \"b\": [1, 2.5, null, true], \"c\": \"x\\\"y\\n\"}"},
      {"tojson_indent_separators_sort",
       "{{ {'b': 1, 'a': [1, {'c': 2}], 'e': [], 'f': {}} | tojson(indent=2) }}|{{ {'b': 1, 'a': "
       "2} | tojson(separators=(',', ':'), sort_keys=true) }}|{{ '\303\251' | "
       "tojson(ensure_ascii=true) }}",
       "{}",
       "{\n  \"b\": 1,\n  \"a\": [\n    1,\n    {\n      \"c\": 2\n    }\n  ],\n  \"e\": [],\n  "
       "\"f\": {}\n}|{\"a\":2,\"b\":1}|\"\\u00e9\""},
      {"tojson_of_messages", "{{ messages | tojson }}",
       "{\"messages\": [{\"role\": \"system\", \"content\": \"sys\"}, {\"role\": \"user\", "
       "\"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"yo\"}]}",
       "[{\"role\": \"system\", \"content\": \"sys\"}, {\"role\": \"user\", \"content\": \"hi\"}, "
       "{\"role\": \"assistant\", \"content\": \"yo\"}]"},
      {"trim_and_length",
       "[{{ '  a b \\n' | trim }}][{{ 'xxaxx' | trim('x') }}] {{ 'h\303\251llo' | length }} {{ [1, "
       "2] | count }} {{ {'a': 1} | length }}",
       "{}", "[a b][a] 5 2 1"},
      {"join",
       "{{ [1, 'a', none] | join }} {{ ['a', 'b'] | join(', ') }} {{ messages | join('|', "
       "attribute='role') }}",
       "{\"messages\": [{\"role\": \"system\", \"content\": \"sys\"}, {\"role\": \"user\", "
       "\"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"yo\"}]}",
       "1aNone a, b system|user|assistant"},
      {"default",
       "{{ missing | default('d') }} {{ '' | default('e') }} {{ '' | default('e', true) }} {{ none "
       "| d('n') }} {{ 0 | d(5, boolean=true) }} {{ missing | default }}",
       "{}", "d  e None 5 "},
      {"first_last",
       "{{ [1, 2, 3] | first }} {{ [1, 2, 3] | last }} {{ 'abc' | first }} {{ 'abc' | last }} [{{ "
       "[] | first }}]",
       "{}", "1 3 a c []"},
      {"case_filters",
       "{{ 'hello World' | upper }} {{ 'HeLLo' | lower }} {{ 'hello big-world (x)' | title }} {{ "
       "'hELLO wORLD' | capitalize }}",
       "{}", "HELLO WORLD hello Hello Big-World (X) Hello world"},
      {"replace",
       "{{ 'aaa' | replace('a', 'b') }} {{ 'aaa' | replace('a', 'b', 2) }} {{ 'abc' | replace('', "
       "'-') }}",
       "{}", "bbb bba -a-b-c-"},
      {"string_int_float",
       "{{ 12 | string }} {{ [1] | string }} {{ '42' | int }} {{ '4.7' | int }} {{ 'x' | int }} {{ "
       "'x' | int(7) }} {{ 3.9 | int }} {{ '2.5' | float }} {{ 'x' | float }} {{ 3 | float }} {{ ' "
       "12 ' | int }} {{ true | int }}",
       "{}", "12 [1] 42 4 0 7 3 2.5 0.0 3.0 12 1"},
      {"list_items_dictsort",
       "{{ 'ab' | list }} {{ {'b': 1, 'a': 2} | list }} {{ {'b': 1, 'a': 2} | items | list }} {{ "
       "{'b': 1, 'A': 3, 'a': 2} | dictsort }} {{ {'b': 1, 'a': 2} | dictsort(by='value', "
       "reverse=true) }}",
       "{}",
       "['a', 'b'] ['b', 'a'] [('b', 1), ('a', 2)] [('A', 3), ('a', 2), ('b', 1)] [('a', 2), ('b', "
       "1)]"},
      {"selectattr_rejectattr",
       "{{ messages | selectattr('role', 'equalto', 'user') | list }} {{ messages | "
       "rejectattr('role', 'eq', 'user') | map(attribute='role') | list }} {{ [{'a': 0}, {'a': 1}] "
       "| selectattr('a') | list }}",
       "{\"messages\": [{\"role\": \"system\", \"content\": \"sys\"}, {\"role\": \"user\", "
       "\"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"yo\"}]}",
       "[{'role': 'user', 'content': 'hi'}] ['system', 'assistant'] [{'a': 1}]"},
      {"select_reject",
       "{{ range(10) | select('odd') | list }} {{ range(10) | reject('divisibleby', 3) | list }} "
       "{{ [0, 1, '', 'a', none] | select | list }}",
       "{}", "[1, 3, 5, 7, 9] [1, 2, 4, 5, 7, 8] [1, 'a']"},
      {"map",
       "{{ ['a', 'b'] | map('upper') | join }} {{ messages | map(attribute='content') | join(',') "
       "}} {{ [{'a': 1}, {}] | map(attribute='a', default=0) | list }} {{ ['1', '2'] | map('int') "
       "| sum }}",
       "{\"messages\": [{\"role\": \"system\", \"content\": \"sys\"}, {\"role\": \"user\", "
       "\"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"yo\"}]}",
       "AB sys,hi,yo [1, 0] 3"},
      {"unique",
       "{{ [1, 2, 1, 3, 2] | unique | list }} {{ ['a', 'A', 'b'] | unique | list }} {{ ['a', 'A', "
       "'b'] | unique(case_sensitive=true) | list }}",
       "{}", "[1, 2, 3] ['a', 'b'] ['a', 'A', 'b']"},
      {"abs_round",
       "{{ -3 | abs }} {{ -2.5 | abs }} {{ 2.5 | round }} {{ 3.5 | round }} {{ 2.675 | round(2) }} "
       "{{ 2.1 | round(0, 'ceil') }} {{ 2.9 | round(method='floor') }} {{ 7 | round }}",
       "{}", "3 2.5 2.0 4.0 2.67 3.0 2.0 7"},
      {"safe_indent_wordcount",
       "{{ '<b>' | safe }}|{{ 'a\\nb\\n\\nc' | indent }}|{{ 'a\\nb' | indent(2, true) }}|{{ "
       "'a\\n\\nb' | indent(width='> ', blank=true) }}|{{ 'hello big, world!' | wordcount }}",
       "{}", "<b>|a\n    b\n\n    c|  a\n  b|a\n> \n> b|3"},
      {"generators_print_after_list",
       "{{ [3, 1, 2] | sort }} {{ [3, 1, 2] | sort(reverse=true) }} {{ 'abc' | reverse }} {{ [1, "
       "2] | reverse | list }} {{ [1, 2, 3] | sum }} {{ [3, 1] | min }} {{ [3, 1] | max }}",
       "{}", "[1, 2, 3] [3, 2, 1] cba [2, 1] 6 1 3"},
      {"format_and_escape",
       "{{ '%s-%d' | format('a', 3) }} {{ '<a href=\"x\">&' | e }} {{ 'x%sy' % 'Z' }}", "{}",
       "a-3 &lt;a href=&#34;x&#34;&gt;&amp; xZy"},
  });
}

TEST(JinjaTests, MatchJinja2Tests) {
  check_cases({
      {"type_tests",
       "{{ 'a' is string }} {{ 1 is number }} {{ 1.5 is number }} {{ true is number }} {{ 1 is "
       "integer }} {{ true is integer }} {{ 1.0 is float }} {{ {} is mapping }} {{ [] is mapping "
       "}} {{ true is boolean }} {{ 0 is boolean }}",
       "{}", "True True True True True False True True False True False"},
      {"iterable_sequence",
       "{{ 'a' is iterable }} {{ [] is iterable }} {{ {} is iterable }} {{ 1 is iterable }} {{ "
       "none is iterable }} {{ 'a' is sequence }} {{ 1 is sequence }}",
       "{}", "True True True False False True False"},
      {"defined_none",
       "{{ x is defined }} {{ x is undefined }} {{ none is none }} {{ 0 is none }} {{ x is not "
       "defined }} {{ none is not none }}",
       "{}", "False True True False True False"},
      {"true_false", "{{ true is true }} {{ 1 is true }} {{ false is false }} {{ 0 is false }}",
       "{}", "True False True False"},
      {"numeric_tests",
       "{{ 3 is odd }} {{ 3 is even }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 9 is "
       "divisibleby(4) }}",
       "{}", "True False True True False"},
      {"comparison_tests",
       "{{ 1 is eq 1 }} {{ 1 is equalto 2 }} {{ 1 is ne 2 }} {{ 1 is lt 2 }} {{ 2 is gt 1 }} {{ 2 "
       "is ge 2 }} {{ 2 is le 1 }} {{ 'a' is in 'abc' }} {{ 1 is sameas 1 }} {{ none is sameas "
       "none }}",
       "{}", "True False True True True True False True True True"},
      {"test_binds_tighter_than_not", "{{ not 1 is odd }} {{ 1 is not odd and true }}", "{}",
       "False False"},
  });
}

TEST(JinjaMethods, MatchPythonStrAndDictMethods) {
  check_cases({
      {"string_methods",
       "{{ 'hello'.startswith('he') }} {{ 'hello'.endswith(('x', 'lo')) }} [{{ '  a  '.strip() "
       "}}][{{ '  a  '.lstrip() }}][{{ '  a  '.rstrip() }}] {{ 'xxaxx'.strip('x') }}",
       "{}", "True True [a][a  ][  a] a"},
      {"split",
       "{{ 'a b  c'.split() }} {{ 'a,b,,c'.split(',') }} {{ 'a,b,c'.split(',', 1) }} {{ '  x  y "
       "'.split(none, 1) }} {{ 'a,b,c'.rsplit(',', 1) }}",
       "{}", "['a', 'b', 'c'] ['a', 'b', '', 'c'] ['a', 'b,c'] ['x', 'y '] ['a,b', 'c']"},
      {"replace_case",
       "{{ 'aXa'.replace('a', 'b') }} {{ 'abc'.upper() }} {{ 'ABC'.lower() }} {{ 'hello "
       "world'.title() }} {{ 'hELLO'.capitalize() }}",
       "{}", "bXb ABC abc Hello World Hello"},
      {"format",
       "{{ '{} and {}'.format(1, 'b') }} {{ '{1}{0}'.format('a', 'b') }} {{ "
       "'{name}!'.format(name='x') }} {{ '{{}}'.format() }}",
       "{}", "1 and b ba x! {}"},
      {"dict_methods",
       "{{ {'a': 1, 'b': 2}.items() | list }} {{ {'a': 1}.keys() | list }} {{ {'a': 1}.values() | "
       "list }} {% for k, v in {'x': 1}.items() %}{{ k }}{{ v }}{% endfor %}",
       "{}", "[('a', 1), ('b', 2)] ['a'] [1] x1"},
      {"other_string_methods",
       "{{ 'a-b'.join(['1', '2']) }} {{ 'hello'.find('l') }} {{ 'hello'.count('l') }} {{ "
       "'12'.isdigit() }} {{ 'a\\nb'.splitlines() }}",
       "{}", "1a-b2 2 2 True ['a', 'b']"},
  });
}

TEST(JinjaErrors, RaiseWhereJinja2Raises) {
  check_cases({
      {"raise_exception", "a{{ raise_exception('boom') }}", "{}", nullptr},
      {"undefined_attribute_of_undefined", "{{ nothing.attr }}", "{}", nullptr},
      {"iterate_none", "{% for x in none %}{% endfor %}", "{}", nullptr},
      {"concat_str_and_dict", "{{ 'a' + {} }}", "{}", nullptr},
      {"tojson_of_generator", "{{ [1] | map('string') | tojson }}", "{}", nullptr},
      {"undefined_arithmetic", "{{ nothing + 1 }}", "{}", nullptr},
      {"unknown_filter", "{{ 1 | nosuchfilter }}", "{}", nullptr},
      {"call_undefined", "{{ nothing() }}", "{}", nullptr},
      {"unclosed_if", "{% if true %}", "{}", nullptr},
      {"unknown_tag", "{% frobnicate %}", "{}", nullptr},
      {"unclosed_variable", "{{ 1 + ", "{}", nullptr},
      {"division_by_zero", "{{ 1 / 0 }}", "{}", nullptr},
      {"mutating_method_refused", "{{ [].append(1) }}", "{}", nullptr},
      {"tilde_binds_tighter_than_plus", "{{ 1 + 2 ~ 3 }}", "{}", nullptr},
      {"macro_does_not_see_callers_loop",
       "{% macro m() %}{{ loop.index }}{% endmacro %}{% for i in 'ab' %}{{ m() }}{% endfor %}",
       "{}", nullptr},
      {"in_none", "{{ 'x' in none }}", "{}", nullptr},
      {"range_too_big", "{% for i in range(1000000) %}{% endfor %}", "{}", nullptr},
      {"assign_attribute_of_non_namespace", "{% set d = {} %}{% set d.x = 1 %}", "{}", nullptr},
  });
}

}  // namespace
}  // namespace corral::tmpl::jinja
