#include "template/limits.h"

#include <algorithm>

namespace corral::tmpl {

std::string format_count(uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string format_bytes(size_t n) {
  if (n >= (size_t{1} << 20) && n % (size_t{1} << 20) == 0) {
    return format_count(n >> 20) + " MiB";
  }
  if (n >= 1024 && n % 1024 == 0) return format_count(n >> 10) + " KiB";
  return format_count(n) + " bytes";
}

namespace {
// The step count at which the next check is due: the next poll, or the first step over the limit.
uint64_t next_check(uint64_t steps, uint64_t max_steps) {
  const uint64_t over = max_steps == UINT64_MAX ? max_steps : max_steps + 1;
  return std::min(steps + Limits::kPollSteps, over);
}
}  // namespace

Budget::Budget(const Limits& limits)
    : limits_(limits),
      next_check_(next_check(0, limits.max_steps)),
      deadline_(limits.max_duration.count() > 0
                    ? std::chrono::steady_clock::now() + limits.max_duration
                    : std::chrono::steady_clock::time_point::max()) {}

bool Budget::check() {
  if (!error_.empty()) return false;
  if (steps_ > limits_.max_steps) {
    error_ = "template exceeds " + format_count(limits_.max_steps) + " steps";
    return false;
  }
  if (limits_.cancelled && limits_.cancelled()) {
    error_ = "template rendering cancelled";
    return false;
  }
  if (std::chrono::steady_clock::now() > deadline_) {
    error_ = "template rendering exceeds " + format_count(limits_.max_duration.count()) + " ms";
    return false;
  }
  next_check_ = next_check(steps_, limits_.max_steps);
  return true;
}

bool Budget::refuse_size() {
  error_ = "template output exceeds " + format_bytes(limits_.max_output_bytes);
  return false;
}

}  // namespace corral::tmpl
