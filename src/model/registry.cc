// The architectures corral runs, by general.architecture. An explicit table rather than static
// self-registration, which a static library link may drop.
#include <stdexcept>
#include <string>

#include "model/model.h"

namespace corral::model {

namespace llama {
std::unique_ptr<Model> make(const ml::gguf::File& file, const ml::gguf::File* projector);
}
namespace qwen2 {
std::unique_ptr<Model> make(const ml::gguf::File& file, const ml::gguf::File* projector);
}
namespace qwen3 {
std::unique_ptr<Model> make(const ml::gguf::File& file, const ml::gguf::File* projector);
}
namespace qwen2vl {
std::unique_ptr<Model> make(const ml::gguf::File& file, const ml::gguf::File* projector);
}
namespace bert {
std::unique_ptr<Model> make(const ml::gguf::File& file, const ml::gguf::File* projector);
}
namespace gemma3 {
std::unique_ptr<Model> make(const ml::gguf::File& file, const ml::gguf::File* projector);
}
namespace mllama {
std::unique_ptr<Model> make(const ml::gguf::File& file, const ml::gguf::File* projector);
}

namespace {
constexpr Architecture kArchitectures[] = {
    {"llama", llama::make},   {"qwen2", qwen2::make},   {"qwen2vl", qwen2vl::make},
    {"qwen3", qwen3::make},   {"mllama", mllama::make}, {"bert", bert::make},
    {"gemma3", gemma3::make},
};
}  // namespace

std::span<const Architecture> architectures() { return kArchitectures; }

std::unique_ptr<Model> load(const ml::gguf::File& file, const ml::gguf::File* projector) {
  const auto& meta = file.metadata();
  if (!meta.contains("general.architecture")) {
    throw std::runtime_error(file.source() + ": no general.architecture key");
  }
  const std::string& arch = meta.get_string("general.architecture");
  for (const Architecture& a : kArchitectures) {
    if (a.name != arch) continue;
    std::unique_ptr<Model> m = a.make(file, projector);
    nn::Binder binder(file, projector);
    binder.bind(*m);
    m->unused_ = binder.unused();
    return m;
  }
  std::string known;
  for (const Architecture& a : kArchitectures)
    known += (known.empty() ? "" : ", ") + std::string(a.name);
  throw std::runtime_error(file.source() + ": unknown architecture '" + arch +
                           "' (general.architecture); known: " + known);
}

}  // namespace corral::model
