// `corral ps`: the models the server at CORRAL_HOST has loaded (GET /api/ps), in the columns of
// `ollama ps`: NAME ID SIZE PROCESSOR CONTEXT UNTIL.
#include <cmath>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "cli/client.h"
#include "cli/commands.h"

namespace corral::cli {
namespace {

// Where the weights sit, from size and size_vram as `ollama ps` words it.
std::string processor(uint64_t size, uint64_t size_vram) {
  if (size_vram == 0) return "100% CPU";
  if (size_vram == size) return "100% GPU";
  if (size_vram > size || size == 0) return "Unknown";
  const int cpu = static_cast<int>(
      std::round(static_cast<double>(size - size_vram) / static_cast<double>(size) * 100));
  return std::to_string(cpu) + "%/" + std::to_string(100 - cpu) + "% CPU/GPU";
}

// When the model will be unloaded: "4 minutes from now"; "Forever" past 20 years (keep_alive
// < 0); "Stopping..." once expired; "Never" for Go's zero time.
std::string until(const std::optional<double>& expires_at, double now) {
  if (!expires_at || *expires_at == kZeroTime) return "Never";
  const double ago = now - *expires_at;
  if (ago > 0) return "Stopping...";
  if (static_cast<int64_t>(ago / 3600) / 24 / 365 < -20) return "Forever";
  return human_time_since(ago);
}

void ps() {
  if (server_disabled()) {
    std::cout << "CORRAL_NO_SERVER is set: no models are loaded in a server\n";
    return;
  }
  Client client(host_from_env());
  if (!client.alive()) {
    std::cout << "no corral server is running at " << client.address().url()
              << ": no models are loaded\n";
    return;
  }
  const nlohmann::json answer = client.get("/api/ps");
  std::vector<std::vector<std::string>> rows = {
      {"NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"}};
  const double now = seconds_since_epoch();
  for (const auto& m : answer.value("models", nlohmann::json::array())) {
    const uint64_t size = m.value("size", uint64_t{0});
    rows.push_back({m.value("name", m.value("model", "")), m.value("digest", "").substr(0, 12),
                    human_decimal_bytes(size), processor(size, m.value("size_vram", uint64_t{0})),
                    std::to_string(m.value("context_length", 0)),
                    until(parse_api_time(m.value("expires_at", "")), now)});
  }
  print_table(rows, std::cout);
}

}  // namespace

void add_ps_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("ps", "List the models the server has loaded");
  cmd->footer(
      "Asks the corral server at CORRAL_HOST (default 127.0.0.1:11434). PROCESSOR says where the\n"
      "weights are; UNTIL is when the model is unloaded (keep_alive; corral stop MODEL unloads\n"
      "it now).");
  cmd->callback([] { ps(); });
}

}  // namespace corral::cli
