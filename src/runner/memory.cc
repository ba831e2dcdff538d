#include "runner/memory.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <limits>

namespace corral::runner {
namespace {

// A number from the start of a /sys or /proc file ("max" and the like: nullopt).
std::optional<uint64_t> read_u64(const char* path) {
  std::ifstream in(path);
  uint64_t v = 0;
  if (in >> v) return v;
  return std::nullopt;
}

}  // namespace

std::optional<double> parse_number(std::string_view s) {
  if (s.empty()) return std::nullopt;
  const std::string text(s);
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size()) return std::nullopt;
  return v;
}

uint64_t MemoryNeeds::bytes(int64_t ctx) const {
  const auto cells = static_cast<uint64_t>(slot_cells_for(std::max<int64_t>(ctx, 1))) *
                     static_cast<uint64_t>(num_parallel);
  return weights + packed + fixed + images + cells * per_cell;
}

int64_t MemoryNeeds::fit(uint64_t budget) const {
  const uint64_t base = weights + packed + fixed + images;
  if (budget <= base || per_cell == 0) return 0;
  const uint64_t cells = (budget - base) / per_cell / static_cast<uint64_t>(num_parallel);
  if (cells >= static_cast<uint64_t>(slot_cells_for(num_ctx))) return num_ctx;
  return static_cast<int64_t>(cells) / kSlotAlign * kSlotAlign;
}

// The compute buffers are the planner's live activations for a batch of num_batch tokens (a
// handful of [n_embd] rows per token, counted generously as 16), the embeddings of every row (one
// more) and the logits of one output row per sequence; the attention mask (f32 [n_kv, n_tokens])
// grows with the cells attended, so it is counted per cell with the KV cache.
MemoryNeeds estimate_memory(const ml::gguf::File& file, const ml::gguf::File* projector,
                            const model::Model& model, const LoadShape& shape) {
  const model::Config& c = model.config();
  MemoryNeeds n;
  n.num_ctx = shape.num_ctx;
  n.num_parallel = std::max(1, shape.num_parallel);
  for (const auto& t : file.tensors()) {
    n.weights += t.nbytes;
    // The CPU backend repacks matrix weights into panels at their first use: a second copy
    // (measured: 0.53 GB more anonymous memory than the KV cache on llama-3.2-1b Q4_0).
    if (t.n_dims >= 2) n.packed += t.nbytes;
  }
  if (projector) {
    for (const auto& t : projector->tensors()) n.weights += t.nbytes;
  }
  const auto batch = static_cast<uint64_t>(std::max(1, shape.num_batch));
  const auto parallel = static_cast<uint64_t>(n.num_parallel);
  const auto n_embd = static_cast<uint64_t>(c.n_embd);
  n.fixed = sizeof(float) * (batch * n_embd * 17 + parallel * static_cast<uint64_t>(c.n_vocab));
  const ml::DType cache = c.causal ? shape.cache_dtype : ml::DType::F32;  // as the runner makes it
  const uint64_t layer_cell = ml::row_size(cache, c.head_dim_k * c.n_head_kv) +
                              ml::row_size(cache, c.head_dim_v * c.n_head_kv);
  const auto n_sliding = c.sliding_window > 0
                             ? static_cast<uint64_t>(std::count(c.sliding_layers.begin(),
                                                                c.sliding_layers.end(), true))
                             : 0;
  n.per_cell = (static_cast<uint64_t>(c.n_layer) - n_sliding) * layer_cell + sizeof(float) * batch;
  // Sliding-window layers keep at most their window and one batch per slot, whatever the
  // context (kvcache/sliding.h).
  n.fixed +=
      n_sliding * layer_cell * (static_cast<uint64_t>(c.sliding_window) - 1 + batch) * parallel;
  if (const model::Vision* v = model.vision()) {
    n.images = static_cast<uint64_t>(v->max_image_state_bytes()) * shape.images_kept;
  }
  return n;
}

MemoryBudget memory_budget(std::optional<uint64_t> available, uint64_t max_memory, uint64_t used) {
  MemoryBudget b;
  if (available) b.bytes = *available;
  if (max_memory == 0) return b;
  const uint64_t left = max_memory > used ? max_memory - used : 0;
  b.by_limit = left <= b.bytes;
  b.bytes = std::min(b.bytes, left);
  return b;
}

int64_t admit(const std::string& name, const MemoryNeeds& n, const MemoryBudget& room,
              int64_t min_num_ctx, const std::function<void(const std::string&)>& say) {
  if (n.bytes(n.num_ctx) <= room.bytes) return n.num_ctx;
  const std::string room_text = human_bytes(room.bytes);
  const std::string asked =
      std::to_string(n.num_ctx) + "-token context" +
      (n.num_parallel > 1 ? " in each of " + std::to_string(n.num_parallel) + " parallel sequences"
                          : "");
  const int64_t min_ctx = std::clamp<int64_t>(min_num_ctx, 1, n.num_ctx);
  int64_t ctx = n.fit(room.bytes);
  if (ctx < min_ctx && n.bytes(min_ctx) <= room.bytes) ctx = min_ctx;
  if (ctx < min_ctx) {
    std::string error = name + " needs " + human_bytes(n.bytes(n.num_ctx)) + " for a " + asked +
                        " but " + room_text +
                        (room.by_limit ? " is left under CORRAL_MAX_MEMORY" : " is available");
    if (min_ctx < n.num_ctx) {
      error += "; even a " + std::to_string(min_ctx) + "-token context needs " +
               human_bytes(n.bytes(min_ctx));
    }
    throw InsufficientMemoryError(error);
  }
  say(name + ": num_ctx lowered to " + std::to_string(ctx) + " to fit in " + room_text +
      (room.by_limit ? " left under CORRAL_MAX_MEMORY" : " of available memory") + " (a " + asked +
      " needs " + human_bytes(n.bytes(n.num_ctx)) + ")");
  return ctx;
}

int64_t admit_in_process(const std::string& name, const MemoryNeeds& needs, int64_t min_num_ctx) {
  const MemoryBudget room = memory_budget(available_system_memory(), max_memory_from_env(), 0);
  return admit(name, needs, room, min_num_ctx,
               [](const std::string& line) { std::cerr << line << std::endl; });
}

uint64_t max_memory_from_env() {
  const char* v = std::getenv("CORRAL_MAX_MEMORY");
  if (!v || !*v) return 0;
  const auto bytes = parse_bytes(v);
  if (!bytes) {
    throw std::invalid_argument(std::string("CORRAL_MAX_MEMORY=") + v +
                                ": expected a byte count (\"16G\", \"512M\", \"1000000\")");
  }
  return *bytes;
}

std::optional<uint64_t> available_system_memory() {
  std::optional<uint64_t> out;
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  uint64_t kib = 0;
  std::string unit;
  while (meminfo >> key >> kib) {
    std::getline(meminfo, unit);
    if (key == "MemAvailable:") {
      out = kib * 1024;
      break;
    }
  }
  // cgroup v2: a container's limit, less what it already uses.
  const auto max = read_u64("/sys/fs/cgroup/memory.max");
  const auto current = read_u64("/sys/fs/cgroup/memory.current");
  if (max && current) {
    const uint64_t left = *max > *current ? *max - *current : 0;
    out = out ? std::min(*out, left) : left;
  }
  return out;
}

std::optional<uint64_t> parse_bytes(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  size_t digits = 0;
  while (digits < s.size() &&
         (std::isdigit(static_cast<unsigned char>(s[digits])) || s[digits] == '.')) {
    ++digits;
  }
  const auto number = parse_number(s.substr(0, digits));
  if (!number || *number < 0) return std::nullopt;
  std::string unit;
  for (char c : s.substr(digits)) {
    if (c != ' ') unit += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  if (unit.ends_with("IB")) unit.resize(unit.size() - 2);
  if (unit.size() == 2 && unit[1] == 'B') unit.resize(1);
  double scale = 1;
  if (unit == "K") {
    scale = 1024.0;
  } else if (unit == "M") {
    scale = 1024.0 * 1024;
  } else if (unit == "G") {
    scale = 1024.0 * 1024 * 1024;
  } else if (unit == "T") {
    scale = 1024.0 * 1024 * 1024 * 1024;
  } else if (!unit.empty() && unit != "B") {
    return std::nullopt;
  }
  const double bytes = *number * scale;
  if (bytes >= 1.8e19) return std::nullopt;
  return static_cast<uint64_t>(bytes);
}

std::string human_bytes(uint64_t n) {
  static const struct {
    double scale;
    const char* unit;
  } kUnits[] = {{1e12, "TB"}, {1e9, "GB"}, {1e6, "MB"}, {1e3, "KB"}};
  char buf[32];
  for (const auto& u : kUnits) {
    if (static_cast<double>(n) < u.scale) continue;
    std::snprintf(buf, sizeof buf, "%.1f %s", static_cast<double>(n) / u.scale, u.unit);
    return buf;
  }
  std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(n));
  return buf;
}

}  // namespace corral::runner
