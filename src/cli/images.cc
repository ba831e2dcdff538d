#include "cli/images.h"

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <span>
#include <stdexcept>

#include "image/image.h"

namespace corral::cli {
namespace {

constexpr size_t kMaxImageBytes = size_t{32} << 20;

bool has_image_extension(const std::string& path) {
  std::string lower;
  for (char c : path)
    lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  for (const char* ext : {".png", ".jpg", ".jpeg", ".webp"}) {
    if (lower.ends_with(ext)) return true;
  }
  return false;
}

std::filesystem::path expand_home(const std::string& path) {
  if (path.starts_with("~/")) {
    if (const char* home = std::getenv("HOME")) return std::filesystem::path(home) / path.substr(2);
  }
  return path;
}

// A word of the prompt: where it starts and ends in the text, and the path it spells.
struct Word {
  size_t begin = 0, end = 0;
  std::string path;
};

// Words split at unescaped blanks; quotes ('...' or "...") hold blanks; "\ " is a blank.
std::vector<Word> split_words(const std::string& s) {
  std::vector<Word> words;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    if (i >= s.size()) break;
    Word w;
    w.begin = i;
    if (s[i] == '\'' || s[i] == '"') {
      const char q = s[i];
      const size_t close = s.find(q, i + 1);
      if (close != std::string::npos) {
        w.path = s.substr(i + 1, close - i - 1);
        w.end = close + 1;
        i = w.end;
        words.push_back(std::move(w));
        continue;
      }
    }
    while (i < s.size() && !std::isspace(static_cast<unsigned char>(s[i]))) {
      if (s[i] == '\\' && i + 1 < s.size() && s[i + 1] == ' ') {
        w.path.push_back(' ');
        i += 2;
        continue;
      }
      w.path.push_back(s[i++]);
    }
    w.end = i;
    words.push_back(std::move(w));
  }
  return words;
}

}  // namespace

PromptImages take_image_paths(const std::string& prompt, std::ostream* log) {
  PromptImages out;
  size_t copied = 0;
  for (Word& w : split_words(prompt)) {
    // A path at the end of a sentence: "describe ./a.png." or "./a.png?".
    std::string path = w.path;
    while (!path.empty() && (path.back() == '.' || path.back() == ',' || path.back() == '?' ||
                             path.back() == '!' || path.back() == ';' || path.back() == ':')) {
      path.pop_back();
    }
    if (!has_image_extension(path)) continue;
    const std::filesystem::path file = expand_home(path);
    std::error_code ec;
    if (!std::filesystem::is_regular_file(file, ec)) continue;
    const auto size = std::filesystem::file_size(file, ec);
    if (ec || size > kMaxImageBytes) {
      throw std::runtime_error(path + ": larger than 32 MiB (or unreadable)");
    }
    std::ifstream in(file, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) throw std::runtime_error(path + ": cannot be read");
    if (!image::looks_like_image(
            std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()))) {
      throw std::runtime_error(path + ": not a PNG, JPEG or WebP image");
    }
    if (log) *log << "Added image '" << path << "'\n";
    out.text += prompt.substr(copied, w.begin - copied);
    copied = w.end;
    // Keep what trailed the path in the word ("./a.png?" keeps "?"), and one blank of the two
    // around the path.
    const std::string trailing = w.path.substr(path.size());
    if (!trailing.empty()) {
      out.text += trailing;
    } else if (copied < prompt.size() && prompt[copied] == ' ') {
      ++copied;
    } else if (!out.text.empty() && out.text.back() == ' ') {
      out.text.pop_back();
    }
    out.images.push_back(std::move(bytes));
    out.paths.push_back(path);
  }
  out.text += prompt.substr(copied);
  return out;
}

}  // namespace corral::cli
