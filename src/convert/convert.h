// Hugging Face checkpoints (config.json + safetensors + tokenizer files) to GGUF, natively: the
// metadata llama.cpp's convert_hf_to_gguf.py writes, tensor names and shapes in GGUF order, the
// tokenizer as tokenizer.ggml.* keys, the chat template and EOS ids. One file per architecture
// under arch/.
#pragma once

#include <string>

#include "convert/quantize.h"

namespace corral::convert {

// True when `dir` is a folder holding config.json and model weights in safetensors
// (model.safetensors or model.safetensors.index.json with its shards).
bool is_hf_folder(const std::string& dir);

struct ConvertOptions {
  // Output type; "F16" by default as Ollama and llama.cpp convert.
  std::string type = "F16";
  WriteOptions write;
};

// Converts the checkpoint in `dir` to a GGUF at `out_path` (atomic). Throws std::runtime_error
// naming the file and the key or tensor on anything unsupported or malformed (unknown
// architecture, missing tensor, bad header, shape mismatch).
void convert_hf(const std::string& dir, const std::string& out_path,
                const ConvertOptions& options = {});

}  // namespace corral::convert
