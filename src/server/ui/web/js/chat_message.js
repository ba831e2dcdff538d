// One message of the conversation as a DOM element. A user message shows its text as typed (plain
// text) and its images; an assistant reply shows its thinking (a collapsible block), its content
// as sanitized Markdown, its tool calls, an error if the request failed, and the server's figures.
import { renderMarkdown } from "./markdown.js";

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

function button(label, action, testid, title) {
  const b = el("button", "msg-action", label);
  b.type = "button";
  b.dataset.action = action;
  b.dataset.testid = testid;
  if (title) b.title = title;
  return b;
}

const ms = (ns) => ns / 1e6;

function formatMs(v) {
  return v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${Math.round(v)} ms`;
}

// The line under a reply, from the API's own figures (nanoseconds) and the page's measurement.
export function statsText(s) {
  const parts = [];
  if (s.eval_count && s.eval_duration) {
    parts.push(`${(s.eval_count / (s.eval_duration / 1e9)).toFixed(1)} tok/s`);
  }
  if (s.eval_count !== undefined) parts.push(`${s.eval_count} tokens`);
  if (s.prompt_eval_duration !== undefined || s.load_duration !== undefined) {
    const api = ms((s.prompt_eval_duration || 0) + (s.load_duration || 0));
    const page = s.page_ttft_ms !== undefined ? ` (page: ${formatMs(s.page_ttft_ms)})` : "";
    parts.push(`first token ${formatMs(api)}${page}`);
  } else if (s.page_ttft_ms !== undefined) {
    parts.push(`first token (page) ${formatMs(s.page_ttft_ms)}`);
  }
  if (s.total_duration) parts.push(`total ${formatMs(ms(s.total_duration))}`);
  return parts.join(" · ");
}

function statsTitle(s) {
  const lines = [];
  if (s.prompt_eval_count !== undefined) {
    const rate = s.prompt_eval_duration
      ? ` at ${(s.prompt_eval_count / (s.prompt_eval_duration / 1e9)).toFixed(1)} tok/s`
      : "";
    lines.push(`prompt: ${s.prompt_eval_count} tokens in ${formatMs(ms(s.prompt_eval_duration || 0))}${rate}`);
  }
  if (s.load_duration !== undefined) lines.push(`load: ${formatMs(ms(s.load_duration))}`);
  if (s.eval_count !== undefined) {
    lines.push(`reply: ${s.eval_count} tokens in ${formatMs(ms(s.eval_duration || 0))}`);
  }
  lines.push("first token (server) = load + prompt evaluation; page = request sent to first chunk read");
  if (s.done_reason) lines.push(`done: ${s.done_reason}`);
  return lines.join("\n");
}

export class MessageView {
  constructor(message, index) {
    this.message = message;
    this.root = el("article", `msg msg-${message.role}`);
    this.root.dataset.testid = "message";
    this.root.dataset.role = message.role;
    this.setIndex(index);
    this.body = el("div", "msg-body");
    this.root.append(this.body);
    this.frame = 0;
    this.thinkingToggled = false;
    this.render();
  }

  setIndex(i) {
    this.index = i;
    this.root.dataset.index = String(i);
  }

  // Renders on the next animation frame at most once, however many chunks arrive before it: a
  // long reply re-renders its Markdown ~60 times a second, not once per token. onPainted runs
  // after that render (the first-token instrumentation uses it).
  schedule(onPainted) {
    if (onPainted) (this.painted ??= []).push(onPainted);
    if (this.frame) return;
    const run = () => {
      if (this.frame) this.flush();  // the first of the frame and the fallback to come
    };
    this.frame = requestAnimationFrame(run);
    // A hidden tab gets no animation frames; the reply still renders.
    this.fallback = setTimeout(run, 250);
  }

  // Renders now (and drops a pending frame).
  flush() {
    if (this.frame) {
      cancelAnimationFrame(this.frame);
      clearTimeout(this.fallback);
      this.frame = 0;
    }
    this.render();
    const callbacks = this.painted || [];
    this.painted = null;
    for (const f of callbacks) f();
  }

  render() {
    const m = this.message;
    if (this.editing) return;
    if (m.role === "user") this.renderUser(m);
    else this.renderAssistant(m);
  }

  renderUser(m) {
    const parts = [];
    if (m.images?.length) {
      const row = el("div", "msg-images");
      for (const b64 of m.images) {
        const img = el("img", "thumb");
        img.alt = "attached image";
        img.src = `data:${sniffType(b64)};base64,${b64}`;
        row.append(img);
      }
      parts.push(row);
    }
    const text = el("div", "content user-text", m.content);
    text.dataset.testid = "message-content";
    parts.push(text);
    const actions = el("div", "msg-actions");
    actions.append(
      button("Edit", "edit", "edit-message", "Edit and resend (later turns are dropped)"),
      button("Copy", "copy", "copy-message"),
    );
    parts.push(actions);
    this.body.replaceChildren(...parts);
  }

  renderAssistant(m) {
    if (!this.content) this.buildAssistant();
    if (m.thinking) {
      this.thinking.hidden = false;
      if (m.thinking !== this.shownThinking) {
        // A reply shown as text once stays text, also when its conversation is opened again.
        if (renderMarkdown(this.thinkingBody, m.thinking, { plain: m.plain_thinking })) {
          m.plain_thinking = true;
        }
      }
      this.shownThinking = m.thinking;
      const answered = Boolean(m.content || m.tool_calls?.length);
      this.thinkingSummary.textContent = m.streaming && !answered ? "Thinking…" : "Thoughts";
      // Open while the model thinks, folded once it answers (a reply that is all thought stays
      // open), unless the reader chose.
      if (!this.thinkingToggled) this.thinking.open = !answered;
    } else {
      this.thinking.hidden = true;
    }
    // Only what changed is parsed again (a frame where only thinking grew leaves the answer be).
    if ((m.content || "") !== this.shownContent) {
      if (renderMarkdown(this.content, m.content || "", { plain: m.plain_content })) {
        m.plain_content = true;
      }
    }
    this.shownContent = m.content || "";
    this.content.classList.toggle("pending", Boolean(m.streaming && !m.content && !m.thinking));
    this.renderToolCalls(m.tool_calls || []);
    this.error.hidden = !m.error;
    this.error.textContent = m.error || "";
    this.stopped.hidden = !m.stopped;
    const s = m.stats;
    this.stats.hidden = !s;
    if (s) {
      this.stats.textContent = statsText(s);
      this.stats.title = statsTitle(s);
    }
    this.actions.hidden = Boolean(m.streaming);
    this.root.classList.toggle("streaming", Boolean(m.streaming));
  }

  buildAssistant() {
    this.thinking = el("details", "thinking");
    this.thinking.dataset.testid = "thinking";
    this.thinkingSummary = el("summary", "", "Thinking…");
    this.thinkingBody = el("div", "thinking-body markdown");
    this.thinking.append(this.thinkingSummary, this.thinkingBody);
    this.thinkingSummary.addEventListener("click", () => (this.thinkingToggled = true));
    this.model = el("div", "msg-model", this.message.model || "");
    this.content = el("div", "content markdown");
    this.content.dataset.testid = "message-content";
    this.tools = el("div", "tool-calls");
    this.error = el("div", "msg-error");
    this.error.dataset.testid = "message-error";
    this.error.setAttribute("role", "alert");
    this.stopped = el("div", "msg-note", "Stopped");
    this.stopped.dataset.testid = "message-stopped";
    this.stats = el("div", "msg-stats");
    this.stats.dataset.testid = "message-stats";
    this.actions = el("div", "msg-actions");
    this.actions.append(
      button("Copy", "copy", "copy-message"),
      button("Regenerate", "regenerate", "regenerate", "Ask again for this reply"),
    );
    this.body.replaceChildren(
      this.model, this.thinking, this.content, this.tools, this.error, this.stopped, this.stats, this.actions,
    );
  }

  renderToolCalls(calls) {
    if (calls.length === (this.toolCount || 0)) return;
    this.toolCount = calls.length;
    this.tools.replaceChildren(
      ...calls.map((c) => {
        const f = c.function || {};
        const box = el("div", "tool-call");
        box.dataset.testid = "tool-call";
        const head = el("div", "tool-head");
        head.append(el("span", "tool-label", "tool call"), el("code", "tool-name", f.name || "?"));
        const args = el("pre", "tool-args", JSON.stringify(f.arguments ?? {}, null, 2));
        box.append(head, args);
        return box;
      }),
    );
  }

  // Replaces the user text with an editor; onSave(text) or onCancel().
  edit(onSave) {
    this.editing = true;
    const area = el("textarea", "edit-area");
    area.dataset.testid = "edit-input";
    area.value = this.message.content;
    area.rows = Math.min(12, Math.max(2, this.message.content.split("\n").length));
    const save = button("Save & send", "save-edit", "edit-save");
    const cancel = button("Cancel", "cancel-edit", "edit-cancel");
    const row = el("div", "msg-actions edit-actions");
    row.append(cancel, save);
    const done = () => {
      this.editing = false;
      this.render();
    };
    save.addEventListener("click", () => {
      this.editing = false;
      onSave(area.value);
    });
    cancel.addEventListener("click", done);
    area.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        save.click();
      } else if (e.key === "Escape") {
        e.stopPropagation();
        done();
      }
    });
    this.body.replaceChildren(area, row);
    area.focus();
  }
}

// The image type from base64's first bytes (PNG, JPEG, GIF, WebP); the data: URL needs one.
export function sniffType(b64) {
  if (b64.startsWith("iVBOR")) return "image/png";
  if (b64.startsWith("/9j/")) return "image/jpeg";
  if (b64.startsWith("R0lG")) return "image/gif";
  if (b64.startsWith("UklG")) return "image/webp";
  return "application/octet-stream";
}
