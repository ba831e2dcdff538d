// Noticing that a client went away while its request is still being worked on. A streamed
// response finds out when a write fails, but a request that writes nothing until it is done (a
// `"stream": false` generation, a long prompt evaluation, rendering a huge chat) would run to its
// end for nobody: Go's net/http cancels a request's context when its connection closes, and Ollama
// relies on that. Here one thread polls the sockets of the requests in progress for the peer's
// FIN or RST (POLLRDHUP/POLLHUP/POLLERR; data the client pipelines does not count) and runs their
// callbacks.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

namespace corral::server {

// The socket of the request this thread is serving: the HTTP layer sets it around each request
// (-1 when unknown, e.g. a request run without a connection).
int current_client_socket();
class ClientSocketScope {
 public:
  explicit ClientSocketScope(int fd);
  ~ClientSocketScope();
  ClientSocketScope(const ClientSocketScope&) = delete;
  ClientSocketScope& operator=(const ClientSocketScope&) = delete;

 private:
  int previous_;
};

// Whether the peer of a connected socket has closed it or reset it (without waiting).
bool client_gone(int fd);

class DisconnectWatch {
 public:
  DisconnectWatch();
  ~DisconnectWatch();

  // Until the returned handle is destroyed, `on_gone` runs once (on the watch's thread) when the
  // peer of `fd` goes away. fd < 0 watches nothing. The handle's destructor waits for a callback
  // in progress, so what the callback uses may be destroyed right after the handle.
  class Handle {
   public:
    Handle() = default;
    Handle(Handle&& other) noexcept;
    Handle& operator=(Handle&& other) noexcept;
    ~Handle();
    // Whether the client was seen to go.
    bool gone() const;

   private:
    friend class DisconnectWatch;
    DisconnectWatch* watch_ = nullptr;
    uint64_t id_ = 0;
    std::shared_ptr<std::atomic<bool>> gone_;
  };
  Handle watch(int fd, std::function<void()> on_gone);
  // watch(current_client_socket(), on_gone).
  Handle watch_current(std::function<void()> on_gone);

 private:
  struct Entry {
    int fd = -1;
    std::function<void()> on_gone;
    std::shared_ptr<std::atomic<bool>> gone;
  };
  void remove(uint64_t id);
  void loop();
  void wake();

  std::mutex mu_;
  std::map<uint64_t, Entry> entries_;
  uint64_t next_id_ = 1;
  uint64_t running_ = 0;  // the id whose callback runs now (0: none)
  std::condition_variable done_;
  bool stopping_ = false;
  int wake_fd_ = -1;  // eventfd
  std::thread thread_;
};

}  // namespace corral::server
