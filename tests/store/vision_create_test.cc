// A vision model in the two files of the llama.cpp ecosystem (a text GGUF and an mmproj
// projector GGUF) made into a model by `corral create`: with two FROM lines in either order, or a
// FROM folder holding both; stored as Ollama stores it (a model layer and a projector layer); and
// run with images it gives the logits of the one-file conversion. Mismatched files are refused at
// create time, naming them.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "convert/convert.h"
#include "image/image.h"
#include "ml/gguf/reader.h"
#include "ml/gguf/writer.h"
#include "runner/engine.h"
#include "store/create.h"
#include "store/digest.h"
#include "store/model.h"
#include "store/modelfile.h"
#include "store/temp_store.h"
#include "testdata.h"

namespace corral::store {
namespace {

namespace fs = std::filesystem;

// Writes the vision (or the text) half of a one-file qwen2vl GGUF as llama.cpp lays it out.
void write_half(const ml::gguf::File& whole, bool vision, const fs::path& out) {
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
  w.write(out.string());
}

struct TwoFileFixture {
  corral::testing::TempDir tmp;
  fs::path whole = tmp.path() / "whole.gguf";
  fs::path text = tmp.path() / "files" / "model.gguf";
  fs::path mmproj = tmp.path() / "files" / "mmproj-model.gguf";
  std::string png;

  TwoFileFixture() {
    const std::string dir = corral::testing::testdata_path("reference/tiny-qwen2vl");
    convert::ConvertOptions co;
    co.type = "F32";
    co.write.n_threads = 1;
    convert::convert_hf(dir, whole.string(), co);
    fs::create_directories(text.parent_path());
    const ml::gguf::File f = ml::gguf::File::open(whole.string());
    write_half(f, false, text);
    write_half(f, true, mmproj);
    std::ifstream in(dir + "/image.png", std::ios::binary);
    png.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }

  void create(Store& store, const std::string& name, const std::string& modelfile) {
    create_model(store, ModelName::parse(name), parse_modelfile(modelfile), tmp.path(), {});
  }
};

// Logits of the fixture's prompt with its image (the placeholder taken out and the image put
// where it was).
std::vector<float> image_logits(runner::Engine& engine, const std::string& png) {
  const image::Image rgb =
      image::decode(std::span(reinterpret_cast<const uint8_t*>(png.data()), png.size()));
  runner::PromptImage image;
  image.input = std::make_shared<const model::ImageInput>(engine.model().vision()->preprocess(rgb));
  image.digest = "fixture";
  image.at = 2;
  return engine.logits(std::vector<int32_t>{1, 87, 85, 272, 201}, std::span(&image, 1));
}

TEST(VisionCreate, TwoFromLinesMakeAModelAndAProjectorLayer) {
  TwoFileFixture f;
  Store store(f.tmp.path() / "models");
  // Projector first: which file is which is read from the files.
  f.create(store, "vl", "FROM ./files/mmproj-model.gguf\nFROM ./files/model.gguf\n");
  const ModelInfo info = resolve(store, "vl");
  ASSERT_FALSE(info.projector.empty());
  const Manifest& m = *info.manifest;
  ASSERT_GE(m.layers.size(), 2u);
  EXPECT_EQ(m.layers[0].media_type, kMediaModel);
  EXPECT_EQ(m.layers[1].media_type, kMediaProjector);
  EXPECT_EQ(sha256_file(info.gguf), sha256_file(f.text));
  EXPECT_EQ(sha256_file(info.projector), sha256_file(f.mmproj));

  runner::Engine two(info.gguf.string(), {.n_threads = 1, .projector = info.projector.string()});
  runner::Engine one(f.whole.string(), {.n_threads = 1, .projector = ""});
  ASSERT_NE(two.model().vision(), nullptr);
  EXPECT_EQ(image_logits(two, f.png), image_logits(one, f.png));
}

TEST(VisionCreate, AFolderHoldingTheModelAndItsProjector) {
  TwoFileFixture f;
  Store store(f.tmp.path() / "models");
  f.create(store, "vl", "FROM ./files\n");
  const ModelInfo info = resolve(store, "vl");
  EXPECT_FALSE(info.projector.empty());
  EXPECT_EQ(sha256_file(info.gguf), sha256_file(f.text));
}

TEST(VisionCreate, FilesThatAreNotAModelAndItsProjectorAreRefusedNamingThem) {
  TwoFileFixture f;
  Store store(f.tmp.path() / "models");
  const auto error = [&](const std::string& modelfile) {
    try {
      f.create(store, "bad", modelfile);
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error("FROM ./files/model.gguf\nFROM ./whole.gguf\n").find("neither is a projector"),
            std::string::npos);
  EXPECT_NE(error("FROM ./files/mmproj-model.gguf\nFROM ./files/mmproj-model.gguf\n")
                .find("both are projectors"),
            std::string::npos);
  // A projector beside a model it does not belong to (stories is a llama model).
  const std::string stories =
      corral::testing::testdata_path("tinystories260k/stories260K-f32.gguf");
  const std::string e = error("FROM " + stories + "\nFROM ./files/mmproj-model.gguf\n");
  EXPECT_NE(e.find("does not fit the model"), std::string::npos) << e;
  EXPECT_FALSE(store.find_manifest(ModelName::parse("bad")));
}

}  // namespace
}  // namespace corral::store
