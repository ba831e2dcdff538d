// The per-conversation settings panel: a system prompt and the common sampling options. Empty
// fields are left out of the request, so the model's own defaults (its Modelfile) apply.
const kFields = [
  ["temperature", parseFloat],
  ["top_p", parseFloat],
  ["num_ctx", (v) => parseInt(v, 10)],
  ["seed", (v) => parseInt(v, 10)],
  ["num_predict", (v) => parseInt(v, 10)],
];

export class Settings {
  // onInput() is called after any field changes, to save the conversation.
  constructor(form, toggle, onInput) {
    this.form = form;
    this.toggle = toggle;
    this.system = form.querySelector("#opt-system");
    this.inputs = Object.fromEntries(kFields.map(([k]) => [k, form.querySelector(`#opt-${k}`)]));
    this.conversation = null;
    toggle.addEventListener("click", () => this.show(form.hidden));
    form.addEventListener("submit", (e) => e.preventDefault());
    form.addEventListener("input", () => {
      if (!this.conversation) return;
      this.conversation.system = this.system.value;
      this.conversation.options = this.read();
      onInput();
    });
  }

  show(open) {
    this.form.hidden = !open;
    this.toggle.setAttribute("aria-expanded", String(open));
    this.toggle.classList.toggle("active", open);
  }

  // Shows c's settings in the fields.
  bind(c) {
    this.conversation = c;
    this.system.value = c.system || "";
    for (const [k] of kFields) {
      const v = c.options?.[k];
      this.inputs[k].value = v === undefined || v === null ? "" : String(v);
    }
  }

  // The options the fields hold; invalid numbers are marked and left out.
  read() {
    const out = {};
    for (const [k, parse] of kFields) {
      const input = this.inputs[k];
      const raw = input.value.trim();
      input.classList.remove("invalid");
      if (!raw) continue;
      const v = parse(raw);
      if (Number.isFinite(v)) out[k] = v;
      else input.classList.add("invalid");
    }
    return out;
  }
}
