// Ollama's generation API (docs/api.md): /api/generate, /api/chat, /api/embed and the legacy
// /api/embeddings. Streamed responses are NDJSON, one object per line, the last with done true
// and the metrics; `"stream": false` gives one object with everything aggregated.
#include <httplib.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "server/generation.h"
#include "server/images.h"
#include "server/server.h"

namespace corral::server {
namespace {

using json = OJson;

std::string now_rfc3339() { return rfc3339_nano(std::chrono::system_clock::now()); }

int top_logprobs_of(const json& body) {
  int top = 0;
  if (const auto it = body.find("top_logprobs"); it != body.end() && !it->is_null()) {
    if (!it->is_number_integer()) throw HttpError(400, "top_logprobs must be an integer");
    top = it->get<int>();
  }
  if (top < 0 || top > 20) throw HttpError(400, "top_logprobs must be between 0 and 20");
  const bool logprobs = bool_field(body, "logprobs", false);
  return logprobs || top > 0 ? top : -1;
}

// Runs a submitted generation to its end: streamed as NDJSON lines (chunk per delta, then the
// final object) or aggregated into the final object.
using ChunkFn = std::function<OJson(const parse::Delta&)>;
using FinalFn =
    std::function<OJson(Generation&, const runner::SequenceResult&, const parse::Delta&)>;

void respond(httplib::Response& res, std::shared_ptr<Generation> g, bool stream, ChunkFn chunk,
             FinalFn final_object) {
  if (!stream) {
    parse::Delta all, d;
    while (g->next(d)) {
      all.thinking += d.thinking;
      all.content += d.content;
      for (auto& c : d.calls) all.calls.push_back(std::move(c));
      for (auto& l : d.logprobs) all.logprobs.push_back(std::move(l));
    }
    send_ordered(res, final_object(*g, g->result(), all));
    return;
  }
  stream_response(res, "application/x-ndjson",
                  [g, chunk = std::move(chunk),
                   final_object = std::move(final_object)](const StreamWrite& write) {
                    try {
                      parse::Delta d;
                      while (g->next(d)) {
                        if (!write(dump_json(chunk(d)) + "\n")) {
                          g->cancel();
                          return;
                        }
                      }
                      write(dump_json(final_object(*g, g->result(), parse::Delta{})) + "\n");
                    } catch (const std::exception& e) {
                      g->cancel();
                      write(dump_json(OJson{{"error", error_message(e.what())}}) + "\n");
                    }
                  });
}

void handle_generate(Context& ctx, const httplib::Request& req, httplib::Response& res) {
  const json body = parse_ordered_body(req);
  const std::string model = string_field(body, "model");
  const std::string prompt = string_field(body, "prompt");
  const std::string suffix = string_field(body, "suffix");
  const std::string system = string_field(body, "system");
  const std::string template_override = string_field(body, "template");
  const bool raw = bool_field(body, "raw", false);
  const bool stream = bool_field(body, "stream", true);
  const bool render_only = bool_field(body, "_debug_render_only", false);
  const int top_logprobs = top_logprobs_of(body);
  const parse::Think think = parse_think(body.value("think", json()));

  std::vector<int32_t> context;
  const bool has_context = body.contains("context") && !body["context"].is_null();
  if (has_context) {
    if (!body["context"].is_array()) throw HttpError(400, "context must be an array of tokens");
    for (const auto& t : body["context"]) {
      if (!t.is_number_integer()) throw HttpError(400, "context must be an array of tokens");
      // Read wide: get<int32_t> would wrap 2^32 + 403 to 403. Ids outside the vocabulary are
      // refused when the runner takes the prompt.
      const bool fits = t.is_number_unsigned()
                            ? t.get<uint64_t>() <= static_cast<uint64_t>(INT32_MAX)
                            : t.get<int64_t>() >= 0 && t.get<int64_t>() <= INT32_MAX;
      if (!fits) {
        throw HttpError(400, "context[" + std::to_string(context.size()) +
                                 "] = " + t.dump().substr(0, 24) + " is not a token id");
      }
      context.push_back(static_cast<int32_t>(t.get<int64_t>()));
    }
  }

  store::ModelInfo info = find_model(ctx, model);
  const auto keep_alive = request_keep_alive(body);
  if (prompt.empty() && keep_alive && keep_alive->count() == 0) {
    ctx.scheduler.unload(info.gguf.string());
    send_ordered(res, {{"model", model},
                       {"created_at", now_rfc3339()},
                       {"response", ""},
                       {"done", true},
                       {"done_reason", "unload"}});
    return;
  }
  std::vector<std::string> images;
  if (const auto it = body.find("images"); it != body.end()) images_field(*it, images);
  if (!images.empty() && !has_vision(info))
    throw HttpError(400, "\"" + model + "\" does not support images (it has no vision encoder)");
  if (raw && (!template_override.empty() || !system.empty() || has_context))
    throw HttpError(400, "raw mode does not support template, system, or context");

  const sample::Options options = request_options(info, body.value("options", json()));
  auto grammar = format_grammar(body.value("format", json()));

  auto g = std::make_shared<Generation>(ctx, model, std::move(info));
  if (const auto it = body.find("shift"); it != body.end() && !it->is_null()) {
    g->set_shift(bool_field(body, "shift", false));
  }
  g->load(options, keep_alive);
  if (prompt.empty()) {
    send_ordered(res, {{"model", model},
                       {"created_at", now_rfc3339()},
                       {"response", ""},
                       {"done", true},
                       {"done_reason", "load"}});
    return;
  }

  GenerateSpec spec;
  spec.prompt = prompt;
  spec.suffix = suffix;
  spec.system = system;
  spec.template_override = template_override;
  spec.raw = raw;
  spec.context = std::move(context);
  spec.has_context = has_context;
  spec.think = think;
  spec.truncate = bool_field(body, "truncate", true);
  spec.images = std::move(images);
  const PreparedGenerate prepared = prepare_generate(*g, std::move(spec));

  if (render_only) {
    send_ordered(res, {{"model", model},
                       {"created_at", now_rfc3339()},
                       {"response", ""},
                       {"done", false},
                       {"_debug_info", {{"rendered_template", prepared.prompt}}}});
    return;
  }

  runner::SequenceRequest sr;
  sr.prompt = prepared.tokens;
  sr.images = prepared.images;
  sr.options = options;
  sr.grammar = grammar;
  sr.top_logprobs = top_logprobs;
  g->submit(std::move(sr), prepared.parser());

  const bool with_logprobs = top_logprobs >= 0;
  auto chunk = [model, with_logprobs](const parse::Delta& d) {
    OJson j = {{"model", model}, {"created_at", now_rfc3339()}, {"response", d.content}};
    if (!d.thinking.empty()) j["thinking"] = d.thinking;
    j["done"] = false;
    if (with_logprobs && !d.logprobs.empty()) j["logprobs"] = logprobs_json(d.logprobs);
    return j;
  };
  auto final_object = [model, raw, with_logprobs](Generation& gen, const runner::SequenceResult& r,
                                                  const parse::Delta& all) {
    OJson j = {{"model", model}, {"created_at", now_rfc3339()}, {"response", all.content}};
    if (!all.thinking.empty()) j["thinking"] = all.thinking;
    j["done"] = true;
    j["done_reason"] = r.stats.done_reason;
    if (!raw) j["context"] = r.context;
    add_metrics(j, gen, r.stats);
    if (with_logprobs && !all.logprobs.empty()) j["logprobs"] = logprobs_json(all.logprobs);
    return j;
  };
  respond(res, g, stream, chunk, final_object);
}

OJson chat_message(const parse::Delta& d, size_t first_call_index) {
  OJson m = {{"role", "assistant"}, {"content", d.content}};
  if (!d.thinking.empty()) m["thinking"] = d.thinking;
  if (!d.calls.empty()) {
    OJson calls = OJson::array();
    for (size_t i = 0; i < d.calls.size(); ++i)
      calls.push_back(ollama_tool_call(d.calls[i], first_call_index + i));
    m["tool_calls"] = std::move(calls);
  }
  return m;
}

void handle_chat(Context& ctx, const httplib::Request& req, httplib::Response& res) {
  const json body = parse_ordered_body(req);
  const std::string model = string_field(body, "model");
  const bool stream = bool_field(body, "stream", true);
  const bool render_only = bool_field(body, "_debug_render_only", false);
  const int top_logprobs = top_logprobs_of(body);

  ChatSpec spec;
  spec.messages = normalize_messages(body.value("messages", json()), model, spec.images);
  spec.think = parse_think(body.value("think", json()));
  spec.truncate = bool_field(body, "truncate", true);
  if (const auto it = body.find("tools"); it != body.end() && !it->is_null()) {
    if (!it->is_array()) throw HttpError(400, "tools must be an array");
    spec.tools = *it;
  }

  store::ModelInfo info = find_model(ctx, model);
  if (!spec.images.empty() && !has_vision(info))
    throw HttpError(400, "\"" + model + "\" does not support images (it has no vision encoder)");
  const auto keep_alive = request_keep_alive(body);
  const OJson empty_message = {{"role", "assistant"}, {"content", ""}};
  if (spec.messages.empty() && keep_alive && keep_alive->count() == 0) {
    ctx.scheduler.unload(info.gguf.string());
    send_ordered(res, {{"model", model},
                       {"created_at", now_rfc3339()},
                       {"message", empty_message},
                       {"done", true},
                       {"done_reason", "unload"}});
    return;
  }
  const sample::Options options = request_options(info, body.value("options", json()));
  spec.grammar = format_grammar(body.value("format", json()));

  auto g = std::make_shared<Generation>(ctx, model, std::move(info));
  if (const auto it = body.find("shift"); it != body.end() && !it->is_null()) {
    g->set_shift(bool_field(body, "shift", false));
  }
  g->load(options, keep_alive);
  if (spec.messages.empty()) {
    send_ordered(res, {{"model", model},
                       {"created_at", now_rfc3339()},
                       {"message", empty_message},
                       {"done", true},
                       {"done_reason", "load"}});
    return;
  }

  const PreparedChat chat = prepare_chat(*g, std::move(spec));
  if (render_only) {
    send_ordered(res, {{"model", model},
                       {"created_at", now_rfc3339()},
                       {"message", empty_message},
                       {"done", false},
                       {"_debug_info", {{"rendered_template", chat.prompt}}}});
    return;
  }

  g->submit_chat(chat, options, top_logprobs);

  const bool with_logprobs = top_logprobs >= 0;
  auto n_calls = std::make_shared<size_t>(0);
  auto chunk = [model, with_logprobs, n_calls](const parse::Delta& d) {
    OJson j = {{"model", model},
               {"created_at", now_rfc3339()},
               {"message", chat_message(d, *n_calls)},
               {"done", false}};
    *n_calls += d.calls.size();
    if (with_logprobs && !d.logprobs.empty()) j["logprobs"] = logprobs_json(d.logprobs);
    return j;
  };
  auto final_object = [model, with_logprobs](Generation& gen, const runner::SequenceResult& r,
                                             const parse::Delta& all) {
    OJson j = {{"model", model},
               {"created_at", now_rfc3339()},
               {"message", chat_message(all, 0)},
               {"done", true},
               {"done_reason", r.stats.done_reason}};
    add_metrics(j, gen, r.stats);
    if (with_logprobs && !all.logprobs.empty()) j["logprobs"] = logprobs_json(all.logprobs);
    return j;
  };
  respond(res, g, stream, chunk, final_object);
}

std::vector<std::string> embed_inputs(const json& input) {
  std::vector<std::string> out;
  if (input.is_null()) return out;
  if (input.is_string()) {
    if (!input.get<std::string>().empty()) out.push_back(input.get<std::string>());
    return out;
  }
  if (!input.is_array()) throw HttpError(400, "invalid input type");
  for (const auto& v : input) {
    if (!v.is_string()) throw HttpError(400, "invalid input type");
    out.push_back(v.get<std::string>());
  }
  return out;
}

void handle_embed(Context& ctx, const httplib::Request& req, httplib::Response& res) {
  const json body = parse_ordered_body(req);
  const std::string model = string_field(body, "model");
  const std::vector<std::string> inputs = embed_inputs(body.value("input", json()));
  int dimensions = 0;
  if (const auto it = body.find("dimensions"); it != body.end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<int>() < 0)
      throw HttpError(400, "dimensions must be a non-negative integer");
    dimensions = it->get<int>();
  }
  const bool truncate = bool_field(body, "truncate", true);
  store::ModelInfo info = find_model(ctx, model);
  const auto keep_alive = request_keep_alive(body);
  const sample::Options options = request_options(info, body.value("options", json()));
  const Embeddings e = embed_texts(ctx, info, options, keep_alive, inputs, truncate, dimensions);
  OJson out = {{"model", model}, {"embeddings", e.vectors}};
  if (!inputs.empty()) {
    out["total_duration"] = static_cast<int64_t>(e.total_duration.count());
    out["load_duration"] = static_cast<int64_t>(e.load_duration.count());
    out["prompt_eval_count"] = e.prompt_tokens;
  }
  send_ordered(res, out);
}

void handle_embeddings(Context& ctx, const httplib::Request& req, httplib::Response& res) {
  const json body = parse_ordered_body(req);
  const std::string model = string_field(body, "model");
  const std::string prompt = string_field(body, "prompt");
  store::ModelInfo info = find_model(ctx, model);
  const auto keep_alive = request_keep_alive(body);
  const sample::Options options = request_options(info, body.value("options", json()));
  std::vector<std::string> inputs;
  if (!prompt.empty()) inputs.push_back(prompt);
  const Embeddings e = embed_texts(ctx, info, options, keep_alive, inputs, true, 0);
  OJson embedding = OJson::array();
  if (!e.vectors.empty())
    for (const float x : e.vectors[0]) embedding.push_back(static_cast<double>(x));
  send_ordered(res, {{"embedding", embedding}});
}

using Handler = void (*)(Context&, const httplib::Request&, httplib::Response&);

// Every error becomes {"error": "..."} with its status; the server keeps serving.
httplib::Server::Handler guarded(Context& ctx, Handler h) {
  return [&ctx, h](const httplib::Request& req, httplib::Response& res) {
    try {
      h(ctx, req, res);
    } catch (const std::exception& e) {
      send_error(res, error_status(e), e.what());
    }
  };
}

}  // namespace

void add_generate_routes(httplib::Server& http, Context& ctx) {
  http.Post("/api/generate", guarded(ctx, handle_generate));
  http.Post("/api/chat", guarded(ctx, handle_chat));
  http.Post("/api/embed", guarded(ctx, handle_embed));
  http.Post("/api/embeddings", guarded(ctx, handle_embeddings));
}

}  // namespace corral::server
