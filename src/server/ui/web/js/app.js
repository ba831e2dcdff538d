// The chat page: wires the sidebar (conversations), the model picker, the settings, the chat and
// the Models view together.
import {
  createConversation,
  deleteConversation,
  exportAll,
  exportConversation,
  listConversations,
  loadConversation,
  renameConversation,
  saveConversation,
} from "./conversations.js";
import { Chat } from "./chat.js";
import { Composer } from "./composer.js";
import { ModelPicker } from "./model_picker.js";
import { Settings } from "./settings.js";
import { initTheme } from "./theme.js";
import { ConversationList } from "./sidebar.js";

const $ = (id) => document.getElementById(id);
const kCurrentKey = "corral.current";

initTheme($("theme-toggle"));

let current = null;

const picker = new ModelPicker($("model-picker"), $("model-caps"), (name) => {
  if (!current) return;
  current.model = name;
  save();
});

const settings = new Settings($("settings"), $("settings-toggle"), () => save());

const chat = new Chat({
  container: $("messages"),
  picker,
  onChange: (c) => save(c),
  onBusy: (busy) => {
    $("send").hidden = busy;
    $("stop").hidden = !busy;
    document.body.classList.toggle("busy", busy);
  },
});

const composer = new Composer({
  form: $("composer"),
  prompt: $("prompt"),
  attach: $("attach"),
  fileInput: $("file-input"),
  attachments: $("attachments"),
  dropZone: $("chat-view"),
  onSend: (m) => chat.send(m),
  onError: (text) => chat.notice(text),
});

const list = new ConversationList($("conversations"), {
  open: (id) => open(id),
  rename: (id, title) => {
    renameConversation(id, title);
    if (current?.id === id) current.title = title.trim() || current.title;
    list.render(current?.id);
  },
  remove: (id) => {
    deleteConversation(id);
    if (current?.id === id) current.deleted = true;
    if (current?.id === id) startNew();
    else list.render(current?.id);
  },
  exportOne: (id) => exportConversation(id),
});

// Saves a conversation (the open one unless named: a reply stopped by switching away still ends
// in its own) once it holds a message; an untouched "New chat" is not listed, a deleted one stays
// deleted.
function save(c = current) {
  if (!c || c.deleted) return;
  if (!c.messages.length && !listConversations().some((e) => e.id === c.id)) return;
  const warning = saveConversation(c);
  if (warning && c === current) chat.notice(warning);
  list.render(current?.id);
}

function show(c) {
  current = c;
  localStorage.setItem(kCurrentKey, c.id);
  settings.bind(c);
  if (c.model) picker.setValue(c.model);
  chat.show(c);
  list.render(c.id);
  closeSidebar();
}

function open(id) {
  if (id === current?.id) return closeSidebar();
  const c = loadConversation(id);
  if (c) show(c);
  route("chat");
}

function startNew() {
  show(createConversation(picker.value));
  route("chat");
  composer.focus();
}

// Views: #chat (default) and #models; the Models view is U1's, mounted on first visit.
let modelsMounted = null;
async function route(view) {
  const models = view === "models";
  if (location.hash !== `#${view}`) history.replaceState(null, "", `#${view}`);
  $("chat-view").hidden = models;
  $("models-view").hidden = !models;
  $("picker-area").hidden = models;
  $("view-title").hidden = !models;
  $("settings-toggle").hidden = models;
  for (const a of document.querySelectorAll(".view-link")) {
    a.classList.toggle("active", a.dataset.view === view);
  }
  if (models && !modelsMounted) {
    modelsMounted = import("./models.js")
      .then((m) => m.mountModels($("models-view")))
      .catch((e) => {
        $("models-view").textContent = `The models view failed to load: ${e.message}`;
      });
  }
  // Back from the Models view: a model may have been pulled or deleted there.
  if (!models && modelsMounted) picker.refresh(current?.model);
  closeSidebar();
}

function openSidebar() {
  document.body.classList.add("sidebar-open");
}
function closeSidebar() {
  document.body.classList.remove("sidebar-open");
}

$("new-chat").addEventListener("click", startNew);
$("export-all").addEventListener("click", exportAll);
$("stop").addEventListener("click", () => chat.stop());
$("sidebar-open").addEventListener("click", openSidebar);
$("sidebar-close").addEventListener("click", closeSidebar);
$("scrim").addEventListener("click", closeSidebar);
window.addEventListener("hashchange", () => route(location.hash === "#models" ? "models" : "chat"));
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && chat.busy) {
    e.preventDefault();
    chat.stop();
  }
});

async function start() {
  await picker.refresh();
  const last = localStorage.getItem(kCurrentKey);
  const c = (last && loadConversation(last)) || createConversation(picker.value);
  show(c);
  route(location.hash === "#models" ? "models" : "chat");
  composer.focus();
  document.body.dataset.ready = "1";
}

start();
