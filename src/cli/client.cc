#include "cli/client.h"

#include <httplib.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <vector>

#include "store/store.h"

namespace corral::cli {
namespace {

using nlohmann::json;

constexpr int kDefaultPort = 11434;

std::string_view trim(std::string_view s, std::string_view chars) {
  const size_t b = s.find_first_not_of(chars);
  if (b == std::string_view::npos) return {};
  const size_t e = s.find_last_not_of(chars);
  return s.substr(b, e - b + 1);
}

// Go's net.SplitHostPort: "host:port" or "[v6]:port"; false when there is no port or the host
// part has colons without brackets.
bool split_host_port(std::string_view s, std::string& host, std::string& port) {
  if (s.starts_with('[')) {
    const size_t close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') {
      return false;
    }
    host = std::string(s.substr(1, close - 1));
    port = std::string(s.substr(close + 2));
    return port.find(':') == std::string::npos;
  }
  const size_t colon = s.rfind(':');
  if (colon == std::string_view::npos) return false;
  if (s.substr(0, colon).find(':') != std::string_view::npos) return false;
  host = std::string(s.substr(0, colon));
  port = std::string(s.substr(colon + 1));
  return true;
}

bool is_ipv6(std::string_view s) {
  return s.find(':') != std::string_view::npos && std::all_of(s.begin(), s.end(), [](char c) {
           return std::isxdigit(c) || c == ':' || c == '.';
         });
}

bool truthy(const char* v) {
  if (!v) return false;
  std::string s(trim(v, " \t\"'"));
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s == "1" || s == "t" || s == "true" || s == "yes" || s == "on";
}

// The message of an error answer: its {"error": ...}, else the status and the start of the body.
std::string error_message(int status, const std::string& body) {
  try {
    const json j = json::parse(body);
    if (j.is_object() && j.contains("error")) {
      return j["error"].is_string() ? j["error"].get<std::string>() : j["error"].dump();
    }
  } catch (const json::exception&) {
  }
  std::string m = "the server answered HTTP " + std::to_string(status);
  const std::string_view b = trim(body, " \t\r\n");
  if (!b.empty()) m += ": " + std::string(b.substr(0, 200));
  return m;
}

json parse_answer(const std::string& body) {
  if (trim(body, " \t\r\n").empty()) return json::object();
  try {
    return json::parse(body);
  } catch (const json::exception& e) {
    throw std::runtime_error("the server's answer is not JSON (" + std::string(e.what()) + ")");
  }
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

}  // namespace

std::string HostAddress::url() const {
  const bool v6 = host.find(':') != std::string::npos;
  return scheme + "://" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

HostAddress parse_host(std::string_view value) {
  std::string_view v = trim(trim(trim(value, " \t\r\n"), "\"'"), " \t\r\n");
  HostAddress a;
  int default_port = kDefaultPort;
  std::string_view hostport = v;
  if (const size_t sep = v.find("://"); sep != std::string_view::npos) {
    a.scheme = std::string(v.substr(0, sep));
    hostport = v.substr(sep + 3);
    if (a.scheme == "http") default_port = 80;
    if (a.scheme == "https") default_port = 443;
  }
  while (hostport.ends_with('/')) hostport.remove_suffix(1);

  std::string host, port;
  if (!split_host_port(hostport, host, port)) {
    host = "127.0.0.1";
    port = std::to_string(default_port);
    const std::string_view bare = trim(hostport, "[]");
    if (is_ipv6(bare)) {
      host = std::string(bare);
    } else if (!hostport.empty()) {
      host = std::string(hostport);
    }
  }
  int p = -1;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (ec != std::errc() || end != port.data() + port.size() || p < 0 || p > 65535) {
    throw std::invalid_argument("CORRAL_HOST '" + std::string(value) + "': invalid port '" + port +
                                "'");
  }
  a.host = host.empty() ? "127.0.0.1" : host;  // ":port" is this machine, as Go dials it
  a.port = p;
  return a;
}

HostAddress host_from_env() {
  const char* v = std::getenv("CORRAL_HOST");
  return v ? parse_host(v) : HostAddress{};
}

bool server_disabled() { return truthy(std::getenv("CORRAL_NO_SERVER")); }

Client::Client(HostAddress address) : address_(std::move(address)) {
  if (address_.scheme != "http" && address_.scheme != "https") {
    throw std::invalid_argument("CORRAL_HOST: the '" + address_.scheme +
                                "' scheme is not supported (use http:// or https://)");
  }
  http_ = std::make_unique<httplib::Client>(address_.url());
  http_->set_connection_timeout(3, 0);
  // A request may wait long for its first byte (a model loading) and between tokens.
  http_->set_read_timeout(24 * 3600, 0);
  http_->set_write_timeout(300, 0);
  http_->set_keep_alive(true);
}

Client::~Client() = default;

void Client::throw_transport_error(int error) const {
  const auto e = static_cast<httplib::Error>(error);
  if (e == httplib::Error::Connection) {
    throw ConnectionError("could not connect to corral server at " + address_.url() +
                          " (is `corral serve` running? CORRAL_HOST sets where to look)");
  }
  throw ConnectionError("lost the connection to corral server at " + address_.url() + " (" +
                        httplib::to_string(e) + ")");
}

bool Client::alive() {
  const httplib::Result r = http_->Head("/");
  return static_cast<bool>(r);
}

std::string Client::where() const {
  const std::string url = address_.url();
  return address_.scheme == "http" ? url.substr(7) : url;
}

void Client::throw_server_error(int status, const std::string& message) {
  // "model 'x' not found" from a server: the user may be looking at another store than the
  // server's (a background server started with another CORRAL_MODELS), so say which server was
  // asked and, when it tells (corral's /api/version does), its store and how it differs.
  if (!message.starts_with("model '") || !message.ends_with("' not found")) {
    throw ServerError(status, message);
  }
  std::string m = message + " (asked the corral server at " + where();
  std::string theirs;
  if (const httplib::Result v = http_->Get("/api/version"); v && v->status == 200) {
    try {
      const json j = json::parse(v->body);
      if (j.is_object() && j.contains("models") && j["models"].is_string()) theirs = j["models"];
    } catch (const json::exception&) {
    }
  }
  if (!theirs.empty()) {
    m += ", whose store is " + theirs;
    std::string mine;
    try {
      mine = store::Store::default_root().string();
    } catch (const std::exception&) {
    }
    std::error_code ec;
    if (!mine.empty() && mine != theirs && !std::filesystem::equivalent(mine, theirs, ec)) {
      m += ", not this shell's " + mine + "; CORRAL_NO_SERVER=1 uses " + mine;
    }
  }
  throw ServerError(status, m + ")");
}

const httplib::Response& Client::checked(const httplib::Result& r) {
  if (!r) throw_transport_error(static_cast<int>(r.error()));
  if (r->status >= 400) throw_server_error(r->status, error_message(r->status, r->body));
  return *r;
}

nlohmann::json Client::get(const std::string& path) {
  return parse_answer(checked(http_->Get(path.c_str())).body);
}

nlohmann::json Client::post(const std::string& path, const nlohmann::json& body) {
  return parse_answer(checked(http_->Post(path.c_str(), body.dump(), "application/json")).body);
}

nlohmann::json Client::del(const std::string& path, const nlohmann::json& body) {
  return parse_answer(checked(http_->Delete(path.c_str(), body.dump(), "application/json")).body);
}

void Client::stream(const std::string& path, const nlohmann::json& body, const ObjectSink& sink) {
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  req.set_header("Accept", "application/x-ndjson");

  int status = 0;
  std::string error_body, pending, error_line;
  std::exception_ptr failure;  // thrown once httplib has returned
  bool stopped = false;
  // One line of the stream; false ends it.
  const auto take_line = [&](std::string_view line) {
    if (trim(line, " \t\r").empty()) return true;
    json obj;
    try {
      obj = json::parse(line);
    } catch (const json::exception& e) {
      failure = std::make_exception_ptr(std::runtime_error(
          "the server sent a line that is not JSON (" + std::string(e.what()) + ")"));
      return false;
    }
    if (obj.is_object() && obj.contains("error")) {
      error_line = error_message(200, obj.dump());  // thrown once the request is over
      return false;
    }
    try {
      if (!sink(obj)) {
        stopped = true;
        return false;
      }
    } catch (...) {
      failure = std::current_exception();
      return false;
    }
    return true;
  };
  req.response_handler = [&status](const httplib::Response& res) {
    status = res.status;
    return true;
  };
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    if (status >= 400) {
      if (error_body.size() < 65536) error_body.append(data, n);
      return true;
    }
    pending.append(data, n);
    size_t start = 0;
    for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
      if (!take_line(std::string_view(pending).substr(start, nl - start))) return false;
    }
    pending.erase(0, start);
    return true;
  };
  const httplib::Result r = http_->send(req);
  if (failure) std::rethrow_exception(failure);
  if (!error_line.empty()) throw_server_error(200, error_line);
  if (stopped || cancelled_) return;
  if (!r) throw_transport_error(static_cast<int>(r.error()));
  if (r->status >= 400) throw_server_error(r->status, error_message(r->status, error_body));
  if (!take_line(pending)) {
    if (failure) std::rethrow_exception(failure);
    if (!error_line.empty()) throw_server_error(200, error_line);
  }
}

bool Client::has_blob(const std::string& digest) {
  const httplib::Result r = http_->Head(("/api/blobs/" + digest).c_str());
  if (!r) throw_transport_error(static_cast<int>(r.error()));
  if (r->status == 404) return false;
  if (r->status >= 400) throw_server_error(r->status, error_message(r->status, r->body));
  return true;
}

void Client::upload_blob(const std::filesystem::path& file, const std::string& digest,
                         const SendProgress& progress) {
  auto in = std::make_shared<std::ifstream>(file, std::ios::binary);
  if (!*in) throw std::runtime_error(file.string() + ": cannot open");
  const uint64_t size = std::filesystem::file_size(file);
  auto buffer = std::make_shared<std::vector<char>>(size_t{1} << 20);
  if (progress) progress(0, size);
  const httplib::Result r = http_->Post(
      ("/api/blobs/" + digest).c_str(), static_cast<size_t>(size),
      [in, buffer, size, &progress](size_t offset, size_t length, httplib::DataSink& sink) {
        in->seekg(static_cast<std::streamoff>(offset));
        const size_t n = std::min(length, buffer->size());
        in->read(buffer->data(), static_cast<std::streamsize>(n));
        if (static_cast<size_t>(in->gcount()) != n) return false;  // the file shrank
        if (!sink.write(buffer->data(), n)) return false;
        if (progress) progress(offset + n, size);
        return true;
      },
      "application/octet-stream");
  checked(r);
}

void Client::cancel() {
  cancelled_ = true;
  http_->stop();
}

std::unique_ptr<Client> connect_if_running() {
  if (server_disabled()) return nullptr;
  auto c = std::make_unique<Client>(host_from_env());
  if (!c->alive()) return nullptr;
  return c;
}

std::unique_ptr<Client> connect_or_throw() {
  auto c = std::make_unique<Client>(host_from_env());
  if (!c->alive()) {
    throw ConnectionError("could not connect to corral server at " + c->address().url() +
                          " (is `corral serve` running? CORRAL_HOST sets where to look)");
  }
  return c;
}

std::optional<double> parse_api_time(std::string_view t) {
  // YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)
  const auto num = [&t](size_t at, size_t len, int& out) {
    if (at + len > t.size()) return false;
    const auto [end, ec] = std::from_chars(t.data() + at, t.data() + at + len, out);
    return ec == std::errc() && end == t.data() + at + len;
  };
  int y, mo, d, h, mi, s;
  if (t.size() < 20 || !num(0, 4, y) || t[4] != '-' || !num(5, 2, mo) || t[7] != '-' ||
      !num(8, 2, d) || (t[10] != 'T' && t[10] != 't' && t[10] != ' ') || !num(11, 2, h) ||
      t[13] != ':' || !num(14, 2, mi) || t[16] != ':' || !num(17, 2, s)) {
    return std::nullopt;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return std::nullopt;
  size_t i = 19;
  double frac = 0, scale = 0.1;
  if (i < t.size() && t[i] == '.') {
    ++i;
    const size_t start = i;
    for (; i < t.size() && std::isdigit(static_cast<unsigned char>(t[i])); ++i, scale /= 10) {
      frac += (t[i] - '0') * scale;
    }
    if (i == start) return std::nullopt;
  }
  int offset = 0;
  if (i < t.size() && (t[i] == 'Z' || t[i] == 'z')) {
    ++i;
  } else if (i < t.size() && (t[i] == '+' || t[i] == '-')) {
    int oh, om;
    if (!num(i + 1, 2, oh) || i + 3 >= t.size() || t[i + 3] != ':' || !num(i + 4, 2, om)) {
      return std::nullopt;
    }
    offset = (oh * 3600 + om * 60) * (t[i] == '-' ? -1 : 1);
    i += 6;
  } else {
    return std::nullopt;
  }
  if (i != t.size()) return std::nullopt;
  const int64_t days = days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  return static_cast<double>(days * 86400 + h * 3600 + mi * 60 + s - offset) + frac;
}

}  // namespace corral::cli
