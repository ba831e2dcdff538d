// Hostile safetensors headers and broken Hugging Face folders: each gives an error that names the
// file and the defect, never a crash (these run under ASan/UBSan in CI).
#include "convert/safetensors.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "convert/convert.h"
#include "testdata.h"

namespace corral::convert {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::vector<uint8_t> file_bytes(const std::string& header, size_t data_bytes,
                                std::optional<uint64_t> declared_len = std::nullopt) {
  const uint64_t len = declared_len.value_or(header.size());
  std::vector<uint8_t> out(8 + header.size() + data_bytes, 0);
  for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<uint8_t>(len >> (8 * i));
  std::memcpy(out.data() + 8, header.data(), header.size());
  return out;
}

// Expects parse() to throw a SafetensorsError whose message holds `source` and `what`.
void expect_rejected(const std::vector<uint8_t>& bytes, const std::string& what) {
  try {
    SafetensorsFile::parse(bytes, "hostile.safetensors");
    ADD_FAILURE() << "accepted; expected an error about " << what;
  } catch (const SafetensorsError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("hostile.safetensors"), std::string::npos) << msg;
    EXPECT_NE(msg.find(what), std::string::npos) << msg;
  }
}

TEST(Safetensors, ParsesTensorsInHeaderOrderAndIgnoresMetadata) {
  const std::string h =
      R"({"__metadata__":{"format":"pt"},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("a":{"dtype":"BF16","shape":[2,2],"data_offsets":[8,16]}})";
  std::vector<uint8_t> bytes = file_bytes(h, 16);
  const float two[2] = {1.5f, -2.0f};
  std::memcpy(bytes.data() + 8 + h.size(), two, 8);
  bytes[8 + h.size() + 8 + 1] = 0x3f;  // bf16 0x3f80 = 1.0 (little-endian low byte 0x80)
  bytes[8 + h.size() + 8] = 0x80;
  const auto f = SafetensorsFile::parse(bytes, "ok.safetensors");
  ASSERT_EQ(f->tensors().size(), 2u);
  EXPECT_EQ(f->tensors()[0].name, "b");
  EXPECT_EQ(f->tensors()[1].shape, (std::vector<int64_t>{2, 2}));
  float out[4];
  f->find("b")->read_f32(out);
  EXPECT_EQ(out[0], 1.5f);
  EXPECT_EQ(out[1], -2.0f);
  f->find("a")->read_f32(out);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], 0.0f);
}

TEST(Safetensors, RejectsHostileHeaders) {
  const std::string one = R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  expect_rejected({1, 2, 3}, "too short");
  expect_rejected(file_bytes(one, 4, UINT64_MAX), "exceeds the 100 MB limit");
  expect_rejected(file_bytes(one, 4, one.size() + 5), "past the end of the file");
  expect_rejected(file_bytes("{not json", 0), "not valid JSON");
  expect_rejected(file_bytes("[1, 2]", 0), "not a JSON object");
  expect_rejected(file_bytes(R"({"t": 5})", 0), "not an object");
  expect_rejected(file_bytes(R"({"t":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}})", 4),
                  "unknown dtype 'F33'");
  expect_rejected(file_bytes(R"({"t":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4),
                  "negative or non-integer");
  expect_rejected(
      file_bytes(R"({"t":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})",
                 4),
      "overflows");
  expect_rejected(
      file_bytes(R"({"t":{"dtype":"F32","shape":[4611686018427387904,3,0],"data_offsets":[0,0]}})",
                 0),
      "overflows");
  expect_rejected(file_bytes(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0,8]}})", 4),
                  "outside the data section");
  expect_rejected(file_bytes(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", 4),
                  "outside the data section");
  expect_rejected(file_bytes(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", 4),
                  "not non-negative integers");
  expect_rejected(file_bytes(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", 8),
                  "needs 8");
  expect_rejected(file_bytes(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", 4),
                  "two offsets");
  expect_rejected(file_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                             R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                             12),
                  "overlap");
  expect_rejected(file_bytes(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                             R"("t":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                             8),
                  "appears twice");
}

TEST(Safetensors, ReadingAnIntegerTensorAsWeightsNamesItsDtype) {
  const auto f = SafetensorsFile::parse(
      file_bytes(R"({"ids":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})", 8), "x");
  float out[1];
  try {
    f->find("ids")->read_f32(out);
    ADD_FAILURE() << "read an I64 tensor as floats";
  } catch (const SafetensorsError& e) {
    EXPECT_NE(std::string(e.what()).find("'ids' has dtype I64"), std::string::npos) << e.what();
  }
}

// A copy of a reference checkpoint that a test may break.
struct BrokenFolder {
  fs::path dir;
  explicit BrokenFolder(const std::string& name) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir = fs::temp_directory_path() /
          ("corral-broken-" + std::string(info->name()) + "-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    for (const auto& e :
         fs::directory_iterator(corral::testing::testdata_path("reference/" + name))) {
      fs::copy(e.path(), dir);
      fs::permissions(dir / e.path().filename(), fs::perms::owner_write, fs::perm_options::add);
    }
  }
  ~BrokenFolder() { fs::remove_all(dir); }
  std::string path(const std::string& f) const { return (dir / f).string(); }
};

void expect_convert_error(const BrokenFolder& f, const std::vector<std::string>& parts) {
  try {
    ConvertOptions options;
    options.type = "F32";
    options.write.n_threads = 1;
    convert_hf(f.dir.string(), f.path("out.gguf"), options);
    ADD_FAILURE() << "converted a broken folder";
  } catch (const std::exception& e) {
    for (const std::string& p : parts) {
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
    }
  }
  EXPECT_FALSE(fs::exists(f.path("out.gguf")));
}

TEST(ConvertHfErrors, MissingConfigIsNamed) {
  BrokenFolder f("tiny-qwen2");
  fs::remove(f.path("config.json"));
  EXPECT_FALSE(is_hf_folder(f.dir.string()));
  expect_convert_error(f, {"config.json", "cannot open"});
}

TEST(ConvertHfErrors, UnknownArchitectureIsNamed) {
  BrokenFolder f("tiny-qwen2");
  json c = json::parse(std::ifstream(f.path("config.json")));
  c["architectures"] = {"FooForCausalLM"};
  std::ofstream(f.path("config.json")) << c.dump();
  expect_convert_error(f, {"config.json", "'FooForCausalLM' is not supported", "Qwen2ForCausalLM"});
}

// Rewrites the folder's model.safetensors header to leave `name` out.
void drop_tensor(const BrokenFolder& f, const std::string& name) {
  std::ifstream in(f.path("model.safetensors"), std::ios::binary);
  std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  in.close();
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  json header = json::parse(bytes.substr(8, n));
  header.erase(name);
  const std::string h = header.dump();
  const uint64_t len = h.size();
  std::ofstream out(f.path("model.safetensors"), std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(&len), 8);
  out << h << bytes.substr(8 + n);
}

// The checkpoint without one of its tensors.
TEST(ConvertHfErrors, MissingTensorIsNamedWithItsGgufName) {
  BrokenFolder f("tiny-qwen2");
  drop_tensor(f, "model.layers.1.mlp.up_proj.weight");
  expect_convert_error(f, {"model.layers.1.mlp.up_proj.weight", "blk.1.ffn_up.weight"});
}

TEST(ConvertHfErrors, MissingQwen3HeadNormIsNamedWithItsGgufName) {
  BrokenFolder f("tiny-qwen3");
  drop_tensor(f, "model.layers.0.self_attn.k_norm.weight");
  expect_convert_error(f, {"model.layers.0.self_attn.k_norm.weight", "blk.0.attn_k_norm.weight"});
}

// Qwen3's head_dim is its own key: a config whose head_dim disagrees with the weights is refused.
TEST(ConvertHfErrors, Qwen3HeadDimThatDisagreesWithTheWeightsIsNamed) {
  BrokenFolder f("tiny-qwen3");
  json c = json::parse(std::ifstream(f.path("config.json")));
  c["head_dim"] = 16;
  std::ofstream(f.path("config.json")) << c.dump();
  expect_convert_error(f, {"model.safetensors", "has shape", "config.json implies"});
}

TEST(ConvertHfErrors, UnexpectedShapeIsNamed) {
  BrokenFolder f("tiny-qwen2");
  json c = json::parse(std::ifstream(f.path("config.json")));
  c["intermediate_size"] = 100;
  std::ofstream(f.path("config.json")) << c.dump();
  expect_convert_error(f, {"model.safetensors", "has shape", "config.json implies"});
}

TEST(ConvertHfErrors, ShardOutsideTheFolderIsRefused) {
  BrokenFolder f("tiny-qwen2");
  std::ofstream(f.path("model.safetensors.index.json"))
      << R"({"weight_map": {"model.norm.weight": "../model.safetensors"}})";
  expect_convert_error(
      f, {"model.safetensors.index.json", "../model.safetensors", "not a file name inside"});
}

TEST(ConvertHfErrors, ShardMissingAMappedTensorIsNamed) {
  BrokenFolder f("tiny-qwen2");
  std::ofstream(f.path("model.safetensors.index.json"))
      << R"({"weight_map": {"model.nonexistent.weight": "model.safetensors"}})";
  expect_convert_error(f, {"model.nonexistent.weight", "does not hold it"});
}

TEST(ConvertHfErrors, TruncatedWeightsFileIsNamed) {
  BrokenFolder f("tiny-qwen2");
  fs::resize_file(f.path("model.safetensors"), 20);
  expect_convert_error(f, {"model.safetensors", "header length"});
}

}  // namespace
}  // namespace corral::convert
