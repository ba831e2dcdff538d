#include "runner/multimodal.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "backend/cpu/cpu.h"

namespace corral::runner {

// ---- SequenceImages ----

std::array<int32_t, 3> SequenceImages::rope_position(size_t i) const {
  // Text advances every section by one per token; an image's rows take their own (t, h, w) from
  // the first row's position, and the text after it continues past the largest.
  if (!mrope_) {
    const auto p = static_cast<int32_t>(i);
    return {p, p, p};
  }
  int64_t delta = 0;  // rope position - sequence index, for text tokens
  for (const ImageSpan& s : spans_) {
    if (i < s.first) break;
    const auto base = static_cast<int32_t>(static_cast<int64_t>(s.first) + delta);
    if (i < s.first + s.n) {
      const size_t r = i - s.first;
      return {base + s.positions[r], base + s.positions[s.n + r], base + s.positions[2 * s.n + r]};
    }
    delta += static_cast<int64_t>(s.advance) - static_cast<int64_t>(s.n);
  }
  const auto p = static_cast<int32_t>(static_cast<int64_t>(i) + delta);
  return {p, p, p};
}

const model::ImageStates* SequenceImages::seen_at(size_t i) const {
  const model::ImageStates* seen = nullptr;
  for (const ImageSpan& s : spans_) {
    if (s.first > i) break;
    seen = s.states.get();
  }
  return seen;
}

size_t SequenceImages::shared_prefix(const SequenceImages& a, const SequenceImages& b,
                                     size_t common) {
  const auto cut = [&](const SequenceImages& x, const SequenceImages& y) {
    for (const ImageSpan& s : x.spans_) {
      if (s.start >= common) break;
      const bool same = std::any_of(y.spans_.begin(), y.spans_.end(), [&](const ImageSpan& t) {
        return t.start == s.start && t.length == s.length && t.digest == s.digest;
      });
      if (!same) common = s.start;
    }
  };
  cut(a, b);
  cut(b, a);
  return common;
}

// ---- BatchImages ----

void BatchImages::clear() {
  rope_.clear();
  cross_.clear();
  rows_.clear();
  any_cross_ = false;
}

void BatchImages::added(const model::Batch& batch, const SequenceImages& images, size_t index,
                        int32_t pos) {
  const auto at = static_cast<int32_t>(batch.tokens.size() - 1);
  if (images.empty()) {
    rope_.push_back({pos, pos, pos});
    cross_.push_back(nullptr);
    return;
  }
  rope_.push_back(images.rope_position(index));
  const model::ImageStates* seen = images.seen_at(index);
  cross_.push_back(seen);
  any_cross_ = any_cross_ || seen != nullptr;
  for (const ImageSpan& s : images.spans()) {
    if (index < s.first || index >= s.first + s.n) continue;
    const auto row = static_cast<int32_t>(index - s.first);
    if (!rows_.empty()) {
      // Extends the run of rows of the same image when this token follows it.
      model::Batch::ImageRows& last = rows_.back();
      if (last.states == s.states.get() && last.first + last.n == at && last.row + last.n == row) {
        ++last.n;
        continue;
      }
    }
    rows_.push_back({at, 1, row, s.states.get()});
  }
}

void BatchImages::finish(model::Batch& batch, bool mrope) {
  const size_t n = batch.tokens.size();
  batch.images = rows_;
  if (any_cross_) batch.cross = cross_;
  if (mrope) {
    batch.rope_positions.assign(4 * n, 0);
    for (size_t i = 0; i < n; ++i) {
      for (size_t c = 0; c < 3; ++c) batch.rope_positions[c * n + i] = rope_[i][c];
    }
  }
}

// ---- ImageEncoder ----

ImageEncoder::ImageEncoder(const model::Vision& vision, int n_threads,
                           std::vector<std::span<const std::byte>> constant, size_t capacity,
                           std::function<void(const std::string&)> log)
    : vision_(vision),
      capacity_(std::max<size_t>(capacity, 1)),
      backend_(backend::cpu::make_backend({.n_threads = n_threads, .constant = constant})),
      executor_(std::make_unique<ml::Executor>(std::vector<ml::Backend*>{backend_.get()})),
      log_(std::move(log)) {}

ImageEncoder::~ImageEncoder() = default;

std::shared_ptr<const model::ImageStates> ImageEncoder::encode(const PromptImage& image) {
  std::lock_guard lock(mu_);
  for (auto it = recent_.begin(); it != recent_.end(); ++it) {
    if (it->first == image.digest && !image.digest.empty()) {
      recent_.splice(recent_.begin(), recent_, it);
      return recent_.front().second;
    }
  }
  if (!image.input) throw std::invalid_argument("an image without pixel values");
  const auto t0 = std::chrono::steady_clock::now();
  std::shared_ptr<const model::ImageStates> states = vision_.encode(*executor_, *image.input);
  ++encoded_;
  if (log_) {
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    log_("vision encoder: image " + image.digest.substr(0, 19) + " encoded in " +
         std::to_string(ms) + " ms (" + std::to_string(states->bytes()) + " bytes kept)");
  }
  if (!image.digest.empty()) {
    recent_.emplace_front(image.digest, states);
    while (recent_.size() > capacity_) recent_.pop_back();
  }
  return states;
}

size_t ImageEncoder::encoded() const {
  std::lock_guard lock(mu_);
  return encoded_;
}

// ---- prompts ----

SequenceImages expand_images(const model::Vision& vision, ImageEncoder& encoder,
                             std::vector<int32_t>& prompt, std::span<const PromptImage> images) {
  std::vector<int32_t> out;
  std::vector<ImageSpan> spans;
  size_t next = 0;
  for (const PromptImage& image : images) {
    if (image.at < next || image.at > prompt.size()) {
      throw std::invalid_argument("images must be placed in prompt order");
    }
    out.insert(out.end(), prompt.begin() + static_cast<std::ptrdiff_t>(next),
               prompt.begin() + static_cast<std::ptrdiff_t>(image.at));
    next = image.at;
    ImageSpan s;
    s.states = encoder.encode(image);
    s.digest = image.digest;
    const model::Placeholder p = vision.placeholder(*s.states);
    s.start = out.size();
    s.length = p.tokens.size();
    s.first = s.start + p.first;
    s.n = p.n;
    if (vision.mrope()) {
      if (p.positions.size() != 3 * p.n) throw std::logic_error("M-RoPE placeholder positions");
      s.positions = p.positions;
      int32_t max = 0;
      for (int32_t v : p.positions) max = std::max(max, v);
      s.advance = p.n > 0 ? max + 1 : 0;
    }
    out.insert(out.end(), p.tokens.begin(), p.tokens.end());
    spans.push_back(std::move(s));
  }
  out.insert(out.end(), prompt.begin() + static_cast<std::ptrdiff_t>(next), prompt.end());
  prompt = std::move(out);
  return SequenceImages(std::move(spans), vision.mrope());
}

std::string image_marker(size_t n) { return "[img-" + std::to_string(n) + "]"; }

std::vector<int32_t> tokenize_with_images(
    std::string_view text, std::span<const std::shared_ptr<const model::ImageInput>> inputs,
    std::span<const std::string> digests,
    const std::function<std::vector<int32_t>(std::string_view, bool first)>& tokenize,
    std::vector<PromptImage>& images) {
  std::vector<int32_t> tokens;
  size_t piece_start = 0;
  size_t scan = 0;
  bool first = true;
  const auto flush = [&](size_t end) {
    if (end > piece_start || first) {
      const std::vector<int32_t> t = tokenize(text.substr(piece_start, end - piece_start), first);
      tokens.insert(tokens.end(), t.begin(), t.end());
    }
    first = false;
  };
  while (true) {
    const size_t open = text.find("[img-", scan);
    if (open == std::string_view::npos) break;
    size_t i = open + 5;
    size_t n = 0;
    size_t digits = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9' && digits < 6) {
      n = n * 10 + static_cast<size_t>(text[i] - '0');
      ++i;
      ++digits;
    }
    if (digits == 0 || i >= text.size() || text[i] != ']' || n >= inputs.size()) {
      scan = open + 1;
      continue;
    }
    flush(open);
    images.push_back({tokens.size(), inputs[n], n < digests.size() ? digests[n] : std::string()});
    piece_start = scan = i + 1;
  }
  if (piece_start < text.size() || first) flush(text.size());
  return tokens;
}

}  // namespace corral::runner
