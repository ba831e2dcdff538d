#include "tokenizer/vocab.h"

namespace corral::tokenizer {

Vocab load_hf_vocab(const std::string& dir) { throw VocabError(dir + ": not implemented"); }

}  // namespace corral::tokenizer
