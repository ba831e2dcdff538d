// The conversation on screen: sends it to POST /api/chat, streams the reply into the page, stops
// it, edits and regenerates turns. Every change is handed to onChange (which saves it).
import { streamNdjson } from "./api.js";
import { MessageView } from "./chat_message.js";
import { copyText } from "./markdown.js";
import { titleFrom } from "./conversations.js";

export class Chat {
  // container: the messages element; picker: the ModelPicker; onChange(conversation) after any
  // change worth saving; onBusy(busy) when a reply starts or ends.
  constructor({ container, picker, onChange, onBusy }) {
    this.container = container;
    this.picker = picker;
    this.onChange = onChange;
    this.onBusy = onBusy;
    this.conversation = null;
    this.views = [];
    this.controller = null;
    container.addEventListener("click", (e) => this.onClick(e));
  }

  get busy() {
    return this.controller !== null;
  }

  show(conversation) {
    // A reply still streaming is stopped; it ends (and is saved) in its own conversation.
    if (this.controller) {
      this.controller.abort();
      this.controller = null;
      this.onBusy(false);
      const { conversation: c, assistant } = this.live;
      delete assistant.streaming;
      assistant.stopped = true;
      this.onChange(c);
    }
    this.conversation = conversation;
    this.views = conversation.messages.map((m, i) => new MessageView(m, i));
    this.container.replaceChildren(...this.views.map((v) => v.root));
    this.renderEmpty();
    this.scrollToEnd(true);
  }

  renderEmpty() {
    this.container.classList.toggle("empty", this.views.length === 0);
    if (this.views.length) return;
    const hello = document.createElement("div");
    hello.className = "welcome";
    const h = document.createElement("h1");
    h.textContent = "What shall we talk about?";
    const p = document.createElement("p");
    p.textContent =
      "Pick a model above and send a message. Replies stream in with their speed shown below them.";
    hello.append(h, p);
    this.container.replaceChildren(hello);
  }

  push(message) {
    const view = new MessageView(message, this.conversation.messages.length);
    this.conversation.messages.push(message);
    if (!this.views.length) this.container.replaceChildren();
    this.container.classList.remove("empty");
    this.views.push(view);
    this.container.append(view.root);
    return view;
  }

  // Drops message `index` and every later one.
  truncate(index) {
    this.conversation.messages.length = index;
    for (const v of this.views.splice(index)) v.root.remove();
  }

  send({ text, images }) {
    if (this.busy) return false;
    const model = this.picker.value;
    if (!model) {
      this.notice("Pick a model first (or pull one in Models).");
      return false;
    }
    const c = this.conversation;
    const user = { role: "user", content: text };
    if (images.length) user.images = images;
    this.push(user);
    if (!c.titled && c.title === "New chat") c.title = titleOf(text, images);
    this.reply();
    return true;
  }

  // Resends the conversation up to the end and streams the model's answer into a new message.
  async reply() {
    const c = this.conversation;
    const model = this.picker.value;
    c.model = model;
    const assistant = { role: "assistant", content: "", streaming: true, model };
    const history = requestMessages(c);
    const view = this.push(assistant);
    this.onChange(c);
    this.scrollToEnd(true);
    const controller = new AbortController();
    this.controller = controller;
    this.live = { conversation: c, assistant };
    this.onBusy(true);

    await this.picker.ready;
    const body = { model, messages: history, stream: true };
    if (Object.keys(c.options || {}).length) body.options = { ...c.options };
    if (this.picker.has("thinking")) body.think = true;

    const started = performance.now();
    view.root.dataset.requestStartMs = started.toFixed(2);
    let first = true;
    try {
      for await (const chunk of streamNdjson("/api/chat", body, { signal: controller.signal })) {
        const m = chunk.message || {};
        if (m.content) assistant.content += m.content;
        if (m.thinking) assistant.thinking = (assistant.thinking || "") + m.thinking;
        if (m.tool_calls?.length) assistant.tool_calls = [...(assistant.tool_calls || []), ...m.tool_calls];
        const visible = Boolean(m.content || m.thinking || m.tool_calls?.length);
        if (first && visible) {
          first = false;
          this.markFirstToken(view, assistant, started);
        } else if (visible) {
          view.schedule(() => this.scrollToEnd());
        }
        if (chunk.done) {
          assistant.stats = { ...pickStats(chunk), page_ttft_ms: assistant.page_ttft_ms };
          if (chunk.done_reason) assistant.stats.done_reason = chunk.done_reason;
        }
      }
    } catch (e) {
      if (e.name === "AbortError") assistant.stopped = true;
      else assistant.error = e.message || String(e);
    } finally {
      delete assistant.streaming;
      if (assistant.page_ttft_ms !== undefined && !assistant.stats) {
        assistant.stats = { page_ttft_ms: assistant.page_ttft_ms };
      }
      delete assistant.page_ttft_ms;
      if (this.controller === controller) {
        this.controller = null;
        this.onBusy(false);
      }
      if (this.conversation === c) {
        view.flush();
        this.scrollToEnd();
      }
      this.onChange(c);
    }
  }

  // The first token is rendered at once (later ones wait for the next frame). Its timestamps are
  // kept on the message element: when its chunk was read from the stream (data-first-chunk-ms)
  // and the start of the frame that paints it (data-first-paint-ms: the animation-frame callback
  // after the render runs just before that frame's paint).
  markFirstToken(view, assistant, started) {
    const chunkAt = performance.now();
    assistant.page_ttft_ms = Math.round(chunkAt - started);
    view.root.dataset.firstChunkMs = chunkAt.toFixed(2);
    view.flush();
    this.scrollToEnd(true);
    requestAnimationFrame(() => (view.root.dataset.firstPaintMs = performance.now().toFixed(2)));
  }

  stop() {
    if (this.controller) this.controller.abort();
  }

  edit(index) {
    const view = this.views[index];
    if (!view || this.busy) return;
    view.edit((text) => {
      const m = this.conversation.messages[index];
      this.truncate(index + 1);
      m.content = text;
      view.render();
      if (index === 0 && !this.conversation.titled) this.conversation.title = titleOf(text, m.images);
      this.reply();
    });
  }

  regenerate(index) {
    if (this.busy) return;
    this.truncate(index);
    this.reply();
  }

  onClick(e) {
    const b = e.target.closest("button");
    if (!b) return;
    if (b.classList.contains("copy-code")) {
      const code = b.closest(".code-block")?.querySelector("pre");
      if (code) this.flash(b, copyText(code.textContent));
      return;
    }
    const article = b.closest("article.msg");
    if (!article) return;
    const index = Number(article.dataset.index);
    switch (b.dataset.action) {
      case "copy":
        this.flash(b, copyText(this.conversation.messages[index]?.content || ""));
        break;
      case "edit":
        this.edit(index);
        break;
      case "regenerate":
        this.regenerate(index);
        break;
    }
  }

  async flash(b, done) {
    const label = b.textContent;
    b.textContent = (await done) ? "Copied" : "Copy failed";
    setTimeout(() => (b.textContent = label), 1200);
  }

  // A line in the conversation that is no message (nothing to send, a refused file).
  notice(text) {
    const n = document.createElement("div");
    n.className = "notice";
    n.dataset.testid = "notice";
    n.setAttribute("role", "status");
    n.textContent = text;
    this.container.append(n);
    this.scrollToEnd(true);
    setTimeout(() => n.remove(), 6000);
  }

  // Follows the reply while the reader is at the bottom; leaves them be when they scrolled up.
  scrollToEnd(force) {
    const s = this.container;
    if (force || s.scrollHeight - s.scrollTop - s.clientHeight < 120) s.scrollTop = s.scrollHeight;
  }
}

// The messages sent for a reply: the system prompt, then every turn except failed, empty replies.
function requestMessages(c) {
  const out = [];
  if (c.system?.trim()) out.push({ role: "system", content: c.system });
  for (const m of c.messages) {
    if (m.role === "assistant" && !m.content && !m.tool_calls?.length) continue;
    const r = { role: m.role, content: m.content || "" };
    if (m.images?.length) r.images = m.images;
    if (m.tool_calls?.length) r.tool_calls = m.tool_calls;
    out.push(r);
  }
  return out;
}

function pickStats(chunk) {
  const s = {};
  for (const k of [
    "total_duration",
    "load_duration",
    "prompt_eval_count",
    "prompt_eval_duration",
    "eval_count",
    "eval_duration",
  ]) {
    if (typeof chunk[k] === "number") s[k] = chunk[k];
  }
  return s;
}

function titleOf(text, images) {
  return !text?.trim() && images?.length ? "Image" : titleFrom(text);
}
