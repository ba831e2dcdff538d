// What one template rendering may cost, for both engines (Go text/template and Jinja). Templates
// and the data they render come from clients (a Modelfile TEMPLATE, /api/generate's "template",
// /api/create, the messages of a chat), so a rendering is bounded in output, work, time and
// nesting, and can be stopped from outside when its client leaves. A rendering that exceeds a
// limit fails with the engine's error type; tmpl::is_limit_error (prompt.h) tells those errors
// apart from a template's own failures.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace corral::tmpl {

struct Limits {
  // Bytes of output, and of any one string a rendering builds on the way (so '*', printf widths
  // and concatenation in a loop fail at this size instead of exhausting memory). The default is
  // twice the server's default request-body limit: any prompt a request can carry fits.
  size_t max_output_bytes = size_t{64} << 20;
  // Units of work: every statement, expression node, function call and loop iteration is one (a
  // Jinja loop iteration, which builds a scope and a loop object, four), and every kBytesPerStep
  // bytes of a string built is one more. Chat templates spend 8 to 16 per message (Ollama's Go
  // templates) or about 50 (Qwen3's and Gemma 3's Jinja), so 20 million leaves room for some
  // 400,000 messages while stopping {{range 1000000000}} in a fifth of a second.
  uint64_t max_steps = 20'000'000;
  // Wall-clock time of one rendering; zero for none. A 100,000-message chat renders in well
  // under a second.
  std::chrono::milliseconds max_duration{10'000};
  // Run-time nesting: template and macro calls, blocks and expressions being evaluated together
  // (the parsers take source nested up to 256 levels). Each level is a few C++ frames, so 256
  // stays far from the bottom of even a 512 KiB thread stack (tests/template/limits_test.cc); the
  // server does not make it configurable for that reason.
  int max_depth = 256;
  // Polled every kPollSteps steps (with the clock); returning true stops the rendering, for a
  // request whose client has gone away.
  std::function<bool()> cancelled;

  // A step is a few hundred nanoseconds of work; building a large string costs about that per
  // 64 bytes (allocation, first touch of its pages, a copy or two).
  static constexpr size_t kBytesPerStep = 64;
  static constexpr uint64_t kPollSteps = 4096;
};

// "16 MiB", "1,000,000": the figures limit errors quote.
std::string format_bytes(size_t n);
std::string format_count(uint64_t n);

// The running account of one rendering against its Limits. Engines call step() for each unit of
// work and bytes() for each string they build or output; when either returns false, error()
// says which limit was exceeded, and the engine throws its error with that message.
class Budget {
 public:
  explicit Budget(const Limits& limits);

  bool step(uint64_t n = 1) {
    steps_ += n;
    return steps_ < next_check_ || check();
  }
  // A string of n bytes is being built: charged as steps, and refused above max_output_bytes.
  bool bytes(size_t n) {
    if (n > limits_.max_output_bytes) return refuse_size();
    return n < Limits::kBytesPerStep || step(n / Limits::kBytesPerStep);
  }
  // Whether output that would grow to `total` bytes is allowed.
  bool output(size_t total) { return total <= limits_.max_output_bytes || refuse_size(); }

  const Limits& limits() const { return limits_; }
  uint64_t steps() const { return steps_; }
  const std::string& error() const { return error_; }

 private:
  bool check();
  bool refuse_size();

  const Limits limits_;
  uint64_t steps_ = 0;
  uint64_t next_check_;
  std::chrono::steady_clock::time_point deadline_;
  std::string error_;
};

}  // namespace corral::tmpl
