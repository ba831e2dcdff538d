// What the generation routes share (routes_generate.cc: Ollama's /api/generate, /api/chat,
// /api/embed; routes_openai.cc: the /v1 API): finding the model and layering its options, the
// prompt (template choice, chat history cut to the context window, tokens), grammars from
// `format` and forced tool calls, splitting the output into thinking, content and tool calls, and
// streaming it to a client that may go away.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "parse/output.h"
#include "parse/thinking.h"
#include "runner/runner.h"
#include "runner/scheduler.h"
#include "sample/grammar.h"
#include "sample/options.h"
#include "server/disconnect.h"
#include "store/model.h"
#include "template/chat.h"
#include "template/prompt.h"
#include "template/toolcall.h"

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace corral::server {

struct Context;
using OJson = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

// ---- Request fields -------------------------------------------------------------------------

// JSON text as clients read it: invalid UTF-8 (a logprob token may be half a character) is
// replaced, never thrown over.
std::string dump_json(const OJson& j);
// {..} with the status, fields in the order given.
void send_ordered(httplib::Response& res, const OJson& body, int status = 200);

// Go's time.RFC3339Nano in UTC ("2026-11-28T12:37:35.123456789Z", trailing zeros dropped), as
// Ollama's created_at.
std::string rfc3339_nano(std::chrono::system_clock::time_point t);

// The model a request names, from the store only (the server never opens paths a client
// names). HttpError 400 "model is required" when empty, 404 "model 'x' not found".
store::ModelInfo find_model(Context& ctx, const std::string& name);

// The model's PARAMETERs with the request's `options` over them. Unknown keys are skipped (as
// Ollama's server does), removed ones ignored; a value of the wrong type is a 400.
sample::Options request_options(const store::ModelInfo& info, const OJson& options);

// The request's keep_alive (absent or null: the server's default); 400 for a bad value.
std::optional<runner::Duration> request_keep_alive(const OJson& body);

// Ollama's `format`: absent, null or "": none; "json": any JSON object; an object: a JSON schema.
// 400 for anything else or a schema the grammar compiler cannot express.
std::shared_ptr<const sample::Grammar> format_grammar(const OJson& format);

// JSON text keeping its key order, in time linear in the number of keys (nlohmann's own
// ordered parse is quadratic in the keys of one object); 400 (HttpError) for bad JSON.
OJson parse_ordered_json(std::string_view text);

// The request body as a JSON object keeping its key order (schemas and tools reach the grammar
// compiler and the template in the client's order); 400 for a missing body, bad JSON or another
// type.
OJson parse_ordered_body(const httplib::Request& req);

// A string field (absent or null: empty); 400 naming the field when it is another type.
std::string string_field(const OJson& body, const char* key);
bool bool_field(const OJson& body, const char* key, bool fallback);

// Ollama's think: true/false or a level "low" | "medium" | "high" | "max"; 400 otherwise.
parse::Think parse_think(const OJson& value);

// ---- Prompts --------------------------------------------------------------------------------

// The model's template: TEMPLATE layer, else the GGUF's chat template, else the prompt as is.
tmpl::PromptTemplate model_template(const store::ModelInfo& info, const runner::Runner& runner);

// Tokens of a rendered prompt with BOS/EOS as the vocabulary asks; a template that writes BOS
// itself on a vocabulary that adds one too yields one BOS, as transformers would.
std::vector<int32_t> tokenize_prompt(const tokenizer::Tokenizer& tokenizer, std::string_view text,
                                     bool add_special = true);

// The messages Ollama's chat handler renders: the model's MESSAGEs, then the request's, with the
// model's SYSTEM in front unless the request starts with a system message.
tmpl::Json chat_messages(const store::ModelInfo& info, const tmpl::Json& request_messages);

// Normalizes API messages for the template (role lower-cased, content a string, thinking also as
// reasoning_content for Hugging Face templates). A message's images (base64) are decoded into
// `images` and marked in front of its content as Ollama marks them ("[img-0]"). HttpError 400 for
// a message without a role, with content that is not text, or with images that are not base64.
tmpl::Json normalize_messages(const OJson& messages, const std::string& model_name,
                              std::vector<std::string>& images);

// Ollama's `images` field (base64 strings) decoded and appended to `images`; HttpError 400.
void images_field(const OJson& value, std::vector<std::string>& images);

// Renders `input`; when truncate and the prompt's tokens exceed num_ctx, drops the oldest
// messages (system messages stay, the last message always stays) until it fits, as Ollama's
// chatPrompt does. Each rendering is held to `limits`; the number of renderings grows with the
// logarithm of the conversation's length.
std::string render_chat(const tmpl::PromptTemplate& t, tmpl::ChatInput input,
                        const tokenizer::Tokenizer& tokenizer, int64_t num_ctx, bool truncate,
                        const tmpl::Limits& limits = {});

// ---- Tool calls -----------------------------------------------------------------------------

// Renames every rule of a GBNF text (prefix + name) so that several grammars can share one file.
std::string prefix_gbnf_rules(std::string_view gbnf, std::string_view prefix);

// GBNF that forces one call of one of `tools` (OpenAI's [{"type": "function", "function": {"name",
// "parameters"}}]; only the one named `only` when given) in the model's own tool-call syntax,
// the arguments constrained by the tool's parameters schema. HttpError 400 when the syntax is
// one this cannot force, or `only` names no tool.
std::string tool_call_gbnf(const tmpl::ToolCallFormat& format, const OJson& tools,
                           const std::string& only = "");

// Ollama's tool call ids: "call_" and 8 random lowercase letters and digits.
std::string tool_call_id();

// OpenAI's encoding_format "base64": the floats as little-endian f32 bytes, base64-encoded.
std::string base64_f32_le(const std::vector<float>& v);

// Ollama's api.Logprob list: [{"token", "logprob", "bytes", "top_logprobs": [...]}].
OJson logprobs_json(std::span<const runner::Logprob> logprobs);
// {"function": {"index", "name", "arguments": {..}}, "id"} as Ollama's api.ToolCall.
OJson ollama_tool_call(const tmpl::ToolCall& call, size_t index);

// ---- Running a request ----------------------------------------------------------------------

// One request's generation: the model lease, the sequence and its output parser.
struct PreparedChat;

class Generation {
 public:
  Generation(Context& ctx, std::string request_model, store::ModelInfo info);
  ~Generation();

  // Loads (or finds) the model; the time it took is load_duration.
  void load(const sample::Options& options, std::optional<runner::Duration> keep_alive);
  runner::Runner& runner() const { return *lease_->runner; }
  const store::ModelInfo& info() const { return info_; }
  const std::string& model() const { return model_; }
  int64_t num_ctx() const;
  // What rendering this request's prompt may cost: the server's template limits, cancelled when
  // the server stops or the request's client goes away.
  tmpl::Limits template_limits() const;

  // Ollama's `shift`: when the context fills, drop old tokens and go on generating, or end there
  // with done_reason "length". Unset: shift only when a positive num_predict bounds the output,
  // so that a request without num_predict on a model that never ends its output still ends.
  void set_shift(std::optional<bool> shift) { shift_ = shift; }
  // Starts generating; the generation is cancelled if the client of this thread's request goes
  // away before it ends (streamed or not). HttpError 400 for a prompt the runner rejects, 503
  // when its queue is full.
  void submit(runner::SequenceRequest request, parse::OutputParser parser);
  // A prepared chat (its tokens, grammar and output parser) with the request's sampling.
  void submit_chat(const PreparedChat& chat, const sample::Options& options, int top_logprobs);
  // The next output; false at the end (then result() is ready). Throws the sequence's error.
  bool next(parse::Delta& out);
  const runner::SequenceResult& result();
  void cancel();

  std::chrono::nanoseconds load_duration() const { return load_duration_; }
  std::chrono::nanoseconds elapsed() const { return Clock::now() - start_; }

 private:
  Context& ctx_;
  std::string model_;
  store::ModelInfo info_;
  Clock::time_point start_;
  std::chrono::nanoseconds load_duration_{0};
  int64_t requested_ctx_ = 0;
  runner::Lease lease_;
  std::shared_ptr<runner::Sequence> sequence_;
  std::optional<parse::OutputParser> parser_;
  bool finished_ = false;
  std::optional<bool> shift_;
  // The client of the request: when it goes, rendering stops and the sequence is cancelled.
  struct Client {
    std::atomic<bool> gone{false};
    std::mutex mu;
    std::shared_ptr<runner::Sequence> sequence;  // once submitted
  };
  std::shared_ptr<Client> client_ = std::make_shared<Client>();
  DisconnectWatch::Handle watch_;  // destroyed before sequence_ and client_
};

// A chat request as both APIs give it.
struct ToolChoice {
  enum class Mode { kAuto, kNone, kRequired, kNamed };
  Mode mode = Mode::kAuto;
  std::string name;  // kNamed
};
struct ChatSpec {
  tmpl::Json messages = tmpl::Json::array();  // normalize_messages of the request's
  tmpl::Json tools = nullptr;                 // array of {"type": "function", "function"} or null
  ToolChoice tool_choice;
  parse::Think think;
  std::shared_ptr<const sample::Grammar> grammar;  // from format / response_format
  bool truncate = true;
  std::vector<std::string> images;  // the messages' images (files' bytes), marked in content
};
// The prompt of a chat and how its output is read.
struct PreparedChat {
  std::string prompt;
  std::vector<int32_t> tokens;
  std::vector<runner::PromptImage> images;         // placed among the tokens
  std::shared_ptr<const sample::Grammar> grammar;  // format's, or one forcing a tool call
  std::optional<parse::ThinkTags> think;           // set when thinking is on and has tags
  bool prompt_opens_thinking = false;              // the prompt ends with the opening tag
  std::optional<tmpl::ToolCallFormat> tools;       // set when tools are offered
  parse::OutputParser parser() const;
};
// Renders the chat through the loaded model's template (its SYSTEM and MESSAGEs in front, cut to
// the context window). HttpError 400 when the request asks for thinking or tools the template
// does not support.
PreparedChat prepare_chat(const Generation& g, ChatSpec spec);

// /api/generate's prompt (and /v1/completions'): raw text, fill-in-the-middle with a suffix, or
// the prompt as a user message (with the system message and the model's MESSAGEs unless a
// context continues an earlier answer) through the model's template or the request's.
struct GenerateSpec {
  std::string prompt, suffix, system, template_override;
  bool raw = false;
  std::vector<int32_t> context;
  bool has_context = false;
  parse::Think think;
  bool truncate = true;
  std::vector<std::string> images;  // files' bytes; marked in front of the prompt unless in it
};
struct PreparedGenerate {
  std::string prompt;  // rendered text (after the context's tokens)
  std::vector<int32_t> tokens;
  std::vector<runner::PromptImage> images;  // placed among the tokens
  std::optional<parse::ThinkTags> think;
  bool prompt_opens_thinking = false;
  parse::OutputParser parser() const;
};
PreparedGenerate prepare_generate(const Generation& g, GenerateSpec spec);

// An embedding input's tokens: cut to num_ctx (keeping a trailing [SEP]/EOS the tokenizer
// added) when truncate, else HttpError 400 when longer; HttpError 400 when it has none.
std::vector<int32_t> embed_tokens(const tokenizer::Tokenizer& tokenizer, std::string_view text,
                                  int64_t num_ctx, bool truncate);
// Ollama's `dimensions`: keeps the first `dimensions` values (when fewer than there are) and
// L2-normalizes them again.
void truncate_dimensions(std::vector<float>& v, int dimensions);

// Embeddings of several texts, evaluated together. Inputs longer than the context are cut to it
// when truncate, else a 400; dimensions > 0 keeps that many values, normalized again.
struct Embeddings {
  std::vector<std::vector<float>> vectors;
  int prompt_tokens = 0;
  std::chrono::nanoseconds load_duration{0}, total_duration{0};
};
Embeddings embed_texts(Context& ctx, const store::ModelInfo& info, const sample::Options& options,
                       std::optional<runner::Duration> keep_alive,
                       const std::vector<std::string>& inputs, bool truncate, int dimensions);

// Ollama's metrics of a finished generation (total/load durations and counts, nanoseconds).
void add_metrics(OJson& j, const Generation& g, const runner::Stats& stats);

// Streams a response: `produce` runs on the connection's thread once httplib starts sending and
// writes through `write`, which returns false once the client is gone (produce then cancels its
// generation and returns).
using StreamWrite = std::function<bool(std::string_view)>;
void stream_response(httplib::Response& res, const char* content_type,
                     std::function<void(const StreamWrite&)> produce);

// Maps an exception from a request to its status: HttpError's own, 400 for invalid_argument and
// JSON type errors (bad input), 503 for a full queue, 500 otherwise.
int error_status(const std::exception& e);

}  // namespace corral::server
