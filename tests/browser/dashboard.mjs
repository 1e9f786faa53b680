// dashboard.mjs — the city's dashboard (/tableau-de-bord/) in a real browser. Env: BASE_URL,
// TOKEN_SUP, TOKEN_AGENT, YEAR and the figures the shell script computed with its own SQL:
// TOTAL, BY_CHANNEL ("guichet=3,web=1"), OVERDUE ("voirie=1"), RT ("median,p90" seconds for
// voirie), SAVING (euros at 50 %), COST (the year's cost of the channels with a cost).
import { BASE, ok, check, done, browser, page, axe, shot, signIn } from "./lib.mjs";

const E = process.env;
const pairs = (s) => Object.fromEntries((s || "").split(",").filter(Boolean).map((x) => x.split("=")));

const b = await browser();
try {
  // an agent signed in is told the page is the management's
  const a = await page(b);
  await signIn(a, E.TOKEN_AGENT);
  check(await a.isHidden("#menu-tdb"), "an agent's console links to the dashboard");
  await a.goto(BASE + "/tableau-de-bord/#" + E.YEAR);
  await a.waitForFunction(() => /réservé/.test(document.getElementById("message").textContent));
  check(await a.isHidden("#tableau"), "an agent sees the figures");
  ok("an agent: no link to the dashboard, and the page says it is reserved");

  const p = await page(b, 1280, 900);
  await signIn(p, E.TOKEN_SUP);
  check(await p.isVisible("#menu-tdb"), "a supervisor's console has no link to the dashboard");
  await p.click("#menu-tdb a");
  await p.waitForURL(/tableau-de-bord/);
  await p.goto(BASE + "/tableau-de-bord/#" + E.YEAR);
  await p.waitForSelector("#tableau:not([hidden]) #table-couts tbody tr");
  const val = (sel) => p.$eval(sel, (e) => e.dataset.valeur);
  check(await val("#total") === E.TOTAL, "total: " + (await val("#total")) + ", expected " + E.TOTAL);
  const byChannel = pairs(E.BY_CHANNEL);
  for (const [c, n] of Object.entries(byChannel)) {
    const got = await p.$eval('#table-couts tr[data-canal="' + c + '"] td', (e) => e.dataset.valeur).catch(() => null);
    check(got === n, "channel " + c + ": " + got + ", expected " + n);
  }
  const overdue = pairs(E.OVERDUE);
  for (const [s, n] of Object.entries(overdue)) {
    const got = await p.$eval('#table-services tr[data-service="' + s + '"] td:nth-of-type(2)', (e) => e.dataset.valeur);
    check(got === n, "past due in " + s + ": " + got + ", expected " + n);
  }
  const [median, p90] = E.RT.split(",");
  const rt = await p.$$eval('#table-services tr[data-service="voirie"] td', (tds) => tds.map((t) => t.dataset.valeur));
  check(rt[2] === median && rt[3] === p90, "voirie response times: " + rt.slice(2).join(",") + ", expected " + E.RT);
  const txt = await p.textContent('#table-services tr[data-service="voirie"]');
  check(/2 j/.test(txt), "the median is not written in days: " + txt);
  check(Number(await val("#cout-total")) === Number(E.COST), "cost of the year: " + (await val("#cout-total")) + ", expected " + E.COST);
  check((await p.textContent('#table-couts tr[data-canal="telephone"]')).includes("non renseigné"),
        "a channel without a cost does not say 'non renseigné'");
  ok("every figure equals the tables': " + E.TOTAL + " requests, by channel, past due, response times " + E.RT + " s, cost " + E.COST + " €");

  // the slider, with the keyboard: 20 % → 50 % is six presses of the right arrow
  await p.focus("#part");
  for (let i = 0; i < 6; i++) await p.keyboard.press("ArrowRight");
  check(await p.inputValue("#part") === "50", "the slider after 6 presses: " + (await p.inputValue("#part")));
  const saving = Number(await val("#economie"));
  check(Math.abs(saving - Number(E.SAVING)) < 0.01, "saving at 50 %: " + saving + ", expected " + E.SAVING);
  check(!(await p.textContent("#economie-note")).includes("Courrier"), "letters with a cost are said to be left out");
  ok("moving half of the counter and letter requests online saves " + saving + " € (the slider by keyboard)");

  let v = await axe(p);
  check(v.length === 0, "axe on the dashboard: " + v.join("; "));
  await shot(p, "tableau-de-bord");
  const m = await page(b, 360, 740);
  await m.context().addCookies(await p.context().cookies());
  await m.goto(BASE + "/tableau-de-bord/#" + E.YEAR);
  await m.waitForSelector("#tableau:not([hidden]) #table-couts tbody tr");
  const width = await m.evaluate(() => document.documentElement.scrollWidth);
  check(width <= 360, "the dashboard at 360 px is " + width + " px wide");
  await shot(m, "tableau-de-bord-360");
  check(p.bytes < 100 * 1024, "the dashboard's load: " + p.bytes + " bytes");
  ok("accessible (axe), usable at 360 px, " + p.bytes + " bytes loaded");
} finally {
  await b.close();
}
done();
