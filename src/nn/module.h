// The module tree: layers that own weights. Each weight is declared once, at a member, with the
// GGUF name of its module; a Binder walks the tree, composes full names ("blk.3.attn_q.weight"),
// checks shape and dtype against the file and points each weight into the file's mapping.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "ml/dtype.h"
#include "ml/gguf/reader.h"
#include "ml/graph.h"

namespace corral::nn {

class Weight;

// A node of the tree. Its path joins the names from the root with '.'; an empty name is
// transparent (a module that groups members without adding a name level, like Attention,
// whose weights are named attn_q, attn_k, ... directly in their block).
class Module {
 public:
  Module() = default;  // a root
  Module(Module& parent, std::string name);
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;
  virtual ~Module() = default;

  const std::string& name() const { return name_; }
  std::string path() const;
  const Module* parent() const { return parent_; }
  const std::vector<Module*>& children() const { return children_; }
  const std::vector<Weight*>& weights() const { return weights_; }

 private:
  friend class Weight;
  Module* parent_ = nullptr;
  std::string name_;
  std::vector<Module*> children_;
  std::vector<Weight*> weights_;
};

// What a weight must look like. Shape dims of -1 are not checked; dims past the listed ones must
// be 1. An empty dtype list accepts any dtype.
struct WeightSpec {
  explicit WeightSpec(std::vector<int64_t> shape_) : shape(std::move(shape_)) {}
  WeightSpec& f32() {
    dtypes = {ml::DType::F32};
    return *this;
  }
  WeightSpec& of(std::vector<ml::DType> allowed) {
    dtypes = std::move(allowed);
    return *this;
  }
  WeightSpec& optional_if(bool yes = true) {
    optional = yes;
    return *this;
  }
  WeightSpec& or_sibling(std::string name) {
    alternate = std::move(name);
    return *this;
  }

  std::vector<int64_t> shape;
  std::vector<ml::DType> dtypes;
  bool optional = false;
  // A sibling module whose tensor of the same suffix stands in when this one is absent
  // ("token_embd" for an output projection tied to the embeddings).
  std::string alternate;
};

// A tensor of a module ("weight", "bias", ...), a leaf pointing into the GGUF mapping once bound.
class Weight {
 public:
  Weight(Module& owner, std::string suffix, WeightSpec spec);
  Weight(const Weight&) = delete;
  Weight& operator=(const Weight&) = delete;

  std::string full_name() const;  // the name it is looked up by: "blk.3.attn_q.weight"
  const std::string& suffix() const { return suffix_; }
  const WeightSpec& spec() const { return spec_; }
  bool present() const { return info_ != nullptr; }
  const ml::gguf::TensorInfo* info() const { return info_; }
  // A leaf of graph g holding the bound tensor (present() must be true).
  ml::Tensor leaf(ml::Graph& g) const;

  // Called by the Binder; nullptr unbinds.
  void bind(const ml::gguf::TensorInfo* info) { info_ = info; }

 private:
  Module& owner_;
  std::string suffix_;
  WeightSpec spec_;
  const ml::gguf::TensorInfo* info_ = nullptr;
};

// Raised when the file does not fit the module tree; the message lists every missing,
// mis-shaped or mis-typed tensor by its full name.
class BindError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Binds every weight of a tree to the tensors of a file, or of two: a model stored as the
// llama.cpp ecosystem stores vision models (a text GGUF and an mmproj projector GGUF) binds
// across both, each tensor looked up in the model file first, then in the projector.
class Binder {
 public:
  explicit Binder(const ml::gguf::File& file, const ml::gguf::File* projector = nullptr);
  // Throws BindError naming each problem; on success every required weight is bound.
  void bind(Module& root);
  // Tensors that no weight consumed, in file order (after bind()): the model file's, then the
  // projector's.
  std::vector<std::string> unused() const;

 private:
  struct Source {
    const ml::gguf::File* file;
    std::vector<char> used;
  };
  // The tensor of that name in the first file holding it; nullptr if none.
  const ml::gguf::TensorInfo* find(const std::string& name);
  void bind_tree(Module& m, std::vector<std::string>& problems);
  std::vector<Source> sources_;
};

}  // namespace corral::nn
