// The grammar matcher: a pushdown recognizer over UTF-8 code points that keeps every parse
// alive at once (a set of stacks, as llama.cpp's llama-grammar.cpp does), and the token pieces
// it checks against.
//
// A stack is a chain of frames in an arena: the top frame is the character class to match next,
// each parent is where to continue once the rule above it ends. Stacks share their tails, so
// advancing one character creates a few frames instead of copying whole stacks; a reference in
// tail position passes its parent on (no frame), which keeps right-recursive repetitions flat.
// mask() walks the tokens in piece order and keeps the state of every prefix of the current
// piece, so tokens sharing a prefix share its work, and a dead prefix skips all its tokens.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "sample/grammar.h"
#include "sample/grammar_impl.h"
#include "tokenizer/tokenizer.h"

namespace corral::sample {

// Named rather than anonymous: GrammarMatcher::State holds these.
namespace grammar_detail {

using Kind = Grammar::Impl::Kind;

constexpr int32_t kComplete = -1;  // the empty stack: the grammar is complete along it
constexpr int32_t kNoParent = -1;

struct Frame {
  int32_t pos;
  int32_t parent;
};

// A partial UTF-8 character: the bits seen so far and the continuation bytes still due.
struct Utf8 {
  uint32_t value = 0;
  uint8_t need = 0;
};

// Open-addressing map from a 64-bit key to an int32, emptied in O(1) by a generation stamp (it
// is cleared once per character).
class StepTable {
 public:
  // The value slot for key; `inserted` tells whether it was absent (then the slot holds -1).
  int32_t& find_or_insert(uint64_t key, bool& inserted) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    const size_t mask = slots_.size() - 1;
    for (size_t i = hash(key) & mask;; i = (i + 1) & mask) {
      Slot& s = slots_[i];
      if (s.gen != gen_) {
        s = {key, gen_, -1};
        ++size_;
        inserted = true;
        return s.value;
      }
      if (s.key == key) {
        inserted = false;
        return s.value;
      }
    }
  }
  void clear() {
    size_ = 0;
    if (++gen_ == 0) {
      for (Slot& s : slots_) s.gen = 0;
      gen_ = 1;
    }
  }

 private:
  struct Slot {
    uint64_t key = 0;
    uint32_t gen = 0;
    int32_t value = -1;
  };
  static size_t hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return static_cast<size_t>(k);
  }
  void grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(std::max<size_t>(64, old.size() * 2), Slot{});
    const uint32_t gen = gen_;
    size_ = 0;
    for (const Slot& s : old) {
      if (s.gen != gen) continue;
      bool inserted;
      find_or_insert(s.key, inserted) = s.value;
    }
  }

  std::vector<Slot> slots_;
  uint32_t gen_ = 1;
  size_t size_ = 0;
};

uint64_t key(int32_t a, int32_t b) {
  return (uint64_t{static_cast<uint32_t>(a)} << 32) | static_cast<uint32_t>(b);
}

// The stacks machinery: an arena of frames and the per-character scratch.
struct GrammarEngine {
  const Grammar::Impl* g;
  std::vector<Frame> frames;
  StepTable conses, seen;
  std::vector<std::pair<int32_t, int32_t>> work;

  int32_t cons(int32_t pos, int32_t parent) {
    bool inserted;
    int32_t& slot = conses.find_or_insert(key(pos, parent), inserted);
    if (inserted) {
      slot = static_cast<int32_t>(frames.size());
      frames.push_back({pos, parent});
    }
    return slot;
  }

  // Follows references and rule ends from `pos` (continuing with `parent`) until each path
  // stands on a character class (a new stack top) or has completed the grammar.
  void expand(int32_t pos, int32_t parent, std::vector<int32_t>& out) {
    work.emplace_back(pos, parent);
    while (!work.empty()) {
      const auto [p, par] = work.back();
      work.pop_back();
      bool inserted;
      seen.find_or_insert(key(p, par), inserted);
      if (!inserted) continue;
      const Grammar::Impl::Element e = g->elements[static_cast<size_t>(p)];
      if (e.kind == Kind::kChars) {
        out.push_back(cons(p, par));
      } else if (e.kind == Kind::kEnd) {
        if (par == kNoParent) {
          out.push_back(kComplete);
        } else {
          const Frame f = frames[static_cast<size_t>(par)];
          if (g->elements[static_cast<size_t>(f.pos)].kind == Kind::kChars) {
            out.push_back(par);
          } else {
            work.emplace_back(f.pos, f.parent);
          }
        }
      } else {
        const int32_t next = p + 1;
        const int32_t cont =
            g->elements[static_cast<size_t>(next)].kind == Kind::kEnd ? par : cons(next, par);
        for (const int32_t alt : g->alternatives[static_cast<size_t>(e.value)]) {
          work.emplace_back(alt, cont);
        }
      }
    }
  }

  void begin_step() {
    conses.clear();
    seen.clear();
  }

  static void dedupe(std::vector<int32_t>& tops) {
    if (tops.size() < 2) return;
    std::sort(tops.begin(), tops.end());
    tops.erase(std::unique(tops.begin(), tops.end()), tops.end());
  }

  void start(std::vector<int32_t>& out) {
    begin_step();
    out.clear();
    for (const int32_t alt : g->alternatives[static_cast<size_t>(g->root)]) {
      expand(alt, kNoParent, out);
    }
    dedupe(out);
  }

  const CharClass& top_class(int32_t top) const {
    const Frame f = frames[static_cast<size_t>(top)];
    return g->classes[static_cast<size_t>(g->elements[static_cast<size_t>(f.pos)].value)];
  }

  // One byte on from (in, u) to (out, u_out); false when no stack survives.
  bool feed(const std::vector<int32_t>& in, Utf8 u, uint8_t byte, std::vector<int32_t>& out,
            Utf8& u_out) {
    out.clear();
    uint32_t cp;
    if (u.need == 0) {
      if (byte < 0x80) {
        cp = byte;
      } else if (byte >= 0xC2 && byte <= 0xDF) {
        u_out = {byte & 0x1Fu, 1};
      } else if (byte >= 0xE0 && byte <= 0xEF) {
        u_out = {byte & 0x0Fu, 2};
      } else if (byte >= 0xF0 && byte <= 0xF4) {
        u_out = {byte & 0x07u, 3};
      } else {
        return false;
      }
      if (byte >= 0x80) return partial(in, u_out, out);
    } else {
      if ((byte & 0xC0) != 0x80) return false;
      u_out = {(u.value << 6) | (byte & 0x3Fu), static_cast<uint8_t>(u.need - 1)};
      if (u_out.need > 0) return partial(in, u_out, out);
      cp = u_out.value;
      // Overlong forms, surrogates and values past U+10FFFF are not characters.
      if (cp < 0x80 || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return false;
    }
    u_out = {};
    begin_step();
    for (const int32_t top : in) {
      if (top == kComplete) continue;
      if (!top_class(top).matches(cp)) continue;
      const Frame f = frames[static_cast<size_t>(top)];
      expand(f.pos + 1, f.parent, out);
    }
    dedupe(out);
    return !out.empty();
  }

  // Mid-character: keeps the stacks whose next class holds some completion of the bytes so far.
  bool partial(const std::vector<int32_t>& in, Utf8 u, std::vector<int32_t>& out) {
    const uint32_t shift = 6u * u.need;
    const uint32_t lo = u.value << shift;
    const uint32_t hi = lo | ((1u << shift) - 1);
    for (const int32_t top : in) {
      if (top != kComplete && top_class(top).intersects(lo, hi)) out.push_back(top);
    }
    return !out.empty();
  }

  // Drops the frames no stack in `tops` reaches, renumbering the rest (order is kept, so a
  // parent still precedes its children).
  void compact(std::vector<int32_t>& tops) {
    std::vector<int32_t> remap(frames.size(), -2);
    for (const int32_t top : tops) {
      for (int32_t f = top; f >= 0 && remap[static_cast<size_t>(f)] == -2;
           f = frames[static_cast<size_t>(f)].parent) {
        remap[static_cast<size_t>(f)] = -1;
      }
    }
    std::vector<Frame> kept;
    for (size_t i = 0; i < frames.size(); ++i) {
      if (remap[i] == -2) continue;
      remap[i] = static_cast<int32_t>(kept.size());
      const int32_t parent = frames[i].parent;
      kept.push_back({frames[i].pos, parent < 0 ? parent : remap[static_cast<size_t>(parent)]});
    }
    frames = std::move(kept);
    for (int32_t& top : tops) {
      if (top >= 0) top = remap[static_cast<size_t>(top)];
    }
  }
};

}  // namespace grammar_detail

using grammar_detail::GrammarEngine;
using grammar_detail::kComplete;
using grammar_detail::Utf8;

// ---- TokenPieces ----

TokenPieces::TokenPieces(const tokenizer::Tokenizer& tokenizer) {
  const tokenizer::Vocab& v = tokenizer.vocab();
  pieces_.resize(v.size());
  end_.assign(v.size(), 0);
  for (size_t id = 0; id < v.size(); ++id) {
    // Control and unknown tokens render as nothing; user-defined tokens as their text (it is
    // what the decoder prints for them).
    pieces_[id] = tokenizer.token_to_piece(static_cast<int32_t>(id), false);
  }
  auto mark_end = [&](int32_t id) {
    if (id >= 0 && static_cast<size_t>(id) < end_.size()) end_[static_cast<size_t>(id)] = 1;
  };
  mark_end(v.eos);
  mark_end(v.eot);
  mark_end(v.eom);
  for (const int32_t id : v.eos_ids) mark_end(id);
  index();
}

TokenPieces::TokenPieces(std::vector<std::string> pieces, std::span<const int32_t> end_ids)
    : pieces_(std::move(pieces)), end_(pieces_.size(), 0) {
  for (const int32_t id : end_ids) {
    if (id >= 0 && static_cast<size_t>(id) < end_.size()) end_[static_cast<size_t>(id)] = 1;
  }
  index();
}

void TokenPieces::index() {
  for (size_t id = 0; id < pieces_.size(); ++id) {
    if (end_[id]) pieces_[id].clear();
    max_piece_size_ = std::max(max_piece_size_, pieces_[id].size());
  }
  sorted_.resize(pieces_.size());
  std::iota(sorted_.begin(), sorted_.end(), 0);
  // std::string compares bytes as unsigned char, so this is bytewise order.
  std::stable_sort(sorted_.begin(), sorted_.end(), [&](int32_t a, int32_t b) {
    return pieces_[static_cast<size_t>(a)] < pieces_[static_cast<size_t>(b)];
  });
  shared_prefix_.assign(sorted_.size(), 0);
  for (size_t i = 1; i < sorted_.size(); ++i) {
    const std::string& a = pieces_[static_cast<size_t>(sorted_[i - 1])];
    const std::string& b = pieces_[static_cast<size_t>(sorted_[i])];
    const size_t n = std::min(a.size(), b.size());
    uint32_t k = 0;
    while (k < n && a[k] == b[k]) ++k;
    shared_prefix_[i] = k;
  }
}

// ---- GrammarMatcher ----

struct GrammarMatcher::State {
  std::shared_ptr<const Grammar> grammar;
  std::shared_ptr<const TokenPieces> pieces;
  GrammarEngine engine;
  std::vector<int32_t> tops;
  Utf8 utf8;
  bool ended = false;
  size_t compact_at = 1 << 16;
  // Scratch for accepts()/mask(): the stacks after each byte of the piece being checked.
  std::vector<std::vector<int32_t>> levels;
  std::vector<Utf8> level_utf8;
  std::vector<size_t> level_frames;

  bool complete() const {
    return utf8.need == 0 && std::find(tops.begin(), tops.end(), kComplete) != tops.end();
  }

  void ensure_levels(size_t n) {
    if (levels.size() < n + 1) {
      levels.resize(n + 1);
      level_utf8.resize(n + 1);
      level_frames.resize(n + 1);
    }
  }

  // Feeds `piece` from the current state; the result lands in levels[piece.size()]. Frames
  // made on the way stay in the arena (the caller truncates or keeps them).
  bool feed(std::string_view piece) {
    ensure_levels(piece.size());
    levels[0] = tops;
    level_utf8[0] = utf8;
    for (size_t i = 0; i < piece.size(); ++i) {
      if (!engine.feed(levels[i], level_utf8[i], static_cast<uint8_t>(piece[i]), levels[i + 1],
                       level_utf8[i + 1])) {
        return false;
      }
    }
    return true;
  }
};

GrammarMatcher::GrammarMatcher(std::shared_ptr<const Grammar> grammar,
                               std::shared_ptr<const TokenPieces> pieces)
    : state_(std::make_unique<State>()) {
  state_->grammar = std::move(grammar);
  state_->pieces = std::move(pieces);
  state_->engine.g = &state_->grammar->impl();
  state_->engine.start(state_->tops);
  state_->ensure_levels(state_->pieces->max_piece_size());
}

GrammarMatcher::~GrammarMatcher() = default;
GrammarMatcher::GrammarMatcher(GrammarMatcher&&) noexcept = default;
GrammarMatcher& GrammarMatcher::operator=(GrammarMatcher&&) noexcept = default;

bool GrammarMatcher::accepts(int32_t token) const {
  State& s = *state_;
  const TokenPieces& pieces = *s.pieces;
  if (s.ended || token < 0 || static_cast<size_t>(token) >= pieces.size()) return false;
  if (pieces.is_end(token)) return s.complete();
  const std::string& piece = pieces[static_cast<size_t>(token)];
  if (piece.empty()) return false;
  const size_t mark = s.engine.frames.size();
  const bool ok = s.feed(piece);
  s.engine.frames.resize(mark);
  return ok;
}

bool GrammarMatcher::accept(int32_t token) {
  State& s = *state_;
  const TokenPieces& pieces = *s.pieces;
  if (s.ended || token < 0 || static_cast<size_t>(token) >= pieces.size()) return false;
  if (pieces.is_end(token)) {
    if (!s.complete()) return false;
    s.ended = true;
    return true;
  }
  const std::string& piece = pieces[static_cast<size_t>(token)];
  const size_t mark = s.engine.frames.size();
  if (piece.empty() || !s.feed(piece)) {
    s.engine.frames.resize(mark);
    return false;
  }
  std::swap(s.tops, s.levels[piece.size()]);
  s.utf8 = s.level_utf8[piece.size()];
  if (s.engine.frames.size() > s.compact_at) {
    s.engine.compact(s.tops);
    s.compact_at = std::max<size_t>(1 << 16, 2 * s.engine.frames.size());
  }
  return true;
}

bool GrammarMatcher::done() const {
  const State& s = *state_;
  if (s.ended) return true;
  if (s.utf8.need != 0) return false;
  return std::all_of(s.tops.begin(), s.tops.end(), [](int32_t t) { return t == kComplete; });
}

void GrammarMatcher::mask(std::span<float> logits) const {
  State& s = *state_;
  const TokenPieces& pieces = *s.pieces;
  const float kBlocked = -INFINITY;
  for (size_t i = pieces.size(); i < logits.size(); ++i) logits[i] = kBlocked;
  const std::span<const int32_t> order = pieces.sorted();
  const std::span<const uint32_t> shared = pieces.shared_prefix();
  auto block = [&](int32_t id) {
    if (static_cast<size_t>(id) < logits.size()) logits[static_cast<size_t>(id)] = kBlocked;
  };
  if (s.ended) {
    for (const int32_t id : order) block(id);
    return;
  }
  const bool end_ok = s.complete();
  s.levels[0] = s.tops;
  s.level_utf8[0] = s.utf8;
  s.level_frames[0] = s.engine.frames.size();
  size_t depth = 0;  // levels[0..depth] hold the states of the previous piece's prefix
  for (size_t k = 0; k < order.size(); ++k) {
    const int32_t id = order[k];
    const std::string& piece = pieces[static_cast<size_t>(id)];
    if (piece.empty()) {
      if (!(end_ok && pieces.is_end(id))) block(id);
      continue;
    }
    depth = std::min<size_t>(depth, shared[k]);
    s.engine.frames.resize(s.level_frames[depth]);
    while (depth < piece.size()) {
      if (!s.engine.feed(s.levels[depth], s.level_utf8[depth], static_cast<uint8_t>(piece[depth]),
                         s.levels[depth + 1], s.level_utf8[depth + 1])) {
        // Every later piece sharing this dead prefix is dead too.
        block(id);
        while (k + 1 < order.size() && shared[k + 1] > depth) block(order[++k]);
        break;
      }
      ++depth;
      s.level_frames[depth] = s.engine.frames.size();
    }
  }
  s.engine.frames.resize(s.level_frames[0]);
}

}  // namespace corral::sample
