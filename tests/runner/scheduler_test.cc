// Which models stay loaded: keep_alive (durations, seconds, 0, negative), reloads for a larger
// context, LRU eviction beyond max_loaded, unload while in use, /api/ps details.
#include "runner/scheduler.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

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
  setenv("CORRAL_MAX_MEMORY", "1.5G", 1);
  SchedulerOptions o = scheduler_options_from_env();
  EXPECT_EQ(o.max_memory, uint64_t{3} << 29);
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
  setenv("CORRAL_NUM_PARALLEL", "8", 1);
  setenv("CORRAL_MAX_MEMORY", "lots", 1);
  EXPECT_THROW(scheduler_options_from_env(), std::invalid_argument);
  for (const char* v : {"CORRAL_KEEP_ALIVE", "CORRAL_MAX_LOADED_MODELS", "CORRAL_NUM_PARALLEL",
                        "CORRAL_MAX_QUEUE", "CORRAL_CONTEXT_LENGTH", "CORRAL_MAX_MEMORY"}) {
    unsetenv(v);
  }
  o = scheduler_options_from_env();
  EXPECT_EQ(o.keep_alive, minutes(5));
  EXPECT_EQ(o.num_parallel, 4);
  EXPECT_EQ(o.max_memory, 0u);
}

TEST(ParseBytes, ReadsNumbersWithBinarySuffixes) {
  EXPECT_EQ(parse_bytes("1000000"), 1000000u);
  EXPECT_EQ(parse_bytes("16G"), uint64_t{16} << 30);
  EXPECT_EQ(parse_bytes("16GB"), uint64_t{16} << 30);
  EXPECT_EQ(parse_bytes("16 GiB"), uint64_t{16} << 30);
  EXPECT_EQ(parse_bytes("512m"), uint64_t{512} << 20);
  EXPECT_EQ(parse_bytes("4k"), 4096u);
  EXPECT_EQ(parse_bytes("1.5G"), uint64_t{3} << 29);
  EXPECT_EQ(parse_bytes("2T"), uint64_t{2} << 40);
  for (const char* bad : {"", "G", "-1G", "12X", "1e9", "lots", "99999999999T"}) {
    EXPECT_FALSE(parse_bytes(bad)) << bad;
  }
  EXPECT_EQ(human_bytes(17'179'869'184), "17.2 GB");
  EXPECT_EQ(human_bytes(999), "999 B");
}

TEST(AvailableSystemMemory, ReadsMemAvailable) {
  const auto bytes = available_system_memory();
  ASSERT_TRUE(bytes);  // Linux: /proc/meminfo
  EXPECT_GT(*bytes, 0u);
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

// A request that would never end on its own: no num_predict, and the context shifts when full.
runner::SequenceRequest endless() {
  runner::SequenceRequest r;
  r.prompt = {1};
  r.options.num_predict = -1;
  r.shift = true;
  return r;
}

// `corral stop` / keep_alive 0 while a request generates without end: the request is cancelled
// and the model unloads when its lease goes, instead of both living forever.
TEST(Scheduler, UnloadCancelsTheRequestsInFlightAndThenUnloads) {
  Scheduler s(small());
  Lease a = s.acquire(stories(), {});
  auto seq = a->runner->submit(endless());
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
  auto seq = a->runner->submit(endless());
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

// What a load of stories with the small() options needs, from an unconstrained load.
MemoryNeeds stories_needs() {
  Scheduler s(small());
  sample::Options o;
  o.num_ctx = 512;
  Lease a = s.acquire(stories(), o);
  return a->runner->memory_needs();
}

// Scheduler options whose available memory is what *available says, and whose log lines go to
// *log.
SchedulerOptions with_memory(std::shared_ptr<std::atomic<uint64_t>> available,
                             std::shared_ptr<std::vector<std::string>> log) {
  SchedulerOptions o = small();
  o.min_num_ctx = 256;
  o.available_memory = [available]() -> std::optional<uint64_t> { return available->load(); };
  o.log = [log](const std::string& line) { log->push_back(line); };
  return o;
}

TEST(SchedulerMemory, AContextThatDoesNotFitIsLoweredToWhatFits) {
  const MemoryNeeds needs = stories_needs();
  EXPECT_EQ(needs.num_ctx, 512);
  EXPECT_EQ(needs.num_parallel, 2);
  EXPECT_LT(needs.bytes(256), needs.bytes(512));
  auto available = std::make_shared<std::atomic<uint64_t>>(needs.bytes(512) - 1);
  auto log = std::make_shared<std::vector<std::string>>();
  Scheduler s(with_memory(available, log));
  sample::Options o;
  o.num_ctx = 1'000'000'000;
  Lease a = s.acquire(stories(), o);
  EXPECT_EQ(a->runner->options().num_ctx, 256);
  EXPECT_EQ(a->runner->memory_bytes(), needs.bytes(256));
  auto ps = s.running();
  ASSERT_EQ(ps.size(), 1u);
  EXPECT_EQ(ps[0].context_length, 256);
  ASSERT_EQ(log->size(), 1u);
  EXPECT_NE(log->front().find("num_ctx lowered to 256"), std::string::npos) << log->front();
  EXPECT_NE(log->front().find("512-token context"), std::string::npos) << log->front();
  // The same request again is served by the lowered instance rather than reloading it.
  Lease b = s.acquire(stories(), o);
  EXPECT_EQ(b->runner.get(), a->runner.get());
  EXPECT_EQ(log->size(), 1u);
  // And it generates.
  runner::SequenceRequest r;
  r.prompt = {1};
  r.options.temperature = 0;
  r.options.num_predict = 3;
  EXPECT_EQ(b->runner->submit(r)->result().stats.eval_count, 3);
}

TEST(SchedulerMemory, AModelThatDoesNotFitEvenWithTheSmallestContextIsRefused) {
  const MemoryNeeds needs = stories_needs();
  auto available = std::make_shared<std::atomic<uint64_t>>(needs.bytes(256) - 1);
  auto log = std::make_shared<std::vector<std::string>>();
  Scheduler s(with_memory(available, log));
  sample::Options o;
  o.num_ctx = 1'000'000'000;
  try {
    s.acquire(stories(), o);
    ADD_FAILURE() << "no error";
  } catch (const InsufficientMemoryError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("stories:latest needs " + human_bytes(needs.bytes(512)) +
                        " for a 512-token context"),
              std::string::npos)
        << what;
    EXPECT_NE(what.find(human_bytes(needs.bytes(256) - 1) + " is available"), std::string::npos)
        << what;
    EXPECT_NE(what.find("256-token context needs"), std::string::npos) << what;
  }
  EXPECT_TRUE(s.running().empty());
  // Once memory is there, a normal request loads.
  available->store(needs.bytes(512));
  Lease a = s.acquire(stories(), sample::Options{});
  EXPECT_EQ(a->runner->options().num_ctx, 256);
}

TEST(SchedulerMemory, MaxMemoryUnloadsIdleModelsToMakeRoom) {
  const MemoryNeeds needs = stories_needs();
  auto available = std::make_shared<std::atomic<uint64_t>>(uint64_t{1} << 40);
  auto log = std::make_shared<std::vector<std::string>>();
  SchedulerOptions o = with_memory(available, log);
  // Room for one stories at 256 cells (the f16 file is smaller than the f32 one).
  o.max_memory = needs.bytes(256) + needs.bytes(256) / 4;
  Scheduler s(o);
  { Lease a = s.acquire(stories(), {}); }
  { Lease b = s.acquire(stories_f16(), {}); }
  auto ps = s.running();
  ASSERT_EQ(ps.size(), 1u);
  EXPECT_EQ(ps[0].name, "stories16:latest");
  ASSERT_FALSE(log->empty());
  EXPECT_NE(log->front().find("unloading stories:latest"), std::string::npos) << log->front();
  // One in use is not unloaded: the next load gets what is left, here too little.
  Lease b = s.acquire(stories_f16(), {});
  EXPECT_THROW(s.acquire(stories(), {}), InsufficientMemoryError);
  EXPECT_EQ(s.running().size(), 1u);
}

TEST(SchedulerLimits, HugeNumThreadAndNumBatchAreLoweredAndTheModelAnswers) {
  Scheduler s(small());
  sample::Options o;
  o.num_thread = 100000;
  o.num_batch = std::numeric_limits<int>::max();
  Lease a = s.acquire(stories(), o);
  EXPECT_LE(a->runner->options().n_threads,
            static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  EXPECT_EQ(a->runner->options().num_batch, kMaxNumBatch);
  runner::SequenceRequest r;
  r.prompt = {1, 403, 407, 261, 378};
  r.options = o;
  r.options.temperature = 0;
  r.options.num_predict = 8;
  EXPECT_EQ(a->runner->submit(r)->result().stats.eval_count, 8);
  // Zero and negative ones take the defaults.
  o.num_thread = -5;
  o.num_batch = -1;
  a = Lease();
  s.unload(stories().gguf.string());
  Lease b = s.acquire(stories(), o);
  EXPECT_EQ(b->runner->options().num_batch, sample::Options{}.num_batch);
  EXPECT_EQ(b->runner->options().n_threads, 1);
}

}  // namespace
}  // namespace corral::runner
