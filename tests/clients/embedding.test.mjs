// An embedding model (tiny-bert, created with -q F32) through the official clients: ollama-js's
// embed and embeddings, and the openai SDK's embeddings.create (which asks for base64 floats),
// give reference.json's mean-pooled, normalized vectors; generation is refused as Ollama refuses
// it.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { Ollama } from "ollama";
import OpenAI from "openai";
import { corralBinary, startServer, testdataPath } from "./harness.mjs";

let server;
let ollama;
let openai;
const cases = JSON.parse(
  fs.readFileSync(testdataPath("reference/tiny-bert/reference.json"), "utf8"),
).cases;

before(async () => {
  server = await startServer();
  ollama = new Ollama({ host: server.url });
  openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 });
  // Made in the server's store directly (the server reads manifests per request).
  const modelfile = path.join(server.modelsDir, "..", "Modelfile.bert");
  fs.writeFileSync(modelfile, `FROM ${testdataPath("reference/tiny-bert")}\n`);
  execFileSync(corralBinary, ["create", "bert", "-q", "F32", "-f", modelfile], {
    env: { ...process.env, CORRAL_MODELS: server.modelsDir, CORRAL_NO_SERVER: "1" },
    stdio: "ignore",
  });
});

after(async () => {
  await server?.stop();
});

function assertClose(got, want, tol = 1e-4) {
  assert.equal(got.length, want.length);
  for (let i = 0; i < want.length; i++) {
    assert.ok(Math.abs(got[i] - want[i]) <= tol, `[${i}] ${got[i]} vs ${want[i]}`);
  }
}

test("ollama-js: embed (a batch) and embeddings give the reference vectors", async () => {
  const r = await ollama.embed({ model: "bert", input: cases.map((c) => c.text) });
  assert.equal(r.embeddings.length, cases.length);
  cases.forEach((c, i) => assertClose(r.embeddings[i], c.mean_pooled_normalized));
  const legacy = await ollama.embeddings({ model: "bert", prompt: cases[0].text });
  assertClose(legacy.embedding, cases[0].mean_pooled_normalized);
  const show = await ollama.show({ model: "bert" });
  assert.deepEqual(show.capabilities, ["embedding"]);
  await assert.rejects(ollama.generate({ model: "bert", prompt: "hello", stream: false }), (e) => {
    assert.equal(e.status_code, 400);
    assert.equal(e.error, '"bert" does not support generate');
    return true;
  });
});

test("openai SDK: embeddings.create (base64 by default, and float) gives the reference vectors", async () => {
  const input = cases.map((c) => c.text);
  const r = await openai.embeddings.create({ model: "bert", input });
  assert.equal(r.data.length, cases.length);
  cases.forEach((c, i) => assertClose(r.data[i].embedding, c.mean_pooled_normalized));
  const f = await openai.embeddings.create({
    model: "bert",
    input: cases[1].text,
    encoding_format: "float",
    dimensions: 16,
  });
  assert.equal(f.data[0].embedding.length, 16);
  const norm = Math.sqrt(f.data[0].embedding.reduce((s, x) => s + x * x, 0));
  assert.ok(Math.abs(norm - 1) < 1e-4);
});
