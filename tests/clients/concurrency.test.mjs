// Several clients at once: streaming greedy chats running together (continuous batching) must
// each produce exactly the text they produce alone, and a client that goes away mid-stream must
// cancel its generation without disturbing the server.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Ollama } from "ollama";
import { startServer } from "./harness.mjs";

let server;

before(async () => {
  // Four slots: generations that were not cancelled would hold them and starve the next request.
  server = await startServer({ env: { CORRAL_NUM_PARALLEL: "4" } });
});

after(async () => {
  await server?.stop();
});

// stories (no chat template: each prompt is the user message as it is) writes 24 tokens for each.
const prompts = [
  "Once upon a time",
  "The little dog",
  "Lily and Tom went",
  "One day, a bird",
  "The sun was hot and",
  "Mom said",
  "There was a big tree",
  "Ben wanted to play",
];

async function streamChat(ollama, content) {
  const stream = await ollama.chat({
    model: "stories",
    messages: [{ role: "user", content }],
    stream: true,
    options: { temperature: 0, num_predict: 24 },
  });
  let text = "";
  let last;
  for await (const part of stream) {
    text += part.message.content;
    last = part;
  }
  assert.equal(last.done, true);
  assert.equal(last.eval_count, 24);
  return text;
}

test("eight simultaneous streaming chats each give the text they give alone", async () => {
  const ollama = new Ollama({ host: server.url });
  const alone = [];
  for (const p of prompts) alone.push(await streamChat(ollama, p));
  assert.ok(new Set(alone).size > 1, "all prompts gave the same text; the test would prove nothing");
  // Each request gets its own client (its own connections), as separate users would.
  const together = await Promise.all(prompts.map((p) => streamChat(new Ollama({ host: server.url }), p)));
  assert.deepEqual(together, alone);
});

test("a client that disconnects mid-stream cancels its generation; the next request succeeds", async () => {
  const ollama = new Ollama({ host: server.url });
  // Endless generation (no limit; context shifts): only a cancellation ends it.
  const streams = [];
  for (let i = 0; i < 4; i++) {
    streams.push(
      await ollama.generate({
        model: "stories",
        prompt: "Once upon a time",
        stream: true,
        options: { temperature: 1, seed: i, num_predict: -1 },
      }),
    );
  }
  for (const stream of streams) {
    let n = 0;
    for await (const part of stream) {
      assert.equal(part.done, false);
      if (++n === 3) break;
    }
    stream.abort();
  }
  // With all four slots taken by endless generations, this would wait forever unless the
  // aborted ones were cancelled.
  const r = await Promise.race([
    ollama.generate({ model: "stories", prompt: "Hello", stream: false, options: { temperature: 0, num_predict: 8 } }),
    new Promise((_, reject) => setTimeout(() => reject(new Error("no slot freed in 30 s")), 30000)),
  ]);
  assert.equal(r.done, true);
  assert.equal(r.eval_count, 8);

  // A raw socket that closes mid-stream (no HTTP client cleanup at all).
  const controller = new AbortController();
  const res = await fetch(`${server.url}/api/chat`, {
    method: "POST",
    body: JSON.stringify({
      model: "qwen",
      messages: [{ role: "user", content: "go on forever" }],
      options: { num_predict: -1 },
    }),
    signal: controller.signal,
  });
  const reader = res.body.getReader();
  await reader.read();
  controller.abort();
  const after = await ollama.chat({
    model: "qwen",
    messages: [{ role: "user", content: "hi" }],
    stream: false,
    options: { temperature: 0, num_predict: 4 },
  });
  assert.equal(after.eval_count, 4);
});
