// Placeholders for the Hugging Face converter (branch `convert`), so that `corral create` links
// before that branch is merged. Delete this file when merging it: the duplicate definitions then
// fail the link loudly.
#include <filesystem>
#include <stdexcept>

#include "convert/convert.h"

namespace corral::convert {

bool is_hf_folder(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  return fs::exists(fs::path(dir) / "config.json", ec) &&
         (fs::exists(fs::path(dir) / "model.safetensors", ec) ||
          fs::exists(fs::path(dir) / "model.safetensors.index.json", ec));
}

void convert_hf(const std::string& dir, const std::string&, const ConvertOptions&) {
  throw std::runtime_error(dir + ": converting safetensors models is not available in this build");
}

}  // namespace corral::convert
