// The server's front door (server/front_door.h) against hostile clients on loopback: each test
// sends the attack, then a normal request that must be answered promptly, and ends with every
// connection closed and the process's descriptors back where they were. Raw POSIX sockets where
// httplib's client cannot express the attack. Deadlines are shortened so that nothing waits long.
#include "server/front_door.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "running_server.h"
#include "server/server.h"
#include "store/temp_store.h"

namespace corral::server {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

size_t open_fds() {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// A blocking TCP connection to 127.0.0.1:port, from `from` (a loopback address) when given.
int connect_to(int port, const char* from = nullptr) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (from) {
    sockaddr_in src{};
    src.sin_family = AF_INET;
    inet_pton(AF_INET, from, &src.sin_addr);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) {
      ::close(fd);
      return -1;
    }
  }
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool send_all(int fd, const std::string& s) {
  size_t at = 0;
  while (at < s.size()) {
    const ssize_t n = ::send(fd, s.data() + at, s.size() - at, MSG_NOSIGNAL);
    if (n <= 0) return false;
    at += static_cast<size_t>(n);
  }
  return true;
}

struct Answer {
  int status = 0;  // 0: none (closed or timed out)
  std::string head;
  std::string body;
  bool closed = false;  // the server closed the connection
};

// Reads one answer (head and a Content-Length body) within `timeout`; `rest` keeps bytes after it.
Answer read_answer(int fd, std::string& rest, milliseconds timeout = milliseconds(3000)) {
  Answer a;
  const Clock::time_point deadline = Clock::now() + timeout;
  std::string& in = rest;
  for (;;) {
    const size_t end = in.find("\r\n\r\n");
    if (end != std::string::npos) {
      a.head = in.substr(0, end + 4);
      size_t length = 0;
      const size_t cl = a.head.find("Content-Length: ");
      if (cl != std::string::npos) length = std::stoul(a.head.substr(cl + 16));
      if (in.size() >= end + 4 + length) {
        a.status = std::stoi(a.head.substr(9, 3));
        a.body = in.substr(end + 4, length);
        in.erase(0, end + 4 + length);
        return a;
      }
    }
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    pollfd p{fd, POLLIN, 0};
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) return a;
    char buf[65536];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      a.closed = true;
      return a;
    }
    in.append(buf, static_cast<size_t>(n));
  }
}

Answer read_answer(int fd, milliseconds timeout = milliseconds(3000)) {
  std::string rest;
  return read_answer(fd, rest, timeout);
}

// Whether the server closes `fd` within `timeout` (whatever it sends first).
bool closed_within(int fd, milliseconds timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    pollfd p{fd, POLLIN, 0};
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) return false;
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return true;
  }
}

class HttpFront : public ::testing::Test {
 protected:
  void start(ServerOptions o = {}) {
    o.scheduler.n_threads = 1;
    o.scheduler.num_parallel = 1;
    o.models = dir_.path() / "models";
    running_ = std::make_unique<RunningServer>(std::move(o));
    server_ = &running_->server();
    port_ = running_->port();
    // Once the first request is answered, every thread of the server exists.
    ASSERT_EQ(get_tags().status, 200);
    wait_for_open(0);
    baseline_fds_ = open_fds();
  }
  void TearDown() override {
    for (const int fd : clients_) ::close(fd);
    running_.reset();
  }

  int connect(const char* from = nullptr) {
    const int fd = connect_to(port_, from);
    if (fd >= 0) clients_.push_back(fd);
    return fd;
  }
  void close_clients() {
    for (const int fd : clients_) ::close(fd);
    clients_.clear();
  }

  // A normal request on a fresh connection, through httplib's client.
  Answer get_tags() {
    httplib::Client c("127.0.0.1", port_);
    c.set_connection_timeout(2);
    c.set_read_timeout(2);
    auto r = c.Get("/api/tags");
    Answer a;
    if (r) {
      a.status = r->status;
      a.body = r->body;
    }
    return a;
  }

  void wait_for_open(size_t n) {
    const Clock::time_point deadline = Clock::now() + milliseconds(3000);
    while (server_->connection_stats().open != n && Clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(5));
    }
    EXPECT_EQ(server_->connection_stats().open, n);
  }

  // Every client closed: the server closes its ends, and no descriptor is left behind.
  void expect_no_leaks() {
    close_clients();
    wait_for_open(0);
    const Clock::time_point deadline = Clock::now() + milliseconds(3000);
    while (open_fds() != baseline_fds_ && Clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(5));
    }
    EXPECT_EQ(open_fds(), baseline_fds_);
  }

  corral::testing::TempDir dir_;
  std::unique_ptr<RunningServer> running_;
  Server* server_ = nullptr;
  int port_ = 0;
  size_t baseline_fds_ = 0;
  std::vector<int> clients_;
};

TEST(HttpFrontHead, EndsWhereHttplibEndsIt) {
  size_t scanned = 0;
  std::string in = "GET / HTTP/1.1\r\nHost: x\r\n\r\nrest";
  EXPECT_EQ(find_head_end(in, scanned), in.size() - 4);
  // Blank lines before the request line are dropped.
  in = "\r\n\r\nGET / HTTP/1.1\r\n\r\n";
  scanned = 0;
  EXPECT_EQ(find_head_end(in, scanned), 18u);
  EXPECT_TRUE(in.starts_with("GET"));
  // Byte by byte, resuming where the last call stopped.
  const std::string whole = "POST /api/chat HTTP/1.1\r\nA: b\r\nContent-Length: 2\r\n\r\n{}";
  in.clear();
  scanned = 0;
  size_t end = 0;
  for (const char c : whole) {
    in.push_back(c);
    end = find_head_end(in, scanned);
    if (end) break;
  }
  EXPECT_EQ(end, whole.size() - 2);
  // A header line ending in a bare '\n' does not end the head early.
  in = "GET / HTTP/1.1\nA: b\n\nx";
  scanned = 0;
  EXPECT_EQ(find_head_end(in, scanned), 0u);
}

TEST(HttpFrontChunked, CountsDataAndFindsTheEnd) {
  ChunkedCounter c;
  const std::string body = "5\r\nhello\r\n1a;ext=1\r\n" + std::string(26, 'x') + "\r\n0\r\n\r\n";
  for (const char ch : body) c.feed(&ch, 1);
  EXPECT_EQ(c.data_bytes(), 31u);
  EXPECT_TRUE(c.complete());

  ChunkedCounter whole;
  whole.feed(body.data(), body.size());
  EXPECT_EQ(whole.data_bytes(), 31u);
  EXPECT_TRUE(whole.complete());

  // Framing it does not follow counts every byte and never completes.
  ChunkedCounter bad;
  const std::string odd = "zz\r\nabc";
  bad.feed(odd.data(), odd.size());
  EXPECT_EQ(bad.data_bytes(), odd.size());
  EXPECT_FALSE(bad.complete());
}

TEST_F(HttpFront, SlowlorisHeadsDoNotStallOthers) {
  ServerOptions o;
  o.http.threads = 8;
  start(o);
  std::vector<int> slow;
  for (int i = 0; i < 200; ++i) {
    const int fd = connect();
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(send_all(fd, "GET /api/tags HTTP/1.1\r\nHost: localhost\r\nX-Slow: "));
    slow.push_back(fd);
  }
  for (const int fd : slow) ASSERT_TRUE(send_all(fd, "a"));  // one byte more each
  const Clock::time_point t = Clock::now();
  EXPECT_EQ(get_tags().status, 200);
  EXPECT_LT(seconds_since(t), 1.0);
  wait_for_open(200);  // the slow ones are all still waiting
  expect_no_leaks();
}

TEST_F(HttpFront, HeaderDeadlineClosesSilentAndSlowConnections) {
  ServerOptions o;
  o.http.header_timeout = milliseconds(1000);
  start(o);
  const int silent = connect();
  const int partial = connect();
  ASSERT_TRUE(send_all(partial, "GET / HTTP/1.1\r\nHo"));
  const Clock::time_point t = Clock::now();
  EXPECT_TRUE(closed_within(silent, milliseconds(3000)));
  EXPECT_GT(seconds_since(t), 0.8);
  const Answer a = read_answer(partial);
  EXPECT_EQ(a.status, 408) << a.head;
  EXPECT_EQ(server_->connection_stats().head_timeouts, 1u);
  EXPECT_EQ(get_tags().status, 200);
  expect_no_leaks();
}

TEST_F(HttpFront, IdleKeepAliveConnectionsHoldNoThread) {
  ServerOptions o;
  o.http.threads = 4;
  start(o);
  for (int i = 0; i < 100; ++i) {
    const int fd = connect();
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(send_all(fd, "GET /api/version HTTP/1.1\r\nHost: localhost\r\n\r\n"));
    const Answer a = read_answer(fd);
    ASSERT_EQ(a.status, 200);
    EXPECT_EQ(a.head.find("Connection: close"), std::string::npos);
  }
  const Clock::time_point t = Clock::now();
  EXPECT_EQ(get_tags().status, 200);
  EXPECT_LT(seconds_since(t), 1.0);
  // Each kept connection still serves.
  std::string rest;
  ASSERT_TRUE(send_all(clients_[50], "GET /api/tags HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  EXPECT_EQ(read_answer(clients_[50], rest).status, 200);
  expect_no_leaks();
}

TEST_F(HttpFront, IdleTimeoutClosesKeptConnections) {
  ServerOptions o;
  o.http.idle_timeout = milliseconds(500);
  start(o);
  const int fd = connect();
  ASSERT_TRUE(send_all(fd, "GET /api/version HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  ASSERT_EQ(read_answer(fd).status, 200);
  EXPECT_TRUE(closed_within(fd, milliseconds(2000)));
  EXPECT_EQ(server_->connection_stats().head_timeouts, 0u);
  expect_no_leaks();
}

TEST_F(HttpFront, HugeChunkedBodyIs413AfterLittleMoreThanTheLimit) {
  ServerOptions o;
  o.max_body_bytes = 64 * 1024;
  start(o);
  for (const char* path : {"/api/generate", "/api/chat", "/v1/chat/completions"}) {
    const uint64_t before = server_->connection_stats().body_bytes;
    const int fd = connect();
    ASSERT_TRUE(send_all(fd, std::string("POST ") + path +
                                 " HTTP/1.1\r\nHost: localhost\r\nContent-Type: "
                                 "application/json\r\nTransfer-Encoding: chunked\r\n\r\n"));
    const std::string chunk = "4000\r\n" + std::string(0x4000, ' ') + "\r\n";
    uint64_t sent = 0;
    Answer a;
    std::string rest;
    while (sent < (uint64_t{1} << 30)) {  // a gigabyte, unless the server answers first
      pollfd p{fd, POLLIN | POLLOUT, 0};
      ASSERT_GT(::poll(&p, 1, 3000), 0) << "the server neither reads nor answers";
      if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
        a = read_answer(fd, rest);
        break;
      }
      const ssize_t n = ::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) continue;
      if (n <= 0) {
        a = read_answer(fd, rest);
        break;
      }
      sent += static_cast<uint64_t>(n);
    }
    EXPECT_EQ(a.status, 413) << path << ": " << a.head << a.body;
    EXPECT_NE(a.body.find("too large"), std::string::npos) << a.body;
    EXPECT_NE(a.head.find("Connection: close"), std::string::npos);
    EXPECT_LT(sent, uint64_t{64} << 20) << path;
    // What the server read: the limit, its framing and one read beyond.
    const uint64_t read = server_->connection_stats().body_bytes - before;
    EXPECT_LE(read, o.max_body_bytes + 2 * 64 * 1024) << path;
    // The server discards input until the client stops sending (or a short while has passed).
    ::shutdown(fd, SHUT_WR);
    EXPECT_TRUE(closed_within(fd, milliseconds(3000))) << path;
  }
  EXPECT_EQ(get_tags().status, 200);
  expect_no_leaks();
}

// Several bodies near the limit at once: what they hold together is bounded too (503 for the one
// that would go beyond), so a few clients cannot take the server's memory with legal sizes.
TEST_F(HttpFront, BodiesInProgressShareOneMemoryBudget) {
  ServerOptions o;
  o.max_body_bytes = 64 * 1024;
  o.http.max_body_memory = 96 * 1024;
  start(o);
  const std::string head =
      "POST /api/generate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
      "Transfer-Encoding: chunked\r\n\r\n";
  const std::string chunk = "4000\r\n" + std::string(0x4000, ' ') + "\r\n";  // 16 KiB
  const int a = connect();
  ASSERT_TRUE(send_all(a, head + chunk + chunk + chunk));  // 48 KiB held, the body still open
  const Clock::time_point deadline = Clock::now() + milliseconds(3000);
  while (server_->connection_stats().body_memory < 3 * 0x4000 && Clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  const int b = connect();
  ASSERT_TRUE(send_all(b, head + chunk + chunk + chunk + chunk));  // 64 KiB more: over 96 KiB
  const Answer refused = read_answer(b);
  EXPECT_EQ(refused.status, 503) << refused.head << refused.body;
  EXPECT_NE(refused.body.find("CORRAL_MAX_BODY_MEMORY"), std::string::npos) << refused.body;
  // The first body is unaffected (its end makes it a JSON error), and its bytes are released
  // once its request is over (just after its answer is written: wait for that, bounded).
  ASSERT_TRUE(send_all(a, "0\r\n\r\n"));
  EXPECT_EQ(read_answer(a).status, 400);
  const Clock::time_point released = Clock::now() + milliseconds(3000);
  while (server_->connection_stats().body_memory > 0 && Clock::now() < released) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  EXPECT_EQ(server_->connection_stats().body_memory, 0u);
  const int c = connect();
  ASSERT_TRUE(send_all(c, head + chunk + chunk + chunk + chunk + "0\r\n\r\n"));
  EXPECT_EQ(read_answer(c).status, 400);  // 64 KiB alone fits
  EXPECT_EQ(get_tags().status, 200);
  expect_no_leaks();
}

TEST_F(HttpFront, HugeContentLengthIs413WithoutTheBody) {
  ServerOptions o;
  o.max_body_bytes = 64 * 1024;
  start(o);
  for (const char* path : {"/api/generate", "/api/chat", "/v1/chat/completions"}) {
    const int fd = connect();
    const Clock::time_point t = Clock::now();
    ASSERT_TRUE(send_all(fd, std::string("POST ") + path +
                                 " HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n"
                                 "Content-Length: 1073741824\r\n\r\n"));
    const Answer a = read_answer(fd);
    EXPECT_EQ(a.status, 413) << path << ": " << a.head;
    EXPECT_LT(seconds_since(t), 1.0);
    EXPECT_NE(a.head.find("Connection: close"), std::string::npos) << a.head;
    EXPECT_NE(a.body.find("too large"), std::string::npos) << a.body;
    ::shutdown(fd, SHUT_WR);
    EXPECT_TRUE(closed_within(fd, milliseconds(3000)));
  }
  EXPECT_EQ(server_->connection_stats().body_bytes, 0u);
  EXPECT_EQ(get_tags().status, 200);
  expect_no_leaks();
}

TEST_F(HttpFront, ConnectionsPerClientAreLimited) {
  ServerOptions o;
  o.http.max_connections_per_client = 8;
  start(o);
  for (int i = 0; i < 8; ++i) ASSERT_GE(connect("127.0.0.2"), 0);
  wait_for_open(8);
  const int over = connect("127.0.0.2");
  ASSERT_GE(over, 0);  // the kernel accepts; the server then closes it
  EXPECT_TRUE(closed_within(over, milliseconds(2000)));
  EXPECT_EQ(server_->connection_stats().refused, 1u);
  // Another client is served.
  EXPECT_EQ(get_tags().status, 200);
  // A freed place is taken again.
  ::close(clients_[0]);
  clients_.erase(clients_.begin());
  wait_for_open(7);
  const int again = connect("127.0.0.2");
  ASSERT_TRUE(send_all(again, "GET /api/tags HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  EXPECT_EQ(read_answer(again).status, 200);
  expect_no_leaks();
}

// The accept queue the kernel keeps for the listening socket (ss's Send-Q of a listener), asked
// through sock_diag: httplib listens with 5, and a burst of connections then overflows it.
int listen_backlog_of(int port) {
  const int nl = ::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (nl < 0) return -1;
  struct {
    nlmsghdr h;
    inet_diag_req_v2 r;
  } req{};
  req.h.nlmsg_len = sizeof req;
  req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.r.sdiag_family = AF_INET;
  req.r.sdiag_protocol = IPPROTO_TCP;
  req.r.idiag_states = 1u << 10;  // TCP_LISTEN
  req.r.id.idiag_sport = htons(static_cast<uint16_t>(port));
  int backlog = -1;
  if (::send(nl, &req, sizeof req, 0) == static_cast<ssize_t>(sizeof req)) {
    alignas(nlmsghdr) char buf[16384];
    bool done = false;
    while (!done) {
      const ssize_t n = ::recv(nl, buf, sizeof buf, 0);
      if (n <= 0) break;
      int left = static_cast<int>(n);
      for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
        if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) {
          done = true;
          break;
        }
        const auto* m = static_cast<const inet_diag_msg*>(NLMSG_DATA(h));
        if (ntohs(m->id.idiag_sport) == port) backlog = static_cast<int>(m->idiag_wqueue);
      }
    }
  }
  ::close(nl);
  return backlog;
}

TEST_F(HttpFront, TheListenBacklogHoldsABurst) {
  ServerOptions o;
  o.http.listen_backlog = 777;
  start(o);
  // The kernel caps the backlog at net.core.somaxconn (4096 on current kernels).
  int somaxconn = 4096;
  if (FILE* f = std::fopen("/proc/sys/net/core/somaxconn", "r")) {
    if (std::fscanf(f, "%d", &somaxconn) != 1) somaxconn = 4096;
    std::fclose(f);
  }
  EXPECT_EQ(listen_backlog_of(port_), std::min(777, somaxconn));
}

TEST_F(HttpFront, GlobalConnectionCapRefusesTheRest) {
  ServerOptions o;
  o.http.max_connections = 4;
  start(o);
  for (int i = 0; i < 4; ++i) ASSERT_GE(connect(), 0);
  wait_for_open(4);
  const int over = connect();
  const Answer a = read_answer(over);
  EXPECT_TRUE(a.status == 503 || a.closed) << a.head;
  close_clients();
  wait_for_open(0);
  EXPECT_EQ(get_tags().status, 200);
  expect_no_leaks();
}

TEST_F(HttpFront, SlowBodyIsCut) {
  ServerOptions o;
  o.http.min_body_rate = 1000;
  o.http.body_rate_grace = milliseconds(500);
  start(o);
  const int fd = connect();
  const Clock::time_point t = Clock::now();
  ASSERT_TRUE(
      send_all(fd,
               "POST /api/show HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\n"
               "{\"model\""));
  Answer a;
  std::string rest;
  for (int i = 0; i < 40 && a.status == 0 && !a.closed; ++i) {
    send_all(fd, " ");  // a byte every 50 ms: 20 bytes a second
    a = read_answer(fd, rest, milliseconds(50));
  }
  EXPECT_EQ(a.status, 408) << a.head << a.body;
  EXPECT_NE(a.body.find("too slow"), std::string::npos) << a.body;
  EXPECT_LT(seconds_since(t), 1.5);
  ::shutdown(fd, SHUT_WR);
  EXPECT_TRUE(closed_within(fd, milliseconds(3000)));
  EXPECT_EQ(get_tags().status, 200);
  expect_no_leaks();
}

TEST_F(HttpFront, TwoHostHeadersAre400) {
  start();
  const int fd = connect();
  ASSERT_TRUE(
      send_all(fd, "GET /api/tags HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\n\r\n"));
  const Answer a = read_answer(fd);
  EXPECT_EQ(a.status, 400);
  EXPECT_NE(a.body.find("Host"), std::string::npos) << a.body;
  // The same connection serves on.
  std::string rest;
  ASSERT_TRUE(send_all(fd, "GET /api/tags HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  EXPECT_EQ(read_answer(fd, rest).status, 200);
  expect_no_leaks();
}

TEST_F(HttpFront, MalformedFramingIsRefused) {
  start();
  const auto status_of = [&](const std::string& request) {
    const std::string out = server_->answer(request);
    return out.size() > 12 ? std::stoi(out.substr(9, 3)) : 0;
  };
  EXPECT_EQ(status_of("POST /api/show HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2x\r\n\r\n{}"),
            400);
  EXPECT_EQ(
      status_of("POST /api/show HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}"),
      400);
  EXPECT_EQ(status_of("POST /api/show HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n{}"), 501);
  EXPECT_EQ(status_of("POST /api/show HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Length: "
                      "2\r\n\r\n{}"),
            415);
  // A POST without a length has no body (httplib alone would wait for the end of input).
  EXPECT_EQ(status_of("POST /api/show HTTP/1.1\r\nHost: localhost\r\n\r\n"), 400);
}

TEST_F(HttpFront, PipelinedRequestsAreAnsweredInOrder) {
  start();
  const int fd = connect();
  const std::string body = R"({"model": "absent"})";
  ASSERT_TRUE(send_all(fd,
                       "\r\nGET /api/version HTTP/1.1\r\nHost: localhost\r\n\r\n"
                       "POST /api/show HTTP/1.1\r\nHost: localhost\r\nContent-Length: " +
                           std::to_string(body.size()) + "\r\n\r\n" + body +
                           "GET /api/tags HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  std::string rest;
  Answer a = read_answer(fd, rest);
  EXPECT_EQ(a.status, 200);
  EXPECT_NE(a.body.find("version"), std::string::npos);
  a = read_answer(fd, rest);
  EXPECT_EQ(a.status, 404);
  a = read_answer(fd, rest);
  EXPECT_EQ(a.status, 200);
  EXPECT_NE(a.body.find("models"), std::string::npos);
  // Through answer() too: three answers for three requests.
  const std::string out = server_->answer(
      "GET /api/version HTTP/1.1\r\n\r\nGET /api/tags HTTP/1.1\r\n\r\nGET /api/ps "
      "HTTP/1.1\r\n\r\n");
  size_t answers = 0;
  for (size_t at = out.find("HTTP/1.1 200"); at != std::string::npos;
       at = out.find("HTTP/1.1 200", at + 1)) {
    ++answers;
  }
  EXPECT_EQ(answers, 3u);
  expect_no_leaks();
}

TEST_F(HttpFront, OversizedHeadIs431) {
  ServerOptions o;
  o.http.max_header_bytes = 4096;
  start(o);
  const int fd = connect();
  ASSERT_TRUE(send_all(fd, "GET / HTTP/1.1\r\nX-Big: " + std::string(8192, 'a')));
  EXPECT_EQ(read_answer(fd).status, 431);
  EXPECT_EQ(get_tags().status, 200);
  expect_no_leaks();
}

TEST_F(HttpFront, StopIsPromptWithConnectionsOpen) {
  start();
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(send_all(connect(), "GET / HTTP/1.1\r\nHo"));
  const int body = connect();
  ASSERT_TRUE(send_all(body, "POST /api/show HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"));
  const int idle = connect();
  ASSERT_TRUE(send_all(idle, "GET /api/version HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  ASSERT_EQ(read_answer(idle).status, 200);
  wait_for_open(22);
  const Clock::time_point t = Clock::now();
  running_->stop();
  EXPECT_LT(seconds_since(t), 1.0);
  EXPECT_EQ(server_->connection_stats().open, 0u);
  close_clients();
  // The server's own descriptors (listening socket, epoll set) are gone too.
  EXPECT_LT(open_fds(), baseline_fds_);
}

}  // namespace
}  // namespace corral::server
