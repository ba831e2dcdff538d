// A Qwen3 checkpoint (Hugging Face layout, with the real Qwen3 tokenizer and chat template) whose
// weights make it a bigram machine: each token of a fixed chain is followed by the next one,
// whatever came before. After the chat template's "<|im_start|>assistant\n" it writes
// "<think>Hmm.</think>\n\nHello!<|im_end|>"; after the no-think form's "</think>\n\n" it writes
// "Hello!<|im_end|>". Random weights never write a thinking block; this one always does, so the
// thinking path can be tested end to end through the real converter, template and engine.
//
// `node thinking_model.mjs DIR` writes it into DIR (the C++ terminal tests use it that way).
//
// How: one layer whose attention and MLP weights are zero, so the final hidden state is the
// RMS-normalized embedding of the last token alone. Each chain token's embedding is a unit vector
// of its own; lm_head maps that vector to a logit of 40 for the next token of the chain and 0 for
// every other token (a margin no sampler setting overcomes).
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { testdataPath } from "./harness.mjs";

// Token ids in the Qwen3 vocabulary (tokenizers/qwen3/tokenizer.json).
const ids = {
  newline: 198, // "\n"
  twoNewlines: 271, // "\n\n"
  think: 151667, // "<think>"
  endThink: 151668, // "</think>"
  hmm: 80022, // "Hmm"
  dot: 13, // "."
  hello: 9707, // "Hello"
  bang: 0, // "!"
  imEnd: 151645, // "<|im_end|>"
};
const chain = [
  [ids.newline, ids.think],
  [ids.think, ids.hmm],
  [ids.hmm, ids.dot],
  [ids.dot, ids.endThink],
  [ids.endThink, ids.twoNewlines],
  [ids.twoNewlines, ids.hello],
  [ids.hello, ids.bang],
  [ids.bang, ids.imEnd],
];
export const thinkingReply = { thinking: "Hmm.", content: "Hello!" };

const hidden = 16;
const vocab = 151936;
const headDim = 8;

function bf16(x) {
  const f = new Float32Array([x]);
  return new Uint16Array(f.buffer)[1]; // exact for the values used here (0, 1, 10)
}

// Writes a safetensors file of BF16 tensors: {name: {shape, fill(i) -> value or 0}}.
function writeSafetensors(file, tensors) {
  const header = {};
  let offset = 0;
  const parts = [];
  for (const [name, t] of Object.entries(tensors)) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    const data = new Uint16Array(n);
    if (t.values) for (const [i, v] of t.values) data[i] = bf16(v);
    header[name] = { dtype: "BF16", shape: t.shape, data_offsets: [offset, offset + n * 2] };
    offset += n * 2;
    parts.push(Buffer.from(data.buffer));
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  fs.writeFileSync(file, Buffer.concat([len, Buffer.from(json), ...parts]));
}

// Writes the checkpoint into `dir` (created) and returns it.
export function writeThinkingModel(dir) {
  fs.mkdirSync(dir, { recursive: true });
  const ones = (n) => Array.from({ length: n }, (_, i) => [i, 1]);
  const slot = new Map(chain.map(([from], i) => [from, i]));
  const embed = chain.map(([from]) => [from * hidden + slot.get(from), 1]);
  const head = chain.map(([from, to]) => [to * hidden + slot.get(from), 10]);
  const p = "model.layers.0.";
  writeSafetensors(path.join(dir, "model.safetensors"), {
    "model.embed_tokens.weight": { shape: [vocab, hidden], values: embed },
    [p + "input_layernorm.weight"]: { shape: [hidden], values: ones(hidden) },
    [p + "self_attn.q_proj.weight"]: { shape: [2 * headDim, hidden] },
    [p + "self_attn.k_proj.weight"]: { shape: [headDim, hidden] },
    [p + "self_attn.v_proj.weight"]: { shape: [headDim, hidden] },
    [p + "self_attn.o_proj.weight"]: { shape: [hidden, 2 * headDim] },
    [p + "self_attn.q_norm.weight"]: { shape: [headDim], values: ones(headDim) },
    [p + "self_attn.k_norm.weight"]: { shape: [headDim], values: ones(headDim) },
    [p + "post_attention_layernorm.weight"]: { shape: [hidden], values: ones(hidden) },
    [p + "mlp.gate_proj.weight"]: { shape: [hidden, hidden] },
    [p + "mlp.up_proj.weight"]: { shape: [hidden, hidden] },
    [p + "mlp.down_proj.weight"]: { shape: [hidden, hidden] },
    "model.norm.weight": { shape: [hidden], values: ones(hidden) },
    "lm_head.weight": { shape: [vocab, hidden], values: head },
  });
  fs.writeFileSync(
    path.join(dir, "config.json"),
    JSON.stringify({
      architectures: ["Qwen3ForCausalLM"],
      model_type: "qwen3",
      hidden_size: hidden,
      intermediate_size: hidden,
      num_attention_heads: 2,
      num_key_value_heads: 1,
      head_dim: headDim,
      num_hidden_layers: 1,
      vocab_size: vocab,
      max_position_embeddings: 4096,
      rms_norm_eps: 1e-6,
      rope_theta: 1000000,
      tie_word_embeddings: false,
      torch_dtype: "bfloat16",
      bos_token_id: 151643,
      eos_token_id: 151645,
    }),
  );
  for (const f of ["tokenizer.json", "tokenizer_config.json"]) {
    fs.copyFileSync(testdataPath(`tokenizers/qwen3/${f}`), path.join(dir, f));
  }
  return dir;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (!process.argv[2]) {
    console.error("usage: node thinking_model.mjs DIR");
    process.exit(2);
  }
  writeThinkingModel(process.argv[2]);
}
