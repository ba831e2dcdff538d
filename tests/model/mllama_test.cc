// mllama (Llama 3.2 Vision) end to end: the tiny-mllama checkpoint converted by convert_hf to an
// F32 GGUF, the reference pixel_values encoded by the vision tower, and the text model's logits
// against transformers' (reference.json).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "convert/convert.h"
#include "ml/gguf/reader.h"
#include "ml/gguf/writer.h"
#include "model/harness.h"

namespace corral::model {
namespace {

namespace fs = std::filesystem;
using testing::max_abs_diff;
using testing::Runner;

// A temporary folder, removed with its contents.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& stem)
      : path(fs::temp_directory_path() / (stem + "-" + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

ml::gguf::File convert_f32(const std::string& dir, const fs::path& out) {
  convert::ConvertOptions o;
  o.type = "F32";
  o.write.n_threads = 1;
  convert::convert_hf(dir, out.string(), o);
  return ml::gguf::File::open(out.string());
}

// The fixture converted once per test program. Its config.json was written by transformers 5.17,
// which joins the *outputs* of the layers listed in intermediate_layers_indices (Meta's encoder,
// Ollama's and transformers 4.x join their *inputs*): the converter shifts the indices by one
// for such configs, so that the GGUF (in Meta's meaning) computes what transformers 5 does.
struct Fixture {
  std::string dir = corral::testing::testdata_path("reference/tiny-mllama");
  nlohmann::json reference;
  TempDir tmp{"corral-mllama"};
  ml::gguf::File file;

  Fixture()
      : reference(nlohmann::json::parse(testing::read_text(dir + "/reference.json"))),
        file(convert_f32(dir, tmp.path / "model.gguf")) {}

  // transformers' processor outputs as the model's image input.
  ImageInput image() const {
    ImageInput in;
    in.pixel_values = reference.at("pixel_values").get<std::vector<float>>();
    in.shape = reference.at("pixel_values_shape").get<std::vector<int64_t>>();
    in.aspect_ratio_id = reference.at("aspect_ratio_ids")[0][0].get<int32_t>();
    in.aspect_ratio_mask = reference.at("aspect_ratio_mask")[0][0].get<std::vector<int32_t>>();
    return in;
  }
  std::vector<int32_t> ids() const { return reference.at("input_ids").get<std::vector<int32_t>>(); }
  std::vector<float> logits() const { return reference.at("logits").get<std::vector<float>>(); }
};

const Fixture& fixture() {
  static const Fixture f;
  return f;
}

constexpr int32_t kImageToken = 400;

// A batch of `ids` at positions from `start`; tokens at or after the image token see `image`
// (the image token is at `image_at` of the whole prompt).
Batch batch_of(const std::vector<int32_t>& ids, size_t start, size_t end, size_t image_at,
               const ImageStates* image) {
  Batch b;
  for (size_t i = start; i < end; ++i) b.add(ids[i], static_cast<int32_t>(i), 0, true);
  if (image != nullptr) {
    for (size_t i = start; i < end; ++i) b.cross.push_back(i >= image_at ? image : nullptr);
  }
  return b;
}

TEST(Mllama, ConvertsAndBindsEveryTensor) {
  const Fixture& f = fixture();
  const auto m = load(f.file);
  EXPECT_TRUE(m->unused_tensors().empty()) << m->unused_tensors().front();
  EXPECT_EQ(m->config().architecture, "mllama");
  // The text vocabulary's 400 logits, and -inf for <|image|>, which is never generated.
  EXPECT_EQ(m->config().n_vocab, 401);
  ASSERT_NE(m->vision(), nullptr);
  const auto& md = f.file.metadata();
  EXPECT_EQ(md.get_array_of<int32_t>("mllama.attention.cross_attention_layers"),
            std::vector<int32_t>{1});
  // [0, 1] in transformers 5's meaning (outputs of layers 0 and 1) is [1, 2] in Meta's.
  EXPECT_EQ(md.get_array_of<int32_t>("mllama.vision.intermediate_layers_indices"),
            (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(md.get_integer("mllama.vision.max_image_tiles"), 4);
  EXPECT_EQ(md.get_array_of<float>("mllama.vision.image_mean"),
            (std::vector<float>{0.5f, 0.5f, 0.5f}));
  // The tokenizer keeps <|image|> after the text vocabulary.
  const auto tokens = md.get_array_of<std::string>("tokenizer.ggml.tokens");
  ASSERT_EQ(tokens.size(), 401u);
  EXPECT_EQ(tokens[kImageToken], "<|image|>");
}

// Ollama's names (convert/convert_mllama.go), and its vision gates stored as the factors they
// apply: 1 - tanh(gate) for the patch positions, tanh(gate) for the tile positions and the global
// layers; the text model's gates stay as they are (tanh is taken when the graph is recorded).
TEST(Mllama, WritesOllamaNamesAndGateFactors) {
  const Fixture& f = fixture();
  const auto scalar = [&](const char* name) {
    const ml::gguf::TensorInfo* t = f.file.find_tensor(name);
    EXPECT_NE(t, nullptr) << name;
    if (t == nullptr) return NAN;
    EXPECT_EQ(t->dtype, ml::DType::F32) << name;
    float v;
    std::memcpy(&v, t->data, sizeof v);
    return v;
  };
  const float pos_gate = -0.1806640625f;  // gated_positional_embedding.gate (bf16)
  EXPECT_FLOAT_EQ(scalar("v.position_embd.gate"), 1.0f - std::tanh(pos_gate));
  EXPECT_FLOAT_EQ(scalar("v.tile_position_embd.gate"), std::tanh(pos_gate));
  EXPECT_FLOAT_EQ(scalar("v.global.blk.0.attn_gate"), std::tanh(0.0294189453125f));
  EXPECT_FLOAT_EQ(scalar("v.pre_tile_position_embd.gate"), std::tanh(0.1533203125f));
  EXPECT_FLOAT_EQ(scalar("blk.1.cross_attn_attn_gate"), -0.1201171875f);
  for (const char* name :
       {"v.patch_embd.weight", "v.class_embd", "v.position_embd.weight",
        "v.tile_position_embd.weight", "v.post_tile_position_embd.weight", "v.pre_ln.bias",
        "v.blk.1.ffn_up.bias", "v.global.blk.0.ffn_gate", "mm.0.weight",
        "blk.1.cross_attn_k_norm.weight", "blk.1.cross_attn_mlp_gate", "blk.2.attn_q.weight",
        "token_embd.weight", "output.weight"}) {
    EXPECT_NE(f.file.find_tensor(name), nullptr) << name;
  }
}

class MllamaOn : public testing::OnBackend {};

// The reference prompt (<|image|> at index 1) with the reference image: every position's logits,
// including the BOS before the image (which transformers lets attend to the image without its
// cross-attention MLP).
TEST_P(MllamaOn, LogitsMatchTransformersWithTheReferenceImage) {
  const Fixture& f = fixture();
  const auto m = load(f.file);
  EXPECT_TRUE(m->unused_tensors().empty());
  Runner r(GetParam());
  const auto image = m->vision()->encode(r.executor(), f.image());
  const Placeholder p = m->vision()->placeholder(*image);
  EXPECT_EQ(p.tokens, std::vector<int32_t>{kImageToken});
  EXPECT_EQ(p.n, 1u);
  EXPECT_LE(image->bytes(), m->vision()->max_image_state_bytes());

  const std::vector<int32_t> ids = f.ids();
  const std::vector<float> want = f.logits();
  const int64_t n_vocab = m->config().n_vocab, n_text = kImageToken;
  ASSERT_EQ(ids[1], kImageToken);
  ASSERT_EQ(want.size(), ids.size() * static_cast<size_t>(n_text));
  auto cache = m->make_cache({.num_ctx = 64, .dtype = ml::DType::F32});
  const Batch b = batch_of(ids, 0, ids.size(), 1, image.get());
  const std::vector<float> got = r.logits(*m, b, cache);
  float worst = 0.0f;
  for (size_t i = 0; i < ids.size(); ++i) {
    const float d = max_abs_diff(&got[i * n_vocab], &want[i * n_text], n_text);
    EXPECT_EQ(got[i * n_vocab + kImageToken], -INFINITY);
    worst = std::max(worst, d);
    EXPECT_LE(d, 1e-4f) << "position " << i;
  }
  RecordProperty("max_abs_diff", std::to_string(worst));
  std::printf("[ %s ] max |logit - transformers| = %g\n", GetParam().c_str(), worst);
}

// A store's projector layer: the text model in one file and the vision tower (v.*, mm.* and the
// mllama.vision.* keys) in another, as Ollama keeps llama3.2-vision. The pair computes what the
// one file does.
TEST_P(MllamaOn, TheVisionTowerInAProjectorFileOfItsOwn) {
  const Fixture& f = fixture();
  const auto split = [&](bool vision) {
    ml::gguf::Writer w;
    for (const auto& [key, value] : f.file.metadata()) {
      if (key == "general.alignment") continue;
      const bool v = key.starts_with("mllama.vision.");
      if (key.starts_with("general.") || v == vision) w.metadata().set(key, value);
    }
    for (const ml::gguf::TensorInfo& t : f.file.tensors()) {
      const bool v = t.name.starts_with("v.") || t.name.starts_with("mm.");
      if (v == vision) w.add_tensor(t.name, t.dtype, t.shape(), t.bytes());
    }
    return w.to_bytes();
  };
  const std::vector<uint8_t> text_bytes = split(false), vision_bytes = split(true);
  const ml::gguf::File text = ml::gguf::File::parse(text_bytes, "text.gguf");
  const ml::gguf::File vision = ml::gguf::File::parse(vision_bytes, "projector.gguf");
  const auto two = load(text, &vision);
  const auto one = load(f.file);
  EXPECT_TRUE(two->unused_tensors().empty());
  Runner r(GetParam());
  const std::vector<int32_t> ids = f.ids();
  const auto logits = [&](const Model& m) {
    const auto image = m.vision()->encode(r.executor(), f.image());
    auto cache = m.make_cache({.num_ctx = 64, .dtype = ml::DType::F32});
    return r.logits(const_cast<Model&>(m), batch_of(ids, 0, ids.size(), 1, image.get()), cache);
  };
  EXPECT_EQ(logits(*two), logits(*one));
}

// A prefix holding the image token as one batch, then the rest one token at a time: each token's
// logits equal the full prefill's.
TEST_P(MllamaOn, CachedDecodingEqualsAFullPrefill) {
  const Fixture& f = fixture();
  const auto m = load(f.file);
  Runner r(GetParam());
  const auto image = m->vision()->encode(r.executor(), f.image());
  const std::vector<int32_t> ids = f.ids();
  const int64_t n_vocab = m->config().n_vocab;

  auto full_cache = m->make_cache({.num_ctx = 64, .dtype = ml::DType::F32});
  const std::vector<float> full =
      r.logits(*m, batch_of(ids, 0, ids.size(), 1, image.get()), full_cache);

  auto cache = m->make_cache({.num_ctx = 64, .dtype = ml::DType::F32});
  constexpr size_t kPrefix = 5;
  std::vector<float> got = r.logits(*m, batch_of(ids, 0, kPrefix, 1, image.get()), cache);
  float worst = max_abs_diff(got.data(), full.data(), got.size());
  for (size_t i = kPrefix; i < ids.size(); ++i) {
    got = r.logits(*m, batch_of(ids, i, i + 1, 1, image.get()), cache);
    worst = std::max(worst, max_abs_diff(got.data(), &full[i * n_vocab], n_vocab));
  }
  EXPECT_LE(worst, 1e-4f);
}

// A prompt without an image skips the cross-attention layers; a batch whose cross list is empty
// and one whose entries are all null give the same logits.
TEST_P(MllamaOn, TextOnlyPromptRuns) {
  const Fixture& f = fixture();
  const auto m = load(f.file);
  Runner r(GetParam());
  const std::vector<int32_t> ids = {0, 40, 73, 87, 71, 86, 77};
  auto cache = m->make_cache({.num_ctx = 32, .dtype = ml::DType::F32});
  const std::vector<float> a = r.logits(*m, batch_of(ids, 0, ids.size(), 0, nullptr), cache);
  ASSERT_EQ(a.size(), ids.size() * static_cast<size_t>(m->config().n_vocab));
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_TRUE(std::isfinite(a[i]) || i % m->config().n_vocab == kImageToken) << i;
  }
  Batch nulls = batch_of(ids, 0, ids.size(), 0, nullptr);
  nulls.cross.assign(ids.size(), nullptr);
  auto cache2 = m->make_cache({.num_ctx = 32, .dtype = ml::DType::F32});
  const std::vector<float> b = r.logits(*m, nulls, cache2);
  EXPECT_EQ(a, b);
}

// An image of two tiles ([1, 2], id 2): the encoder keeps only those tiles' keys and values.
TEST_P(MllamaOn, EncodesOnlyTheTilesInUse) {
  const Fixture& f = fixture();
  const auto m = load(f.file);
  Runner r(GetParam());
  ImageInput in = f.image();
  in.aspect_ratio_id = 2;
  in.aspect_ratio_mask = {1, 1, 0, 0};
  std::fill(in.pixel_values.begin() + in.pixel_values.size() / 2, in.pixel_values.end(), 0.0f);
  const auto two = m->vision()->encode(r.executor(), in);
  const auto four = m->vision()->encode(r.executor(), f.image());
  EXPECT_EQ(two->bytes() * 2, four->bytes());
  EXPECT_EQ(four->bytes(), m->vision()->max_image_state_bytes());

  const std::vector<int32_t> ids = f.ids();
  auto cache = m->make_cache({.num_ctx = 64, .dtype = ml::DType::F32});
  const std::vector<float> got = r.logits(*m, batch_of(ids, 0, ids.size(), 1, two.get()), cache);
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_TRUE(std::isfinite(got[i]) || i % m->config().n_vocab == kImageToken) << i;
  }
}

// A sequence with the image and one without share a batch: each gets the logits it gets alone.
TEST_P(MllamaOn, SequencesWithAndWithoutAnImageShareABatch) {
  const Fixture& f = fixture();
  const auto m = load(f.file);
  Runner r(GetParam());
  const auto image = m->vision()->encode(r.executor(), f.image());
  const std::vector<int32_t> a = f.ids();
  const std::vector<int32_t> b = {0, 40, 73, 87, 71, 86, 77};
  const int64_t n_vocab = m->config().n_vocab;

  auto cache_a = m->make_cache({.num_ctx = 64, .dtype = ml::DType::F32});
  const std::vector<float> want_a = r.logits(*m, batch_of(a, 0, a.size(), 1, image.get()), cache_a);
  auto cache_b = m->make_cache({.num_ctx = 64, .dtype = ml::DType::F32});
  const std::vector<float> want_b = r.logits(*m, batch_of(b, 0, b.size(), 0, nullptr), cache_b);

  auto cache = m->make_cache({.num_ctx = 64, .dtype = ml::DType::F32});
  Batch batch;
  for (size_t i = 0; i < b.size(); ++i) {
    batch.add(b[i], static_cast<int32_t>(i), 1, true);
    batch.cross.push_back(nullptr);
  }
  for (size_t i = 0; i < a.size(); ++i) {
    batch.add(a[i], static_cast<int32_t>(i), 0, true);
    batch.cross.push_back(i >= 1 ? image.get() : nullptr);
  }
  const std::vector<float> got = r.logits(*m, batch, cache);
  EXPECT_LE(max_abs_diff(got.data(), want_b.data(), want_b.size()), 1e-4f);
  EXPECT_LE(max_abs_diff(&got[b.size() * n_vocab], want_a.data(), want_a.size()), 1e-4f);
}

INSTANTIATE_TEST_SUITE_P(Backends, MllamaOn, ::testing::ValuesIn(testing::backend_names()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace corral::model
