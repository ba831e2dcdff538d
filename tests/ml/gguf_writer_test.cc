#include "ml/gguf/writer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "ml/gguf/reader.h"
#include "testdata.h"

namespace corral::ml::gguf {
namespace {

namespace fs = std::filesystem;

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class TempDir {
 public:
  TempDir() {
    std::string t = (fs::temp_directory_path() / "corral-gguf-XXXXXX").string();
    path_ = mkdtemp(t.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

Writer copy_of(const File& f) {
  Writer w;
  for (const auto& [key, value] : f.metadata()) w.metadata().add(key, value);
  for (const TensorInfo& t : f.tensors()) {
    const std::vector<int64_t> shape = t.shape();
    w.add_tensor(t.name, t.dtype, shape, t.bytes());
  }
  return w;
}

void expect_same_file_contents(const File& a, const File& b) {
  ASSERT_EQ(a.metadata().size(), b.metadata().size());
  for (size_t i = 0; i < a.metadata().size(); ++i) {
    EXPECT_EQ(a.metadata()[i].first, b.metadata()[i].first);
    EXPECT_EQ(a.metadata()[i].second.type_string(), b.metadata()[i].second.type_string());
    EXPECT_TRUE(a.metadata()[i].second == b.metadata()[i].second) << a.metadata()[i].first;
  }
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  for (size_t i = 0; i < a.tensors().size(); ++i) {
    const TensorInfo& x = a.tensors()[i];
    const TensorInfo& y = b.tensors()[i];
    EXPECT_EQ(x.name, y.name);
    EXPECT_EQ(x.dtype, y.dtype);
    EXPECT_EQ(x.shape(), y.shape());
    ASSERT_EQ(x.nbytes, y.nbytes);
    EXPECT_EQ(std::memcmp(x.data, y.data, x.nbytes), 0) << x.name;
  }
}

TEST(GgufWriter, RoundTripsStories260K) {
  const std::string src = testing::testdata_path("tinystories260k/stories260K-f32.gguf");
  const File original = File::open(src);
  TempDir dir;
  const std::string out = dir.file("copy.gguf");
  const Writer w = copy_of(original);
  w.write(out);
  const File copy = File::open(out);
  expect_same_file_contents(original, copy);
  EXPECT_EQ(copy.data_offset(), original.data_offset());
  EXPECT_EQ(fs::file_size(out), w.file_size());
  // Same layout rules as the llama.cpp converter that wrote the fixture: byte-identical file.
  EXPECT_TRUE(read_bytes(out) == read_bytes(src));
  // Only the target is left behind (the temp file was renamed).
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

TEST(GgufWriter, RoundTripsF16Model) {
  const std::string src = testing::testdata_path("tinystories260k/stories260K-f16.gguf");
  const File original = File::open(src);
  const std::vector<uint8_t> bytes = copy_of(original).to_bytes();
  const File copy = File::parse(bytes, "f16 copy");
  expect_same_file_contents(original, copy);
  EXPECT_TRUE(bytes == read_bytes(src));
}

TEST(GgufWriter, RoundTripsVocabFileWithStringArrays) {
  const std::string src = testing::testdata_path("vocab/ggml-vocab-gpt-2.gguf");
  const File original = File::open(src);
  TempDir dir;
  copy_of(original).write(dir.file("vocab.gguf"));
  const File copy = File::open(dir.file("vocab.gguf"));
  expect_same_file_contents(original, copy);
  EXPECT_GT(copy.metadata().get_array("tokenizer.ggml.merges").items.size(), 1000u);
  EXPECT_TRUE(read_bytes(dir.file("vocab.gguf")) == read_bytes(src));
}

TEST(GgufWriter, EveryValueTypeAndNestedArraysRoundTrip) {
  Writer w;
  Metadata& m = w.metadata();
  m.add("u8", uint8_t{200});
  m.add("i8", int8_t{-100});
  m.add("u16", uint16_t{60000});
  m.add("i16", int16_t{-30000});
  m.add("u32", uint32_t{4000000000u});
  m.add("i32", int32_t{-2000000000});
  m.add("f32", 3.25f);
  m.add("bool", true);
  m.add("str", std::string("h\xc3\xa9llo\n"));
  m.add("u64", uint64_t{0xFFFFFFFFFFFFFFFFull});
  m.add("i64", int64_t{-1234567890123ll});
  m.add("f64", 2.5e300);
  m.add("empty_str", std::string());
  m.add("arr_str", Value::array(ValueType::kString, {Value("a"), Value(""), Value("ccc")}));
  m.add("arr_empty_f32", Value::array(ValueType::kFloat32, {}));
  m.add("arr_bool", Value::array(ValueType::kBool, {Value(true), Value(false)}));
  m.add("arr_arr",
        Value::array(ValueType::kArray,
                     {Value::array(ValueType::kInt64, {Value(int64_t{1}), Value(int64_t{-2})}),
                      Value::array(ValueType::kString, {Value("x")})}));
  const std::vector<float> weights = {1.0f, -2.0f, 3.5f, 0.0f, 5.0f, 6.0f};
  const auto* wb = reinterpret_cast<const uint8_t*>(weights.data());
  w.add_tensor("w", DType::F32, {3, 2}, {wb, 24});
  w.add_tensor("v", DType::F32, {1}, {wb + 20, 4});
  const std::vector<uint8_t> bytes = w.to_bytes();
  EXPECT_EQ(bytes.size(), w.file_size());

  const File f = File::parse(bytes, "all-types");
  EXPECT_TRUE(f.metadata() == m);
  for (size_t i = 0; i < m.size(); ++i) {
    EXPECT_EQ(f.metadata()[i].second.type(), m[i].second.type()) << m[i].first;
  }
  EXPECT_EQ(f.metadata().get<int8_t>("i8"), -100);
  EXPECT_EQ(f.metadata().get<double>("f64"), 2.5e300);
  EXPECT_EQ(f.metadata().get_array("arr_empty_f32").type, ValueType::kFloat32);
  const Array& nested = f.metadata().get_array("arr_arr");
  EXPECT_EQ(nested.items[0].as_array().items[1].as<int64_t>(), -2);
  EXPECT_EQ(nested.items[1].as_array().items[0].as_string(), "x");
  ASSERT_EQ(f.tensors().size(), 2u);
  EXPECT_EQ(f.tensor("w").offset, 0u);
  EXPECT_EQ(f.tensor("v").offset, 32u);  // 24 bytes padded to the default 32
  float v;
  std::memcpy(&v, f.tensor("v").data, 4);
  EXPECT_EQ(v, 6.0f);
  EXPECT_EQ((f.data_offset() + 32 + 32) % 32, 0u);
  EXPECT_EQ(bytes.size(), f.data_offset() + 64);
}

TEST(GgufWriter, HonoursCustomAlignment) {
  Writer w;
  w.metadata().add("general.alignment", uint32_t{64});
  const std::vector<uint8_t> data(40, 7);
  w.add_tensor("a", DType::I8, {40}, data);
  w.add_tensor("b", DType::I8, {8}, {data.data(), 8});
  const std::vector<uint8_t> bytes = w.to_bytes();
  const File f = File::parse(bytes);
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.data_offset() % 64, 0u);
  EXPECT_EQ(f.tensor("b").offset, 64u);
  EXPECT_EQ(f.tensor("b").data[0], 7);

  Writer bad;
  bad.metadata().add("general.alignment", uint32_t{48});
  EXPECT_THROW(bad.to_bytes(), std::invalid_argument);
}

TEST(GgufWriter, RejectsInvalidTensors) {
  Writer w;
  const std::vector<uint8_t> data(18 * 2);
  EXPECT_THROW(w.add_tensor("q", DType::Q4_0, {48}, data), std::invalid_argument);  // 48 % 32
  w.add_tensor("q", DType::Q4_0, {64}, data);
  EXPECT_THROW(w.add_tensor("q", DType::Q4_0, {64}, data), std::invalid_argument);  // duplicate
  EXPECT_THROW(w.add_tensor("r", DType::Q4_0, {32}, data), std::invalid_argument);  // size
  EXPECT_THROW(w.add_tensor("s", DType::I8, {0}, {}), std::invalid_argument);
  EXPECT_THROW(w.add_tensor("t", DType::I8, {1, 1, 1, 1, 1}, {data.data(), 1}),
               std::invalid_argument);
  EXPECT_THROW(w.add_tensor(std::string(64, 'n'), DType::I8, {1}, {data.data(), 1}),
               std::invalid_argument);
}

TEST(GgufWriter, FailedWriteLeavesNoFile) {
  Writer w;
  w.metadata().add("general.alignment", std::string("not a number"));
  TempDir dir;
  EXPECT_THROW(w.write(dir.file("x.gguf")), std::invalid_argument);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 0);
  EXPECT_THROW(Writer().write("/nonexistent-dir/x.gguf"), std::runtime_error);
}

}  // namespace
}  // namespace corral::ml::gguf
