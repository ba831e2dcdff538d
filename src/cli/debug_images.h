// Images for the debug commands: a file read, decoded and run through a model's image processor.
#pragma once

#include <string>

#include "model/model.h"
#include "runner/multimodal.h"

namespace corral::cli {

// Throws std::runtime_error naming the file (unreadable, not an image) or the model (no vision).
runner::PromptImage read_prompt_image(const model::Model& model, const std::string& path);

}  // namespace corral::cli
