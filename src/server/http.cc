// The helpers every route file shares: JSON bodies in and out, and one mapping from exceptions to
// HTTP statuses.
#include <httplib.h>

#include <cstdio>
#include <ctime>

#include "runner/runner.h"
#include "server/server.h"

namespace corral::server {

void check_json_depth(std::string_view text, const char* what) {
  size_t depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) {
        throw HttpError(400, std::string("invalid JSON in ") + what + ": nested deeper than " +
                                 std::to_string(kMaxJsonDepth) + " levels");
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
}

std::string excerpt(std::string_view text, size_t max) {
  if (text.size() <= max) return std::string(text);
  size_t n = max;
  // Back up to the start of a UTF-8 character (continuation bytes are 10xxxxxx).
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
  return std::string(text.substr(0, n)) + "... (" + std::to_string(text.size()) + " bytes)";
}

namespace {
template <class J>
std::string dump_excerpt(const J& value, size_t max) {
  // Depth is bounded by check_json_depth for every client value, so dump() cannot recurse far.
  return excerpt(value.dump(-1, ' ', false, J::error_handler_t::replace), max);
}
}  // namespace

std::string json_excerpt(const nlohmann::json& value, size_t max) {
  return dump_excerpt(value, max);
}
std::string json_excerpt(const nlohmann::ordered_json& value, size_t max) {
  return dump_excerpt(value, max);
}

nlohmann::json parse_body(const httplib::Request& req) {
  if (req.body.empty()) throw HttpError(400, "missing request body");
  check_json_depth(req.body);
  nlohmann::json body;
  try {
    body = nlohmann::json::parse(req.body);
  } catch (const nlohmann::json::parse_error& e) {
    throw HttpError(400, "invalid JSON in the request body: " + excerpt(e.what(), 200));
  }
  if (!body.is_object()) {
    throw HttpError(400,
                    std::string("the request body must be a JSON object, not ") + body.type_name());
  }
  return body;
}

void send_json(httplib::Response& res, const nlohmann::json& body, int status) {
  res.status = status;
  // Invalid UTF-8 from a model or a file is replaced rather than ending the request.
  res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                  "application/json; charset=utf-8");
}

std::string error_message(std::string_view message) { return excerpt(message, kMaxErrorMessage); }

void send_error(httplib::Response& res, int status, const std::string& message) {
  send_json(res, nlohmann::json{{"error", error_message(message)}}, status);
}

int error_status(std::exception_ptr error, std::string* message) {
  std::string what;
  int status = 500;
  try {
    std::rethrow_exception(error);
  } catch (const HttpError& e) {
    status = e.status;
    what = e.what();
  } catch (const runner::QueueFullError& e) {
    status = 503;
    what = e.what();
  } catch (const runner::InsufficientMemoryError& e) {
    status = 507;
    what = e.what();
  } catch (const nlohmann::json::exception& e) {
    // A field of the wrong type (get<std::string>() on a number, ...).
    status = 400;
    what = std::string("invalid request: ") + e.what();
  } catch (const std::invalid_argument& e) {
    status = 400;
    what = e.what();
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
    what = "unknown error";
  }
  if (message) *message = what;
  return status;
}

void send_exception(httplib::Response& res, std::exception_ptr error) {
  std::string message;
  const int status = error_status(error, &message);
  send_error(res, status, message);
}

std::string request_model(const nlohmann::json& body) {
  for (const char* key : {"model", "name"}) {
    const auto it = body.find(key);
    if (it == body.end() || it->is_null()) continue;
    if (!it->is_string()) throw HttpError(400, std::string("'") + key + "' must be a string");
    if (!it->get_ref<const std::string&>().empty()) return it->get<std::string>();
  }
  throw HttpError(400, "model is required");
}

std::string format_time(std::chrono::system_clock::time_point t) {
  const auto ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ns / 1000000000);
  long frac = static_cast<long>(ns % 1000000000);
  if (frac < 0) {
    frac += 1000000000;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
  return buf;
}

}  // namespace corral::server
