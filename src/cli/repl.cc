#include "cli/repl.h"

#include <unistd.h>

#include <clocale>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/images.h"
#include "cli/line_editor.h"
#include "cli/spinner.h"
#include "sample/options.h"
#include "store/names.h"

namespace corral::cli {
namespace {

constexpr const char* kReplHelp =
    "Available Commands:\n"
    "  /set parameter K V   Set a parameter (e.g. /set parameter temperature 0.5)\n"
    "  /set verbose         Show timings after each response\n"
    "  /set quiet           Hide timings\n"
    "  /set system TEXT     Set the system message\n"
    "  /set think [LEVEL]   Let a thinking model think (LEVEL: low, medium, high, max)\n"
    "  /set nothink         Answer without thinking\n"
    "  /set format json     Answer in JSON (/set noformat: free text again)\n"
    "  /set nowordwrap      Stop wrapping lines at the terminal's width (/set wordwrap again)\n"
    "  /set nohistory       Stop saving input lines to ~/.corral/history (/set history again)\n"
    "  /show info           Show details for this model\n"
    "  /show WHAT           license, modelfile, parameters, system or template\n"
    "  /load MODEL          Switch to another model (or a session saved with /save)\n"
    "  /save MODEL          Save this session (model, system, parameters, messages) as a model\n"
    "  /clear               Forget this session's conversation\n"
    "  /bye                 Exit\n"
    "  /?, /help            Help for a command\n"
    "\n"
    "Use \"\"\" to begin a multi-line message; pasted lines are sent as one message.\n"
    "Vision models: name image files in a message (./photo.png, ~/a.jpg) to show them.\n"
    "Ctrl+C stops a response; Ctrl+C twice at an empty prompt, or Ctrl+D, exits.\n";

constexpr const char* kSetHelp =
    "Available Commands:\n"
    "  /set parameter K V\n  /set system TEXT\n  /set think [LEVEL]\n  /set nothink\n"
    "  /set format json\n  /set noformat\n  /set wordwrap\n  /set nowordwrap\n"
    "  /set history\n  /set nohistory\n  /set verbose\n  /set quiet\n";

constexpr const char* kShowHelp =
    "Available Commands:\n"
    "  /show info         Show details for this model\n"
    "  /show license      Show model license\n"
    "  /show modelfile    Show Modelfile for this model\n"
    "  /show parameters   Show parameters for this model\n"
    "  /show system       Show system message\n"
    "  /show template     Show prompt template\n";

std::vector<std::string> split_words(const std::string& line) {
  std::vector<std::string> words;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    const size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) words.push_back(line.substr(start, i - start));
  }
  return words;
}

// The text after the first `n` words of `line`.
std::string rest_after(const std::string& line, size_t n) {
  size_t i = 0;
  for (size_t k = 0; k < n; ++k) {
    i = line.find_first_not_of(" \t", i);
    if (i == std::string::npos) return "";
    i = line.find_first_of(" \t", i);
    if (i == std::string::npos) return "";
  }
  i = line.find_first_not_of(" \t", i);
  return i == std::string::npos ? "" : line.substr(i);
}

// The model's MESSAGEs, the conversation the session continues, shown as ollama run shows them.
void show_messages(const Session& session) {
  for (const auto& m : session.show().value("messages", nlohmann::json::array())) {
    if (!m.is_object()) continue;
    const std::string role = m.value("role", ""), content = m.value("content", "");
    if (role == "user") std::cout << ">>> " << content << "\n";
    if (role == "assistant") std::cout << content << "\n\n";
  }
  std::cout << std::flush;
}

// `/show WHAT`, as `ollama run` answers it: from the model's /api/show answer, with what this
// session set (/set system, /set parameter) over it.
void show_command(const std::string& what, const nlohmann::json& show, const RunArgs& args) {
  const std::string system = args.system.value_or(show.value("system", ""));
  if (what == "info") {
    nlohmann::json shown = show;
    if (!system.empty()) shown["system"] = system;
    print_show_answer(shown, false, std::cout);
  } else if (what == "license") {
    const std::string l = show.value("license", "");
    std::cout << (l.empty() ? "No license was specified for this model." : l) << "\n";
  } else if (what == "modelfile") {
    std::cout << show.value("modelfile", "") << "\n";
  } else if (what == "parameters") {
    std::cout << "Model defined parameters:\n";
    const std::string p = show.value("parameters", "");
    if (p.empty()) std::cout << "  No additional parameters were specified for this model.\n";
    size_t start = 0;
    while (!p.empty() && start <= p.size()) {
      const size_t nl = p.find('\n', start);
      std::cout << "  " << p.substr(start, nl == std::string::npos ? nl : nl - start) << "\n";
      if (nl == std::string::npos) break;
      start = nl + 1;
    }
    std::cout << "\n";
    if (!args.set_params.empty()) {
      std::cout << "User defined parameters:\n";
      for (const auto& [k, v] : args.set_params) {
        std::printf("  %-30s %s\n", k.c_str(), v.c_str());
      }
      std::fflush(stdout);
      std::cout << "\n";
    }
  } else if (what == "system") {
    std::cout << (system.empty() ? "No system message was specified for this model."
                                 : system + "\n")
              << "\n";
  } else if (what == "template") {
    const std::string t = show.value("template", "");
    std::cout << (t.empty() ? "No prompt template was specified for this model." : t) << "\n";
  } else {
    std::cout << "Unknown command '/show " << what << "'. Type /? for help\n";
  }
}

// /set think [LEVEL], /set nothink.
void set_think(const std::vector<std::string>& w, const Session& session, RunArgs& args) {
  parse::Think think{w[1] == "think", ""};
  if (w[1] == "think" && w.size() >= 3) {
    const std::optional<parse::Think> level = parse::think_from_text(w[2]);
    if (!level) {
      std::cout << "Invalid think value '" << w[2] << "' (true, false, low, medium, high or max)\n";
      return;
    }
    think = *level;
  }
  args.think = think;
  if (!session.can_think())
    std::cerr << "warning: model \"" << args.model << "\" does not support thinking output\n";
  if (!think.on())
    std::cout << "Set 'nothink' mode.\n";
  else if (!think.level.empty())
    std::cout << "Set 'think' mode to '" << think.level << "'.\n";
  else
    std::cout << "Set 'think' mode.\n";
}

// /set ...; the words of the line and the line itself (a value may hold spaces).
void set_command(const std::vector<std::string>& w, const std::string& line, Session& session,
                 RunArgs& args, LineEditor& editor) {
  const std::string what = w.size() >= 2 ? w[1] : "";
  if (what == "verbose" || what == "quiet") {
    args.verbose = what == "verbose";
    std::cout << "Set '" << what << "' mode.\n";
  } else if (what == "parameter") {
    if (w.size() < 4) {
      std::cout << "Usage:\n  /set parameter <name> <value>\n";
      return;
    }
    const std::string value = rest_after(line, 3);
    try {
      session.set_parameter(w[2], value);
      args.set_params.emplace_back(w[2], value);
      std::cout << "Set parameter '" << w[2] << "' to '" << value << "'\n";
    } catch (const std::exception& e) {
      std::cout << "Couldn't set parameter: " << e.what() << "\n";
    }
  } else if (what == "history" || what == "nohistory") {
    editor.set_save_history(what == "history");
    std::cout << "Set '" << what << "' mode.\n";
  } else if (what == "wordwrap" || what == "nowordwrap") {
    args.word_wrap = what == "wordwrap";
    std::cout << "Set '" << what << "' mode.\n";
  } else if (what == "format") {
    if (w.size() < 3 || w[2] != "json") {
      std::cout << "Invalid or missing format. For 'json' mode use '/set format json'\n";
    } else {
      args.format = "json";
      std::cout << "Set format to 'json' mode.\n";
    }
  } else if (what == "noformat") {
    args.format.clear();
    std::cout << "Disabled format.\n";
  } else if (what == "think" || what == "nothink") {
    set_think(w, session, args);
  } else if (what == "system" && w.size() >= 3) {
    args.system = rest_after(line, 2);
    session.set_system(*args.system);
    std::cout << "Set system message.\n";
  } else {
    std::cout << kSetHelp;
  }
}

// /load MODEL: a session on another model (the conversation starts over; /set parameters stay).
void load_command(const std::vector<std::string>& w, std::unique_ptr<Session>& session,
                  RunArgs& args, const SessionFactory& make) {
  if (w.size() != 2) {
    std::cout << "Usage:\n  /load <modelname>\n";
    return;
  }
  const std::string previous = args.model;
  args.model = w[1];
  std::cout << "Loading model '" << args.model << "'\n" << std::flush;
  std::unique_ptr<Session> next;
  try {
    Spinner spinner;
    next = make(args);
    next->load();
    for (const auto& [key, value] : args.set_params) next->set_parameter(key, value);
  } catch (const std::exception& e) {
    args.model = previous;
    std::cout << "Couldn't load model '" << w[1] << "': " << e.what() << "\n";
    return;
  }
  session = std::move(next);
  args.system.reset();
  show_messages(*session);
}

// /save NAME: a model made of this session, as `ollama run` makes it (/api/create with "from").
void save_command(const std::vector<std::string>& w, Session& session, const RunArgs& args) {
  if (w.size() != 2) {
    std::cout << "Usage:\n  /save <modelname>\n";
    return;
  }
  if (!store::ModelName::valid(w[1])) {
    std::cout << "error: The model name '" << w[1] << "' is invalid\n";
    return;
  }
  nlohmann::json request = {{"model", w[1]}, {"from", args.model}};
  if (args.system) request["system"] = *args.system;
  std::vector<std::pair<std::string, std::string>> params;
  for (const std::string& p : args.params) params.push_back(sample::split_param(p));
  params.insert(params.end(), args.set_params.begin(), args.set_params.end());
  if (!params.empty()) request["parameters"] = sample::params_to_json(params);
  nlohmann::json messages = session.show().value("messages", nlohmann::json::array());
  for (const auto& m : session.turns()) messages.push_back(m);
  if (!messages.empty()) request["messages"] = std::move(messages);
  try {
    session.create(request);
    std::cout << "Created new model '" << w[1] << "'\n";
  } catch (const std::exception& e) {
    std::cout << "error: " << e.what() << "\n";
  }
}

// A /command; returns false when the session should end.
bool run_command(const std::string& line, std::unique_ptr<Session>& session, RunArgs& args,
                 LineEditor& editor, const SessionFactory& make) {
  const std::vector<std::string> w = split_words(line);
  const std::string& cmd = w[0];
  if (cmd == "/bye" || cmd == "/exit") return false;
  if (cmd == "/?" || cmd == "/help") {
    std::cout << kReplHelp << "\n";
  } else if (cmd == "/set") {
    set_command(w, line, *session, args, editor);
  } else if (cmd == "/clear") {
    session->clear();
    std::cout << "Cleared session context\n";
  } else if (cmd == "/show" && w.size() >= 2) {
    show_command(w[1], session->show(), args);
  } else if (cmd == "/show") {
    std::cout << kShowHelp;
  } else if (cmd == "/load") {
    load_command(w, session, args, make);
  } else if (cmd == "/save") {
    save_command(w, *session, args);
  } else {
    std::cout << "Unknown command '" << cmd << "'. Type /? for help\n";
  }
  std::cout << std::flush;
  return true;
}

// Sends one message and shows the reply.
void send(const std::string& message, Session& session, const RunArgs& args, ReplyOutput& out) {
  out.set_hide_thinking(args.hide_thinking);
  // JSON is not wrapped: a line break inside a string would break it.
  out.set_word_wrap(args.word_wrap && args.format.empty());
  out.begin();
  try {
    PromptImages p;
    if (session.vision()) {
      p = take_image_paths(message, &std::cerr);
    } else {
      p.text = message;
    }
    const Reply r = session.reply(p.text, p.images, out, LineEditor::interrupted());
    out.end_line();
    std::cout << "\n" << std::flush;
    if (args.verbose) print_stats(r.stats, r.load_duration);
  } catch (const std::exception& e) {
    out.end_line();
    std::cout << std::flush;
    std::cerr << "Error: " << e.what() << "\n";
  }
}

}  // namespace

void print_stats(const runner::Stats& stats, std::chrono::nanoseconds load_duration) {
  std::fflush(stdout);
  std::cerr << runner::format_stats(stats, load_duration) << std::flush;
}

void run_interactive(std::unique_ptr<Session> session, RunArgs& args, const SessionFactory& make) {
  std::setlocale(LC_CTYPE, "");
  LineEditor editor;
  show_messages(*session);

  ReplyOutput out(args.hide_thinking);
  bool interrupted_at_empty = false;
  bool multiline = false;  // inside a """ message
  bool pasting = false;    // lines of a paste so far, sent when Enter ends its last line
  std::string message;
  for (;;) {
    std::string line;
    bool was_empty = false, pasted = false;
    const LineEditor::Prompt prompt = multiline ? LineEditor::Prompt::kMultiline
                                      : pasting ? LineEditor::Prompt::kPaste
                                                : LineEditor::Prompt::kMain;
    const auto r = editor.read(line, prompt, was_empty, pasted);
    if (r == LineEditor::Result::kInterrupt) {
      std::cout << "\n";
      if (multiline || pasting) {
        multiline = pasting = false;
        message.clear();
        interrupted_at_empty = false;
        continue;
      }
      if (was_empty && interrupted_at_empty) break;
      if (was_empty) {
        std::cout << "Use Ctrl + d or /bye to exit.\n";
        interrupted_at_empty = true;
      } else {
        interrupted_at_empty = false;
      }
      std::cout << std::flush;
      continue;
    }
    if (r == LineEditor::Result::kEnd) {
      std::cout << "\n";
      break;
    }
    interrupted_at_empty = false;

    if (!multiline && (pasted || pasting)) {
      // A paste is one message, taken as it is (no /commands, no """), as ollama takes it.
      message += line;
      if (pasted) {
        message += "\n";
        pasting = true;
        continue;
      }
      pasting = false;
      while (!message.empty() && message.back() == '\n') message.pop_back();
      if (message.find_first_not_of(" \t\n") == std::string::npos) {
        message.clear();
        continue;
      }
    } else if (multiline) {
      // """ starts a message of several lines; a line ending in """ ends it.
      if (line.size() >= 3 && line.ends_with("\"\"\"")) {
        message += line.substr(0, line.size() - 3);
        multiline = false;
      } else {
        message += line + "\n";
        continue;
      }
    } else if (line.starts_with("\"\"\"")) {
      const std::string rest = line.substr(3);
      if (rest.size() >= 3 && rest.ends_with("\"\"\"")) {
        message = rest.substr(0, rest.size() - 3);
      } else {
        message = rest.empty() ? "" : rest + "\n";
        multiline = true;
        continue;
      }
    } else {
      const size_t first = line.find_first_not_of(" \t");
      if (first == std::string::npos) continue;
      if (line[first] == '/') {
        if (!run_command(line.substr(first), session, args, editor, make)) break;
        continue;
      }
      message = line;
    }

    editor.take_interrupt();
    send(message, *session, args, out);
    editor.take_interrupt();
    message.clear();
  }
}

}  // namespace corral::cli
