#include "nn/module.h"

#include <algorithm>
#include <string_view>

namespace corral::nn {
namespace {

std::string join(std::string_view a, std::string_view b) {
  if (a.empty()) return std::string(b);
  if (b.empty()) return std::string(a);
  return std::string(a) + "." + std::string(b);
}

std::string shape_string(const int64_t* ne, size_t n) {
  std::string s = "[";
  for (size_t i = 0; i < n; ++i) {
    if (i) s += ", ";
    s += ne[i] < 0 ? std::string("*") : std::to_string(ne[i]);
  }
  return s + "]";
}

// The expected shape against the file's, ggml order; trailing dims of 1 are insignificant.
bool shape_fits(const WeightSpec& spec, const ml::gguf::TensorInfo& t) {
  for (size_t i = 0; i < ml::gguf::kMaxDims; ++i) {
    const int64_t want = i < spec.shape.size() ? spec.shape[i] : 1;
    if (want >= 0 && t.ne[i] != want) return false;
  }
  return true;
}

bool dtype_fits(const WeightSpec& spec, ml::DType d) {
  return spec.dtypes.empty() ||
         std::find(spec.dtypes.begin(), spec.dtypes.end(), d) != spec.dtypes.end();
}

std::string dtype_list(const std::vector<ml::DType>& ds) {
  std::string s;
  for (ml::DType d : ds) {
    if (!s.empty()) s += " or ";
    s += ml::dtype_name(d);
  }
  return s;
}

}  // namespace

Module::Module(Module& parent, std::string name) : parent_(&parent), name_(std::move(name)) {
  parent.children_.push_back(this);
}

std::string Module::path() const { return parent_ ? join(parent_->path(), name_) : name_; }

Weight::Weight(Module& owner, std::string suffix, WeightSpec spec)
    : owner_(owner), suffix_(std::move(suffix)), spec_(std::move(spec)) {
  owner.weights_.push_back(this);
}

std::string Weight::full_name() const { return join(owner_.path(), suffix_); }

ml::Tensor Weight::leaf(ml::Graph& g) const {
  ml::Shape ne{1, 1, 1, 1};
  std::copy(info_->ne.begin(), info_->ne.end(), ne.begin());
  // The graph never writes leaves it did not create as caches, so the mapping stays read-only.
  return g.leaf(info_->dtype, ne, const_cast<uint8_t*>(info_->data), info_->name);
}

Binder::Binder(const ml::gguf::File& file, const ml::gguf::File* projector) {
  sources_.push_back({&file, {}});
  if (projector != nullptr) sources_.push_back({projector, {}});
}

const ml::gguf::TensorInfo* Binder::find(const std::string& name) {
  for (Source& s : sources_) {
    if (const ml::gguf::TensorInfo* t = s.file->find_tensor(name)) return t;
  }
  return nullptr;
}

void Binder::bind(Module& root) {
  for (Source& s : sources_) s.used.assign(s.file->tensors().size(), 0);
  std::vector<std::string> problems;
  bind_tree(root, problems);
  if (problems.empty()) return;
  std::string where = sources_[0].file->source();
  if (sources_.size() > 1) where += " with projector " + sources_[1].file->source();
  std::string msg = where + ": the tensors do not fit the model (" +
                    std::to_string(problems.size()) + " problem" +
                    (problems.size() == 1 ? "" : "s") + "):";
  constexpr size_t kShown = 12;
  for (size_t i = 0; i < std::min(problems.size(), kShown); ++i) msg += "\n  " + problems[i];
  if (problems.size() > kShown)
    msg += "\n  ... and " + std::to_string(problems.size() - kShown) + " more";
  throw BindError(msg);
}

void Binder::bind_tree(Module& m, std::vector<std::string>& problems) {
  for (Weight* w : m.weights()) {
    const WeightSpec& spec = w->spec();
    const std::string name = w->full_name();
    const ml::gguf::TensorInfo* t = find(name);
    if (!t && !spec.alternate.empty()) {
      const std::string parent = m.parent() ? m.parent()->path() : std::string();
      t = find(join(join(parent, spec.alternate), w->suffix()));
    }
    w->bind(nullptr);
    if (!t) {
      if (!spec.optional) {
        problems.push_back(
            "missing tensor " + name +
            (spec.alternate.empty() ? "" : " (nor its alternate " + spec.alternate + ")") +
            ", expected shape " + shape_string(spec.shape.data(), spec.shape.size()));
      }
      continue;
    }
    if (!shape_fits(spec, *t)) {
      problems.push_back("tensor " + t->name + " has shape " +
                         shape_string(t->ne.data(), static_cast<size_t>(t->n_dims)) +
                         ", expected " + shape_string(spec.shape.data(), spec.shape.size()));
      continue;
    }
    if (!dtype_fits(spec, t->dtype)) {
      problems.push_back("tensor " + t->name + " has dtype " +
                         std::string(ml::dtype_name(t->dtype)) + ", expected " +
                         dtype_list(spec.dtypes));
      continue;
    }
    w->bind(t);
    for (Source& s : sources_) {
      const auto& ts = s.file->tensors();
      if (t >= ts.data() && t < ts.data() + ts.size())
        s.used[static_cast<size_t>(t - ts.data())] = 1;
    }
  }
  for (Module* c : m.children()) bind_tree(*c, problems);
}

std::vector<std::string> Binder::unused() const {
  std::vector<std::string> out;
  for (const Source& s : sources_) {
    const auto& ts = s.file->tensors();
    for (size_t i = 0; i < ts.size(); ++i) {
      if (i >= s.used.size() || !s.used[i]) out.push_back(ts[i].name);
    }
  }
  return out;
}

}  // namespace corral::nn
