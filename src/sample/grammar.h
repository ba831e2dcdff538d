// Grammar-constrained sampling: a context-free grammar in GBNF (llama.cpp's notation), compiled
// from a JSON schema where a request gives one (Ollama's `format`, OpenAI's response_format and
// tool_choice), and a matcher that tells which tokens may come next.
//
// How the runner uses it: sample as usual; if the grammar does not accept the token, mask the
// logits (every token the grammar rejects gets -inf) and sample again; then accept(). End of
// generation is allowed only where the grammar is complete; when nothing can follow, the
// sequence ends.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace corral::tokenizer {
class Tokenizer;
}

namespace corral::sample {

// A compiled grammar (immutable, shared by the sequences that use it).
class Grammar {
 public:
  // Parses GBNF (rules `name ::= alternatives`, literals "..", classes [a-z] [^"\\], groups,
  // `*` `+` `?` `{m,n}`, comments). Throws std::invalid_argument naming the line and column of an
  // error, an undefined rule, or a missing root.
  static std::shared_ptr<const Grammar> parse(std::string_view gbnf,
                                              std::string_view root = "root");

  // Any JSON object (Ollama's format "json" and OpenAI's json_object), whitespace limited so a
  // model cannot ramble in it: one space, or a newline and up to 20 spaces/tabs, between
  // tokens; nothing before the opening brace or after the closing one.
  static std::shared_ptr<const Grammar> json_object();
  // Output that validates against a JSON schema: type (and type arrays), properties + required
  // (optional ones may be left out; with properties declared and no additionalProperties, no
  // others appear), additionalProperties, items/prefixItems/minItems/maxItems, enum/const,
  // anyOf/oneOf (oneOf as anyOf), allOf of objects, $ref to #/$defs, #/definitions or any
  // local pointer (recursion allowed), minLength/maxLength, pattern (a regex subset), formats
  // date/time/date-time/uuid, integer minimum/maximum. Not enforced: bounds on non-integer
  // numbers, uniqueItems, a maxLength/maxItems above 10000 (taken as none). Throws
  // std::invalid_argument naming what it cannot express, and on hostile input (nesting deeper
  // than 100, counts above 10000, a grammar too large, a $ref cycle that consumes nothing).
  // Properties come out in the schema's order only when the schema keeps it: pass an
  // nlohmann::ordered_json (nlohmann::json sorts keys) or the schema's text.
  static std::shared_ptr<const Grammar> json_schema(const nlohmann::json& schema);
  static std::shared_ptr<const Grammar> json_schema(const nlohmann::ordered_json& schema);
  // The schema as JSON text (parsed keeping key order); throws std::invalid_argument on bad JSON.
  static std::shared_ptr<const Grammar> json_schema_text(std::string_view schema_json);

  // The GBNF text of a JSON schema (for `corral debug` and tests).
  static std::string json_schema_to_gbnf(const nlohmann::json& schema);
  static std::string json_schema_to_gbnf(const nlohmann::ordered_json& schema);

  struct Impl;
  explicit Grammar(std::unique_ptr<Impl> impl);
  ~Grammar();
  const Impl& impl() const { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

// The bytes each token id decodes to (special/control tokens: empty, never allowed by a grammar
// except as end of generation). Built once per loaded model.
class TokenPieces {
 public:
  explicit TokenPieces(const tokenizer::Tokenizer& tokenizer);
  // Explicit pieces (tests, synthetic vocabularies); the end tokens' pieces are ignored.
  TokenPieces(std::vector<std::string> pieces, std::span<const int32_t> end_ids);
  size_t size() const { return pieces_.size(); }
  const std::string& operator[](size_t id) const { return pieces_[id]; }
  // Whether the token ends generation (EOS, EOT, ...).
  bool is_end(int32_t id) const {
    return id >= 0 && static_cast<size_t>(id) < end_.size() && end_[id];
  }
  // Token ids sorted by piece (bytewise), and for each position in that order the length of the
  // prefix its piece shares with the previous one: mask() walks this order so tokens with a
  // common prefix share the matching work.
  std::span<const int32_t> sorted() const { return sorted_; }
  std::span<const uint32_t> shared_prefix() const { return shared_prefix_; }
  // The piece of sorted()[k], from one buffer laid out in that order (the walk reads memory
  // front to back instead of chasing 150k separate strings).
  std::string_view sorted_piece(size_t k) const {
    return std::string_view(sorted_text_)
        .substr(sorted_offsets_[k], sorted_offsets_[k + 1] - sorted_offsets_[k]);
  }
  size_t max_piece_size() const { return max_piece_size_; }

 private:
  void index();

  std::vector<std::string> pieces_;
  std::vector<char> end_;
  std::vector<int32_t> sorted_;
  std::vector<uint32_t> shared_prefix_;
  std::string sorted_text_;
  std::vector<size_t> sorted_offsets_;
  size_t max_piece_size_ = 0;
};

// The state of one sequence inside a grammar. accepts() and mask() are const but fill caches of
// the matcher's own (states met and their transitions), so one matcher serves one thread.
class GrammarMatcher {
 public:
  GrammarMatcher(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const TokenPieces> pieces);
  ~GrammarMatcher();
  GrammarMatcher(GrammarMatcher&&) noexcept;
  GrammarMatcher& operator=(GrammarMatcher&&) noexcept;

  // Whether the token may come next (an end token: whether the grammar is complete here).
  bool accepts(int32_t token) const;
  // Sets logits[i] = -inf for every token that may not come next (ids past the vocabulary
  // too). Where every entry ends up -inf (a grammar that can neither continue nor end), the
  // caller should end the sequence.
  void mask(std::span<float> logits) const;
  // Advances past a token; false (state unchanged) when the grammar does not accept it.
  bool accept(int32_t token);
  // The grammar is complete and nothing more can follow (the sequence should end).
  bool done() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace corral::sample
