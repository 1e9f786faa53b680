// lib.mjs — what the browser tests share (tests/browser/README.md): Debian's chromium
// driven by playwright-core, headless, its profile under the test's folder; axe-core run
// in the page; checks that fail with one line naming what a person would see wrong.
import { chromium } from "playwright-core";
import { readFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

export const BASE = process.env.BASE_URL;
export const OUT = process.env.OUT_DIR || new URL("./out", import.meta.url).pathname;
mkdirSync(OUT, { recursive: true });

let failures = 0;
export function ok(what) { console.log("ok - " + what); }
export function check(cond, what) {
  if (!cond) { failures++; console.log("FAIL: " + what); }
  return cond;
}
export function done() {
  if (failures) { console.log(failures + " check(s) failed"); process.exit(1); }
}

// Starts chromium (no sandbox as root: the test machine's CI runs as root), a context per
// viewport; every console error and every CSP violation fails the test.
export async function browser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

export async function page(b, width = 1280, height = 800) {
  const ctx = await b.newContext({ viewport: { width, height }, locale: "fr-FR", timezoneId: "Europe/Paris" });
  const p = await ctx.newPage();
  p.consoleErrors = [];
  p.on("console", (m) => { if (m.type() === "error") p.consoleErrors.push(m.text()); });
  p.on("pageerror", (e) => p.consoleErrors.push(String(e)));
  p.bytes = 0;
  p.on("response", async (r) => {
    try { p.bytes += (await r.body()).length; } catch { /* redirects, 304 */ }
  });
  return p;
}

// axe-core's serious and critical violations on the page as it is now (RGAA 4 / WCAG 2.1 AA
// rules), as "rule: target" lines. Run through the DevTools protocol, so the page's CSP
// (no inline script) does not stop it.
export async function axe(p) {
  const res = await p.evaluate(async (src) => {
    // eslint-disable-next-line no-eval
    (0, eval)(src);
    const r = await window.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } });
    return r.violations.filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => v.id + ": " + v.nodes.map((n) => n.target.join(" ")).join(", "));
  }, AXE);
  return res;
}

export async function shot(p, name) {
  await p.screenshot({ path: OUT + "/" + name + ".png", fullPage: true });
}

// The ids (or tag names) of the elements Tab reaches, in order, up to n presses.
export async function tabOrder(p, n) {
  const seen = [];
  for (let i = 0; i < n; i++) {
    await p.keyboard.press("Tab");
    seen.push(await p.evaluate(() => {
      const a = document.activeElement;
      return a ? (a.id || a.getAttribute("href") || a.tagName.toLowerCase()) : "";
    }));
  }
  return seen;
}

// Signs in to the console with a token and waits for the search view.
export async function signIn(p, token) {
  await p.goto(BASE + "/console/");
  await p.waitForSelector("#vue-connexion:not([hidden])");
  await p.fill("#jeton", token);
  await p.keyboard.press("Enter");
  await p.waitForSelector("#vue-recherche:not([hidden])");
}
