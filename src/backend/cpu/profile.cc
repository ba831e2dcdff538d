#include "backend/cpu/profile.h"

#include <algorithm>
#include <map>
#include <mutex>

#include "backend/cpu/profile_internal.h"

namespace corral::backend::cpu {
namespace {

std::mutex g_mu;
std::map<std::string, OpProfile, std::less<>> g_table;

}  // namespace

std::atomic<bool> g_profiling{false};

void set_profiling(bool on) { g_profiling.store(on, std::memory_order_relaxed); }

void clear_profile() {
  std::lock_guard lock(g_mu);
  g_table.clear();
}

std::vector<OpProfile> profile() {
  std::lock_guard lock(g_mu);
  std::vector<OpProfile> out;
  for (const auto& [_, p] : g_table) out.push_back(p);
  std::sort(out.begin(), out.end(), [](const OpProfile& a, const OpProfile& b) {
    return a.ns != b.ns ? a.ns > b.ns : a.name < b.name;
  });
  return out;
}

void profile_add(std::string_view name, uint64_t ns, uint64_t bytes) {
  std::lock_guard lock(g_mu);
  auto it = g_table.find(name);
  if (it == g_table.end())
    it = g_table.emplace(std::string(name), OpProfile{std::string(name)}).first;
  ++it->second.calls;
  it->second.ns += ns;
  it->second.bytes += bytes;
}

}  // namespace corral::backend::cpu
