// The compiled form of a Grammar, shared by the GBNF parser (grammar.cc) and the matcher
// (grammar_matcher.cc).
//
// Every rule is a list of alternatives; every alternative is a run of elements in one flat array
// ended by a kEnd element, so a position inside a rule is a single index. Repetitions and groups
// were already turned into helper rules by the parser, so the matcher only sees character
// classes and rule references.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "sample/grammar.h"

namespace corral::sample {

// A set of Unicode code points: sorted, disjoint, non-adjacent inclusive ranges, plus a bitmap
// for ASCII (most of what a model writes in JSON).
struct CharClass {
  std::vector<std::pair<uint32_t, uint32_t>> ranges;
  uint64_t ascii[2] = {0, 0};

  bool matches(uint32_t c) const {
    if (c < 128) return (ascii[c >> 6] >> (c & 63)) & 1;
    size_t lo = 0, hi = ranges.size();
    while (lo < hi) {
      const size_t mid = (lo + hi) / 2;
      if (ranges[mid].second < c) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return lo < ranges.size() && ranges[lo].first <= c;
  }
  // Whether some code point in [lo, hi] is in the class (a UTF-8 character cut by a token end).
  bool intersects(uint32_t lo, uint32_t hi) const {
    for (const auto& r : ranges) {
      if (r.first > hi) return false;
      if (r.second >= lo) return true;
    }
    return false;
  }
};

struct Grammar::Impl {
  enum class Kind : uint8_t { kEnd, kChars, kRef };
  struct Element {
    Kind kind;
    int32_t value;  // kChars: index into classes; kRef: rule index
  };

  std::vector<Element> elements;
  std::vector<std::vector<int32_t>> alternatives;  // per rule: positions where each starts
  std::vector<std::string> rule_names;
  std::vector<CharClass> classes;
  int32_t root = 0;
};

}  // namespace corral::sample
