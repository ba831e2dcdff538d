// Stop strings over streamed text. Decoded pieces arrive one token at a time; a stop string may
// span several of them, so text that could still grow into a stop string is held back until the
// next piece decides it. Neither a stop string nor anything after it is ever emitted.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace corral::sample {

class StopMatcher {
 public:
  // Empty stop strings are ignored.
  explicit StopMatcher(std::vector<std::string> stops);

  // Adds a decoded piece and returns the text that can be shown now (a view valid until the
  // next call). Generation stops at the first byte where some stop string is complete; the text
  // returned then ends just before that stop string (the longest one, when several complete at
  // the same byte), and stopped() turns true. Pieces pushed after that are ignored. The result
  // does not depend on how the text was split into pieces.
  std::string_view push(std::string_view piece);

  // The held-back text, when generation ends for another reason (end of sequence, num_predict):
  // it did not become a stop string, so it belongs to the output.
  std::string_view flush();

  bool stopped() const { return stopped_; }
  // The stop string that ended generation; empty while !stopped().
  const std::string& stop_hit() const { return stop_hit_; }

 private:
  // Length of the longest suffix of pending_ that is a proper prefix of some stop string.
  size_t held_suffix() const;

  std::vector<std::string> stops_;
  std::string pending_;  // pushed text not emitted yet
  std::string out_;      // backing store of the last returned view
  bool stopped_ = false;
  std::string stop_hit_;
};

}  // namespace corral::sample
