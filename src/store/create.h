// `corral create`: a Modelfile made into a model in the store, layer by layer as Ollama's create
// makes it (server/create.go): the model layer (a GGUF copied in, a safetensors folder converted,
// or an existing model's layer reused, quantized on request; a model FROM names that the store
// lacks is pulled from its registry first), the template, system, params, messages and license
// layers, the config blob, and last, atomically, the manifest.
#pragma once

#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>

#include "convert/quantize.h"
#include "store/modelfile.h"
#include "store/store.h"

namespace corral::store {

struct CreateOptions {
  std::string quantize;  // -q TYPE; empty: keep the model's type (F16 for safetensors)
  // Status lines as Ollama's create streams them ("copying file sha256:... 100%", "writing
  // manifest", "success"); `total` > 0 where progress is countable.
  convert::ProgressFn progress;
  // FROM a model name the store lacks: the model is pulled first (as Ollama's create does), over
  // plain http when `insecure`.
  bool insecure = false;
};

// FROM named a model the store lacks, and pulling it failed; `not_found`: the registry lacks it
// (else it could not be reached or read).
class FromPullError : public std::runtime_error {
 public:
  FromPullError(const std::string& what, bool not_found)
      : std::runtime_error(what), not_found(not_found) {}
  bool not_found;
};

// Creates (or replaces) `name` from `modelfile`; its relative paths are resolved against `dir`.
// Nothing is visible under `name` until the manifest is renamed into place at the end; blobs the
// replaced manifest alone used are removed after.
void create_model(Store& store, const ModelName& name, const Modelfile& modelfile,
                  const std::filesystem::path& dir, const CreateOptions& options = {});

// Ollama's format.HumanNumber, used for the config's model_type: "293K", "1.24B", "8B".
std::string human_number(uint64_t n);

}  // namespace corral::store
