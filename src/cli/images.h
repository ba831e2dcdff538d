// Images named in a `corral run` prompt, as `ollama run` finds them: words that are paths of
// existing .png, .jpg, .jpeg or .webp files (absolute, relative, ~/..., quoted, or with spaces
// escaped as "\ ") are read and taken out of the text.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace corral::cli {

struct PromptImages {
  std::string text;                 // the prompt without the paths
  std::vector<std::string> images;  // the files' bytes, in order
  std::vector<std::string> paths;
};

// Reads the images a prompt names ("Added image 'x'" to `log` for each). A path that does not
// exist stays text; one that exists but is not a PNG, JPEG or WebP image, or is larger than
// 32 MiB, throws std::runtime_error naming it.
PromptImages take_image_paths(const std::string& prompt, std::ostream* log);

}  // namespace corral::cli
