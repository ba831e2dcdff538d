// CPU kernels, one file per op (kernels/<op>.cc). Each is called on every thread of the pool
// with its ith/nth and splits the work itself (usually by rows); ctx.barrier() syncs threads
// between phases (e.g. quantizing activations once, then the matmul).
#pragma once

#include <cstddef>

#include "backend/cpu/kernels/vec.h"
#include "backend/cpu/simd/matmul_kernels.h"
#include "backend/cpu/threadpool.h"
#include "ml/graph.h"

namespace corral::backend::cpu {

// A matrix product run together with the node of a mul_mat call (KernelContext::siblings):
// same activations, weights packed into panels that take the same activation format.
struct MulMatSibling {
  const ml::Node* n = nullptr;
  const void* packed = nullptr;
};
inline constexpr int kMaxMulMatSiblings = 3;

struct KernelContext {
  int ith = 0;
  int nth = 1;
  void* wdata = nullptr;  // scratch shared by the threads, work_size() bytes
  size_t wsize = 0;
  ThreadPool* pool = nullptr;
  // mul_mat: the weights repacked into panels (simd::PanelKernels::pack, one panel per 8 rows),
  // or null to read them as they are.
  const void* packed = nullptr;
  // mul_mat on packed weights: more products of the same activations, computed in the same
  // pass (the activations converted once, one hand-out of chunks over all of them).
  const MulMatSibling* siblings = nullptr;
  int n_siblings = 0;
  // The instruction set of the kernels (the backend's CpuOptions::isa).
  simd::Isa isa = simd::best_isa();
  // The vector primitives of that set.
  const vec::Ops& vops() const { return vec::ops(isa); }
  void barrier() const {
    if (pool) pool->barrier();
  }
  // [begin, end) of n items for this thread.
  void split(int64_t n, int64_t& begin, int64_t& end) const {
    const int64_t per = (n + nth - 1) / nth;
    begin = per * ith < n ? per * ith : n;
    end = begin + per < n ? begin + per : n;
  }
};

using Kernel = void (*)(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n);
// Scratch bytes a node needs (0 for most ops) on nth threads with the kernels of isa.
using WorkSize = size_t (*)(const ml::Graph& g, const ml::Node& n, int nth, simd::Isa isa);

void cont(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n);
void cpy(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n);
void get_rows(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n);
void mul_mat(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n);
size_t mul_mat_work_size(const ml::Graph& g, const ml::Node& n, int nth, simd::Isa isa);
void add(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n);
void sub(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n);
void mul(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n);
void div(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n);
void scale(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n);
void rms_norm(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n);
void layer_norm(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n);
void softmax(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n);
void rope(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n);
void silu(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n);
void gelu(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n);
void gelu_quick(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n);
void swiglu(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n);
void concat(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n);
void set_rows(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n);
void argmax(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n);
void sum_rows(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n);
void mean(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n);
void flash_attn(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n);
size_t flash_attn_work_size(const ml::Graph& g, const ml::Node& n, int nth, simd::Isa isa);
void im2col(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n);
void conv2d(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n);
size_t conv2d_work_size(const ml::Graph& g, const ml::Node& n, int nth, simd::Isa isa);

}  // namespace corral::backend::cpu
