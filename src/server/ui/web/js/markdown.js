// Model output to safe HTML: Markdown by marked, then DOMPurify on every render. No reply can run
// script: DOMPurify drops <script>, event-handler attributes and javascript: URLs, and the page's
// Content-Security-Policy (script-src 'self') would refuse inline script even if one slipped by.
import { marked } from "../vendor/marked.js";
import DOMPurify from "../vendor/purify.js";

marked.setOptions({ gfm: true, breaks: true });

// Links open in a new tab without handing it this page (window.opener).
DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer");
  }
});

const kPurify = {
  // style attributes would be refused by the CSP anyway; forms could post somewhere.
  FORBID_TAGS: ["style", "form", "input", "button", "textarea", "select", "iframe", "object", "embed"],
  FORBID_ATTR: ["style"],
  ALLOWED_URI_REGEXP: /^(?:https?:|mailto:|#|\/(?!\/)|\.\/|\.\.\/)/i,
};

export function toSafeHtml(markdown) {
  return DOMPurify.sanitize(marked.parse(markdown || ""), kPurify);
}

// Model output decides how hard Markdown is to parse, and marked's cost grows faster than the
// text: it recurses once per level of nesting (a reply nested a couple of thousand deep
// overflows its stack; a list indented level by level for a few thousand lines exhausts memory)
// and thousands of emphasis markers take seconds. So a reply nested deeper than any real one
// (kMaxNesting quote or list markers, or kMaxIndent columns, at the start of a line) is not
// parsed, and one whose render takes longer than kRenderBudgetMs is shown as text from then on
// (a streamed reply grows a little per frame, so it crosses the budget long before it could
// stall the page). Either way the text is shown as the model wrote it.
const kMaxNesting = 64;
const kMaxIndent = 128;
const kRenderBudgetMs = 100;
const kLinePrefix = /^[ \t>*+\-0-9.)]*/gm;
// A quote marker, or a list marker and the blank after it ("---" rules are not nesting).
const kNestingMarker = />|[-*+][ \t]|\d+[.)][ \t]/g;

function nestedTooDeep(markdown) {
  for (const [prefix] of markdown.matchAll(kLinePrefix)) {
    if (prefix.length <= kMaxNesting) continue;  // within both limits (kMaxIndent is larger)
    if (/^[ \t]*/.exec(prefix)[0].length > kMaxIndent) return true;
    if ((prefix.match(kNestingMarker) || []).length > kMaxNesting) return true;
  }
  return false;
}

// Replaces el's children with the rendered Markdown and gives each code block a copy button, or
// with the text itself (class plain-text) when it cannot be rendered: asked for (plain), decided
// by an earlier render of this element, nested too deep, over the time budget, or any failure
// of the parser. Returns whether the text is shown plain, for the caller to remember.
export function renderMarkdown(el, markdown, { plain = false } = {}) {
  let html = null;
  if (!plain && !el.classList.contains("plain-text") && !nestedTooDeep(markdown)) {
    const started = performance.now();
    try {
      html = toSafeHtml(markdown);
    } catch {
      // shown as text below
    }
    if (performance.now() - started > kRenderBudgetMs) html = null;
  }
  el.classList.toggle("plain-text", html === null);
  if (html === null) {
    el.textContent = markdown;
    return true;
  }
  el.innerHTML = html;
  for (const pre of el.querySelectorAll("pre")) {
    const wrap = document.createElement("div");
    wrap.className = "code-block";
    const bar = document.createElement("div");
    bar.className = "code-bar";
    const lang = pre.querySelector("code")?.className.match(/language-([\w+#.-]+)/)?.[1] ?? "";
    const label = document.createElement("span");
    label.textContent = lang;
    const copy = document.createElement("button");
    copy.type = "button";
    copy.className = "copy-code";
    copy.dataset.testid = "copy-code";
    copy.textContent = "Copy";
    bar.append(label, copy);
    pre.replaceWith(wrap);
    wrap.append(bar, pre);
  }
  return false;
}

// Copies text to the clipboard; the older execCommand path covers pages the Clipboard API refuses.
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "offscreen";
    document.body.append(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    return ok;
  }
}
