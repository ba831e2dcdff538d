// Conversations kept in the browser's localStorage: one key holds the list (id, title, times),
// one key per conversation its messages, system prompt and options, so that saving the open
// conversation after every reply does not rewrite all the others.
const kIndexKey = "corral.conversations";
const kConversationKey = (id) => `corral.conversation.${id}`;

function read(key, fallback) {
  try {
    const v = localStorage.getItem(key);
    return v === null ? fallback : JSON.parse(v);
  } catch {
    return fallback;
  }
}

// Returns "" when saved, or a message when the browser refused (the quota is a few MB: images
// fill it first, so a conversation that does not fit is saved without them).
function write(key, value) {
  try {
    localStorage.setItem(key, JSON.stringify(value));
    return "";
  } catch (e) {
    return e && e.name === "QuotaExceededError" ? "quota" : String(e);
  }
}

function newId() {
  return Date.now().toString(36) + Math.random().toString(36).slice(2, 8);
}

export function titleFrom(text) {
  const line = (text || "").replace(/\s+/g, " ").trim();
  if (!line) return "New chat";
  return line.length > 48 ? line.slice(0, 47) + "…" : line;
}

export function listConversations() {
  const list = read(kIndexKey, []);
  return Array.isArray(list) ? list.sort((a, b) => b.updated - a.updated) : [];
}

export function loadConversation(id) {
  const c = read(kConversationKey(id), null);
  if (!c || !Array.isArray(c.messages)) return null;
  c.options ??= {};
  c.system ??= "";
  // A reply saved while it streamed (the tab closed under it) ended there.
  for (const m of c.messages) {
    if (m.streaming) {
      delete m.streaming;
      m.stopped = true;
    }
  }
  return c;
}

export function createConversation(model) {
  const now = Date.now();
  return {
    id: newId(),
    title: "New chat",
    titled: false,
    model: model || "",
    system: "",
    options: {},
    messages: [],
    created: now,
    updated: now,
  };
}

// Saves a conversation and its index entry; returns a warning for the page to show, or "".
export function saveConversation(c) {
  c.updated = Date.now();
  let warning = "";
  if (write(kConversationKey(c.id), c)) {
    const slim = { ...c, messages: c.messages.map((m) => ({ ...m, images: undefined })) };
    warning = write(kConversationKey(c.id), slim)
      ? "This browser's storage is full: the conversation was not saved."
      : "This browser's storage is full: the conversation was saved without its images.";
  }
  const list = listConversations().filter((e) => e.id !== c.id);
  list.push({ id: c.id, title: c.title, updated: c.updated, model: c.model });
  write(kIndexKey, list);
  return warning;
}

export function renameConversation(id, title) {
  const c = loadConversation(id);
  if (!c) return;
  c.title = title.trim() || c.title;
  c.titled = true;
  saveConversation(c);
}

export function deleteConversation(id) {
  localStorage.removeItem(kConversationKey(id));
  write(
    kIndexKey,
    listConversations().filter((e) => e.id !== id),
  );
}

// Starts a download of `value` as a JSON file.
export function downloadJson(filename, value) {
  const blob = new Blob([JSON.stringify(value, null, 2)], { type: "application/json" });
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export function exportConversation(id) {
  const c = loadConversation(id);
  if (c) downloadJson(`corral-${slug(c.title)}.json`, c);
}

export function exportAll() {
  const all = listConversations()
    .map((e) => loadConversation(e.id))
    .filter(Boolean);
  downloadJson("corral-conversations.json", { conversations: all });
}

function slug(s) {
  return (s || "chat").toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "").slice(0, 40) || "chat";
}
