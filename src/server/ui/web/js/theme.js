// Light and dark themes: the system's choice (prefers-color-scheme) unless the reader picked one
// with the toggle, which cycles auto → light → dark and is remembered.
const kThemeKey = "corral.theme";
const kOrder = ["auto", "light", "dark"];

export function initTheme(toggle) {
  const apply = (theme) => {
    if (theme === "auto") delete document.documentElement.dataset.theme;
    else document.documentElement.dataset.theme = theme;
    toggle.textContent = `Theme: ${theme}`;
    toggle.title =
      theme === "auto" ? "Theme: follows the system (click to change)" : `Theme: ${theme} (click to change)`;
  };
  let theme = localStorage.getItem(kThemeKey);
  if (!kOrder.includes(theme)) theme = "auto";
  apply(theme);
  toggle.addEventListener("click", () => {
    theme = kOrder[(kOrder.indexOf(theme) + 1) % kOrder.length];
    if (theme === "auto") localStorage.removeItem(kThemeKey);
    else localStorage.setItem(kThemeKey, theme);
    apply(theme);
  });
}
