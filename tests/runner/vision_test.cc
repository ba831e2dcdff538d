// Vision models through the engine and the runner, from image.png to logits and text: the
// image is decoded and preprocessed as transformers does, encoded once (the encoder cache keeps
// it for the next turn and for other sequences showing it), and its placeholder sits where the
// prompt marks it. Checked against transformers' logits for the fixture's input_ids, and batched
// against alone.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "convert/convert.h"
#include "image/image.h"
#include "runner/engine.h"
#include "runner/runner.h"
#include "store/digest.h"
#include "store/temp_store.h"
#include "testdata.h"

namespace corral::runner {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A vision fixture converted to F32 once per test.
struct VisionFixture {
  explicit VisionFixture(const std::string& name)
      : dir(corral::testing::testdata_path("reference/" + name)),
        gguf((tmp.path() / (name + ".gguf")).string()),
        reference(nlohmann::json::parse(read_file(dir + "/reference.json"))) {
    convert::ConvertOptions co;
    co.type = "F32";
    co.write.n_threads = 1;
    convert::convert_hf(dir, gguf, co);
  }
  std::vector<int32_t> input_ids() const { return reference["input_ids"]; }

  corral::testing::TempDir tmp;
  std::string dir;
  std::string gguf;
  nlohmann::json reference;
};

PromptImage read_image(const model::Model& m, const std::string& bytes, size_t at) {
  const image::Image rgb =
      image::decode(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
  PromptImage p;
  p.at = at;
  p.input = std::make_shared<const model::ImageInput>(m.vision()->preprocess(rgb));
  p.digest = store::sha256_digest(bytes);
  return p;
}

// The reference input_ids without the image's placeholder, and the image where it was.
std::vector<int32_t> strip_placeholder(Engine& engine, const std::vector<int32_t>& ids,
                                       PromptImage& image) {
  const model::Placeholder p = engine.image_placeholder(image);
  auto it = std::search(ids.begin(), ids.end(), p.tokens.begin(), p.tokens.end());
  EXPECT_NE(it, ids.end()) << "the reference prompt holds no placeholder of this image";
  std::vector<int32_t> out(ids.begin(), it);
  image.at = out.size();
  out.insert(out.end(), it + static_cast<std::ptrdiff_t>(p.tokens.size()), ids.end());
  return out;
}

sample::Options greedy(int n) {
  sample::Options o;
  o.temperature = 0;
  o.num_predict = n;
  return o;
}

class Vision : public ::testing::TestWithParam<std::string> {};

TEST_P(Vision, LogitsFromImagePngMatchTransformersEndToEnd) {
  VisionFixture f(GetParam());
  Engine engine(f.gguf, {.n_threads = 2});
  PromptImage image = read_image(engine.model(), read_file(f.dir + "/image.png"), 0);
  const std::vector<int32_t> ids = f.input_ids();
  const std::vector<int32_t> text = strip_placeholder(engine, ids, image);
  const std::vector<float> logits = engine.logits(text, std::span(&image, 1));
  const std::vector<float> want = f.reference["logits"];
  // mllama's logits have a column more than transformers' (<|image|>, at -inf): the reference's
  // columns are compared.
  const size_t n_ref = f.reference["logits_shape"][1];
  const size_t n_vocab = static_cast<size_t>(engine.model().config().n_vocab);
  ASSERT_EQ(logits.size() / n_vocab, want.size() / n_ref);
  double max_diff = 0;
  for (size_t r = 0; r < want.size() / n_ref; ++r) {
    for (size_t c = 0; c < n_ref; ++c) {
      max_diff =
          std::max(max_diff, std::fabs(double(logits[r * n_vocab + c]) - want[r * n_ref + c]));
    }
  }
  EXPECT_LT(max_diff, 1e-3) << GetParam();
  std::cout << GetParam() << ": max |logit - transformers| from image.png " << max_diff << "\n";
  EXPECT_EQ(engine.images_encoded(), 1u);  // image_placeholder's encoding was kept
}

TEST_P(Vision, RunnerBatchesImageSequencesAsAloneAndEncodesEachImageOnce) {
  VisionFixture f(GetParam());
  Engine engine(f.gguf, {.n_threads = 2});
  const std::string png = read_file(f.dir + "/image.png");
  PromptImage image = read_image(engine.model(), png, 0);
  const std::vector<int32_t> ids = f.input_ids();
  const std::vector<int32_t> text = strip_placeholder(engine, ids, image);

  // Alone, through the engine: the continuation's tokens.
  const auto alone = [&](const std::vector<int32_t>& prompt, std::vector<PromptImage> images) {
    std::string out;
    engine.generate(
        prompt, greedy(6), [&](std::string_view s) { out += s; }, nullptr, images);
    return out;
  };
  const std::vector<int32_t> shorter(text.begin(), text.end() - 3);
  const std::string want_a = alone(text, {image});
  const std::string want_b = alone(shorter, {image});
  const std::string want_text = alone(text, {});

  Runner runner(f.gguf, {.num_ctx = 256, .num_parallel = 3, .n_threads = 2});
  const auto request = [&](const std::vector<int32_t>& prompt, bool with_image) {
    SequenceRequest r;
    r.prompt = prompt;
    r.options = greedy(6);
    if (with_image) r.images = {image};
    return runner.submit(std::move(r));
  };
  auto a = request(text, true);
  auto b = request(shorter, true);
  auto c = request(text, false);
  const auto collect = [](Sequence& s) {
    std::string out;
    Piece p;
    while (s.next(p)) out += p.text;
    return out;
  };
  EXPECT_EQ(collect(*a), want_a);
  EXPECT_EQ(collect(*b), want_b);
  EXPECT_EQ(collect(*c), want_text);
  EXPECT_EQ(runner.images_encoded(), 1u) << "one image, shown by two sequences";
  // The encoder cache is part of the model's memory (what /api/ps shows and admission counts).
  const MemoryNeeds& needs = runner.memory_needs();
  EXPECT_GT(needs.images, 0u);
  EXPECT_GE(runner.memory_bytes(), needs.weights + needs.images);

  // The conversation's next turn: the prompt starts with the first one (image included), so its
  // cells are reused and the image is not encoded again. The first turn runs again alone first:
  // when `a` finished before `b` arrived, `b` (a prefix of `a`) rightly took a's cells, and the
  // turn would find them gone.
  auto again = request(text, true);
  EXPECT_EQ(collect(*again), want_a);
  std::vector<int32_t> next = again->result().context;
  const size_t image_tokens = next.size() - text.size() - again->result().stats.eval_count;
  next.insert(next.end(), text.end() - 4, text.end());
  std::vector<int32_t> next_text = next;
  next_text.erase(next_text.begin() + static_cast<std::ptrdiff_t>(image.at),
                  next_text.begin() + static_cast<std::ptrdiff_t>(image.at + image_tokens));
  SequenceRequest r;
  r.prompt = next_text;
  r.options = greedy(2);
  r.images = {image};
  auto d = runner.submit(std::move(r));
  collect(*d);
  EXPECT_EQ(runner.images_encoded(), 1u);
  EXPECT_LT(d->result().stats.prompt_eval_count, static_cast<int>(next.size()) / 2)
      << "the cached prefix (through the image) is reused";
}

TEST_P(Vision, CachedDecodingAfterTheImageAgreesWithAFullPrefill) {
  VisionFixture f(GetParam());
  Engine engine(f.gguf, {.n_threads = 2});
  PromptImage image = read_image(engine.model(), read_file(f.dir + "/image.png"), 0);
  const std::vector<int32_t> text = strip_placeholder(engine, f.input_ids(), image);
  // Decoded with the cache (the runner: one prefill, then a token at a time)...
  Runner runner(f.gguf, {.num_ctx = 256, .num_parallel = 1, .n_threads = 2});
  SequenceRequest r;
  r.prompt = text;
  r.options = greedy(5);
  r.images = {image};
  auto s = runner.submit(std::move(r));
  const SequenceResult& result = s->result();
  const size_t prompt_tokens = result.context.size() - static_cast<size_t>(result.stats.eval_count);
  const std::vector<int32_t> cached(
      result.context.begin() + static_cast<std::ptrdiff_t>(prompt_tokens), result.context.end());
  // ...and each token again as the argmax of a full prefill of everything before it (f32 cache).
  std::vector<int32_t> full = text;
  std::vector<int32_t> prefilled;
  const size_t n_vocab = static_cast<size_t>(engine.model().config().n_vocab);
  for (size_t i = 0; i < cached.size(); ++i) {
    const std::vector<float> logits = engine.logits(full, std::span(&image, 1));
    const float* last = logits.data() + logits.size() - n_vocab;
    const auto best = static_cast<int32_t>(std::max_element(last, last + n_vocab) - last);
    prefilled.push_back(best);
    full.push_back(best);
  }
  EXPECT_EQ(cached, prefilled);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Vision, ::testing::Values("tiny-qwen2vl", "tiny-mllama"),
                         [](const auto& info) {
                           std::string n = info.param.substr(5);
                           return n;
                         });

TEST(VisionText, AModelWithoutVisionRefusesImages) {
  const std::string stories =
      corral::testing::testdata_path("tinystories260k/stories260K-f32.gguf");
  Runner runner(stories, {.num_parallel = 1, .n_threads = 1});
  SequenceRequest r;
  r.prompt = {1, 2, 3};
  r.images = {PromptImage{1, std::make_shared<const model::ImageInput>(), "x"}};
  EXPECT_THROW(runner.submit(std::move(r)), std::invalid_argument);
}

}  // namespace
}  // namespace corral::runner
