// The CUDA backend (built with -DCORRAL_CUDA=ON; without it devices() is empty and
// make_backend throws). No CUDA header is included here: the rest of corral sees plain C++.
//
// Memory model. Node::data stays a host address for every node (the executor plans one host
// arena as always); the backend maps host addresses to device memory:
//   - nodes it computes live in a device arena it plans itself (ml::plan_memory over its own
//     nodes), and are copied to their host address only when an output or a node on another
//     backend reads them;
//   - resident ranges (weights uploaded once with make_resident(), and buffers from allocate(),
//     such as a KV cache's layers) are used in place on the device; their host bytes are only a
//     key (a buffer from allocate() is written back when another backend reads it);
//   - any other data a node reads (inputs, weights not made resident, results of other
//     backends) is copied to a device staging area for the run of nodes that reads it.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "ml/backend.h"

namespace corral::backend::cuda {

struct DeviceInfo {
  int index = 0;
  std::string name;
  int cc_major = 0, cc_minor = 0;  // compute capability
  int sm_count = 0;
  size_t total_bytes = 0;
  size_t free_bytes = 0;
};

// Whether corral was built with the CUDA backend.
bool built();
// The CUDA devices present (empty when not built, when no driver or no device answers).
std::vector<DeviceInfo> devices();
// Why devices() is empty, for skip messages and errors ("" when it is not).
std::string unavailable_reason();

struct CudaOptions {
  int device = 0;
};

class CudaBackend : public ml::Backend {
 public:
  // Copies [host, host + bytes) to device memory once; nodes reading inside the range read the
  // device copy from then on. The host bytes must not change while it is resident. The returned
  // handle keeps it resident; destroying it (before the backend) frees the device copy.
  virtual std::unique_ptr<ml::Buffer> make_resident(const void* host, size_t bytes) = 0;
  // Bytes of device memory resident ranges, allocations and arenas hold now.
  virtual size_t device_bytes() const = 0;
  virtual const DeviceInfo& device() const = 0;
};

// Throws std::runtime_error naming the reason when no device is usable.
std::unique_ptr<CudaBackend> make_backend(CudaOptions options = {});

}  // namespace corral::backend::cuda
