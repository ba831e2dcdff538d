// Ollama's management API through the official JavaScript client (ollama-js): version, list,
// show, ps, copy, delete, and create from uploaded blobs (a GGUF, or a safetensors checkpoint)
// or from another model.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { Ollama } from "ollama";
import { startServer, testdataPath } from "./harness.mjs";

let server;
let ollama;

before(async () => {
  server = await startServer();
  ollama = new Ollama({ host: server.url });
});

after(async () => {
  await server?.stop();
});

const sha256 = (bytes) => "sha256:" + createHash("sha256").update(bytes).digest("hex");

// ollama-js has no blob upload; Ollama's CLI does HEAD then POST /api/blobs/:digest.
async function uploadBlob(bytes) {
  const digest = sha256(bytes);
  const head = await fetch(`${server.url}/api/blobs/${digest}`, { method: "HEAD" });
  if (head.status === 404) {
    const post = await fetch(`${server.url}/api/blobs/${digest}`, { method: "POST", body: bytes });
    assert.equal(post.status, 201, await post.text());
  } else {
    assert.equal(head.status, 200);
  }
  return digest;
}

const names = async () => (await ollama.list()).models.map((m) => m.name).sort();

test("version answers a version number", async () => {
  const v = await ollama.version();
  assert.match(v.version, /^\d+\.\d+\.\d+/);
});

test("the root answers that the server is running", async () => {
  const r = await fetch(`${server.url}/`);
  assert.equal(r.status, 200);
  assert.match(await r.text(), /is running/);
  const head = await fetch(`${server.url}/`, { method: "HEAD" });
  assert.equal(head.status, 200);
});

test("list shows the models in the store with Ollama's fields", async () => {
  const { models } = await ollama.list();
  const byName = Object.fromEntries(models.map((m) => [m.name, m]));
  assert.deepEqual(Object.keys(byName).sort(), ["qwen:latest", "stories:latest"]);
  const stories = byName["stories:latest"];
  assert.equal(stories.model, "stories:latest");
  assert.match(stories.digest, /^[0-9a-f]{64}$/);
  const gguf = fs.statSync(testdataPath("tinystories260k/stories260K-f32.gguf")).size;
  assert.ok(stories.size > gguf, `size ${stories.size} counts the model file (${gguf} bytes)`);
  assert.ok(Date.now() - new Date(stories.modified_at).getTime() < 3600e3);
  assert.equal(stories.details.format, "gguf");
  assert.equal(stories.details.family, "llama");
  assert.equal(stories.details.quantization_level, "F32");
  assert.equal(byName["qwen:latest"].details.family, "qwen2");
  const head = await fetch(`${server.url}/api/tags`, { method: "HEAD" });
  assert.equal(head.status, 200);
});

test("show describes a model from its GGUF metadata", async () => {
  const s = await ollama.show({ model: "stories" });
  assert.equal(s.details.family, "llama");
  assert.equal(s.model_info["general.architecture"], "llama");
  assert.equal(s.model_info["llama.block_count"], 5);
  assert.ok(s.model_info["general.parameter_count"] > 200000);
  assert.equal(s.model_info["tokenizer.ggml.tokens"], null, "arrays only when verbose");
  assert.ok(s.capabilities.includes("completion"));
  assert.match(s.modelfile, /^FROM \/.*sha256-[0-9a-f]{64}$/m);
  assert.ok(!Number.isNaN(new Date(s.modified_at).getTime()));

  const verbose = await ollama.show({ model: "stories", verbose: true });
  assert.equal(verbose.model_info["tokenizer.ggml.tokens"].length, 512);
  assert.ok(verbose.tensors.some((t) => t.name === "token_embd.weight"));
});

test("show gives a converted model's chat template", async () => {
  const s = await ollama.show({ model: "qwen" });
  assert.equal(s.details.family, "qwen2");
  assert.match(s.template, /im_start/);
});

test("ps lists no model before one is used", async () => {
  const { models } = await ollama.ps();
  assert.deepEqual(models, []);
});

test("copy makes a second name and delete removes only that name", async () => {
  await ollama.copy({ source: "stories", destination: "me/stories-copy:v1" });
  assert.deepEqual(await names(), ["me/stories-copy:v1", "qwen:latest", "stories:latest"]);
  const copy = await ollama.show({ model: "me/stories-copy:v1" });
  assert.equal(copy.model_info["general.architecture"], "llama");

  await ollama.delete({ model: "me/stories-copy:v1" });
  assert.deepEqual(await names(), ["qwen:latest", "stories:latest"]);
  // The blobs the original still uses are kept.
  const s = await ollama.show({ model: "stories" });
  assert.equal(s.details.family, "llama");
  await assert.rejects(ollama.delete({ model: "me/stories-copy:v1" }), { status_code: 404 });
});

test("create from an uploaded GGUF blob with template, system, parameters and license", async () => {
  const bytes = fs.readFileSync(testdataPath("tinystories260k/stories260K-f32.gguf"));
  const digest = await uploadBlob(bytes);
  const head = await fetch(`${server.url}/api/blobs/${digest}`, { method: "HEAD" });
  assert.equal(head.status, 200);

  const r = await ollama.create({
    model: "uploaded",
    files: { "stories260K-f32.gguf": digest },
    template: "{{ .Prompt }}",
    system: "You tell short stories.",
    parameters: { temperature: 0.5, stop: ["<end>", "\n\n"], num_ctx: 256 },
    license: "MIT",
    messages: [{ role: "user", content: "Once upon a time" }],
  });
  assert.equal(r.status, "success");

  const s = await ollama.show({ model: "uploaded" });
  assert.equal(s.system, "You tell short stories.");
  assert.equal(s.template, "{{ .Prompt }}");
  assert.equal(s.license, "MIT");
  assert.match(s.parameters, /^temperature +0\.5$/m);
  assert.match(s.parameters, /^stop +"<end>"$/m);
  assert.match(s.parameters, /^num_ctx +256$/m);
  assert.deepEqual(s.messages, [{ role: "user", content: "Once upon a time" }]);
  assert.equal(s.details.family, "llama");
  const model = (await ollama.list()).models.find((m) => m.name === "uploaded:latest");
  assert.ok(model, "the new model is listed");
  await ollama.delete({ model: "uploaded" });
});

test("create streams its progress and ends with success", async () => {
  const stream = await ollama.create({ model: "derived", from: "stories", stream: true });
  const statuses = [];
  for await (const part of stream) statuses.push(part.status);
  assert.equal(statuses.at(-1), "success");
  assert.ok(statuses.includes("writing manifest"), statuses.join(", "));
  await ollama.delete({ model: "derived" });
});

test("create from another model replaces its system prompt and quantizes", async () => {
  const r = await ollama.create({
    model: "stories-q8",
    from: "stories",
    system: "Be brief.",
    quantize: "Q8_0",
  });
  assert.equal(r.status, "success");
  const s = await ollama.show({ model: "stories-q8" });
  assert.equal(s.system, "Be brief.");
  assert.equal(s.details.quantization_level, "Q8_0");
  await ollama.delete({ model: "stories-q8" });
  // The base model is untouched.
  assert.equal((await ollama.show({ model: "stories" })).details.quantization_level, "F32");
});

test("create from uploaded safetensors files converts the checkpoint", async () => {
  const folder = testdataPath("reference/tiny-qwen2");
  const files = {};
  for (const name of ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]) {
    files[name] = await uploadBlob(fs.readFileSync(path.join(folder, name)));
  }
  const r = await ollama.create({ model: "qwen-upload", files });
  assert.equal(r.status, "success");
  const s = await ollama.show({ model: "qwen-upload" });
  assert.equal(s.details.family, "qwen2");
  assert.equal(s.details.quantization_level, "F16");
  await ollama.delete({ model: "qwen-upload" });
});

test("push of a model the store lacks is a 404 naming it", async () => {
  await assert.rejects(ollama.push({ model: "no-such-model" }), (e) => {
    assert.equal(e.status_code, 404);
    assert.match(e.error, /no-such-model/);
    return true;
  });
});
