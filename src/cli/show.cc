// `corral show MODEL`: a model summary in the layout of `ollama show`, or one part of a store
// model (--modelfile, --template, --system, --parameters, --license). A store name goes through
// the server at CORRAL_HOST when one answers (POST /api/show); a file, or no server, is read here.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/client.h"
#include "cli/commands.h"
#include "ml/gguf/reader.h"
#include "server/show.h"
#include "store/model.h"
#include "store/modelfile.h"
#include "store/show.h"

namespace corral::cli {

// llama.cpp's llama_ftype numbers (general.file_type) and the names quantize prints.
std::optional<std::string> file_type_name(int64_t ftype) {
  static const std::map<int64_t, const char*> kNames = {
      {0, "F32"},      {1, "F16"},      {2, "Q4_0"},       {3, "Q4_1"},    {7, "Q8_0"},
      {8, "Q5_0"},     {9, "Q5_1"},     {10, "Q2_K"},      {11, "Q3_K_S"}, {12, "Q3_K_M"},
      {13, "Q3_K_L"},  {14, "Q4_K_S"},  {15, "Q4_K_M"},    {16, "Q5_K_S"}, {17, "Q5_K_M"},
      {18, "Q6_K"},    {19, "IQ2_XXS"}, {20, "IQ2_XS"},    {21, "Q2_K_S"}, {22, "IQ3_XS"},
      {23, "IQ3_XXS"}, {24, "IQ1_S"},   {25, "IQ4_NL"},    {26, "IQ3_S"},  {27, "IQ3_M"},
      {28, "IQ2_S"},   {29, "IQ2_M"},   {30, "IQ4_XS"},    {31, "IQ1_M"},  {32, "BF16"},
      {36, "TQ1_0"},   {37, "TQ2_0"},   {38, "MXFP4_MOE"},
  };
  auto it = kNames.find(ftype);
  if (it == kNames.end()) return std::nullopt;
  return std::string(it->second);
}

namespace {

using ml::gguf::File;
using ml::gguf::Metadata;

// The dtype holding most weights of the 2-D tensors (norms and biases are kept in f32 by every
// quantizer, so they would outvote nothing but tiny models).
std::string predominant_dtype(const File& f) {
  std::map<std::string, int64_t> weights;
  for (const auto& t : f.tensors()) {
    if (t.n_dims >= 2) weights[std::string(ml::dtype_name(t.dtype))] += t.n_elements();
  }
  if (weights.empty()) {
    for (const auto& t : f.tensors()) weights[std::string(ml::dtype_name(t.dtype))] += 1;
  }
  if (weights.empty()) return "none";
  auto best = std::max_element(weights.begin(), weights.end(),
                               [](const auto& a, const auto& b) { return a.second < b.second; });
  std::string name = best->first;
  std::transform(name.begin(), name.end(), name.begin(), ::toupper);
  return name;
}

// 292.5K, 1.2B, 7B: one decimal unless the number is whole at that scale.
std::string human_number(uint64_t n) {
  static const struct {
    double scale;
    char suffix;
  } kUnits[] = {{1e12, 'T'}, {1e9, 'B'}, {1e6, 'M'}, {1e3, 'K'}};
  for (const auto& u : kUnits) {
    if (static_cast<double>(n) < u.scale) continue;
    const double x = std::round(static_cast<double>(n) / u.scale * 10) / 10;
    char buf[32];
    if (x == std::floor(x)) {
      std::snprintf(buf, sizeof buf, "%.0f%c", x, u.suffix);
    } else {
      std::snprintf(buf, sizeof buf, "%.1f%c", x, u.suffix);
    }
    return buf;
  }
  return std::to_string(n);
}

std::string human_bytes(uint64_t n) {
  char buf[32];
  if (n >= (1ull << 30)) {
    std::snprintf(buf, sizeof buf, "%.1f GiB", static_cast<double>(n) / (1ull << 30));
  } else if (n >= (1ull << 20)) {
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(n) / (1ull << 20));
  } else if (n >= 1024) {
    std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(n) / 1024);
  } else {
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(n));
  }
  return buf;
}

// A scalar metadata value as text, or nullopt when absent or not a scalar.
std::optional<std::string> scalar_text(const Metadata& m, const std::string& key) {
  const ml::gguf::Value* v = m.find(key);
  if (!v) return std::nullopt;
  if (auto i = v->as_integer()) return std::to_string(*i);
  if (v->is<std::string>()) return v->as_string();
  if (v->is<float>() || v->is<double>()) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v->is<float>() ? v->as<float>() : v->as<double>());
    return std::string(buf);
  }
  if (v->is<bool>()) return std::string(v->as<bool>() ? "true" : "false");
  if (v->is<uint64_t>()) return std::to_string(v->as<uint64_t>());
  return std::nullopt;
}

void row(std::ostream& out, const std::string& label, const std::string& value) {
  out << "    " << label << std::string(label.size() < 20 ? 20 - label.size() : 1, ' ') << value
      << "\n";
}

}  // namespace

void print_model_summary(const ml::gguf::File& f, std::ostream& out) {
  const Metadata& m = f.metadata();
  const std::string arch = m.contains("general.architecture") ? m.get_string("general.architecture")
                                                              : std::string("unknown");
  const auto arch_key = [&](const std::string& k) { return scalar_text(m, arch + "." + k); };

  uint64_t n_params = 0;
  for (const auto& t : f.tensors()) n_params += static_cast<uint64_t>(t.n_elements());

  std::string quant;
  if (const ml::gguf::Value* ft = m.find("general.file_type"); ft && ft->as_integer()) {
    quant = file_type_name(*ft->as_integer()).value_or(predominant_dtype(f));
  } else {
    quant = predominant_dtype(f);
  }

  out << "  Model\n";
  row(out, "architecture", arch);
  row(out, "parameters", human_number(n_params));
  if (auto v = arch_key("context_length")) row(out, "context length", *v);
  if (auto v = arch_key("embedding_length")) row(out, "embedding length", *v);
  row(out, "quantization", quant);
  out << "\n  Metadata\n";
  if (auto v = scalar_text(m, "general.name")) row(out, "name", *v);
  if (auto v = arch_key("block_count")) row(out, "block count", *v);
  if (auto v = arch_key("attention.head_count")) row(out, "head count", *v);
  if (auto v = arch_key("attention.head_count_kv")) row(out, "head count kv", *v);
  if (auto v = arch_key("feed_forward_length")) row(out, "feed forward length", *v);
  if (auto v = arch_key("rope.freq_base")) row(out, "rope freq base", *v);
  if (const ml::gguf::Value* tokens = m.find("tokenizer.ggml.tokens");
      tokens && tokens->is<ml::gguf::Array>()) {
    row(out, "vocab size", std::to_string(tokens->as_array().items.size()));
  }
  if (auto v = scalar_text(m, "tokenizer.ggml.model")) row(out, "tokenizer", *v);
  row(out, "tensors", std::to_string(f.tensors().size()));
  row(out, "file size", human_bytes(f.size()));
  row(out, "gguf version", std::to_string(f.version()));
  out << "\n";
}

namespace {

struct ShowArgs {
  std::string model;
  bool modelfile = false, template_text = false, system = false, parameters = false,
       license = false, verbose = false;
};

void print_text_section(std::ostream& out, const std::string& header, const std::string& text) {
  out << "  " << header << "\n";
  size_t start = 0;
  while (start <= text.size()) {
    const size_t nl = text.find('\n', start);
    out << "    " << text.substr(start, nl == std::string::npos ? nl : nl - start) << "\n";
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  out << "\n";
}

void print_all_metadata(const File& f, std::ostream& out) {
  out << "  Metadata (all keys)\n";
  for (const auto& entry : f.metadata()) {
    std::optional<std::string> v = scalar_text(f.metadata(), entry.first);
    row(out, entry.first, v ? *v : entry.second.type_string());
  }
  out << "\n";
}

// A model_info value as `ollama show -v` prints it (numbers in %g, arrays shortened).
std::string info_text(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_integer()) return v.dump();
  if (v.is_number()) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v.get<double>());
    return buf;
  }
  if (v.is_array()) {
    std::string out = "[";
    size_t shown = 0;
    for (const auto& item : v) {
      const std::string t = item.is_string() ? item.get<std::string>() : info_text(item);
      if (shown > 0 && out.size() + t.size() + 1 > 10) break;
      out += (shown++ ? " " : "") + t;
    }
    if (shown < v.size()) out += " ...+" + std::to_string(v.size() - shown) + " more";
    return out + "]";
  }
  return v.is_null() ? "null" : v.type_name();
}

}  // namespace

void print_show_answer(const nlohmann::json& r, bool verbose, std::ostream& out) {
  const nlohmann::json info = r.value("model_info", nlohmann::json::object());
  const nlohmann::json details = r.value("details", nlohmann::json::object());
  const std::string arch = info.value("general.architecture", details.value("family", ""));
  out << "  Model\n";
  if (!arch.empty()) row(out, "architecture", arch);
  std::string params = details.value("parameter_size", "");
  if (params.empty() && info.contains("general.parameter_count") &&
      info["general.parameter_count"].is_number()) {
    params = human_number(info["general.parameter_count"].get<uint64_t>());
  }
  if (!params.empty()) row(out, "parameters", params);
  for (const char* key : {"context_length", "embedding_length"}) {
    const std::string k = arch + "." + key;
    if (info.contains(k) && info[k].is_number()) {
      std::string label = key;
      label[label.find('_')] = ' ';
      row(out, label, info_text(info[k]));
    }
  }
  row(out, "quantization", details.value("quantization_level", ""));
  if (r.contains("requires") && r["requires"].is_string()) {
    row(out, "requires", r["requires"].get<std::string>());
  }
  out << "\n";
  if (r.contains("capabilities") && r["capabilities"].is_array() && !r["capabilities"].empty()) {
    out << "  Capabilities\n";
    for (const auto& c : r["capabilities"]) out << "    " << info_text(c) << "\n";
    out << "\n";
  }
  const std::string parameters = r.value("parameters", "");
  if (!parameters.empty()) print_text_section(out, "Parameters", parameters);
  if (verbose && !info.empty()) {
    out << "  Metadata\n";
    std::vector<std::string> keys;
    for (const auto& item : info.items()) keys.push_back(item.key());
    std::sort(keys.begin(), keys.end());
    for (const std::string& k : keys) row(out, k, info_text(info[k]));
    out << "\n";
  }
  if (const std::string system = r.value("system", ""); !system.empty()) {
    print_text_section(out, "System", system);
  }
  if (const std::string license = r.value("license", ""); !license.empty()) {
    print_text_section(out, "License", license);
  }
}

nlohmann::json show_answer(const store::Store& st, const store::ModelInfo& info, bool verbose) {
  return nlohmann::json::parse(
      server::show_json(st, info, verbose)
          .dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
}

namespace {

// Prints what `corral show` prints of an /api/show answer, the same for the server's answer and
// for show_json's in this process.
void print_show(const nlohmann::json& r, const ShowArgs& a) {
  if (a.modelfile) {
    std::cout << r.value("modelfile", "") << "\n";
  } else if (a.template_text) {
    std::cout << r.value("template", "") << "\n";
  } else if (a.system) {
    std::cout << r.value("system", "") << "\n";
  } else if (a.parameters) {
    std::cout << r.value("parameters", "") << "\n";
  } else if (a.license) {
    std::cout << r.value("license", "") << "\n";
  } else {
    print_show_answer(r, a.verbose, std::cout);
  }
}

// A GGUF file named by its path (never through a server): the file's own summary, with its
// metadata in full when verbose.
void show_file(const ShowArgs& a) {
  const store::Store st(store::Store::default_root());
  const store::ModelInfo info = store::resolve(st, a.model);
  if (a.modelfile || a.template_text || a.system || a.parameters || a.license) {
    print_show(show_answer(st, info, a.verbose), a);
    return;
  }
  const File f = File::open(info.gguf.string());
  print_model_summary(f, std::cout);
  if (!info.parameters.empty()) {
    std::string p = store::format_parameters(info.parameters);
    p.pop_back();
    print_text_section(std::cout, "Parameters", p);
  }
  if (info.system) print_text_section(std::cout, "System", *info.system);
  for (const std::string& l : info.licenses) print_text_section(std::cout, "License", l);
  if (a.verbose) print_all_metadata(f, std::cout);
}

void show(const ShowArgs& a) {
  const int flags = a.modelfile + a.template_text + a.system + a.parameters + a.license;
  if (flags > 1) {
    throw std::runtime_error(
        "only one of '--license', '--modelfile', '--parameters', '--system', or '--template' can "
        "be specified");
  }
  if (store::is_model_path(a.model)) {
    show_file(a);
    return;
  }
  // A store model: the same answer, made by the same function, with or without a server.
  if (auto client = connect_if_running()) {
    print_show(client->post("/api/show", {{"model", a.model}, {"verbose", a.verbose}}), a);
    return;
  }
  const store::Store st(store::Store::default_root());
  print_show(show_answer(st, store::resolve(st, a.model), a.verbose), a);
}

}  // namespace

void add_show_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("show",
                                 "Show a model's summary: architecture, parameters, "
                                 "context and embedding length, quantization");
  auto a = std::make_shared<ShowArgs>();
  cmd->add_option("model", a->model, "GGUF model file, or a model in the store (corral list)")
      ->required();
  cmd->add_flag("--modelfile", a->modelfile, "Show the model's Modelfile");
  cmd->add_flag("--template", a->template_text, "Show the model's prompt template");
  cmd->add_flag("--system", a->system, "Show the model's system message");
  cmd->add_flag("--parameters", a->parameters, "Show the model's parameters");
  cmd->add_flag("--license", a->license, "Show the model's license");
  cmd->add_flag("-v,--verbose", a->verbose, "Also list every metadata key of the model file");
  cmd->footer(
      "Examples:\n"
      "  corral show stories260K-f32.gguf\n"
      "  corral show my-model --modelfile\n"
      "\n"
      "A model in the store is asked of the corral server at CORRAL_HOST when one answers, else\n"
      "read from $CORRAL_MODELS (always, with CORRAL_NO_SERVER=1).");
  cmd->callback([a] { show(*a); });
}

}  // namespace corral::cli
