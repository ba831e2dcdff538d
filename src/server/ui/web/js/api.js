// The page's way to the server's API: every request goes through apiFetch (the API key when the
// server asks for one) or streamNdjson (Ollama's streaming answers, one JSON object a line).
//
// For the rest of the page (served by src/server/routes_ui.cc from the table compiled into
// corral):
// - Libraries, as ES modules at fixed URLs (from npm, pinned in src/server/ui/package.json):
//     import { marked } from "../vendor/marked.js";      // marked (lib/marked.esm.js)
//     import DOMPurify from "../vendor/purify.js";       // DOMPurify 3 (dist/purify.es.mjs)
//   i.e. /ui/vendor/marked.js and /ui/vendor/purify.js.
// - Every file under src/server/ui/web is served at /ui/<its path>; /ui/ is index.html.
// - The Content-Security-Policy allows scripts and styles from the page's own files only: no
//   inline <script>, no on*= attributes, no style="" attributes or <style> elements (set
//   element.style.x from script instead, which CSP allows), no eval; images also from data: and
//   blob: URLs (attachments); fetches to the same origin only.

const KEY_STORAGE = "corral.apiKey";

// Asks the user for the API key; returns it, or null when they decline. Replaceable with a styled
// dialog by setKeyPrompt(fn): fn(message) returns the key or null (or a promise of either).
let keyPrompt = (message) => window.prompt(message);
// One question at a time: requests refused together wait for the same answer.
let pendingKey = null;
// The user's last answer, until the server refuses it: a prompt blocks the page, so requests
// refused together come back one by one, after the answer, and try it instead of asking again.
let answered = "";

export function setKeyPrompt(fn) {
  keyPrompt = fn;
}

export function getApiKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) || "";
  } catch {
    return "";  // storage disabled: the key lives for this request only
  }
}

export function setApiKey(key) {
  try {
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
  } catch {
    // storage disabled
  }
}

// fetch(), with a request that never reached the server (fetch's TypeError, "Failed to fetch")
// told in words. An abort stays an AbortError.
async function send(path, init) {
  try {
    return await fetch(path, init);
  } catch (e) {
    throw unreachable(e);
  }
}

function unreachable(e) {
  if (!(e instanceof TypeError)) return e;
  return new Error(`cannot reach corral at ${location.host} (${e.message}): is \`corral serve\` running?`);
}

function withKey(opts, key) {
  const headers = new Headers(opts.headers || {});
  if (key) headers.set("Authorization", `Bearer ${key}`);
  return { ...opts, headers };
}

async function askForKey(refusedKey) {
  if (!pendingKey) {
    const message = refusedKey
      ? "The API key was refused. Enter the server's API key (CORRAL_API_KEY):"
      : "This server needs an API key (CORRAL_API_KEY). Enter it:";
    pendingKey = Promise.resolve()
      .then(() => keyPrompt(message))
      .then((key) => {
        answered = typeof key === "string" ? key.trim() : "";
        return answered;
      })
      .finally(() => {
        pendingKey = null;
      });
  }
  return pendingKey;
}

// The error of a failed response: the server's {"error": "..."} text when it sent one.
async function responseError(res) {
  let message = `${res.status} ${res.statusText}`.trim();
  try {
    const text = await res.text();
    try {
      const body = JSON.parse(text);
      if (body && typeof body.error === "string") message = body.error;
      else if (body && body.error && typeof body.error.message === "string") {
        message = body.error.message;  // OpenAI's shape
      }
    } catch {
      if (text) message = text.slice(0, 500);
    }
  } catch {
    // body unreadable: the status says enough
  }
  const error = new Error(message);
  error.status = res.status;
  return error;
}

// fetch() against the API, with the key when one is stored. A 401 asks the user for the key once,
// stores it and retries; a second 401 (or no answer) is thrown. Resolves to the Response of a
// 2xx answer; any other status is thrown as Error(the server's message) with .status, and a
// server that cannot be reached as Error("cannot reach corral ...").
export async function apiFetch(path, opts = {}) {
  const stored = getApiKey();
  let res = await send(path, withKey(opts, stored));
  if (res.status === 401) {
    // The body is dropped: the request is made again with the key.
    res.body?.cancel().catch(() => {});
    // A key given meanwhile (stored, or answered for another request) first; else ask.
    const current = getApiKey() || answered;
    const key = current && current !== stored ? current : await askForKey(stored);
    if (!key) {
      const error = new Error("this server needs an API key (CORRAL_API_KEY)");
      error.status = 401;
      throw error;
    }
    res = await send(path, withKey(opts, key));
    if (res.status !== 401) setApiKey(key);
    else if (answered === key) answered = "";
  }
  if (!res.ok) throw await responseError(res);
  return res;
}

// apiFetch, parsing the JSON answer. body (when given) is sent as JSON with POST unless
// opts.method says otherwise.
export async function apiJson(path, body, opts = {}) {
  const init = { ...opts };
  if (body !== undefined) {
    init.method = init.method || "POST";
    init.headers = { "Content-Type": "application/json", ...(init.headers || {}) };
    init.body = JSON.stringify(body);
  }
  const res = await apiFetch(path, init);
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

// POSTs body (JSON) to path and yields each object of the NDJSON answer as it arrives (lines split
// across network chunks are joined). An object {"error": "..."} in the stream is thrown as
// Error(that text). opts.signal (an AbortController's) stops the request; the generator then
// throws the AbortError. Ending the loop early (break) cancels the request too.
export async function* streamNdjson(path, body, opts = {}) {
  const res = await apiFetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
    signal: opts.signal,
  });
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  const parse = (line) => {
    const value = JSON.parse(line);
    if (value && typeof value.error === "string") {
      const error = new Error(value.error);
      error.stream = true;
      throw error;
    }
    return value;
  };
  try {
    for (;;) {
      let chunk;
      try {
        chunk = await reader.read();
      } catch (e) {
        throw unreachable(e);  // the connection dropped mid-answer
      }
      const { done, value } = chunk;
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (line) yield parse(line);
      }
    }
    buffer += decoder.decode();
    if (buffer.trim()) yield parse(buffer.trim());
  } finally {
    // An early end (break, an error, an abort): the server stops generating when the connection
    // goes.
    reader.cancel().catch(() => {});
  }
}
