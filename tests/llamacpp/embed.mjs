// Embeddings with llama.cpp (through node-llama-cpp's prebuilt CPU binary), for checking that
// llama.cpp loads the embedding models corral's converter writes, tokenizes with their
// vocabulary and pools as their metadata says.
//
//   node embed.mjs MODEL.gguf "TEXT" ["TEXT" ...]
//
// Prints one line per text: its embedding as a JSON array (as llama.cpp pools it, not
// normalized).
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

const [modelPath, ...texts] = process.argv.slice(2);
if (!modelPath || texts.length === 0) {
  console.error("usage: node embed.mjs MODEL.gguf \"TEXT\" [\"TEXT\" ...]");
  process.exit(2);
}

// build "never": the prebuilt binary of @node-llama-cpp/linux-x64 as installed; gpu false: CPU.
const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error});
const model = await llama.loadModel({modelPath, gpuLayers: 0});
// One thread: the model is tiny and llama.cpp's waiting workers spin on a busy machine.
const context = await model.createEmbeddingContext({contextSize: 128, threads: 1});
for (const text of texts) {
  const e = await context.getEmbeddingFor(text);
  console.log(JSON.stringify(Array.from(e.vector)));
}
await context.dispose();
await model.dispose();
await llama.dispose();
