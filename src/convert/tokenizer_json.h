// A Hugging Face folder's tokenizer as GGUF `tokenizer.ggml.*` keys, the way llama.cpp's
// convert_hf_to_gguf.py and gguf-py's SpecialVocab write them: a SentencePiece tokenizer.model
// (model "llama": tokens, scores, token types) or a tokenizer.json BPE (model "gpt2" for byte-level
// BPE with its merges and pre-tokenizer name, "llama" for BPE with byte fallback); special token
// ids, add_bos/add_eos, the chat template; and every end-of-generation id from config.json and
// generation_config.json.
#pragma once

#include <string>

#include "convert/hf_config.h"
#include "ml/gguf/metadata.h"

namespace corral::convert {

// Appends the tokenizer keys to `md`. `prefer_sentencepiece`: use tokenizer.model when present
// (llama.cpp's order for llama and qwen2). `n_vocab`: the model's vocabulary size; the token list
// is padded to it with "[PAD<i>]" tokens as llama.cpp pads it. Throws std::runtime_error naming
// the file on a tokenizer that cannot be converted (no tokenizer files, an unsupported model
// type, a byte-level pre-tokenizer llama.cpp does not know).
void add_tokenizer(const std::string& dir, const HfConfig& config, int64_t n_vocab,
                   bool prefer_sentencepiece, ml::gguf::Metadata& md);

// The key corral and Ollama read for several end-of-generation ids (llama.cpp reads only
// tokenizer.ggml.eos_token_id and ignores it).
inline constexpr const char* kEosTokenIdsKey = "tokenizer.ggml.eos_token_ids";

}  // namespace corral::convert
