// `corral serve`: Ollama's HTTP API and the OpenAI-compatible one over one scheduler and one
// model store. cpp-httplib serves each connection on its own thread; handlers parse and validate
// the request, hand generation to the model's Runner (which batches all sequences of a model) and
// stream its pieces back. Every handler turns an exception into {"error": "..."} with a status
// (400 bad request, 404 unknown model, 413 body too large, 500, 503 queue full, 507 a model that
// does not fit in memory) and the server keeps serving.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "runner/scheduler.h"
#include "server/disconnect.h"
#include "store/store.h"
#include "template/limits.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace corral::server {

class FrontDoor;
struct ConnectionStats;

// How the server treats connections (server/front_door.h): how long a client may take and how
// much it may hold. Every duration is also the longest a hostile client can hold what it covers.
struct HttpLimits {
  // A request's head must be complete this long after its connection is accepted (or after its
  // first byte on a kept-alive connection): slowloris clients are closed.
  std::chrono::milliseconds header_timeout{10'000};  // CORRAL_HEADER_TIMEOUT
  // An idle kept-alive connection is closed after this long (it holds no thread while idle).
  std::chrono::milliseconds idle_timeout{60'000};  // CORRAL_IDLE_TIMEOUT
  // Silence within a body, and a client not taking the answer, end the request after this long.
  std::chrono::milliseconds read_timeout{60'000};   // CORRAL_READ_TIMEOUT
  std::chrono::milliseconds write_timeout{60'000};  // CORRAL_WRITE_TIMEOUT
  // Once a body has taken longer than the grace period it must have averaged this many bytes a
  // second, or it is cut (408): a slow body holds a worker thread. 0: no minimum.
  size_t min_body_rate = 16 * 1024;                   // CORRAL_MIN_BODY_RATE
  std::chrono::milliseconds body_rate_grace{10'000};  // CORRAL_BODY_RATE_GRACE
  // Request bodies (blob uploads aside) held by the requests in progress, all together: a body
  // whose bytes would go beyond it is cut with 503, so that a few clients sending bodies near the
  // limit at once cannot take the server's memory. At least max_body_bytes.
  size_t max_body_memory = size_t{48} << 20;  // CORRAL_MAX_BODY_MEMORY
  size_t max_header_bytes = 64 * 1024;        // CORRAL_MAX_HEADER_SIZE; larger heads get 431
  size_t max_connections = 4096;              // CORRAL_MAX_CONNECTIONS, all clients together
  size_t max_connections_per_client = 256;    // CORRAL_MAX_CONNECTIONS_PER_CLIENT (an IPv6 /64)
  int listen_backlog = 1024;                  // CORRAL_LISTEN_BACKLOG (capped by somaxconn)
  size_t threads = 64;                        // requests answered at once (streams hold theirs)
};

struct ServerOptions {
  std::string host = "127.0.0.1";  // CORRAL_HOST "host:port", "host", ":port", "http://host:port"
  int port = 11434;
  std::vector<std::string> origins;  // CORRAL_ORIGINS, added to Ollama's default allow-list
  std::string api_key;               // CORRAL_API_KEY: when set, Authorization: Bearer <key>
  size_t max_body_bytes = size_t{32} << 20;  // larger bodies get 413 (blobs are streamed)
  std::filesystem::path models;              // the store root (CORRAL_MODELS)
  HttpLimits http;
  runner::SchedulerOptions scheduler;
  // What rendering one prompt may cost (every request's template and messages are client input):
  // CORRAL_TEMPLATE_MAX_OUTPUT (bytes), CORRAL_TEMPLATE_MAX_STEPS, CORRAL_TEMPLATE_TIMEOUT
  // (seconds, 0 for none). Defaults in template/limits.h.
  tmpl::Limits template_limits;
  // CORRAL_ALLOW_IMAGE_URLS=1: OpenAI image_url parts may name http(s) URLs, which the server
  // then fetches (10 s, 32 MiB at most); otherwise only data: URIs.
  bool allow_image_urls = false;
  // CORRAL_NOPRUNE unset: blobs no model uses are removed when the server starts.
  bool prune = true;
};

// CORRAL_HOST, CORRAL_ORIGINS, CORRAL_API_KEY, CORRAL_MAX_BODY_SIZE, CORRAL_MODELS, the
// connection limits of HttpLimits, the template limits and the scheduler's variables.
// Throws naming a variable with a bad value.
ServerOptions server_options_from_env();

// An error with the HTTP status it should be answered with.
class HttpError : public std::runtime_error {
 public:
  HttpError(int status, const std::string& message) : std::runtime_error(message), status(status) {}
  int status;
};

// What every route handler shares.
struct Context {
  ServerOptions options;
  store::Store store;
  runner::Scheduler scheduler;
  DisconnectWatch disconnects;  // cancels the work of requests whose client has gone
  std::atomic<bool> stopping{false};
  explicit Context(ServerOptions o);
};

class Server {
 public:
  explicit Server(ServerOptions options);
  ~Server();
  // Binds (port 0: any free port) and serves until stop(). Throws when it cannot bind.
  void listen();
  // Binds without serving yet, returning the port (for tests: bind(), then listen() on a thread).
  int bind();
  void stop();
  Context& context() { return *context_; }
  // What the server writes back for `bytes` arriving on one connection (no socket; for the fuzzer).
  std::string answer(std::string_view bytes);
  ConnectionStats connection_stats() const;

 private:
  std::unique_ptr<Context> context_;
  std::unique_ptr<FrontDoor> http_;
  bool bound_ = false;
};

// Route tables, one per file (server/routes_*.cc).
// routes_ollama.cc: /, /api/version, /api/tags, /api/show, /api/create, /api/blobs/:digest,
// /api/copy, /api/delete, /api/ps, /api/pull, and /api/push (501 until corral can push).
void add_ollama_routes(httplib::Server& http, Context& ctx);
// routes_generate.cc: /api/generate, /api/chat, /api/embed, /api/embeddings.
void add_generate_routes(httplib::Server& http, Context& ctx);
// routes_openai.cc: /v1/chat/completions, /v1/completions, /v1/models, /v1/models/{id},
// /v1/embeddings.
void add_openai_routes(httplib::Server& http, Context& ctx);
// routes_ui.cc: the chat page, /ui and /ui/<file> (GET and HEAD).
void add_ui_routes(httplib::Server& http);

// Helpers every route file uses (http.cc).
// The deepest nesting of arrays and objects a client's JSON may have. Everything that walks a
// JSON value (dump, comparison, schema and template code) recurses on its depth, so deeper input
// is refused before it is parsed.
constexpr size_t kMaxJsonDepth = 128;
// HttpError 400 when `text` nests arrays and objects deeper than kMaxJsonDepth (a linear scan that
// skips strings; it does not validate the JSON).
void check_json_depth(std::string_view text, const char* what = "the request body");
// Parses the body as a JSON object; HttpError 400 naming the problem otherwise.
nlohmann::json parse_body(const httplib::Request& req);
// At most `max` bytes of a client's text for an error message, cut at a UTF-8 boundary, with
// "... (N bytes)" when cut: a message never echoes a large value back.
std::string excerpt(std::string_view text, size_t max = 80);
// What an error response says: the message, cut to kMaxErrorMessage bytes as excerpt() cuts. Every
// error sink (send_error, the OpenAI error body, an error line in a stream) goes through it, so no
// message echoes a large value whatever built it.
constexpr size_t kMaxErrorMessage = 1024;
std::string error_message(std::string_view message);
// The compact JSON of a client's value, as excerpt() cuts it.
std::string json_excerpt(const nlohmann::json& value, size_t max = 80);
std::string json_excerpt(const nlohmann::ordered_json& value, size_t max = 80);
// {"error": message} with the status.
void send_error(httplib::Response& res, int status, const std::string& message);
void send_json(httplib::Response& res, const nlohmann::json& body, int status = 200);

// The status an exception is answered with, and its message: HttpError's own status; 400 for
// std::invalid_argument (bad names, options, templates' arguments) and nlohmann::json errors (a
// field of the wrong type); 503 for runner::QueueFullError; 500 for anything else.
int error_status(std::exception_ptr error, std::string* message);
// send_error for an exception (the server's exception handler does this for every route; a
// streaming content provider must catch and report its own errors: an exception escaping one
// ends the process).
void send_exception(httplib::Response& res, std::exception_ptr error);

// The model name of a request: `model`, else the older `name`; HttpError 400 when neither is a
// non-empty string.
std::string request_model(const nlohmann::json& body);
// Ollama's timestamps: RFC 3339 with nanoseconds, UTC ("2026-11-28T12:00:00.123456789Z").
std::string format_time(std::chrono::system_clock::time_point t);

}  // namespace corral::server
