#include "tokenizer/vocab.h"

namespace corral::tokenizer {

Vocab load_sentencepiece_vocab(const std::string& path) {
  throw VocabError(path + ": not implemented");
}

}  // namespace corral::tokenizer
