export function mountModels(root) { root.textContent = "models"; }
