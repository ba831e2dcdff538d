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
#include <unordered_map>

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

  // Frames are hash-consed for the arena's whole life, so equal stacks are equal indices and a
  // state can be recognised when it recurs (inside a string, every ordinary character leads
  // back to the same state).
  void begin_step() { seen.clear(); }

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
    // Every multi-byte sequence encodes a code point of at least U+0080: a lead byte must not
    // keep stacks alive whose next class holds only ASCII.
    const uint32_t lo = std::max<uint32_t>(u.value << shift, 0x80);
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
    conses.clear();
    for (size_t i = 0; i < frames.size(); ++i) {
      bool inserted;
      conses.find_or_insert(key(frames[i].pos, frames[i].parent), inserted) =
          static_cast<int32_t>(i);
    }
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
  sorted_offsets_.assign(1, 0);
  for (const int32_t id : sorted_) {
    sorted_text_ += pieces_[static_cast<size_t>(id)];
    sorted_offsets_.push_back(sorted_text_.size());
  }
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

// A matcher state (a set of stacks and a partial character) is interned once and named by an
// index, with a table of its transitions per byte filled as they are met. mask() then walks the
// sorted pieces with one int per prefix byte, and a state that recurs (inside a JSON string,
// every ordinary character leads back to the same one) costs a table lookup per byte.
struct GrammarMatcher::State {
  static constexpr int32_t kUnknown = -2;
  struct Node {
    std::vector<int32_t> tops;
    Utf8 utf8;
    std::unique_ptr<int32_t[]> next;  // per byte: node, -1 dead, kUnknown; made on first use
  };
  struct KeyHash {
    size_t operator()(const std::vector<int32_t>& v) const {
      uint64_t h = 0xcbf29ce484222325ULL;
      for (const int32_t x : v) h = (h ^ static_cast<uint32_t>(x)) * 0x100000001b3ULL;
      return static_cast<size_t>(h ^ (h >> 29));
    }
  };
  // Caches are dropped past these sizes (between tokens) so memory stays bounded.
  static constexpr size_t kMaxNodes = size_t{1} << 14;
  static constexpr size_t kMinCompactFrames = size_t{1} << 18;

  std::shared_ptr<const Grammar> grammar;
  std::shared_ptr<const TokenPieces> pieces;
  GrammarEngine engine;
  std::vector<Node> nodes;
  std::unordered_map<std::vector<int32_t>, int32_t, KeyHash> node_ids;
  int32_t current = 0;
  bool ended = false;
  size_t compact_at = kMinCompactFrames;
  std::vector<int32_t> levels;  // mask(): the node after each byte of the current piece
  std::vector<int32_t> scratch;
  std::vector<int32_t> key;

  int32_t intern(const std::vector<int32_t>& tops, Utf8 utf8) {
    key.assign(tops.begin(), tops.end());
    key.push_back(static_cast<int32_t>(utf8.value));
    key.push_back(utf8.need);
    const auto found = node_ids.find(key);
    if (found != node_ids.end()) return found->second;
    const auto id = static_cast<int32_t>(nodes.size());
    nodes.push_back({tops, utf8, nullptr});
    node_ids.emplace(key, id);
    return id;
  }

  int32_t step(int32_t node, uint8_t byte) {
    Node& n = nodes[static_cast<size_t>(node)];
    if (n.next && n.next[byte] != kUnknown) return n.next[byte];
    if (!n.next) {
      n.next = std::make_unique<int32_t[]>(256);
      std::fill(n.next.get(), n.next.get() + 256, kUnknown);
    }
    Utf8 u;
    int32_t next = -1;
    if (engine.feed(n.tops, n.utf8, byte, scratch, u)) next = intern(scratch, u);
    // intern() may have moved `nodes`: index again.
    nodes[static_cast<size_t>(node)].next[byte] = next;
    return next;
  }

  int32_t run(int32_t node, std::string_view piece) {
    for (const char c : piece) {
      node = step(node, static_cast<uint8_t>(c));
      if (node < 0) return -1;
    }
    return node;
  }

  bool complete(int32_t node) const {
    const Node& n = nodes[static_cast<size_t>(node)];
    return n.utf8.need == 0 && std::find(n.tops.begin(), n.tops.end(), kComplete) != n.tops.end();
  }

  // Between tokens: forget cached states and drop unreachable frames once they pile up.
  void trim() {
    const bool compact = engine.frames.size() > compact_at;
    if (!compact && nodes.size() <= kMaxNodes) return;
    std::vector<int32_t> tops = nodes[static_cast<size_t>(current)].tops;
    const Utf8 utf8 = nodes[static_cast<size_t>(current)].utf8;
    if (compact) {
      engine.compact(tops);
      compact_at = std::max(kMinCompactFrames, 2 * engine.frames.size());
    }
    nodes.clear();
    node_ids.clear();
    current = intern(tops, utf8);
  }
};

GrammarMatcher::GrammarMatcher(std::shared_ptr<const Grammar> grammar,
                               std::shared_ptr<const TokenPieces> pieces)
    : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.grammar = std::move(grammar);
  s.pieces = std::move(pieces);
  s.engine.g = &s.grammar->impl();
  std::vector<int32_t> tops;
  s.engine.start(tops);
  s.current = s.intern(tops, Utf8{});
  s.levels.resize(s.pieces->max_piece_size() + 1);
}

GrammarMatcher::~GrammarMatcher() = default;
GrammarMatcher::GrammarMatcher(GrammarMatcher&&) noexcept = default;
GrammarMatcher& GrammarMatcher::operator=(GrammarMatcher&&) noexcept = default;

bool GrammarMatcher::accepts(int32_t token) const {
  State& s = *state_;
  const TokenPieces& pieces = *s.pieces;
  if (s.ended || token < 0 || static_cast<size_t>(token) >= pieces.size()) return false;
  if (pieces.is_end(token)) return s.complete(s.current);
  const std::string& piece = pieces[static_cast<size_t>(token)];
  return !piece.empty() && s.run(s.current, piece) >= 0;
}

bool GrammarMatcher::accept(int32_t token) {
  State& s = *state_;
  const TokenPieces& pieces = *s.pieces;
  if (s.ended || token < 0 || static_cast<size_t>(token) >= pieces.size()) return false;
  if (pieces.is_end(token)) {
    if (!s.complete(s.current)) return false;
    s.ended = true;
    return true;
  }
  const std::string& piece = pieces[static_cast<size_t>(token)];
  const int32_t next = piece.empty() ? -1 : s.run(s.current, piece);
  if (next < 0) return false;
  s.current = next;
  s.trim();
  return true;
}

bool GrammarMatcher::done() const {
  const State& s = *state_;
  if (s.ended) return true;
  const State::Node& n = s.nodes[static_cast<size_t>(s.current)];
  if (n.utf8.need != 0) return false;
  return std::all_of(n.tops.begin(), n.tops.end(), [](int32_t t) { return t == kComplete; });
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
  const bool end_ok = s.complete(s.current);
  s.levels[0] = s.current;
  size_t depth = 0;  // levels[0..depth] hold the nodes of the previous piece's prefix
  for (size_t k = 0; k < order.size(); ++k) {
    const int32_t id = order[k];
    const std::string_view piece = pieces.sorted_piece(k);
    if (piece.empty()) {
      if (!(end_ok && pieces.is_end(id))) block(id);
      continue;
    }
    depth = std::min<size_t>(depth, shared[k]);
    while (depth < piece.size()) {
      const int32_t next = s.step(s.levels[depth], static_cast<uint8_t>(piece[depth]));
      if (next < 0) {
        // Every later piece sharing this dead prefix is dead too.
        block(id);
        while (k + 1 < order.size() && shared[k + 1] > depth) block(order[++k]);
        break;
      }
      s.levels[++depth] = next;
    }
  }
}

}  // namespace corral::sample
