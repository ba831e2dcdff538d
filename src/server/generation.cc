#include "server/generation.h"

#include <httplib.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <ctime>
#include <deque>
#include <random>
#include <regex>
#include <stdexcept>
#include <unordered_map>
#include <utility>

#include "ml/gguf/metadata.h"
#include "server/images.h"
#include "server/server.h"
#include "store/base64.h"
#include "template/ollama.h"
#include "tokenizer/tokenizer.h"

namespace corral::server {

// ---- Request fields -------------------------------------------------------------------------

std::string dump_json(const OJson& j) {
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

void send_ordered(httplib::Response& res, const OJson& body, int status) {
  res.status = status;
  res.set_content(dump_json(body), "application/json; charset=utf-8");
}

std::string rfc3339_nano(std::chrono::system_clock::time_point t) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch());
  std::time_t secs = static_cast<std::time_t>(ns.count() / 1000000000);
  long frac = static_cast<long>(ns.count() % 1000000000);
  if (frac < 0) {
    frac += 1000000000;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out = buf;
  if (frac != 0) {
    char digits[16];
    std::snprintf(digits, sizeof digits, ".%09ld", frac);
    std::string f = digits;
    while (f.back() == '0') f.pop_back();
    out += f;
  }
  return out + "Z";
}

store::ModelInfo find_model(Context& ctx, const std::string& name) {
  if (name.empty()) throw HttpError(400, "model is required");
  const std::string not_found = "model '" + excerpt(name) + "' not found";
  store::ModelName parsed;
  try {
    parsed = store::ModelName::parse(name);
  } catch (const store::NameError&) {
    throw HttpError(404, not_found);
  }
  std::optional<store::Manifest> manifest = ctx.store.find_manifest(parsed);
  if (!manifest) throw HttpError(404, not_found);
  return store::resolve_manifest(ctx.store, parsed, std::move(*manifest));
}

sample::Options request_options(const store::ModelInfo& info, const OJson& options) {
  sample::Options o;
  std::vector<std::string> unknown;
  try {
    o.apply(nlohmann::json::parse(info.parameters.dump()), &unknown);
  } catch (const std::invalid_argument&) {
    // A model's PARAMETERs were checked when it was created; one from an older store that no
    // longer parses must not make the model unusable.
  }
  if (options.is_null()) return o;
  if (!options.is_object()) throw HttpError(400, "options must be an object");
  try {
    o.apply(nlohmann::json::parse(options.dump()), &unknown);
  } catch (const std::invalid_argument& e) {
    throw HttpError(400, e.what());
  }
  return o;
}

std::optional<runner::Duration> request_keep_alive(const OJson& body) {
  const auto it = body.find("keep_alive");
  if (it == body.end() || it->is_null()) return std::nullopt;
  try {
    return runner::parse_keep_alive(nlohmann::json::parse(it->dump()));
  } catch (const std::exception& e) {
    throw HttpError(400, e.what());
  }
}

std::shared_ptr<const sample::Grammar> format_grammar(const OJson& format) {
  if (format.is_null()) return nullptr;
  if (format.is_string()) {
    const std::string f = format.get<std::string>();
    if (f.empty()) return nullptr;
    if (f == "json") return sample::Grammar::json_object();
    throw HttpError(400, "invalid format '" + f + "': expected \"json\" or a JSON schema");
  }
  if (!format.is_object())
    throw HttpError(400, "invalid format: expected \"json\" or a JSON schema");
  try {
    return sample::Grammar::json_schema(format);
  } catch (const std::invalid_argument& e) {
    throw HttpError(400, std::string("invalid JSON schema in format: ") + e.what());
  }
}

namespace {

// Builds an ordered_json from SAX events. nlohmann's own parser inserts each object member with
// ordered_map::emplace, which looks for the key among those before it: an object of n keys costs
// n^2/2 string comparisons (100,000 unknown options kept a request busy for minutes). Here each
// open object indexes its keys in a hash map and members are appended to the map's vector
// directly. Duplicate keys behave as nlohmann's: the last value wins, at the first key's place.
class OrderedJsonBuilder : public nlohmann::json_sax<OJson> {
 public:
  explicit OrderedJsonBuilder(OJson& root) : root_(root) {}

  bool null() override { return put(nullptr) != nullptr; }
  bool boolean(bool v) override { return put(v) != nullptr; }
  bool number_integer(number_integer_t v) override { return put(v) != nullptr; }
  bool number_unsigned(number_unsigned_t v) override { return put(v) != nullptr; }
  bool number_float(number_float_t v, const string_t&) override { return put(v) != nullptr; }
  bool string(string_t& v) override { return put(std::move(v)) != nullptr; }
  bool binary(binary_t& v) override { return put(OJson::binary(std::move(v))) != nullptr; }
  bool start_object(std::size_t) override {
    open_.push_back(put(OJson::object()));
    keys_.emplace_back();
    return true;
  }
  bool key(string_t& k) override {
    auto& members =
        static_cast<OJson::object_t::Container&>(open_.back()->get_ref<OJson::object_t&>());
    const auto [it, added] = keys_.back().try_emplace(k, members.size());
    if (added) members.emplace_back(std::move(k), nullptr);
    member_ = &members[it->second].second;
    return true;
  }
  bool end_object() override {
    open_.pop_back();
    keys_.pop_back();
    return true;
  }
  bool start_array(std::size_t) override {
    open_.push_back(put(OJson::array()));
    keys_.emplace_back();
    return true;
  }
  bool end_array() override { return end_object(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    throw HttpError(400, "invalid JSON in request body: " + excerpt(e.what(), 200));
  }

 private:
  // Places a value where the document is: the root, the end of the open array, or the member
  // whose key came last. Only the members of the innermost open container are ever appended to,
  // so the pointers to the enclosing ones stay valid.
  template <class V>
  OJson* put(V&& v) {
    if (open_.empty()) {
      root_ = OJson(std::forward<V>(v));
      return &root_;
    }
    OJson& top = *open_.back();
    if (top.is_array()) {
      top.get_ref<OJson::array_t&>().emplace_back(std::forward<V>(v));
      return &top.get_ref<OJson::array_t&>().back();
    }
    *member_ = OJson(std::forward<V>(v));
    return member_;
  }

  OJson& root_;
  std::vector<OJson*> open_;  // the open objects and arrays, outermost first
  std::vector<std::unordered_map<std::string, size_t>> keys_;  // per open one (empty: arrays)
  OJson* member_ = nullptr;
};

}  // namespace

OJson parse_ordered_json(std::string_view text) {
  OJson out;
  OrderedJsonBuilder builder(out);
  OJson::sax_parse(text, &builder);
  return out;
}

OJson parse_ordered_body(const httplib::Request& req) {
  if (req.body.empty()) throw HttpError(400, "missing request body");
  check_json_depth(req.body);
  OJson body = parse_ordered_json(req.body);
  if (!body.is_object()) throw HttpError(400, "the request body must be a JSON object");
  return body;
}

std::string string_field(const OJson& body, const char* key) {
  const auto it = body.find(key);
  if (it == body.end() || it->is_null()) return "";
  if (!it->is_string()) throw HttpError(400, std::string(key) + " must be a string");
  return it->get<std::string>();
}

bool bool_field(const OJson& body, const char* key, bool fallback) {
  const auto it = body.find(key);
  if (it == body.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) throw HttpError(400, std::string(key) + " must be a boolean");
  return it->get<bool>();
}

parse::Think parse_think(const OJson& value) {
  parse::Think t;
  if (value.is_null()) return t;
  if (value.is_boolean()) {
    t.enabled = value.get<bool>();
    return t;
  }
  if (value.is_string()) {
    if (auto parsed = parse::think_from_text(value.get<std::string>())) return *parsed;
  }
  throw HttpError(400, "invalid think value: " + json_excerpt(value) +
                           " (must be true, false, \"low\", \"medium\", \"high\" or \"max\")");
}

// ---- Prompts --------------------------------------------------------------------------------

tmpl::PromptTemplate model_template(const store::ModelInfo& info, const runner::Runner& runner) {
  return *tmpl::choose_template(info.template_text, runner.file().metadata());
}

std::vector<int32_t> tokenize_prompt(const tokenizer::Tokenizer& tokenizer, std::string_view text,
                                     bool add_special) {
  std::vector<int32_t> ids = tokenizer.encode(text, add_special, true);
  const int32_t bos = tokenizer.vocab().bos;
  if (ids.size() >= 2 && bos >= 0 && ids[0] == bos && ids[1] == bos) ids.erase(ids.begin());
  return ids;
}

tmpl::Json chat_messages(const store::ModelInfo& info, const tmpl::Json& request_messages) {
  tmpl::Json out = tmpl::Json::array();
  const bool starts_with_system =
      !request_messages.empty() && request_messages.front().value("role", "") == "system";
  if (info.system && !info.system->empty() && !starts_with_system)
    out.push_back({{"role", "system"}, {"content", *info.system}});
  if (info.messages.is_array())
    for (const auto& m : info.messages) out.push_back(m);
  for (const auto& m : request_messages) out.push_back(m);
  return out;
}

void images_field(const OJson& value, std::vector<std::string>& images) {
  if (value.is_null()) return;
  if (!value.is_array()) throw HttpError(400, "images must be an array of base64 strings");
  for (const auto& v : value) {
    if (!v.is_string()) throw HttpError(400, "images must be an array of base64 strings");
    if (images.size() >= kMaxImagesPerRequest) {
      throw HttpError(
          400, "a request may carry at most " + std::to_string(kMaxImagesPerRequest) + " images");
    }
    images.push_back(
        decode_base64(v.get_ref<const std::string&>(), "image " + std::to_string(images.size())));
  }
}

tmpl::Json normalize_messages(const OJson& messages, const std::string& model_name,
                              std::vector<std::string>& images) {
  if (messages.is_null()) return tmpl::Json::array();
  if (!messages.is_array()) throw HttpError(400, "messages must be an array");
  tmpl::Json out = tmpl::Json::array();
  for (const auto& m : messages) {
    if (!m.is_object()) throw HttpError(400, "each message must be an object");
    std::string role = string_field(m, "role");
    if (role.empty()) throw HttpError(400, "each message needs a role");
    for (char& c : role) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string content = string_field(m, "content");
    if (const auto it = m.find("images"); it != m.end()) {
      const size_t first = images.size();
      images_field(*it, images);
      std::string markers;
      for (size_t i = first; i < images.size(); ++i) markers += runner::image_marker(i);
      content = markers + content;
    }
    tmpl::Json msg = {{"role", role}, {"content", std::move(content)}};
    const std::string thinking = string_field(m, "thinking");
    if (!thinking.empty()) {
      msg["thinking"] = thinking;
      msg["reasoning_content"] = thinking;
    }
    if (const auto it = m.find("tool_calls"); it != m.end() && !it->is_null()) {
      if (!it->is_array()) throw HttpError(400, "tool_calls must be an array");
      msg["tool_calls"] = *it;
    }
    for (const char* key : {"tool_name", "tool_call_id", "name"}) {
      const std::string v = string_field(m, key);
      if (!v.empty()) msg[key] = v;
    }
    out.push_back(std::move(msg));
  }
  return out;
}

std::string render_chat(const tmpl::PromptTemplate& t, tmpl::ChatInput input,
                        const tokenizer::Tokenizer& tokenizer, int64_t num_ctx, bool truncate,
                        const tmpl::Limits& limits) {
  const tmpl::ParsedPrompt parsed(t);
  // Checked before each rendering (which polls it too, every few thousand steps).
  auto check_cancelled = [&] {
    if (limits.cancelled && limits.cancelled()) throw HttpError(400, "the request was cancelled");
  };
  auto fits = [&](const std::string& prompt) {
    return static_cast<int64_t>(tokenize_prompt(tokenizer, prompt).size()) <= num_ctx;
  };
  check_cancelled();
  std::string prompt = parsed.render(input, limits);
  if (!truncate || input.messages.size() <= 1 || fits(prompt)) return prompt;

  // Ollama keeps the most recent messages that fit, dropping the oldest, and always keeps the last
  // one. Trying every start in turn costs a rendering and a tokenization of the rest for each
  // message dropped, quadratic in the conversation; a prompt that fits still fits with fewer
  // messages, so the first start that fits is found by galloping back from the last message and
  // then bisecting, in O(log n) renderings no longer than twice the part that is kept.
  const tmpl::Json all = std::move(input.messages);
  std::vector<size_t> system;  // indices of the system messages, which are never dropped
  for (size_t j = 0; j < all.size(); ++j)
    if (all[j].value("role", "") == "system") system.push_back(j);
  // The prompt without the messages before `start` (the system messages among them stay).
  auto render_from = [&](size_t start) {
    check_cancelled();
    tmpl::Json msgs = tmpl::Json::array();
    for (size_t j : system) {
      if (j >= start) break;
      msgs.push_back(all[j]);
    }
    for (size_t j = start; j < all.size(); ++j) msgs.push_back(all[j]);
    input.messages = std::move(msgs);
    return parsed.render(input, limits);
  };
  const size_t last = all.size() - 1;
  size_t bad = 0;  // the latest start known not to fit
  size_t good = last;
  std::optional<std::string> good_prompt;  // the prompt from `good`, once rendered
  for (size_t back = 1; back < last; back *= 2) {
    const size_t start = last - back;
    prompt = render_from(start);
    if (!fits(prompt)) {
      bad = start;
      break;
    }
    good = start;
    good_prompt = std::move(prompt);
  }
  while (good - bad > 1) {
    const size_t start = bad + (good - bad) / 2;
    prompt = render_from(start);
    if (fits(prompt)) {
      good = start;
      good_prompt = std::move(prompt);
    } else {
      bad = start;
    }
  }
  return good_prompt ? std::move(*good_prompt) : render_from(last);
}

// ---- Tool calls -----------------------------------------------------------------------------

std::string prefix_gbnf_rules(std::string_view gbnf, std::string_view prefix) {
  auto word_char = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
  };
  std::string out;
  out.reserve(gbnf.size() * 2);
  size_t i = 0;
  while (i < gbnf.size()) {
    const char c = gbnf[i];
    if (c == '"' || c == '[') {
      // A literal or a character class: copied as it is, escapes included.
      const char close = c == '"' ? '"' : ']';
      size_t j = i + 1;
      while (j < gbnf.size() && gbnf[j] != close) j += gbnf[j] == '\\' ? 2 : 1;
      j = std::min(j + 1, gbnf.size());
      out.append(gbnf.substr(i, j - i));
      i = j;
    } else if (c == '#') {
      const size_t j = std::min(gbnf.find('\n', i), gbnf.size());
      i = j;
    } else if (c == '{') {
      const size_t j = std::min(gbnf.find('}', i), gbnf.size() - 1) + 1;
      out.append(gbnf.substr(i, j - i));
      i = j;
    } else if (word_char(c)) {
      size_t j = i;
      while (j < gbnf.size() && word_char(gbnf[j])) ++j;
      out.append(prefix);
      out.append(gbnf.substr(i, j - i));
      i = j;
    } else {
      out.push_back(c);
      ++i;
    }
  }
  return out;
}

namespace {

std::string gbnf_literal(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        out.push_back(c);
    }
  }
  return out + "\"";
}

}  // namespace

std::string tool_call_gbnf(const tmpl::ToolCallFormat& format, const OJson& tools,
                           const std::string& only) {
  // What goes around {"name": "f", "arguments": {..}} in each syntax this can force.
  std::string before, after, args_key = "arguments";
  switch (format.style) {
    case tmpl::ToolCallStyle::kHermes:
      before = "<tool_call>\n";
      after = "\n</tool_call>";
      break;
    case tmpl::ToolCallStyle::kJson:
    case tmpl::ToolCallStyle::kLlama31:
      args_key = "parameters";
      break;
    case tmpl::ToolCallStyle::kFireFunction:
      before = "functools[";
      after = "]";
      break;
    case tmpl::ToolCallStyle::kTagged:
      before = format.tag;
      break;
    case tmpl::ToolCallStyle::kFunctionaryV31:
      break;
    default:
      throw HttpError(400,
                      std::string("cannot force a tool call in this model's tool-call syntax (") +
                          std::string(tmpl::to_string(format.style)) + ")");
  }
  if (!tools.is_array() || tools.empty()) throw HttpError(400, "tool_choice needs tools");
  std::string rules, alternatives;
  int n = 0;
  for (const auto& tool : tools) {
    const OJson fn = tool.value("function", OJson::object());
    const std::string name = fn.value("name", "");
    if (name.empty() || (!only.empty() && name != only)) continue;
    OJson params = fn.value("parameters", OJson::object());
    if (!params.is_object() || params.empty()) params = {{"type", "object"}};
    std::string schema_gbnf;
    try {
      schema_gbnf = sample::Grammar::json_schema_to_gbnf(params);
    } catch (const std::invalid_argument& e) {
      throw HttpError(400, "tool '" + name + "': cannot constrain its parameters: " + e.what());
    }
    const std::string prefix = "t" + std::to_string(n++) + "-";
    rules += prefix_gbnf_rules(schema_gbnf, prefix) + "\n";
    std::string call;
    if (format.style == tmpl::ToolCallStyle::kFunctionaryV31) {
      call = gbnf_literal("<function=" + name + ">") + " " + prefix + "root " +
             gbnf_literal("</function>");
    } else {
      call =
          gbnf_literal(before + "{\"name\": " + OJson(name).dump() + ", \"" + args_key + "\": ") +
          " " + prefix + "root " + gbnf_literal("}" + after);
    }
    alternatives += (alternatives.empty() ? "" : " | ") + call;
  }
  if (alternatives.empty())
    throw HttpError(400, only.empty() ? std::string("no tool has a function name")
                                      : "tool_choice names no tool: '" + only + "'");
  return "root ::= " + alternatives + "\n" + rules;
}

std::string tool_call_id() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kChars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string id = "call_";
  for (int i = 0; i < 8; ++i) id.push_back(kChars[rng() % (sizeof kChars - 1)]);
  return id;
}

std::string base64_f32_le(const std::vector<float>& v) {
  std::string bytes(v.size() * 4, '\0');
  for (size_t i = 0; i < v.size(); ++i) {
    uint32_t u;
    std::memcpy(&u, &v[i], 4);
    for (int b = 0; b < 4; ++b) bytes[i * 4 + b] = static_cast<char>((u >> (8 * b)) & 0xff);
  }
  return store::base64_encode(bytes);
}

OJson logprobs_json(std::span<const runner::Logprob> logprobs) {
  auto token = [](const runner::TokenLogprob& t) {
    OJson bytes = OJson::array();
    for (const char c : t.token) bytes.push_back(static_cast<int>(static_cast<unsigned char>(c)));
    return OJson{{"token", t.token}, {"logprob", t.logprob}, {"bytes", std::move(bytes)}};
  };
  OJson out = OJson::array();
  for (const auto& lp : logprobs) {
    OJson j = token(lp.chosen);
    if (!lp.top.empty()) {
      OJson top = OJson::array();
      for (const auto& t : lp.top) top.push_back(token(t));
      j["top_logprobs"] = std::move(top);
    }
    out.push_back(std::move(j));
  }
  return out;
}

OJson ollama_tool_call(const tmpl::ToolCall& call, size_t index) {
  return {{"id", call.id.empty() ? tool_call_id() : call.id},
          {"function", {{"index", index}, {"name", call.name}, {"arguments", call.arguments}}}};
}

// ---- Running a request ----------------------------------------------------------------------

Generation::Generation(Context& ctx, std::string request_model, store::ModelInfo info)
    : ctx_(ctx), model_(std::move(request_model)), info_(std::move(info)), start_(Clock::now()) {
  // Created on the request's thread: the socket is this request's.
  watch_ = ctx_.disconnects.watch_current([client = client_] {
    client->gone = true;
    std::lock_guard lock(client->mu);
    if (client->sequence) client->sequence->cancel();
  });
}

Generation::~Generation() {
  if (sequence_ && !finished_) sequence_->cancel();
}

void Generation::load(const sample::Options& options, std::optional<runner::Duration> keep_alive) {
  const auto t0 = Clock::now();
  lease_ = ctx_.scheduler.acquire(info_, options, keep_alive);
  requested_ctx_ = options.num_ctx;
  load_duration_ = Clock::now() - t0;
}

int64_t Generation::num_ctx() const {
  const int64_t loaded = runner().options().num_ctx;
  // A loaded instance with a larger context serves a request for a smaller one; the prompt is
  // still cut to what the request asked for, as Ollama does.
  return requested_ctx_ > 0 ? std::min<int64_t>(requested_ctx_, loaded) : loaded;
}

tmpl::Limits Generation::template_limits() const {
  tmpl::Limits limits = ctx_.options.template_limits;
  const std::atomic<bool>* stopping = &ctx_.stopping;
  limits.cancelled = [stopping, client = client_] { return stopping->load() || client->gone; };
  return limits;
}

void Generation::submit_chat(const PreparedChat& chat, const sample::Options& options,
                             int top_logprobs) {
  runner::SequenceRequest sr;
  sr.prompt = chat.tokens;
  sr.images = chat.images;
  sr.options = options;
  sr.grammar = chat.grammar;
  sr.top_logprobs = top_logprobs;
  submit(std::move(sr), chat.parser());
}

void Generation::submit(runner::SequenceRequest request, parse::OutputParser parser) {
  request.shift = shift_.value_or(request.options.num_predict > 0);
  try {
    sequence_ = runner().submit(std::move(request));
  } catch (const runner::QueueFullError& e) {
    throw HttpError(503, e.what());
  } catch (const std::invalid_argument& e) {
    throw HttpError(400, e.what());
  }
  parser_.emplace(std::move(parser));
  std::lock_guard lock(client_->mu);
  client_->sequence = sequence_;
  if (client_->gone) sequence_->cancel();
}

bool Generation::next(parse::Delta& out) {
  out = parse::Delta{};
  if (finished_) return false;
  runner::Piece piece;
  while (sequence_->next(piece)) {
    out = parser_->push(std::move(piece));
    if (!out.empty()) return true;
  }
  finished_ = true;
  out = parser_->finish();
  return !out.empty();
}

const runner::SequenceResult& Generation::result() { return sequence_->result(); }

void Generation::cancel() {
  if (sequence_) sequence_->cancel();
}

parse::OutputParser PreparedChat::parser() const {
  return parse::OutputParser(think, tools, prompt_opens_thinking);
}

namespace {

// The prompt's text and images as tokens, the images through the model's processor.
std::vector<int32_t> tokenize_images(const Generation& g, std::string_view text,
                                     const std::vector<std::string>& images, bool at_start,
                                     std::vector<runner::PromptImage>& out) {
  const model::Vision* vision = g.runner().model().vision();
  if (vision == nullptr) {
    throw HttpError(400,
                    "\"" + g.model() + "\" does not support images (it has no vision encoder)");
  }
  const RequestImages prepared = prepare_images(*vision, images);
  const tokenizer::Tokenizer& tok = g.runner().tokenizer();
  return runner::tokenize_with_images(
      text, prepared.inputs, prepared.digests,
      [&](std::string_view piece, bool first) {
        return tokenize_prompt(tok, piece, first && at_start);
      },
      out);
}

// The request's think settled against the template (see parse::settle_think); a 400 naming the
// model when it asks for thinking the template cannot do.
std::optional<parse::ThinkTags> settle_think(const Generation& g, parse::Think& think,
                                             const std::optional<parse::ThinkTags>& tags) {
  try {
    return parse::settle_think(think, tags);
  } catch (const std::invalid_argument& e) {
    throw HttpError(400, "\"" + g.model() + "\" " + e.what());
  }
}

}  // namespace

PreparedChat prepare_chat(const Generation& g, ChatSpec spec) {
  PreparedChat out;
  const runner::Runner& runner = g.runner();
  // Ollama's words for an embedding model (its capabilities lack "completion").
  if (!runner.model().config().causal)
    throw HttpError(400, "\"" + g.model() + "\" does not support chat");
  const tmpl::PromptTemplate t = model_template(g.info(), runner);

  const std::optional<parse::ThinkTags> tags = settle_think(g, spec.think, parse::thinking_tags(t));

  const bool has_tools = spec.tools.is_array() && !spec.tools.empty();
  tmpl::ToolCallFormat format;
  if (has_tools) {
    format = tmpl::detect_tool_call_format(t.text);
    if (!format.supports_tools())
      throw HttpError(400, "\"" + g.model() + "\" does not support tools");
  }
  const bool offer_tools = has_tools && spec.tool_choice.mode != ToolChoice::Mode::kNone;

  out.grammar = spec.grammar;
  if (offer_tools && (spec.tool_choice.mode == ToolChoice::Mode::kRequired ||
                      spec.tool_choice.mode == ToolChoice::Mode::kNamed)) {
    const std::string gbnf = tool_call_gbnf(
        format, spec.tools,
        spec.tool_choice.mode == ToolChoice::Mode::kNamed ? spec.tool_choice.name : "");
    try {
      out.grammar = sample::Grammar::parse(gbnf);
    } catch (const std::invalid_argument& e) {
      throw HttpError(500, std::string("tool-call grammar: ") + e.what());
    }
  }

  tmpl::ChatInput input;
  input.messages = chat_messages(g.info(), spec.messages);
  if (offer_tools) input.tools = spec.tools;
  input.think = spec.think.enabled;
  input.think_level = spec.think.level;
  tmpl::add_special_tokens(runner.tokenizer().vocab(), input.context);
  try {
    out.prompt = render_chat(t, std::move(input), runner.tokenizer(), g.num_ctx(), spec.truncate,
                             g.template_limits());
  } catch (const HttpError&) {
    throw;
  } catch (const std::exception& e) {
    // A rendering stopped by its limits was asked for too much (a conversation beyond them); a
    // failure of the model's own template is the server's.
    throw HttpError(tmpl::is_limit_error(e) ? 400 : 500,
                    std::string("rendering the prompt: ") + e.what());
  }
  if (spec.images.empty()) {
    out.tokens = tokenize_prompt(runner.tokenizer(), out.prompt);
  } else {
    out.tokens = tokenize_images(g, out.prompt, spec.images, true, out.images);
  }

  if (tags) {
    out.think = tags;
    out.prompt_opens_thinking = parse::opens_thinking(out.prompt, *tags);
  }
  if (offer_tools) out.tools = format;
  return out;
}

parse::OutputParser PreparedGenerate::parser() const {
  return parse::OutputParser(think, std::nullopt, prompt_opens_thinking);
}

PreparedGenerate prepare_generate(const Generation& g, GenerateSpec spec) {
  PreparedGenerate out;
  const runner::Runner& runner = g.runner();
  if (!runner.model().config().causal)
    throw HttpError(400, "\"" + g.model() + "\" does not support generate");
  const tmpl::PromptTemplate model_tmpl = model_template(g.info(), runner);
  const std::optional<parse::ThinkTags> tags =
      settle_think(g, spec.think, spec.raw ? std::nullopt : parse::thinking_tags(model_tmpl));

  if (!spec.images.empty()) {
    // Ollama marks the images in front of the prompt, unless the prompt places them itself.
    std::string markers;
    for (size_t i = 0; i < spec.images.size(); ++i) {
      if (spec.prompt.find(runner::image_marker(i)) == std::string::npos) {
        markers += runner::image_marker(i);
      }
    }
    spec.prompt = markers + spec.prompt;
  }
  std::string text = spec.prompt;
  if (!spec.raw) {
    tmpl::PromptTemplate t = model_tmpl;
    if (!spec.template_override.empty())
      t = tmpl::PromptTemplate{tmpl::Syntax::kGo, spec.template_override, "request"};
    tmpl::ChatInput input;
    input.think = spec.think.enabled;
    input.think_level = spec.think.level;
    tmpl::add_special_tokens(runner.tokenizer().vocab(), input.context);
    try {
      if (!spec.suffix.empty()) {
        if (t.syntax != tmpl::Syntax::kGo || t.text.find(".Suffix") == std::string::npos)
          throw HttpError(400, "\"" + g.model() + "\" does not support insert");
        text = tmpl::render_ollama(tmpl::parse_ollama(t.text), input,
                                   {spec.prompt, spec.suffix, g.template_limits()});
      } else {
        const std::string sys = !spec.system.empty() ? spec.system : g.info().system.value_or("");
        if (!sys.empty()) input.messages.push_back({{"role", "system"}, {"content", sys}});
        if (!spec.has_context && g.info().messages.is_array())
          for (const auto& m : g.info().messages) input.messages.push_back(m);
        input.messages.push_back({{"role", "user"}, {"content", spec.prompt}});
        if (spec.template_override.empty())
          text = render_chat(t, std::move(input), runner.tokenizer(), g.num_ctx(), spec.truncate,
                             g.template_limits());
        else
          text = tmpl::render_prompt(t, input, g.template_limits());
      }
    } catch (const HttpError&) {
      throw;
    } catch (const std::exception& e) {
      // The request's own template, and any rendering stopped by its limits, are the client's
      // error; a failure of the model's template is the server's.
      const bool client = !spec.template_override.empty() || tmpl::is_limit_error(e);
      throw HttpError(client ? 400 : 500, std::string("rendering the prompt: ") + e.what());
    }
  }
  out.prompt = text;

  if (!spec.images.empty()) {
    std::vector<runner::PromptImage> images;
    const auto more = tokenize_images(g, text, spec.images, !spec.has_context, images);
    if (spec.has_context) {
      out.tokens = std::move(spec.context);
      for (runner::PromptImage& i : images) i.at += out.tokens.size();
    }
    out.tokens.insert(out.tokens.end(), more.begin(), more.end());
    out.images = std::move(images);
  } else if (spec.has_context) {
    out.tokens = std::move(spec.context);
    const auto more = tokenize_prompt(runner.tokenizer(), text, false);
    out.tokens.insert(out.tokens.end(), more.begin(), more.end());
  } else {
    out.tokens = tokenize_prompt(runner.tokenizer(), text);
  }
  if (out.tokens.empty()) throw HttpError(400, "the prompt gives no tokens");

  if (tags) {
    out.think = tags;
    out.prompt_opens_thinking = parse::opens_thinking(text, *tags);
  }
  return out;
}

std::vector<int32_t> embed_tokens(const tokenizer::Tokenizer& tokenizer, std::string_view text,
                                  int64_t num_ctx, bool truncate) {
  std::vector<int32_t> ids = tokenize_prompt(tokenizer, text);
  if (ids.empty()) throw HttpError(400, "an input gives no tokens");
  if (static_cast<int64_t>(ids.size()) <= num_ctx) return ids;
  if (!truncate) throw HttpError(400, "the input length exceeds the context length");
  // The start of the input is kept; an end marker the tokenizer added (BERT's [SEP]) stays last.
  const tokenizer::Vocab& v = tokenizer.vocab();
  const int32_t last = ids.back();
  const bool marker = num_ctx > 1 && ((v.add_sep && last == v.sep) || (v.add_eos && last == v.eos));
  ids.resize(static_cast<size_t>(num_ctx));
  if (marker) ids.back() = last;
  return ids;
}

void truncate_dimensions(std::vector<float>& v, int dimensions) {
  if (dimensions <= 0 || static_cast<size_t>(dimensions) >= v.size()) return;
  v.resize(static_cast<size_t>(dimensions));
  double sum = 0;
  for (const float x : v) sum += double(x) * x;
  const float scale = static_cast<float>(1.0 / std::max(std::sqrt(sum), 1e-12));
  for (float& x : v) x *= scale;
}

Embeddings embed_texts(Context& ctx, const store::ModelInfo& info, const sample::Options& options,
                       std::optional<runner::Duration> keep_alive,
                       const std::vector<std::string>& inputs, bool truncate, int dimensions) {
  // Each input is a forward pass: a batch is held to a stated count, checked before any work.
  constexpr size_t kMaxInputs = 2048;
  if (inputs.size() > kMaxInputs) {
    throw HttpError(400, std::to_string(inputs.size()) + " inputs in one request (at most " +
                             std::to_string(kMaxInputs) + ")");
  }
  Embeddings out;
  const auto start = Clock::now();
  runner::Lease lease = ctx.scheduler.acquire(info, options, keep_alive);
  out.load_duration = Clock::now() - start;
  runner::Runner& runner = *lease->runner;
  const int64_t num_ctx = options.num_ctx > 0
                              ? std::min<int64_t>(options.num_ctx, runner.options().num_ctx)
                              : runner.options().num_ctx;

  // The inputs go to the runner a window at a time and the results are taken in order: a
  // request of many inputs waits for slots as any other does instead of filling the queue (and
  // refusing itself and others with 503). The window keeps every slot busy and the next inputs
  // ready; when others' requests fill the queue meanwhile, this one waits for its own oldest to
  // finish; only a queue full before any of its inputs is in it answers 503.
  const size_t window = 2 * static_cast<size_t>(std::max(1, runner.options().num_parallel));
  std::deque<std::shared_ptr<runner::Sequence>> sequences;
  struct CancelAll {
    std::deque<std::shared_ptr<runner::Sequence>>& s;
    ~CancelAll() {
      for (auto& q : s) q->cancel();
    }
  } cancel_all{sequences};
  const auto take_oldest = [&] {
    const runner::SequenceResult& r = sequences.front()->result();
    std::vector<float> v = r.embedding;
    truncate_dimensions(v, dimensions);
    out.vectors.push_back(std::move(v));
    sequences.pop_front();
  };
  for (const std::string& text : inputs) {
    runner::SequenceRequest r;
    r.prompt = embed_tokens(runner.tokenizer(), text, num_ctx, truncate);
    r.options = options;
    r.embed = true;
    out.prompt_tokens += static_cast<int>(r.prompt.size());
    if (sequences.size() >= window) take_oldest();
    for (;;) {
      try {
        sequences.push_back(runner.submit(r));
        break;
      } catch (const runner::QueueFullError& e) {
        if (sequences.empty()) throw HttpError(503, e.what());
        take_oldest();
      } catch (const std::invalid_argument& e) {
        throw HttpError(400, e.what());
      }
    }
  }
  while (!sequences.empty()) take_oldest();
  out.total_duration = Clock::now() - start;
  return out;
}

void add_metrics(OJson& j, const Generation& g, const runner::Stats& stats) {
  j["total_duration"] = static_cast<int64_t>(g.elapsed().count());
  j["load_duration"] = static_cast<int64_t>(g.load_duration().count());
  j["prompt_eval_count"] = stats.prompt_eval_count;
  j["prompt_eval_duration"] = static_cast<int64_t>(stats.prompt_eval_duration.count());
  j["eval_count"] = stats.eval_count;
  j["eval_duration"] = static_cast<int64_t>(stats.eval_duration.count());
}

void stream_response(httplib::Response& res, const char* content_type,
                     std::function<void(const StreamWrite&)> produce) {
  auto fn = std::make_shared<std::function<void(const StreamWrite&)>>(std::move(produce));
  res.set_chunked_content_provider(content_type, [fn](size_t, httplib::DataSink& sink) {
    bool gone = false;
    const StreamWrite write = [&sink, &gone](std::string_view s) {
      if (gone) return false;
      if (!sink.is_writable() || !sink.write(s.data(), s.size())) gone = true;
      return !gone;
    };
    try {
      (*fn)(write);
    } catch (const std::exception&) {
      // produce reports its own errors in the stream; whatever escapes ends the response.
    }
    if (gone) return false;
    sink.done();
    return true;
  });
}

int error_status(const std::exception& e) {
  if (const auto* h = dynamic_cast<const HttpError*>(&e)) return h->status;
  if (dynamic_cast<const runner::QueueFullError*>(&e)) return 503;
  if (dynamic_cast<const runner::InsufficientMemoryError*>(&e)) return 507;
  if (dynamic_cast<const std::invalid_argument*>(&e)) return 400;
  if (dynamic_cast<const nlohmann::json::exception*>(&e)) return 400;  // a field of a wrong type
  return 500;
}

}  // namespace corral::server
