// Vision models through the official clients: images in Ollama's `images` (chat and generate)
// and OpenAI's image_url parts (data: URIs) reach qwen2vl and mllama and get answers; a model
// without vision refuses them with a 400 that says so; the same image in a conversation's next
// turn is not encoded again; hostile images each get a clear 400 and the server goes on serving.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import zlib from "node:zlib";
import { Ollama } from "ollama";
import OpenAI from "openai";
import { startServer, testdataPath } from "./harness.mjs";

let server, ollama, openai;

before(async () => {
  server = await startServer({ vision: true });
  ollama = new Ollama({ host: server.url });
  openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused" });
});

after(async () => {
  await server?.stop();
});

const image = (name) => fs.readFileSync(testdataPath(`reference/tiny-${name}/image.png`));
const opts = { temperature: 0, num_predict: 4 };

// A PNG of width x height (8-bit RGB), written here so that the tests can lie in its header.
function crc32(buf) {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}
function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}
function png(width, height, { rows = null, claim = null } = {}) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(claim?.width ?? width, 0);
  ihdr.writeUInt32BE(claim?.height ?? height, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  const raw = rows ?? Buffer.alloc(height * (1 + width * 3), 0x80).fill(0, 0, 1);
  for (let y = 0; y < height && !rows; y++) raw[y * (1 + width * 3)] = 0;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", zlib.deflateSync(raw)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

for (const name of ["qwen2vl", "mllama"]) {
  test(`${name}: a chat with an image through the ollama client gets an answer`, async () => {
    const r = await ollama.chat({
      model: name,
      messages: [{ role: "user", content: "describe this", images: [image(name).toString("base64")] }],
      options: opts,
      stream: false,
    });
    assert.equal(r.done, true);
    assert.equal(typeof r.message.content, "string");
    assert.ok(r.eval_count > 0, JSON.stringify(r));
    const show = await ollama.show({ model: name });
    assert.deepEqual(show.capabilities.slice(0, 1), ["completion"]);
    assert.ok(show.capabilities.includes("vision"), JSON.stringify(show.capabilities));
  });

  test(`${name}: an image_url data URI through the openai SDK gets an answer`, async () => {
    const r = await openai.chat.completions.create({
      model: name,
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "what is this?" },
            {
              type: "image_url",
              image_url: { url: `data:image/png;base64,${image(name).toString("base64")}` },
            },
          ],
        },
      ],
      max_tokens: 4,
      temperature: 0,
    });
    assert.equal(r.choices.length, 1);
    assert.equal(typeof r.choices[0].message.content, "string");
    assert.ok(r.usage.completion_tokens > 0);
  });

  test(`${name}: /api/generate takes images too`, async () => {
    const r = await ollama.generate({
      model: name,
      prompt: "describe",
      images: [image(name).toString("base64")],
      options: opts,
      stream: false,
    });
    assert.equal(r.done, true);
  });
}

// The server's log arrives on its own stream, after the response: wait (bounded) until it shows
// the request's access line, which the server writes after everything the request logged.
async function logUntil(count) {
  const deadline = Date.now() + 10000;
  while (chats() < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.ok(chats() >= count, server.output().slice(-2000));
}
const chats = () => (server.output().match(/POST +\/api\/chat/g) ?? []).length;

test("the next turn about the same image does not run the vision encoder again", async () => {
  const img = png(64, 48).toString("base64");
  const encodings = () => (server.output().match(/vision encoder: image/g) ?? []).length;
  await logUntil(chats());
  const before = encodings();
  const chatsBefore = chats();
  const first = await ollama.chat({
    model: "qwen2vl",
    messages: [{ role: "user", content: "what is it?", images: [img] }],
    options: opts,
    stream: false,
  });
  await logUntil(chatsBefore + 1);
  assert.equal(encodings(), before + 1, server.output().slice(-2000));
  await ollama.chat({
    model: "qwen2vl",
    messages: [
      { role: "user", content: "what is it?", images: [img] },
      first.message,
      { role: "user", content: "and its colour?" },
    ],
    options: opts,
    stream: false,
  });
  await logUntil(chatsBefore + 2);
  assert.equal(encodings(), before + 1, server.output().slice(-2000));
});

test("images sent to a model without vision get a 400 that says so", async () => {
  await assert.rejects(
    ollama.chat({
      model: "stories",
      messages: [{ role: "user", content: "look", images: [image("qwen2vl").toString("base64")] }],
    }),
    (e) => e.status_code === 400 && /does not support images/.test(e.message),
  );
  await assert.rejects(
    openai.chat.completions.create({
      model: "stories",
      messages: [
        {
          role: "user",
          content: [{ type: "image_url", image_url: { url: `data:image/png;base64,${image("qwen2vl").toString("base64")}` } }],
        },
      ],
    }),
    (e) => e.status === 400 && /does not support images/.test(e.message),
  );
});

test("hostile images each get a clear 400 and the next request succeeds", async () => {
  const good = png(40, 30);
  // A 20000x20000 image in a few kilobytes: zeros compress 1000:1.
  const bombRows = Buffer.alloc(2000 * (1 + 2000 * 3));
  const cases = [
    ["truncated PNG", good.subarray(0, good.length - 20), /truncat|corrupt|image/i],
    ["truncated JPEG", Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46]), /JPEG|truncat/i],
    ["a 50000x50000 header", png(4, 4, { claim: { width: 50000, height: 50000 } }), /50000/],
    ["a decompression bomb", png(2000, 2000, { rows: bombRows, claim: { width: 20000, height: 20000 } }), /20000|limit/],
    ["not an image", Buffer.from("hello, this is text"), /not an image|PNG, JPEG or WebP/i],
    ["a 1x1 image", png(1, 1), /1x1 pixels; each side must be at least 2/],
    ["a 1x4000 image", png(1, 4000), /1x4000/],
  ];
  for (const [what, bytes, message] of cases) {
    await assert.rejects(
      ollama.chat({
        model: "qwen2vl",
        messages: [{ role: "user", content: "look", images: [bytes.toString("base64")] }],
        options: opts,
      }),
      (e) => e.status_code === 400 && message.test(e.message),
      what,
    );
  }
  const r = await fetch(`${server.url}/api/chat`, {
    method: "POST",
    body: JSON.stringify({ model: "qwen2vl", messages: [{ role: "user", content: "x", images: ["not base64!"] }] }),
  });
  assert.equal(r.status, 400);
  assert.match((await r.json()).error, /base64/);
  const ok = await ollama.chat({
    model: "qwen2vl",
    messages: [{ role: "user", content: "look", images: [good.toString("base64")] }],
    options: opts,
    stream: false,
  });
  assert.equal(ok.done, true);
});

test("image URLs are refused unless the server allows them", async () => {
  await assert.rejects(
    openai.chat.completions.create({
      model: "qwen2vl",
      messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "http://127.0.0.1:9/x.png" } }] }],
    }),
    (e) => e.status === 400 && /CORRAL_ALLOW_IMAGE_URLS/.test(e.message),
  );
});

test("with CORRAL_ALLOW_IMAGE_URLS=1 an http image URL is fetched; a failing one is a 400", async () => {
  const files = http.createServer((req, res) => {
    if (req.url === "/photo.png") {
      res.writeHead(200, { "Content-Type": "image/png" });
      res.end(image("qwen2vl"));
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise((r) => files.listen(0, "127.0.0.1", r));
  const base = `http://127.0.0.1:${files.address().port}`;
  const fetching = await startServer({ vision: true, env: { CORRAL_ALLOW_IMAGE_URLS: "1" } });
  try {
    const client = new OpenAI({ baseURL: `${fetching.url}/v1`, apiKey: "unused" });
    const ask = (url) =>
      client.chat.completions.create({
        model: "qwen2vl",
        messages: [{ role: "user", content: [{ type: "text", text: "what?" }, { type: "image_url", image_url: { url } }] }],
        max_tokens: 2,
      });
    const r = await ask(`${base}/photo.png`);
    assert.equal(typeof r.choices[0].message.content, "string");
    await assert.rejects(ask(`${base}/missing.png`), (e) => e.status === 400 && /404/.test(e.message));
  } finally {
    await fetching.stop();
    files.close();
  }
});
