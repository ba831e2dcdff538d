#include "server/disconnect.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <utility>
#include <vector>

namespace corral::server {
namespace {

thread_local int tl_client_socket = -1;

// What a peer's FIN or RST raises; POLLIN alone (a pipelined request) is not a departure.
constexpr short kGoneEvents = POLLRDHUP | POLLHUP | POLLERR;

}  // namespace

int current_client_socket() { return tl_client_socket; }

ClientSocketScope::ClientSocketScope(int fd) : previous_(tl_client_socket) {
  tl_client_socket = fd;
}
ClientSocketScope::~ClientSocketScope() { tl_client_socket = previous_; }

bool client_gone(int fd) {
  if (fd < 0) return false;
  pollfd p{fd, POLLRDHUP, 0};
  const int n = ::poll(&p, 1, 0);
  return n > 0 && (p.revents & kGoneEvents) != 0;
}

DisconnectWatch::DisconnectWatch() {
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  thread_ = std::thread([this] { loop(); });
}

DisconnectWatch::~DisconnectWatch() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake();
  thread_.join();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void DisconnectWatch::wake() {
  if (wake_fd_ < 0) return;
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(wake_fd_, &one, sizeof one);
}

DisconnectWatch::Handle DisconnectWatch::watch(int fd, std::function<void()> on_gone) {
  Handle h;
  h.gone_ = std::make_shared<std::atomic<bool>>(false);
  if (fd < 0) return h;
  {
    std::lock_guard lock(mu_);
    h.watch_ = this;
    h.id_ = next_id_++;
    entries_[h.id_] = Entry{fd, std::move(on_gone), h.gone_};
  }
  wake();
  return h;
}

DisconnectWatch::Handle DisconnectWatch::watch_current(std::function<void()> on_gone) {
  return watch(current_client_socket(), std::move(on_gone));
}

void DisconnectWatch::remove(uint64_t id) {
  std::unique_lock lock(mu_);
  entries_.erase(id);
  done_.wait(lock, [&] { return running_ != id; });
}

void DisconnectWatch::loop() {
  std::vector<pollfd> fds;
  std::vector<uint64_t> ids;
  for (;;) {
    fds.clear();
    ids.clear();
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      fds.push_back({wake_fd_, POLLIN, 0});
      ids.push_back(0);
      for (const auto& [id, e] : entries_) {
        fds.push_back({e.fd, POLLRDHUP, 0});
        ids.push_back(id);
      }
    }
    // The eventfd wakes the loop for a new entry or for stopping; removed entries' sockets may be
    // closed (or reused) meanwhile, which is why a hit is looked up again under the lock below.
    const int n = ::poll(fds.data(), fds.size(), 1000);
    if (n < 0 && errno != EINTR) return;
    if (fds[0].revents & POLLIN) {
      uint64_t v = 0;
      [[maybe_unused]] const ssize_t r = ::read(wake_fd_, &v, sizeof v);
    }
    for (size_t i = 1; i < fds.size(); ++i) {
      if ((fds[i].revents & (kGoneEvents | POLLNVAL)) == 0) continue;
      std::function<void()> fn;
      {
        std::lock_guard lock(mu_);
        auto it = entries_.find(ids[i]);
        if (it == entries_.end()) continue;
        // POLLNVAL: the fd was closed under us without the handle going first; treat as gone.
        it->second.gone->store(true);
        fn = std::move(it->second.on_gone);
        entries_.erase(it);
        running_ = ids[i];
      }
      if (fn) fn();
      {
        std::lock_guard lock(mu_);
        running_ = 0;
      }
      done_.notify_all();
    }
  }
}

DisconnectWatch::Handle::Handle(Handle&& other) noexcept
    : watch_(std::exchange(other.watch_, nullptr)),
      id_(std::exchange(other.id_, 0)),
      gone_(std::move(other.gone_)) {}

DisconnectWatch::Handle& DisconnectWatch::Handle::operator=(Handle&& other) noexcept {
  if (this != &other) {
    if (watch_) watch_->remove(id_);
    watch_ = std::exchange(other.watch_, nullptr);
    id_ = std::exchange(other.id_, 0);
    gone_ = std::move(other.gone_);
  }
  return *this;
}

DisconnectWatch::Handle::~Handle() {
  if (watch_) watch_->remove(id_);
}

bool DisconnectWatch::Handle::gone() const { return gone_ && gone_->load(); }

}  // namespace corral::server
