// The list of saved conversations: open one, rename it (inline), export it, delete it.
import { listConversations } from "./conversations.js";

export class ConversationList {
  // actions: open(id), rename(id, title), remove(id), exportOne(id).
  constructor(ul, actions) {
    this.ul = ul;
    this.actions = actions;
    this.renaming = null;
  }

  render(currentId) {
    this.currentId = currentId;
    if (this.renaming) return;
    const items = listConversations().map((e) => this.item(e, e.id === currentId));
    if (!items.length) {
      const li = document.createElement("li");
      li.className = "conversations-empty";
      li.textContent = "No conversations yet";
      items.push(li);
    }
    this.ul.replaceChildren(...items);
  }

  item(e, active) {
    const li = document.createElement("li");
    li.className = active ? "conversation active" : "conversation";
    li.dataset.testid = "conversation-item";
    li.dataset.id = e.id;
    const title = document.createElement("button");
    title.type = "button";
    title.className = "conversation-title";
    title.dataset.testid = "conversation-title";
    title.textContent = e.title;
    title.title = `${e.title}${e.model ? ` (${e.model})` : ""}`;
    title.addEventListener("click", () => this.actions.open(e.id));
    title.addEventListener("dblclick", () => this.startRename(li, e));
    const tools = document.createElement("span");
    tools.className = "conversation-tools";
    tools.append(
      this.tool("✎", "Rename", "conversation-rename", () => this.startRename(li, e)),
      this.tool("⤓", "Export as JSON", "conversation-export", () => this.actions.exportOne(e.id)),
      this.tool("✕", "Delete", "conversation-delete", () => {
        if (confirm(`Delete "${e.title}"?`)) this.actions.remove(e.id);
      }),
    );
    li.append(title, tools);
    return li;
  }

  tool(label, title, testid, onClick) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "icon-button small";
    b.textContent = label;
    b.title = title;
    b.setAttribute("aria-label", title);
    b.dataset.testid = testid;
    b.addEventListener("click", (ev) => {
      ev.stopPropagation();
      onClick();
    });
    return b;
  }

  startRename(li, e) {
    this.renaming = e.id;
    const input = document.createElement("input");
    input.className = "rename-input";
    input.dataset.testid = "conversation-rename-input";
    input.value = e.title;
    let finished = false;
    const finish = (keep) => {
      if (finished) return;
      finished = true;
      this.renaming = null;
      if (keep && input.value.trim()) this.actions.rename(e.id, input.value);
      else this.render(this.currentId);
    };
    input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") finish(true);
      else if (ev.key === "Escape") {
        ev.stopPropagation();
        finish(false);
      }
    });
    input.addEventListener("blur", () => finish(true));
    li.replaceChildren(input);
    input.focus();
    input.select();
  }
}
