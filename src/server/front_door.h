// The front door of `corral serve`: what stands between a socket and httplib's request processing,
// so that hostile or broken clients cost little. httplib alone gives every accepted connection a
// pool thread from its first byte to its close, with no deadline for a request's head, and reads a
// chunked body whole before any limit applies; 64 clients sending headers at one byte a second
// stall it.
//
// Here a connection holds a thread only while a request with a complete head is being answered:
//   accept ─► waiting room (one epoll thread): the head is read without blocking into the
//             connection's buffer, under a deadline and a size limit; idle keep-alive waits here
//          ─► a worker runs httplib's process_request over ConnStream, which serves the buffered
//             bytes first, frames the body as httplib parsed the head (Content-Length, chunked or
//             none), holds it to the body limit while it is read, and cuts a body that arrives too
//             slowly
//          ─► back to the waiting room (keep-alive), or closed: a connection whose body was not
//             read to its end is half-closed and its remaining input discarded for a short while,
//             so that the client reads the answer rather than a reset.
// Connections are counted per client address and in all; over either limit they are refused at
// accept.
#pragma once

#include <httplib.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "server/server.h"

namespace corral::server {

// The length of the request head at the front of `in` through the blank line that ends it, as
// httplib reads it (lines end at '\n'; the head ends at the first line after the request line that
// is exactly "\r\n"), or 0 while it is incomplete. Blank lines before a request line are dropped
// from `in` first (RFC 9112 §2.2: a server should ignore them). `scanned` carries how far an
// earlier call looked, so that a head arriving a byte at a time is not scanned again each time.
size_t find_head_end(std::string& in, size_t& scanned);

// Counts the data bytes of a chunked body as its bytes pass, and knows where it ends: httplib reads
// a chunked body whole before any handler sees it, so the limit is applied on the way in. Framing
// it does not understand makes every later byte count as data (conservative) and the body never
// complete (the connection is then closed after the answer).
class ChunkedCounter {
 public:
  void feed(const char* p, size_t n);
  uint64_t data_bytes() const { return data_; }
  bool complete() const { return state_ == State::kDone; }

 private:
  enum class State {
    kSize,
    kExtension,
    kSizeLf,
    kData,
    kDataCr,
    kDataLf,
    kLastCr,
    kLastLf,
    kDone,
    kBad
  };
  State state_ = State::kSize;
  uint64_t size_ = 0;
  int digits_ = 0;
  uint64_t data_ = 0;
};

// The status and message a request whose body the front door cut short is answered with (413 over
// the limit, 408 too slow), or 0 when it was not cut. For the server's error handler.
int body_cut_status(const httplib::Request& req, std::string* message);

struct ConnectionStats {
  size_t open = 0;             // connections held now (waiting room, workers, lingering)
  uint64_t refused = 0;        // refused at accept: over a per-client or the global limit
  uint64_t body_bytes = 0;     // request-body bytes read from sockets and handed to httplib
  uint64_t body_memory = 0;    // bytes the bodies of requests in progress hold now
  uint64_t head_timeouts = 0;  // connections closed for a head not complete in time
};

class FrontDoor : public httplib::Server {
 public:
  FrontDoor(HttpLimits limits, size_t max_body_bytes);
  ~FrontDoor() override;

  // After bind_to_port: listens again with the configured backlog (httplib's is 5).
  void raise_backlog();
  // Starts the waiting room and the workers, then accepts until stop().
  bool serve();
  // Stops accepting, closes every connection and joins every thread; idempotent.
  void stop_all();

  // The bytes the server writes back for `bytes` arriving on one connection that then closes its
  // sending side: each complete request in it is processed in turn, as on a socket, through
  // ConnStream. For the fuzzer and tests; no thread or socket is involved.
  std::string answer(std::string_view bytes);

  ConnectionStats stats() const;

  struct Conn;  // one client connection (front_door.cc)

 private:
  bool process_and_close_socket(socket_t sock) override;

  void waiting_room();
  void worker();
  // Answers requests on `c` while complete heads are buffered; then hands it back to the waiting
  // room, or closes it.
  void serve_connection(std::unique_ptr<Conn> c);
  void to_waiting_room(std::unique_ptr<Conn> c);
  void close_conn(Conn& c);
  void wake();

  const HttpLimits limits_;
  const size_t max_body_bytes_;

  std::mutex lifecycle_mutex_;
  std::atomic<bool> stopping_{false};
  bool started_ = false;
  std::thread waiting_room_thread_;
  std::vector<std::thread> workers_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;

  // Connections handed to the waiting room (from accept and from workers).
  std::mutex arrivals_mutex_;
  std::vector<std::unique_ptr<Conn>> arrivals_;

  // Connections with a complete head, waiting for a worker.
  std::mutex ready_mutex_;
  std::condition_variable ready_cv_;
  std::deque<std::unique_ptr<Conn>> ready_;

  // Every open connection's socket (so that stop can wake a worker blocked on one), and the count
  // per client.
  mutable std::mutex registry_mutex_;
  std::unordered_map<int, std::string> open_;  // fd -> client key
  std::unordered_map<std::string, size_t> per_client_;
  std::atomic<uint64_t> refused_{0};
  std::atomic<uint64_t> body_bytes_{0};
  std::atomic<uint64_t> bodies_held_{0};  // body bytes of the requests in progress (not blobs)
  std::atomic<uint64_t> head_timeouts_{0};

  friend class ConnStream;
};

}  // namespace corral::server
