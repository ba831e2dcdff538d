// What the server tests share: a Server in-process on a free loopback port over a fresh store,
// listening on its own thread, and stories260K as the store model `stories`.
#pragma once

#include <filesystem>
#include <memory>
#include <thread>

#include "server/server.h"
#include "store/create.h"
#include "store/model.h"
#include "testdata.h"

namespace corral::server {

class RunningServer {
 public:
  // Listens on 127.0.0.1 (any free port) with `o` otherwise as given.
  explicit RunningServer(ServerOptions o) {
    o.host = "127.0.0.1";
    o.port = 0;
    server_ = std::make_unique<Server>(std::move(o));
    port_ = server_->bind();
    thread_ = std::thread([this] { server_->listen(); });
  }
  ~RunningServer() { stop(); }
  // Stops the server and waits for listen() to return.
  void stop() {
    server_->stop();
    if (thread_.joinable()) thread_.join();
  }
  RunningServer(const RunningServer&) = delete;
  RunningServer& operator=(const RunningServer&) = delete;

  Server& server() { return *server_; }
  int port() const { return port_; }

 private:
  std::unique_ptr<Server> server_;
  std::thread thread_;
  int port_ = 0;
};

// stories260K from the fixtures as the store model `stories`.
inline void create_stories(store::Store& st) {
  store::Modelfile mf;
  mf.from = corral::testing::testdata_path("tinystories260k/stories260K-f32.gguf");
  store::create_model(st, store::ModelName::parse("stories"), mf, std::filesystem::current_path());
}
inline void create_stories(const std::filesystem::path& models) {
  store::Store st(models);
  create_stories(st);
}

}  // namespace corral::server
