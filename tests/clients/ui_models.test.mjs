// The chat page's models view (src/server/ui/web/js/models.js) in a real browser: the store's
// models with their details and capabilities, a pull from a local registry (Debian's
// docker-registry on loopback, as pull.test.mjs) with its progress bar moving, a pull that fails
// and one cancelled, deleting a model, its Modelfile, and `ps` showing a model a generate loaded.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import { startServer, testdataPath } from "./harness.mjs";
import { startRegistry } from "./registry.mjs";
import { startBrowser } from "./browser.mjs";

let server;
let registry;
let ui;
let gguf;
let ggufDigest;
// A loopback proxy in front of the registry that holds back the second half of the GGUF blob,
// trickling it until the page has shown a progress value between 0 and the whole (corral reports
// a download's progress at most every 100 ms, as bytes arrive), so that the test sees the bar
// move rather than jump from empty to full on a loopback-fast pull.
let proxy;
let showedProgress = false;

function startSlowProxy() {
  const upstream = registry.host.split(":");
  return new Promise((resolve) => {
    const s = http.createServer((req, res) => {
      const forward = http.request(
        {
          host: upstream[0],
          port: Number(upstream[1]),
          method: req.method,
          path: req.url,
          headers: { ...req.headers, host: registry.host },
        },
        async (up) => {
          res.writeHead(up.statusCode, up.headers);
          if (!(req.method === "GET" && req.url.endsWith(`/blobs/${ggufDigest}`))) {
            up.pipe(res);
            return;
          }
          const chunks = [];
          for await (const c of up) chunks.push(c);
          const body = Buffer.concat(chunks);
          let sent = Math.floor(body.length / 2);
          res.write(body.subarray(0, sent));
          while (sent < body.length && !showedProgress && !res.destroyed) {
            await new Promise((r) => setTimeout(r, 50));
            const next = Math.min(body.length, sent + 4096);
            res.write(body.subarray(sent, next));
            sent = next;
          }
          res.end(body.subarray(sent));
        },
      );
      forward.on("error", () => res.destroy());
      req.pipe(forward);
    });
    s.listen(0, "127.0.0.1", () => resolve(s));
  });
}

before(async () => {
  registry = await startRegistry();
  // The F16 file: the store already holds the F32 one as `stories`, and a blob the store holds is
  // not downloaded again.
  gguf = fs.readFileSync(testdataPath("tinystories260k/stories260K-f16.gguf"));
  const model = await registry.pushBlob("library/tiny", gguf);
  ggufDigest = model.digest;
  const config = await registry.pushBlob(
    "library/tiny",
    Buffer.from(JSON.stringify({ model_format: "gguf", model_family: "llama" })),
  );
  const manifest = {
    schemaVersion: 2,
    mediaType: "application/vnd.docker.distribution.manifest.v2+json",
    config: { mediaType: "application/vnd.docker.container.image.v1+json", ...config },
    layers: [{ mediaType: "application/vnd.ollama.image.model", ...model }],
  };
  const r = await fetch(`http://${registry.host}/v2/library/tiny/manifests/latest`, {
    method: "PUT",
    headers: { "Content-Type": manifest.mediaType },
    body: JSON.stringify(manifest),
  });
  assert.equal(r.status, 201, await r.text());
  proxy = await startSlowProxy();
  server = await startServer();
  ui = await startBrowser();
});

after(async () => {
  await ui?.close();
  await server?.stop();
  proxy?.close();
  registry?.stop();
});

const item = (page, name) => page.locator(`[data-testid="models-item"][data-model="${name}"]`);

async function openModels(t) {
  const page = await ui.page(t);
  if (!page) return null;
  await page.goto(`${server.url}/ui/#models`);
  await item(page, "stories:latest").waitFor();
  return page;
}

test("the models view lists the store with each model's details, Modelfile and parameters", async (t) => {
  const page = await openModels(t);
  if (!page) return;
  const stories = item(page, "stories:latest");
  const meta = await stories.getByTestId("models-meta").textContent();
  assert.match(meta, /^1\.2 MB · llama · .+ · F32$/);
  await stories.locator(".models-cap", { hasText: "completion" }).waitFor();

  await stories.getByTestId("models-details-toggle").click();
  const modelfile = await stories.getByTestId("models-modelfile").textContent();
  assert.match(modelfile, /^FROM /m);
  assert.match(await stories.getByTestId("models-details").textContent(), /F32/);
  await ui.screenshot(page, "models-view");
  assert.deepEqual(page.problems, []);
});

test("a pull from a local registry moves the progress bar, lists the model, and delete removes it", async (t) => {
  const page = await openModels(t);
  if (!page) return;
  const name = `127.0.0.1:${proxy.address().port}/library/tiny:latest`;
  // Every value the progress bar is given, as the page sets it.
  await page.evaluate(() => {
    const bar = document.querySelector('[data-testid="models-pull-bar"]');
    window.barValues = [];
    new MutationObserver(() => window.barValues.push([bar.value, bar.max])).observe(bar, {
      attributes: true,
      attributeFilter: ["value", "max"],
    });
  });
  await page.getByTestId("models-pull-name").fill(name);
  await page.getByTestId("models-pull-insecure").check();
  await page.getByTestId("models-pull-start").click();
  // Part of the blob, shown as such (bar and text), while the rest is held back.
  await page.waitForFunction((total) => {
    const bar = document.querySelector('[data-testid="models-pull-bar"]');
    return bar.max === total && bar.value > 0 && bar.value < total;
  }, gguf.length);
  assert.match(await page.getByTestId("models-pull-status").textContent(), /pulling [0-9a-f]{12} · \d+ kB \/ 601 kB/);
  showedProgress = true;
  await page.getByTestId("models-pull-status").filter({ hasText: `pulled ${name}` }).waitFor();
  const values = await page.evaluate(() => window.barValues);
  t.diagnostic(`progress bar (value, max): ${JSON.stringify(values)}`);
  // The blob's progress went up to its size, through values on the way.
  const ofBlob = values.filter(([, max]) => max === gguf.length).map(([v]) => v);
  assert.equal(ofBlob.at(-1), gguf.length);
  assert.ok(ofBlob.some((v) => v > 0 && v < gguf.length), JSON.stringify(values));
  for (let i = 1; i < ofBlob.length; i++) assert.ok(ofBlob[i] >= ofBlob[i - 1], JSON.stringify(values));
  await item(page, name).waitFor();
  await ui.screenshot(page, "models-pulled");

  page.on("dialog", (d) => d.accept());
  await item(page, name).getByTestId("models-delete").click();
  await item(page, name).waitFor({ state: "detached" });
  const tags = await (await fetch(`${server.url}/api/tags`)).json();
  assert.ok(!tags.models.some((m) => m.name === name));
  assert.equal(await item(page, "stories:latest").count(), 1);
  assert.deepEqual(page.problems, []);
});

test("a pull that fails shows the server's error; a pull can be cancelled", async (t) => {
  const page = await openModels(t);
  if (!page) return;
  await page.getByTestId("models-pull-name").fill(`${registry.host}/library/missing:latest`);
  await page.getByTestId("models-pull-insecure").check();
  await page.getByTestId("models-pull-start").click();
  const error = page.getByTestId("models-error");
  await error.waitFor();
  assert.match(await error.textContent(), /missing/);
  assert.match(await page.getByTestId("models-pull-status").textContent(), /failed/);

  // A registry that never answers: the pull waits on its manifest until cancelled.
  const held = [];
  const silent = http.createServer((req, res) => held.push(res));
  await new Promise((resolve) => silent.listen(0, "127.0.0.1", resolve));
  t.after(() => {
    for (const res of held) res.destroy();
    silent.close();
  });
  await page.getByTestId("models-pull-name").fill(`127.0.0.1:${silent.address().port}/library/slow:latest`);
  await page.getByTestId("models-pull-start").click();
  await page.getByTestId("models-pull-cancel").waitFor();
  // The server asked the registry for the manifest before the user gives up.
  for (let i = 0; held.length === 0; i++) {
    assert.ok(i < 500, "the pull never reached the registry");
    await new Promise((r) => setTimeout(r, 20));
  }
  await page.getByTestId("models-pull-cancel").click();
  await page.getByTestId("models-pull-status").filter({ hasText: "cancelled" }).waitFor();
  assert.equal(await page.getByTestId("models-pull-start").isDisabled(), false);
});

test("ps shows the model a generate loaded, its size and until when", async (t) => {
  const page = await openModels(t);
  if (!page) return;
  await page.getByTestId("models-ps-empty").waitFor();
  const r = await fetch(`${server.url}/api/generate`, {
    method: "POST",
    body: JSON.stringify({ model: "stories", prompt: "Once", stream: false, keep_alive: "10m", options: { num_predict: 4 } }),
  });
  assert.equal(r.status, 200, await r.text());
  // Refreshed every few seconds while the view is on screen.
  const row = page.locator('[data-testid="models-ps-item"][data-model="stories:latest"]');
  await row.waitFor({ timeout: 15000 });
  const text = await row.textContent();
  assert.match(text, /MB/);
  assert.match(text, /until .* \(in (9|10) min\)/);
  await ui.screenshot(page, "models-ps");
  assert.deepEqual(page.problems, []);
});
