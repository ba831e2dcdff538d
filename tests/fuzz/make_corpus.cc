// Writes the seed GGUFs of the fuzz corpus (small, synthetic: every value type, nested arrays,
// every dtype, custom alignment, a miniature llama-like model). Not part of the build; run
//   c++ -std=c++20 -Isrc tests/fuzz/make_corpus.cc build/libcorral_core.a -o /tmp/make_corpus
//   /tmp/make_corpus tests/fuzz/corpus
// then let fuzz_gguf grow and `-merge=1` minimize the corpus.
#include <cstdio>
#include <string>
#include <vector>

#include "ml/gguf/writer.h"

using corral::ml::DType;
using corral::ml::gguf::Array;
using corral::ml::gguf::Value;
using corral::ml::gguf::ValueType;
using corral::ml::gguf::Writer;

namespace {

std::vector<uint8_t> pattern(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * 37 + 11);
  return v;
}

void save(const std::string& dir, const std::string& name, const Writer& w, uint32_t version = 3) {
  std::vector<uint8_t> b = w.to_bytes();
  b[4] = static_cast<uint8_t>(version);
  const std::string path = dir + "/seed-" + name + ".gguf";
  FILE* f = std::fopen(path.c_str(), "wb");
  std::fwrite(b.data(), 1, b.size(), f);
  std::fclose(f);
  std::printf("%s %zu bytes\n", path.c_str(), b.size());
}

}  // namespace

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : ".";
  const std::vector<uint8_t> bytes = pattern(4096);

  save(dir, "empty", Writer());

  {
    Writer w;
    auto& m = w.metadata();
    m.add("u8", uint8_t{1});
    m.add("i8", int8_t{-1});
    m.add("u16", uint16_t{2});
    m.add("i16", int16_t{-2});
    m.add("u32", uint32_t{3});
    m.add("i32", int32_t{-3});
    m.add("f32", 0.5f);
    m.add("bool", true);
    m.add("str", "text");
    m.add("u64", uint64_t{4});
    m.add("i64", int64_t{-4});
    m.add("f64", 0.25);
    save(dir, "scalars", w);
    save(dir, "scalars-v2", w, 2);
  }
  {
    Writer w;
    auto& m = w.metadata();
    m.add("strs", Value::array(ValueType::kString, {Value("a"), Value("bc"), Value("")}));
    m.add("empty", Value::array(ValueType::kInt64, {}));
    m.add("bools", Value::array(ValueType::kBool, {Value(true), Value(false)}));
    m.add("nested",
          Value::array(ValueType::kArray,
                       {Value::array(ValueType::kUint16, {Value(uint16_t{7})}),
                        Value::array(ValueType::kArray,
                                     {Value::array(ValueType::kString, {Value("deep")})})}));
    w.add_tensor("t", DType::F32, {2, 2}, {bytes.data(), 16});
    save(dir, "arrays", w);
  }
  {
    // One block of every dtype.
    Writer w;
    for (DType t : corral::ml::kAllDTypes) {
      const int64_t n = corral::ml::block_size(t);
      w.add_tensor(std::string(corral::ml::dtype_name(t)), t, {n},
                   {bytes.data(), corral::ml::type_size(t)});
    }
    save(dir, "dtypes", w);
  }
  {
    Writer w;
    w.metadata().add("general.alignment", uint32_t{64});
    w.add_tensor("a", DType::F16, {3}, {bytes.data(), 6});
    w.add_tensor("b", DType::I32, {1, 2, 1, 2}, {bytes.data(), 16});
    save(dir, "align64", w);
  }
  {
    Writer w;
    w.metadata().add("general.alignment", uint32_t{1});
    w.add_tensor("a", DType::I8, {3}, {bytes.data(), 3});
    w.add_tensor("b", DType::I8, {5}, {bytes.data(), 5});
    save(dir, "align1", w);
  }
  {
    // A miniature llama: the keys and tensor names a model loader reads.
    Writer w;
    auto& m = w.metadata();
    m.add("general.architecture", "llama");
    m.add("general.name", "mini");
    m.add("general.file_type", uint32_t{7});
    m.add("llama.block_count", uint32_t{1});
    m.add("llama.context_length", uint32_t{32});
    m.add("llama.embedding_length", uint32_t{32});
    m.add("llama.attention.head_count", uint32_t{2});
    m.add("llama.attention.layer_norm_rms_epsilon", 1e-5f);
    std::vector<Value> tokens, scores, types;
    for (int i = 0; i < 16; ++i) {
      tokens.emplace_back("t" + std::to_string(i));
      scores.emplace_back(static_cast<float>(-i));
      types.emplace_back(int32_t{1});
    }
    m.add("tokenizer.ggml.model", "llama");
    m.add("tokenizer.ggml.tokens", Value::array(ValueType::kString, tokens));
    m.add("tokenizer.ggml.scores", Value::array(ValueType::kFloat32, scores));
    m.add("tokenizer.ggml.token_type", Value::array(ValueType::kInt32, types));
    w.add_tensor("token_embd.weight", DType::Q8_0, {32, 16}, {bytes.data(), 16 * 34});
    w.add_tensor("blk.0.attn_norm.weight", DType::F32, {32}, {bytes.data(), 128});
    w.add_tensor("blk.0.attn_q.weight", DType::Q4_0, {32, 32}, {bytes.data(), 32 * 18});
    w.add_tensor("output_norm.weight", DType::F32, {32}, {bytes.data(), 128});
    save(dir, "mini-llama", w);
  }
  return 0;
}
