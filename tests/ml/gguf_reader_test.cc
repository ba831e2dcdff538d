#include "ml/gguf/reader.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "testdata.h"

namespace corral::ml::gguf {
namespace {

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(GgufReader, ParsesStories260KMetadata) {
  const File f = File::open(testing::testdata_path("tinystories260k/stories260K-f32.gguf"));
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  const Metadata& m = f.metadata();
  EXPECT_EQ(m.size(), 19u);
  EXPECT_EQ(m.get_string("general.architecture"), "llama");
  EXPECT_EQ(m.get_u32("llama.block_count"), 5u);
  EXPECT_EQ(m.get_u32("llama.context_length"), 512u);
  EXPECT_EQ(m.get_u32("llama.embedding_length"), 64u);
  EXPECT_EQ(m.get_u32("llama.attention.head_count"), 8u);
  EXPECT_EQ(m.get_u32("llama.attention.head_count_kv"), 4u);
  EXPECT_EQ(m.get_u32("tokenizer.ggml.seperator_token_id"), 0xFFFFFFFFu);
  EXPECT_FLOAT_EQ(m.get_f32("llama.attention.layer_norm_rms_epsilon"), 1e-5f);
  EXPECT_EQ(m.get_integer("llama.feed_forward_length"), 172);

  // File order is kept: the tokenizer arrays come first in this file.
  EXPECT_EQ(m[0].first, "tokenizer.ggml.tokens");
  EXPECT_EQ(m[18].first, "llama.attention.layer_norm_rms_epsilon");

  const auto tokens = m.get_array_of<std::string>("tokenizer.ggml.tokens");
  ASSERT_EQ(tokens.size(), 512u);
  EXPECT_EQ(tokens[0], "<unk>");
  EXPECT_EQ(tokens[1], "<s>");
  EXPECT_EQ(tokens[2], "</s>");
  const auto types = m.get_array_of<int32_t>("tokenizer.ggml.token_type");
  EXPECT_EQ(types[0], 2);
  EXPECT_EQ(types[1], 3);
  EXPECT_EQ(m.get_array("tokenizer.ggml.scores").type, ValueType::kFloat32);
}

TEST(GgufReader, ParsesStories260KTensors) {
  const std::string path = testing::testdata_path("tinystories260k/stories260K-f32.gguf");
  const File f = File::open(path);
  ASSERT_EQ(f.tensors().size(), 48u);
  EXPECT_EQ(f.data_offset(), 14176u);  // end of tensor infos (14152) rounded up to 32

  const TensorInfo& embd = f.tensor("token_embd.weight");
  EXPECT_EQ(embd.dtype, DType::F32);
  EXPECT_EQ(embd.n_dims, 2);
  EXPECT_EQ(embd.shape(), (std::vector<int64_t>{64, 512}));
  EXPECT_EQ(embd.nbytes, 64u * 512 * 4);
  EXPECT_EQ(embd.offset, 0u);

  const TensorInfo& norm = f.tensor("output_norm.weight");
  EXPECT_EQ(norm.shape(), (std::vector<int64_t>{64}));
  EXPECT_EQ(norm.offset, 131072u);

  const TensorInfo& k = f.tensor("blk.0.attn_k.weight");
  EXPECT_EQ(k.shape(), (std::vector<int64_t>{64, 32}));  // 4 KV heads of 8
  EXPECT_EQ(f.tensor("blk.4.ffn_up.weight").shape(), (std::vector<int64_t>{64, 172}));
  EXPECT_EQ(f.tensors().back().name, "blk.4.ffn_norm.weight");
  EXPECT_EQ(f.find_tensor("blk.5.ffn_up.weight"), nullptr);
  EXPECT_THROW(f.tensor("missing"), std::out_of_range);

  // Data pointers address the file's bytes at data_offset + offset.
  const std::vector<uint8_t> raw = read_bytes(path);
  for (const TensorInfo& t : f.tensors()) {
    ASSERT_EQ(std::memcmp(t.data, raw.data() + f.data_offset() + t.offset, t.nbytes), 0) << t.name;
  }
  // RMS-norm weights of a trained model are not all zero.
  float first;
  std::memcpy(&first, norm.data, 4);
  EXPECT_NE(first, 0.0f);
}

TEST(GgufReader, F16FileHasSameShapesAsF32) {
  const File f32 = File::open(testing::testdata_path("tinystories260k/stories260K-f32.gguf"));
  const File f16 = File::open(testing::testdata_path("tinystories260k/stories260K-f16.gguf"));
  ASSERT_EQ(f16.tensors().size(), f32.tensors().size());
  size_t n_f16 = 0;
  for (const TensorInfo& t : f16.tensors()) {
    EXPECT_EQ(t.shape(), f32.tensor(t.name).shape()) << t.name;
    if (t.dtype == DType::F16) {
      ++n_f16;
      EXPECT_EQ(t.nbytes, static_cast<size_t>(t.n_elements()) * 2);
    }
  }
  EXPECT_GT(n_f16, 0u);
  EXPECT_EQ(f16.tensor("token_embd.weight").dtype, DType::F16);
}

TEST(GgufReader, EveryTestdataGgufParses) {
  std::vector<std::string> paths;
  for (const char* dir : {"tinystories260k", "vocab"}) {
    for (const auto& e : std::filesystem::directory_iterator(testing::testdata_dir() + "/" + dir)) {
      if (e.path().extension() == ".gguf") paths.push_back(e.path().string());
    }
  }
  ASSERT_GE(paths.size(), 12u);
  for (const std::string& p : paths) {
    SCOPED_TRACE(p);
    File f = File::open(p);
    EXPECT_TRUE(f.metadata().contains("general.architecture"));
    EXPECT_GT(f.metadata().get_array("tokenizer.ggml.tokens").items.size(), 0u);
  }
}

TEST(GgufReader, VocabFileHasStringArraysAndBools) {
  const File f = File::open(testing::testdata_path("vocab/ggml-vocab-llama-spm.gguf"));
  EXPECT_TRUE(f.tensors().empty());
  const Metadata& m = f.metadata();
  EXPECT_EQ(m.get_array("tokenizer.ggml.tokens").items.size(), 32000u);
  EXPECT_EQ(m.get_u32("llama.vocab_size"), 32000u);
  EXPECT_TRUE(m.get_bool("tokenizer.ggml.add_bos_token"));
  EXPECT_FALSE(m.get_bool("tokenizer.ggml.add_eos_token"));
  EXPECT_EQ(m.get_string("tokenizer.ggml.pre"), "default");
}

TEST(GgufMetadata, WrongTypeErrorNamesKeyAndBothTypes) {
  const File f = File::open(testing::testdata_path("tinystories260k/stories260K-f32.gguf"));
  try {
    f.metadata().get_string("llama.block_count");
    FAIL() << "no exception";
  } catch (const MetadataError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("llama.block_count"), std::string::npos) << msg;
    EXPECT_NE(msg.find("u32"), std::string::npos) << msg;
    EXPECT_NE(msg.find("expected str"), std::string::npos) << msg;
    EXPECT_NE(msg.find("stories260K-f32.gguf"), std::string::npos) << msg;
  }
  try {
    f.metadata().get_array_of<float>("tokenizer.ggml.tokens");
    FAIL() << "no exception";
  } catch (const MetadataError& e) {
    EXPECT_NE(std::string(e.what()).find("arr[str,512]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(f.metadata().get_u32("llama.no_such_key"), MetadataError);
  EXPECT_EQ(f.metadata().get_or<uint32_t>("llama.no_such_key", 7u), 7u);
}

TEST(GgufMetadata, SetReplacesInPlaceAndAddRejectsDuplicates) {
  Metadata m("test");
  m.set("a", uint32_t{1});
  m.set("b", std::string("x"));
  m.set("a", uint32_t{2});
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].first, "a");
  EXPECT_EQ(m.get_u32("a"), 2u);
  EXPECT_THROW(m.add("b", true), MetadataError);
  EXPECT_TRUE(m.erase("a"));
  EXPECT_EQ(m[0].first, "b");
  EXPECT_EQ(m.get_string("b"), "x");
  EXPECT_THROW(Value::array(ValueType::kUint32, {Value(uint32_t{1}), Value(1.0f)}), MetadataError);
}

TEST(GgufReader, MissingFileErrorNamesPath) {
  try {
    File::open("/nonexistent/model.gguf");
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/model.gguf"), std::string::npos);
  }
}

}  // namespace
}  // namespace corral::ml::gguf
