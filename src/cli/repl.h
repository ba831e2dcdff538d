// The interactive session of `corral run` on a terminal, as `ollama run` has it: messages and
// their streamed replies, `"""` and pasted multi-line messages, /commands (/set, /show, /load,
// /save, /clear, /bye), Ctrl+C to stop a reply, Ctrl+D or /bye to leave.
#pragma once

#include <memory>

#include "cli/session.h"

namespace corral::cli {

// `make` makes the session for another model (/load).
void run_interactive(std::unique_ptr<Session> session, RunArgs& args, const SessionFactory& make);

// Prints the timings of a reply to stderr (--verbose, /set verbose).
void print_stats(const runner::Stats& stats, std::chrono::nanoseconds load_duration);

}  // namespace corral::cli
