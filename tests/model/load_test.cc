// Loading models that do not fit their architecture: each failure names what is wrong.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "backend/reference/reference.h"
#include "ml/backend.h"
#include "ml/gguf/reader.h"
#include "ml/gguf/writer.h"
#include "model/model.h"
#include "testdata.h"

namespace corral::model {
namespace {

// stories260K's metadata and tensors, edited on the way through, parsed back from memory.
struct Edited {
  ml::gguf::File source =
      ml::gguf::File::open(corral::testing::testdata_path("tinystories260k/stories260K-f32.gguf"));
  std::vector<uint8_t> bytes;

  // edit_tensor returns false to drop a tensor, and may change its shape; add appends tensors.
  ml::gguf::File make(
      const std::function<void(ml::gguf::Metadata&)>& edit_metadata,
      const std::function<bool(const std::string&, std::vector<int64_t>&)>& edit_tensor,
      const std::function<void(ml::gguf::Writer&)>& add = [](ml::gguf::Writer&) {}) {
    ml::gguf::Writer w;
    for (const auto& [key, value] : source.metadata()) w.metadata().add(key, value);
    edit_metadata(w.metadata());
    for (const auto& t : source.tensors()) {
      std::vector<int64_t> shape = t.shape();
      if (edit_tensor(t.name, shape)) w.add_tensor(t.name, t.dtype, shape, t.bytes());
    }
    add(w);
    bytes = w.to_bytes();
    return ml::gguf::File::parse(bytes, "edited.gguf");
  }
};

std::string load_error(const ml::gguf::File& f) {
  try {
    load(f);
  } catch (const std::exception& e) {
    return e.what();
  }
  ADD_FAILURE() << "the model loaded";
  return {};
}

TEST(ModelLoad, MissingTensorIsNamedWithItsExpectedShape) {
  Edited e;
  const auto f =
      e.make([](auto&) {}, [](const std::string& n, auto&) { return n != "blk.2.ffn_up.weight"; });
  const std::string msg = load_error(f);
  EXPECT_NE(msg.find("missing tensor blk.2.ffn_up.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[64, 172]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("edited.gguf"), std::string::npos) << msg;
}

TEST(ModelLoad, MisShapedTensorIsNamedWithBothShapes) {
  Edited e;
  const auto f = e.make([](auto&) {},
                        [](const std::string& n, std::vector<int64_t>& shape) {
                          if (n == "blk.1.attn_k.weight")
                            shape = {32, 64};  // transposed: same bytes
                          return true;
                        });
  const std::string msg = load_error(f);
  EXPECT_NE(msg.find("tensor blk.1.attn_k.weight has shape [32, 64], expected [64, 32]"),
            std::string::npos)
      << msg;
}

TEST(ModelLoad, AbsentOutputFallsBackToTheEmbeddingsAndLeavesNothingUnused) {
  Edited e;
  const auto f =
      e.make([](auto&) {}, [](const std::string& n, auto&) { return n != "output.weight"; });
  const auto m = load(f);
  EXPECT_TRUE(m->unused_tensors().empty());
}

TEST(ModelLoad, TensorsNothingConsumesAreReported) {
  Edited e;
  const std::vector<float> extra(64, 1.0f);
  const auto f =
      e.make([](auto&) {}, [](const std::string&, auto&) { return true; },
             [&](ml::gguf::Writer& w) {
               w.add_tensor("blk.0.mystery.weight", ml::DType::F32, {64},
                            {reinterpret_cast<const uint8_t*>(extra.data()), extra.size() * 4});
             });
  const auto m = load(f);
  EXPECT_EQ(m->unused_tensors(), std::vector<std::string>{"blk.0.mystery.weight"});
}

TEST(ModelLoad, UnknownArchitectureIsNamed) {
  Edited e;
  const auto f = e.make([](ml::gguf::Metadata& md) { md.set("general.architecture", "gptx9"); },
                        [](const std::string&, auto&) { return true; });
  const std::string msg = load_error(f);
  EXPECT_NE(msg.find("unknown architecture 'gptx9'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("llama"), std::string::npos) << msg;  // the known ones are listed
}

TEST(ModelLoad, MissingHyperparameterNamesTheKey) {
  Edited e;
  const auto f = e.make([](ml::gguf::Metadata& md) { md.erase("llama.embedding_length"); },
                        [](const std::string&, auto&) { return true; });
  const std::string msg = load_error(f);
  EXPECT_NE(msg.find("llama.embedding_length"), std::string::npos) << msg;
}

TEST(ModelLoad, HostileHyperparametersAreRejectedBeforeSizingAnything) {
  const std::pair<const char*, uint32_t> cases[] = {
      {"llama.attention.head_count", 0},     // would divide by zero
      {"llama.attention.head_count_kv", 3},  // 8 heads do not group by 3
      {"llama.block_count", 4000000},        // more layers than the file has tensors
      {"llama.rope.dimension_count", 7},     // odd rotation
      {"llama.rope.dimension_count", 16},    // wider than the head
      {"llama.embedding_length", 0xFFFFFFFF},
  };
  for (const auto& c : cases) {
    const auto& key = c.first;  // not a structured binding: the lambda below captures it
    const auto& value = c.second;
    Edited e;
    const auto f = e.make([&](ml::gguf::Metadata& md) { md.set(key, value); },
                          [](const std::string&, auto&) { return true; });
    const std::string msg = load_error(f);
    const std::string short_key = std::string(key).substr(std::string("llama.").size());
    EXPECT_NE(msg.find(short_key), std::string::npos) << key << ": " << msg;
  }
}

// Linear RoPE scaling by 2 halves every angle: tokens at positions 0, 2, 4, ... of the scaled
// model get the logits of positions 0, 1, 2, ... of the plain one.
TEST(ModelLoad, LinearRopeScalingDividesThePositions) {
  Edited plain_file, scaled_file;
  const auto plain_gguf =
      plain_file.make([](auto&) {}, [](const std::string&, auto&) { return true; });
  const auto scaled_gguf = scaled_file.make(
      [](ml::gguf::Metadata& md) {
        md.set("llama.rope.scaling.type", "linear");
        md.set("llama.rope.scaling.factor", 2.0f);
      },
      [](const std::string&, auto&) { return true; });
  const auto plain = load(plain_gguf);
  const auto scaled = load(scaled_gguf);
  auto backend = backend::reference::make_backend();
  ml::Executor ex({backend.get()});
  auto run = [&](Model& m, int32_t stride) {
    auto cache = m.make_cache({.num_ctx = 16, .dtype = ml::DType::F32});
    Batch b;
    const int32_t ids[] = {1, 403, 407, 261, 378, 432};
    for (int32_t i = 0; i < 6; ++i) b.add(ids[i], i * stride, 0, true);
    ml::Graph g;
    ml::Tensor out = m.forward(g, b, cache);
    ex.compute(g, {out});
    const auto* p = static_cast<const float*>(out.data());
    return std::vector<float>(p, p + out.nelements());
  };
  const std::vector<float> want = run(*plain, 1);
  const std::vector<float> got = run(*scaled, 2);
  const std::vector<float> unscaled = run(*plain, 2);
  float d = 0.0f, d_unscaled = 0.0f;
  for (size_t i = 0; i < want.size(); ++i) {
    d = std::max(d, std::abs(got[i] - want[i]));
    d_unscaled = std::max(d_unscaled, std::abs(unscaled[i] - want[i]));
  }
  EXPECT_LE(d, 1e-4f);
  EXPECT_GT(d_unscaled, 1e-2f);
}

TEST(ModelLoad, EveryArchitectureOfTheRegistryIsListedOnce) {
  std::vector<std::string> names;
  for (const Architecture& a : architectures()) names.emplace_back(a.name);
  EXPECT_EQ(names, (std::vector<std::string>{"llama", "qwen2", "qwen2vl", "qwen3", "mllama", "bert",
                                             "gemma3"}));
}

}  // namespace
}  // namespace corral::model
