// The bar line `corral pull` and `corral push` draw on a terminal: percentage, bytes, and rate and
// time left while bytes still move.
#include "cli/transfer_progress.h"

#include <gtest/gtest.h>

namespace corral::cli {
namespace {

TEST(TransferProgress, BarShowsBytesRateAndTimeLeft) {
  const std::string line =
      TransferPrinter::bar_line("pushing 1a2b3c4d5e6f", 500000, 1000000, 250000);
  EXPECT_TRUE(line.starts_with("pushing 1a2b3c4d5e6f  50% ▕████████████            ▏")) << line;
  EXPECT_NE(line.find("500 KB/1 MB"), std::string::npos) << line;
  EXPECT_NE(line.find("250 KB/s"), std::string::npos) << line;
  EXPECT_TRUE(line.ends_with("  2s")) << line;
}

TEST(TransferProgress, FinishedBarHasNoRate) {
  const std::string line = TransferPrinter::bar_line("pulling 1a2b3c4d5e6f", 262, 262, 1000);
  EXPECT_TRUE(line.ends_with("262 B/262 B")) << line;
  EXPECT_NE(line.find("100%"), std::string::npos) << line;
  // Without a known rate yet there is no time left either.
  EXPECT_TRUE(TransferPrinter::bar_line("x", 1, 10, 0).ends_with("/10 B"));
}

}  // namespace
}  // namespace corral::cli
