// The reference backend: one scalar, single-threaded, obviously-right kernel per op, written for
// clarity rather than speed. Every other backend is tested against it.
#pragma once

#include <memory>

#include "ml/backend.h"

namespace corral::backend::reference {

std::unique_ptr<ml::Backend> make_backend();

// One kernel per op (kernels/<op>.cc here is <op>.cc). Each computes node n of graph g; the
// data pointers of n and its sources are set.
using Kernel = void (*)(const ml::Graph& g, const ml::Node& n);
void cont(const ml::Graph& g, const ml::Node& n);
void cpy(const ml::Graph& g, const ml::Node& n);
void get_rows(const ml::Graph& g, const ml::Node& n);
void mul_mat(const ml::Graph& g, const ml::Node& n);
void add(const ml::Graph& g, const ml::Node& n);
void sub(const ml::Graph& g, const ml::Node& n);
void mul(const ml::Graph& g, const ml::Node& n);
void div(const ml::Graph& g, const ml::Node& n);
void scale(const ml::Graph& g, const ml::Node& n);
void rms_norm(const ml::Graph& g, const ml::Node& n);
void layer_norm(const ml::Graph& g, const ml::Node& n);
void softmax(const ml::Graph& g, const ml::Node& n);
void rope(const ml::Graph& g, const ml::Node& n);
void silu(const ml::Graph& g, const ml::Node& n);
void gelu(const ml::Graph& g, const ml::Node& n);
void gelu_quick(const ml::Graph& g, const ml::Node& n);
void swiglu(const ml::Graph& g, const ml::Node& n);
void concat(const ml::Graph& g, const ml::Node& n);
void set_rows(const ml::Graph& g, const ml::Node& n);
void argmax(const ml::Graph& g, const ml::Node& n);
void sum_rows(const ml::Graph& g, const ml::Node& n);
void mean(const ml::Graph& g, const ml::Node& n);
void flash_attn(const ml::Graph& g, const ml::Node& n);
void im2col(const ml::Graph& g, const ml::Node& n);
void conv2d(const ml::Graph& g, const ml::Node& n);

}  // namespace corral::backend::reference
