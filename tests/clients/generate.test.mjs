// Ollama's generation API through the official JavaScript client (ollama-js): /api/generate and
// /api/chat (streamed and not), options (seed, num_predict, stop), structured output (format
// "json" and a JSON schema), tool calls, thinking and image refusals, keep_alive load/unload,
// and /api/embed, /api/embeddings.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import { Ollama } from "ollama";
import { startServer, testdataPath } from "./harness.mjs";
import { validate } from "./schema.mjs";

let server;
let ollama;

before(async () => {
  server = await startServer();
  ollama = new Ollama({ host: server.url });
});

after(async () => {
  await server?.stop();
});

const greedy = (n, extra = {}) => ({ temperature: 0, num_predict: n, ...extra });
const rfc3339Nano = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/;

async function collect(stream) {
  const parts = [];
  for await (const part of stream) parts.push(part);
  return parts;
}

// The reference greedy continuation of "Once upon a time" (llama2.c's own run of stories260K).
function referenceGreedy() {
  const text = fs.readFileSync(testdataPath("tinystories260k/stories260K.prompt_once.ids.txt"), "utf8");
  const line = (name) =>
    text
      .split("\n")
      .find((l) => l.startsWith(name + ":"))
      .slice(name.length + 1)
      .trim()
      .split(/\s+/)
      .map(Number);
  return { prompt: line("prompt"), greedy: line("greedy") };
}

test("generate: a greedy answer continues the prompt as llama2.c does, with Ollama's fields", async () => {
  const r = await ollama.generate({
    model: "stories",
    prompt: "Once upon a time",
    stream: false,
    options: greedy(16),
  });
  const ref = referenceGreedy();
  assert.equal(r.model, "stories");
  assert.match(r.created_at instanceof Date ? r.created_at.toISOString() : r.created_at, /Z$/);
  assert.equal(r.done, true);
  assert.equal(r.done_reason, "length");
  assert.equal(r.eval_count, 16);
  assert.ok(r.response.length > 0);
  assert.deepEqual(r.context, [...ref.prompt, ...ref.greedy.slice(0, 16)]);
  assert.equal(r.prompt_eval_count, ref.prompt.length);
  for (const k of ["total_duration", "load_duration", "prompt_eval_duration", "eval_duration"]) {
    assert.ok(Number.isInteger(r[k]) && r[k] >= 0, `${k} = ${r[k]}`);
  }
  assert.ok(r.total_duration >= r.eval_duration);
});

test("generate: created_at is RFC 3339 with nanoseconds on the wire", async () => {
  const res = await fetch(`${server.url}/api/generate`, {
    method: "POST",
    body: JSON.stringify({ model: "stories", prompt: "Hi", stream: false, options: greedy(2) }),
  });
  const body = await res.json();
  assert.match(body.created_at, rfc3339Nano);
});

test("generate: the stream's pieces add up to the whole answer, the last one done with metrics", async () => {
  const whole = await ollama.generate({ model: "stories", prompt: "The dog", stream: false, options: greedy(24) });
  const parts = await collect(
    await ollama.generate({ model: "stories", prompt: "The dog", stream: true, options: greedy(24) }),
  );
  assert.ok(parts.length > 2, `only ${parts.length} parts`);
  assert.ok(parts.slice(0, -1).every((p) => p.done === false));
  const last = parts.at(-1);
  assert.equal(last.done, true);
  assert.equal(last.done_reason, "length");
  assert.equal(last.eval_count, 24);
  assert.deepEqual(last.context, whole.context);
  assert.equal(parts.map((p) => p.response).join(""), whole.response);
});

test("generate: a seed makes sampling reproducible; other seeds give other text", async () => {
  const run = (seed) =>
    ollama.generate({
      model: "stories",
      prompt: "Once upon a time",
      stream: false,
      options: { temperature: 1.0, seed, num_predict: 32 },
    });
  const a = await run(42);
  const b = await run(42);
  assert.equal(a.response, b.response);
  const others = [await run(1), await run(2), await run(3)];
  assert.ok(
    others.some((o) => o.response !== a.response),
    "three other seeds all gave the text of seed 42",
  );
});

test("generate: a stop string ends the answer just before it", async () => {
  const free = await ollama.generate({ model: "stories", prompt: "Once upon a time", stream: false, options: greedy(40) });
  const words = free.response.trim().split(/\s+/);
  const stop = words[3];
  const cut = free.response.indexOf(stop);
  assert.ok(cut > 0);
  const stopped = await ollama.generate({
    model: "stories",
    prompt: "Once upon a time",
    stream: false,
    options: greedy(40, { stop: [stop] }),
  });
  assert.equal(stopped.done_reason, "stop");
  assert.equal(stopped.response, free.response.slice(0, cut));
});

test("generate: raw skips the template; _debug_render_only shows the rendered prompt", async () => {
  const r = await fetch(`${server.url}/api/generate`, {
    method: "POST",
    body: JSON.stringify({ model: "qwen", prompt: "hello there", system: "be kind", _debug_render_only: true }),
  });
  assert.equal(r.status, 200);
  const body = await r.json();
  const rendered = body._debug_info.rendered_template;
  assert.match(rendered, /<\|im_start\|>system\nbe kind<\|im_end\|>/);
  assert.match(rendered, /<\|im_start\|>user\nhello there<\|im_end\|>\n<\|im_start\|>assistant\n$/);
  const raw = await ollama.generate({ model: "qwen", prompt: "hello", raw: true, stream: false, options: greedy(4) });
  assert.equal(raw.done, true);
  assert.equal(raw.context, undefined);
});

test("generate: format json gives a JSON object", async () => {
  const r = await ollama.generate({
    model: "qwen",
    prompt: "Give me a JSON object",
    format: "json",
    stream: false,
    options: { temperature: 0.7, seed: 7, num_predict: 400 },
  });
  assert.equal(r.done_reason, "stop", `did not finish: ${r.response}`);
  const v = JSON.parse(r.response);
  assert.equal(typeof v, "object");
  assert.ok(v !== null && !Array.isArray(v));
});

const weatherSchema = {
  type: "object",
  properties: {
    city: { type: "string", enum: ["Paris", "Rome", "Oslo"] },
    sunny: { type: "boolean" },
    days: { type: "array", items: { type: "string", enum: ["mon", "tue"] }, maxItems: 3 },
  },
  required: ["city", "sunny", "days"],
  additionalProperties: false,
};

test("generate and chat: a JSON schema format gives output that validates", async () => {
  for (const seed of [1, 2]) {
    const g = await ollama.generate({
      model: "qwen",
      prompt: "weather?",
      format: weatherSchema,
      stream: false,
      // The schema grammar lets a random tiny model spend many tokens on whitespace.
      options: { temperature: 0.8, seed, num_predict: 1500 },
    });
    assert.deepEqual(validate(weatherSchema, JSON.parse(g.response)), [], g.response);
  }
  const c = await ollama.chat({
    model: "qwen",
    messages: [{ role: "user", content: "weather in Rome?" }],
    format: weatherSchema,
    stream: false,
    options: { temperature: 0, num_predict: 1500 },
  });
  assert.deepEqual(validate(weatherSchema, JSON.parse(c.message.content)), [], c.message.content);
});

test("chat: streamed and not, the same greedy answer", async () => {
  // stories has no chat template (the prompt is the last user message) and writes on where the
  // tiny qwen would end after a token or two.
  const messages = [
    { role: "system", content: "You are terse." },
    { role: "user", content: "Once upon a time" },
  ];
  const whole = await ollama.chat({ model: "stories", messages, stream: false, options: greedy(20) });
  assert.equal(whole.message.role, "assistant");
  assert.equal(whole.done, true);
  assert.equal(whole.eval_count, 20);
  assert.equal(whole.done_reason, "length");
  const parts = await collect(await ollama.chat({ model: "stories", messages, stream: true, options: greedy(20) }));
  assert.equal(parts.at(-1).done, true);
  assert.equal(parts.map((p) => p.message.content).join(""), whole.message.content);
});

test("chat: a conversation with an earlier answer renders both turns", async () => {
  const r = await fetch(`${server.url}/api/chat`, {
    method: "POST",
    body: JSON.stringify({
      model: "qwen",
      messages: [
        { role: "user", content: "first" },
        { role: "assistant", content: "answer one" },
        { role: "user", content: "second" },
      ],
      _debug_render_only: true,
    }),
  });
  const rendered = (await r.json())._debug_info.rendered_template;
  assert.match(rendered, /user\nfirst<\|im_end\|>\n<\|im_start\|>assistant\nanswer one<\|im_end\|>\n<\|im_start\|>user\nsecond/);
});

test("chat: a long history is cut to the context window, oldest first, keeping the system message", async () => {
  const filler = "word ".repeat(300);
  const r = await fetch(`${server.url}/api/chat`, {
    method: "POST",
    body: JSON.stringify({
      model: "qwen",
      options: { num_ctx: 256 },
      messages: [
        { role: "system", content: "SYSTEM-NOTE" },
        { role: "user", content: "OLDEST " + filler },
        { role: "assistant", content: "ok" },
        { role: "user", content: "NEWEST question" },
      ],
      _debug_render_only: true,
    }),
  });
  const rendered = (await r.json())._debug_info.rendered_template;
  assert.match(rendered, /SYSTEM-NOTE/);
  assert.doesNotMatch(rendered, /OLDEST/);
  assert.match(rendered, /NEWEST question/);
});

test("chat: logprobs come with each token, the chosen one among the top alternatives", async () => {
  const r = await ollama.chat({
    model: "qwen",
    messages: [{ role: "user", content: "hi" }],
    stream: false,
    logprobs: true,
    top_logprobs: 3,
    options: greedy(5),
  });
  assert.equal(r.logprobs.length, 5);
  for (const lp of r.logprobs) {
    assert.ok(lp.logprob <= 0);
    assert.equal(lp.top_logprobs.length, 3);
    // Greedy: the chosen token is the most likely one.
    assert.equal(lp.token, lp.top_logprobs[0].token);
  }
});

test("chat: a template's tool syntax forced by a format schema comes back as tool_calls", async () => {
  // A tiny model never calls a tool on its own. This model's TEMPLATE writes a call as a bare
  // JSON object {"name", "arguments"}; a format schema that only admits such an object makes
  // the model write one, and the server's tool-call parser (active because tools are offered)
  // must turn it into message.tool_calls.
  const template =
    "{{- if .Tools }}<|im_start|>system\nTools: {{ range .Tools }}{{ json . }}{{ end }}<|im_end|>\n{{ end }}" +
    "{{- range .Messages }}<|im_start|>{{ .Role }}\n" +
    "{{- if .ToolCalls }}{{ range .ToolCalls }}{\"name\": \"{{ .Function.Name }}\", \"arguments\": {{ json .Function.Arguments }}}{{ end }}" +
    "{{- else }}{{ .Content }}{{ end }}<|im_end|>\n{{ end }}<|im_start|>assistant\n";
  await ollama.create({ model: "qwen-tools", from: "qwen", template });
  const tools = [
    {
      type: "function",
      function: {
        name: "get_weather",
        description: "Weather in a city",
        parameters: {
          type: "object",
          properties: { city: { type: "string", enum: ["Paris", "Rome"] } },
          required: ["city"],
        },
      },
    },
  ];
  const format = {
    type: "object",
    properties: {
      name: { const: "get_weather" },
      arguments: {
        type: "object",
        properties: { city: { type: "string", enum: ["Paris", "Rome"] } },
        required: ["city"],
        additionalProperties: false,
      },
    },
    required: ["name", "arguments"],
    additionalProperties: false,
  };
  const r = await ollama.chat({
    model: "qwen-tools",
    messages: [{ role: "user", content: "weather in Paris?" }],
    tools,
    format,
    stream: false,
    options: greedy(1500),
  });
  assert.equal(r.message.content, "");
  assert.equal(r.message.tool_calls.length, 1);
  const call = r.message.tool_calls[0];
  assert.equal(call.function.name, "get_weather");
  assert.deepEqual(validate(tools[0].function.parameters, call.function.arguments), []);

  // Streamed: the call arrives whole in one chunk.
  const parts = await collect(
    await ollama.chat({
      model: "qwen-tools",
      messages: [{ role: "user", content: "weather in Paris?" }],
      tools,
      format,
      stream: true,
      options: greedy(1500),
    }),
  );
  const calls = parts.flatMap((p) => p.message.tool_calls ?? []);
  assert.deepEqual(calls.map((c) => c.function), [call.function]);
  assert.equal(parts.map((p) => p.message.content).join(""), "");

  // The call written back into the conversation renders in the template's syntax.
  const rendered = await fetch(`${server.url}/api/chat`, {
    method: "POST",
    body: JSON.stringify({
      model: "qwen-tools",
      messages: [
        { role: "user", content: "weather?" },
        { role: "assistant", content: "", tool_calls: [call] },
        { role: "tool", content: "sunny", tool_name: "get_weather" },
      ],
      tools,
      // The tools' system prompt alone nearly fills tiny-qwen2's 256-token context.
      truncate: false,
      _debug_render_only: true,
    }),
  }).then((x) => x.json());
  assert.match(rendered._debug_info.rendered_template, /\{"name": "get_weather", "arguments": \{"city":"(Paris|Rome)"\}\}/);
});

test("chat: tools on a model whose template takes none are refused", async () => {
  await assert.rejects(
    ollama.chat({
      model: "stories",
      messages: [{ role: "user", content: "hi" }],
      tools: [{ type: "function", function: { name: "f", parameters: { type: "object" } } }],
    }),
    (e) => e.status_code === 400 && /does not support tools/.test(e.message),
  );
});

test("thinking on a model without it, and images on a model without vision, are 400s", async () => {
  await assert.rejects(
    ollama.generate({ model: "stories", prompt: "hi", think: true, stream: false }),
    (e) => e.status_code === 400 && /does not support thinking/.test(e.message),
  );
  await assert.rejects(
    ollama.chat({ model: "stories", messages: [{ role: "user", content: "look", images: ["aGVsbG8="] }] }),
    (e) => e.status_code === 400 && /does not support images/.test(e.message),
  );
  await assert.rejects(
    ollama.generate({ model: "stories", prompt: "look", images: ["aGVsbG8="], stream: false }),
    (e) => e.status_code === 400,
  );
});

test("unknown models are 404s, bad fields 400s, and the server carries on", async () => {
  await assert.rejects(
    ollama.generate({ model: "nope", prompt: "hi", stream: false }),
    (e) => e.status_code === 404 && /not found/.test(e.message),
  );
  const bad = await fetch(`${server.url}/api/generate`, {
    method: "POST",
    body: JSON.stringify({ model: "stories", prompt: "hi", options: { temperature: "hot" } }),
  });
  assert.equal(bad.status, 400);
  const badFormat = await fetch(`${server.url}/api/chat`, {
    method: "POST",
    body: JSON.stringify({ model: "stories", messages: [{ role: "user", content: "x" }], format: "yaml" }),
  });
  assert.equal(badFormat.status, 400);
  const ok = await ollama.generate({ model: "stories", prompt: "hi", stream: false, options: greedy(2) });
  assert.equal(ok.done, true);
});

test("keep_alive: an empty prompt loads, keep_alive 0 unloads (seen in /api/ps)", async () => {
  const loaded = await ollama.generate({ model: "stories", prompt: "", keep_alive: "5m" });
  assert.equal(loaded.done_reason, "load");
  let ps = await ollama.ps();
  assert.ok(ps.models.some((m) => m.name === "stories:latest"), JSON.stringify(ps));
  const unloaded = await ollama.generate({ model: "stories", prompt: "", keep_alive: 0 });
  assert.equal(unloaded.done_reason, "unload");
  ps = await ollama.ps();
  assert.ok(!ps.models.some((m) => m.name === "stories:latest"), JSON.stringify(ps));

  // A request with keep_alive 0 unloads its model when it ends.
  const chat = await ollama.chat({
    model: "qwen",
    messages: [{ role: "user", content: "hi" }],
    keep_alive: 0,
    stream: false,
    options: greedy(2),
  });
  assert.equal(chat.done, true);
  ps = await ollama.ps();
  assert.ok(!ps.models.some((m) => m.name === "qwen:latest"), JSON.stringify(ps));

  const chatLoad = await ollama.chat({ model: "qwen", messages: [] });
  assert.equal(chatLoad.done_reason, "load");
  const chatUnload = await ollama.chat({ model: "qwen", messages: [], keep_alive: 0 });
  assert.equal(chatUnload.done_reason, "unload");
});

test("embed: unit vectors, one per input; dimensions cut and renormalize; legacy embeddings", async () => {
  const norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  const r = await ollama.embed({ model: "stories", input: ["a cat", "a dog", "a cat"] });
  assert.equal(r.model, "stories");
  assert.equal(r.embeddings.length, 3);
  assert.equal(r.embeddings[0].length, 64);
  for (const v of r.embeddings) assert.ok(Math.abs(norm(v) - 1) < 1e-4);
  assert.deepEqual(r.embeddings[0], r.embeddings[2]);
  assert.notDeepEqual(r.embeddings[0], r.embeddings[1]);
  assert.ok(r.prompt_eval_count > 0);

  const one = await ollama.embed({ model: "stories", input: "a cat", dimensions: 16 });
  assert.equal(one.embeddings[0].length, 16);
  assert.ok(Math.abs(norm(one.embeddings[0]) - 1) < 1e-4);

  const legacy = await ollama.embeddings({ model: "stories", prompt: "a cat" });
  assert.equal(legacy.embedding.length, 64);
  for (let i = 0; i < 64; i++) assert.ok(Math.abs(legacy.embedding[i] - r.embeddings[0][i]) < 1e-5);

  const long = "cat ".repeat(2000);
  const cut = await ollama.embed({ model: "stories", input: long });
  assert.equal(cut.embeddings.length, 1);
  await assert.rejects(
    ollama.embed({ model: "stories", input: long, truncate: false }),
    (e) => e.status_code === 400,
  );
});
