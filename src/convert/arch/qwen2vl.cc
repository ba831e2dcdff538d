// Qwen2VLForConditionalGeneration -> one GGUF "qwen2vl": the text model as llama.cpp's
// convert_hf_to_gguf.py Qwen2VLModel writes it (qwen2's keys and tensors plus
// rope.dimension_sections), and the vision tower with the keys and tensor names of the mmproj
// file its Qwen2VLVisionModel writes (clip.* keys, v.* and mm.* tensors: the fused qkv split in
// three, the Conv3d patch embedding split into its two temporal kernel slices), so that the
// same model class reads one file or llama.cpp's two.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <unordered_set>

#include "convert/arch/arch.h"

namespace corral::convert::arch {

namespace {

using nlohmann::json;

// The text model's config: text_config (transformers 5) over the top-level keys (older files
// keep them at the top). Older files name the M-RoPE scaling {"type": "mrope"}; its rotation
// is the default one, by sections.
HfConfig text_config(const HfConfig& c) {
  json t = c.json();
  if (const auto it = c.json().find("text_config"); it != c.json().end() && it->is_object()) {
    for (const auto& [k, v] : it->items()) t[k] = v;
  }
  for (const char* key : {"rope_parameters", "rope_scaling"}) {
    const auto it = t.find(key);
    if (it == t.end() || !it->is_object()) continue;
    json& r = *it;
    const auto kind = r.contains("rope_type") ? r["rope_type"] : r.value("type", json());
    if (kind == "mrope") r["rope_type"] = "default";
  }
  return HfConfig(std::move(t), c.path());
}

// mrope_section, padded to the four sections llama.cpp writes.
std::vector<int32_t> mrope_sections(const HfConfig& text) {
  const json& rope = text.rope();
  const auto it = rope.find("mrope_section");
  if (it == rope.end() || !it->is_array() || it->empty() || it->size() > 4) {
    throw std::runtime_error(text.path() +
                             ": no rope mrope_section (1 to 4 integers) for the text model");
  }
  std::vector<int32_t> s;
  for (const json& v : *it) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > 4096) {
      throw std::runtime_error(text.path() + ": mrope_section holds " + v.dump() +
                               ", expected a small non-negative integer");
    }
    s.push_back(v.get<int32_t>());
  }
  s.resize(4, 0);
  return s;
}

const json& vision_json(const HfConfig& c) {
  const auto it = c.json().find("vision_config");
  if (it == c.json().end() || !it->is_object()) {
    throw std::runtime_error(c.path() + ": no vision_config object");
  }
  return *it;
}

struct VisionShape {
  int64_t n_embd, n_head, n_layer, n_ff, patch, merge, temporal, channels, n_embd_text;
};

VisionShape vision_shape(const HfConfig& c) {
  const HfConfig v(vision_json(c), c.path() + " (vision_config)");
  const HfConfig text = text_config(c);
  VisionShape s;
  s.n_embd = v.get_int("embed_dim");
  s.n_head = v.get_int("num_heads");
  s.n_layer = v.get_int("depth");
  s.n_ff = static_cast<int64_t>(static_cast<double>(s.n_embd) * v.get_number("mlp_ratio"));
  s.patch = v.find_int("patch_size").value_or(14);
  s.merge = v.find_int("spatial_merge_size").value_or(2);
  s.temporal = v.find_int("temporal_patch_size").value_or(2);
  s.channels = v.find_int("in_channels").value_or(v.find_int("in_chans").value_or(3));
  s.n_embd_text = text.get_int("hidden_size");
  if (s.n_embd <= 0 || s.n_head <= 0 || s.n_embd % s.n_head != 0 || s.n_layer <= 0 ||
      s.n_layer > 1000 || s.n_ff <= 0 || s.patch <= 0 || s.merge <= 0 || s.channels <= 0 ||
      s.n_embd_text <= 0) {
    throw std::runtime_error(v.path() +
                             ": embed_dim, num_heads (dividing embed_dim), depth, mlp_ratio, "
                             "patch_size, spatial_merge_size and in_channels must be positive");
  }
  // llama.cpp's graph (and ours) adds the two temporal kernel slices: a still image is its
  // frame twice.
  if (s.temporal != 2) {
    throw std::runtime_error(v.path() + ": temporal_patch_size " + std::to_string(s.temporal) +
                             " is not supported (2)");
  }
  const std::string act = vision_json(c).value("hidden_act", "quick_gelu");
  if (act != "quick_gelu") {
    throw std::runtime_error(v.path() + ": hidden_act '" + act +
                             "' is not supported (Qwen2-VL's vision MLP uses quick_gelu)");
  }
  return s;
}

ml::DType source_dtype(const SafetensorsTensor& t) {
  if (t.dtype == "F32") return ml::DType::F32;
  if (t.dtype == "F16") return ml::DType::F16;
  if (t.dtype == "BF16") return ml::DType::BF16;
  throw std::runtime_error(*t.file + ": tensor '" + t.name + "' has dtype " + t.dtype +
                           ", which cannot be converted (supported: F32, F16, BF16)");
}

std::string shape_string(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// A part of a checkpoint tensor: `count` values from `offset`, every `stride` values a run of
// `run` (the whole tensor: run == stride == count).
TensorSource slice(const SafetensorsTensor& t, std::string gguf, std::vector<int64_t> ne,
                   int64_t offset, int64_t run, int64_t stride) {
  TensorSource s;
  s.name = std::move(gguf);
  s.ne = std::move(ne);
  s.dtype = source_dtype(t);
  int64_t count = 1;
  for (int64_t d : s.ne) count *= d;
  s.read_f32 = [&t, offset, run, stride, count](float* out) {
    std::vector<float> all(static_cast<size_t>(t.n_elements()));
    t.read_f32(all.data());
    for (int64_t i = 0; i < count; ++i) {
      out[i] = all[static_cast<size_t>(offset + (i / run) * stride + i % run)];
    }
  };
  return s;
}

// The vision tower's tensors under llama.cpp's mmproj names (gguf-py tensor_mapping: V_ENC_*,
// V_POST_NORM, V_MMPROJ; clip-impl.h TN_*).
std::vector<TensorSource> vision_tensors(const HfConfig& c, const Checkpoint& checkpoint) {
  const VisionShape v = vision_shape(c);
  const int64_t e = v.n_embd, ff = v.n_ff, merged = e * v.merge * v.merge;
  std::vector<TensorSource> out;
  std::unordered_set<std::string> consumed;
  auto want = [&](const std::string& hf, std::vector<int64_t> shape) -> const SafetensorsTensor& {
    consumed.insert(hf);
    const SafetensorsTensor* t = checkpoint.find(hf);
    if (t == nullptr)
      throw std::runtime_error(c.path() + ": the checkpoint has no tensor '" + hf + "'");
    if (t->shape != shape) {
      throw std::runtime_error(*t->file + ": tensor '" + hf + "' has shape " +
                               shape_string(t->shape) + ", config.json implies " +
                               shape_string(shape));
    }
    return *t;
  };
  auto whole = [&](const std::string& hf, const std::string& gguf, std::vector<int64_t> shape) {
    const SafetensorsTensor& t = want(hf, shape);
    int64_t n = t.n_elements();
    out.push_back(slice(t, gguf, {shape.rbegin(), shape.rend()}, 0, n, n));
  };

  // Conv3d [n_embd, c, t, p, p] -> per frame t a Conv2d kernel [p, p, c, n_embd] (ggml order).
  const SafetensorsTensor& patch =
      want("visual.patch_embed.proj.weight", {e, v.channels, v.temporal, v.patch, v.patch});
  const int64_t pp = v.patch * v.patch;
  for (int64_t f = 0; f < v.temporal; ++f) {
    out.push_back(slice(patch, f == 0 ? "v.patch_embd.weight" : "v.patch_embd.weight.1",
                        {v.patch, v.patch, v.channels, e}, f * pp, pp, v.temporal * pp));
  }
  for (int64_t il = 0; il < v.n_layer; ++il) {
    const std::string hf = "visual.blocks." + std::to_string(il) + ".";
    const std::string g = "v.blk." + std::to_string(il) + ".";
    // qkv rows are q, then k, then v.
    const SafetensorsTensor& qkv_w = want(hf + "attn.qkv.weight", {3 * e, e});
    const SafetensorsTensor& qkv_b = want(hf + "attn.qkv.bias", {3 * e});
    const char* parts[] = {"attn_q", "attn_k", "attn_v"};
    for (int64_t p = 0; p < 3; ++p) {
      out.push_back(slice(qkv_w, g + parts[p] + ".weight", {e, e}, p * e * e, e * e, e * e));
      out.push_back(slice(qkv_b, g + parts[p] + ".bias", {e}, p * e, e, e));
    }
    whole(hf + "attn.proj.weight", g + "attn_out.weight", {e, e});
    whole(hf + "attn.proj.bias", g + "attn_out.bias", {e});
    whole(hf + "norm1.weight", g + "ln1.weight", {e});
    whole(hf + "norm1.bias", g + "ln1.bias", {e});
    whole(hf + "norm2.weight", g + "ln2.weight", {e});
    whole(hf + "norm2.bias", g + "ln2.bias", {e});
    whole(hf + "mlp.fc1.weight", g + "ffn_up.weight", {ff, e});
    whole(hf + "mlp.fc1.bias", g + "ffn_up.bias", {ff});
    whole(hf + "mlp.fc2.weight", g + "ffn_down.weight", {e, ff});
    whole(hf + "mlp.fc2.bias", g + "ffn_down.bias", {e});
  }
  whole("visual.merger.ln_q.weight", "v.post_ln.weight", {e});
  whole("visual.merger.ln_q.bias", "v.post_ln.bias", {e});
  whole("visual.merger.mlp.0.weight", "mm.0.weight", {merged, merged});
  whole("visual.merger.mlp.0.bias", "mm.0.bias", {merged});
  whole("visual.merger.mlp.2.weight", "mm.2.weight", {v.n_embd_text, merged});
  whole("visual.merger.mlp.2.bias", "mm.2.bias", {v.n_embd_text});

  for (const SafetensorsTensor* t : checkpoint.tensors()) {
    if (t->name.starts_with("visual.") && !consumed.contains(t->name)) {
      throw std::runtime_error(*t->file + ": tensor '" + t->name +
                               "' is not part of a Qwen2-VL vision tower this converter knows");
    }
  }
  return out;
}

json read_preprocessor(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / "preprocessor_config.json").string();
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open (a vision model needs it)");
  try {
    json j = json::parse(in);
    if (!j.is_object()) throw std::runtime_error(path + ": not a JSON object");
    return j;
  } catch (const json::exception& e) {
    throw std::runtime_error(path + ": not valid JSON: " + e.what());
  }
}

}  // namespace

Arch qwen2vl() {
  Arch a;
  a.gguf_name = "qwen2vl";
  a.set_parameters = [](const HfConfig& c, const QuantType& type, ml::gguf::Metadata& md) {
    const HfConfig text = text_config(c);
    set_text_parameters(text, "qwen2vl", type, md);
    std::vector<ml::gguf::Value> sections;
    for (int32_t s : mrope_sections(text)) sections.emplace_back(s);
    md.set("qwen2vl.rope.dimension_sections",
           ml::gguf::Value::array(ml::gguf::ValueType::kInt32, std::move(sections)));

    // MmprojModel.set_gguf_parameters and Qwen2VLVisionModel's additions.
    const VisionShape v = vision_shape(c);
    const auto u32 = [](int64_t x) { return static_cast<uint32_t>(x); };
    md.set("clip.projector_type", "qwen2vl_merger");
    md.set("clip.has_vision_encoder", true);
    md.set("clip.vision.projection_dim", u32(v.n_embd_text));
    md.set("clip.vision.image_size",
           u32(HfConfig(vision_json(c), c.path()).find_int("image_size").value_or(560)));
    md.set("clip.vision.patch_size", u32(v.patch));
    md.set("clip.vision.embedding_length", u32(v.n_embd));
    // llama.cpp writes vision_config.hidden_size (the merger's output width) here; clip.cpp
    // sizes the MLP from its tensors. This is the MLP's real width.
    md.set("clip.vision.feed_forward_length", u32(v.n_ff));
    md.set("clip.vision.block_count", u32(v.n_layer));
    md.set("clip.vision.attention.head_count", u32(v.n_head));
    // transformers fixes the vision LayerNorms' eps (Qwen2VLVisionBlock, Qwen2VLPatchMerger).
    md.set("clip.vision.attention.layer_norm_epsilon", 1e-6f);
    md.set("clip.vision.spatial_merge_size", u32(v.merge));
  };
  a.tensors = [](const HfConfig& c, const Checkpoint& checkpoint) {
    const HfConfig text = text_config(c);
    Layout l = decoder_layout(text, /*qkv_bias=*/true);
    l.ignored_prefixes = {"visual."};
    std::vector<TensorSource> out = map_tensors(text, checkpoint, l);
    std::vector<TensorSource> vision = vision_tensors(c, checkpoint);
    for (TensorSource& t : vision) out.push_back(std::move(t));
    return out;
  };
  // Qwen2VLImageProcessor's settings (preprocessor_config.json): clip.vision.image_mean/std and
  // the pixel budget (min_pixels/max_pixels, or size.shortest_edge/longest_edge in newer files).
  a.set_vision = [](const std::string& dir, const HfConfig& c, ml::gguf::Metadata& md) {
    const json p = read_preprocessor(dir);
    const std::string path = (std::filesystem::path(dir) / "preprocessor_config.json").string();
    const VisionShape v = vision_shape(c);
    auto floats = [&](const char* key, std::vector<double> fallback) {
      std::vector<double> x = fallback;
      if (p.contains(key)) {
        if (!p[key].is_array() || p[key].size() != 3) {
          throw std::runtime_error(path + ": " + key + " must be 3 numbers");
        }
        x.clear();
        for (const json& e : p[key]) {
          if (!e.is_number()) throw std::runtime_error(path + ": " + key + " must be 3 numbers");
          x.push_back(e.get<double>());
        }
      }
      std::vector<ml::gguf::Value> items;
      for (double d : x) items.emplace_back(static_cast<float>(d));
      return ml::gguf::Value::array(ml::gguf::ValueType::kFloat32, std::move(items));
    };
    md.set("clip.vision.image_mean", floats("image_mean", {0.48145466, 0.4578275, 0.40821073}));
    md.set("clip.vision.image_std", floats("image_std", {0.26862954, 0.26130258, 0.27577711}));
    auto integer = [&](std::initializer_list<std::pair<const char*, const char*>> keys,
                       int64_t fallback) {
      for (const auto& [outer, inner] : keys) {
        const json* x = p.contains(outer) ? &p[outer] : nullptr;
        if (x && inner) x = x->is_object() && x->contains(inner) ? &(*x)[inner] : nullptr;
        if (x == nullptr || x->is_null()) continue;
        if (!x->is_number_integer() || x->get<int64_t>() <= 0 ||
            x->get<int64_t>() > int64_t{1} << 31) {
          throw std::runtime_error(path + ": " + outer + (inner ? std::string(".") + inner : "") +
                                   " is " + x->dump() + ", expected a positive integer");
        }
        return x->get<int64_t>();
      }
      return fallback;
    };
    const int64_t min_pixels =
        integer({{"min_pixels", nullptr}, {"size", "shortest_edge"}}, 56 * 56);
    const int64_t max_pixels =
        integer({{"max_pixels", nullptr}, {"size", "longest_edge"}}, 28 * 28 * 1280);
    if (min_pixels > max_pixels) {
      throw std::runtime_error(path + ": min_pixels " + std::to_string(min_pixels) +
                               " exceeds max_pixels " + std::to_string(max_pixels));
    }
    md.set("clip.vision.image_min_pixels", static_cast<uint32_t>(min_pixels));
    md.set("clip.vision.image_max_pixels", static_cast<uint32_t>(max_pixels));
    // The processor must cut the patches the tower was trained on.
    const std::pair<const char*, int64_t> agree[] = {
        {"patch_size", v.patch}, {"merge_size", v.merge}, {"temporal_patch_size", v.temporal}};
    for (const auto& [key, model] : agree) {
      const int64_t x = integer({{key, nullptr}}, model);
      if (x != model) {
        throw std::runtime_error(path + ": " + key + " " + std::to_string(x) +
                                 " differs from the vision tower's " + std::to_string(model));
      }
    }
  };
  a.vocab_size = [](const HfConfig& c) { return text_config(c).get_int("vocab_size"); };
  return a;
}

}  // namespace corral::convert::arch
