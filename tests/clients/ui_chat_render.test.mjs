// How the chat page renders what a model sends, with /api/chat answered by a crafted NDJSON
// stream (playwright's page.route; the rest of the API is the real `corral serve`): script in a
// reply never runs, thinking folds into a <details> block, tool calls show as such, Markdown code
// blocks get a copy button, and an error line in the stream is shown.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "./harness.mjs";
import { startBrowser } from "./browser.mjs";
import { chatChunks, fulfilChat, lastReply, openChat, problems, send, waitReply } from "./ui_chat_page.mjs";

let server;
let ui;

before(async () => {
  server = await startServer();
  ui = await startBrowser();
});

after(async () => {
  await ui?.close();
  await server?.stop();
});

test("a reply with <script>, <img onerror> and a javascript: link runs nothing", async (t) => {
  const page = await ui.page(t);
  if (!page) return;
  await openChat(page, server.url);
  await fulfilChat(
    page,
    chatChunks([
      "Hello <script>window.__pwned=1</script>",
      ' <img src=x onerror="window.__pwned=1">',
      "\n\n[x](javascript:window.__pwned=1) and ",
      '<a href="javascript:window.__pwned=1">y</a> ',
      '<svg><script>window.__pwned=1</script></svg><iframe src="javascript:window.__pwned=1"></iframe>',
      " [a real link](https://example.com/page)",
      '\n\n<details open ontoggle="window.__pwned=1">z</details>',
    ]),
  );
  await send(page, "be evil");
  await waitReply(page);
  const content = lastReply(page).locator("[data-testid=message-content]");
  for (const name of ["x", "y"]) {
    const link = content.locator("a", { hasText: new RegExp(`^${name}$`) });
    assert.equal(await link.count(), 1);
    assert.equal(await link.getAttribute("href"), null, "the javascript: URL is gone");
    await link.click();
  }
  const real = content.locator("a", { hasText: "a real link" });
  assert.equal(await real.getAttribute("href"), "https://example.com/page");
  assert.equal(await real.getAttribute("target"), "_blank");
  assert.equal(await real.getAttribute("rel"), "noopener noreferrer");

  const found = await page.evaluate(() => {
    const root = document.querySelector("[data-testid=messages]");
    const withHandlers = [...root.querySelectorAll("*")].filter((e) =>
      [...e.attributes].some((a) => a.name.startsWith("on")),
    );
    return {
      pwned: window.__pwned,
      scripts: root.querySelectorAll("script").length,
      iframes: root.querySelectorAll("iframe").length,
      handlers: withHandlers.map((e) => e.outerHTML),
      jsUrls: [...root.querySelectorAll("[href],[src]")]
        .map((e) => e.getAttribute("href") || e.getAttribute("src"))
        .filter((u) => /^\s*javascript:/i.test(u)),
    };
  });
  assert.deepEqual(found, { pwned: undefined, scripts: 0, iframes: 0, handlers: [], jsUrls: [] });
  // The kept conversation renders the same way after a reload.
  await page.reload();
  await page.waitForSelector("body[data-ready='1']");
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  assert.equal(await page.locator("[data-testid=messages] script").count(), 0);
  // <img src=x> is kept (an image is no script) and fails to load from the page's folder. Chromium
  // reports the inline handlers it refused (the CSP) while DOMPurify parses the reply in an inert
  // document; they never reach the page's DOM either.
  assert.deepEqual(problems(page, "HTTP 404: GET", "Executing inline event handler violates"), []);
});

test("thinking folds into a block, tool calls show their name and arguments, code blocks copy", async (t) => {
  const page = await ui.page(t, { permissions: ["clipboard-read", "clipboard-write"] });
  if (!page) return;
  await openChat(page, server.url);
  await fulfilChat(
    page,
    chatChunks([
      { thinking: "The user wants the weather. " },
      { thinking: "I should call **get_weather**." },
      { tool_calls: [{ function: { name: "get_weather", arguments: { city: "Rome", unit: "celsius" } } }] },
      "Here is how to ask:\n\n```js\nconst w = await getWeather(\"Rome\");\n```\n",
      "\n| city | °C |\n|---|---|\n| Rome | 21 |\n",
    ], { eval_count: 20, eval_duration: 400e6, prompt_eval_duration: 30e6, load_duration: 5e6 }),
  );
  await send(page, "weather in Rome?");
  const r = await waitReply(page);
  const thinking = r.reply.locator("[data-testid=thinking]");
  assert.ok(await thinking.isVisible());
  assert.equal(await thinking.evaluate((d) => d.open), false, "folded once the answer came");
  assert.equal(await thinking.locator("summary").innerText(), "Thoughts");
  await thinking.locator("summary").click();
  assert.match(await thinking.innerText(), /The user wants the weather\. I should call get_weather\./);
  assert.equal(await thinking.locator("strong").innerText(), "get_weather");

  const call = r.reply.locator("[data-testid=tool-call]");
  assert.equal(await call.count(), 1);
  assert.equal(await call.locator(".tool-name").innerText(), "get_weather");
  assert.deepEqual(JSON.parse(await call.locator(".tool-args").innerText()), { city: "Rome", unit: "celsius" });

  assert.equal(await r.reply.locator("table td").first().innerText(), "Rome");
  await r.reply.locator("[data-testid=copy-code]").click();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), 'const w = await getWeather("Rome");\n');
  // 20 tokens in 0.4 s; first token after 5 + 30 ms.
  assert.match(r.stats, /^50\.0 tok\/s · 20 tokens · first token 35 ms \(page: \d+ ms\) · total 50 ms$/);
  await ui.screenshot(page, "chat-thinking-tools");
  assert.deepEqual(problems(page), []);
});

test("a model that can think is asked to (think: true); a reply that is all thought stays open", async (t) => {
  const page = await ui.page(t);
  if (!page) return;
  await page.route("**/api/show", (route) =>
    route.fulfill({ json: { capabilities: ["completion", "thinking", "tools", "vision"] } }),
  );
  await openChat(page, server.url);
  assert.deepEqual(await page.locator("[data-testid=model-caps] .badge").allInnerTexts(), ["vision", "thinking", "tools"]);
  // The reply stops while thinking: the block stays open, showing what came.
  let release;
  const held = new Promise((r) => (release = r));
  const bodies = [];
  await page.route("**/api/chat", async (route) => {
    bodies.push(route.request().postDataJSON());
    await held;
    await route.fulfill({
      contentType: "application/x-ndjson",
      body: JSON.stringify({ message: { role: "assistant", content: "", thinking: "Hmm, let me see" }, done: false }) + "\n",
    });
  });
  await send(page, "think hard");
  await page.locator("article.msg-assistant.streaming").waitFor();
  release();
  const r = await waitReply(page);
  assert.equal(bodies[0].think, true);
  const thinking = r.reply.locator("[data-testid=thinking]");
  assert.equal(await thinking.evaluate((d) => d.open), true);
  assert.equal(await thinking.locator("summary").innerText(), "Thoughts");
  assert.equal(await thinking.locator(".thinking-body").innerText(), "Hmm, let me see");
  assert.deepEqual(problems(page), []);
});

test("an error line in the stream is shown under what came before it", async (t) => {
  const page = await ui.page(t);
  if (!page) return;
  await openChat(page, server.url);
  await fulfilChat(page, [
    { message: { role: "assistant", content: "Once upon" }, done: false },
    { error: "the model ran out of memory" },
  ]);
  await send(page, "hi");
  const r = await waitReply(page);
  assert.equal(r.content, "Once upon");
  assert.equal(r.error, "the model ran out of memory");
  assert.deepEqual(problems(page), []);
});

// Hostile or broken answers: a stream cut off in the middle of a line, a reply nested thousands
// deep, a reply of megabytes. Each shows what it can, the page stays usable, and the next (real)
// reply comes through.
test("a stream cut off mid-line, a reply nested 20000 deep and a 2 MB reply leave the page working", async (t) => {
  const page = await ui.page(t);
  if (!page) return;
  await openChat(page, server.url);
  const answers = [
    // Cut off: a whole chunk, then half of the next line and no done.
    JSON.stringify({ message: { role: "assistant", content: "Once upon" }, done: false }) +
      '\n{"message":{"role":"assistant","content":" a ti',
    // Deep: blockquotes, lists and indented lists nested far beyond what any reply needs
    // (marked overflows its stack on the first two and runs out of memory on the third).
    chatChunks([
      ">".repeat(20000) + " deep",
      "\n\n" + "- ".repeat(20000) + "list\n\n",
      Array.from({ length: 3000 }, (_, i) => " ".repeat(2 * i) + "- indented").join("\n"),
    ]).map((c) => JSON.stringify(c) + "\n").join(""),
    // Big: 2 MB of text in 2048 chunks of 1 KB.
    chatChunks(Array.from({ length: 2048 }, (_, i) => `${i} ${"word ".repeat(203)}\n`))
      .map((c) => JSON.stringify(c) + "\n").join(""),
  ];
  let calls = 0;
  await page.route("**/api/chat", async (route) => {
    const body = answers[calls++];
    if (body === undefined) return route.continue();  // then the real server answers
    await route.fulfill({ status: 200, contentType: "application/x-ndjson", body });
  });

  await send(page, "cut");
  let r = await waitReply(page);
  assert.equal(r.content, "Once upon");
  assert.ok(r.error, "a cut-off answer is shown as an error, not taken as complete");

  await send(page, "deep");
  r = await waitReply(page);
  assert.equal(r.error, "");
  for (const part of [" deep", "list", "- indented"]) assert.ok(r.content.includes(part), part);
  assert.ok(
    await r.reply.locator("[data-testid=message-content]").evaluate((e) => e.classList.contains("plain-text")),
    "shown as the text it is, not parsed as Markdown",
  );

  await send(page, "big");
  r = await waitReply(page);
  assert.ok(r.content.length > 2_000_000, `the whole 2 MB reply is shown (${r.content.length})`);
  assert.match(r.content, /2047 word/);

  await send(page, "Once upon a time");
  r = await waitReply(page);
  assert.equal(r.error, "");
  assert.ok(r.content.length > 0, "the real server's reply comes through afterwards");
  assert.deepEqual(problems(page), []);
});
