// The OpenAI-compatible API through the official OpenAI JavaScript client: chat completions
// (streamed with usage, tool_choice forcing a call in the model's own syntax, response_format,
// stop/max_tokens/seed, logprobs), legacy completions, models and embeddings, and the OpenAI
// error shape.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { startServer } from "./harness.mjs";
import { validate } from "./schema.mjs";

let server;
let client;

before(async () => {
  server = await startServer();
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 });
});

after(async () => {
  await server?.stop();
});

// The tiny qwen ends its answers after a token or two; stories (no chat template: the prompt is
// the last user message) writes on, so length-bound tests use it.
const messages = [{ role: "user", content: "Once upon a time" }];

test("chat completion: OpenAI's fields, usage, finish_reason length at max_tokens", async () => {
  const r = await client.chat.completions.create({
    model: "stories",
    messages,
    temperature: 0,
    max_tokens: 12,
  });
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.object, "chat.completion");
  assert.equal(r.model, "stories");
  assert.ok(Number.isInteger(r.created));
  assert.equal(r.choices.length, 1);
  const c = r.choices[0];
  assert.equal(c.index, 0);
  assert.equal(c.message.role, "assistant");
  assert.equal(typeof c.message.content, "string");
  assert.equal(c.finish_reason, "length");
  assert.equal(r.usage.completion_tokens, 12);
  assert.ok(r.usage.prompt_tokens > 0);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + 12);
});

test("chat completion: content parts arrays are joined as text", async () => {
  const r = await fetch(`${server.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model: "qwen",
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "part one" },
            { type: "text", text: "part two" },
          ],
        },
      ],
      _debug_render_only: true,
    }),
  }).then((x) => x.json());
  assert.match(r._debug_info.rendered_template, /<\|im_start\|>user\npart one\npart two<\|im_end\|>/);
});

test("chat completion: the stream adds up to the same greedy answer and ends with usage", async () => {
  const whole = await client.chat.completions.create({ model: "stories", messages, temperature: 0, max_tokens: 16 });
  const stream = await client.chat.completions.create({
    model: "stories",
    messages,
    temperature: 0,
    max_tokens: 16,
    stream: true,
    stream_options: { include_usage: true },
  });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  assert.ok(chunks.every((c) => c.object === "chat.completion.chunk" && c.id === chunks[0].id));
  assert.equal(chunks[0].choices[0].delta.role, "assistant");
  const text = chunks.map((c) => c.choices[0]?.delta?.content ?? "").join("");
  assert.equal(text, whole.choices[0].message.content);
  const finish = chunks.filter((c) => c.choices[0]?.finish_reason);
  assert.equal(finish.length, 1);
  assert.equal(finish[0].choices[0].finish_reason, "length");
  const last = chunks.at(-1);
  assert.deepEqual(last.choices, []);
  assert.equal(last.usage.completion_tokens, 16);
  assert.equal(last.usage.prompt_tokens, whole.usage.prompt_tokens);
});

test("chat completion: the raw stream is server-sent events ending in [DONE]", async () => {
  const res = await fetch(`${server.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "qwen", messages, max_tokens: 3, temperature: 0, stream: true }),
  });
  assert.match(res.headers.get("content-type"), /^text\/event-stream/);
  const body = await res.text();
  const events = body.split("\n\n").filter((e) => e.length);
  assert.ok(events.every((e) => e.startsWith("data: ")));
  assert.equal(events.at(-1), "data: [DONE]");
});

test("chat completion: seed with temperature reproduces; stop ends before the stop string", async () => {
  const run = (extra) =>
    client.chat.completions.create({ model: "stories", messages, max_tokens: 24, ...extra });
  const a = await run({ temperature: 1, seed: 11 });
  const b = await run({ temperature: 1, seed: 11 });
  assert.equal(a.choices[0].message.content, b.choices[0].message.content);

  const free = (await run({ temperature: 0 })).choices[0].message.content;
  const stop = free.slice(4, 6);
  const cut = free.indexOf(stop);
  const stopped = await run({ temperature: 0, stop });
  assert.equal(stopped.choices[0].finish_reason, "stop");
  assert.equal(stopped.choices[0].message.content, free.slice(0, cut));
  const stoppedList = await run({ temperature: 0, stop: ["\u0000never", stop] });
  assert.equal(stoppedList.choices[0].message.content, free.slice(0, cut));
});

const tools = [
  {
    type: "function",
    function: {
      name: "get_weather",
      description: "Weather in a city",
      parameters: {
        type: "object",
        properties: {
          city: { type: "string", enum: ["Paris", "Rome", "Oslo"] },
          unit: { type: "string", enum: ["c", "f"] },
        },
        required: ["city", "unit"],
        additionalProperties: false,
      },
    },
  },
  {
    type: "function",
    function: {
      name: "get_time",
      parameters: {
        type: "object",
        properties: { zone: { type: "string", enum: ["utc", "cet"] } },
        required: ["zone"],
        additionalProperties: false,
      },
    },
  },
];

test("tool_choice required forces a call in the model's syntax, returned as tool_calls", async () => {
  const r = await client.chat.completions.create({
    model: "qwen",
    messages: [{ role: "user", content: "What is the weather in Paris?" }],
    tools,
    tool_choice: "required",
    temperature: 0,
    max_tokens: 120,
  });
  const c = r.choices[0];
  assert.equal(c.finish_reason, "tool_calls");
  assert.equal(c.message.tool_calls.length, 1);
  const call = c.message.tool_calls[0];
  assert.equal(call.type, "function");
  assert.match(call.id, /^call_/);
  const tool = tools.find((t) => t.function.name === call.function.name);
  assert.ok(tool, `called unknown tool ${call.function.name}`);
  assert.equal(typeof call.function.arguments, "string");
  assert.deepEqual(validate(tool.function.parameters, JSON.parse(call.function.arguments)), []);
});

test("tool_choice naming a function calls that one; streamed, the call comes as a delta", async () => {
  const stream = await client.chat.completions.create({
    model: "qwen",
    messages: [{ role: "user", content: "time?" }],
    tools,
    tool_choice: { type: "function", function: { name: "get_time" } },
    temperature: 0.9,
    seed: 5,
    max_tokens: 120,
    stream: true,
  });
  const calls = [];
  let finish;
  for await (const chunk of stream) {
    const ch = chunk.choices[0];
    if (!ch) continue;
    for (const tc of ch.delta.tool_calls ?? []) calls.push(tc);
    if (ch.finish_reason) finish = ch.finish_reason;
  }
  assert.equal(finish, "tool_calls");
  assert.equal(calls.length, 1);
  assert.equal(calls[0].index, 0);
  assert.equal(calls[0].function.name, "get_time");
  assert.deepEqual(validate(tools[1].function.parameters, JSON.parse(calls[0].function.arguments)), []);
});

test("tool_choice none leaves the tools out of the prompt; a tool result round-trips", async () => {
  const render = (body) =>
    fetch(`${server.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "qwen", _debug_render_only: true, ...body }),
    }).then((x) => x.json());
  const none = await render({ messages: [{ role: "user", content: "hi" }], tools, tool_choice: "none" });
  assert.doesNotMatch(none._debug_info.rendered_template, /get_weather/);
  const auto = await render({ messages: [{ role: "user", content: "hi" }], tools });
  assert.match(auto._debug_info.rendered_template, /<tools>[\s\S]*get_weather[\s\S]*<\/tools>/);
  // The tools' system prompt alone is longer than tiny-qwen2's 256-token context: without
  // truncate false (an Ollama field this server also takes here) only the last message would stay.
  const round = await render({
    truncate: false,
    messages: [
      { role: "user", content: "weather?" },
      {
        role: "assistant",
        content: null,
        tool_calls: [
          { id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Oslo","unit":"c"}' } },
        ],
      },
      { role: "tool", tool_call_id: "call_1", content: "-3 degrees" },
    ],
    tools,
  });
  const t = round._debug_info.rendered_template;
  assert.match(t, /<tool_call>\n\{"name": "get_weather", "arguments": \{"city": ?"Oslo", ?"unit": ?"c"\}\}\n<\/tool_call>/);
  assert.match(t, /<tool_response>\n-3 degrees\n<\/tool_response>/);
});

test("response_format json_schema and json_object constrain the answer", async () => {
  const schema = {
    type: "object",
    properties: {
      answer: { type: "string", enum: ["yes", "no"] },
      confident: { type: "boolean" },
    },
    required: ["answer", "confident"],
    additionalProperties: false,
  };
  const r = await client.chat.completions.create({
    model: "qwen",
    messages: [{ role: "user", content: "Is the sky blue?" }],
    response_format: { type: "json_schema", json_schema: { name: "reply", schema, strict: true } },
    temperature: 0,
    max_tokens: 1500,
  });
  assert.deepEqual(validate(schema, JSON.parse(r.choices[0].message.content)), []);
  const o = await client.chat.completions.create({
    model: "qwen",
    messages: [{ role: "user", content: "Give me a JSON object" }],
    response_format: { type: "json_object" },
    temperature: 0.7,
    seed: 7,
    max_tokens: 400,
  });
  assert.equal(o.choices[0].finish_reason, "stop", o.choices[0].message.content);
  const v = JSON.parse(o.choices[0].message.content);
  assert.ok(v !== null && typeof v === "object" && !Array.isArray(v));
});

test("logprobs: one entry per token with top_logprobs alternatives", async () => {
  const r = await client.chat.completions.create({
    model: "stories",
    messages,
    temperature: 0,
    max_tokens: 4,
    logprobs: true,
    top_logprobs: 2,
  });
  const lp = r.choices[0].logprobs.content;
  assert.equal(lp.length, 4);
  for (const t of lp) {
    assert.ok(t.logprob <= 0);
    assert.equal(t.top_logprobs.length, 2);
    assert.ok(Array.isArray(t.bytes));
  }
});

test("completions: text, echo, stream, usage", async () => {
  const r = await client.completions.create({ model: "stories", prompt: "Once upon a time", max_tokens: 10, temperature: 0 });
  assert.match(r.id, /^cmpl-/);
  assert.equal(r.object, "text_completion");
  assert.equal(r.choices[0].finish_reason, "length");
  assert.equal(r.usage.completion_tokens, 10);
  const echoed = await client.completions.create({
    model: "stories",
    prompt: "Once upon a time",
    max_tokens: 10,
    temperature: 0,
    echo: true,
  });
  assert.equal(echoed.choices[0].text, "Once upon a time" + r.choices[0].text);
  const stream = await client.completions.create({
    model: "stories",
    prompt: "Once upon a time",
    max_tokens: 10,
    temperature: 0,
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = "";
  let usage;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.text ?? "";
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, r.choices[0].text);
  assert.equal(usage.completion_tokens, 10);
});

test("models: list and retrieve, with the context length", async () => {
  const list = [];
  for await (const m of client.models.list()) list.push(m);
  const ids = list.map((m) => m.id).sort();
  assert.ok(ids.includes("stories:latest") && ids.includes("qwen:latest"), ids.join(","));
  const stories = list.find((m) => m.id === "stories:latest");
  assert.equal(stories.object, "model");
  assert.equal(stories.owned_by, "library");
  assert.equal(stories.context_length, 512);
  const one = await client.models.retrieve("stories:latest");
  assert.equal(one.id, "stories:latest");
  await assert.rejects(client.models.retrieve("missing"), (e) => e.status === 404);
});

test("embeddings: float and base64 agree; dimensions", async () => {
  const f = await client.embeddings.create({ model: "stories", input: ["a cat", "a dog"], encoding_format: "float" });
  assert.equal(f.object, "list");
  assert.equal(f.data.length, 2);
  assert.equal(f.data[1].index, 1);
  assert.equal(f.data[0].embedding.length, 64);
  assert.ok(f.usage.prompt_tokens > 0);
  const raw = await fetch(`${server.url}/v1/embeddings`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "stories", input: "a cat", encoding_format: "base64" }),
  }).then((x) => x.json());
  const bytes = Buffer.from(raw.data[0].embedding, "base64");
  const decoded = Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4));
  assert.equal(decoded.length, 64);
  for (let i = 0; i < 64; i++) assert.ok(Math.abs(decoded[i] - f.data[0].embedding[i]) < 1e-6);
  const d = await client.embeddings.create({ model: "stories", input: "a cat", dimensions: 8 });
  assert.equal(d.data[0].embedding.length, 8);
});

test("errors have OpenAI's shape and status", async () => {
  await assert.rejects(
    client.chat.completions.create({ model: "nope", messages }),
    (e) => e.status === 404 && /not found/.test(e.message),
  );
  const res = await fetch(`${server.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "qwen", messages, tool_choice: "required" }),
  });
  assert.equal(res.status, 400);
  const body = await res.json();
  assert.equal(body.error.type, "invalid_request_error");
  assert.equal(typeof body.error.message, "string");
  assert.ok("param" in body.error && "code" in body.error);
  await assert.rejects(
    client.chat.completions.create({ model: "stories", messages, tools, tool_choice: "required" }),
    (e) => e.status === 400,
  );
});
