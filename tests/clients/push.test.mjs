// Push to an OCI registry through the server: `stories` is copied to a name on a local
// docker-registry (Debian's, on a free loopback port), ollama-js pushes it with stream: true and
// sees Ollama's push statuses ending in success, the registry then serves the very manifest the
// store holds, the model pulled back after a delete still generates, `stream: false` answers one
// object, and `corral push` through the server (CORRAL_HOST) prints the same lines.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { Ollama } from "ollama";
import { startServer, corralBinary } from "./harness.mjs";
import { startRegistry } from "./registry.mjs";

let server;
let ollama;
let registry;

before(async () => {
  registry = await startRegistry();
  server = await startServer();
  ollama = new Ollama({ host: server.url });
});

after(async () => {
  await server?.stop();
  registry?.stop();
});

const manifestFile = (name, tag) =>
  path.join(server.modelsDir, "manifests", registry.host, "me", name, tag);

test("ollama.push streams Ollama's push statuses and the model comes back by pull", async () => {
  const model = `${registry.host}/me/stories:latest`;
  await ollama.copy({ source: "stories", destination: model });
  const stored = JSON.parse(fs.readFileSync(manifestFile("stories", "latest"), "utf8"));
  const ggufDigest = stored.layers[0].digest;

  const statuses = [];
  let sawProgress = false;
  for await (const p of await ollama.push({ model, insecure: true, stream: true })) {
    statuses.push(p.status);
    if (p.digest === ggufDigest && p.total > 0 && p.completed === p.total) sawProgress = true;
  }
  assert.equal(statuses[0], "retrieving manifest");
  assert.ok(statuses.includes(`pushing ${ggufDigest.slice(7, 19)}`), statuses.join("\n"));
  assert.ok(sawProgress);
  assert.deepEqual(statuses.slice(-2), ["pushing manifest", "success"]);

  const r = await fetch(`http://${registry.host}/v2/me/stories/manifests/latest`, {
    headers: { Accept: "application/vnd.docker.distribution.manifest.v2+json" },
  });
  assert.equal(r.status, 200);
  assert.equal(await r.text(), fs.readFileSync(manifestFile("stories", "latest"), "utf8"));

  await ollama.delete({ model });
  const pulled = [];
  for await (const p of await ollama.pull({ model, insecure: true, stream: true })) {
    pulled.push(p.status);
  }
  assert.equal(pulled.at(-1), "success");
  const g = await ollama.generate({ model, prompt: "Once upon a time", options: { num_predict: 8 } });
  assert.ok(g.response.length > 0);
});

test("a push with stream false answers one object", async () => {
  const model = `${registry.host}/me/quiet:latest`;
  await ollama.copy({ source: "stories", destination: model });
  const r = await ollama.push({ model, insecure: true, stream: false });
  assert.equal(r.status, "success");
});

test("a push without insecure does not fall back to http", async () => {
  const model = `${registry.host}/me/secure:latest`;
  await ollama.copy({ source: "stories", destination: model });
  await assert.rejects(
    ollama.push({ model }),
    (e) => /https:\/\//.test(e.error) && /--insecure/.test(e.error),
  );
});

test("corral push goes through the server when one answers", async () => {
  const model = `${registry.host}/me/cli:latest`;
  await ollama.copy({ source: "stories", destination: model });
  const out = execFileSync(corralBinary, ["push", model, "--insecure"], {
    env: { ...process.env, CORRAL_HOST: server.host },
    encoding: "utf8",
  });
  assert.match(out, /^retrieving manifest\n/);
  // The GGUF is in me/stories already (the first test), so it is mounted, shown complete.
  assert.match(out, /pushing [0-9a-f]{12} 100%/);
  assert.match(out, /pushing manifest\nsuccess\n$/);
});
