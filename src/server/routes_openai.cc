// The OpenAI-compatible API (Ollama's openai/ and middleware/openai.go, with OpenAI's own field
// names where Ollama lacks them): /v1/chat/completions, /v1/completions, /v1/models,
// /v1/models/{id}, /v1/embeddings. Streams are server-sent events, `data: {json}\n\n` per chunk,
// ending with `data: [DONE]`. Errors are {"error": {"message", "type", "param", "code"}}.
#include <httplib.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "ml/gguf/metadata.h"
#include "ml/gguf/reader.h"
#include "server/generation.h"
#include "server/images.h"
#include "server/server.h"
#include "store/base64.h"

namespace corral::server {
namespace {

using json = OJson;

class OpenAiError : public HttpError {
 public:
  OpenAiError(int status, const std::string& message, std::string param = "")
      : HttpError(status, message), param(std::move(param)) {}
  std::string param;
};

OJson error_body(int status, const std::string& message, const std::string& param = "") {
  const char* type = status == 400   ? "invalid_request_error"
                     : status == 404 ? "not_found_error"
                                     : "api_error";
  return {{"error",
           {{"message", error_message(message)},
            {"type", type},
            {"param", param.empty() ? OJson(nullptr) : OJson(param)},
            {"code", nullptr}}}};
}

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string random_id(const char* prefix) {
  static thread_local std::mt19937 rng{std::random_device{}()};
  return prefix + std::to_string(rng() % 999);
}

std::string sse(const OJson& j) { return "data: " + dump_json(j) + "\n\n"; }

std::optional<double> number_field(const json& body, const char* key) {
  const auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_number()) throw OpenAiError(400, std::string(key) + " must be a number", key);
  return it->get<double>();
}

std::optional<int64_t> int_field(const json& body, const char* key) {
  const auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_number_integer())
    throw OpenAiError(400, std::string(key) + " must be an integer", key);
  return it->get<int64_t>();
}

// OpenAI's sampling fields as Ollama options (openai.go's FromChatRequest): temperature and
// top_p default to 1.0 as OpenAI's do.
json sampling_options(const json& body, bool chat) {
  json o = json::object();
  if (const auto it = body.find("stop"); it != body.end() && !it->is_null()) {
    if (it->is_string()) {
      o["stop"] = json::array({*it});
    } else if (it->is_array()) {
      for (const auto& s : *it)
        if (!s.is_string()) throw OpenAiError(400, "invalid type for 'stop' field", "stop");
      o["stop"] = *it;
    } else {
      throw OpenAiError(400, "invalid type for 'stop' field", "stop");
    }
  }
  std::optional<int64_t> max_tokens = int_field(body, "max_tokens");
  if (chat)
    if (auto m = int_field(body, "max_completion_tokens")) max_tokens = m;
  if (max_tokens) o["num_predict"] = *max_tokens;
  o["temperature"] = number_field(body, "temperature").value_or(1.0);
  o["top_p"] = number_field(body, "top_p").value_or(1.0);
  if (const auto s = int_field(body, "seed")) o["seed"] = *s;
  if (const auto f = number_field(body, "frequency_penalty")) o["frequency_penalty"] = *f;
  if (const auto p = number_field(body, "presence_penalty")) o["presence_penalty"] = *p;
  if (const auto n = int_field(body, "n"); n && *n != 1)
    throw OpenAiError(400, "n must be 1 (one choice per request)", "n");
  return o;
}

bool include_usage(const json& body) {
  const auto it = body.find("stream_options");
  if (it == body.end() || !it->is_object()) return false;
  return it->value("include_usage", false);
}

std::string finish_reason(const std::string& done_reason, bool tool_calls) {
  if (done_reason == "length") return "length";
  if (tool_calls) return "tool_calls";
  return "stop";
}

OJson usage_json(int prompt_tokens, int completion_tokens) {
  return {{"prompt_tokens", prompt_tokens},
          {"completion_tokens", completion_tokens},
          {"total_tokens", prompt_tokens + completion_tokens}};
}

// ---- /v1/chat/completions -------------------------------------------------------------------

// OpenAI messages as Ollama's: content parts joined, tool-call arguments parsed from their JSON
// strings, a tool message's function name found from its tool_call_id.
json chat_messages_from_openai(const json& messages, bool allow_image_urls) {
  if (!messages.is_array() || messages.empty())
    throw OpenAiError(400, "messages must be a non-empty array", "messages");
  json out = json::array();
  for (const auto& m : messages) {
    if (!m.is_object()) throw OpenAiError(400, "invalid message format", "messages");
    json msg = {{"role", m.value("role", "")}};
    if (msg["role"] == "developer") msg["role"] = "system";
    const json content = m.value("content", json());
    if (content.is_string()) {
      msg["content"] = content;
    } else if (content.is_array()) {
      std::string text;
      json images = json::array();
      for (const auto& part : content) {
        const std::string type = part.is_object() ? part.value("type", "") : "";
        if (type == "text" && part.contains("text") && part["text"].is_string()) {
          if (!text.empty()) text += "\n";
          text += part["text"].get<std::string>();
        } else if (type == "image_url") {
          // {"image_url": {"url": ...}} as the SDK sends it, or {"image_url": "..."}.
          json u = part.value("image_url", json());
          if (u.is_object()) u = u.value("url", json());
          if (!u.is_string()) throw OpenAiError(400, "image_url needs a url", "messages");
          const std::string& url = u.get_ref<const std::string&>();
          const size_t comma = url.find(',');
          if (url.starts_with("data:") && comma != std::string::npos &&
              std::string_view(url).substr(0, comma).ends_with(";base64")) {
            images.push_back(url.substr(comma + 1));  // decoded with the other images
          } else {
            images.push_back(store::base64_encode(image_from_url(url, allow_image_urls)));
          }
        } else if (type == "input_audio") {
          throw OpenAiError(400, "audio input is not supported", "messages");
        } else {
          throw OpenAiError(400, "invalid message format", "messages");
        }
      }
      msg["content"] = text;
      if (!images.empty()) msg["images"] = std::move(images);
    } else if (content.is_null()) {
      if (!m.contains("tool_calls"))
        throw OpenAiError(400, "invalid message content type: null", "messages");
      msg["content"] = "";
    } else {
      throw OpenAiError(400, "invalid message content type", "messages");
    }
    for (const char* key : {"reasoning", "reasoning_content"})
      if (m.contains(key) && m[key].is_string()) msg["thinking"] = m[key];
    if (const auto it = m.find("tool_calls"); it != m.end() && it->is_array()) {
      json calls = json::array();
      for (const auto& c : *it) {
        const json fn = c.value("function", json::object());
        json args = fn.value("arguments", json::object());
        if (args.is_string()) {
          try {
            const std::string& text = args.get_ref<const std::string&>();
            check_json_depth(text, "tool call arguments");
            args = json::parse(text);
          } catch (const json::exception&) {
            throw OpenAiError(400, "tool call arguments are not valid JSON", "messages");
          }
        }
        json call = {{"function", {{"name", fn.value("name", "")}, {"arguments", args}}}};
        if (c.contains("id") && c["id"].is_string()) call["id"] = c["id"];
        calls.push_back(std::move(call));
      }
      msg["tool_calls"] = std::move(calls);
    }
    if (msg["role"] == "tool") {
      std::string name = m.value("name", "");
      const std::string id = m.value("tool_call_id", "");
      if (name.empty() && !id.empty()) {
        for (const auto& prev : out)
          if (prev.contains("tool_calls"))
            for (const auto& c : prev["tool_calls"])
              if (c.value("id", "") == id) name = c["function"].value("name", "");
      }
      if (!name.empty()) msg["tool_name"] = name;
      if (!id.empty()) msg["tool_call_id"] = id;
    }
    out.push_back(std::move(msg));
  }
  return out;
}

ToolChoice tool_choice_of(const json& body) {
  ToolChoice c;
  const auto it = body.find("tool_choice");
  if (it == body.end() || it->is_null()) return c;
  if (it->is_string()) {
    const std::string s = it->get<std::string>();
    if (s == "none")
      c.mode = ToolChoice::Mode::kNone;
    else if (s == "auto")
      c.mode = ToolChoice::Mode::kAuto;
    else if (s == "required")
      c.mode = ToolChoice::Mode::kRequired;
    else
      throw OpenAiError(400, "invalid tool_choice '" + s + "'", "tool_choice");
    return c;
  }
  if (it->is_object() && it->contains("function") && (*it)["function"].is_object()) {
    c.mode = ToolChoice::Mode::kNamed;
    c.name = (*it)["function"].value("name", "");
    if (!c.name.empty()) return c;
  }
  throw OpenAiError(400, "invalid tool_choice", "tool_choice");
}

std::shared_ptr<const sample::Grammar> response_format_grammar(const json& body) {
  const auto it = body.find("response_format");
  if (it == body.end() || it->is_null()) return nullptr;
  if (!it->is_object()) throw OpenAiError(400, "invalid response_format", "response_format");
  const std::string type = it->value("type", "");
  if (type == "text" || type.empty()) return nullptr;
  if (type == "json_object") return format_grammar("json");
  if (type == "json_schema") {
    const json js = it->value("json_schema", json::object());
    if (!js.is_object() || !js.contains("schema"))
      throw OpenAiError(400, "response_format json_schema needs a schema", "response_format");
    return format_grammar(js["schema"]);
  }
  throw OpenAiError(400, "invalid response_format type '" + type + "'", "response_format");
}

parse::Think think_of(const json& body) {
  std::string effort;
  if (const auto it = body.find("reasoning"); it != body.end() && it->is_object())
    effort = it->value("effort", "");
  else if (const auto e = body.find("reasoning_effort"); e != body.end() && e->is_string())
    effort = e->get<std::string>();
  parse::Think t;
  if (effort.empty()) return t;
  if (effort == "none") {
    t.enabled = false;
  } else if (effort == "minimal" || effort == "low" || effort == "medium" || effort == "high" ||
             effort == "max" || effort == "xhigh") {
    t.enabled = true;
    t.level = effort == "minimal" ? "low" : effort == "xhigh" ? "max" : effort;
  } else {
    throw OpenAiError(400, "invalid reasoning value: \"" + effort + "\"", "reasoning_effort");
  }
  return t;
}

OJson openai_tool_calls(const std::vector<tmpl::ToolCall>& calls, size_t first_index) {
  OJson out = OJson::array();
  for (size_t i = 0; i < calls.size(); ++i) {
    out.push_back(
        {{"index", first_index + i},
         {"id", calls[i].id.empty() ? tool_call_id() : calls[i].id},
         {"type", "function"},
         {"function",
          {{"name", calls[i].name},
           {"arguments", calls[i].arguments.dump(
                             -1, ' ', false, nlohmann::ordered_json::error_handler_t::replace)}}}});
  }
  return out;
}

void handle_chat_completions(Context& ctx, const httplib::Request& req, httplib::Response& res) {
  const json body = parse_ordered_body(req);
  const std::string model = string_field(body, "model");
  const bool stream = bool_field(body, "stream", false);
  const bool usage_in_stream = include_usage(body);
  int top_logprobs = -1;
  if (bool_field(body, "logprobs", false)) {
    top_logprobs = static_cast<int>(int_field(body, "top_logprobs").value_or(0));
    if (top_logprobs < 0 || top_logprobs > 20)
      throw OpenAiError(400, "top_logprobs must be between 0 and 20", "top_logprobs");
  }

  ChatSpec spec;
  spec.messages = normalize_messages(
      chat_messages_from_openai(body.value("messages", json()), ctx.options.allow_image_urls),
      model, spec.images);
  if (const auto it = body.find("tools"); it != body.end() && !it->is_null()) {
    if (!it->is_array()) throw OpenAiError(400, "tools must be an array", "tools");
    spec.tools = *it;
  }
  spec.tool_choice = tool_choice_of(body);
  if (spec.tool_choice.mode == ToolChoice::Mode::kRequired ||
      spec.tool_choice.mode == ToolChoice::Mode::kNamed) {
    if (!spec.tools.is_array() || spec.tools.empty())
      throw OpenAiError(400, "tool_choice requires tools", "tool_choice");
  }
  spec.think = think_of(body);
  spec.grammar = response_format_grammar(body);
  // Ollama's truncate (not OpenAI's): false keeps the whole history even past the context.
  spec.truncate = bool_field(body, "truncate", true);

  store::ModelInfo info = find_model(ctx, model);
  if (!spec.images.empty() && !has_vision(info)) {
    throw OpenAiError(400, "\"" + model + "\" does not support images (it has no vision encoder)",
                      "messages");
  }
  const sample::Options options = request_options(info, sampling_options(body, true));
  auto g = std::make_shared<Generation>(ctx, model, std::move(info));
  g->load(options, std::nullopt);
  const PreparedChat chat = prepare_chat(*g, std::move(spec));
  const int prompt_tokens = static_cast<int>(chat.tokens.size());

  const std::string id = random_id("chatcmpl-");
  const int64_t created = unix_now();
  if (bool_field(body, "_debug_render_only", false)) {
    send_ordered(res, {{"id", id},
                       {"object", "chat.completion"},
                       {"created", created},
                       {"model", model},
                       {"system_fingerprint", "fp_ollama"},
                       {"choices", OJson::array()},
                       {"usage", usage_json(0, 0)},
                       {"_debug_info", {{"rendered_template", chat.prompt}}}});
    return;
  }

  g->submit_chat(chat, options, top_logprobs);

  auto base = [id, created, model](const char* object) {
    return OJson{{"id", id},
                 {"object", object},
                 {"created", created},
                 {"model", model},
                 {"system_fingerprint", "fp_ollama"}};
  };

  if (!stream) {
    parse::Delta all, d;
    while (g->next(d)) {
      all.thinking += d.thinking;
      all.content += d.content;
      for (auto& c : d.calls) all.calls.push_back(std::move(c));
      for (auto& l : d.logprobs) all.logprobs.push_back(std::move(l));
    }
    const runner::SequenceResult& r = g->result();
    OJson message = {{"role", "assistant"}};
    message["content"] =
        all.content.empty() && !all.calls.empty() ? OJson(nullptr) : OJson(all.content);
    if (!all.thinking.empty()) message["reasoning"] = all.thinking;
    if (!all.calls.empty()) message["tool_calls"] = openai_tool_calls(all.calls, 0);
    OJson choice = {{"index", 0},
                    {"message", std::move(message)},
                    {"finish_reason", finish_reason(r.stats.done_reason, !all.calls.empty())}};
    choice["logprobs"] =
        top_logprobs >= 0 ? OJson{{"content", logprobs_json(all.logprobs)}} : OJson(nullptr);
    OJson out = base("chat.completion");
    out["choices"] = OJson::array({std::move(choice)});
    out["usage"] = usage_json(prompt_tokens, r.stats.eval_count);
    send_ordered(res, out);
    return;
  }

  stream_response(
      res, "text/event-stream",
      [g, base, top_logprobs, usage_in_stream, prompt_tokens](const StreamWrite& write) {
        size_t n_calls = 0;
        bool first = true;
        auto chunk = [&](OJson delta, const OJson& finish, const parse::Delta* d) {
          OJson c = base("chat.completion.chunk");
          OJson choice = {{"index", 0}, {"delta", std::move(delta)}};
          if (d && top_logprobs >= 0 && !d->logprobs.empty())
            choice["logprobs"] = {{"content", logprobs_json(d->logprobs)}};
          choice["finish_reason"] = finish;
          c["choices"] = OJson::array({std::move(choice)});
          return sse(c);
        };
        try {
          parse::Delta d;
          while (g->next(d)) {
            OJson delta = OJson::object();
            if (first) delta["role"] = "assistant";
            first = false;
            if (!d.content.empty() || d.calls.empty()) delta["content"] = d.content;
            if (!d.thinking.empty()) delta["reasoning"] = d.thinking;
            if (!d.calls.empty()) {
              delta["tool_calls"] = openai_tool_calls(d.calls, n_calls);
              n_calls += d.calls.size();
            }
            if (!write(chunk(std::move(delta), nullptr, &d))) {
              g->cancel();
              return;
            }
          }
          const runner::SequenceResult& r = g->result();
          if (first && !write(chunk({{"role", "assistant"}, {"content", ""}}, nullptr, nullptr)))
            return;
          if (!write(
                  chunk(OJson::object(), finish_reason(r.stats.done_reason, n_calls > 0), nullptr)))
            return;
          if (usage_in_stream) {
            OJson u = base("chat.completion.chunk");
            u["choices"] = OJson::array();
            u["usage"] = usage_json(prompt_tokens, r.stats.eval_count);
            if (!write(sse(u))) return;
          }
          write("data: [DONE]\n\n");
        } catch (const std::exception& e) {
          g->cancel();
          write(sse(error_body(error_status(e), e.what())));
        }
      });
}

// ---- /v1/completions ------------------------------------------------------------------------

void handle_completions(Context& ctx, const httplib::Request& req, httplib::Response& res) {
  const json body = parse_ordered_body(req);
  const std::string model = string_field(body, "model");
  const bool stream = bool_field(body, "stream", false);
  const bool usage_in_stream = include_usage(body);
  const bool echo = bool_field(body, "echo", false);
  std::string prompt;
  if (const auto it = body.find("prompt"); it != body.end() && !it->is_null()) {
    if (it->is_string()) {
      prompt = it->get<std::string>();
    } else if (it->is_array() && it->size() == 1 && (*it)[0].is_string()) {
      prompt = (*it)[0].get<std::string>();
    } else {
      throw OpenAiError(400, "prompt must be a string (one prompt per request)", "prompt");
    }
  }
  if (prompt.empty()) throw OpenAiError(400, "prompt is required", "prompt");
  int top_logprobs = -1;
  if (const auto n = int_field(body, "logprobs"); n && *n > 0) {
    if (*n > 20) throw OpenAiError(400, "logprobs must be between 0 and 20", "logprobs");
    top_logprobs = static_cast<int>(*n);
  }

  store::ModelInfo info = find_model(ctx, model);
  const sample::Options options = request_options(info, sampling_options(body, false));
  auto g = std::make_shared<Generation>(ctx, model, std::move(info));
  g->load(options, std::nullopt);
  GenerateSpec spec;
  spec.prompt = prompt;
  spec.suffix = string_field(body, "suffix");
  const PreparedGenerate prepared = prepare_generate(*g, std::move(spec));
  const int prompt_tokens = static_cast<int>(prepared.tokens.size());

  runner::SequenceRequest sr;
  sr.prompt = prepared.tokens;
  sr.options = options;
  sr.top_logprobs = top_logprobs;
  g->submit(std::move(sr), prepared.parser());

  const std::string id = random_id("cmpl-");
  const int64_t created = unix_now();
  auto base = [id, created, model]() {
    return OJson{{"id", id},
                 {"object", "text_completion"},
                 {"created", created},
                 {"model", model},
                 {"system_fingerprint", "fp_ollama"}};
  };
  auto choice = [top_logprobs](const std::string& text, const OJson& finish,
                               std::span<const runner::Logprob> lps) {
    OJson c = {{"text", text}, {"index", 0}};
    c["logprobs"] = top_logprobs >= 0 ? OJson{{"content", logprobs_json(lps)}} : OJson(nullptr);
    c["finish_reason"] = finish;
    return c;
  };

  if (!stream) {
    parse::Delta all, d;
    while (g->next(d)) {
      all.content += d.content;
      for (auto& l : d.logprobs) all.logprobs.push_back(std::move(l));
    }
    const runner::SequenceResult& r = g->result();
    OJson out = base();
    out["choices"] =
        OJson::array({choice((echo ? prompt : "") + all.content,
                             finish_reason(r.stats.done_reason, false), all.logprobs)});
    out["usage"] = usage_json(prompt_tokens, r.stats.eval_count);
    send_ordered(res, out);
    return;
  }

  stream_response(
      res, "text/event-stream",
      [g, base, choice, echo, prompt, usage_in_stream, prompt_tokens](const StreamWrite& write) {
        try {
          auto send = [&](const std::string& text, const OJson& finish,
                          std::span<const runner::Logprob> lps) {
            OJson c = base();
            c["choices"] = OJson::array({choice(text, finish, lps)});
            return write(sse(c));
          };
          if (echo && !send(prompt, nullptr, {})) {
            g->cancel();
            return;
          }
          parse::Delta d;
          while (g->next(d)) {
            if (!send(d.content, nullptr, d.logprobs)) {
              g->cancel();
              return;
            }
          }
          const runner::SequenceResult& r = g->result();
          if (!send("", finish_reason(r.stats.done_reason, false), {})) return;
          if (usage_in_stream) {
            OJson u = base();
            u["choices"] = OJson::array();
            u["usage"] = usage_json(prompt_tokens, r.stats.eval_count);
            if (!write(sse(u))) return;
          }
          write("data: [DONE]\n\n");
        } catch (const std::exception& e) {
          g->cancel();
          write(sse(error_body(error_status(e), e.what())));
        }
      });
}

// ---- /v1/models -----------------------------------------------------------------------------

// The context length the model was trained for (GGUF <arch>.context_length), when readable.
std::optional<int64_t> context_length(Context& ctx, const store::Manifest& manifest) {
  try {
    const store::Layer* layer = manifest.find_layer(store::kMediaModel);
    if (!layer) return std::nullopt;
    const ml::gguf::File file = ml::gguf::File::open(ctx.store.blob_path(layer->digest).string());
    const auto& md = file.metadata();
    const auto* arch = md.find("general.architecture");
    if (!arch || !arch->is<std::string>()) return std::nullopt;
    const auto* v = md.find(arch->as_string() + ".context_length");
    if (!v) return std::nullopt;
    if (v->is<uint32_t>()) return v->as<uint32_t>();
    if (v->is<uint64_t>()) return static_cast<int64_t>(v->as<uint64_t>());
    if (v->is<int32_t>()) return v->as<int32_t>();
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

OJson model_object(Context& ctx, const store::ModelEntry& e) {
  const auto modified = std::chrono::file_clock::to_sys(e.modified);
  OJson m = {
      {"id", e.name.display()},
      {"object", "model"},
      {"created",
       std::chrono::duration_cast<std::chrono::seconds>(modified.time_since_epoch()).count()},
      {"owned_by", e.name.ns}};
  if (const auto n = context_length(ctx, e.manifest)) m["context_length"] = *n;
  return m;
}

void handle_models(Context& ctx, const httplib::Request&, httplib::Response& res) {
  OJson data = OJson::array();
  for (const auto& e : ctx.store.list()) data.push_back(model_object(ctx, e));
  send_ordered(res, {{"object", "list"}, {"data", std::move(data)}});
}

void handle_model(Context& ctx, const httplib::Request& req, httplib::Response& res) {
  const std::string id = req.matches.size() > 1 ? std::string(req.matches[1]) : "";
  const std::string not_found = "model '" + excerpt(id) + "' not found";
  if (!store::ModelName::valid(id)) throw OpenAiError(404, not_found);
  const store::ModelName name = store::ModelName::parse(id);
  for (const auto& e : ctx.store.list()) {
    if (e.name == name) {
      OJson m = model_object(ctx, e);
      m["id"] = id;
      send_ordered(res, m);
      return;
    }
  }
  throw OpenAiError(404, not_found);
}

// ---- /v1/embeddings -------------------------------------------------------------------------

void handle_embeddings(Context& ctx, const httplib::Request& req, httplib::Response& res) {
  const json body = parse_ordered_body(req);
  const std::string model = string_field(body, "model");
  std::vector<std::string> inputs;
  const json input = body.value("input", json());
  if (input.is_string()) {
    inputs.push_back(input.get<std::string>());
  } else if (input.is_array() && !input.empty()) {
    for (const auto& v : input) {
      if (!v.is_string()) throw OpenAiError(400, "invalid input: expected strings", "input");
      inputs.push_back(v.get<std::string>());
    }
  } else {
    throw OpenAiError(400, "invalid input", "input");
  }
  for (const auto& s : inputs)
    if (s.empty()) throw OpenAiError(400, "invalid input: empty string", "input");
  const std::string encoding = string_field(body, "encoding_format");
  if (!encoding.empty() && encoding != "float" && encoding != "base64")
    throw OpenAiError(400, "encoding_format must be \"float\" or \"base64\"", "encoding_format");
  const int dimensions = static_cast<int>(int_field(body, "dimensions").value_or(0));
  if (dimensions < 0) throw OpenAiError(400, "dimensions must be positive", "dimensions");

  store::ModelInfo info = find_model(ctx, model);
  const sample::Options options = request_options(info, json::object());
  const Embeddings e = embed_texts(ctx, info, options, std::nullopt, inputs, true, dimensions);
  OJson data = OJson::array();
  for (size_t i = 0; i < e.vectors.size(); ++i) {
    OJson item = {{"object", "embedding"}};
    if (encoding == "base64")
      item["embedding"] = base64_f32_le(e.vectors[i]);
    else
      item["embedding"] = e.vectors[i];
    item["index"] = i;
    data.push_back(std::move(item));
  }
  send_ordered(
      res, {{"object", "list"},
            {"data", std::move(data)},
            {"model", model},
            {"usage", {{"prompt_tokens", e.prompt_tokens}, {"total_tokens", e.prompt_tokens}}}});
}

using Handler = void (*)(Context&, const httplib::Request&, httplib::Response&);

httplib::Server::Handler guarded(Context& ctx, Handler h) {
  return [&ctx, h](const httplib::Request& req, httplib::Response& res) {
    try {
      h(ctx, req, res);
    } catch (const OpenAiError& e) {
      send_ordered(res, error_body(e.status, e.what(), e.param), e.status);
    } catch (const std::exception& e) {
      const int status = error_status(e);
      send_ordered(res, error_body(status, e.what()), status);
    }
  };
}

}  // namespace

void add_openai_routes(httplib::Server& http, Context& ctx) {
  http.Post("/v1/chat/completions", guarded(ctx, handle_chat_completions));
  http.Post("/v1/completions", guarded(ctx, handle_completions));
  http.Get("/v1/models", guarded(ctx, handle_models));
  http.Get(R"(/v1/models/(.+))", guarded(ctx, handle_model));
  http.Post("/v1/embeddings", guarded(ctx, handle_embeddings));
}

}  // namespace corral::server
