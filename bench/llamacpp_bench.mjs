// llama.cpp's side of bench/compare_llamacpp.sh, through node-llama-cpp's prebuilt CPU binary:
// the same two tests as `corral bench`, timed the same way.
//
//   node llamacpp_bench.mjs MODEL.gguf THREADS [P=512] [N=128] [REPS=1]
//
// pp<P>: one evaluation of P random tokens in one sequence from an empty context (batch size P,
// so one batch as corral's num_batch 512 gives); tg<N>: N single-token decode steps after a
// one-token prompt. One warm-up of each, then REPS timed runs; prints one JSON object per test
// with the fields of `corral bench --json`.
//
// Each decode step of tg is one call from JavaScript into the native addon, which adds a fixed
// cost per token (about a millisecond): it dominates tg on tiny models such as stories260K, so
// compare tg there with that in mind; on a 1B model it is a few percent.
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

const [modelPath, threadsArg, pArg = "512", nArg = "128", repsArg = "1"] = process.argv.slice(2);
if (!modelPath || !threadsArg) {
  console.error("usage: node llamacpp_bench.mjs MODEL.gguf THREADS [P] [N] [REPS]");
  process.exit(2);
}
const threads = Number(threadsArg), nPrompt = Number(pArg), nGen = Number(nArg);
const reps = Number(repsArg);

// build "never": use the prebuilt binary of @node-llama-cpp/linux-x64 as installed.
const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error});
const model = await llama.loadModel({modelPath, gpuLayers: 0});
const contextSize = Math.max(nPrompt, nGen + 1, 64);
const context = await model.createContext({
  contextSize,
  batchSize: Math.max(nPrompt, 1),
  threads,
});
const sequence = context.getSequence();

// A fixed-seed generator (mulberry32), so each run evaluates the same ids.
let seed = 42;
function random() {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
// Ids below the vocabulary size; every model has at least 256 (the byte tokens).
const ggmlTokens = model.fileInfo?.metadata?.tokenizer?.ggml?.tokens;
const vocab = Array.isArray(ggmlTokens) && ggmlTokens.length > 0 ? ggmlTokens.length : 256;
const randomTokens = (n) => Array.from({length: n}, () => Math.floor(random() * vocab));

async function timeIt(fn) {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0);
}

function report(test, nP, nG, samplesNs) {
  const n = nP + nG;
  const ts = samplesNs.map((ns) => (n * 1e9) / ns);
  const avg = ts.reduce((a, b) => a + b, 0) / ts.length;
  const sd = ts.length < 2 ? 0 :
      Math.sqrt(ts.reduce((a, b) => a + (b - avg) * (b - avg), 0) / (ts.length - 1));
  console.log(JSON.stringify({
    model_path: modelPath, backend: "CPU (llama.cpp)",
    n_threads: threads, test, n_prompt: nP, n_gen: nG, avg_ts: avg, stddev_ts: sd,
    samples_ns: samplesNs, samples_ts: ts,
  }));
}

if (nPrompt > 0) {
  const tokens = randomTokens(nPrompt);
  const samples = [];
  for (let rep = -1; rep < reps; ++rep) {
    await sequence.clearHistory();
    const ns = await timeIt(() => sequence.evaluateWithoutGeneratingNewTokens(tokens));
    if (rep >= 0) samples.push(ns);
  }
  report("pp" + nPrompt, nPrompt, 0, samples);
}
if (nGen > 0) {
  const tokens = randomTokens(nGen + 1);
  const samples = [];
  for (let rep = -1; rep < reps; ++rep) {
    await sequence.clearHistory();
    await sequence.evaluateWithoutGeneratingNewTokens([tokens[0]]);
    const ns = await timeIt(async () => {
      for (let i = 1; i <= nGen; ++i) {
        await sequence.evaluateWithoutGeneratingNewTokens([tokens[i]]);
      }
    });
    if (rep >= 0) samples.push(ns);
  }
  report("tg" + nGen, 0, nGen, samples);
}
await context.dispose();
await model.dispose();
await llama.dispose();
