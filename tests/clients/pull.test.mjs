// Pull from an OCI registry through the server: Debian's docker-registry on a free loopback port
// holds library/stories:latest (the stories260K GGUF and a config blob, pushed here with plain
// HTTP calls), ollama-js pulls it with stream: true and sees Ollama's statuses, the model then
// answers /api/generate, and `corral pull` through the server (CORRAL_HOST) prints the same lines.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { Ollama } from "ollama";
import { startServer, testdataPath, corralBinary } from "./harness.mjs";
import { startRegistry } from "./registry.mjs";

let server;
let ollama;
let registry;
let registryHost;
let ggufDigest;

before(async () => {
  registry = await startRegistry();
  registryHost = registry.host;
  const gguf = fs.readFileSync(testdataPath("tinystories260k/stories260K-f32.gguf"));
  const model = await registry.pushBlob("library/stories", gguf);
  ggufDigest = model.digest;
  const config_ = await registry.pushBlob(
    "library/stories",
    Buffer.from(JSON.stringify({ model_format: "gguf", model_family: "llama" })),
  );
  const manifest = {
    schemaVersion: 2,
    mediaType: "application/vnd.docker.distribution.manifest.v2+json",
    config: { mediaType: "application/vnd.docker.container.image.v1+json", ...config_ },
    layers: [{ mediaType: "application/vnd.ollama.image.model", ...model }],
  };
  for (const tag of ["latest", "again"]) {
    const r = await fetch(`http://${registryHost}/v2/library/stories/manifests/${tag}`, {
      method: "PUT",
      headers: { "Content-Type": manifest.mediaType },
      body: JSON.stringify(manifest),
    });
    assert.equal(r.status, 201, await r.text());
  }
  server = await startServer();
  ollama = new Ollama({ host: server.url });
});

after(async () => {
  await server?.stop();
  registry?.stop();
});

test("ollama.pull streams Ollama's statuses and the pulled model generates", async () => {
  const model = `${registryHost}/library/stories:latest`;
  const statuses = [];
  let sawProgress = false;
  for await (const p of await ollama.pull({ model, insecure: true, stream: true })) {
    statuses.push(p.status);
    if (p.digest === ggufDigest && p.total > 0 && p.completed === p.total) sawProgress = true;
  }
  assert.equal(statuses[0], "pulling manifest");
  assert.ok(statuses.includes(`pulling ${ggufDigest.slice(7, 19)}`), statuses.join("\n"));
  assert.ok(sawProgress);
  assert.deepEqual(statuses.slice(-3), ["verifying sha256 digest", "writing manifest", "success"]);
  const list = await ollama.list();
  assert.ok(list.models.some((m) => m.name === model));
  const r = await ollama.generate({ model, prompt: "Once upon a time", options: { num_predict: 8 } });
  assert.ok(r.response.length > 0);
});

test("a pull without insecure does not fall back to http", async () => {
  await assert.rejects(
    ollama.pull({ model: `${registryHost}/library/stories:latest` }),
    (e) => /https:\/\//.test(e.error) && /--insecure/.test(e.error),
  );
});

test("corral pull goes through the server when one answers", () => {
  const out = execFileSync(
    corralBinary,
    ["pull", `${registryHost}/library/stories:again`, "--insecure"],
    { env: { ...process.env, CORRAL_HOST: server.host }, encoding: "utf8" },
  );
  assert.match(out, /^pulling manifest\n/);
  assert.match(out, /verifying sha256 digest\nwriting manifest\nsuccess\n$/);
  assert.ok(fs.existsSync(path.join(server.modelsDir, "manifests", registryHost, "library", "stories", "again")));
});
