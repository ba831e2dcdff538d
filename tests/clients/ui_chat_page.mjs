// Helpers for the chat page's browser tests (ui_chat*.test.mjs): open the page, send a message,
// wait for the reply, read what the page shows, and answer /api/chat with a crafted stream.

// A 1x1 PNG (a valid image: the server refuses it for being sent to a text model, not for its bytes).
export const tinyPng = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==",
  "base64",
);

// Console errors a test provokes on purpose (the server's refusal of a request shows as a failed
// resource load) are not problems of the page.
export function problems(page, ...expected) {
  return page.problems.filter((p) => !expected.some((e) => p.includes(e)));
}

export async function openChat(page, url, model = "stories") {
  await page.goto(`${url}/ui/`);
  await page.waitForSelector("body[data-ready='1']");
  if (model) await pickModel(page, model);
}

export async function pickModel(page, model) {
  const name = model.includes(":") ? model : `${model}:latest`;
  await page.selectOption("[data-testid=model-picker]", name);
}

// Opens the settings panel and fills the given fields ({temperature: 0.5, system: "..."}).
export async function setOptions(page, fields) {
  if (await page.locator("[data-testid=settings]").isHidden()) {
    await page.click("[data-testid=settings-toggle]");
  }
  for (const [k, v] of Object.entries(fields)) {
    const id = k === "system" ? "system-prompt" : `opt-${k}`;
    await page.fill(`[data-testid=${id}]`, String(v));
  }
}

// Types text into the prompt box and sends it with Enter.
export async function send(page, text) {
  await page.fill("[data-testid=prompt]", text);
  await page.press("[data-testid=prompt]", "Enter");
}

export const lastReply = (page) => page.locator("article.msg-assistant").last();

// Waits until no reply streams any more; returns what the last reply shows.
export async function waitReply(page) {
  await page.waitForSelector("article.msg-assistant:last-of-type:not(.streaming)");
  await page.waitForFunction(() => !document.querySelector("article.msg.streaming"));
  const reply = lastReply(page);
  const box = (id) => reply.locator(`[data-testid=${id}]`);
  return {
    reply,
    content: await box("message-content").innerText(),
    stats: (await box("message-stats").isVisible()) ? await box("message-stats").innerText() : "",
    error: (await box("message-error").isVisible()) ? await box("message-error").innerText() : "",
    stopped: await box("message-stopped").isVisible(),
  };
}

// Answers POST /api/chat with these NDJSON objects (a crafted reply; the rest of the API stays
// real). Returns the list of request bodies the page sent.
export async function fulfilChat(page, chunks) {
  const bodies = [];
  await page.route("**/api/chat", async (route) => {
    bodies.push(route.request().postDataJSON());
    await route.fulfill({
      status: 200,
      contentType: "application/x-ndjson",
      body: chunks.map((c) => JSON.stringify(c) + "\n").join(""),
    });
  });
  return bodies;
}

// The Ollama /api/chat stream of a reply: one chunk per piece of content, then the final one.
export function chatChunks(pieces, final = {}) {
  const chunks = pieces.map((p) => ({
    model: "stories",
    created_at: new Date().toISOString(),
    message: { role: "assistant", content: "", ...(typeof p === "string" ? { content: p } : p) },
    done: false,
  }));
  chunks.push({
    model: "stories",
    created_at: new Date().toISOString(),
    message: { role: "assistant", content: "" },
    done: true,
    done_reason: "stop",
    total_duration: 50e6,
    load_duration: 1e6,
    prompt_eval_count: 5,
    prompt_eval_duration: 4e6,
    eval_count: pieces.length,
    eval_duration: 40e6,
    ...final,
  });
  return chunks;
}

// Records every length the last reply's text takes in the DOM while it streams.
export async function watchReplyGrowth(page) {
  await page.evaluate(() => {
    window.__lengths = [];
    const messages = document.querySelector("[data-testid=messages]");
    new MutationObserver(() => {
      const replies = messages.querySelectorAll("article.msg-assistant [data-testid=message-content]");
      const last = replies[replies.length - 1];
      if (!last) return;
      const n = last.textContent.length;
      if (n !== window.__lengths[window.__lengths.length - 1]) window.__lengths.push(n);
    }).observe(messages, { childList: true, subtree: true, characterData: true });
  });
  return () => page.evaluate(() => window.__lengths);
}

// Limits how fast the page's responses arrive (DevTools network throttling, bytes per second; -1
// lifts it): stories260K writes its whole context in under a second, throttled it takes many.
export async function throttle(page, bytesPerSecond) {
  page.cdp ??= await page.context().newCDPSession(page);
  await page.cdp.send("Network.enable");
  await page.cdp.send("Network.emulateNetworkConditions", {
    offline: false,
    latency: 0,
    downloadThroughput: bytesPerSecond,
    uploadThroughput: -1,
  });
}
