// Hugging Face folder -> GGUF: config.json picks the architecture's converter (arch/), which
// gives the model keys and the tensors; the tokenizer files give the tokenizer keys; write_model
// streams everything out in the requested type. Metadata order follows llama.cpp's converter:
// general.*, the model keys, the tokenizer keys.
#include "convert/convert.h"

#include <filesystem>
#include <stdexcept>

#include "convert/arch/arch.h"
#include "convert/hf_config.h"
#include "convert/safetensors.h"
#include "convert/tokenizer_json.h"

namespace corral::convert {

bool is_hf_folder(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_regular_file(fs::path(dir) / "config.json", ec)) return false;
  return fs::is_regular_file(fs::path(dir) / "model.safetensors", ec) ||
         fs::is_regular_file(fs::path(dir) / "model.safetensors.index.json", ec);
}

void convert_hf(const std::string& dir, const std::string& out_path,
                const ConvertOptions& options) {
  const QuantType type = parse_quant_type(options.type);
  const ProgressFn& progress = options.write.progress;
  if (progress) progress({"reading " + dir});

  const HfConfig config = HfConfig::load(dir);
  const std::string hf_class = config.architecture();
  const arch::Arch* a = arch::find(hf_class);
  if (a == nullptr) {
    throw std::runtime_error(config.path() + ": architecture '" + hf_class +
                             "' is not supported (supported: " + arch::supported_classes() + ")");
  }
  const Checkpoint checkpoint = Checkpoint::open(dir);
  std::vector<TensorSource> tensors = a->tensors(config, checkpoint);

  ml::gguf::Metadata md(out_path);
  md.set("general.architecture", std::string(a->gguf_name));
  md.set("general.type", "model");
  std::string name = std::filesystem::path(dir).lexically_normal().filename().string();
  if (name.empty()) name = std::filesystem::path(dir).lexically_normal().parent_path().filename();
  if (!name.empty()) md.set("general.name", name);
  a->set_parameters(config, type, md);
  if (a->set_vision) a->set_vision(dir, config, md);
  const int64_t vocab = a->vocab_size ? a->vocab_size(config) : config.get_int("vocab_size");
  add_tokenizer(dir, config, vocab, /*prefer_sentencepiece=*/true, md);

  if (progress) progress({"converting " + hf_class + " to " + type.name});
  write_model(std::move(md), tensors, type, out_path, options.write);
}

}  // namespace corral::convert
