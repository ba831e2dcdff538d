// The models view: what the store holds (/api/tags, with each model's capabilities, parameters
// and Modelfile from /api/show), pulling a model by name with its progress (/api/pull, cancelable),
// deleting one (/api/delete) and what the server has loaded (/api/ps, refreshed every few seconds
// while the view is on screen). Server text is only ever set as textContent, never as HTML.
//
// mountModels(root) fills `root` and returns { refresh(), destroy() }. Styles: models.css (every
// class starts with "models-"). Test hooks are data-testid attributes (listed in the README of
// the page's tests, tests/clients/ui_models.test.mjs).
import { apiJson, streamNdjson } from "./api.js";

const PS_INTERVAL_MS = 3000;

// Ollama's sizes are decimal: 1 GB = 10^9 bytes.
export function formatBytes(n) {
  if (!Number.isFinite(n) || n < 0) return "";
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(0)} kB`;
  return `${n} B`;
}

// "until 14:03:12 (in 4 min)", "forever" for a model kept loaded, "" when unknown.
export function formatUntil(expiresAt, now = Date.now()) {
  const t = Date.parse(expiresAt);
  if (!Number.isFinite(t)) return "";
  const left = t - now;
  if (left > 100 * 365 * 86400e3) return "forever";
  if (left <= 0) return "unloading";
  const clock = new Date(t).toLocaleTimeString();
  const minutes = Math.round(left / 60000);
  const rel = left < 60000 ? `${Math.ceil(left / 1000)} s` : minutes < 120 ? `${minutes} min` : `${Math.round(minutes / 60)} h`;
  return `until ${clock} (in ${rel})`;
}

// document.createElement with a class, text and attributes; children appended.
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k === "testid") node.dataset.testid = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c) node.append(c);
  return node;
}

function button(text, testid, onClick, extra = {}) {
  const b = el("button", { type: "button", class: "models-button", text, testid, ...extra });
  b.addEventListener("click", onClick);
  return b;
}

export function mountModels(root) {
  root.replaceChildren();
  root.classList.add("models-root");
  const shows = new Map(); // model name -> promise of /api/show's answer

  const error = el("p", { class: "models-error", role: "alert", testid: "models-error", hidden: true });
  const showError = (e) => {
    error.textContent = e ? String(e.message || e) : "";
    error.hidden = !e;
  };

  // ---- Pull ----------------------------------------------------------------------------------
  const pullName = el("input", {
    class: "models-pull-name",
    name: "model",
    testid: "models-pull-name",
    placeholder: "llama3.2, qwen3:0.6b, registry.example.com/ns/model:tag",
    autocomplete: "off",
    spellcheck: "false",
    "aria-label": "Model to pull",
  });
  const insecure = el("input", { type: "checkbox", testid: "models-pull-insecure" });
  const pullButton = el("button", { type: "submit", class: "models-button models-primary", text: "Pull", testid: "models-pull-start" });
  const cancelButton = button("Cancel", "models-pull-cancel", () => pulling?.abort(), { hidden: true });
  const bar = el("progress", { class: "models-pull-bar", testid: "models-pull-bar", max: 1, value: 0 });
  const pullStatus = el("span", { class: "models-pull-status", testid: "models-pull-status", "aria-live": "polite" });
  const progress = el("div", { class: "models-pull-progress", hidden: true }, bar, pullStatus);
  const pullForm = el(
    "form",
    { class: "models-pull", testid: "models-pull" },
    el("h2", { class: "models-heading", text: "Pull a model" }),
    el("div", { class: "models-pull-row" }, pullName, pullButton, cancelButton),
    el("label", { class: "models-pull-insecure" }, insecure, " allow http (a registry without TLS)"),
    progress,
  );
  let pulling = null; // the AbortController of the pull in progress
  pullForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const name = pullName.value.trim();
    if (name && !pulling) pull(name);
  });

  async function pull(name) {
    pulling = new AbortController();
    pullButton.disabled = true;
    cancelButton.hidden = false;
    progress.hidden = false;
    bar.max = 1;
    bar.value = 0;
    pullStatus.textContent = "starting…";
    showError(null);
    // Bytes per second over the last second or so of samples, per blob.
    let sample = null;
    let rate = 0;
    try {
      const body = { model: name, stream: true };
      if (insecure.checked) body.insecure = true;
      for await (const p of streamNdjson("/api/pull", body, { signal: pulling.signal })) {
        let text = p.status || "";
        if (p.total > 0) {
          const completed = Math.min(p.completed || 0, p.total);
          bar.max = p.total;
          bar.value = completed;
          const now = performance.now();
          if (!sample || sample.digest !== p.digest) {
            sample = { digest: p.digest, t: now, bytes: completed };
            rate = 0;
          } else if (now - sample.t >= 500) {
            rate = ((completed - sample.bytes) * 1000) / (now - sample.t);
            sample = { digest: p.digest, t: now, bytes: completed };
          }
          text += ` · ${formatBytes(completed)} / ${formatBytes(p.total)}`;
          if (rate > 0 && completed < p.total) text += ` · ${formatBytes(rate)}/s`;
        }
        pullStatus.textContent = text;
      }
      bar.value = bar.max;
      pullStatus.textContent = `pulled ${name}`;
      pullName.value = "";
      shows.delete(name);
      await refresh();
    } catch (e) {
      if (e.name === "AbortError") {
        pullStatus.textContent = `cancelled pulling ${name} (what was downloaded is kept for the next pull)`;
      } else {
        pullStatus.textContent = `pulling ${name} failed`;
        showError(e);
      }
    } finally {
      pulling = null;
      pullButton.disabled = false;
      cancelButton.hidden = true;
    }
  }

  // ---- Installed models ------------------------------------------------------------------------
  const list = el("ul", { class: "models-list", testid: "models-list" });
  const installed = el(
    "section",
    { class: "models-installed" },
    el("div", { class: "models-section-head" }, el("h2", { class: "models-heading", text: "Installed" }), button("Refresh", "models-refresh", () => refresh())),
    list,
  );

  function show(name) {
    if (!shows.has(name)) {
      const p = apiJson("/api/show", { model: name });
      p.catch(() => shows.delete(name));
      shows.set(name, p);
    }
    return shows.get(name);
  }

  function modelItem(m) {
    const d = m.details || {};
    const meta = [formatBytes(m.size), d.family, d.parameter_size, d.quantization_level].filter(Boolean);
    const caps = el("span", { class: "models-caps", testid: "models-caps" });
    const details = el("div", { class: "models-details", testid: "models-details", hidden: true });
    const toggle = button("Details", "models-details-toggle", () => {
      details.hidden = !details.hidden;
      toggle.setAttribute("aria-expanded", String(!details.hidden));
      if (!details.hidden && !details.childElementCount) fillDetails(m.name, details);
    }, { "aria-expanded": "false" });
    const remove = button("Delete", "models-delete", () => removeModel(m.name), { class: "models-button models-danger" });
    const item = el(
      "li",
      { class: "models-item", testid: "models-item", "data-model": m.name },
      el(
        "div",
        { class: "models-item-head" },
        el("span", { class: "models-name", testid: "models-name", text: m.name }),
        el("span", { class: "models-meta", testid: "models-meta", text: meta.join(" · ") }),
        caps,
        el("span", { class: "models-actions" }, toggle, remove),
      ),
      details,
    );
    show(m.name).then(
      (s) => {
        for (const c of s.capabilities || []) caps.append(el("span", { class: "models-cap", text: c }));
      },
      () => {},
    );
    return item;
  }

  async function fillDetails(name, into) {
    into.textContent = "loading…";
    try {
      const s = await show(name);
      into.replaceChildren();
      const block = (title, text, testid) =>
        text ? el("div", { class: "models-block" }, el("h3", { class: "models-subheading", text: title }), el("pre", { class: "models-pre", testid, text })) : null;
      const d = s.details || {};
      const facts = [
        ["Format", d.format],
        ["Family", d.family],
        ["Parameters", d.parameter_size],
        ["Quantization", d.quantization_level],
        ["Capabilities", (s.capabilities || []).join(", ")],
        ["Modified", s.modified_at ? new Date(s.modified_at).toLocaleString() : ""],
      ].filter(([, v]) => v);
      const dl = el("dl", { class: "models-facts" });
      for (const [k, v] of facts) dl.append(el("dt", { text: k }), el("dd", { text: String(v) }));
      into.append(dl);
      const parts = [
        block("Parameters", s.parameters, "models-parameters"),
        block("Modelfile", s.modelfile, "models-modelfile"),
      ].filter(Boolean);
      if (!parts.length) into.append(el("p", { class: "models-muted", text: "No parameters or Modelfile." }));
      into.append(...parts);
    } catch (e) {
      into.textContent = `cannot show ${name}: ${e.message}`;
    }
  }

  async function removeModel(name) {
    if (!window.confirm(`Delete ${name}? Its files are removed from the store unless another model uses them.`)) return;
    showError(null);
    try {
      await apiJson("/api/delete", { model: name }, { method: "DELETE" });
      shows.delete(name);
    } catch (e) {
      showError(e);
    }
    await refresh();
  }

  // ---- Running models (ps) ---------------------------------------------------------------------
  const psBody = el("tbody", { testid: "models-ps" });
  const psEmpty = el("p", { class: "models-muted", testid: "models-ps-empty", text: "No model is loaded." });
  const psTable = el(
    "table",
    { class: "models-ps-table", hidden: true },
    el("thead", {}, el("tr", {}, ...["Model", "Size", "On the GPU", "Context", "Unloads"].map((h) => el("th", { scope: "col", text: h })))),
    psBody,
  );
  const running = el(
    "section",
    { class: "models-running" },
    el("h2", { class: "models-heading", text: "Loaded (ps)" }),
    psTable,
    psEmpty,
  );

  async function refreshPs() {
    const ps = (await apiJson("/api/ps")).models || [];
    psBody.replaceChildren(
      ...ps.map((m) =>
        el(
          "tr",
          { class: "models-ps-item", testid: "models-ps-item", "data-model": m.name },
          el("td", { class: "models-name", text: m.name }),
          el("td", { text: formatBytes(m.size) }),
          el("td", { text: m.size_vram ? formatBytes(m.size_vram) : "—" }),
          el("td", { text: m.context_length ? String(m.context_length) : "" }),
          el("td", { class: "models-until", text: formatUntil(m.expires_at), title: m.expires_at || "" }),
        ),
      ),
    );
    psTable.hidden = ps.length === 0;
    psEmpty.hidden = ps.length > 0;
  }

  async function refresh() {
    try {
      const [tags] = await Promise.all([apiJson("/api/tags"), refreshPs()]);
      const models = (tags.models || []).slice().sort((a, b) => a.name.localeCompare(b.name));
      list.replaceChildren(
        ...(models.length ? models.map(modelItem) : [el("li", { class: "models-muted", text: "No models yet: pull one above." })]),
      );
      root.dataset.loaded = "true";
    } catch (e) {
      showError(e);
    }
  }

  root.append(error, pullForm, installed, running);
  refresh();

  // ps while the view is on screen (not hidden, the tab visible); the list again when the view
  // comes back into sight (a chat may have pulled or loaded something meanwhile).
  let wasVisible = true;
  const timer = setInterval(() => {
    if (!root.isConnected) return destroy();
    const visible = root.offsetParent !== null && document.visibilityState === "visible";
    if (visible && !wasVisible) refresh();
    else if (visible) refreshPs().catch(() => {});
    wasVisible = visible;
  }, PS_INTERVAL_MS);

  function destroy() {
    clearInterval(timer);
    pulling?.abort();
  }
  return { refresh, destroy };
}
