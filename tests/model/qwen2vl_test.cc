// The qwen2vl architecture against transformers' Qwen2VLForConditionalGeneration on the
// tiny-qwen2vl fixture: converted by our converter (one file), and split into llama.cpp's two
// files (text GGUF + mmproj projector). The reference's pixel_values are fed to the vision tower
// directly, so the image processor is not under test here.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "convert/convert.h"
#include "ml/gguf/reader.h"
#include "ml/gguf/writer.h"
#include "model/harness.h"

namespace corral::model {
namespace {

using testing::max_abs_diff;
using testing::Runner;
namespace fs = std::filesystem;

constexpr size_t kImageStart = 6;

convert::ConvertOptions as(const char* type) {
  convert::ConvertOptions o;
  o.type = type;
  return o;
}  // the first <|image_pad|> of the reference prompt

// The fixture converted once to an F32 GGUF (removed at exit).
struct Fixture {
  std::string dir = corral::testing::testdata_path("reference/tiny-qwen2vl");
  nlohmann::json reference;
  fs::path path;
  ml::gguf::File file;

  Fixture()
      : reference(nlohmann::json::parse(testing::read_text(dir + "/reference.json"))),
        path(fs::temp_directory_path() /
             ("corral-qwen2vl-" + std::to_string(::getpid()) + ".gguf")),
        file(convert_and_open(dir, path)) {}
  ~Fixture() {
    std::error_code ec;
    fs::remove(path, ec);
  }

  static ml::gguf::File convert_and_open(const std::string& dir, const fs::path& path) {
    convert::convert_hf(dir, path.string(), as("F32"));
    return ml::gguf::File::open(path.string());
  }

  ImageInput image() const {
    ImageInput in;
    in.pixel_values = reference.at("pixel_values").get<std::vector<float>>();
    in.shape = reference.at("pixel_values_shape").get<std::vector<int64_t>>();
    const auto thw = reference.at("image_grid_thw").get<std::vector<int64_t>>();
    in.grid_thw = {thw.at(0), thw.at(1), thw.at(2)};
    return in;
  }
  std::vector<int32_t> ids() const { return reference.at("input_ids"); }
  std::vector<float> logits() const { return reference.at("logits"); }
};

const Fixture& fixture() {
  static const Fixture f;
  return f;
}

// transformers' get_rope_index for a prompt holding one image whose rows start at `first`:
// text advances all three positions by one; the image's rows sit at (t, h, w) from the
// position after the text before them; the text after continues past the image's largest.
// [4 * n] as t..., h..., w..., zeros.
std::vector<int32_t> rope_index(size_t n, size_t first, const Placeholder& p) {
  std::vector<int32_t> out(4 * n, 0);
  int32_t next = 0;
  for (size_t i = 0; i < n;) {
    if (i == first) {
      int32_t top = 0;
      for (size_t r = 0; r < p.n; ++r) {
        for (size_t s = 0; s < 3; ++s) {
          out[s * n + i + r] = next + p.positions[s * p.n + r];
          top = std::max(top, p.positions[s * p.n + r]);
        }
      }
      next += top + 1;
      i += p.n;
      continue;
    }
    for (size_t s = 0; s < 3; ++s) out[s * n + i] = next;
    ++next;
    ++i;
  }
  return out;
}

// Tokens [from, to) of the prompt as a batch at positions from.., with their M-RoPE positions
// taken from the whole prompt's, and the image rows that fall inside.
Batch slice(const std::vector<int32_t>& ids, const std::vector<int32_t>& rope, size_t from,
            size_t to, const ImageStates* image, size_t image_n) {
  const size_t n = ids.size(), m = to - from;
  Batch b;
  for (size_t i = from; i < to; ++i) b.add(ids[i], static_cast<int32_t>(i), 0, true);
  b.rope_positions.assign(4 * m, 0);
  for (size_t s = 0; s < 3; ++s) {
    for (size_t i = 0; i < m; ++i) b.rope_positions[s * m + i] = rope[s * n + from + i];
  }
  const size_t lo = std::max(from, kImageStart), hi = std::min(to, kImageStart + image_n);
  if (lo < hi) {
    b.images.push_back({.first = static_cast<int32_t>(lo - from),
                        .n = static_cast<int32_t>(hi - lo),
                        .row = static_cast<int32_t>(lo - kImageStart),
                        .states = image});
  }
  return b;
}

// Logits of the reference prompt with the reference image, as one batch.
struct Prefill {
  std::shared_ptr<const ImageStates> image;
  Placeholder placeholder;
  std::vector<int32_t> rope;
  std::vector<float> logits;
};

Prefill prefill(Model& m, Runner& r, const Fixture& f) {
  Prefill p;
  p.image = m.vision()->encode(r.executor(), f.image());
  p.placeholder = m.vision()->placeholder(*p.image);
  const std::vector<int32_t> ids = f.ids();
  p.rope = rope_index(ids.size(), kImageStart, p.placeholder);
  auto cache = m.make_cache({.num_ctx = 64, .dtype = ml::DType::F32});
  const Batch b = slice(ids, p.rope, 0, ids.size(), p.image.get(), p.placeholder.n);
  p.logits = r.logits(m, b, cache);
  return p;
}

float max_diff(const std::vector<float>& got, const std::vector<float>& want) {
  EXPECT_EQ(got.size(), want.size());
  return max_abs_diff(got.data(), want.data(), std::min(got.size(), want.size()));
}

TEST(Qwen2vlConvert, WritesTheTextKeysAndLlamaCppsClipKeysAndNames) {
  const ml::gguf::File& file = fixture().file;
  const auto& md = file.metadata();
  EXPECT_EQ(md.get_string("general.architecture"), "qwen2vl");
  const auto& sections = md.at("qwen2vl.rope.dimension_sections").as_array().items;
  ASSERT_EQ(sections.size(), 4u);
  EXPECT_EQ(std::vector<int32_t>({sections[0].as<int32_t>(), sections[1].as<int32_t>(),
                                  sections[2].as<int32_t>(), sections[3].as<int32_t>()}),
            std::vector<int32_t>({2, 3, 3, 0}));
  EXPECT_EQ(md.get_string("clip.projector_type"), "qwen2vl_merger");
  EXPECT_EQ(md.get<uint32_t>("clip.vision.embedding_length"), 32u);
  EXPECT_EQ(md.get<uint32_t>("clip.vision.block_count"), 2u);
  EXPECT_EQ(md.get<uint32_t>("clip.vision.projection_dim"), 64u);
  EXPECT_EQ(md.get<uint32_t>("clip.vision.image_min_pixels"), 3136u);
  EXPECT_EQ(md.get<uint32_t>("clip.vision.image_max_pixels"), 12544u);
  EXPECT_FLOAT_EQ(md.at("clip.vision.image_std").as_array().items[2].as<float>(), 0.27577711f);
  for (const char* name : {"v.patch_embd.weight", "v.patch_embd.weight.1", "v.blk.1.attn_q.weight",
                           "v.blk.1.attn_k.bias", "v.blk.0.attn_out.weight", "v.blk.0.ln1.bias",
                           "v.blk.0.ffn_up.weight", "v.blk.0.ffn_down.bias", "v.post_ln.weight",
                           "mm.0.weight", "mm.2.bias", "blk.1.attn_q.bias", "token_embd.weight"}) {
    EXPECT_NE(file.find_tensor(name), nullptr) << name;
  }
  EXPECT_EQ(file.find_tensor("output.weight"), nullptr);  // tied
  EXPECT_EQ(file.find_tensor("v.patch_embd.weight")->shape(),
            (std::vector<int64_t>{14, 14, 3, 32}));
}

TEST(Qwen2vl, BindsEveryTensorAndPlacesTheImageAsTransformersDoes) {
  const auto m = load(fixture().file);
  EXPECT_TRUE(m->unused_tensors().empty());
  EXPECT_EQ(m->config().architecture, "qwen2vl");
  ASSERT_NE(m->vision(), nullptr);
  EXPECT_TRUE(m->vision()->mrope());
  Runner r("cpu");
  const auto image = m->vision()->encode(r.executor(), fixture().image());
  const Placeholder p = m->vision()->placeholder(*image);
  const std::vector<int32_t> ids = fixture().ids();
  // The reference prompt: <|vision_start|>, 12 <|image_pad|>, <|vision_end|>.
  EXPECT_EQ(p.tokens,
            std::vector<int32_t>(ids.begin() + kImageStart - 1, ids.begin() + kImageStart + 13));
  EXPECT_EQ(p.first, 1u);
  EXPECT_EQ(p.n, 12u);
  EXPECT_EQ(image->bytes(), 12u * 64u * sizeof(float));
  EXPECT_GE(m->vision()->max_image_state_bytes(), image->bytes());
}

class Qwen2vlOnBackend : public testing::OnBackend {};

TEST_P(Qwen2vlOnBackend, LogitsMatchTransformers) {
  const auto m = load(fixture().file);
  Runner r(GetParam());
  const Prefill p = prefill(*m, r, fixture());
  const std::vector<float> want = fixture().logits();
  const float d = max_diff(p.logits, want);
  EXPECT_LE(d, 1e-4f);
  std::printf("[ %s ] max |logit - transformers| = %g\n", GetParam().c_str(), d);
}

TEST_P(Qwen2vlOnBackend, CachedDecodingEqualsAFullPrefill) {
  const auto m = load(fixture().file);
  Runner r(GetParam());
  const Prefill full = prefill(*m, r, fixture());
  const std::vector<int32_t> ids = fixture().ids();
  const int64_t n_vocab = m->config().n_vocab;
  auto cache = m->make_cache({.num_ctx = 64, .dtype = ml::DType::F32});
  // A prefix that ends inside the image, then one token at a time.
  constexpr size_t kPrefix = 10;
  std::vector<float> got =
      r.logits(*m, slice(ids, full.rope, 0, kPrefix, full.image.get(), full.placeholder.n), cache);
  for (size_t i = kPrefix; i < ids.size(); ++i) {
    const std::vector<float> step =
        r.logits(*m, slice(ids, full.rope, i, i + 1, full.image.get(), full.placeholder.n), cache);
    got.insert(got.end(), step.begin(), step.end());
  }
  ASSERT_EQ(got.size(), ids.size() * static_cast<size_t>(n_vocab));
  EXPECT_LE(max_diff(got, full.logits), 1e-4f);
}

// The test above is not blind: without the image's rows, or with sequential positions in
// place of get_rope_index's, the logits move far from transformers'.
TEST(Qwen2vl, TheImageRowsAndTheirPositionsBothMatter) {
  const auto m = load(fixture().file);
  Runner r("cpu");
  const Prefill p = prefill(*m, r, fixture());
  const std::vector<int32_t> ids = fixture().ids();
  const std::vector<float> want = fixture().logits();

  Batch no_image = slice(ids, p.rope, 0, ids.size(), p.image.get(), p.placeholder.n);
  no_image.images.clear();
  auto c1 = m->make_cache({.num_ctx = 64, .dtype = ml::DType::F32});
  const float without_image = max_diff(r.logits(*m, no_image, c1), want);
  EXPECT_GT(without_image, 1e-2f);

  Batch sequential = slice(ids, p.rope, 0, ids.size(), p.image.get(), p.placeholder.n);
  sequential.rope_positions.clear();
  auto c2 = m->make_cache({.num_ctx = 64, .dtype = ml::DType::F32});
  const float sequential_positions = max_diff(r.logits(*m, sequential, c2), want);
  EXPECT_GT(sequential_positions, 1e-3f);
  std::printf("[ cpu ] without the image %g, with sequential positions %g\n", without_image,
              sequential_positions);
}

// F16 weights (the converter's default type) bind too: norms and biases stay F32.
TEST(Qwen2vl, AnF16ConversionBindsAndStaysClose) {
  const fs::path path =
      fs::temp_directory_path() / ("corral-qwen2vl-f16-" + std::to_string(::getpid()) + ".gguf");
  convert::convert_hf(fixture().dir, path.string(), as("F16"));
  {
    const ml::gguf::File file = ml::gguf::File::open(path.string());
    const auto m = load(file);
    EXPECT_TRUE(m->unused_tensors().empty());
    Runner r("cpu");
    const Prefill p = prefill(*m, r, fixture());
    // The fixture's bf16 weights lie in f16's normal range, where f16 holds them exactly.
    const float d = max_diff(p.logits, fixture().logits());
    EXPECT_LE(d, 1e-4f);
    std::printf("[ f16 ] max |logit - transformers| = %g\n", d);
  }
  fs::remove(path);
}

// An image's rows may come as several runs of one batch (text.cc joins them in order).
TEST(Qwen2vl, ImageRowsInSeveralRunsOfOneBatch) {
  const auto m = load(fixture().file);
  Runner r("cpu");
  const Prefill p = prefill(*m, r, fixture());
  const std::vector<int32_t> ids = fixture().ids();
  Batch b = slice(ids, p.rope, 0, ids.size(), p.image.get(), p.placeholder.n);
  ASSERT_EQ(b.images.size(), 1u);
  // Rows [7, 12) first in the list, then [0, 7).
  b.images = {
      {.first = static_cast<int32_t>(kImageStart) + 7, .n = 5, .row = 7, .states = p.image.get()},
      {.first = static_cast<int32_t>(kImageStart), .n = 7, .row = 0, .states = p.image.get()}};
  auto cache = m->make_cache({.num_ctx = 64, .dtype = ml::DType::F32});
  EXPECT_LE(max_diff(r.logits(*m, b, cache), p.logits), 1e-6f);
}

// llama.cpp's layout: the text model alone (general.architecture qwen2vl) and the vision tower
// in an mmproj file (general.architecture clip), made here by splitting the converted file.
struct TwoFiles {
  std::vector<uint8_t> text_bytes, proj_bytes;
  ml::gguf::File text, projector;

  explicit TwoFiles(const ml::gguf::File& whole)
      : text_bytes(split(whole, false)),
        proj_bytes(split(whole, true)),
        text(ml::gguf::File::parse(text_bytes, "text.gguf")),
        projector(ml::gguf::File::parse(proj_bytes, "mmproj.gguf")) {}

  static std::vector<uint8_t> split(const ml::gguf::File& whole, bool vision) {
    ml::gguf::Writer w;
    auto& md = w.metadata();
    for (const auto& [key, value] : whole.metadata()) {
      if (key == "general.alignment") continue;
      const bool clip = key.starts_with("clip.");
      if (key.starts_with("general.") || clip == vision) md.set(key, value);
    }
    if (vision) md.set("general.architecture", "clip");
    for (const ml::gguf::TensorInfo& t : whole.tensors()) {
      const bool v = t.name.starts_with("v.") || t.name.starts_with("mm.");
      if (v == vision) w.add_tensor(t.name, t.dtype, t.shape(), t.bytes());
    }
    return w.to_bytes();
  }
};

TEST_P(Qwen2vlOnBackend, LlamaCppTwoFileLayoutGivesTheSameLogits) {
  const TwoFiles files(fixture().file);
  EXPECT_EQ(files.text.find_tensor("v.blk.0.attn_q.weight"), nullptr);
  const auto m = load(files.text, &files.projector);
  EXPECT_TRUE(m->unused_tensors().empty());
  ASSERT_NE(m->vision(), nullptr);
  Runner r(GetParam());
  const Prefill p = prefill(*m, r, fixture());
  EXPECT_LE(max_diff(p.logits, fixture().logits()), 1e-4f);

  // Without the projector the text model loads alone.
  const auto text_only = load(files.text);
  EXPECT_EQ(text_only->vision(), nullptr);
  EXPECT_TRUE(text_only->unused_tensors().empty());
}

// A projector must be a clip file holding a Qwen2-VL merger.
TEST(Qwen2vl, RejectsAProjectorThatIsNotAQwen2vlClipFile) {
  const TwoFiles files(fixture().file);
  try {
    load(files.text, &files.text);
    FAIL() << "loaded";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("text.gguf: not a vision projector"), std::string::npos)
        << e.what();
  }
}

// The fixture's folder with config.json (or preprocessor_config.json) edited.
struct EditedFolder {
  fs::path dir = fs::temp_directory_path() / ("corral-qwen2vl-edit-" + std::to_string(::getpid()));
  EditedFolder(const std::string& file, const std::function<void(nlohmann::json&)>& edit) {
    fs::create_directories(dir);
    for (const auto& e : fs::directory_iterator(fixture().dir)) {
      fs::create_symlink(e.path(), dir / e.path().filename());
    }
    nlohmann::json j = nlohmann::json::parse(testing::read_text(fixture().dir + "/" + file));
    edit(j);
    fs::remove(dir / file);
    std::ofstream(dir / file) << j.dump();
  }
  ~EditedFolder() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::string convert_error() const {
    try {
      convert::convert_hf(dir.string(), (dir / "out.gguf").string(), as("F32"));
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "(converted)";
  }
};

TEST(Qwen2vlConvert, RefusesWhatTheModelCannotRunNamingTheFileAndKey) {
  {
    const EditedFolder f("config.json",
                         [](nlohmann::json& j) { j["vision_config"]["hidden_act"] = "gelu"; });
    const std::string e = f.convert_error();
    EXPECT_NE(e.find("config.json (vision_config): hidden_act 'gelu'"), std::string::npos) << e;
  }
  {
    const EditedFolder f("preprocessor_config.json",
                         [](nlohmann::json& j) { j["patch_size"] = 16; });
    const std::string e = f.convert_error();
    EXPECT_NE(e.find("preprocessor_config.json: patch_size 16 differs from the vision tower's 14"),
              std::string::npos)
        << e;
  }
  {
    const EditedFolder f("config.json", [](nlohmann::json& j) {
      j["text_config"]["rope_parameters"].erase("mrope_section");
    });
    const std::string e = f.convert_error();
    EXPECT_NE(e.find("no rope mrope_section"), std::string::npos) << e;
  }
}

// Context shift: keys rotated at M-RoPE positions (t, h, w) and then shifted by d equal keys
// rotated at (t + d, h + d, w + d).
TEST_P(Qwen2vlOnBackend, ShiftMovesEverySectionByTheDelta) {
  const auto m = load(fixture().file);
  Runner r(GetParam());
  const int64_t hd = m->config().head_dim_k, heads = m->config().n_head_kv, n = 5;
  std::vector<float> keys(static_cast<size_t>(hd * heads * n));
  for (size_t i = 0; i < keys.size(); ++i) keys[i] = std::sin(0.37f * static_cast<float>(i));
  std::vector<int32_t> at = {3,       7, 7,  9,  12, /*h*/ 3, 8, 9, 9, 12,
                             /*w*/ 3, 8, 10, 11, 12, 0,       0, 0, 0, 0};
  std::vector<int32_t> moved = at;
  const std::vector<int32_t> delta = {-3, 2, 5, 0, 1};
  for (size_t s = 0; s < 3; ++s) {
    for (size_t i = 0; i < n; ++i) moved[s * n + i] += delta[i];
  }
  std::vector<float> shifted, direct;
  ml::op::Rope rope;
  rope.mode = ml::op::RopeMode::kMRope;
  rope.n_dims = static_cast<int32_t>(hd);
  rope.freq_base = fixture().file.metadata().get<float>("qwen2vl.rope.freq_base");
  rope.sections = {2, 3, 3, 0};
  for (int pass = 0; pass < 2; ++pass) {
    ml::Graph g;
    ml::Tensor k = g.leaf(ml::DType::F32, {hd, heads, n}, keys.data(), "keys");
    ml::Tensor out;
    if (pass == 0) {
      k = ml::rope(k, g.leaf(ml::DType::I32, {4 * n}, at.data()), {}, rope);
      out = m->shift(k, g.leaf(ml::DType::I32, {n}, const_cast<int32_t*>(delta.data())), 0);
    } else {
      out = ml::rope(k, g.leaf(ml::DType::I32, {4 * n}, moved.data()), {}, rope);
    }
    r.executor().compute(g, {out});
    const auto* p = static_cast<const float*>(out.data());
    (pass == 0 ? shifted : direct).assign(p, p + out.nelements());
  }
  EXPECT_LE(max_diff(shifted, direct), 1e-4f);
}

// A text-only batch (no rope_positions) rotates as M-RoPE with t = h = w = position.
TEST_P(Qwen2vlOnBackend, TextWithoutRopePositionsIsSequentialMRope) {
  const auto m = load(fixture().file);
  Runner r(GetParam());
  const std::vector<int32_t> ids = {1, 87, 85, 272, 201, 57, 74, 67};
  Batch plain, explicit_pos;
  for (size_t i = 0; i < ids.size(); ++i) {
    plain.add(ids[i], static_cast<int32_t>(i), 0, true);
    explicit_pos.add(ids[i], static_cast<int32_t>(i), 0, true);
  }
  explicit_pos.rope_positions.assign(4 * ids.size(), 0);
  for (size_t s = 0; s < 3; ++s) {
    for (size_t i = 0; i < ids.size(); ++i) {
      explicit_pos.rope_positions[s * ids.size() + i] = static_cast<int32_t>(i);
    }
  }
  auto c1 = m->make_cache({.num_ctx = 16, .dtype = ml::DType::F32});
  auto c2 = m->make_cache({.num_ctx = 16, .dtype = ml::DType::F32});
  const std::vector<float> a = r.logits(*m, plain, c1);
  const std::vector<float> b = r.logits(*m, explicit_pos, c2);
  EXPECT_LE(max_diff(a, b), 1e-6f);
}

INSTANTIATE_TEST_SUITE_P(Qwen2vl, Qwen2vlOnBackend, ::testing::ValuesIn(testing::backend_names()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace corral::model
