// The chat page's calls to the API, on api.js (which adds the API key and asks for it on a 401,
// and throws the server's own {"error"} text). A request that never reached the server says so
// in words instead of the browser's bare "Failed to fetch".
import { apiJson, streamNdjson } from "./api.js";

function explain(e) {
  if (e?.name === "AbortError" || e?.status !== undefined || e?.stream) return e;
  if (e instanceof TypeError) {
    return new Error(`cannot reach corral at ${location.host} (${e.message}): is \`corral serve\` running?`);
  }
  return e;
}

export async function getJson(path) {
  try {
    return await apiJson(path);
  } catch (e) {
    throw explain(e);
  }
}

export async function postJson(path, body) {
  try {
    return await apiJson(path, body);
  } catch (e) {
    throw explain(e);
  }
}

// Yields each object of the streamed NDJSON answer; signal stops it (AbortError).
export async function* postNdjson(path, body, signal) {
  try {
    yield* streamNdjson(path, body, { signal });
  } catch (e) {
    throw explain(e);
  }
}
