// The server: configuration from the environment, the checks every request passes before its
// route (Host allow-list, CORS, API key, body size), the error handlers, and binding.
#include "server/server.h"

#include <httplib.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>

#include "server/access.h"

namespace corral::server {
namespace {

// Requests refused before their route whose body has not been read are routed here: the body is
// read and dropped, so that the client (still sending) receives the answer instead of a reset
// connection, and the next request on the connection starts where it should.
constexpr const char* kDrainPath = "/__corral_drain__";

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}

uint64_t positive_integer(const char* name, const char* v, const char* unit) {
  char* end = nullptr;
  const unsigned long long n = std::strtoull(v, &end, 10);
  if (end == v || *end != '\0' || n == 0 || v[0] == '-') {
    throw std::invalid_argument(std::string(name) + "=" + v + ": expected a positive number of " +
                                unit);
  }
  return n;
}

// Whether httplib reads a body for this request (its expect_content rule).
bool has_body(const httplib::Request& req) {
  if (req.method == "POST" || req.method == "PUT" || req.method == "PATCH") {
    return req.has_header("Content-Length") || req.has_header("Transfer-Encoding");
  }
  return req.method == "DELETE" && req.has_header("Content-Length");
}

std::string machine_hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return {};
  return buf;
}

struct Policy {
  bool any_host = false;  // bound beyond loopback: every Host header is answered
  std::string bound_host;
  std::string hostname;
  std::vector<std::string> origins;
  std::string api_key;
  size_t max_body_bytes = 0;
};

constexpr const char* kAllowHeaders =
    "Authorization, Content-Type, User-Agent, Accept, X-Requested-With, x-stainless-lang, "
    "x-stainless-package-version, x-stainless-os, x-stainless-arch, x-stainless-retry-count, "
    "x-stainless-runtime, x-stainless-runtime-version, x-stainless-async, "
    "x-stainless-helper-method, x-stainless-poll-helper, x-stainless-custom-poll-interval, "
    "x-stainless-timeout";

httplib::Server::HandlerResponse check_request(const Policy& policy, const httplib::Request& req,
                                               httplib::Response& res) {
  using R = httplib::Server::HandlerResponse;
  // The checks below may re-route the request to the drain handler; httplib hands pre-routing
  // handlers a const view of a request it owns and routes afterwards on req.path.
  auto& mutable_req = const_cast<httplib::Request&>(req);
  const auto refuse = [&](int status, const std::string& message) {
    send_error(res, status, message);
    if (!has_body(req)) return R::Handled;
    mutable_req.path = kDrainPath;
    return R::Unhandled;
  };
  if (req.path == kDrainPath) return refuse(404, "404 page not found");

  const std::string host = req.get_header_value("Host");
  if (!policy.any_host && !host_allowed(host, policy.bound_host, policy.hostname)) {
    return refuse(403, "host '" + host +
                           "' is not allowed (corral answers requests addressed to this machine "
                           "only; CORRAL_HOST=0.0.0.0 serves every host)");
  }

  const std::string origin = req.get_header_value("Origin");
  const bool same_origin = origin == "http://" + host || origin == "https://" + host;
  if (!origin.empty() && !same_origin) {
    if (!origin_allowed(origin, policy.origins)) {
      return refuse(403, "origin '" + origin + "' is not allowed (add it to CORRAL_ORIGINS)");
    }
    res.set_header("Access-Control-Allow-Origin", origin);
    res.set_header("Vary", "Origin");
  }
  if (req.method == "OPTIONS") {
    res.set_header("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS");
    res.set_header("Access-Control-Allow-Headers", kAllowHeaders);
    res.set_header("Access-Control-Max-Age", "43200");
    res.set_header("Allow", "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS");
    res.status = 204;
    return R::Handled;
  }

  // `/` stays open: it is the liveness check and tells nothing.
  if (!policy.api_key.empty() && req.path != "/" &&
      !bearer_matches(req.get_header_value("Authorization"), policy.api_key)) {
    res.set_header("WWW-Authenticate", "Bearer");
    return refuse(401, "unauthorized: this server needs 'Authorization: Bearer <CORRAL_API_KEY>'");
  }

  // Blobs are streamed to disk, so only other bodies are held to the limit. A chunked body has no
  // length to check up front; httplib reads those whole.
  if (!req.path.starts_with("/api/blobs/") && req.has_header("Content-Length")) {
    const std::string length = req.get_header_value("Content-Length");
    const uint64_t n = std::strtoull(length.c_str(), nullptr, 10);
    if (n > policy.max_body_bytes) {
      return refuse(413, "request body too large: " + length + " bytes (at most " +
                             std::to_string(policy.max_body_bytes) + ")");
    }
  }
  return R::Unhandled;
}

}  // namespace

ServerOptions server_options_from_env() {
  ServerOptions o;
  if (const char* v = env("CORRAL_HOST")) {
    const ListenAddress a = parse_listen_address(v);
    o.host = a.host;
    o.port = a.port;
  }
  if (const char* v = env("CORRAL_ORIGINS")) {
    for (std::string& p : allowed_origins(v)) o.origins.push_back(std::move(p));
    // allowed_origins appended the defaults; the options hold the extra patterns only.
    o.origins.resize(o.origins.size() - allowed_origins("").size());
  }
  if (const char* v = env("CORRAL_API_KEY")) o.api_key = v;
  if (const char* v = env("CORRAL_MAX_BODY_SIZE")) {
    o.max_body_bytes = static_cast<size_t>(positive_integer("CORRAL_MAX_BODY_SIZE", v, "bytes"));
  }
  if (const char* v = env("CORRAL_TEMPLATE_MAX_OUTPUT")) {
    o.template_limits.max_output_bytes =
        static_cast<size_t>(positive_integer("CORRAL_TEMPLATE_MAX_OUTPUT", v, "bytes"));
  }
  if (const char* v = env("CORRAL_TEMPLATE_MAX_STEPS")) {
    o.template_limits.max_steps = positive_integer("CORRAL_TEMPLATE_MAX_STEPS", v, "steps");
  }
  if (const char* v = env("CORRAL_TEMPLATE_TIMEOUT")) {
    char* end = nullptr;
    const double s = std::strtod(v, &end);
    if (end == v || *end != '\0' || !(s >= 0) || s > 1e6) {
      throw std::invalid_argument(std::string("CORRAL_TEMPLATE_TIMEOUT=") + v +
                                  ": expected seconds (0 for no limit)");
    }
    o.template_limits.max_duration = std::chrono::milliseconds(static_cast<int64_t>(s * 1000));
  }
  o.models = store::Store::default_root();
  o.scheduler = runner::scheduler_options_from_env();
  return o;
}

Context::Context(ServerOptions o)
    : options(std::move(o)), store(options.models), scheduler(options.scheduler) {}

Server::Server(ServerOptions options)
    : context_(std::make_unique<Context>(std::move(options))),
      http_(std::make_unique<httplib::Server>()) {
  const ServerOptions& o = context_->options;
  auto policy = std::make_shared<Policy>();
  policy->any_host = !is_loopback_address(o.host);
  policy->bound_host = o.host;
  policy->hostname = machine_hostname();
  policy->origins = o.origins;
  for (std::string& p : allowed_origins("")) policy->origins.push_back(std::move(p));
  policy->api_key = o.api_key;
  policy->max_body_bytes = o.max_body_bytes;

  httplib::Server& http = *http_;
  // Each streaming response holds a thread for its whole length; httplib's default pool (8) would
  // let a few long generations starve every other request.
  http.new_task_queue = [] { return new httplib::ThreadPool(64); };
  // httplib gives up on a socket silent for 5 s; a busy machine (or a client uploading a large
  // blob from a slow disk) can stall longer than that without being gone.
  http.set_read_timeout(60);
  http.set_write_timeout(60);
  http.set_pre_routing_handler([policy](const httplib::Request& req, httplib::Response& res) {
    return check_request(*policy, req, res);
  });
  const auto drain = [](const httplib::Request&, httplib::Response& res,
                        const httplib::ContentReader& read) {
    read([](const char*, size_t) { return true; });
    if (res.status <= 0) send_error(res, 404, "404 page not found");
  };
  http.Post(kDrainPath, drain);
  http.Put(kDrainPath, drain);
  http.Patch(kDrainPath, drain);
  http.Delete(kDrainPath, drain);
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res,
                                std::exception_ptr error) { send_exception(res, error); });
  // Answers httplib itself gives (no route, a malformed request) get a JSON body too.
  http.set_error_handler(
      httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        std::string message = std::to_string(res.status) + " error";
        if (res.status == 400) message = "bad request";
        if (res.status == 404) message = "404 page not found: " + req.method + " " + req.path;
        if (res.status == 413) message = "request body too large";
        send_error(res, res.status, message);
        return httplib::Server::HandlerResponse::Handled;
      }));
  http.set_logger([](const httplib::Request& req, const httplib::Response& res) {
    if (req.path == kDrainPath) return;
    std::cerr << "[corral] " << format_time(std::chrono::system_clock::now()) << " | " << res.status
              << " | " << req.remote_addr << " | " << req.method << " " << req.path << std::endl;
  });

  add_ollama_routes(http, *context_);
  add_generate_routes(http, *context_);
  add_openai_routes(http, *context_);
}

Server::~Server() { stop(); }

int Server::bind() {
  const ServerOptions& o = context_->options;
  if (o.port == 0) {
    const int port = http_->bind_to_any_port(o.host);
    if (port < 0) throw std::runtime_error("cannot listen on " + o.host + ": no free port");
    context_->options.port = port;
    bound_ = true;
    return port;
  }
  if (!http_->bind_to_port(o.host, o.port)) {
    throw std::runtime_error("cannot listen on " + o.host + ":" + std::to_string(o.port) +
                             " (is another server using the port? CORRAL_HOST picks another)");
  }
  bound_ = true;
  return o.port;
}

void Server::listen() {
  if (!bound_) bind();
  http_->listen_after_bind();
}

void Server::stop() {
  context_->stopping = true;
  http_->stop();
}

}  // namespace corral::server
