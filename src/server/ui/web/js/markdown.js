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

// Replaces el's children with the rendered Markdown and gives each code block a copy button.
export function renderMarkdown(el, markdown) {
  el.innerHTML = toSafeHtml(markdown);
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
