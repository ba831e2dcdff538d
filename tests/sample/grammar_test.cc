// GBNF parsing and the grammar matcher: verdicts byte by byte and token by token, mask() against
// accepts() on real vocabularies, and the JSON-object grammar.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "ml/gguf/reader.h"
#include "sample/grammar.h"
#include "testdata.h"
#include "tokenizer/tokenizer.h"

namespace corral::sample {
namespace {

// A vocabulary of the 256 single bytes plus an end token (id 256).
std::shared_ptr<const TokenPieces> byte_pieces() {
  std::vector<std::string> pieces;
  for (int b = 0; b < 256; ++b) pieces.emplace_back(1, static_cast<char>(b));
  pieces.emplace_back("</s>");
  const int32_t end = 256;
  return std::make_shared<const TokenPieces>(std::move(pieces), std::span<const int32_t>(&end, 1));
}

// Whether the grammar accepts exactly `text`, fed one byte at a time.
bool matches(const std::shared_ptr<const Grammar>& g, std::string_view text) {
  static const auto pieces = byte_pieces();
  GrammarMatcher m(g, pieces);
  for (const char c : text) {
    const auto id = static_cast<int32_t>(static_cast<unsigned char>(c));
    const bool ok = m.accepts(id);
    if (ok != m.accept(id)) ADD_FAILURE() << "accepts() and accept() disagree";
    if (!ok) return false;
  }
  return m.accepts(256);
}

// Whether the grammar accepts `text` cut into the given pieces (a vocabulary made of them).
bool matches_split(const std::shared_ptr<const Grammar>& g, const std::vector<std::string>& split) {
  std::vector<std::string> vocab = split;
  vocab.emplace_back();
  const auto end = static_cast<int32_t>(split.size());
  GrammarMatcher m(g,
                   std::make_shared<const TokenPieces>(vocab, std::span<const int32_t>(&end, 1)));
  for (size_t i = 0; i < split.size(); ++i) {
    if (!m.accept(static_cast<int32_t>(i))) return false;
  }
  return m.accepts(end);
}

std::string parse_error(std::string_view gbnf) {
  try {
    Grammar::parse(gbnf);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(GbnfParser, ParsesMultiLineRulesCommentsAndRepetitions) {
  const auto g = Grammar::parse(R"(
# a list of words
root ::= word ( ", " word )* "."   # trailing comment
word ::=
    [a-z]+
  | "<" [0-9]{2,3} ">"
  | "x" "y"?
)");
  EXPECT_TRUE(matches(g, "abc."));
  EXPECT_TRUE(matches(g, "abc, <12>, x, xy, <999>."));
  EXPECT_FALSE(matches(g, "abc"));
  EXPECT_FALSE(matches(g, "<1>."));
  EXPECT_FALSE(matches(g, "<1234>."));
  EXPECT_FALSE(matches(g, "abc,def."));
  EXPECT_FALSE(matches(g, "Abc."));
}

TEST(GbnfParser, ReadsLlamaCppJsonGrammar) {
  // llama.cpp's grammars/json.gbnf: an empty first alternative, alternatives and comments
  // spread over lines inside groups.
  const auto g = Grammar::parse(R"gbnf(
root   ::= object
value  ::= object | array | string | number | ("true" | "false" | "null") ws

object ::=
  "{" ws (
            string ":" ws value
    ("," ws string ":" ws value)*
  )? "}" ws

array  ::=
  "[" ws (
            value
    ("," ws value)*
  )? "]" ws

string ::=
  "\"" (
    [^"\\\x7F\x00-\x1F] |
    "\\" (["\\bfnrt] | "u" [0-9a-fA-F]{4}) # escapes
  )* "\"" ws

number ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) ("." [0-9]+)? ([eE] [-+]? [0-9] [1-9]{0,15})? ws

# Optional space: by convention, applied in this grammar after literal chars when allowed
ws ::= | " " | "\n" [ \t]{0,20}
)gbnf");
  EXPECT_TRUE(matches(g, R"({"a": [1, -2.5e3, "x\u00e9", true, null, {}]} )"));
  EXPECT_TRUE(matches(g, "{\n  \"k\": \"v\"\n}"));
  EXPECT_FALSE(matches(g, R"({"a": [1,]})"));
  EXPECT_FALSE(matches(g, R"(["a"])"));
}

TEST(GbnfParser, RepetitionBoundsAreExact) {
  const auto g = Grammar::parse(R"(root ::= "a"{2} "b"{1,} "c"{0,2} "d"{3,5})");
  EXPECT_TRUE(matches(g, "aabddd"));
  EXPECT_TRUE(matches(g, "aabbbccddddd"));
  EXPECT_FALSE(matches(g, "abddd"));
  EXPECT_FALSE(matches(g, "aaabddd"));
  EXPECT_FALSE(matches(g, "aaddd"));
  EXPECT_FALSE(matches(g, "aabcccddd"));
  EXPECT_FALSE(matches(g, "aabdd"));
  EXPECT_FALSE(matches(g, "aabdddddd"));
  // A repeated literal repeats as a whole.
  const auto lit = Grammar::parse(R"(root ::= "ab"{2,3})");
  EXPECT_TRUE(matches(lit, "abab"));
  EXPECT_TRUE(matches(lit, "ababab"));
  EXPECT_FALSE(matches(lit, "abb"));
  EXPECT_FALSE(matches(lit, "abababab"));
}

TEST(GbnfParser, EscapesAndUnicodeClasses) {
  const auto g = Grammar::parse(R"(root ::= "\x41\u00e9\U0001F999\n" [^a-z\]] [α-ω] . "\"\\")");
  EXPECT_TRUE(matches(g, "Aé🦙\nQλ😀\"\\"));
  EXPECT_TRUE(matches(g, "Aé🦙\n日ω.\"\\"));
  EXPECT_FALSE(matches(g, "Aé🦙\n]λ😀\"\\"));
  EXPECT_FALSE(matches(g, "Aé🦙\nqλ😀\"\\"));
  EXPECT_FALSE(matches(g, "Aé🦙\nQa😀\"\\"));
  EXPECT_FALSE(matches(g, "Ae🦙\nQλ😀\"\\"));
  // Bytes that are not UTF-8 (a stray continuation, an overlong form, a surrogate) match
  // nothing, not even `.`.
  EXPECT_FALSE(matches(g, "Aé🦙\nQλ\x80\"\\"));
  EXPECT_FALSE(matches(g, "Aé🦙\nQλ\xC0\xAE\"\\"));
  EXPECT_FALSE(matches(g, "Aé🦙\nQλ\xED\xA0\x80\"\\"));
}

TEST(GbnfParser, ErrorsNameLineAndColumn) {
  EXPECT_EQ(parse_error("root ::= \"a\"\n  foo \"b\""),
            "grammar line 2 column 3: undefined rule 'foo'");
  EXPECT_EQ(parse_error("root ::= [a-z"), "grammar line 1 column 10: unterminated character class");
  EXPECT_EQ(parse_error("root \"a\""),
            "grammar line 1 column 6: expected '::=' after rule name 'root'");
  EXPECT_EQ(parse_error("root ::= ( \"a\""), "grammar line 1 column 10: unmatched '('");
  EXPECT_EQ(parse_error("root ::= \"a\" )"), "grammar line 1 column 14: unmatched ')'");
  EXPECT_EQ(parse_error("root ::= \"a\\q\""), "grammar line 1 column 12: unknown escape '\\q'");
  EXPECT_EQ(parse_error("root ::= \"abc"), "grammar line 1 column 10: unterminated string literal");
  EXPECT_EQ(parse_error("root ::= [z-a]"),
            "grammar line 1 column 10: character range out of order");
  EXPECT_EQ(parse_error("root ::= \"a\"{3,2}"),
            "grammar line 1 column 13: repetition maximum below minimum");
  EXPECT_EQ(parse_error("root ::= \"a\"\nroot ::= \"b\""),
            "grammar line 2 column 1: rule 'root' is defined twice");
  EXPECT_EQ(parse_error("root ::= \"a\" @"), "grammar line 1 column 14: unexpected character '@'");
  EXPECT_EQ(parse_error("word ::= \"a\""), "grammar: no rule named 'root'");
  EXPECT_NE(parse_error("root ::= \"a\"{99999999999}").find("repetition count above"),
            std::string::npos);
}

TEST(GbnfParser, RejectsLeftRecursionInsteadOfLooping) {
  EXPECT_NE(parse_error("root ::= root \"a\" | \"b\"").find("left recursion"), std::string::npos);
  // Indirect, through a rule that may be empty.
  const std::string indirect =
      parse_error("root ::= opt item\nopt ::= \"o\"?\nitem ::= root \"x\" | \"y\"");
  EXPECT_NE(indirect.find("left recursion"), std::string::npos) << indirect;
  EXPECT_NE(indirect.find("'root'"), std::string::npos) << indirect;
  // A repetition of something that may match nothing.
  EXPECT_NE(parse_error("root ::= (\"a\"?)* \"b\"").find("left recursion"), std::string::npos);
  // Right recursion is fine.
  EXPECT_TRUE(matches(Grammar::parse("root ::= \"a\" root | \"b\""), "aaab"));
}

TEST(GbnfParser, HostileGrammarsFailFast) {
  const auto start = std::chrono::steady_clock::now();
  const std::string deep = "root ::= " + std::string(5000, '(') + "\"a\"" + std::string(5000, ')');
  EXPECT_NE(parse_error(deep).find("nested too deeply"), std::string::npos);
  std::string big = "root ::=";
  for (int i = 0; i < 300; ++i) big += " \"a\"{9999}";
  EXPECT_NE(parse_error(big).find("grammar too large"), std::string::npos);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST(GrammarMatcher, TokenSplitsGiveTheSameVerdictAsBytes) {
  const auto g = Grammar::parse(R"(
root ::= item ( "," " "? item )*
item ::= [0-9]+ | "\"" [^"]* "\"" | "é" "ü"? | "🦙"{1,2}
)");
  const std::vector<std::string> texts = {"12, \"héllo 日本\",é,éü, 🦙🦙",
                                          "1,2,3",
                                          "\"\"",
                                          "🦙🦙🦙",
                                          "1,,2",
                                          "é🦙",
                                          "\"a\"b",
                                          "éü",
                                          "1, \"🦙",
                                          "12,  3",
                                          "ü",
                                          "🦙"};
  std::mt19937 rng(7);
  int accepted = 0;
  for (const std::string& text : texts) {
    const bool expected = matches(g, text);
    accepted += expected;
    for (int trial = 0; trial < 30; ++trial) {
      // Cut anywhere, including inside a UTF-8 character.
      std::vector<std::string> split;
      for (size_t pos = 0; pos < text.size();) {
        const size_t n = std::uniform_int_distribution<size_t>(1, 4)(rng);
        split.push_back(text.substr(pos, n));
        pos += n;
      }
      EXPECT_EQ(matches_split(g, split), expected) << text << " trial " << trial;
    }
  }
  EXPECT_EQ(accepted, 5);
}

TEST(GrammarMatcher, TokenEndingInsideACharacterNeedsACompletion) {
  const auto g = Grammar::parse(R"(root ::= "é" | "a")");
  const std::vector<std::string> vocab = {"\xC3", "\xA9", "\xA8", "\xC4", "a", ""};
  const int32_t end = 5;
  const auto pieces = std::make_shared<const TokenPieces>(vocab, std::span<const int32_t>(&end, 1));
  GrammarMatcher m(g, pieces);
  EXPECT_TRUE(m.accepts(0));   // could become é
  EXPECT_FALSE(m.accepts(3));  // U+0100..U+013F: no completion is in the grammar
  EXPECT_FALSE(m.accepts(1));  // a continuation byte cannot start a character
  EXPECT_FALSE(m.accepts(end));
  ASSERT_TRUE(m.accept(0));
  EXPECT_FALSE(m.accepts(end));  // not complete mid-character
  EXPECT_FALSE(m.done());
  EXPECT_FALSE(m.accepts(2));  // è
  EXPECT_FALSE(m.accept(2));   // rejected, state unchanged
  EXPECT_TRUE(m.accepts(1));
  std::vector<float> logits(vocab.size(), 0.0f);
  m.mask(logits);
  EXPECT_EQ(logits,
            (std::vector<float>{-INFINITY, 0.0f, -INFINITY, -INFINITY, -INFINITY, -INFINITY}));
  ASSERT_TRUE(m.accept(1));
  EXPECT_TRUE(m.done());
  EXPECT_TRUE(m.accepts(end));
}

TEST(GrammarMatcher, EndTokensOnlyWhereCompleteAndSpecialTokensNever) {
  const auto g = Grammar::parse(R"(root ::= "a" "b"?)");
  // Token 2 is a special token (empty piece), 3 and 4 are end tokens.
  const std::vector<std::string> vocab = {"a", "b", "", "ignored", ""};
  const std::vector<int32_t> ends = {3, 4};
  GrammarMatcher m(g, std::make_shared<const TokenPieces>(vocab, ends));
  std::vector<float> logits(6, 1.0f);  // wider than the vocabulary: the extra row is blocked
  m.mask(logits);
  EXPECT_EQ(logits, (std::vector<float>{1, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY}));
  ASSERT_TRUE(m.accept(0));
  EXPECT_FALSE(m.done());  // "b" may still follow
  logits.assign(6, 1.0f);
  m.mask(logits);
  EXPECT_EQ(logits, (std::vector<float>{-INFINITY, 1, -INFINITY, 1, 1, -INFINITY}));
  ASSERT_TRUE(m.accept(1));
  EXPECT_TRUE(m.done());
  EXPECT_FALSE(m.accepts(0));
  EXPECT_TRUE(m.accept(4));
  EXPECT_FALSE(m.accepts(3));  // nothing after the end
}

TEST(GrammarMatcher, DeepNestingNeitherOverflowsNorSlowsDown) {
  // After n open levels every level's optional tail is live at once (n stacks per step), and
  // ending runs through all n tails in one step: no recursion may follow the nesting.
  const auto g = Grammar::parse(R"(
root ::= "(" root? ws
ws ::= " "?
)");
  const std::string text(500, '(');
  EXPECT_TRUE(matches(g, text));
  EXPECT_TRUE(matches(g, text + "   "));
  EXPECT_FALSE(matches(g, text + "(" + std::string(502, ' ')));
  // A long flat run keeps the arena small (frames no stack reaches are dropped).
  const auto flat = Grammar::parse(R"(root ::= [a-z]*)");
  EXPECT_TRUE(matches(flat, std::string(300000, 'q')));
}

TEST(JsonObjectGrammar, AcceptsObjectsAndRejectsEverythingElse) {
  const auto g = Grammar::json_object();
  for (const char* ok : {
           "{}",
           "{ }",
           R"({"a": 1})",
           R"({"a":[1,2.5e10,-0.5,true,false,null,{"b":"c\n\u00e9\ud83e\udd99"}],"":"é🦙"})",
           "{\n  \"a\": {\n    \"b\": []\n  },\n  \"c\": -0\n}",
           R"({"a": [ ], "b": [ 1 , 2 ]})",
       }) {
    EXPECT_TRUE(matches(g, ok)) << ok;
  }
  for (const char* bad : {
           "[]",
           "\"str\"",
           "1",
           R"({"a":})",
           R"({"a":1,})",
           "{a:1}",
           R"({"a":01})",
           R"({"a":1} )",
           R"({"a":  1})",
           R"({"a":"\ud800"})",
           "{\"a\":\"x\x01\"}",
           R"({"a":1}{})",
           R"({"a":1.})",
           R"({"a":.5})",
           R"({"a":tru})",
           R"({'a':1})",
           R"({"a":"\q"})",
           " {}",
           R"({"a":12345678901234567})",
       }) {
    EXPECT_FALSE(matches(g, bad)) << bad;
  }
}

// mask() must agree with accepts() on every token of a real vocabulary, from several states,
// including one in the middle of a UTF-8 character.
void check_mask_against_accepts(const tokenizer::Tokenizer& tok) {
  const auto pieces = std::make_shared<const TokenPieces>(tok);
  const auto g = Grammar::json_object();
  // The token of each single byte (byte-level BPE and byte-fallback vocabularies have all 256).
  std::vector<int32_t> byte_token(256, -1);
  for (size_t id = 0; id < pieces->size(); ++id) {
    const std::string& piece = (*pieces)[id];
    if (piece.size() == 1 && byte_token[static_cast<unsigned char>(piece[0])] < 0) {
      byte_token[static_cast<unsigned char>(piece[0])] = static_cast<int32_t>(id);
    }
  }
  int checked_states = 0;
  for (const std::string prefix :
       {"", "{", "{\"ke", "{\"key\": ", "{\"key\": 12", "{\"key\": \"caf\xC3", "{\"key\": [tr",
        "{\"k\": {\"x\": null}", "{\"a\": \"\\u00"}) {
    GrammarMatcher m(g, pieces);
    bool fed = true;
    for (const char c : prefix) {
      const int32_t id = byte_token[static_cast<unsigned char>(c)];
      fed = fed && id >= 0 && m.accept(id);
    }
    ASSERT_TRUE(fed) << "could not feed " << prefix;
    std::vector<float> logits(pieces->size(), 0.0f);
    m.mask(logits);
    size_t allowed = 0;
    for (size_t id = 0; id < logits.size(); ++id) {
      const bool by_mask = std::isfinite(logits[id]);
      allowed += by_mask;
      ASSERT_EQ(by_mask, m.accepts(static_cast<int32_t>(id)))
          << "prefix '" << prefix << "' token " << id << " '" << (*pieces)[id] << "'";
    }
    EXPECT_GT(allowed, 0u) << prefix;
    // And with a matcher of its own (fresh state caches) on a sample: prefix and piece byte by
    // byte through the 256-byte vocabulary.
    std::mt19937 rng(static_cast<uint32_t>(checked_states));
    for (int trial = 0; trial < 300; ++trial) {
      const auto id = std::uniform_int_distribution<size_t>(0, pieces->size() - 1)(rng);
      if ((*pieces)[id].empty()) continue;
      GrammarMatcher fresh(g, byte_pieces());
      bool ok = true;
      for (const char c : prefix + (*pieces)[id]) {
        ok = ok && fresh.accept(static_cast<int32_t>(static_cast<unsigned char>(c)));
      }
      EXPECT_EQ(ok, std::isfinite(logits[id])) << "prefix '" << prefix << "' token " << id;
    }
    ++checked_states;
  }
  EXPECT_EQ(checked_states, 9);
}

TEST(GrammarMatcher, MaskAgreesWithAcceptsOnTinyStoriesVocabulary) {
  const auto file =
      ml::gguf::File::open(testing::testdata_path("tinystories260k/stories260K-f32.gguf"));
  check_mask_against_accepts(tokenizer::Tokenizer::from_gguf(file.metadata()));
}

TEST(GrammarMatcher, MaskAgreesWithAcceptsOnQwenVocabulary) {
  const auto tok = tokenizer::Tokenizer::from_hf(testing::testdata_path("tokenizers/qwen3"));
  ASSERT_GT(tok.vocab().size(), 150000u);
  check_mask_against_accepts(tok);
}

}  // namespace
}  // namespace corral::sample
