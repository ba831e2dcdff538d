// Test scaffolding for quantization: reference/small-llama-256 (a bf16 Hugging Face checkpoint
// whose every row length is a multiple of 256) as an F32 GGUF file with its tokenizer, written
// once per test run into a temp folder that is removed at exit; and helpers to compare logits.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "ml/gguf/reader.h"
#include "ml/gguf/writer.h"
#include "model/hf_checkpoint.h"
#include "testdata.h"

namespace corral::convert::testing {

// A folder under the system temp dir, removed with everything in it when destroyed.
class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() /
            ("corral-quantize-test-" + std::to_string(::getpid()) + "-" +
             std::to_string(reinterpret_cast<uintptr_t>(this)));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// tokenizer.json as the tokenizer.ggml.* keys llama.cpp's converter writes for a byte-level BPE
// (Llama 3 pre-tokenizer) vocabulary, so that both corral's Engine and llama.cpp load the file.
inline void add_bpe_tokenizer(ml::gguf::Metadata& md, const std::string& dir,
                              const nlohmann::json& config) {
  using ml::gguf::Value;
  using ml::gguf::ValueType;
  const auto tok = model::testing::HfCheckpoint::read_json(dir + "/tokenizer.json");
  std::vector<std::string> texts;
  std::vector<int32_t> types;
  auto put = [&](int64_t id, const std::string& text, int32_t type) {
    if (static_cast<size_t>(id) >= texts.size()) {
      texts.resize(static_cast<size_t>(id) + 1);
      types.resize(static_cast<size_t>(id) + 1, 1);
    }
    texts[static_cast<size_t>(id)] = text;
    types[static_cast<size_t>(id)] = type;
  };
  for (const auto& [text, id] : tok.at("model").at("vocab").items())
    put(id.get<int64_t>(), text, 1);
  for (const auto& a : tok.at("added_tokens")) {
    put(a.at("id").get<int64_t>(), a.at("content"), a.value("special", false) ? 3 : 4);
  }
  std::vector<Value> tokens, token_types, merges;
  for (size_t i = 0; i < texts.size(); ++i) {
    tokens.emplace_back(texts[i].empty() ? "[PAD" + std::to_string(i) + "]" : texts[i]);
    token_types.emplace_back(types[i]);
  }
  for (const auto& m : tok.at("model").at("merges")) {
    merges.emplace_back(m.is_array() ? m[0].get<std::string>() + " " + m[1].get<std::string>()
                                     : m.get<std::string>());
  }
  md.set("tokenizer.ggml.model", "gpt2");
  md.set("tokenizer.ggml.pre", "llama-bpe");
  md.set("tokenizer.ggml.tokens", Value::array(ValueType::kString, std::move(tokens)));
  md.set("tokenizer.ggml.token_type", Value::array(ValueType::kInt32, std::move(token_types)));
  md.set("tokenizer.ggml.merges", Value::array(ValueType::kString, std::move(merges)));
  md.set("tokenizer.ggml.bos_token_id", config.at("bos_token_id").get<uint32_t>());
  md.set("tokenizer.ggml.eos_token_id", config.at("eos_token_id").get<uint32_t>());
  md.set("tokenizer.ggml.add_bos_token", true);
}

struct SmallLlama {
  TempDir dir;
  std::string f32_path;
  nlohmann::json reference;
};

// Built on first use, shared by every test of the run.
inline const SmallLlama& small_llama() {
  static const std::unique_ptr<SmallLlama> fixture = [] {
    auto s = std::make_unique<SmallLlama>();
    const std::string dir = corral::testing::testdata_path("reference/small-llama-256");
    const model::testing::HfCheckpoint ck(dir);
    s->reference = ck.reference;
    ml::gguf::Writer w(ck.file.metadata());
    w.metadata().set("general.name", "small-llama-256");
    w.metadata().set("general.file_type", uint32_t{0});
    add_bpe_tokenizer(w.metadata(), dir, ck.config);
    for (const auto& t : ck.file.tensors()) {
      w.add_tensor(t.name, t.dtype, std::span<const int64_t>(t.ne.data(), t.n_dims), t.bytes());
    }
    s->f32_path = s->dir.file("small-llama-256-f32.gguf");
    w.write(s->f32_path);
    return s;
  }();
  return *fixture;
}

inline size_t argmax(const float* x, size_t n) {
  return static_cast<size_t>(std::max_element(x, x + n) - x);
}

// Gap between the best and second-best value.
inline float top2_margin(const float* x, size_t n) {
  float a = -INFINITY, b = -INFINITY;
  for (size_t i = 0; i < n; ++i) {
    if (x[i] > a) {
      b = a;
      a = x[i];
    } else if (x[i] > b) {
      b = x[i];
    }
  }
  return a - b;
}

}  // namespace corral::convert::testing
