// `corral quantize IN.gguf OUT.gguf TYPE`: re-writes a GGUF model under a quantization type with
// llama.cpp's per-tensor rules, as llama-quantize does, printing its progress on stderr.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "convert/quantize.h"

namespace corral::cli {
namespace {

struct QuantizeArgs {
  std::string in;
  std::string out;
  std::string type;
  int threads = 0;
};

void quantize(const QuantizeArgs& args) {
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
  convert::quantize_file(args.in, args.out, type, options);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (tty) std::fprintf(stderr, "\n");
  std::fprintf(stderr, "wrote %s (%s) in %.1fs\n", args.out.c_str(), type.name.c_str(), seconds);
}

}  // namespace

void add_quantize_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "quantize", "Write a GGUF model in another quantization type (llama.cpp's mixtures)");
  auto args = std::make_shared<QuantizeArgs>();
  cmd->add_option("input", args->in, "GGUF model to read")->required();
  cmd->add_option("output", args->out, "GGUF file to write (replaced atomically)")->required();
  std::string names;
  for (const std::string& n : convert::quant_type_names()) names += (names.empty() ? "" : ", ") + n;
  cmd->add_option("type", args->type, "Target type: " + names)->required();
  cmd->add_option("-t,--threads", args->threads, "Threads (default: physical cores)")
      ->check(CLI::NonNegativeNumber);
  cmd->footer(
      "Examples:\n"
      "  corral quantize model-f16.gguf model-q4_k_m.gguf Q4_K_M\n"
      "  corral quantize model-f32.gguf model-q8_0.gguf q8_0 -t 4\n"
      "\n"
      "Norms and other 1-D tensors stay F32; the _S/_M/_L mixtures give the output, attn_v and\n"
      "ffn_down tensors more bits in the layers llama.cpp picks. Quantized inputs are\n"
      "dequantized first; a tensor already in its target type is copied.");
  cmd->callback([args] { quantize(*args); });
}

}  // namespace corral::cli
