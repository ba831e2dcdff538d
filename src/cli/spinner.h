// A braille spinner on standard error while the user waits (a model loading, a long prompt being
// read), as `ollama run` shows one. It draws at the cursor and erases itself when stopped; nothing
// is drawn when standard error is not a terminal.
#pragma once

#include <condition_variable>
#include <mutex>
#include <thread>

namespace corral::cli {

class Spinner {
 public:
  Spinner();  // draws the first frame at once
  ~Spinner();
  Spinner(const Spinner&) = delete;
  Spinner& operator=(const Spinner&) = delete;

  // Erases the spinner (waiting for its thread); later calls do nothing.
  void stop();

 private:
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
};

}  // namespace corral::cli
