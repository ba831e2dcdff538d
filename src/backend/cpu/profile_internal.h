// The CPU backend's side of profile.h.
#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>

namespace corral::backend::cpu {

extern std::atomic<bool> g_profiling;
void profile_add(std::string_view name, uint64_t ns, uint64_t bytes);

}  // namespace corral::backend::cpu
