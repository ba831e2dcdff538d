// Replays the committed HTTP fuzz corpus (tests/fuzz/http_corpus: a few real requests for each
// route, plus inputs fuzz_http found interesting) through the server on every build, so that a
// regression on any of them shows up without clang or libFuzzer.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "fuzz/fuzz_server.h"
#include "server/server.h"
#include "store/temp_store.h"

namespace corral::server {
namespace {

TEST(HttpFuzzCorpus, EveryInputIsAnsweredOrRefused) {
  const std::filesystem::path dir =
      std::filesystem::path(CORRAL_SOURCE_DIR) / "tests/fuzz/http_corpus";
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir;
  corral::testing::TempDir store;
  Server server(fuzz_server_options(store.path() / "models"));
  size_t n_inputs = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    SCOPED_TRACE(entry.path().string());
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    ++n_inputs;
    const std::string out = server.answer(bytes);
    // The seeds are real requests: each is answered.
    if (entry.path().filename().string().starts_with("seed-")) {
      EXPECT_TRUE(out.starts_with("HTTP/1.1 ")) << out.substr(0, 200);
      EXPECT_EQ(out.find("HTTP/1.1 500"), std::string::npos) << out.substr(0, 400);
    }
  }
  EXPECT_GE(n_inputs, 20u);
}

}  // namespace
}  // namespace corral::server
