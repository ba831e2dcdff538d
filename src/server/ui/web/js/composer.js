// The message box: Enter sends, Shift+Enter starts a new line; images come by the attach button,
// drag and drop anywhere on the chat, or paste, and show as thumbnails until sent.
import { sniffType } from "./chat_message.js";

const kMaxImageBytes = 20 * 1000 * 1000;

function readBase64(file) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result).replace(/^data:[^,]*,/, ""));
    r.onerror = () => reject(r.error);
    r.readAsDataURL(file);
  });
}

export class Composer {
  // onSend({text, images}) when the user sends; onError(message) for a refused file.
  constructor({ form, prompt, attach, fileInput, attachments, dropZone, onSend, onError }) {
    this.form = form;
    this.prompt = prompt;
    this.attachments = attachments;
    this.images = [];
    this.onSend = onSend;
    this.onError = onError;
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.send();
    });
    prompt.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.send();
      }
    });
    prompt.addEventListener("input", () => this.grow());
    attach.addEventListener("click", () => fileInput.click());
    fileInput.addEventListener("change", () => {
      this.addFiles(fileInput.files);
      fileInput.value = "";
    });
    prompt.addEventListener("paste", (e) => {
      const files = [...(e.clipboardData?.files || [])].filter((f) => f.type.startsWith("image/"));
      if (files.length) {
        e.preventDefault();
        this.addFiles(files);
      }
    });
    let depth = 0;
    const dragging = (on) => dropZone.classList.toggle("dragging", on);
    dropZone.addEventListener("dragenter", (e) => {
      if (![...(e.dataTransfer?.types || [])].includes("Files")) return;
      depth++;
      dragging(true);
    });
    dropZone.addEventListener("dragleave", () => {
      depth = Math.max(0, depth - 1);
      if (!depth) dragging(false);
    });
    dropZone.addEventListener("dragover", (e) => e.preventDefault());
    dropZone.addEventListener("drop", (e) => {
      e.preventDefault();
      depth = 0;
      dragging(false);
      this.addFiles(e.dataTransfer?.files || []);
    });
  }

  async addFiles(files) {
    for (const f of files) {
      if (!f.type.startsWith("image/")) {
        this.onError(`${f.name} is not an image (${f.type || "unknown type"})`);
        continue;
      }
      if (f.size > kMaxImageBytes) {
        this.onError(`${f.name} is too large (${f.size} bytes; at most ${kMaxImageBytes})`);
        continue;
      }
      try {
        this.images.push(await readBase64(f));
      } catch (e) {
        this.onError(`cannot read ${f.name}: ${e?.message || e}`);
      }
    }
    this.renderThumbs();
  }

  renderThumbs() {
    this.attachments.replaceChildren(
      ...this.images.map((b64, i) => {
        const box = document.createElement("div");
        box.className = "attachment";
        box.dataset.testid = "attachment";
        const img = document.createElement("img");
        img.src = `data:${sniffType(b64)};base64,${b64}`;
        img.alt = "image to send";
        const x = document.createElement("button");
        x.type = "button";
        x.className = "remove-attachment";
        x.title = "Remove";
        x.textContent = "✕";
        x.addEventListener("click", () => {
          this.images.splice(i, 1);
          this.renderThumbs();
        });
        box.append(img, x);
        return box;
      }),
    );
    this.attachments.hidden = !this.images.length;
  }

  grow() {
    this.prompt.style.height = "auto";
    this.prompt.style.height = `${Math.min(this.prompt.scrollHeight, 240)}px`;
  }

  send() {
    const text = this.prompt.value;
    if (!text.trim() && !this.images.length) return;
    if (this.onSend({ text, images: this.images.slice() }) === false) return;
    this.prompt.value = "";
    this.images = [];
    this.renderThumbs();
    this.grow();
  }

  focus() {
    this.prompt.focus();
  }
}
