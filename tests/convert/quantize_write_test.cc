// write_model and quantize_file: what they write (each tensor's bytes are what the reference
// quantizer gives its f32 values; raw data is copied where the dtype already matches), the
// general.* keys, progress, thread-count independence, and that a failure leaves no file.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "convert/quantize.h"
#include "convert/quantize_fixture.h"
#include "ml/fp16.h"
#include "ml/gguf/reader.h"
#include "ml/quant/quant.h"

namespace corral::convert {
namespace {

using ml::DType;
using testing::TempDir;

std::vector<float> random_values(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> x(n);
  for (float& v : x) v = d(rng);
  return x;
}

std::vector<uint8_t> quantized(DType t, const std::vector<float>& x) {
  std::vector<uint8_t> out(ml::row_size(t, static_cast<int64_t>(x.size())));
  ml::quant::quantize_row(t, x.data(), out.data(), static_cast<int64_t>(x.size()));
  return out;
}

std::vector<uint8_t> span_bytes(const ml::gguf::TensorInfo& t) {
  return {t.data, t.data + t.nbytes};
}

ml::gguf::Metadata llama_metadata() {
  ml::gguf::Metadata md;
  md.set("general.architecture", "llama");
  md.set("llama.block_count", uint32_t{1});
  md.set("llama.attention.head_count", uint32_t{8});
  md.set("llama.attention.head_count_kv", uint32_t{2});
  md.set("general.quantization_version", uint32_t{1});  // stale: replaced or removed
  return md;
}

// A one-layer model with sources of every kind: f32 through read_f32 only, raw bf16 and f16,
// raw f32.
struct Model {
  std::vector<float> embd = random_values(256 * 16, 1);
  std::vector<float> norm = random_values(256, 2);
  std::vector<float> q = random_values(256 * 256, 3);
  std::vector<float> out = random_values(256 * 16, 4);
  std::vector<uint16_t> norm_f16, q_bf16;
  std::vector<TensorSource> sources;

  Model() {
    for (float& v : q) v = ml::bf16_to_fp32(ml::fp32_to_bf16(v));
    for (float& v : norm) v = ml::fp16_to_fp32(ml::fp32_to_fp16(v));
    for (float v : norm) norm_f16.push_back(ml::fp32_to_fp16(v));
    for (float v : q) q_bf16.push_back(ml::fp32_to_bf16(v));
    auto bytes = [](const auto& v) {
      return std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(v.data()),
                                      v.size() * sizeof(v[0]));
    };
    auto reader = [](const std::vector<float>& v) {
      return [&v](float* y) { std::memcpy(y, v.data(), v.size() * sizeof(float)); };
    };
    sources = {
        {"token_embd.weight", {256, 16}, DType::F32, {}, reader(embd)},
        {"blk.0.attn_norm.weight", {256}, DType::F16, bytes(norm_f16), reader(norm)},
        {"blk.0.attn_q.weight", {256, 256}, DType::BF16, bytes(q_bf16), reader(q)},
        {"output.weight", {256, 16}, DType::F32, bytes(out), reader(out)},
    };
  }
};

TEST(WriteModel, EachTensorHoldsTheReferenceQuantizationOfItsValues) {
  TempDir dir;
  const Model m;
  const std::string path = dir.file("m.gguf");
  write_model(llama_metadata(), m.sources, parse_quant_type("Q4_K_M"), path,
              {.n_threads = 2, .progress = {}});

  const auto f = ml::gguf::File::open(path);
  EXPECT_EQ(f.metadata().get_u32("general.file_type"), 15u);
  EXPECT_EQ(f.metadata().get_u32("general.quantization_version"), 2u);
  EXPECT_EQ(f.metadata().get_string("general.architecture"), "llama");
  ASSERT_EQ(f.tensors().size(), 4u);
  EXPECT_EQ(f.tensors()[0].name, "token_embd.weight");  // the order given
  EXPECT_EQ(f.tensor("token_embd.weight").dtype, DType::Q4_K);
  EXPECT_EQ(f.tensor("blk.0.attn_norm.weight").dtype, DType::F32);
  EXPECT_EQ(f.tensor("blk.0.attn_q.weight").dtype, DType::Q4_K);
  EXPECT_EQ(f.tensor("output.weight").dtype, DType::Q6_K);
  EXPECT_EQ(f.tensor("blk.0.attn_q.weight").shape(), (std::vector<int64_t>{256, 256}));

  EXPECT_EQ(span_bytes(f.tensor("token_embd.weight")), quantized(DType::Q4_K, m.embd));
  EXPECT_EQ(span_bytes(f.tensor("blk.0.attn_norm.weight")), quantized(DType::F32, m.norm));
  EXPECT_EQ(span_bytes(f.tensor("blk.0.attn_q.weight")), quantized(DType::Q4_K, m.q));
  EXPECT_EQ(span_bytes(f.tensor("output.weight")), quantized(DType::Q6_K, m.out));
}

TEST(WriteModel, PlainTargetsConvertWithoutQuantizationVersion) {
  TempDir dir;
  const Model m;
  for (const char* type : {"F16", "BF16", "F32"}) {
    const std::string path = dir.file(std::string(type) + ".gguf");
    write_model(llama_metadata(), m.sources, parse_quant_type(type), path);
    const auto f = ml::gguf::File::open(path);
    const DType t = parse_quant_type(type).base;
    EXPECT_EQ(f.metadata().get_u32("general.file_type"), parse_quant_type(type).ftype);
    EXPECT_FALSE(f.metadata().contains("general.quantization_version")) << type;
    EXPECT_EQ(f.tensor("blk.0.attn_q.weight").dtype, t);
    EXPECT_EQ(f.tensor("blk.0.attn_norm.weight").dtype, DType::F32);
    EXPECT_EQ(span_bytes(f.tensor("blk.0.attn_q.weight")), quantized(t, m.q)) << type;
  }
  // BF16 source to BF16 target: the raw bytes themselves.
  const auto f = ml::gguf::File::open(dir.file("BF16.gguf"));
  const auto& q = f.tensor("blk.0.attn_q.weight");
  EXPECT_EQ(0, std::memcmp(q.data, m.q_bf16.data(), q.nbytes));
}

TEST(WriteModel, SameBytesWhateverTheThreadCount) {
  TempDir dir;
  const Model m;
  write_model(llama_metadata(), m.sources, parse_quant_type("Q5_K_M"), dir.file("1.gguf"),
              {.n_threads = 1, .progress = {}});
  write_model(llama_metadata(), m.sources, parse_quant_type("Q5_K_M"), dir.file("3.gguf"),
              {.n_threads = 3, .progress = {}});
  auto slurp = [](const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return std::vector<char>(std::istreambuf_iterator<char>(in), {});
  };
  EXPECT_EQ(slurp(dir.file("1.gguf")), slurp(dir.file("3.gguf")));
}

TEST(WriteModel, ProgressCountsOutputBytesUpToTheTotal) {
  TempDir dir;
  const Model m;
  std::vector<Progress> seen;
  write_model(llama_metadata(), m.sources, parse_quant_type("Q8_0"), dir.file("p.gguf"),
              {.n_threads = 0, .progress = [&](const Progress& p) { seen.push_back(p); }});
  ASSERT_EQ(seen.size(), m.sources.size() + 1);
  const auto f = ml::gguf::File::open(dir.file("p.gguf"));
  uint64_t data = 0;
  for (const auto& t : f.tensors()) data += t.nbytes;
  EXPECT_EQ(seen.front().completed, 0u);
  for (size_t i = 1; i < seen.size(); ++i) {
    EXPECT_GT(seen[i].completed, seen[i - 1].completed);
    EXPECT_EQ(seen[i].total, data);
    EXPECT_FALSE(seen[i].status.empty());
  }
  EXPECT_EQ(seen.back().completed, data);
}

TEST(WriteModel, FailureMidwayLeavesNoTempFileAndKeepsTheOldTarget) {
  TempDir dir;
  Model m;
  const std::string path = dir.file("m.gguf");
  { std::ofstream(path) << "old"; }
  m.sources[2].raw = {};
  m.sources[2].read_f32 = [](float*) { throw std::runtime_error("disk went away"); };
  EXPECT_THROW(write_model(llama_metadata(), m.sources, parse_quant_type("Q8_0"), path),
               std::runtime_error);
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    names.push_back(e.path().filename().string());
  }
  EXPECT_EQ(names, std::vector<std::string>{"m.gguf"});
  std::ifstream in(path);
  std::string content;
  in >> content;
  EXPECT_EQ(content, "old");
}

TEST(WriteModel, RejectsSourcesWhoseBytesDoNotFitTheirShape) {
  TempDir dir;
  Model m;
  m.sources[2].raw = m.sources[2].raw.subspan(2);
  try {
    write_model(llama_metadata(), m.sources, parse_quant_type("Q8_0"), dir.file("m.gguf"));
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("blk.0.attn_q.weight"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(dir.file("m.gguf")));
}

TEST(QuantizeFile, RequantizesQuantizedInputAndCopiesTensorsAlreadyInTheirType) {
  TempDir dir;
  const Model m;
  write_model(llama_metadata(), m.sources, parse_quant_type("Q8_0"), dir.file("q8.gguf"));
  std::vector<Progress> seen;
  quantize_file(dir.file("q8.gguf"), dir.file("q4.gguf"), parse_quant_type("Q4_0"),
                {.n_threads = 0, .progress = [&](const Progress& p) { seen.push_back(p); }});
  quantize_file(dir.file("q8.gguf"), dir.file("q8b.gguf"), parse_quant_type("Q8_0"));

  const auto q8 = ml::gguf::File::open(dir.file("q8.gguf"));
  const auto q4 = ml::gguf::File::open(dir.file("q4.gguf"));
  const auto q8b = ml::gguf::File::open(dir.file("q8b.gguf"));
  EXPECT_EQ(q4.metadata().get_u32("general.file_type"), 2u);
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back().status, "quantizing Q8_0 model to Q4_0");
  for (const auto& t : q8.tensors()) {
    SCOPED_TRACE(t.name);
    // Q8_0 to Q8_0: unchanged bytes.
    EXPECT_EQ(span_bytes(q8b.tensor(t.name)), span_bytes(t));
    // Q8_0 to Q4_0: the Q4_0 of the dequantized values.
    std::vector<float> x(static_cast<size_t>(t.n_elements()));
    ml::quant::dequantize_row(t.dtype, t.data, x.data(), t.n_elements());
    const auto& got = q4.tensor(t.name);
    EXPECT_EQ(span_bytes(got), quantized(got.dtype, x));
  }
  EXPECT_EQ(q4.tensor("blk.0.attn_q.weight").dtype, DType::Q4_0);
  EXPECT_EQ(q4.tensor("output.weight").dtype, DType::Q6_K);
}

TEST(QuantizeFile, ClearErrorsForBadInputs) {
  TempDir dir;
  const Model m;
  write_model(llama_metadata(), m.sources, parse_quant_type("F32"), dir.file("in.gguf"));
  auto message = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string("no exception");
  };
  const QuantType q = parse_quant_type("Q4_0");
  EXPECT_NE(message([&] {
              quantize_file(dir.file("in.gguf"), dir.file("in.gguf"), q);
            }).find("is the input"),
            std::string::npos);
  EXPECT_NE(message([&] {
              quantize_file(dir.file("in.gguf"),
                            dir.file("../" + dir.path().filename().string() + "/in.gguf"), q);
            }).find("is the input"),
            std::string::npos);
  { std::ofstream(dir.file("text.gguf")) << "hello, not a model"; }
  EXPECT_NE(message([&] {
              quantize_file(dir.file("text.gguf"), dir.file("o.gguf"), q);
            }).find("not a GGUF"),
            std::string::npos);
  EXPECT_NE(message([&] {
              quantize_file(dir.file("missing.gguf"), dir.file("o.gguf"), q);
            }).find("missing.gguf"),
            std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir.file("o.gguf")));
}

}  // namespace
}  // namespace corral::convert
