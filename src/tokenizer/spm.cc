// SentencePiece-style BPE as llama.cpp's llm_tokenizer_spm runs it: start from UTF-8
// characters, repeatedly merge the adjacent pair whose concatenation is the highest-scoring
// token (leftmost on ties), and spell what never became a token with byte tokens.
#include <queue>

#include "tokenizer/tokenizer.h"

namespace corral::tokenizer {

namespace {

struct Symbol {
  size_t start;
  size_t len;  // 0 once merged into its left neighbour
  int prev;
  int next;
};

struct Bigram {
  float score;
  int left;
  int right;
  size_t len;
};

struct BigramOrder {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

}  // namespace

void Tokenizer::encode_spm(std::string_view text, std::vector<TokenId>& out) const {
  for (const std::string_view chunk : independent_chunks(text)) encode_spm_chunk(chunk, out);
}

void Tokenizer::encode_spm_chunk(std::string_view text, std::vector<TokenId>& out) const {
  std::vector<Symbol> symbols;
  symbols.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    const size_t len = std::min(utf8_len(static_cast<uint8_t>(text[pos])), text.size() - pos);
    const int index = static_cast<int>(symbols.size());
    symbols.push_back({pos, len, index - 1, pos + len == text.size() ? -1 : index + 1});
    pos += len;
  }

  std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
  const auto try_add = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const size_t len = symbols[left].len + symbols[right].len;
    const TokenId id = vocab_.find(text.substr(symbols[left].start, len));
    if (id == kNoToken) return;
    queue.push({vocab_.tokens[static_cast<size_t>(id)].score, left, right, len});
  };
  for (int i = 1; i < static_cast<int>(symbols.size()); ++i) try_add(i - 1, i);

  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Symbol& left = symbols[b.left];
    Symbol& right = symbols[b.right];
    // Stale entry: one side has been merged away or grown since it was queued.
    if (left.len == 0 || right.len == 0 || left.next != b.right || left.len + right.len != b.len) {
      continue;
    }
    left.len += right.len;
    right.len = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = b.left;
    try_add(left.prev, b.left);
    try_add(b.left, left.next);
  }

  for (int i = symbols.empty() ? -1 : 0; i != -1; i = symbols[i].next) {
    const std::string_view piece = text.substr(symbols[i].start, symbols[i].len);
    const TokenId id = vocab_.find(piece);
    if (id != kNoToken) {
      out.push_back(id);
    } else {
      push_bytes(piece, out);
    }
  }
}

}  // namespace corral::tokenizer
