// The server: configuration from the environment, the checks every request passes before its
// route (Host allow-list, CORS, API key, body size), the error handlers, and binding.
#include "server/server.h"

#include <httplib.h>
#include <strings.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "server/access.h"
#include "server/front_door.h"

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

// An integer variable, when set, into `out`; 0 only where zero_ok. Throws naming the variable.
void env_count(const char* name, size_t& out, bool zero_ok = false) {
  const char* v = env(name);
  if (!v) return;
  char* end = nullptr;
  const unsigned long long n = std::strtoull(v, &end, 10);
  if (end == v || *end != '\0' || (n == 0 && !zero_ok) || v[0] == '-') {
    throw std::invalid_argument(std::string(name) + "=" + v + ": expected a " +
                                (zero_ok ? "non-negative" : "positive") + " integer");
  }
  out = static_cast<size_t>(n);
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

// Whether a Content-Length header is one plain decimal number (httplib reads "12abc" as 12 and a
// second header not at all, which would leave bytes of the body to be read as the next request).
bool valid_content_length(const httplib::Request& req) {
  if (req.get_header_value_count("Content-Length") > 1) return false;
  const std::string v = req.get_header_value("Content-Length");
  return !v.empty() && v.size() <= 19 && v.find_first_not_of("0123456789") == std::string::npos;
}

// A Content-Length over the limit: answered without reading the body (server/front_door.cc does
// not hand it to httplib, and closes the connection after the answer).
bool body_too_large(const Policy& policy, const httplib::Request& req) {
  if (req.path.starts_with("/api/blobs/") || !req.has_header("Content-Length")) return false;
  return std::strtoull(req.get_header_value("Content-Length").c_str(), nullptr, 10) >
         policy.max_body_bytes;
}

// A request for the chat page's files (routes_ui.cc).
bool is_page_path(const httplib::Request& req) {
  return (req.method == "GET" || req.method == "HEAD") &&
         (req.path == "/ui" || req.path.starts_with("/ui/"));
}

httplib::Server::HandlerResponse check_request(const Policy& policy, const httplib::Request& req,
                                               httplib::Response& res) {
  using R = httplib::Server::HandlerResponse;
  // The checks below may re-route the request to the drain handler; httplib hands pre-routing
  // handlers a const view of a request it owns and routes afterwards on req.path.
  auto& mutable_req = const_cast<httplib::Request&>(req);
  const std::string encoding = req.get_header_value("Content-Encoding");
  // A body httplib would read: drained when it is plain and within the limit (so that the
  // connection serves on); otherwise the connection closes after the answer.
  const bool drainable =
      !body_too_large(policy, req) && (encoding.empty() || encoding == "identity");
  const auto refuse = [&](int status, const std::string& message) {
    send_error(res, status, message);
    if (!has_body(req)) return R::Handled;
    if (!drainable) {
      mutable_req.headers.erase("Connection");
      mutable_req.headers.emplace("Connection", "close");
      return R::Handled;
    }
    mutable_req.path = kDrainPath;
    return R::Unhandled;
  };
  if (req.path == kDrainPath) return refuse(404, "404 page not found");
  // As Go's net/http: which Host would a second one mean?
  if (req.get_header_value_count("Host") > 1) return refuse(400, "more than one Host header");
  if (req.has_header("Content-Length") && !valid_content_length(req)) {
    return refuse(400, "invalid Content-Length");
  }
  if (req.has_header("Transfer-Encoding") &&
      (req.get_header_value_count("Transfer-Encoding") > 1 ||
       strcasecmp(req.get_header_value("Transfer-Encoding").c_str(), "chunked") != 0)) {
    return refuse(501, "unsupported Transfer-Encoding '" +
                           req.get_header_value("Transfer-Encoding") + "' (only chunked)");
  }
  // httplib would inflate a compressed body past every limit before a handler sees it; no Ollama
  // or OpenAI client compresses requests.
  if (!encoding.empty() && encoding != "identity") {
    return refuse(415, "unsupported Content-Encoding '" + encoding + "'");
  }

  const std::string host = req.get_header_value("Host");
  if (!policy.any_host && !host_allowed(host, policy.bound_host, policy.hostname)) {
    return refuse(403, "host '" + excerpt(host) +
                           "' is not allowed (corral answers requests addressed to this machine "
                           "only; CORRAL_HOST=0.0.0.0 serves every host)");
  }

  const std::string origin = req.get_header_value("Origin");
  const bool same_origin = origin == "http://" + host || origin == "https://" + host;
  if (!origin.empty() && !same_origin) {
    if (!origin_allowed(origin, policy.origins)) {
      return refuse(403,
                    "origin '" + excerpt(origin) + "' is not allowed (add it to CORRAL_ORIGINS)");
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

  // `/` stays open: it is the liveness check and tells nothing. So does the chat page, which must
  // load to ask the user for the key (its files are the same in every corral: nothing secret).
  if (!policy.api_key.empty() && req.path != "/" && !is_page_path(req) &&
      !bearer_matches(req.get_header_value("Authorization"), policy.api_key)) {
    res.set_header("WWW-Authenticate", "Bearer");
    return refuse(401, "unauthorized: this server needs 'Authorization: Bearer <CORRAL_API_KEY>'");
  }

  // Blobs are streamed to disk, so only other bodies are held to the limit. A chunked body has no
  // length to check up front; the front door counts it as it is read.
  if (body_too_large(policy, req)) {
    return refuse(413, "request body too large: " + req.get_header_value("Content-Length") +
                           " bytes (at most " + std::to_string(policy.max_body_bytes) + ")");
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
  const auto duration = [](const char* name, std::chrono::milliseconds& out) {
    const char* v = env(name);
    if (!v) return;
    runner::Duration d{};
    try {
      d = runner::parse_keep_alive(nlohmann::json(v));
    } catch (const std::invalid_argument&) {
    }
    if (d <= runner::Duration::zero()) {
      throw std::invalid_argument(std::string(name) + "=" + v +
                                  ": expected a positive duration (\"10s\", \"1m\") or seconds");
    }
    out = std::chrono::duration_cast<std::chrono::milliseconds>(d);
  };
  env_count("CORRAL_MAX_BODY_SIZE", o.max_body_bytes);
  HttpLimits& h = o.http;
  duration("CORRAL_HEADER_TIMEOUT", h.header_timeout);
  duration("CORRAL_IDLE_TIMEOUT", h.idle_timeout);
  duration("CORRAL_READ_TIMEOUT", h.read_timeout);
  duration("CORRAL_WRITE_TIMEOUT", h.write_timeout);
  duration("CORRAL_BODY_RATE_GRACE", h.body_rate_grace);
  env_count("CORRAL_MIN_BODY_RATE", h.min_body_rate, true);
  env_count("CORRAL_MAX_BODY_MEMORY", h.max_body_memory);
  env_count("CORRAL_MAX_HEADER_SIZE", h.max_header_bytes);
  env_count("CORRAL_MAX_CONNECTIONS", h.max_connections);
  env_count("CORRAL_MAX_CONNECTIONS_PER_CLIENT", h.max_connections_per_client);
  size_t backlog = static_cast<size_t>(h.listen_backlog);
  env_count("CORRAL_LISTEN_BACKLOG", backlog);
  h.listen_backlog = static_cast<int>(std::min<size_t>(backlog, 1 << 20));
  env_count("CORRAL_TEMPLATE_MAX_OUTPUT", o.template_limits.max_output_bytes);
  size_t steps = o.template_limits.max_steps;
  env_count("CORRAL_TEMPLATE_MAX_STEPS", steps);
  o.template_limits.max_steps = steps;
  if (const char* v = env("CORRAL_TEMPLATE_TIMEOUT")) {
    char* end = nullptr;
    const double s = std::strtod(v, &end);
    if (end == v || *end != '\0' || !(s >= 0) || s > 1e6) {
      throw std::invalid_argument(std::string("CORRAL_TEMPLATE_TIMEOUT=") + v +
                                  ": expected seconds (0 for no limit)");
    }
    o.template_limits.max_duration = std::chrono::milliseconds(static_cast<int64_t>(s * 1000));
  }
  if (const char* v = env("CORRAL_NOPRUNE"); v && *v) o.prune = false;
  if (const char* v = env("CORRAL_ALLOW_IMAGE_URLS")) {
    const std::string b = v;
    if (b == "1" || b == "true") {
      o.allow_image_urls = true;
    } else if (b != "0" && b != "false" && !b.empty()) {
      throw std::invalid_argument("CORRAL_ALLOW_IMAGE_URLS=" + b + ": expected 1 or 0");
    }
  }
  o.models = store::Store::default_root();
  o.scheduler = runner::scheduler_options_from_env();
  return o;
}

Context::Context(ServerOptions o)
    : options(std::move(o)), store(options.models), scheduler(options.scheduler) {
  // Work files of creates and uploads that a killed server left behind.
  store::ScratchDir::sweep(options.models);
  if (options.prune) {
    // Blobs no model uses: left by a killed create or a model removed by another tool. An hour's
    // grace spares those of a create or pull still running in another process.
    const auto [count, bytes] = store.prune(std::chrono::hours(1));
    if (count > 0) {
      std::cerr << "[corral] pruned " << count << " unused blob" << (count == 1 ? "" : "s") << " ("
                << bytes / (1 << 20) << " MiB) from " << options.models.string()
                << " (CORRAL_NOPRUNE=1 keeps them)\n";
    }
  }
}

Server::Server(ServerOptions options)
    : context_(std::make_unique<Context>(std::move(options))),
      http_(std::make_unique<FrontDoor>(context_->options.http, context_->options.max_body_bytes)) {
  const ServerOptions& o = context_->options;
  auto policy = std::make_shared<Policy>();
  policy->any_host = !is_loopback_address(o.host);
  policy->bound_host = o.host;
  policy->hostname = machine_hostname();
  policy->origins = o.origins;
  for (std::string& p : allowed_origins("")) policy->origins.push_back(std::move(p));
  policy->api_key = o.api_key;
  policy->max_body_bytes = o.max_body_bytes;

  // The front door (front_door.h) owns connections, threads and timeouts; httplib parses and
  // routes.
  httplib::Server& http = *http_;
  http.set_pre_routing_handler([policy](const httplib::Request& req, httplib::Response& res) {
    return check_request(*policy, req, res);
  });
  const auto drain = [](const httplib::Request&, httplib::Response& res,
                        const httplib::ContentReader& read) {
    // A body that ends early makes httplib set 400 over the refusal's status.
    const int status = res.status;
    read([](const char*, size_t) { return true; });
    res.status = status;
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
        // A body the front door cut (over the limit, too slow) fails its read whatever the route.
        std::string cut_message;
        if (const int cut = body_cut_status(req, &cut_message)) {
          send_error(res, cut, cut_message);
          return httplib::Server::HandlerResponse::Handled;
        }
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        std::string message = std::to_string(res.status) + " error";
        if (res.status == 400) message = "bad request";
        if (res.status == 404) {
          message = "404 page not found: " + excerpt(req.method) + " " + excerpt(req.path);
        }
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
  add_ui_routes(http);
}

Server::~Server() { stop(); }

int Server::bind() {
  const ServerOptions& o = context_->options;
  if (o.port == 0) {
    const int port = http_->bind_to_any_port(o.host);
    if (port < 0) throw std::runtime_error("cannot listen on " + o.host + ": no free port");
    http_->raise_backlog();
    context_->options.port = port;
    bound_ = true;
    return port;
  }
  errno = 0;
  if (!http_->bind_to_port(o.host, o.port)) {
    const std::string address = o.host + ":" + std::to_string(o.port);
    if (errno == EADDRINUSE) {
      throw std::runtime_error("cannot listen on " + address +
                               ": address already in use (another corral serve or ollama "
                               "serve? CORRAL_HOST picks another address)");
    }
    throw std::runtime_error("cannot listen on " + address + ": " +
                             (errno ? std::strerror(errno) : "bind failed") +
                             " (CORRAL_HOST picks another address)");
  }
  http_->raise_backlog();
  bound_ = true;
  return o.port;
}

void Server::listen() {
  if (!bound_) bind();
  http_->serve();
}

void Server::stop() {
  context_->stopping = true;
  // Generations end at their next step (handlers waiting on them return, streams close) and
  // waiting requests are refused, so stopping the HTTP server's threads does not wait for them.
  context_->scheduler.shutdown();
  http_->stop_all();
}

std::string Server::answer(std::string_view bytes) { return http_->answer(bytes); }

ConnectionStats Server::connection_stats() const { return http_->stats(); }

}  // namespace corral::server
