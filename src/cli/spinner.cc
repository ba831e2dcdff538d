#include "cli/spinner.h"

#include <unistd.h>

#include <chrono>
#include <string>
#include <string_view>

namespace corral::cli {
namespace {

void write_err(std::string_view s) {
  [[maybe_unused]] const ssize_t n = ::write(STDERR_FILENO, s.data(), s.size());
}

}  // namespace

Spinner::Spinner() {
  if (isatty(STDERR_FILENO) == 0) return;
  thread_ = std::thread([this] {
    static constexpr std::string_view kFrames[] = {"⠋", "⠙", "⠹", "⠸", "⠼",
                                                   "⠴", "⠦", "⠧", "⠇", "⠏"};
    std::unique_lock lock(mu_);
    for (size_t i = 0; !stop_; ++i) {
      // The frame, then the cursor back onto it: the next frame (or the text) goes there. (The
      // cursor is not hidden: a Ctrl+C that ends the process would leave it hidden.)
      write_err(std::string(kFrames[i % std::size(kFrames)]) + "\x1b[1D");
      cv_.wait_for(lock, std::chrono::milliseconds(100), [this] { return stop_; });
    }
    write_err("\x1b[K");
  });
}

Spinner::~Spinner() { stop(); }

void Spinner::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace corral::cli
