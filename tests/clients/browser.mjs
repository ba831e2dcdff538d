// A real browser for the chat page's tests (tests/clients/ui_*.test.mjs): Debian's Chromium
// (/usr/bin/chromium; CORRAL_CHROMIUM names another), headless, driven by playwright-core (pinned
// in package.json; it downloads no browser). Where Chromium is missing or cannot start, the tests
// skip saying why (node:test's t.skip); every other failure fails them.
//
//   const ui = await startBrowser();        // in before(); never throws for a missing browser
//   test("...", async (t) => {
//     const page = await ui.page(t);       // null (the test skipped) without a browser
//     if (!page) return;
//     await page.goto(`${server.url}/ui/`);
//     ...
//     assert.deepEqual(page.problems, []); // console errors, page errors, CSP violations
//   });
//   await ui.close();                      // in after()
//
// Screenshots: ui.screenshot(page, "name") writes build/ui-artifacts/name.png (CORRAL_ARTIFACTS
// names another folder), the test artefacts CI keeps.
import fs from "node:fs";
import path from "node:path";
import { repoRoot } from "./harness.mjs";

export const chromiumPath = process.env.CORRAL_CHROMIUM || "/usr/bin/chromium";
export const artifactsDir = path.resolve(
  repoRoot,
  process.env.CORRAL_ARTIFACTS || path.join("build", "ui-artifacts"),
);

// Launches the browser (opts.args: more Chromium flags); returns an object whose page(t) opens a
// fresh page (its own context: storage, cookies) or skips t when the browser could not start.
export async function startBrowser(opts = {}) {
  let browser = null;
  let reason = null;
  if (!fs.existsSync(chromiumPath)) {
    reason = `Chromium not found at ${chromiumPath} (install Debian's chromium, scripts/setup.sh, or set CORRAL_CHROMIUM)`;
  } else {
    // playwright-core is a hard requirement (scripts/setup_clients.sh installs it): a missing
    // package fails the tests rather than skipping them.
    const { chromium } = await import("playwright-core");
    try {
      browser = await chromium.launch({
        executablePath: chromiumPath,
        headless: true,
        // No GPU in CI; the shared-memory folder of a container is often small.
        args: ["--disable-gpu", "--disable-dev-shm-usage", ...(opts.args || [])],
        timeout: 60000,
      });
    } catch (e) {
      reason = `Chromium at ${chromiumPath} cannot start: ${String(e.message).split("\n")[0]}`;
    }
  }
  const contexts = [];
  return {
    browser,
    reason,
    // A fresh page in a fresh context, or null after t.skip(reason). page.problems collects
    // what a working page never produces: console errors (CSP violations among them), uncaught
    // exceptions and answers of status 400 or more. opts go to browser.newContext (viewport,
    // colorScheme, ...).
    async page(t, opts = {}) {
      if (!browser) {
        t.skip(reason);
        return null;
      }
      const context = await browser.newContext({ viewport: { width: 1200, height: 800 }, ...opts });
      contexts.push(context);
      return watchedPage(context);
    },
    // Another page in the context of `page` (shares its localStorage: a second tab).
    async pageBeside(page) {
      return watchedPage(page.context());
    },
    async screenshot(page, name) {
      fs.mkdirSync(artifactsDir, { recursive: true });
      const file = path.join(artifactsDir, `${name}.png`);
      await page.screenshot({ path: file, fullPage: true });
      return file;
    },
    async close() {
      for (const c of contexts) await c.close().catch(() => {});
      await browser?.close();
    },
  };
}

async function watchedPage(context) {
  const page = await context.newPage();
  page.problems = [];
  page.on("console", (m) => {
    // A failed load is also a response below, which names its URL.
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) {
      page.problems.push(`console: ${m.text()}`);
    }
  });
  page.on("response", (r) => {
    if (r.status() >= 400) page.problems.push(`HTTP ${r.status()}: ${r.request().method()} ${r.url()}`);
  });
  page.on("pageerror", (e) => page.problems.push(`page error: ${e.message}`));
  page.setDefaultTimeout(30000);
  return page;
}
