#include "server/front_door.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <limits>
#include <set>

#include "server/disconnect.h"

namespace corral::server {

using Clock = std::chrono::steady_clock;

namespace {

// Marks a request whose body the front door cut short, for the error handler (body_cut_status).
// The name holds a newline, which no header a client sends can: httplib splits lines at '\n'.
constexpr const char* kBodyCutMark = "\ncorral-body-cut";

// After an answer to a request whose body was not read, input is discarded for at most this long
// and this much before the connection closes (a close with unread input sends a reset, which can
// reach the client before it has read the answer, and many clients then report the reset instead
// of the answer): the rest of a declared body up to kMaxLingerBytes, else kLingerBytes. Discarding
// holds no thread and no memory; the deadline bounds a client that sends slowly.
constexpr auto kLingerTime = std::chrono::seconds(5);
constexpr uint64_t kLingerBytes = uint64_t{16} << 20;
constexpr uint64_t kMaxLingerBytes = uint64_t{1} << 30;

// The most read from a socket at once.
constexpr size_t kReadChunk = 64 * 1024;

void set_close(httplib::Request& req) {
  req.headers.erase("Connection");
  req.headers.emplace("Connection", "close");
}

// An answer written without httplib, to a connection refused before any request was parsed. Best
// effort: the socket is non-blocking and the answer is small.
void send_plain(int fd, int status, const char* reason, const std::string& message) {
  const std::string body = "{\"error\":\"" + message + "\"}";
  const std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason +
                          "\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  [[maybe_unused]] const ssize_t n =
      ::send(fd, out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

int ms_until(Clock::time_point t) {
  const auto d = std::chrono::ceil<std::chrono::milliseconds>(t - Clock::now()).count();
  return static_cast<int>(std::clamp<int64_t>(d, 0, std::numeric_limits<int>::max()));
}

}  // namespace

size_t find_head_end(std::string& in, size_t& scanned) {
  size_t blank = 0;
  while (blank < in.size() && (in[blank] == '\n' || (in[blank] == '\r' && blank + 1 < in.size() &&
                                                     in[blank + 1] == '\n'))) {
    blank += in[blank] == '\n' ? 1 : 2;
  }
  if (blank > 0) {
    in.erase(0, blank);
    scanned = 0;
  }
  const size_t line_end = in.find('\n');
  if (line_end == std::string::npos) {
    scanned = in.size();
    return 0;
  }
  // The head's end is "\n\r\n" whose first '\n' ends the request line or a header line.
  const size_t from = std::max(line_end, scanned >= 2 ? scanned - 2 : 0);
  const size_t at = in.find("\n\r\n", from);
  if (at == std::string::npos) {
    scanned = in.size();
    return 0;
  }
  return at + 3;
}

void ChunkedCounter::feed(const char* p, size_t n) {
  const auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  size_t i = 0;
  while (i < n) {
    const char c = p[i];
    switch (state_) {
      case State::kSize:
        if (const int d = hex(c); d >= 0) {
          if (size_ > (uint64_t{1} << 56)) {
            state_ = State::kBad;
            continue;
          }
          size_ = size_ * 16 + static_cast<uint64_t>(d);
          ++digits_;
        } else if (digits_ > 0 && c == ';') {
          state_ = State::kExtension;
        } else if (digits_ > 0 && c == '\r') {
          state_ = State::kSizeLf;
        } else {
          state_ = State::kBad;
          continue;
        }
        ++i;
        break;
      case State::kExtension:
        if (c == '\r') state_ = State::kSizeLf;
        if (c == '\n') {
          state_ = State::kBad;
          continue;
        }
        ++i;
        break;
      case State::kSizeLf:
        if (c != '\n') {
          state_ = State::kBad;
          continue;
        }
        state_ = size_ == 0 ? State::kLastCr : State::kData;
        ++i;
        break;
      case State::kData: {
        const uint64_t take = std::min<uint64_t>(size_, n - i);
        data_ += take;
        size_ -= take;
        i += static_cast<size_t>(take);
        if (size_ == 0) state_ = State::kDataCr;
        break;
      }
      case State::kDataCr:
      case State::kLastCr:
        if (c != '\r') {
          state_ = State::kBad;
          continue;
        }
        state_ = state_ == State::kDataCr ? State::kDataLf : State::kLastLf;
        ++i;
        break;
      case State::kDataLf:
      case State::kLastLf:
        if (c != '\n') {
          state_ = State::kBad;
          continue;
        }
        if (state_ == State::kLastLf) {
          state_ = State::kDone;
        } else {
          state_ = State::kSize;
          size_ = 0;
          digits_ = 0;
        }
        ++i;
        break;
      case State::kDone:
        // httplib reads nothing after the last chunk; bytes here mean the framing disagreed.
        state_ = State::kBad;
        continue;
      case State::kBad:
        data_ += n - i;
        return;
    }
  }
}

int body_cut_status(const httplib::Request& req, std::string* message) {
  const auto it = req.headers.find(kBodyCutMark);
  if (it == req.headers.end()) return 0;
  const std::string& v = it->second;
  if (message) *message = v.size() > 4 ? v.substr(4) : v;
  return std::atoi(v.c_str());
}

// ---- Connections --------------------------------------------------------------------------

struct FrontDoor::Conn {
  int fd = -1;         // -1: no socket (answer()): input ends with `in`, output goes to `out`
  std::string client;  // the per-client count's key (address bytes)
  std::string ip;
  int port = 0;
  std::string in;      // received and not yet consumed
  size_t scanned = 0;  // find_head_end's progress
  size_t head = 0;     // length of the complete head at the front of `in`
  bool eof = false;    // the client closed its sending side
  bool lingering = false;
  uint64_t lingered = 0;
  uint64_t linger_budget = 0;
  size_t served = 0;  // requests answered on this connection
  Clock::time_point deadline;
  std::string* out = nullptr;  // answer(): where writes go
};

// httplib's view of one request on a connection: the buffered head, then the body as framed by
// the head httplib parsed (on_head), held to its limits while it is read.
class ConnStream : public httplib::Stream {
 public:
  ConnStream(FrontDoor& door, FrontDoor::Conn& c) : door_(door), c_(c), head_(c.head) {}
  // The request is over: its body no longer counts against max_body_memory.
  ~ConnStream() override { door_.bodies_held_ -= held_; }
  ConnStream(const ConnStream&) = delete;
  ConnStream& operator=(const ConnStream&) = delete;

  // setup_request: httplib has parsed the head; frame the body as it will read it.
  void on_head(httplib::Request& req) {
    req_ = &req;
    head_parsed_ = true;
    body_start_ = Clock::now();
    const bool blob = req.path.starts_with("/api/blobs/");
    // `curl -d` labels a body as a form. Ollama's API reads every body as JSON whatever its label,
    // while httplib would parse a form into parameters and refuse one over 8 KiB with 413.
    if (const auto it = req.headers.find("Content-Type");
        it != req.headers.end() &&
        strncasecmp(it->second.c_str(), "application/x-www-form-urlencoded", 33) == 0) {
      req.headers.erase(it);
    }
    limit_ = blob ? std::numeric_limits<uint64_t>::max() : door_.max_body_bytes_;
    // As httplib decides (the first Transfer-Encoding value, exactly "chunked").
    if (strcasecmp(req.get_header_value("Transfer-Encoding").c_str(), "chunked") == 0) {
      framing_ = Framing::kChunked;
      // httplib appends the body to req.body: room reserved up front (untouched pages cost no
      // memory) spares the copies of a doubling string, which would hold one and a half times the
      // body while it grows.
      if (!blob) reserve(req.body, limit_);
      return;
    }
    if (req.has_header("Content-Length")) {
      // As httplib reads it (strtoull of the first value); server.cc refuses malformed values.
      length_ = std::strtoull(req.get_header_value("Content-Length").c_str(), nullptr, 10);
      framing_ = Framing::kLength;
      if (length_ > limit_) {
        // Answered 413 from the head: the body is not read, nor invited by 100 Continue.
        refused_ = true;
        req.headers.erase("Expect");
        set_close(req);
      } else if (!blob) {
        reserve(req.body, length_);
      }
      return;
    }
    // No length and not chunked: no body (RFC 9112 §6.3), where httplib would read to the end.
    framing_ = Framing::kNone;
  }

  // A reservation the system refuses only costs the copies it would have spared.
  static void reserve(std::string& body, uint64_t n) {
    try {
      body.reserve(static_cast<size_t>(n));
    } catch (const std::exception&) {
    }
  }

  // Whether the connection can serve another request: the head was understood, the body was read
  // to its end and nothing was cut.
  bool reusable() const {
    if (!head_parsed_ || cut_) return false;
    switch (framing_) {
      case Framing::kNone:
        return true;
      case Framing::kLength:
        return body_read_ == length_;
      case Framing::kChunked:
        return chunked_.complete();
    }
    return false;
  }
  size_t consumed() const { return pos_; }
  // What a Content-Length promised and was not read (a refused or abandoned body).
  uint64_t unread_declared() const {
    return framing_ == Framing::kLength && length_ > body_read_ ? length_ - body_read_ : 0;
  }

  bool is_readable() const override {
    return pos_ < c_.in.size() || (c_.fd >= 0 && poll_one(POLLIN, 0));
  }

  bool is_writable() const override {
    // As httplib's SocketStream: writable within the write timeout, and the client still there (a
    // closed connection reads as end of input; pipelined bytes mean it is alive).
    if (c_.fd < 0) return true;
    if (!poll_one(POLLOUT, static_cast<int>(door_.limits_.write_timeout.count()))) return false;
    if (pos_ < c_.in.size() || !poll_one(POLLIN, 0)) return true;
    char b;
    const ssize_t n = ::recv(c_.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
  }

  ssize_t read(char* ptr, size_t size) override {
    if (size == 0) return 0;
    if (served_ < head_) {
      // The head is buffered whole.
      const size_t n = std::min(size, head_ - served_);
      std::memcpy(ptr, c_.in.data() + pos_, n);
      pos_ += n;
      served_ += n;
      return static_cast<ssize_t>(n);
    }
    if (cut_) return -1;
    uint64_t allowed = 0;
    switch (framing_) {
      case Framing::kNone:
        allowed = 0;
        break;
      case Framing::kLength:
        allowed = refused_ ? 0 : length_ - body_read_;
        break;
      case Framing::kChunked:
        allowed = chunked_.complete() ? 0 : size;
        break;
    }
    if (!head_parsed_) allowed = 0;
    size = static_cast<size_t>(std::min<uint64_t>(size, allowed));
    if (size == 0) return 0;
    if (pos_ == c_.in.size() && !fill()) return c_.eof ? 0 : -1;
    const size_t n = std::min(size, c_.in.size() - pos_);
    if (framing_ == Framing::kChunked) {
      chunked_.feed(c_.in.data() + pos_, n);
      if (chunked_.data_bytes() > limit_) {
        cut(413, "request body too large: more than " + std::to_string(limit_) + " bytes");
        return -1;
      }
    }
    if (limit_ != std::numeric_limits<uint64_t>::max()) {
      held_ += n;
      const uint64_t budget = std::max<uint64_t>(door_.limits_.max_body_memory, limit_);
      if (door_.bodies_held_.fetch_add(n) + n > budget) {
        // This body is abandoned: what it held is free for the others at once.
        door_.bodies_held_ -= held_;
        held_ = 0;
        cut(503, "server busy: the request bodies being handled hold more than " +
                     std::to_string(budget) + " bytes (CORRAL_MAX_BODY_MEMORY); try again");
        return -1;
      }
    }
    std::memcpy(ptr, c_.in.data() + pos_, n);
    pos_ += n;
    body_read_ += n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (c_.fd < 0) {
      c_.out->append(ptr, size);
      return static_cast<ssize_t>(size);
    }
    const Clock::time_point deadline = Clock::now() + door_.limits_.write_timeout;
    for (;;) {
      const ssize_t n = ::send(c_.fd, ptr, size, MSG_NOSIGNAL);
      if (n >= 0) return n;
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
      if (door_.stopping_ || !poll_one(POLLOUT, ms_until(deadline))) return -1;
    }
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = c_.ip;
    port = c_.port;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    ip.clear();
    port = 0;
    if (c_.fd < 0) return;
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    if (getsockname(c_.fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return;
    char buf[INET6_ADDRSTRLEN] = {};
    if (addr.ss_family == AF_INET) {
      const auto& a = reinterpret_cast<const sockaddr_in&>(addr);
      inet_ntop(AF_INET, &a.sin_addr, buf, sizeof buf);
      port = ntohs(a.sin_port);
    } else if (addr.ss_family == AF_INET6) {
      const auto& a = reinterpret_cast<const sockaddr_in6&>(addr);
      inet_ntop(AF_INET6, &a.sin6_addr, buf, sizeof buf);
      port = ntohs(a.sin6_port);
    }
    ip = buf;
  }
  socket_t socket() const override { return c_.fd; }

 private:
  enum class Framing { kNone, kLength, kChunked };

  bool poll_one(short events, int timeout_ms) const {
    pollfd p{c_.fd, events, 0};
    for (;;) {
      const int r = ::poll(&p, 1, timeout_ms);
      if (r < 0 && errno == EINTR) continue;
      return r > 0;
    }
  }

  // Reads more of the body into the (consumed, so emptied) buffer, within the read timeout and the
  // minimum rate. False at the end of input, an error, or a cut.
  bool fill() {
    c_.in.clear();
    pos_ = 0;
    if (c_.fd < 0 || c_.eof) {
      c_.eof = true;
      return false;
    }
    const HttpLimits& l = door_.limits_;
    for (;;) {
      c_.in.resize(kReadChunk);
      const ssize_t n = ::recv(c_.fd, c_.in.data(), c_.in.size(), 0);
      c_.in.resize(n > 0 ? static_cast<size_t>(n) : 0);
      if (n > 0) {
        door_.body_bytes_ += static_cast<uint64_t>(n);
        return true;
      }
      if (n == 0) {
        c_.eof = true;
        return false;
      }
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return false;
      if (door_.stopping_) return false;
      const Clock::time_point now = Clock::now();
      const Clock::time_point idle_deadline = now + l.read_timeout;
      Clock::time_point rate_deadline = Clock::time_point::max();
      if (l.min_body_rate > 0) {
        // The body has kept its rate until body_read_ / rate seconds after it began.
        const auto owed = std::chrono::duration<double>(static_cast<double>(body_read_) /
                                                        static_cast<double>(l.min_body_rate));
        rate_deadline =
            body_start_ + std::max<Clock::duration>(
                              l.body_rate_grace, std::chrono::duration_cast<Clock::duration>(owed));
      }
      const Clock::time_point deadline = std::min(idle_deadline, rate_deadline);
      if (!poll_one(POLLIN, ms_until(deadline)) && Clock::now() >= deadline) {
        cut(408, deadline == rate_deadline ? "request body too slow: under " +
                                                 std::to_string(l.min_body_rate) + " bytes a second"
                                           : "request body timed out: nothing for " +
                                                 std::to_string(l.read_timeout.count()) + " ms");
        return false;
      }
    }
  }

  void cut(int status, const std::string& message) {
    cut_ = true;
    if (!req_) return;
    req_->headers.emplace(kBodyCutMark, std::to_string(status) + " " + message);
    set_close(*req_);
  }

  FrontDoor& door_;
  FrontDoor::Conn& c_;
  const size_t head_;
  size_t pos_ = 0;     // consumed bytes of c_.in
  size_t served_ = 0;  // head bytes handed to httplib
  httplib::Request* req_ = nullptr;
  bool head_parsed_ = false;
  Framing framing_ = Framing::kNone;
  bool refused_ = false;
  bool cut_ = false;
  uint64_t length_ = 0;
  uint64_t limit_ = 0;
  uint64_t body_read_ = 0;
  uint64_t held_ = 0;  // added to door_.bodies_held_
  ChunkedCounter chunked_;
  Clock::time_point body_start_;
};

namespace {

// httplib's accept loop hands each socket to process_and_close_socket through a TaskQueue; this one
// runs it at once on the accept thread, which only registers the connection.
class Inline : public httplib::TaskQueue {
 public:
  void enqueue(std::function<void()> fn) override { fn(); }
  void shutdown() override {}
};

}  // namespace

FrontDoor::FrontDoor(HttpLimits limits, size_t max_body_bytes)
    : limits_(limits), max_body_bytes_(max_body_bytes) {
  new_task_queue = [] { return new Inline; };
  // The Keep-Alive header httplib writes; the front door enforces both.
  set_keep_alive_timeout(std::max<time_t>(
      1, std::chrono::duration_cast<std::chrono::seconds>(limits.idle_timeout).count()));
  set_keep_alive_max_count(1000);
  // httplib's default sets SO_REUSEPORT, which lets a second server bind the same address and
  // take half its connections. SO_REUSEADDR alone rebinds past TIME_WAIT and no more: a second
  // `corral serve` on the address fails with EADDRINUSE.
  set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
}

FrontDoor::~FrontDoor() { stop_all(); }

void FrontDoor::raise_backlog() {
  const socket_t s = svr_sock_;
  if (s != INVALID_SOCKET) ::listen(s, std::max(limits_.listen_backlog, 1));
}

bool FrontDoor::serve() {
  {
    std::lock_guard lock(lifecycle_mutex_);
    if (stopping_) return false;
    if (!started_) {
      epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
      wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
      if (epoll_fd_ < 0 || wake_fd_ < 0) throw std::runtime_error("cannot create an epoll set");
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.fd = wake_fd_;
      epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
      started_ = true;
      waiting_room_thread_ = std::thread([this] { waiting_room(); });
      for (size_t i = 0; i < std::max<size_t>(limits_.threads, 1); ++i) {
        workers_.emplace_back([this] { worker(); });
      }
    }
  }
  return listen_after_bind();
}

void FrontDoor::stop_all() {
  std::lock_guard lock(lifecycle_mutex_);
  stopping_ = true;
  // httplib's stop() acts only once its accept loop runs; closing the socket here also ends a loop
  // that has not started yet.
  const socket_t s = svr_sock_.exchange(INVALID_SOCKET);
  if (s != INVALID_SOCKET) {
    ::shutdown(s, SHUT_RDWR);
    ::close(s);
  }
  if (!started_) return;
  wake();
  if (waiting_room_thread_.joinable()) waiting_room_thread_.join();
  {
    // Wakes workers blocked on a client; their requests then end.
    std::lock_guard reg(registry_mutex_);
    for (const auto& [fd, client] : open_) ::shutdown(fd, SHUT_RDWR);
  }
  {
    // Taken so that no worker is between its check of stopping_ and its wait.
    std::lock_guard ready(ready_mutex_);
  }
  ready_cv_.notify_all();
  for (std::thread& t : workers_) {
    if (t.joinable()) t.join();
  }
  workers_.clear();
  for (auto& c : ready_) close_conn(*c);
  ready_.clear();
  for (auto& c : arrivals_) close_conn(*c);
  arrivals_.clear();
  ::close(epoll_fd_);
  ::close(wake_fd_);
  started_ = false;
}

ConnectionStats FrontDoor::stats() const {
  ConnectionStats s;
  {
    std::lock_guard lock(registry_mutex_);
    s.open = open_.size();
  }
  s.refused = refused_;
  s.body_bytes = body_bytes_;
  s.body_memory = bodies_held_.load();
  s.head_timeouts = head_timeouts_;
  return s;
}

void FrontDoor::wake() {
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(wake_fd_, &one, sizeof one);
}

bool FrontDoor::process_and_close_socket(socket_t sock) {
  auto c = std::make_unique<Conn>();
  c->fd = sock;
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  char ip[INET6_ADDRSTRLEN] = {};
  if (getpeername(sock, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    if (addr.ss_family == AF_INET) {
      const auto& a = reinterpret_cast<const sockaddr_in&>(addr);
      c->client.assign(reinterpret_cast<const char*>(&a.sin_addr), 4);
      inet_ntop(AF_INET, &a.sin_addr, ip, sizeof ip);
      c->port = ntohs(a.sin_port);
    } else if (addr.ss_family == AF_INET6) {
      const auto& a = reinterpret_cast<const sockaddr_in6&>(addr);
      const auto* b = reinterpret_cast<const char*>(&a.sin6_addr);
      // An IPv4-mapped address counts as the IPv4 address; other clients by their /64, which one
      // host usually holds whole.
      static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
      c->client = std::memcmp(b, kMapped, 12) == 0 ? std::string(b + 12, 4) : std::string(b, 8);
      inet_ntop(AF_INET6, &a.sin6_addr, ip, sizeof ip);
      c->port = ntohs(a.sin6_port);
    }
  }
  c->ip = ip;
  {
    std::lock_guard lock(registry_mutex_);
    size_t& mine = per_client_[c->client];
    const char* why = nullptr;
    if (stopping_) why = "the server is stopping";
    if (open_.size() >= limits_.max_connections) why = "too many connections";
    if (mine >= limits_.max_connections_per_client) why = "too many connections from this client";
    if (why) {
      if (mine == 0) per_client_.erase(c->client);
      ++refused_;
      send_plain(sock, 503, "Service Unavailable", why);
      ::close(sock);
      return false;
    }
    ++mine;
    open_.emplace(sock, c->client);
  }
  fcntl(sock, F_SETFL, fcntl(sock, F_GETFL) | O_NONBLOCK);
  // Streamed tokens go out as they come rather than waiting for an acknowledgement (Nagle).
  const int one = 1;
  setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c->deadline = Clock::now() + limits_.header_timeout;
  to_waiting_room(std::move(c));
  return true;
}

void FrontDoor::to_waiting_room(std::unique_ptr<Conn> c) {
  {
    std::lock_guard lock(arrivals_mutex_);
    arrivals_.push_back(std::move(c));
  }
  wake();
}

void FrontDoor::close_conn(Conn& c) {
  if (c.fd < 0) return;
  std::lock_guard lock(registry_mutex_);
  const auto it = open_.find(c.fd);
  if (it != open_.end()) {
    const auto pc = per_client_.find(it->second);
    if (pc != per_client_.end() && --pc->second == 0) per_client_.erase(pc);
    open_.erase(it);
  }
  // Closed under the lock, so that stop_all never shuts down a number reused by another socket.
  ::close(c.fd);
  c.fd = -1;
}

void FrontDoor::waiting_room() {
  std::unordered_map<int, std::unique_ptr<Conn>> conns;
  std::set<std::pair<Clock::time_point, int>> deadlines;
  const auto forget = [&](int fd) -> std::unique_ptr<Conn> {
    auto it = conns.find(fd);
    std::unique_ptr<Conn> c = std::move(it->second);
    conns.erase(it);
    deadlines.erase({c->deadline, fd});
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    return c;
  };
  const auto drop = [&](int fd) {
    std::unique_ptr<Conn> c = forget(fd);
    close_conn(*c);
  };
  const auto set_deadline = [&](Conn& c, Clock::time_point t) {
    deadlines.erase({c.deadline, c.fd});
    c.deadline = t;
    deadlines.emplace(t, c.fd);
  };
  // Reads what the client sent; dispatches a complete head to the workers.
  const auto on_input = [&](Conn& c) {
    char buf[kReadChunk];
    if (c.lingering) {
      for (;;) {
        const ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
        if (n > 0) {
          c.lingered += static_cast<uint64_t>(n);
          if (c.lingered < c.linger_budget) continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        drop(c.fd);
        return;
      }
    }
    const bool was_idle = c.in.empty();
    while (!c.eof && c.in.size() <= limits_.max_header_bytes) {
      const size_t room = std::min(sizeof buf, limits_.max_header_bytes + 1 - c.in.size());
      const ssize_t n = ::recv(c.fd, buf, room, 0);
      if (n > 0) {
        c.in.append(buf, static_cast<size_t>(n));
        if (find_head_end(c.in, c.scanned) > 0) break;
        continue;
      }
      if (n == 0) {
        c.eof = true;
        break;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      drop(c.fd);
      return;
    }
    c.head = find_head_end(c.in, c.scanned);
    if (c.head > limits_.max_header_bytes ||
        (c.head == 0 && c.in.size() > limits_.max_header_bytes)) {
      send_plain(c.fd, 431, "Request Header Fields Too Large",
                 "request head too large: more than " + std::to_string(limits_.max_header_bytes) +
                     " bytes");
      drop(c.fd);
      return;
    }
    if (c.head > 0) {
      std::unique_ptr<Conn> ready = forget(c.fd);
      {
        std::lock_guard lock(ready_mutex_);
        ready_.push_back(std::move(ready));
      }
      ready_cv_.notify_one();
      return;
    }
    if (c.eof) {
      drop(c.fd);
      return;
    }
    // The first bytes after an idle keep-alive start the head's deadline.
    if (was_idle && !c.in.empty()) set_deadline(c, Clock::now() + limits_.header_timeout);
  };
  const auto adopt = [&](std::unique_ptr<Conn> c) {
    const int fd = c->fd;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.fd = fd;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      close_conn(*c);
      return;
    }
    deadlines.emplace(c->deadline, fd);
    conns.emplace(fd, std::move(c));
  };

  std::vector<epoll_event> events(256);
  while (!stopping_) {
    const int timeout = deadlines.empty() ? -1 : ms_until(deadlines.begin()->first);
    const int n = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), timeout);
    if (n < 0 && errno != EINTR) break;
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == wake_fd_) {
        uint64_t count;
        [[maybe_unused]] const ssize_t r = ::read(wake_fd_, &count, sizeof count);
        std::vector<std::unique_ptr<Conn>> arrived;
        {
          std::lock_guard lock(arrivals_mutex_);
          arrived.swap(arrivals_);
        }
        for (auto& c : arrived) adopt(std::move(c));
        continue;
      }
      const auto it = conns.find(fd);
      if (it != conns.end()) on_input(*it->second);
    }
    const Clock::time_point now = Clock::now();
    while (!deadlines.empty() && deadlines.begin()->first <= now) {
      const int fd = deadlines.begin()->second;
      Conn& c = *conns.at(fd);
      if (!c.lingering && !c.in.empty()) {
        ++head_timeouts_;
        send_plain(fd, 408, "Request Timeout",
                   "request head not complete within " +
                       std::to_string(limits_.header_timeout.count()) + " ms");
      }
      drop(fd);
    }
  }
  for (auto& [fd, c] : conns) close_conn(*c);
}

void FrontDoor::worker() {
  for (;;) {
    std::unique_ptr<Conn> c;
    {
      std::unique_lock lock(ready_mutex_);
      ready_cv_.wait(lock, [&] { return stopping_ || !ready_.empty(); });
      if (stopping_) return;
      c = std::move(ready_.front());
      ready_.pop_front();
    }
    serve_connection(std::move(c));
  }
}

void FrontDoor::serve_connection(std::unique_ptr<Conn> c) {
  for (;;) {
    ConnStream strm(*this, *c);
    bool closed = false;
    const bool last = ++c->served >= keep_alive_max_count_ || stopping_;
    bool ok = false;
    {
      // Handlers that run long without writing learn from the socket that their client left.
      const ClientSocketScope scope(c->fd);
      ok = process_request(strm, last, closed,
                           [&strm](httplib::Request& req) { strm.on_head(req); });
    }
    const bool keep = ok && !closed && !last && strm.reusable() && !stopping_;
    c->in.erase(0, strm.consumed());
    c->head = 0;
    c->scanned = 0;
    if (!keep) {
      if (c->fd < 0) return;
      // Input may remain unread (a refused body): the answer is on its way, and a close now would
      // answer that input with a reset, which can overtake it.
      if (ok && !c->eof && !stopping_) {
        ::shutdown(c->fd, SHUT_WR);
        c->lingering = true;
        c->linger_budget = std::clamp<uint64_t>(strm.unread_declared() + kReadChunk, kLingerBytes,
                                                kMaxLingerBytes);
        c->in.clear();
        c->deadline = Clock::now() + kLingerTime;
        to_waiting_room(std::move(c));
        return;
      }
      close_conn(*c);
      return;
    }
    c->head = find_head_end(c->in, c->scanned);
    // Pipelined requests already here are answered at once.
    if (c->head > 0 && c->head <= limits_.max_header_bytes) continue;
    if (c->fd < 0) return;
    if (c->head > limits_.max_header_bytes || c->in.size() > limits_.max_header_bytes) {
      send_plain(c->fd, 431, "Request Header Fields Too Large", "request head too large");
      close_conn(*c);
      return;
    }
    if (c->eof) {
      close_conn(*c);
      return;
    }
    c->deadline = Clock::now() + (c->in.empty() ? limits_.idle_timeout : limits_.header_timeout);
    to_waiting_room(std::move(c));
    return;
  }
}

std::string FrontDoor::answer(std::string_view bytes) {
  std::string out;
  auto c = std::make_unique<Conn>();
  c->in.assign(bytes.data(), bytes.size());
  c->eof = true;
  c->ip = "127.0.0.1";
  c->out = &out;
  c->head = find_head_end(c->in, c->scanned);
  if (c->head == 0 || c->head > limits_.max_header_bytes) return out;
  serve_connection(std::move(c));
  return out;
}

}  // namespace corral::server
