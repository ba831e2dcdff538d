#!/usr/bin/env node
// Batched decode through `corral serve`: the aggregate generation rate of N concurrent greedy
// /api/generate requests (different prompts, num_predict tokens each, streamed as clients do)
// against one request alone, on a GGUF file of your choice (issue 19: llama-3.2-1b Q4_0 made by
// `corral debug synth llama-3.2-1b --type Q4_0`). Starts its own server on a free loopback port
// over a fresh store (removed at exit) with CORRAL_NUM_PARALLEL = the largest N, loads the model
// once, then for each N runs rounds of N requests at once. The rate is the tokens generated over
// the wall time from the first request sent to the last response ended. Every concurrent
// response's text must equal the text of its prompt alone (N = 1 runs every prompt first);
// a difference is printed and the exit status is 1.
//
//   node bench/parallel_serve.mjs --model /tmp/l1b.gguf [--corral build/corral] [--n 1,2,4,8]
//                                 [--tokens 64] [--rounds 2] [--prompts short|long] [--json]
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
};
const corral = path.resolve(flag('--corral', path.join(here, '..', 'build', 'corral')));
const modelFile = flag('--model', null);
if (!modelFile || !fs.existsSync(modelFile)) {
  console.error('usage: node bench/parallel_serve.mjs --model FILE.gguf [--n 1,2,4,8] ...');
  process.exit(2);
}
const ns = flag('--n', '1,2,4,8').split(',').map(Number);
const tokens = Number(flag('--tokens', 64));
const rounds = Number(flag('--rounds', 2));
const asJson = args.includes('--json');
const log = (...a) => { if (!asJson) console.log(...a); };
const maxN = Math.max(...ns);

// Short prompts by default (a few words: about 8-12 tokens, as `corral bench --parallel` uses 8),
// so that the two figures measure the same work; `--prompts long` takes sentences (20-30 tokens
// on the synthetic models' tokenizer), where the compute-bound prefill of N prompts is a larger
// part of a 64-token reply.
const promptSets = {
  short: ['Once upon a time', 'The printing press', 'Tomato soup recipe:', 'Thermodynamics is',
          'In the year 2150', 'Autumn leaves poem:', 'Cats and dogs', 'A wooden bookshelf'],
  long: [
    'Once upon a time, in a small village by the sea,',
    'The history of the printing press begins',
    'Here is a recipe for a simple tomato soup:',
    'The three laws of thermodynamics are',
    'In the year 2150, the first city on Mars',
    'A short poem about autumn leaves:',
    'The main differences between cats and dogs are',
    'To build a wooden bookshelf, you will need',
  ],
};
const prompts = promptSets[flag('--prompts', 'short')];
if (!prompts) {
  console.error('--prompts: short or long');
  process.exit(2);
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'corral-parallel-serve-'));
const env = { ...process.env, CORRAL_MODELS: path.join(work, 'models'), CORRAL_NO_SERVER: '1' };
const mf = path.join(work, 'Modelfile');
fs.writeFileSync(mf, `FROM ${path.resolve(modelFile)}\n`);
execFileSync(corral, ['create', 'bench', '-f', mf], { env, stdio: 'ignore' });

const server = spawn(corral, ['serve'], {
  env: { ...env, CORRAL_HOST: '127.0.0.1:0', CORRAL_NUM_PARALLEL: String(maxN) },
  stdio: ['ignore', 'pipe', 'pipe'],
});
const cleanup = () => {
  server.kill();
  fs.rmSync(work, { recursive: true, force: true });
};
process.on('exit', cleanup);
let serverLog = '';
server.stderr.on('data', (d) => { serverLog = (serverLog + d).slice(-20000); });
const port = await new Promise((resolve, reject) => {
  let out = '';
  server.stdout.on('data', (d) => {
    out += d;
    const m = out.match(/listening on .*:(\d+)/);
    if (m) resolve(Number(m[1]));
  });
  server.on('exit', (code) => reject(new Error(`corral serve exited (${code}): ${serverLog}`)));
});
const base = `http://127.0.0.1:${port}`;

// One streamed request: its text and generated token count.
async function generate(prompt) {
  const r = await fetch(`${base}/api/generate`, {
    method: 'POST',
    body: JSON.stringify({ model: 'bench', prompt, raw: true,
                           options: { temperature: 0, num_predict: tokens } }),
  });
  if (r.status !== 200) throw new Error(`/api/generate: ${r.status} ${await r.text()}`);
  let text = '', evalCount = 0, promptCount = 0, rest = '';
  for await (const chunk of r.body) {
    rest += Buffer.from(chunk).toString('utf8');
    let nl;
    while ((nl = rest.indexOf('\n')) >= 0) {
      const line = rest.slice(0, nl);
      rest = rest.slice(nl + 1);
      if (!line.trim()) continue;
      const j = JSON.parse(line);
      if (j.error) throw new Error(j.error);
      text += j.response || '';
      if (j.done) {
        evalCount = j.eval_count;
        promptCount = j.prompt_eval_count;
      }
    }
  }
  return { text, evalCount, promptCount };
}

await generate('Hi');  // loads the model; its first steps make plans and packed weights

const alone = new Map();
const results = {};
let mismatches = 0;
for (const n of ns) {
  let generated = 0, ms = 0, promptTokens = 0, requests = 0;
  for (let round = 0; round < rounds; ++round) {
    // Rounds rotate the prompts; a prompt seen before reuses its cells (its prefill is a few
    // tokens either way).
    const batch = Array.from({ length: n }, (_, i) => prompts[(round * n + i) % prompts.length]);
    const t0 = performance.now();
    const outs = await Promise.all(batch.map(generate));
    ms += performance.now() - t0;
    outs.forEach((o, i) => {
      generated += o.evalCount;
      promptTokens += o.promptCount;
      ++requests;
      const p = batch[i];
      if (n === 1 || !alone.has(p)) {
        if (n === 1) alone.set(p, o.text);
      } else if (alone.get(p) !== o.text) {
        ++mismatches;
        log(`MISMATCH n=${n} prompt ${JSON.stringify(p)}:\n alone: ${JSON.stringify(alone.get(p))}` +
            `\n batch: ${JSON.stringify(o.text)}`);
      }
    });
  }
  if (n === 1) {
    // Every prompt alone, for the comparisons of the larger batches.
    for (const p of prompts) if (!alone.has(p)) alone.set(p, (await generate(p)).text);
  }
  results[n] = { tokens: generated, seconds: ms / 1e3, tok_s: generated / (ms / 1e3),
                 prompt_tokens: promptTokens / requests };
  log(`n=${n}: ${generated} tokens in ${(ms / 1e3).toFixed(2)} s ` +
      `(prompts of ${results[n].prompt_tokens.toFixed(1)} tokens on average): ` +
      `${results[n].tok_s.toFixed(2)} tok/s aggregate` +
      (results[1] && n > 1 ? ` (${(results[n].tok_s / results[1].tok_s).toFixed(2)}x one)` : ''));
}
if (asJson) console.log(JSON.stringify({ results, mismatches }));
log(mismatches ? `${mismatches} texts differ from their prompt alone` : 'every text equals its text alone');
process.exit(mismatches ? 1 : 0);
