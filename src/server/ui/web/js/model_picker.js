// The model picker: every model of /api/tags with its size, family and quantization; the chosen
// one's capabilities (vision, thinking, tools) from /api/show. The choice is remembered.
import { apiJson } from "./api.js";

const kModelKey = "corral.model";
const capabilityCache = new Map();

export function formatBytes(n) {
  if (!Number.isFinite(n) || n <= 0) return "";
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${n >= 100 || i === 0 ? Math.round(n) : n.toFixed(1)} ${units[i]}`;
}

export class ModelPicker {
  // select: the <select>; caps: where the capability badges go; onChange(name) when the user picks.
  constructor(select, caps, onChange) {
    this.select = select;
    this.caps = caps;
    this.onChange = onChange;
    this.models = [];
    this.capabilities = [];
    this.ready = Promise.resolve();
    select.addEventListener("change", () => {
      localStorage.setItem(kModelKey, select.value);
      this.ready = this.showCapabilities();
      this.onChange(select.value);
    });
  }

  get value() {
    return this.select.value;
  }

  // Loads the list; keeps `preferred` (the conversation's model) or the remembered one selected.
  async refresh(preferred) {
    let error = "";
    try {
      this.models = (await apiJson("/api/tags")).models || [];
    } catch (e) {
      this.models = [];
      error = e.message;
    }
    this.select.replaceChildren();
    if (!this.models.length) {
      const o = new Option(error ? "cannot list models" : "no models: pull one in Models", "");
      this.select.append(o);
      this.select.disabled = true;
      this.caps.textContent = error;
      return error;
    }
    this.select.disabled = false;
    for (const m of this.models) {
      const d = m.details || {};
      const parts = [d.parameter_size, d.family, d.quantization_level, formatBytes(m.size)];
      const label = `${m.name} — ${parts.filter(Boolean).join(" · ")}`;
      this.select.append(new Option(label, m.name));
    }
    this.setValue(preferred || localStorage.getItem(kModelKey) || "");
    return "";
  }

  // Selects name (with or without ":latest"); a name the server lacks stays listed as missing.
  setValue(name) {
    if (name) {
      const match = this.models.find((m) => m.name === name || m.name === `${name}:latest`);
      if (match) {
        this.select.value = match.name;
      } else {
        const missing = new Option(`${name} — not on this server`, name);
        missing.dataset.missing = "1";
        this.select.append(missing);
        this.select.value = name;
      }
    } else if (this.select.options.length) {
      this.select.selectedIndex = 0;
    }
    this.ready = this.showCapabilities();
  }

  async showCapabilities() {
    const name = this.select.value;
    this.capabilities = [];
    this.caps.replaceChildren();
    if (!name) return;
    let caps = capabilityCache.get(name);
    if (!caps) {
      try {
        caps = (await apiJson("/api/show", { model: name })).capabilities || [];
        capabilityCache.set(name, caps);
      } catch {
        caps = [];
      }
    }
    if (this.select.value !== name) return;
    this.capabilities = caps;
    for (const c of ["vision", "thinking", "tools"].filter((c) => caps.includes(c))) {
      const b = document.createElement("span");
      b.className = `badge badge-${c}`;
      b.textContent = c;
      this.caps.append(b);
    }
  }

  has(capability) {
    return this.capabilities.includes(capability);
  }
}
