// Greedy generation with llama.cpp (through node-llama-cpp's prebuilt CPU binary), for checking
// that llama.cpp loads GGUF files corral writes and continues a prompt as corral does.
//
//   node generate.mjs MODEL.gguf "ID ID ID" N [MODEL.gguf "ID ..." N ...]
//
// For each (model, prompt, count) prints one line: the generated token ids, space-separated (N
// of them, fewer if the model ends the text). Token ids in and out, so no tokenizer text
// handling is involved. Several runs share one llama.cpp initialisation.
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

const args = process.argv.slice(2);
if (args.length === 0 || args.length % 3 !== 0) {
  console.error("usage: node generate.mjs MODEL.gguf \"PROMPT IDS\" N [MODEL \"IDS\" N ...]");
  process.exit(2);
}

// build "never": the npm postinstall step (which may build or download) is not run, so use the
// prebuilt binary of @node-llama-cpp/linux-x64 as installed; gpu false: the CPU build.
const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error});
for (let i = 0; i < args.length; i += 3) {
  const prompt = args[i + 1].trim().split(/\s+/).map(Number);
  const n = Number(args[i + 2]);
  const model = await llama.loadModel({modelPath: args[i], gpuLayers: 0});
  // One thread: the models are tiny, and llama.cpp's waiting worker threads spin, which on a
  // busy machine costs ten times the work itself.
  const context = await model.createContext({contextSize: 256, threads: 1});
  const out = [];
  if (n > 0) {
    for await (const token of context.getSequence().evaluate(prompt, {temperature: 0})) {
      out.push(token);
      if (out.length >= n || model.isEogToken(token)) break;
    }
  }
  console.log(out.join(" "));
  await context.dispose();
  await model.dispose();
}
await llama.dispose();
