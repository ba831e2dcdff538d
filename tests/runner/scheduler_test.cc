// Which models stay loaded: keep_alive (durations, seconds, 0, negative), reloads for a larger
// context, LRU eviction beyond max_loaded, unload while in use, /api/ps details.
#include "runner/scheduler.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "store/temp_store.h"
#include "testdata.h"

namespace corral::runner {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::nanoseconds;
using std::chrono::seconds;

store::ModelInfo stories(const std::string& name = "stories:latest") {
  store::ModelInfo info;
  info.name = name;
  info.gguf = corral::testing::testdata_path("tinystories260k/stories260K-f32.gguf");
  return info;
}

store::ModelInfo stories_f16() {
  store::ModelInfo info;
  info.name = "stories16:latest";
  info.gguf = corral::testing::testdata_path("tinystories260k/stories260K-f16.gguf");
  return info;
}

SchedulerOptions small(Duration keep_alive = minutes(5)) {
  SchedulerOptions o;
  o.keep_alive = keep_alive;
  o.num_parallel = 2;
  o.n_threads = 1;
  o.default_num_ctx = 256;
  return o;
}

TEST(ParseKeepAlive, ReadsGoDurationsAndSeconds) {
  EXPECT_EQ(parse_keep_alive("5m"), minutes(5));
  EXPECT_EQ(parse_keep_alive("1h30m"), minutes(90));
  EXPECT_EQ(parse_keep_alive("300ms"), milliseconds(300));
  EXPECT_EQ(parse_keep_alive("1.5s"), milliseconds(1500));
  EXPECT_EQ(parse_keep_alive("-1m"), -minutes(1));
  EXPECT_EQ(parse_keep_alive("0"), nanoseconds(0));
  EXPECT_EQ(parse_keep_alive("0s"), nanoseconds(0));
  EXPECT_EQ(parse_keep_alive("2h45m10s"), hours(2) + minutes(45) + seconds(10));
  EXPECT_EQ(parse_keep_alive("10us"), std::chrono::microseconds(10));
  EXPECT_EQ(parse_keep_alive("10\xC2\xB5s"), std::chrono::microseconds(10));
  EXPECT_EQ(parse_keep_alive(3600), hours(1));
  EXPECT_EQ(parse_keep_alive(0), nanoseconds(0));
  EXPECT_EQ(parse_keep_alive(-1), -seconds(1));
  EXPECT_EQ(parse_keep_alive(1.5), milliseconds(1500));
  EXPECT_EQ(parse_keep_alive("3600"), hours(1));
  EXPECT_EQ(parse_keep_alive("-1"), -seconds(1));
  for (const char* bad : {"", "5", "m", "5x", "1h-2m", "abc", ".s", "5m3"}) {
    if (std::string(bad) == "5") continue;  // bare numbers are seconds
    EXPECT_THROW(parse_keep_alive(bad), std::invalid_argument) << bad;
  }
  EXPECT_THROW(parse_keep_alive(nlohmann::json()), std::invalid_argument);
  EXPECT_THROW(parse_keep_alive(nlohmann::json::array()), std::invalid_argument);
  EXPECT_THROW(parse_keep_alive(true), std::invalid_argument);
}

TEST(SchedulerOptionsFromEnv, ReadsTheVariablesAndNamesABadOne) {
  setenv("CORRAL_KEEP_ALIVE", "10m", 1);
  setenv("CORRAL_MAX_LOADED_MODELS", "2", 1);
  setenv("CORRAL_NUM_PARALLEL", "8", 1);
  setenv("CORRAL_MAX_QUEUE", "16", 1);
  setenv("CORRAL_CONTEXT_LENGTH", "8192", 1);
  SchedulerOptions o = scheduler_options_from_env();
  EXPECT_EQ(o.keep_alive, minutes(10));
  EXPECT_EQ(o.max_loaded, 2);
  EXPECT_EQ(o.num_parallel, 8);
  EXPECT_EQ(o.max_queue, 16u);
  EXPECT_EQ(o.default_num_ctx, 8192);
  setenv("CORRAL_NUM_PARALLEL", "many", 1);
  try {
    scheduler_options_from_env();
    ADD_FAILURE() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("CORRAL_NUM_PARALLEL"), std::string::npos);
  }
  for (const char* v : {"CORRAL_KEEP_ALIVE", "CORRAL_MAX_LOADED_MODELS", "CORRAL_NUM_PARALLEL",
                        "CORRAL_MAX_QUEUE", "CORRAL_CONTEXT_LENGTH"}) {
    unsetenv(v);
  }
  o = scheduler_options_from_env();
  EXPECT_EQ(o.keep_alive, minutes(5));
  EXPECT_EQ(o.num_parallel, 4);
}

TEST(Scheduler, LoadsOnFirstUseAndSharesTheInstance) {
  Scheduler s(small());
  EXPECT_TRUE(s.running().empty());
  sample::Options o;
  Lease a = s.acquire(stories(), o);
  Lease b = s.acquire(stories(), o);
  EXPECT_EQ(a->runner.get(), b->runner.get());
  EXPECT_EQ(a->runner->options().num_ctx, 256);
  EXPECT_EQ(a->runner->options().num_parallel, 2);
  const auto ps = s.running();
  ASSERT_EQ(ps.size(), 1u);
  EXPECT_EQ(ps[0].name, "stories:latest");
  EXPECT_EQ(ps[0].context_length, 256);
  EXPECT_TRUE(ps[0].in_use);
  EXPECT_GT(ps[0].size, 0u);
  EXPECT_EQ(ps[0].details["format"], "gguf");
  EXPECT_EQ(ps[0].details["family"], "llama");
  EXPECT_EQ(ps[0].details["parameter_size"], "292.8K");
  EXPECT_EQ(ps[0].details["quantization_level"], "F32");
  EXPECT_GT(ps[0].expires_at, std::chrono::system_clock::now() + minutes(4));
}

TEST(Scheduler, SmallerContextIsServedByTheLoadedOneALargerReloadsWhenIdle) {
  Scheduler s(small());
  sample::Options o;
  o.num_ctx = 256;
  Runner* first = nullptr;
  {
    Lease a = s.acquire(stories(), o);
    first = a->runner.get();
    o.num_ctx = 64;
    Lease b = s.acquire(stories(), o);
    EXPECT_EQ(b->runner.get(), first);
    Lease c = s.acquire(stories(), sample::Options{});
    EXPECT_EQ(c->runner.get(), first);
  }
  o.num_ctx = 512;
  Lease d = s.acquire(stories(), o);
  EXPECT_EQ(d->runner->options().num_ctx, 512);
  // Beyond the training context (512) is the training context.
  o.num_ctx = 100000;
  Lease e = s.acquire(stories(), o);
  EXPECT_EQ(e->runner.get(), d->runner.get());
  EXPECT_EQ(s.running().size(), 1u);
}

TEST(Scheduler, KeepAliveZeroUnloadsWhenTheLastRequestEnds) {
  Scheduler s(small());
  {
    Lease a = s.acquire(stories(), {}, nanoseconds(0));
    EXPECT_EQ(s.running().size(), 1u);
  }
  EXPECT_TRUE(s.running().empty());
}

TEST(Scheduler, ExpiredKeepAliveUnloadsAndNegativeKeepsForever) {
  Scheduler s(small(nanoseconds(1)));
  { Lease a = s.acquire(stories(), {}); }
  // A nanosecond has passed by the next look.
  EXPECT_TRUE(s.running().empty());
  { Lease a = s.acquire(stories(), {}, -seconds(1)); }
  const auto ps = s.running();
  ASSERT_EQ(ps.size(), 1u);
  EXPECT_FALSE(ps[0].in_use);
  EXPECT_EQ(ps[0].expires_at, std::chrono::system_clock::time_point::max());
  // A later request's keep_alive replaces the model's.
  { Lease a = s.acquire(stories(), {}, nanoseconds(0)); }
  EXPECT_TRUE(s.running().empty());
}

TEST(Scheduler, UnloadWaitsForTheRequestInFlight) {
  Scheduler s(small());
  EXPECT_FALSE(s.unload(stories().gguf.string()));
  Lease a = s.acquire(stories(), {});
  EXPECT_TRUE(s.unload(stories().gguf.string()));
  ASSERT_EQ(s.running().size(), 1u);
  // The runner still works for the lease that holds it.
  runner::SequenceRequest r;
  r.prompt = {1};
  r.options.temperature = 0;
  r.options.num_predict = 3;
  EXPECT_EQ(a->runner->submit(r)->result().stats.eval_count, 3);
  a = Lease();
  EXPECT_TRUE(s.running().empty());
}

// `corral stop` / keep_alive 0 while a request generates without end: the request is cancelled
// and the model unloads when its lease goes, instead of both living forever.
TEST(Scheduler, UnloadCancelsTheRequestsInFlightAndThenUnloads) {
  Scheduler s(small());
  Lease a = s.acquire(stories(), {});
  runner::SequenceRequest r;
  r.prompt = {1};
  r.options.temperature = 0;
  r.options.num_predict = -1;
  r.shift = true;  // would never end on its own
  auto seq = a->runner->submit(r);
  runner::Piece p;
  ASSERT_TRUE(seq->next(p));
  EXPECT_TRUE(s.unload(stories().gguf.string()));
  EXPECT_EQ(seq->result().stats.done_reason, "cancel");
  a = Lease();
  EXPECT_TRUE(s.running().empty());
}

TEST(Scheduler, ShutdownCancelsEverythingAndRefusesNewRequests) {
  Scheduler s(small());
  Lease a = s.acquire(stories(), {});
  runner::SequenceRequest r;
  r.prompt = {1};
  r.options.num_predict = -1;
  r.shift = true;
  auto seq = a->runner->submit(r);
  s.shutdown();
  EXPECT_EQ(seq->result().stats.done_reason, "cancel");
  EXPECT_THROW(s.acquire(stories(), {}), std::runtime_error);
}

TEST(Scheduler, BeyondMaxLoadedTheLeastRecentlyUsedIdleModelIsUnloaded) {
  SchedulerOptions o = small();
  o.max_loaded = 1;
  Scheduler s(o);
  { Lease a = s.acquire(stories(), {}); }
  { Lease b = s.acquire(stories_f16(), {}); }
  auto ps = s.running();
  ASSERT_EQ(ps.size(), 1u);
  EXPECT_EQ(ps[0].name, "stories16:latest");
  EXPECT_EQ(ps[0].details["quantization_level"], "F16");
}

TEST(Scheduler, LoadErrorsReachTheCallerAndLeaveNothingLoaded) {
  Scheduler s(small());
  corral::testing::TempDir tmp;
  store::ModelInfo bad;
  bad.name = "bad";
  bad.gguf = tmp.path() / "missing.gguf";
  EXPECT_THROW(s.acquire(bad, {}), std::exception);
  EXPECT_TRUE(s.running().empty());
  Lease a = s.acquire(stories(), {});
  EXPECT_EQ(s.running().size(), 1u);
}

}  // namespace
}  // namespace corral::runner
