// Where a CPU backend's time goes, op by op (`corral bench --profile`). Off by default; while
// on, every backend times each node it runs (two clock reads per node) and adds it to a
// process-wide table keyed by op and, for matrix products, the weights' dtype and shape.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace corral::backend::cpu {

struct OpProfile {
  std::string name;    // "mul_mat q4_0 2048x8192" (k x m), "rms_norm", ...
  uint64_t calls = 0;  // nodes run
  uint64_t ns = 0;     // wall time inside the kernels, all threads together
  uint64_t bytes = 0;  // weights read (matrix products), else operands and result
};

// Starts or stops gathering; what was gathered stays until clear_profile().
void set_profiling(bool on);
void clear_profile();
// What was gathered, the most time first.
std::vector<OpProfile> profile();

}  // namespace corral::backend::cpu
