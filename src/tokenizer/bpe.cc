// Ranked BPE over one pre-token, as Hugging Face tokenizers' BPE::merge_word does it: start
// from characters (or their byte tokens), always apply the lowest-ranked merge present, leftmost
// first. A priority queue over a linked list of symbols keeps this O(n log n) per word.
#include <queue>

#include "tokenizer/tokenizer.h"

namespace corral::tokenizer {

namespace {

struct Symbol {
  TokenId id;  // kNoToken: a character outside the vocabulary, spelled with bytes at the end
  size_t start;
  size_t len;  // 0 once merged into its left neighbour
  int prev;
  int next;
};

struct Candidate {
  int32_t rank;
  int left;
  int right;
  TokenId left_id;
  TokenId right_id;
  TokenId merged;
};

struct CandidateOrder {
  bool operator()(const Candidate& a, const Candidate& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

}  // namespace

void Tokenizer::encode_bpe_word(std::string_view word, std::vector<TokenId>& out) const {
  if (word.empty()) return;
  if (vocab_.ignore_merges) {
    if (const TokenId id = vocab_.find(word); id != kNoToken) {
      out.push_back(id);
      return;
    }
  }

  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  const auto append = [&](TokenId id, size_t start, size_t len) {
    const int index = static_cast<int>(symbols.size());
    symbols.push_back({id, start, len, index - 1, -1});
    if (index > 0) symbols[index - 1].next = index;
  };
  for (size_t pos = 0; pos < word.size();) {
    const size_t len = std::min(utf8_len(static_cast<uint8_t>(word[pos])), word.size() - pos);
    const std::string_view ch = word.substr(pos, len);
    TokenId id = vocab_.find(ch);
    if (id == kNoToken && vocab_.byte_fallback && !vocab_.byte_level) {
      // Every byte of the character becomes its own <0xXX> symbol; if one is missing, the
      // whole character is unknown.
      std::vector<TokenId> bytes;
      for (const char c : ch) bytes.push_back(vocab_.byte_token(static_cast<uint8_t>(c)));
      bool complete = true;
      for (const TokenId b : bytes) complete = complete && b != kNoToken;
      if (complete) {
        for (size_t i = 0; i < bytes.size(); ++i) append(bytes[i], pos + i, 1);
        pos += len;
        continue;
      }
      id = vocab_.unk;
    } else if (id == kNoToken && !vocab_.byte_level && vocab_.unk != kNoToken) {
      id = vocab_.unk;
    }
    if (id == vocab_.unk && id != kNoToken && !symbols.empty() && symbols.back().id == id) {
      symbols.back().len += len;  // consecutive unknowns fuse into one
    } else {
      append(id, pos, len);
    }
    pos += len;
  }

  std::priority_queue<Candidate, std::vector<Candidate>, CandidateOrder> queue;
  const auto try_add = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const TokenId l = symbols[left].id;
    const TokenId r = symbols[right].id;
    if (l == kNoToken || r == kNoToken) return;
    if (const Vocab::Merge* m = vocab_.find_merge(l, r)) {
      queue.push({m->rank, left, right, l, r, m->merged});
    }
  };
  for (int i = 1; i < static_cast<int>(symbols.size()); ++i) try_add(i - 1, i);

  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    Symbol& left = symbols[c.left];
    Symbol& right = symbols[c.right];
    if (left.len == 0 || right.len == 0 || left.next != c.right || left.id != c.left_id ||
        right.id != c.right_id) {
      continue;  // stale: a neighbour changed since this pair was queued
    }
    left.id = c.merged;
    left.len += right.len;
    right.len = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = c.left;
    try_add(left.prev, c.left);
    try_add(c.left, left.next);
  }

  for (int i = 0; i != -1; i = symbols[i].next) {
    if (symbols[i].id != kNoToken) {
      out.push_back(symbols[i].id);
    } else {
      const std::string_view piece = word.substr(symbols[i].start, symbols[i].len);
      if (vocab_.byte_level) {
        // A byte-level character is one byte of the original text.
        const int b = unicode_to_byte([&] {
          size_t p = 0;
          return utf8_decode(piece, p);
        }());
        if (b >= 0) push_bytes(std::string(1, static_cast<char>(b)), out);
      } else {
        push_bytes(piece, out);
      }
    }
  }
}

}  // namespace corral::tokenizer
