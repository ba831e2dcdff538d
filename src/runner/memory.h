// What loading a model takes in memory, estimated from its shapes before anything is allocated,
// and the one admission that compares it with what is available: the server's scheduler and the
// commands that run a model in this process (`corral run FILE`, CORRAL_NO_SERVER=1, the local
// embedding path, `corral bench`) call the same function, so a context too large for the machine
// is lowered (and said so) or refused in the same words whichever runs it.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "ml/dtype.h"
#include "ml/gguf/reader.h"
#include "model/model.h"

namespace corral::runner {

// A runner's slot's cells start at a multiple of this, a multiple of every tile the attention
// kernels walk the cache in: a sequence's cells then fall into the same tiles, at the same
// offsets, in every slot, and its attention sums run in the same order whichever slot it is in.
inline constexpr int64_t kSlotAlign = 256;

// The cells a slot of num_ctx takes.
inline int64_t slot_cells_for(int64_t num_ctx) {
  return (num_ctx + kSlotAlign - 1) / kSlotAlign * kSlotAlign;
}

// What loading a model takes in memory, for admission (and /api/ps "size").
struct MemoryNeeds {
  int64_t num_ctx = 0;   // cells per sequence as asked, at most the training context
  int num_parallel = 1;  // sequences
  uint64_t weights = 0;  // the file's tensor bytes: mmapped, resident once used
  uint64_t packed = 0;   // the CPU backend's repacked copies of the matrices (at most)
  uint64_t fixed = 0;    // compute buffers that do not grow with the context
  // KV cache (K and V of every layer but the sliding-window ones, which `fixed` counts) and
  // attention mask, per cell
  uint64_t per_cell = 0;
  uint64_t images = 0;  // vision models: the encoder cache at its fullest
  // Bytes for num_ctx cells per sequence (rounded up to whole cache tiles, as allocated).
  uint64_t bytes(int64_t num_ctx) const;
  // The largest num_ctx, a multiple of the cache tile, whose bytes() fit in `budget`; 0 if none.
  int64_t fit(uint64_t budget) const;
};

// The shape of a load: what the estimate depends on besides the model.
struct LoadShape {
  int64_t num_ctx = 4096;  // cells per sequence (already capped at the training context)
  int num_parallel = 1;
  int num_batch = 512;  // most tokens in one forward pass
  ml::DType cache_dtype = ml::DType::F16;
  size_t images_kept = 4;  // vision models: encoded images kept for reuse
};

// An estimate from the shapes alone (the model bound, nothing allocated): weights (of `file` and
// the projector's), the CPU backend's repacked matrices, compute buffers, KV cache per cell.
MemoryNeeds estimate_memory(const ml::gguf::File& file, const ml::gguf::File* projector,
                            const model::Model& model, const LoadShape& shape);

// A load does not fit in memory even with the smallest context; the message names the sizes
// (the server answers 507, the CLI prints it and exits non-zero).
class InsufficientMemoryError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A context lowered to fit memory is not lowered below this (nor below what was asked).
inline constexpr int64_t kMinNumCtx = 2048;

// The bytes a new load may take, and whether CORRAL_MAX_MEMORY (rather than the machine) is what
// limits it.
struct MemoryBudget {
  uint64_t bytes = UINT64_MAX;
  bool by_limit = false;
};

// `available` (what the machine can still give; nullopt: unknown), lowered to what `max_memory`
// (CORRAL_MAX_MEMORY; 0: none) leaves once `used` bytes are taken by loaded models.
MemoryBudget memory_budget(std::optional<uint64_t> available, uint64_t max_memory, uint64_t used);

// The admission: the num_ctx a load of `name` gets. All it asked (needs.num_ctx) when that fits
// `room`; else the largest that fits, not below min_num_ctx (nor what was asked), said in one
// line through `say`; else InsufficientMemoryError naming what it needs and what is there.
int64_t admit(const std::string& name, const MemoryNeeds& needs, const MemoryBudget& room,
              int64_t min_num_ctx, const std::function<void(const std::string&)>& say);

// admit() for a model run in this process: the room is what the machine has available and what
// CORRAL_MAX_MEMORY allows; a lowered context is said on standard error. min_num_ctx as
// needs.num_ctx refuses rather than lowers (a benchmark needs its whole context).
int64_t admit_in_process(const std::string& name, const MemoryNeeds& needs,
                         int64_t min_num_ctx = kMinNumCtx);

// CORRAL_MAX_MEMORY in bytes (0 when unset); throws std::invalid_argument naming a bad value.
uint64_t max_memory_from_env();

// MemAvailable from /proc/meminfo, lowered to what the cgroup's memory.max leaves (a container's
// limit); nullopt when neither can be read.
std::optional<uint64_t> available_system_memory();

// A byte count: an integer or decimal number with an optional K, M, G or T suffix (powers of
// 1024; "KB", "KiB" and lower case are accepted too): "16G", "1.5GiB", "512m", "1000000".
// nullopt when `s` is not one.
std::optional<uint64_t> parse_bytes(std::string_view s);

// The whole of `s` as a decimal number ("1.5", "-2", "1e3"); nullopt when it is not one (or
// empty). For parse_bytes and the scheduler's durations.
std::optional<double> parse_number(std::string_view s);

// "17.2 GB": decimal units with one decimal, as Ollama's format.HumanBytes.
std::string human_bytes(uint64_t n);

}  // namespace corral::runner
