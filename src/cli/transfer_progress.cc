#include "cli/transfer_progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "cli/commands.h"

namespace corral::cli {
namespace {

using Clock = std::chrono::steady_clock;

std::string short_duration(double seconds) {
  const long s = static_cast<long>(seconds + 0.5);
  if (s < 60) return std::to_string(s) + "s";
  if (s < 3600) return std::to_string(s / 60) + "m" + std::to_string(s % 60) + "s";
  return std::to_string(s / 3600) + "h" + std::to_string(s % 3600 / 60) + "m";
}

}  // namespace

TransferPrinter::TransferPrinter() : tty_(isatty(STDOUT_FILENO) != 0) {}

TransferPrinter::~TransferPrinter() {
  if (tty_) redraw(true);
}

std::string TransferPrinter::bar_line(const std::string& status, uint64_t completed, uint64_t total,
                                      double rate) {
  constexpr int kWidth = 24;
  completed = std::min(completed, total);
  const int pct = total ? static_cast<int>(completed * 100 / total) : 100;
  const int filled = total ? static_cast<int>(completed * kWidth / total) : kWidth;
  std::string bar;
  for (int i = 0; i < kWidth; ++i) bar += i < filled ? "█" : " ";
  char head[64];
  std::snprintf(head, sizeof head, "%3d%%", pct);
  std::string line = status + " " + head + " ▕" + bar + "▏ " + human_decimal_bytes(completed) +
                     "/" + human_decimal_bytes(total);
  if (completed < total && rate > 0) {
    line += "  " + human_decimal_bytes(static_cast<uint64_t>(rate)) + "/s  " +
            short_duration(static_cast<double>(total - completed) / rate);
  }
  return line;
}

std::string TransferPrinter::render(const Line& l) const {
  if (l.total == 0) return l.status;
  const double seconds = std::chrono::duration<double>(Clock::now() - l.first_seen).count();
  const double rate =
      seconds > 0.5
          ? static_cast<double>(l.completed - std::min(l.completed, l.first_completed)) / seconds
          : 0;
  return bar_line(l.status, l.completed, l.total, rate);
}

void TransferPrinter::redraw(bool force) {
  const auto now = Clock::now();
  if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  std::string out;
  if (drawn_ > 0) out += "\033[" + std::to_string(drawn_) + "A";
  for (const Line& l : lines_) out += "\r" + render(l) + "\033[K\n";
  drawn_ = lines_.size();
  std::fputs(out.c_str(), stdout);
  std::fflush(stdout);
}

void TransferPrinter::operator()(const nlohmann::json& object) {
  store::registry::PullProgress p;
  p.status = object.value("status", "");
  p.digest = object.value("digest", "");
  p.total = object.value("total", uint64_t{0});
  p.completed = object.value("completed", uint64_t{0});
  if (!p.status.empty()) (*this)(p);
}

void TransferPrinter::operator()(const store::registry::PullProgress& p) {
  auto it = std::find_if(lines_.begin(), lines_.end(),
                         [&](const Line& l) { return l.status == p.status && l.total != 0; });
  const bool is_new = it == lines_.end() || p.total == 0;
  if (is_new) {
    lines_.push_back(Line{p.status, p.total, p.completed, p.completed, Clock::now(), false});
    it = lines_.end() - 1;
  } else {
    it->total = p.total;
    it->completed = p.completed;
  }
  const bool done = p.total == 0 || p.completed >= p.total;
  if (tty_) {
    redraw(is_new || done);
    return;
  }
  if (p.total == 0) {
    std::printf("%s\n", p.status.c_str());
  } else if (is_new || (done && !it->done_printed)) {
    const uint64_t completed = std::min(p.completed, p.total);
    std::printf("%s %d%% %s/%s\n", p.status.c_str(), static_cast<int>(completed * 100 / p.total),
                human_decimal_bytes(completed).c_str(), human_decimal_bytes(p.total).c_str());
  }
  if (done) it->done_printed = true;
  std::fflush(stdout);
}

}  // namespace corral::cli
