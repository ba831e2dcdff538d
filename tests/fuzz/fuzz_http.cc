// libFuzzer entry point for the HTTP layer: the input is the bytes one client sends on one
// connection. They go through the front door's head scanning and ConnStream into httplib's
// process_request on a real Server (over an empty temporary model store), so that header parsing,
// body framing and limits, routing and every route's body parsing are fuzzed. Any input must be
// answered or refused, never crash, hang or leak.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "fuzz/fuzz_server.h"
#include "server/server.h"
#include "store/temp_store.h"

namespace {

corral::server::Server& server() {
  static corral::testing::TempDir dir;
  static std::unique_ptr<corral::server::Server> s = [] {
    return std::make_unique<corral::server::Server>(
        corral::server::fuzz_server_options(dir.path() / "models"));
  }();
  return *s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string out =
      server().answer(std::string_view(reinterpret_cast<const char*>(data), size));
  volatile size_t sink = out.size();
  (void)sink;
  return 0;
}
