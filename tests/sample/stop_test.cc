#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "sample/stop.h"

namespace corral::sample {
namespace {

struct Streamed {
  std::string text;  // everything shown, flush included when no stop string was hit
  bool stopped = false;
  std::string stop;
};

Streamed stream(const std::vector<std::string>& stops, const std::vector<std::string>& pieces) {
  StopMatcher m(stops);
  Streamed out;
  for (const std::string& p : pieces) out.text += m.push(p);
  out.text += m.flush();
  out.stopped = m.stopped();
  out.stop = m.stop_hit();
  return out;
}

TEST(StopMatcher, StopStringSplitAcrossPiecesNeverLeaks) {
  StopMatcher m({"</s>"});
  EXPECT_EQ(m.push("Hello <"), "Hello ");
  EXPECT_EQ(m.push("/"), "");
  EXPECT_EQ(m.push("s"), "");
  EXPECT_FALSE(m.stopped());
  EXPECT_EQ(m.push("> and more"), "");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.stop_hit(), "</s>");
  EXPECT_EQ(m.push("ignored"), "");
  EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcher, HeldTextIsReleasedWhenItStopsMatching) {
  StopMatcher m({"</s>"});
  EXPECT_EQ(m.push("a </"), "a ");
  EXPECT_EQ(m.push("x"), "</x");
  EXPECT_EQ(m.push("<"), "");
  EXPECT_EQ(m.flush(), "<");  // the stream ended: the held "<" belongs to the output
  EXPECT_FALSE(m.stopped());
}

TEST(StopMatcher, TextBeforeTheStopInTheSamePieceIsEmitted) {
  StopMatcher m({"\n\nUser:"});
  EXPECT_EQ(m.push("Sure.\n\nUser: hi"), "Sure.");
  EXPECT_TRUE(m.stopped());
}

TEST(StopMatcher, SelfOverlappingStopIsFoundAfterAFalseStart) {
  // "aab" inside "aaab": the first "aa" is a false start, the match begins one byte later.
  EXPECT_EQ(stream({"aab"}, {"a", "a", "a", "b", "c"}).text, "a");
  StopMatcher m({"aab"});
  EXPECT_EQ(m.push("a"), "");
  EXPECT_EQ(m.push("a"), "");
  EXPECT_EQ(m.push("a"), "a");  // "aaa": only the last two can still start "aab"
  EXPECT_EQ(m.push("b"), "");
  EXPECT_TRUE(m.stopped());
}

TEST(StopMatcher, OverlappingCandidatesStopAtTheFirstToComplete) {
  // "bc" completes before "abcd" would; the output is cut before "bc".
  Streamed s = stream({"abcd", "bc"}, {"xa", "b", "cd"});
  EXPECT_EQ(s.text, "xa");
  EXPECT_EQ(s.stop, "bc");
  // The same in one piece: the result does not depend on how the text was split.
  EXPECT_EQ(stream({"abcd", "bc"}, {"xabcd"}).text, "xa");
  // Two stop strings ending at the same byte: the longer one starts earlier and is cut.
  Streamed same_end = stream({"c", "abc"}, {"xab", "c"});
  EXPECT_EQ(same_end.text, "x");
  EXPECT_EQ(same_end.stop, "abc");
}

TEST(StopMatcher, StopStringThatIsAPrefixOfAnotherStopsFirst) {
  Streamed s = stream({"<|im_end|>", "<|im"}, {"ok<|", "im_end|>"});
  EXPECT_EQ(s.text, "ok");
  EXPECT_EQ(s.stop, "<|im");
  // Held back while either could still match, released when neither can.
  StopMatcher m({"<|im_end|>", "<|im"});
  EXPECT_EQ(m.push("ok<|i"), "ok");
  EXPECT_EQ(m.push("x"), "<|ix");
}

TEST(StopMatcher, WithoutStopStringsEverythingPassesThrough) {
  StopMatcher m({"", ""});
  EXPECT_EQ(m.push("abc"), "abc");
  EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcher, MultibyteStopStringSplitInsideACharacter) {
  // "。" is E3 80 82: a byte-level tokenizer can split it anywhere.
  Streamed s = stream({"。\n"}, {"終わり\xE3", "\x80", "\x82", "\n続き"});
  EXPECT_EQ(s.text, "終わり");
  EXPECT_TRUE(s.stopped);
}

// The shown text must be the text up to the first completed stop string, for every way of
// splitting it into pieces, and must never contain a stop string.
TEST(StopMatcher, RandomSplitsNeverLeakAndAgreeWithTheReference) {
  std::mt19937 rng(2024);
  auto random_string = [&](size_t min_len, size_t max_len) {
    std::string s(std::uniform_int_distribution<size_t>(min_len, max_len)(rng), 'a');
    for (char& c : s) c = "abc"[std::uniform_int_distribution<int>(0, 2)(rng)];
    return s;
  };
  for (int trial = 0; trial < 3000; ++trial) {
    std::vector<std::string> stops;
    const int n_stops = std::uniform_int_distribution<int>(1, 3)(rng);
    for (int i = 0; i < n_stops; ++i) stops.push_back(random_string(1, 4));
    const std::string text = random_string(0, 30);

    // Reference on the whole text: the first end position of any stop string; cut before the
    // longest stop string ending there.
    size_t cut = text.size();
    size_t first_end = std::string::npos;
    for (size_t end = 1; end <= text.size() && first_end == std::string::npos; ++end) {
      for (const std::string& s : stops) {
        if (s.size() <= end && text.compare(end - s.size(), s.size(), s) == 0) {
          first_end = end;
          cut = std::min(cut, end - s.size());
        }
      }
    }
    std::vector<std::string> pieces;
    for (size_t pos = 0; pos < text.size();) {
      const size_t len = std::uniform_int_distribution<size_t>(1, 5)(rng);
      pieces.push_back(text.substr(pos, len));
      pos += len;
    }
    const Streamed got = stream(stops, pieces);
    ASSERT_EQ(got.text, text.substr(0, cut)) << "text " << text << " stop " << stops[0];
    ASSERT_EQ(got.stopped, first_end != std::string::npos);
    for (const std::string& s : stops) ASSERT_EQ(got.text.find(s), std::string::npos);
  }
}

}  // namespace
}  // namespace corral::sample
