// `corral debug synth PRESET --type TYPE -o FILE.gguf`: a model with a released model's shapes,
// metadata and vocabulary size and pseudo-random weights, for benchmarks (speed does not depend
// on the weight values). Progress goes to stderr.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "convert/quantize.h"
#include "convert/synth.h"

namespace corral::cli {
namespace {

struct SynthArgs {
  std::string preset;
  std::string type = "Q4_K_M";
  std::string out;
  uint64_t seed = 0;
  int threads = 0;
};

void synth(const SynthArgs& args) {
  const convert::SynthPreset& preset = convert::find_synth_preset(args.preset);
  const convert::QuantType type = convert::parse_quant_type(args.type);
  const bool tty = isatty(STDERR_FILENO) != 0;
  int last_percent = -1;
  convert::WriteOptions options;
  options.n_threads = args.threads;
  // On a terminal the line is redrawn in place; in a log, one line per 10%.
  options.progress = [&](const convert::Progress& p) {
    const int percent = p.total ? static_cast<int>(p.completed * 100 / p.total) : 0;
    const int shown = tty ? percent : percent / 10 * 10;
    if (shown == last_percent) return;
    last_percent = shown;
    std::fprintf(stderr, "%s%s %d%%%s", tty ? "\r" : "", p.status.c_str(), shown, tty ? "" : "\n");
    std::fflush(stderr);
  };
  const auto start = std::chrono::steady_clock::now();
  convert::write_synth_model(preset, type, args.seed, args.out, options);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (tty) std::fprintf(stderr, "\n");
  std::fprintf(stderr, "wrote %s (%s, %s) in %.1fs\n", args.out.c_str(), preset.name.c_str(),
               type.name.c_str(), seconds);
}

}  // namespace

void add_debug_synth_command(CLI::App& debug) {
  auto* cmd = debug.add_subcommand(
      "synth", "Write a model with a released model's shapes and random weights (for benchmarks)");
  auto args = std::make_shared<SynthArgs>();
  std::string presets;
  for (const convert::SynthPreset& p : convert::synth_presets()) {
    presets += (presets.empty() ? "" : ", ") + p.name;
  }
  std::string types;
  for (const std::string& n : convert::quant_type_names()) types += (types.empty() ? "" : ", ") + n;
  cmd->add_option("preset", args->preset, "Model shape: " + presets)->required();
  cmd->add_option("--type", args->type, "Type (default Q4_K_M): " + types);
  cmd->add_option("-o,--output", args->out, "GGUF file to write (replaced atomically)")->required();
  cmd->add_option("--seed", args->seed, "Seed of the random weights (default 0)");
  cmd->add_option("-t,--threads", args->threads, "Threads (default: physical cores)")
      ->check(CLI::NonNegativeNumber);
  cmd->footer(
      "Examples:\n"
      "  corral debug synth llama-3.2-1b --type Q4_0 -o /tmp/l1b.gguf\n"
      "  corral debug synth qwen2.5-0.5b --type Q4_K_M -o /tmp/q05.gguf --seed 7");
  cmd->callback([args] { synth(*args); });
}

}  // namespace corral::cli
