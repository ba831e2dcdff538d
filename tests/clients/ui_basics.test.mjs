// The chat page's serving and safety in a real browser (tests/clients/browser.mjs): /ui/ loads
// with no console error under its Content-Security-Policy, `/` still answers probes, the headers
// of the page's files, a page on a foreign origin can neither read the API nor post to it, a
// foreign Host (DNS rebinding) is refused, and with CORRAL_API_KEY the page asks for the key once
// and keeps it.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { startServer } from "./harness.mjs";
import { startBrowser } from "./browser.mjs";

let server;
let ui;
// A page on another origin, as any web site the user visits: http://evil.test:<port>, which the
// browser resolves to a second loopback server (Chromium's host resolver rules, below). Ollama's
// default CORS list allows http://127.0.0.1 and http://localhost on any port, so a foreign origin
// needs a name of its own.
let evil;
let evilPort;

const evilPage = `<!doctype html><html><head><meta charset="utf-8"><title>elsewhere</title></head>
<body><p>another site</p></body></html>`;

before(async () => {
  server = await startServer();
  evil = http.createServer((req, res) => {
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
    res.end(evilPage);
  });
  await new Promise((resolve) => evil.listen(0, "127.0.0.1", resolve));
  evilPort = evil.address().port;
  ui = await startBrowser({ args: ["--host-resolver-rules=MAP evil.test 127.0.0.1"] });
});

after(async () => {
  await ui?.close();
  await server?.stop();
  evil?.close();
});

test("the page loads at /ui/ with no console error; / still says corral is running", async (t) => {
  const page = await ui.page(t);
  if (!page) return;
  const response = await page.goto(`${server.url}/ui/`);
  assert.equal(response.status(), 200);
  await page.waitForLoadState("networkidle");
  // Every script module of the page loaded (an error would be a console error or page error).
  assert.deepEqual(page.problems, []);
  await ui.screenshot(page, "basics-page");

  const root = await fetch(`${server.url}/`);
  assert.equal(root.status, 200);
  assert.equal(await root.text(), "corral is running");
});

test("the page's files carry their type, an ETag, and the security headers", async () => {
  const r = await fetch(`${server.url}/ui/`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("content-type"), "text/html; charset=utf-8");
  const csp = r.headers.get("content-security-policy");
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'(;|$)/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.equal(r.headers.get("x-content-type-options"), "nosniff");
  assert.equal(r.headers.get("referrer-policy"), "no-referrer");
  assert.equal(r.headers.get("cache-control"), "no-cache");
  const etag = r.headers.get("etag");
  assert.match(etag, /^"[0-9a-f]{32}"$/);
  const html = await r.text();
  assert.match(html, /<html/i);

  const again = await fetch(`${server.url}/ui/index.html`, { headers: { "If-None-Match": etag } });
  assert.equal(again.status, 304);
  assert.equal(await again.text(), "");

  for (const [file, type] of [
    ["js/api.js", "text/javascript; charset=utf-8"],
    ["vendor/marked.js", "text/javascript; charset=utf-8"],
    ["vendor/purify.js", "text/javascript; charset=utf-8"],
    ["models.css", "text/css; charset=utf-8"],
  ]) {
    const f = await fetch(`${server.url}/ui/${file}`);
    assert.equal(f.status, 200, file);
    assert.equal(f.headers.get("content-type"), type, file);
    assert.ok((await f.text()).length > 0, file);
  }

  const redirect = await fetch(`${server.url}/ui`, { redirect: "manual" });
  assert.equal(redirect.status, 308);
  assert.equal(redirect.headers.get("location"), "/ui/");

  const missing = await fetch(`${server.url}/ui/nothing.js`);
  assert.equal(missing.status, 404);
  assert.equal(typeof (await missing.json()).error, "string");
});

// A raw request, so that the Host header is the one given (fetch sets its own).
function rawGet(path, host) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: "127.0.0.1", port: server.port, path, headers: { Host: host } },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode, body }));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

test("a foreign Host header is refused for the page as for the API", async () => {
  for (const path of ["/ui/", "/ui/js/api.js", "/api/tags"]) {
    const r = await rawGet(path, "evil.example:80");
    assert.equal(r.status, 403, path);
    assert.match(JSON.parse(r.body).error, /not allowed/);
  }
  assert.equal((await rawGet("/ui/", `localhost:${server.port}`)).status, 200);
});

test("a page on another origin cannot read the API or post a chat", async (t) => {
  const page = await ui.page(t);
  if (!page) return;
  await page.goto(`http://evil.test:${evilPort}/`);
  const results = await page.evaluate(async (api) => {
    const attempt = async (url, init) => {
      try {
        const r = await fetch(url, init);
        return `read ${r.status}: ${await r.text()}`;
      } catch (e) {
        return `refused: ${e.name}`;
      }
    };
    return {
      tags: await attempt(`${api}/api/tags`),
      chat: await attempt(`${api}/api/chat`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ model: "stories", messages: [{ role: "user", content: "hi" }] }),
      }),
      // A "simple" request goes without a preflight; the server refuses it by its Origin.
      simple: await attempt(`${api}/api/chat`, {
        method: "POST",
        headers: { "Content-Type": "text/plain" },
        body: JSON.stringify({ model: "stories", messages: [{ role: "user", content: "hi" }], stream: false }),
      }),
    };
  }, server.url);
  assert.equal(results.tags, "refused: TypeError");
  assert.equal(results.chat, "refused: TypeError");
  assert.equal(results.simple, "refused: TypeError");
  // The server refused the simple POST by its Origin without generating: no model was loaded
  // (with stream: false the answer would have come after the generation).
  assert.deepEqual((await (await fetch(`${server.url}/api/ps`)).json()).models, []);
  assert.doesNotMatch(server.output(), /\| 200 \| [^|]+ \| POST \/api\/chat/);

  // The page itself under a rebinding name: the browser would send Host: evil.test.
  const rebound = await page.goto(`http://evil.test:${server.port}/ui/`);
  assert.equal(rebound.status(), 403);
});

test("with CORRAL_API_KEY the page asks for the key once, lists models, and keeps the key", async (t) => {
  const keyed = await startServer({ env: { CORRAL_API_KEY: "s3cret-key" } });
  t.after(() => keyed.stop());
  // The page's files need no key; the API does.
  assert.equal((await fetch(`${keyed.url}/ui/`)).status, 200);
  assert.equal((await fetch(`${keyed.url}/api/tags`)).status, 401);

  const page = await ui.page(t);
  if (!page) return;
  const prompts = [];
  page.on("dialog", async (d) => {
    prompts.push(d.message());
    if (d.type() === "prompt") await d.accept(prompts.length === 1 ? "s3cret-key" : "");
    else await d.dismiss();
  });
  await page.goto(`${keyed.url}/ui/#models`);
  // The models view lists the store (through the key).
  await page.locator('[data-testid="models-item"][data-model="stories:latest"]').waitFor().catch(async (e) => {
    throw new Error(`${e.message}\nproblems: ${page.problems.join("\n")}\nprompts: ${prompts}\n${await page.content()}`);
  });
  assert.equal(prompts.length, 1, prompts.join("\n"));
  assert.match(prompts[0], /API key/);
  assert.equal(await page.evaluate(() => localStorage.getItem("corral.apiKey")), "s3cret-key");

  await page.reload();
  await page.locator('[data-testid="models-item"][data-model="stories:latest"]').waitFor();
  assert.equal(prompts.length, 1, "asked again after a reload");
  // The only console errors are the browser's notes of the first 401 answers.
  for (const p of page.problems) assert.match(p, /401/);
});
