// Hostile-input tests: each case damages the bytes of a real GGUF (stories260K-f32.gguf) in one
// way and checks that the reader refuses it with a FormatError naming the file and an offset,
// without crashing, hanging or allocating what the damaged counts claim (CI runs these under
// ASan/UBSan). Section offsets are found by an independent walk of the file, not by the reader.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>

#include "ml/gguf/reader.h"
#include "testdata.h"

namespace corral::ml::gguf {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

template <class T>
T get(const Bytes& b, size_t at) {
  T x;
  std::memcpy(&x, b.data() + at, sizeof(T));
  return x;
}
template <class T>
void put(Bytes& b, size_t at, T x) {
  std::memcpy(b.data() + at, &x, sizeof(T));
}

// Where each section of the file starts, from a walk that knows only the value types present
// in the fixture (scalars, strings, arrays of those).
struct Layout {
  struct Kv {
    std::string key;
    size_t start, type_at, value_at;
    uint32_t type;
  };
  struct Info {
    std::string name;
    size_t start, dims_at, type_at, offset_at;
    uint32_t n_dims;
  };
  std::vector<Kv> kvs;
  std::vector<Info> infos;
  size_t infos_end = 0, data_start = 0;

  const Kv& kv(const std::string& key) const {
    for (const Kv& k : kvs) {
      if (k.key == key) return k;
    }
    throw std::logic_error("fixture lacks " + key);
  }
  const Info& info(const std::string& name) const {
    for (const Info& i : infos) {
      if (i.name == name) return i;
    }
    throw std::logic_error("fixture lacks " + name);
  }
};

size_t skip_value(const Bytes& b, size_t p, uint32_t type) {
  static const size_t kSizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
  if (type == 8) return p + 8 + get<uint64_t>(b, p);
  if (type == 9) {
    const uint32_t et = get<uint32_t>(b, p);
    const uint64_t n = get<uint64_t>(b, p + 4);
    p += 12;
    for (uint64_t i = 0; i < n; ++i) p = skip_value(b, p, et);
    return p;
  }
  return p + kSizes[type];
}

Layout walk(const Bytes& b) {
  Layout l;
  const uint64_t n_tensors = get<uint64_t>(b, 8);
  const uint64_t n_kv = get<uint64_t>(b, 16);
  size_t p = 24;
  for (uint64_t i = 0; i < n_kv; ++i) {
    Layout::Kv kv;
    kv.start = p;
    const uint64_t len = get<uint64_t>(b, p);
    kv.key.assign(reinterpret_cast<const char*>(b.data() + p + 8), len);
    kv.type_at = p + 8 + len;
    kv.type = get<uint32_t>(b, kv.type_at);
    kv.value_at = kv.type_at + 4;
    p = skip_value(b, kv.value_at, kv.type);
    l.kvs.push_back(kv);
  }
  for (uint64_t i = 0; i < n_tensors; ++i) {
    Layout::Info t;
    t.start = p;
    const uint64_t len = get<uint64_t>(b, p);
    t.name.assign(reinterpret_cast<const char*>(b.data() + p + 8), len);
    t.dims_at = p + 8 + len;
    t.n_dims = get<uint32_t>(b, t.dims_at);
    t.type_at = t.dims_at + 4 + 8 * t.n_dims;
    t.offset_at = t.type_at + 4;
    p = t.offset_at + 8;
    l.infos.push_back(t);
  }
  l.infos_end = p;
  l.data_start = (p + 31) / 32 * 32;
  return l;
}

struct Corruption {
  std::string name;
  std::function<void(Bytes&, const Layout&)> damage;
};

void rename_key(Bytes& b, const Layout::Kv& kv, const std::string& to) {
  ASSERT_EQ(kv.key.size(), to.size());
  std::memcpy(b.data() + kv.start + 8, to.data(), to.size());
}

std::vector<Corruption> corruptions(const Layout& l) {
  auto truncate_at = [](size_t n) { return [n](Bytes& b, const Layout&) { b.resize(n); }; };
  std::vector<Corruption> c = {
      {"EmptyFile", truncate_at(0)},
      {"TruncatedInMagic", truncate_at(2)},
      {"BadMagic", [](Bytes& b, const Layout&) { b[3] = 'X'; }},
      {"TruncatedInVersion", truncate_at(6)},
      {"Version1", [](Bytes& b, const Layout&) { put<uint32_t>(b, 4, 1); }},
      {"Version4", [](Bytes& b, const Layout&) { put<uint32_t>(b, 4, 4); }},
      {"BigEndianVersion", [](Bytes& b, const Layout&) { put<uint32_t>(b, 4, 0x03000000); }},
      {"TruncatedInTensorCount", truncate_at(12)},
      {"TruncatedInKvCount", truncate_at(20)},
      {"HugeKvCount", [](Bytes& b, const Layout&) { put<uint64_t>(b, 16, 1ull << 60); }},
      {"HugeTensorCount", [](Bytes& b, const Layout&) { put<uint64_t>(b, 8, ~0ull); }},
      {"KvCountOneTooMany",
       [](Bytes& b, const Layout&) { put<uint64_t>(b, 16, get<uint64_t>(b, 16) + 1); }},
      {"TensorCountOneTooMany",
       [](Bytes& b, const Layout&) { put<uint64_t>(b, 8, get<uint64_t>(b, 8) + 1); }},
      {"TruncatedAfterHeader", truncate_at(24)},
      {"TruncatedInFirstKey", [](Bytes& b, const Layout& l) { b.resize(l.kvs[0].start + 12); }},
      {"TruncatedInStringArray",
       [](Bytes& b, const Layout& l) { b.resize(l.kvs[0].value_at + 200); }},
      {"TruncatedInScalarValue",
       [](Bytes& b, const Layout& l) { b.resize(l.kv("llama.block_count").value_at + 2); }},
      {"HugeKeyLength",
       [](Bytes& b, const Layout& l) { put<uint64_t>(b, l.kvs[1].start, 1ull << 62); }},
      {"EmptyKey", [](Bytes& b, const Layout& l) { put<uint64_t>(b, l.kvs[0].start, 0); }},
      {"HugeStringValueLength",
       [](Bytes& b, const Layout& l) {
         put<uint64_t>(b, l.kv("general.name").value_at, 0xFFFFFFFFFFFFull);
       }},
      {"HugeStringLengthInArray",
       [](Bytes& b, const Layout& l) { put<uint64_t>(b, l.kvs[0].value_at + 12, ~0ull >> 1); }},
      {"HugeArrayCount",
       [](Bytes& b, const Layout& l) {
         put<uint64_t>(b, l.kv("tokenizer.ggml.scores").value_at + 4, 1ull << 61);
       }},
      {"ArrayCountOneTooMany",
       [](Bytes& b, const Layout& l) {
         const size_t at = l.kv("tokenizer.ggml.token_type").value_at + 4;
         put<uint64_t>(b, at, get<uint64_t>(b, at) + 2000);
       }},
      {"UnknownValueType",
       [](Bytes& b, const Layout& l) { put<uint32_t>(b, l.kv("general.name").type_at, 13); }},
      {"UnknownArrayElementType",
       [](Bytes& b, const Layout& l) {
         put<uint32_t>(b, l.kv("tokenizer.ggml.scores").value_at, 0x7FFFFFFF);
       }},
      {"DuplicateKey",
       [](Bytes& b, const Layout& l) {
         rename_key(b, l.kv("llama.context_length"), "general.architecture");
       }},
      {"AlignmentNotPowerOfTwo",  // llama.block_count (5) renamed to general.alignment
       [](Bytes& b, const Layout& l) {
         rename_key(b, l.kv("llama.block_count"), "general.alignment");
       }},
      {"AlignmentZero",
       [](Bytes& b, const Layout& l) {
         rename_key(b, l.kv("llama.block_count"), "general.alignment");
         put<uint32_t>(b, l.kv("llama.block_count").value_at, 0);
       }},
      {"AlignmentWrongType",
       [](Bytes& b, const Layout& l) {
         rename_key(b, l.kv("llama.block_count"), "general.alignment");
         put<uint32_t>(b, l.kv("llama.block_count").type_at, 5);  // i32
       }},
      {"AlignmentMovesDataPastEnd",  // 64 shifts the data start by 32 bytes
       [](Bytes& b, const Layout& l) {
         rename_key(b, l.kv("llama.block_count"), "general.alignment");
         put<uint32_t>(b, l.kv("llama.block_count").value_at, 64);
       }},
      {"TruncatedAtFirstTensorInfo", [](Bytes& b, const Layout& l) { b.resize(l.infos[0].start); }},
      {"TruncatedInTensorShape",
       [](Bytes& b, const Layout& l) { b.resize(l.infos[2].dims_at + 9); }},
      {"TruncatedInTensorOffset",
       [](Bytes& b, const Layout& l) { b.resize(l.infos.back().offset_at + 3); }},
      {"HugeTensorNameLength",
       [](Bytes& b, const Layout& l) { put<uint64_t>(b, l.infos[5].start, 1ull << 40); }},
      {"DuplicateTensorName",
       [](Bytes& b, const Layout& l) {
         const Layout::Info& k = l.info("blk.0.attn_k.weight");
         b[k.start + 8 + 11] = 'q';  // blk.0.attn_q.weight already exists
       }},
      {"FiveDims", [](Bytes& b, const Layout& l) { put<uint32_t>(b, l.infos[0].dims_at, 5); }},
      {"HugeDims", [](Bytes& b, const Layout& l) { put<uint32_t>(b, l.infos[0].dims_at, ~0u); }},
      {"ZeroDim", [](Bytes& b, const Layout& l) { put<int64_t>(b, l.infos[0].dims_at + 4, 0); }},
      {"NegativeDim",
       [](Bytes& b, const Layout& l) { put<int64_t>(b, l.infos[0].dims_at + 12, -512); }},
      {"ElementCountOverflows",
       [](Bytes& b, const Layout& l) {
         put<int64_t>(b, l.infos[0].dims_at + 4, int64_t{1} << 40);
         put<int64_t>(b, l.infos[0].dims_at + 12, int64_t{1} << 40);
       }},
      {"ByteSizeOverflows",  // 2^62 f32 elements fit int64, their 2^64 bytes do not
       [](Bytes& b, const Layout& l) {
         put<int64_t>(b, l.infos[0].dims_at + 4, int64_t{1} << 31);
         put<int64_t>(b, l.infos[0].dims_at + 12, int64_t{1} << 31);
       }},
      {"ShapeLargerThanFile",
       [](Bytes& b, const Layout& l) { put<int64_t>(b, l.infos[0].dims_at + 12, 1 << 20); }},
      {"UnknownDtype", [](Bytes& b, const Layout& l) { put<uint32_t>(b, l.infos[1].type_at, 99); }},
      {"UnsupportedIqDtype",
       [](Bytes& b, const Layout& l) { put<uint32_t>(b, l.infos[1].type_at, 16); }},
      {"RowNotMultipleOfBlock",  // q4_K blocks hold 256 elements, the row has 64
       [](Bytes& b, const Layout& l) { put<uint32_t>(b, l.infos[0].type_at, 12); }},
      {"OffsetOutOfRange",
       [](Bytes& b, const Layout& l) { put<uint64_t>(b, l.infos[3].offset_at, 1ull << 62); }},
      {"OffsetWraps",
       [](Bytes& b, const Layout& l) { put<uint64_t>(b, l.infos[3].offset_at, ~0ull - 31); }},
      {"DataRunsPastEnd",
       [](Bytes& b, const Layout& l) {
         put<uint64_t>(b, l.infos.back().offset_at, b.size() - l.data_start - 64);
       }},
      {"MisalignedOffset",
       [](Bytes& b, const Layout& l) {
         const size_t at = l.infos[4].offset_at;
         put<uint64_t>(b, at, get<uint64_t>(b, at) + 4);
       }},
      {"OverlappingTensors",
       [](Bytes& b, const Layout& l) {
         put<uint64_t>(b, l.infos[2].offset_at, get<uint64_t>(b, l.infos[1].offset_at));
       }},
      {"TruncatedAfterTensorInfos", [](Bytes& b, const Layout& l) { b.resize(l.infos_end); }},
      {"TruncatedInAlignmentPadding", [](Bytes& b, const Layout& l) { b.resize(l.infos_end + 1); }},
      {"TruncatedAtDataStart", [](Bytes& b, const Layout& l) { b.resize(l.data_start); }},
      {"TruncatedInFirstTensorData",
       [](Bytes& b, const Layout& l) { b.resize(l.data_start + 100); }},
      {"TruncatedInLastTensorData", [](Bytes& b, const Layout& l) { b.resize(b.size() - 1); }},
  };
  // Truncation at every key/value and tensor-info boundary.
  for (size_t i = 1; i < l.kvs.size(); ++i) {
    c.push_back({"TruncatedAtKv" + std::to_string(i), truncate_at(l.kvs[i].start)});
  }
  for (size_t i = 1; i < l.infos.size(); i += 7) {
    c.push_back({"TruncatedAtTensorInfo" + std::to_string(i), truncate_at(l.infos[i].start)});
  }
  return c;
}

class GgufCorruption : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    original_ =
        new Bytes(read_bytes(testing::testdata_path("tinystories260k/stories260K-f32.gguf")));
  }
  static void TearDownTestSuite() {
    delete original_;
    original_ = nullptr;
  }
  static Bytes* original_;
};
Bytes* GgufCorruption::original_ = nullptr;

TEST_F(GgufCorruption, FixtureLayoutIsWhatTheCasesAssume) {
  ASSERT_GT(original_->size(), 1000000u);
  const Layout l = walk(*original_);
  EXPECT_EQ(l.kvs.size(), 19u);
  EXPECT_EQ(l.infos.size(), 48u);
  EXPECT_EQ(l.infos[0].name, "token_embd.weight");
  EXPECT_NE(l.infos_end, l.data_start);  // so that the padding case truncates inside padding
  EXPECT_NO_THROW(File::parse(*original_));
}

TEST_F(GgufCorruption, EveryCorruptionThrowsFormatErrorWithOffset) {
  const Layout l = walk(*original_);
  const std::vector<Corruption> cases = corruptions(l);
  EXPECT_GE(cases.size(), 60u);
  for (const Corruption& c : cases) {
    SCOPED_TRACE(c.name);
    Bytes b = *original_;
    c.damage(b, l);
    ASSERT_FALSE(b == *original_) << "case did not change the file";
    try {
      File::parse(b, "corrupt-" + c.name + ".gguf");
      ADD_FAILURE() << c.name << ": parsed without error";
    } catch (const FormatError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("corrupt-" + c.name + ".gguf"), std::string::npos) << msg;
      EXPECT_NE(msg.find("byte offset " + std::to_string(e.offset())), std::string::npos) << msg;
      EXPECT_LE(e.offset(), original_->size()) << msg;
    }
  }
}

TEST_F(GgufCorruption, ErrorsSayWhatIsWrong) {
  const Layout l = walk(*original_);
  const auto message_of = [&](const std::string& name) -> std::string {
    for (const Corruption& c : corruptions(l)) {
      if (c.name != name) continue;
      Bytes b = *original_;
      c.damage(b, l);
      try {
        File::parse(b, "x.gguf");
      } catch (const FormatError& e) {
        return e.what();
      }
      return "no error";
    }
    return "no such case";
  };
  EXPECT_EQ(message_of("BadMagic"),
            "x.gguf: at byte offset 0: bad magic 'GGUX', expected 'GGUF' (not a GGUF file)");
  EXPECT_NE(message_of("Version1").find("at byte offset 4: unsupported version 1"),
            std::string::npos);
  EXPECT_NE(message_of("DuplicateKey").find("duplicate metadata key 'general.architecture'"),
            std::string::npos);
  EXPECT_NE(message_of("AlignmentNotPowerOfTwo").find("general.alignment 5 is not a power of two"),
            std::string::npos);
  EXPECT_NE(message_of("FiveDims").find("tensor 'token_embd.weight' has 5 dimensions"),
            std::string::npos);
  EXPECT_NE(message_of("UnknownDtype").find("unknown or unsupported dtype 99"), std::string::npos);
  EXPECT_NE(message_of("OverlappingTensors").find("overlaps tensor"), std::string::npos);
  EXPECT_NE(message_of("MisalignedOffset").find("not a multiple of the alignment 32"),
            std::string::npos);
  EXPECT_NE(message_of("HugeArrayCount").find("tokenizer.ggml.scores"), std::string::npos);
  EXPECT_NE(message_of("TruncatedInLastTensorData").find("lies outside the file"),
            std::string::npos);
  const std::string info_offset = std::to_string(l.infos[4].offset_at);
  EXPECT_NE(message_of("MisalignedOffset").find("byte offset " + info_offset), std::string::npos);
}

// Synthetic files for what a damaged real file cannot easily show.
Bytes header(uint64_t n_tensors, uint64_t n_kv) {
  Bytes b = {'G', 'G', 'U', 'F', 3, 0, 0, 0};
  b.resize(24);
  put(b, 8, n_tensors);
  put(b, 16, n_kv);
  return b;
}
void append_u32(Bytes& b, uint32_t x) {
  b.resize(b.size() + 4);
  put(b, b.size() - 4, x);
}
void append_u64(Bytes& b, uint64_t x) {
  b.resize(b.size() + 8);
  put(b, b.size() - 8, x);
}
void append_str(Bytes& b, const std::string& s) {
  append_u64(b, s.size());
  b.insert(b.end(), s.begin(), s.end());
}

TEST(GgufCorruptionSynthetic, DeeplyNestedArraysAreRejected) {
  Bytes b = header(0, 1);
  append_str(b, "deep");
  append_u32(b, 9);
  for (int i = 0; i < 100000; ++i) {
    append_u32(b, 9);
    append_u64(b, 1);
  }
  try {
    File::parse(b, "deep.gguf");
    FAIL() << "parsed";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("nests arrays deeper than"), std::string::npos);
  }
}

TEST(GgufCorruptionSynthetic, NestedArraysWithinLimitParse) {
  Bytes b = header(0, 1);
  append_str(b, "nested");
  append_u32(b, 9);
  for (int i = 0; i < kMaxArrayDepth - 1; ++i) {
    append_u32(b, 9);
    append_u64(b, 1);
  }
  append_u32(b, 4);
  append_u64(b, 1);
  append_u32(b, 42);
  const File f = File::parse(b);
  const Value* v = &f.metadata().at("nested");
  for (int i = 0; i < kMaxArrayDepth; ++i) v = &v->as_array().items.at(0);
  EXPECT_EQ(v->as<uint32_t>(), 42u);
}

TEST(GgufCorruptionSynthetic, InvalidBoolByteIsRejected) {
  Bytes b = header(0, 1);
  append_str(b, "flag");
  append_u32(b, 7);
  b.push_back(2);
  EXPECT_THROW(File::parse(b), FormatError);
  b.back() = 1;
  EXPECT_TRUE(File::parse(b).metadata().get_bool("flag"));
}

TEST(GgufCorruptionSynthetic, EmptyArrayOfHugeCountClaimsNothing) {
  // A billion-item array of empty strings would need 8 GB of lengths: refused up front.
  Bytes b = header(0, 1);
  append_str(b, "many");
  append_u32(b, 9);
  append_u32(b, 8);
  append_u64(b, 1000000000);
  b.resize(b.size() + 64);
  EXPECT_THROW(File::parse(b), FormatError);
}

}  // namespace
}  // namespace corral::ml::gguf
