// The chat page with a vision model (the tiny qwen2vl): its capability shows in the picker, an
// image attached in the page reaches /api/chat as base64 and the model answers it.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import { startServer, testdataPath } from "./harness.mjs";
import { startBrowser } from "./browser.mjs";
import { openChat, problems, send, setOptions, waitReply } from "./ui_chat_page.mjs";

let server;
let ui;

before(async () => {
  server = await startServer({ vision: true });
  ui = await startBrowser();
});

after(async () => {
  await ui?.close();
  await server?.stop();
});

test("an image attached in the page is seen by a vision model", async (t) => {
  const page = await ui.page(t);
  if (!page) return;
  const bodies = [];
  page.on("request", (r) => {
    if (r.url().endsWith("/api/chat")) bodies.push(r.postDataJSON());
  });
  await openChat(page, server.url, "qwen2vl");
  await page.locator("[data-testid=model-caps] .badge-vision").waitFor();
  const png = fs.readFileSync(testdataPath("reference/tiny-qwen2vl/image.png"));
  await page.setInputFiles("[data-testid=file-input]", { name: "image.png", mimeType: "image/png", buffer: png });
  await page.locator("[data-testid=attachment]").waitFor();
  await setOptions(page, { temperature: 0, num_predict: 4 });
  await send(page, "What is in this picture?");
  const r = await waitReply(page);
  assert.equal(r.error, "");
  assert.match(r.stats, /tok\/s · 4 tokens/);
  assert.deepEqual(bodies[0].messages[0].images, [png.toString("base64")]);
  assert.equal(await page.locator("article.msg-user .thumb").count(), 1);
  assert.ok(await page.locator("article.msg-user .thumb").evaluate((img) => img.naturalWidth > 0), "the thumbnail shows");
  await ui.screenshot(page, "chat-vision");
  assert.deepEqual(problems(page), []);
});
