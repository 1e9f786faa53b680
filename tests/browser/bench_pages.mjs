// bench_pages.mjs — the pages' timings for `make bench` (tests/bench/run.sh, stage 4b;
// docs/performance.md): on the benchmark's database, in Debian's chromium, signed in as a
// supervisor, (1) the console's citizen page: from the fragment's change to the timeline
// drawn (its count line written), for each citizen of CITIZENS (ids, comma-separated),
// p50/p99; (2) the dashboard: from navigation to its cost table drawn, LOADS times.
// Env: BASE_URL, TOKEN, CITIZENS, LOADS (5), OUT (the JSON file).
import { writeFileSync } from "node:fs";
import { BASE, browser, page, signIn } from "./lib.mjs";

const E = process.env;
const ids = E.CITIZENS.split(",").filter(Boolean);
const pct = (xs, q) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(q * s.length))]; };
const b = await browser();
try {
  const p = await page(b, 1280, 900);
  await signIn(p, E.TOKEN);
  const times = [];
  let requests = 0;
  for (const id of ids) {
    const r = await p.evaluate(async (cid) => {
      const compte = document.getElementById("compte-demandes");
      compte.textContent = "";
      const t0 = performance.now();
      location.hash = "#/usager/" + cid;
      while (!compte.textContent) await new Promise((ok) => requestAnimationFrame(ok));
      return { ms: performance.now() - t0, n: document.querySelectorAll("#frise li.demande").length };
    }, id);
    times.push(r.ms);
    requests += r.n;
  }
  const loads = [];
  for (let i = 0; i < Number(E.LOADS || 5); i++) {
    const t0 = Date.now();
    await p.goto(BASE + "/tableau-de-bord/");
    await p.waitForSelector("#tableau:not([hidden]) #table-couts tbody tr");
    loads.push(Date.now() - t0);
  }
  const out = { citizens: ids.length, requests_drawn: requests,
                timeline_p50_ms: Math.round(pct(times, 0.5) * 10) / 10, timeline_p99_ms: Math.round(pct(times, 0.99) * 10) / 10,
                timeline_max_ms: Math.round(Math.max(...times) * 10) / 10,
                dashboard_loads: loads.length, dashboard_p50_ms: pct(loads, 0.5), dashboard_max_ms: Math.max(...loads),
                errors: p.consoleErrors.filter((e) => !/401/.test(e)) };
  writeFileSync(E.OUT, JSON.stringify(out) + "\n");
  console.log(JSON.stringify(out));
} finally {
  await b.close();
}
