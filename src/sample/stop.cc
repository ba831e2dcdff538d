#include "sample/stop.h"

#include <algorithm>

namespace corral::sample {

StopMatcher::StopMatcher(std::vector<std::string> stops) {
  for (std::string& s : stops) {
    if (!s.empty()) stops_.push_back(std::move(s));
  }
}

std::string_view StopMatcher::push(std::string_view piece) {
  out_.clear();
  if (stopped_) return {};
  const size_t old_size = pending_.size();
  pending_.append(piece);

  // pending_ held no complete stop string before this piece, so a new match ends inside the
  // piece. The stream stops where the first match ends; of the matches ending there, the
  // longest starts earliest, and cutting before it leaves no stop string in the output.
  size_t best_end = std::string::npos;
  size_t best_len = 0;
  const std::string* best = nullptr;
  for (const std::string& s : stops_) {
    const size_t from = old_size >= s.size() ? old_size - s.size() + 1 : 0;
    const size_t pos = pending_.find(s, from);
    if (pos == std::string::npos) continue;
    const size_t end = pos + s.size();
    if (end < best_end || (end == best_end && s.size() > best_len)) {
      best_end = end;
      best_len = s.size();
      best = &s;
    }
  }
  if (best != nullptr) {
    stopped_ = true;
    stop_hit_ = *best;
    out_.assign(pending_, 0, best_end - best_len);
    pending_.clear();
    return out_;
  }

  const size_t emit = pending_.size() - held_suffix();
  out_.assign(pending_, 0, emit);
  pending_.erase(0, emit);
  return out_;
}

std::string_view StopMatcher::flush() {
  out_.clear();
  if (stopped_) return {};
  out_.swap(pending_);
  return out_;
}

size_t StopMatcher::held_suffix() const {
  size_t held = 0;
  const std::string_view text = pending_;
  for (const std::string& s : stops_) {
    for (size_t len = std::min(s.size() - 1, text.size()); len > held; --len) {
      if (text.substr(text.size() - len) == std::string_view(s).substr(0, len)) {
        held = len;
        break;
      }
    }
  }
  return held;
}

}  // namespace corral::sample
