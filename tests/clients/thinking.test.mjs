// Thinking end to end with a model that always thinks (thinking_model.mjs: a Qwen3 checkpoint with
// the real Qwen3 tokenizer and chat template, converted by `corral create`): the reply comes back
// split into thinking and content through the ollama client (/api/chat, /api/generate) and the
// openai SDK (reasoning), streamed and not; think: false renders the template's no-think form (the
// model then answers without a thinking block); and `corral run` prints it as `ollama run` does,
// through a server and in its own process.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Ollama } from "ollama";
import OpenAI from "openai";
import { corralBinary, startServer } from "./harness.mjs";
import { thinkingReply, writeThinkingModel } from "./thinking_model.mjs";

let server;
let ollama;
let openai;
let dir;

before(async () => {
  server = await startServer();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "corral-think-"));
  writeThinkingModel(path.join(dir, "hf"));
  fs.writeFileSync(path.join(dir, "Modelfile"), `FROM ${path.join(dir, "hf")}\n`);
  execFileSync(corralBinary, ["create", "think", "-f", path.join(dir, "Modelfile")], {
    env: { ...process.env, CORRAL_MODELS: server.modelsDir, CORRAL_NO_SERVER: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  ollama = new Ollama({ host: server.url });
  openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused" });
});

after(async () => {
  await server?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const messages = [{ role: "user", content: "Say hello" }];

async function collect(stream) {
  const parts = [];
  for await (const part of stream) parts.push(part);
  return parts;
}

test("the model advertises thinking", async () => {
  const show = await ollama.show({ model: "think" });
  assert.ok(show.capabilities.includes("thinking"), JSON.stringify(show.capabilities));
});

test("/api/chat splits the reply into thinking and content, streamed and not", async () => {
  const r = await ollama.chat({ model: "think", messages, think: true });
  assert.equal(r.message.thinking, thinkingReply.thinking);
  assert.equal(r.message.content, thinkingReply.content);

  // Thinking is on by default for a model that can think, as in Ollama.
  const parts = await collect(await ollama.chat({ model: "think", messages, stream: true }));
  const thinking = parts.map((p) => p.message.thinking ?? "").join("");
  const content = parts.map((p) => p.message.content).join("");
  assert.equal(thinking, thinkingReply.thinking);
  assert.equal(content, thinkingReply.content);
  // Every thinking chunk comes before the first content chunk.
  const firstContent = parts.findIndex((p) => p.message.content !== "");
  const lastThinking = parts.findLastIndex((p) => (p.message.thinking ?? "") !== "");
  assert.ok(lastThinking < firstContent, JSON.stringify(parts.map((p) => p.message)));
});

test("think: false renders the no-think form, so the model answers without thinking", async () => {
  const r = await ollama.chat({ model: "think", messages, think: false });
  assert.equal(r.message.thinking, undefined);
  assert.equal(r.message.content, thinkingReply.content);
  const parts = await collect(
    await ollama.chat({ model: "think", messages, think: false, stream: true }),
  );
  assert.equal(parts.map((p) => p.message.content).join(""), thinkingReply.content);
  assert.ok(parts.every((p) => !p.message.thinking));
});

test("a thinking level is accepted and the reply is split the same way", async () => {
  const r = await ollama.chat({ model: "think", messages, think: "high" });
  assert.equal(r.message.thinking, thinkingReply.thinking);
  assert.equal(r.message.content, thinkingReply.content);
});

test("/api/generate returns thinking beside the response, streamed and not", async () => {
  const r = await ollama.generate({ model: "think", prompt: "Say hello", think: true });
  assert.equal(r.thinking, thinkingReply.thinking);
  assert.equal(r.response, thinkingReply.content);
  const parts = await collect(
    await ollama.generate({ model: "think", prompt: "Say hello", stream: true }),
  );
  assert.equal(parts.map((p) => p.thinking ?? "").join(""), thinkingReply.thinking);
  assert.equal(parts.map((p) => p.response).join(""), thinkingReply.content);
  const off = await ollama.generate({ model: "think", prompt: "Say hello", think: false });
  assert.equal(off.thinking, undefined);
  assert.equal(off.response, thinkingReply.content);
});

test("a thinking reply in the history is sent back and the conversation goes on", async () => {
  const first = await ollama.chat({ model: "think", messages });
  const r = await ollama.chat({
    model: "think",
    messages: [...messages, first.message, { role: "user", content: "Again" }],
  });
  assert.equal(r.message.thinking, thinkingReply.thinking);
  assert.equal(r.message.content, thinkingReply.content);
});

test("the openai SDK gets the thinking as reasoning, streamed and not", async () => {
  const r = await openai.chat.completions.create({ model: "think", messages });
  assert.equal(r.choices[0].message.reasoning, thinkingReply.thinking);
  assert.equal(r.choices[0].message.content, thinkingReply.content);

  const stream = await openai.chat.completions.create({ model: "think", messages, stream: true });
  let reasoning = "";
  let content = "";
  for await (const chunk of stream) {
    const d = chunk.choices[0]?.delta ?? {};
    reasoning += d.reasoning ?? "";
    content += d.content ?? "";
  }
  assert.equal(reasoning, thinkingReply.thinking);
  assert.equal(content, thinkingReply.content);

  const none = await openai.chat.completions.create({
    model: "think",
    messages,
    reasoning_effort: "none",
  });
  assert.equal(none.choices[0].message.reasoning, undefined);
  assert.equal(none.choices[0].message.content, thinkingReply.content);
  const high = await openai.chat.completions.create({
    model: "think",
    messages,
    reasoning_effort: "high",
  });
  assert.equal(high.choices[0].message.reasoning, thinkingReply.thinking);
});

// `corral run` with a prompt; stdout is a pipe, so the thinking is shown without colours.
function run(args, env) {
  return execFileSync(corralBinary, ["run", "think", ...args, "Say hello"], {
    env: { ...process.env, CORRAL_MODELS: server.modelsDir, ...env },
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
}

for (const [where, env] of [
  ["through the server", () => ({ CORRAL_HOST: server.host })],
  ["in its own process", () => ({ CORRAL_NO_SERVER: "1" })],
]) {
  test(`corral run shows the thinking as ollama run does, ${where}`, () => {
    const shown = `Thinking...\n${thinkingReply.thinking}\n...done thinking.\n\n`;
    assert.equal(run([], env()), `${shown}${thinkingReply.content}\n`);
    assert.equal(run(["--think=high"], env()), `${shown}${thinkingReply.content}\n`);
    assert.equal(run(["--hidethinking"], env()), `${thinkingReply.content}\n`);
    assert.equal(run(["--think=false"], env()), `${thinkingReply.content}\n`);
  });
}
