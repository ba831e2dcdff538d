// The progress of `corral pull` and `corral push` on stdout. On a terminal: one line per status,
// a counted one ("pulling 1a2b3c4d5e6f", "pushing 1a2b3c4d5e6f") drawn as a bar with bytes, rate
// and time left, all redrawn in place as they move. Elsewhere (a pipe, a log): plain lines, a
// counted status printed when it starts and when it completes.
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "store/registry/pull.h"

namespace corral::cli {

class TransferPrinter {
 public:
  TransferPrinter();
  ~TransferPrinter();
  TransferPrinter(const TransferPrinter&) = delete;
  TransferPrinter& operator=(const TransferPrinter&) = delete;

  void operator()(const store::registry::PullProgress& p);
  // A status object of /api/pull or /api/push ({"status", "digest", "total", "completed"}).
  void operator()(const nlohmann::json& object);

  // One bar: "pushing 1a2b3c4d5e6f  45% ▕██████        ▏ 533 KB/1.2 MB  2.1 MB/s  3s", for a rate
  // in bytes per second (0: not known yet).
  static std::string bar_line(const std::string& status, uint64_t completed, uint64_t total,
                              double rate);

 private:
  struct Line {
    std::string status;
    uint64_t total = 0, completed = 0;
    uint64_t first_completed = 0;  // when first seen: resumed bytes do not count in the rate
    std::chrono::steady_clock::time_point first_seen;
    bool done_printed = false;
  };
  void redraw(bool force);
  std::string render(const Line& l) const;

  bool tty_;
  std::vector<Line> lines_;
  size_t drawn_ = 0;  // lines on the terminal from the last redraw
  std::chrono::steady_clock::time_point last_draw_{};
};

}  // namespace corral::cli
