// `corral list`: the models in the store, in Ollama's columns NAME ID SIZE MODIFIED.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "store/store.h"

namespace corral::cli {
namespace {

// Ollama's format.HumanBytes (decimal units).
std::string human_bytes(uint64_t b) {
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

// Ollama's format.HumanTime: "Less than a second ago", "About a minute ago", "3 days ago".
std::string human_time(std::filesystem::file_time_type t) {
  const auto now = std::filesystem::file_time_type::clock::now();
  const auto d = now - t;
  const bool future = d.count() < 0;
  const double secs =
      std::abs(std::chrono::duration_cast<std::chrono::duration<double>>(d).count());
  std::string s;
  const int seconds = static_cast<int>(secs);
  const int minutes = static_cast<int>(secs / 60);
  const int hours = static_cast<int>(std::round(secs / 3600));
  if (seconds < 1) {
    s = "Less than a second";
  } else if (seconds == 1) {
    s = "1 second";
  } else if (seconds < 60) {
    s = std::to_string(seconds) + " seconds";
  } else if (minutes == 1) {
    s = "About a minute";
  } else if (minutes < 60) {
    s = std::to_string(minutes) + " minutes";
  } else if (hours == 1) {
    s = "About an hour";
  } else if (hours < 48) {
    s = std::to_string(hours) + " hours";
  } else if (hours < 24 * 7 * 2) {
    s = std::to_string(hours / 24) + " days";
  } else if (hours < 24 * 30 * 2) {
    s = std::to_string(hours / 24 / 7) + " weeks";
  } else if (hours < 24 * 365 * 2) {
    s = std::to_string(hours / 24 / 30) + " months";
  } else {
    s = std::to_string(hours / 24 / 365) + " years";
  }
  return s + (future ? " from now" : " ago");
}

void list(const std::string& prefix) {
  const store::Store st(store::Store::default_root());
  std::vector<std::vector<std::string>> rows = {{"NAME", "ID", "SIZE", "MODIFIED"}};
  const auto lower = [](std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  for (const store::ModelEntry& e : st.list()) {
    const std::string name = e.name.display();
    if (!prefix.empty() && !lower(name).starts_with(lower(prefix))) continue;
    rows.push_back({name, e.digest.substr(0, 12), human_bytes(e.size), human_time(e.modified)});
  }
  std::vector<size_t> width(4, 0);
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  // Left-aligned columns, four spaces apart, as Ollama's table writer prints them.
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 4, ' ');
    }
    std::cout << line << "\n";
  }
}

}  // namespace

void add_list_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("list", "List the models in the store");
  cmd->alias("ls");
  auto prefix = std::make_shared<std::string>();
  cmd->add_option("prefix", *prefix, "Only models whose name starts with this");
  cmd->footer(
      "Models live under $CORRAL_MODELS (default ~/.corral/models), in Ollama's layout: point\n"
      "CORRAL_MODELS at an Ollama store (~/.ollama/models) to list and run its models.");
  cmd->callback([prefix] { list(*prefix); });
}

}  // namespace corral::cli
