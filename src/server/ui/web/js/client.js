// The chat page's calls to the API, on api.js's apiFetch (which adds the API key and asks for it
// on a 401). Errors carry the server's own message ({"error": "..."}) so the page can show it.
import { apiFetch } from "./api.js";

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

async function errorOf(res) {
  const text = await res.text().catch(() => "");
  let message = text;
  try {
    message = JSON.parse(text).error || text;
  } catch {}
  return new ApiError(message || `${res.status} ${res.statusText}`, res.status);
}

async function call(path, init) {
  let res;
  try {
    res = await apiFetch(path, init);
  } catch (e) {
    if (e.name === "AbortError") throw e;
    if (e instanceof ApiError) throw e;
    throw new ApiError(`cannot reach corral at ${location.host}: ${e.message || e}`, 0);
  }
  if (!res.ok) throw await errorOf(res);
  return res;
}

export async function getJson(path) {
  return (await call(path)).json();
}

export async function postJson(path, body) {
  const res = await call(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  return res.json();
}

// POSTs body and yields each NDJSON object of the streamed reply. An {"error"} line mid-stream
// throws, like a failed status does before the stream starts.
export async function* postNdjson(path, body, signal) {
  const res = await call(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
    signal,
  });
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += decoder.decode(value, { stream: true });
      let nl;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (line) yield parseLine(line, res.status);
      }
    }
    const rest = (buffered + decoder.decode()).trim();
    if (rest) yield parseLine(rest, res.status);
  } finally {
    reader.releaseLock();
  }
}

function parseLine(line, status) {
  let obj;
  try {
    obj = JSON.parse(line);
  } catch {
    throw new ApiError(`the server sent a line that is not JSON: ${line.slice(0, 200)}`, status);
  }
  if (obj && typeof obj.error === "string") throw new ApiError(obj.error, status);
  return obj;
}
