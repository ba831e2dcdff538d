// `corral list`: the models in the store, in Ollama's columns NAME ID SIZE MODIFIED; through the
// server at CORRAL_HOST when one answers (GET /api/tags), else from the local store.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/client.h"
#include "cli/commands.h"
#include "store/store.h"

namespace corral::cli {

std::string human_decimal_bytes(uint64_t b) {
  const struct {
    double scale;
    const char* unit;
  } kUnits[] = {{1e12, "TB"}, {1e9, "GB"}, {1e6, "MB"}, {1e3, "KB"}};
  char buf[32];
  for (const auto& u : kUnits) {
    if (static_cast<double>(b) < u.scale) continue;
    const double v = static_cast<double>(b) / u.scale;
    if (v >= 10 || v == std::trunc(v)) {
      std::snprintf(buf, sizeof buf, "%d %s", static_cast<int>(v), u.unit);
    } else {
      std::snprintf(buf, sizeof buf, "%.1f %s", v, u.unit);
    }
    return buf;
  }
  return std::to_string(b) + " B";
}

std::string human_duration(double secs) {
  const int seconds = static_cast<int>(secs);
  const int minutes = static_cast<int>(secs / 60);
  const int hours = static_cast<int>(std::round(secs / 3600));
  if (seconds < 1) return "Less than a second";
  if (seconds == 1) return "1 second";
  if (seconds < 60) return std::to_string(seconds) + " seconds";
  if (minutes == 1) return "About a minute";
  if (minutes < 60) return std::to_string(minutes) + " minutes";
  if (hours == 1) return "About an hour";
  if (hours < 48) return std::to_string(hours) + " hours";
  if (hours < 24 * 7 * 2) return std::to_string(hours / 24) + " days";
  if (hours < 24 * 30 * 2) return std::to_string(hours / 24 / 7) + " weeks";
  if (hours < 24 * 365 * 2) return std::to_string(hours / 24 / 30) + " months";
  return std::to_string(hours / 24 / 365) + " years";
}

std::string human_time_since(double seconds_ago) {
  return human_duration(std::abs(seconds_ago)) + (seconds_ago < 0 ? " from now" : " ago");
}

void print_table(const std::vector<std::vector<std::string>>& rows, std::ostream& out) {
  std::vector<size_t> width;
  for (const auto& r : rows) {
    width.resize(std::max(width.size(), r.size()), 0);
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 4, ' ');
    }
    out << line << "\n";
  }
}

double seconds_since_epoch() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

namespace {

bool has_prefix_ci(const std::string& name, const std::string& prefix) {
  const auto lower = [](std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  return lower(name).starts_with(lower(prefix));
}

void list_remote(Client& client, const std::string& prefix) {
  const nlohmann::json tags = client.get("/api/tags");
  std::vector<std::vector<std::string>> rows = {{"NAME", "ID", "SIZE", "MODIFIED"}};
  const double now = seconds_since_epoch();
  for (const auto& m : tags.value("models", nlohmann::json::array())) {
    const std::string name = m.value("name", m.value("model", ""));
    if (!prefix.empty() && !has_prefix_ci(name, prefix)) continue;
    const std::string digest = m.value("digest", "");
    const std::optional<double> modified = parse_api_time(m.value("modified_at", ""));
    rows.push_back(
        {name, digest.substr(0, 12), human_decimal_bytes(m.value("size", uint64_t{0})),
         !modified || *modified == kZeroTime ? "Never" : human_time_since(now - *modified)});
  }
  print_table(rows, std::cout);
}

void list(const std::string& prefix) {
  if (auto client = connect_if_running()) {
    list_remote(*client, prefix);
    return;
  }
  const store::Store st(store::Store::default_root());
  std::vector<std::vector<std::string>> rows = {{"NAME", "ID", "SIZE", "MODIFIED"}};
  const auto now = std::filesystem::file_time_type::clock::now();
  for (const store::ModelEntry& e : st.list()) {
    const std::string name = e.name.display();
    if (!prefix.empty() && !has_prefix_ci(name, prefix)) continue;
    const double ago = std::chrono::duration<double>(now - e.modified).count();
    rows.push_back(
        {name, e.digest.substr(0, 12), human_decimal_bytes(e.size), human_time_since(ago)});
  }
  print_table(rows, std::cout);
}

}  // namespace

void add_list_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("list", "List the models in the store");
  cmd->alias("ls");
  auto prefix = std::make_shared<std::string>();
  cmd->add_option("prefix", *prefix, "Only models whose name starts with this");
  cmd->footer(
      "Models live under $CORRAL_MODELS (default ~/.corral/models), in Ollama's layout: point\n"
      "CORRAL_MODELS at an Ollama store (~/.ollama/models) to list and run its models.\n"
      "When a corral server answers at CORRAL_HOST (default 127.0.0.1:11434), its models are\n"
      "listed; CORRAL_NO_SERVER=1 always reads the local store.");
  cmd->callback([prefix] { list(*prefix); });
}

}  // namespace corral::cli
