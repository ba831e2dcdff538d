#!/usr/bin/env node
// Load and fault test of `corral serve` (issue 14's reliability kit). Starts its own server on a
// free loopback port over a fresh store holding stories260K (from the fixtures) and, unless
// --no-1b, a synthetic llama-3.2-1b Q4_0 (`corral debug synth`), then runs, in order:
//
//   baseline     latency of ordinary requests on the idle server
//   slowloris    N sockets sending a request head one byte at a time; latency meanwhile
//   chunked      4 concurrent 1 GB chunked bodies to the generation routes; peak RSS meanwhile
//   length       a Content-Length of 1 GB with the head only: time to the 413
//   streams      64 concurrent streams on stories260K + 16 on the 1B model, with some clients
//                that vanish mid-stream and some that read slowly; all others must complete
//
// and prints, for each phase, latency percentiles and the server's RSS and thread count before
// and after. Only loopback is ever addressed.
//
//   node bench/server_load.mjs [--corral build/corral] [--slowloris 200] [--streams 64]
//                              [--streams-1b 16] [--no-1b] [--chunked-gb 1] [--json]
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
};
const corral = path.resolve(flag('--corral', path.join(here, '..', 'build', 'corral')));
const testdata = process.env.CORRAL_TESTDATA || path.join(here, '..', '..', 'shared', 'testdata');
const nSlowloris = Number(flag('--slowloris', 200));
const nStreams = Number(flag('--streams', 64));
const nStreams1b = args.includes('--no-1b') ? 0 : Number(flag('--streams-1b', 16));
const chunkedBytes = Number(flag('--chunked-gb', 1)) * 2 ** 30;
const asJson = args.includes('--json');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => { if (!asJson) console.log(...a); };

// ---- the server ----------------------------------------------------------------------------

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'corral-server-load-'));
const models = path.join(work, 'models');
const env = { ...process.env, CORRAL_MODELS: models, CORRAL_NO_SERVER: '1' };

function create(name, from) {
  const mf = path.join(work, `${name}.Modelfile`);
  fs.writeFileSync(mf, `FROM ${from}\n`);
  execFileSync(corral, ['create', name, '-f', mf], { env, stdio: 'ignore' });
}
create('stories', path.join(testdata, 'tinystories260k/stories260K-f32.gguf'));
if (nStreams1b > 0) {
  const synth = path.join(work, 'l1b-q4_0.gguf');
  execFileSync(corral, ['debug', 'synth', 'llama-3.2-1b', '--type', 'Q4_0', '-o', synth],
               { env, stdio: 'ignore' });
  create('l1b', synth);
  fs.rmSync(synth);
}

const server = spawn(corral, ['serve'], {
  env: { ...env, CORRAL_HOST: '127.0.0.1:0' }, stdio: ['ignore', 'pipe', 'pipe'],
});
let serverLog = '';
server.stderr.on('data', (d) => { serverLog = (serverLog + d).slice(-20000); });
const port = await new Promise((resolve, reject) => {
  let out = '';
  server.stdout.on('data', (d) => {
    out += d;
    const m = out.match(/listening on .*:(\d+)/);
    if (m) resolve(Number(m[1]));
  });
  server.on('exit', (code) => reject(new Error(`corral serve exited (${code}): ${serverLog}`)));
});
const base = `http://127.0.0.1:${port}`;

function procStatus() {
  const s = fs.readFileSync(`/proc/${server.pid}/status`, 'utf8');
  const num = (k) => Number((s.match(new RegExp(`^${k}:\\s+(\\d+)`, 'm')) || [0, 0])[1]);
  return { rss_mb: num('VmRSS') / 1024, threads: num('Threads'),
           fds: fs.readdirSync(`/proc/${server.pid}/fd`).length };
}

// Peak RSS while fn runs, sampled every 50 ms.
async function withPeak(fn) {
  let peak = procStatus().rss_mb;
  const timer = setInterval(() => { try { peak = Math.max(peak, procStatus().rss_mb); } catch {} },
                            50);
  try { return { result: await fn(), peak_rss_mb: peak }; } finally { clearInterval(timer); }
}

const pct = (xs, p) => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const summary = (xs) => ({ n: xs.length, p50_ms: pct(xs, 50), p90_ms: pct(xs, 90),
                           p99_ms: pct(xs, 99), max_ms: xs.length ? Math.max(...xs) : null });

// An ordinary request: its latency in ms (throws on a non-200).
async function ordinary() {
  const t0 = performance.now();
  const r = await fetch(`${base}/api/tags`, { signal: AbortSignal.timeout(30000) });
  if (r.status !== 200) throw new Error(`/api/tags: ${r.status}`);
  await r.text();
  return performance.now() - t0;
}
async function latencies(n, gapMs = 50) {
  const out = [];
  for (let i = 0; i < n; ++i) { out.push(await ordinary()); await sleep(gapMs); }
  return out;
}

const report = { port, phases: {} };
const phase = (name, data) => {
  report.phases[name] = data;
  log(`\n== ${name}`);
  log(JSON.stringify(data, null, 1));
};

// ---- phases --------------------------------------------------------------------------------

// Loads both models first, so their memory is in the baseline.
for (const m of ['stories', ...(nStreams1b ? ['l1b'] : [])]) {
  const r = await fetch(`${base}/api/generate`, {
    method: 'POST', body: JSON.stringify({ model: m, prompt: 'Hi', stream: false,
                                            options: { num_predict: 2 } }),
  });
  await r.text();
}
const before = procStatus();
phase('baseline', { ...before, latency: summary(await latencies(20)) });

{
  // Slowloris: each socket sends a request head one byte every 500 ms and never finishes it.
  const head = 'GET /api/tags HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ' + 'a'.repeat(4000);
  const sockets = [];
  let refused = 0, closed = 0;
  for (let i = 0; i < nSlowloris; ++i) {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => { refused++; });
    s.on('close', () => { if (!s.ours) closed++; });
    s.at = 0;
    sockets.push(s);
  }
  const drip = setInterval(() => {
    for (const s of sockets) if (!s.destroyed && s.at < head.length) s.write(head[s.at++]);
  }, 500);
  await sleep(1000);
  const during = await latencies(20, 200);
  const status = procStatus();
  clearInterval(drip);
  for (const s of sockets) { s.ours = true; s.destroy(); }
  await sleep(200);
  phase('slowloris', { sockets: nSlowloris, closed_by_server: closed, errors: refused,
                       latency_during: summary(during), during: status, after: procStatus() });
}

// A chunked upload of `total` bytes to path; resolves with the status the server answered (or
// 'closed') and how many bytes were sent by then.
function chunkedBomb(route, total) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let sent = 0, answered = null, buf = '';
    const chunk = Buffer.alloc(1 << 20, 'a');
    const frame = Buffer.concat([Buffer.from(chunk.length.toString(16) + '\r\n'), chunk,
                                 Buffer.from('\r\n')]);
    const finish = (status) => {
      if (answered !== null) return;
      answered = status;
      s.destroy();
      resolve({ status, sent_mb: sent / 2 ** 20 });
    };
    s.on('data', (d) => {
      buf += d;
      const m = buf.match(/^HTTP\/1\.1 (\d+)/);
      if (m) finish(Number(m[1]));
    });
    s.on('error', () => finish('reset'));
    s.on('close', () => finish('closed'));
    const pump = () => {
      while (answered === null && sent < total) {
        sent += chunk.length;
        if (!s.write(frame)) return s.once('drain', pump);
      }
      if (answered === null && sent >= total) s.write('0\r\n\r\n');
    };
    const start = '{"model": "stories", "prompt": "';
    s.write(`POST ${route} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
            `Transfer-Encoding: chunked\r\n\r\n${start.length.toString(16)}\r\n${start}\r\n`);
    pump();
  });
}

{
  const rssBefore = procStatus().rss_mb;
  const t0 = performance.now();
  const { result, peak_rss_mb } = await withPeak(() => Promise.all(
      ['/api/generate', '/api/chat', '/v1/chat/completions', '/api/generate']
          .map((r) => chunkedBomb(r, chunkedBytes))));
  phase('chunked', { bodies: result, seconds: (performance.now() - t0) / 1000,
                     rss_before_mb: rssBefore, peak_rss_mb,
                     peak_growth_mb: peak_rss_mb - rssBefore, after: procStatus(),
                     latency_after: summary(await latencies(5)) });
}

{
  const t0 = performance.now();
  const status = await new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let buf = '';
    const timer = setTimeout(() => { s.destroy(); resolve('no answer in 30 s'); }, 30000);
    s.on('data', (d) => {
      buf += d;
      const m = buf.match(/^HTTP\/1\.1 (\d+)/);
      if (m) { clearTimeout(timer); s.destroy(); resolve(Number(m[1])); }
    });
    s.on('error', () => {});
    s.write(`POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${2 ** 30}\r\n\r\n`);
  });
  phase('length', { status, ms: performance.now() - t0 });
}

// One streamed generation; kind: 'normal' | 'vanish' (closes after 5 lines) | 'slow' (reads a
// line every 50 ms).
function stream(model, numPredict, kind) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const body = JSON.stringify({ model, prompt: 'Once upon a time', stream: true,
                                  options: { num_predict: numPredict, temperature: 0.8 } });
    const s = net.connect(port, '127.0.0.1');
    let buf = '', lines = 0, first = null, done = false, paused = false;
    const end = (ok) => { s.destroy(); resolve({ kind, ok, lines, ttft_ms: first,
                                                  ms: performance.now() - t0 }); };
    s.on('data', (d) => {
      buf += d;
      const n = (buf.match(/"done":/g) || []).length;
      if (n > lines) {
        if (first === null) first = performance.now() - t0;
        lines = n;
      }
      if (/"done":true/.test(buf)) { done = true; return end(true); }
      if (kind === 'vanish' && lines >= 5) return end(true);
      if (kind === 'slow' && !paused) {
        paused = true;
        s.pause();
        setTimeout(() => { paused = false; s.resume(); }, 50);
      }
    });
    s.on('error', () => end(false));
    s.on('close', () => { if (!done && kind !== 'vanish') end(false); });
    s.write(`POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
            `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  });
}

{
  const rssBefore = procStatus();
  const kinds = (n) => Array.from({ length: n }, (_, i) =>
      i % 8 === 3 ? 'vanish' : i % 8 === 5 ? 'slow' : 'normal');
  const t0 = performance.now();
  const { result, peak_rss_mb } = await withPeak(() => Promise.all([
    ...kinds(nStreams).map((k) => stream('stories', 64, k)),
    ...kinds(nStreams1b).map((k) => stream('l1b', 16, k)),
  ]));
  const failed = result.filter((r) => !r.ok);
  await sleep(500);
  phase('streams', {
    streams: result.length, completed: result.length - failed.length, failed: failed.length,
    by_kind: Object.fromEntries(['normal', 'vanish', 'slow'].map((k) => [k,
      result.filter((r) => r.kind === k && r.ok).length])),
    seconds: (performance.now() - t0) / 1000,
    ttft: summary(result.map((r) => r.ttft_ms).filter((x) => x !== null)),
    total: summary(result.map((r) => r.ms)),
    before: rssBefore, peak_rss_mb, after: procStatus(),
  });
}

const after = procStatus();
report.before = before;
report.after = after;
report.rss_change_pct = (100 * (after.rss_mb - before.rss_mb)) / before.rss_mb;
log(`\n== overall: RSS ${before.rss_mb.toFixed(1)} -> ${after.rss_mb.toFixed(1)} MB ` +
    `(${report.rss_change_pct.toFixed(1)}%), threads ${before.threads} -> ${after.threads}, ` +
    `fds ${before.fds} -> ${after.fds}`);
if (asJson) console.log(JSON.stringify(report, null, 1));

server.kill('SIGTERM');
await new Promise((r) => server.on('exit', r));
fs.rmSync(work, { recursive: true, force: true });
