// suivi.mjs — the citizen's status page (/suivi/) in a real browser, on a phone's width.
// Env: BASE_URL, CODE (a request's tracking code), STATUS_FR (its status in French),
// SERVICE_FR, HISTORY (how many distinct statuses its history shows), UNKNOWN (a
// well-formed code of no request), MISTYPED (CODE with two characters swapped).
import { BASE, ok, check, done, browser, page, axe, shot, tabOrder } from "./lib.mjs";

const { CODE, STATUS_FR, SERVICE_FR, HISTORY, UNKNOWN, MISTYPED } = process.env;
const b = await browser();
try {
  const p = await page(b, 360, 740);
  await p.goto(BASE + "/suivi/");
  await p.waitForFunction(() => document.querySelector("h1").textContent.length > 0);
  await shot(p, "suivi-accueil-360");
  check((await p.getAttribute("html", "lang")) === "fr", "the page is not lang=fr");
  check((await p.title()).includes("Suivre ma demande"), "title: " + (await p.title()));
  let v = await axe(p);
  check(v.length === 0, "axe on the empty form: " + v.join("; "));
  const order = await tabOrder(p, 3);
  check(order[0] === "#contenu" && order[1] === "code" && order[2] === "button",
        "keyboard order (skip link, field, button): " + order.join(", "));
  ok("the form at 360 px: French, accessible (axe: no serious or critical), keyboard order skip link → field → button");

  // typed as on a receipt: lower case, dashes
  const typed = (CODE.slice(0, 4) + "-" + CODE.slice(4, 8) + "-" + CODE.slice(8)).toLowerCase();
  await p.fill("#code", typed);
  await p.keyboard.press("Enter");
  await p.waitForSelector(".fiche .etat");
  const etat = (await p.textContent(".fiche .etat")).trim();
  check(etat === STATUS_FR, "status shown: '" + etat + "', expected '" + STATUS_FR + "'");
  const shown = (await p.textContent(".fiche .code")).trim();
  check(shown === CODE.slice(0, 4) + "-" + CODE.slice(4, 8) + "-" + CODE.slice(8), "the code shown: " + shown);
  const filed = (await p.textContent(".fiche .deposee")).trim();
  check(filed === process.env.FILED_FR, "filed on: '" + filed + "', expected '" + process.env.FILED_FR + "' (requested_at)");
  check((await p.textContent(".fiche .service")).trim() === SERVICE_FR,
        "service: " + (await p.textContent(".fiche .service")));
  const n = await p.locator(".historique li").count();
  check(String(n) === HISTORY, "history entries: " + n + ", expected " + HISTORY);
  check((await p.textContent(".fiche .phrase")).trim().length > 10, "no plain-words sentence for the status");
  check(p.url().endsWith("/suivi/" + CODE), "the URL does not name the code: " + p.url());
  const width = await p.evaluate(() => document.documentElement.scrollWidth);
  check(width <= 360, "wider than the phone: " + width + " px");
  v = await axe(p);
  check(v.length === 0, "axe on the result: " + v.join("; "));
  await shot(p, "suivi-demande-360");
  ok("a code typed as on a receipt (lower case, dashes): status '" + STATUS_FR + "', service, " + n +
     " steps of history, no horizontal scroll, accessible");

  // nothing but the request: the network answers carry no personal data
  const body = await p.evaluate(async (c) => (await fetch("/v1/track/" + c)).text(), CODE);
  const keys = Object.keys(JSON.parse(body)).sort().join(",");
  check(keys === "category,created_at,due_at,history,requested_at,service,status,status_at,tracking_code",
        "the tracking answer's fields: " + keys);
  ok("the page reads /v1/track only: no name, e-mail or address reaches the browser");

  // the link of a notification: /suivi/CODE
  const q = await page(b, 360, 740);
  await q.goto(BASE + "/suivi/" + CODE);
  await q.waitForSelector(".fiche .etat");
  check((await q.textContent(".fiche .etat")).trim() === STATUS_FR, "/suivi/CODE does not show the request");
  check(q.bytes < 100 * 1024, "first load transferred " + q.bytes + " bytes (over 100 kB)");
  check(q.consoleErrors.length === 0, "console errors: " + q.consoleErrors.join(" | "));
  ok("the notification's link /suivi/CODE opens the request directly; first load " + q.bytes + " bytes");

  // a code read aloud wrong, then one of no request: calm words, nothing else (the
  // browser logs the API's 400 and 404 as failed loads: those are expected here)
  check(p.consoleErrors.length === 0, "console errors: " + p.consoleErrors.join(" | "));
  const before = p.consoleErrors.length;
  await p.fill("#code", MISTYPED);
  await p.click("button");
  await p.waitForFunction(() => /mal saisi/.test(document.getElementById("message").textContent));
  check(await p.locator(".fiche").count() === 0, "a mistyped code still shows a request");
  await p.fill("#code", UNKNOWN);
  await p.click("button");
  await p.waitForFunction(() => /Nous ne trouvons pas/.test(document.getElementById("message").textContent));
  await shot(p, "suivi-inconnu-360");
  v = await axe(p);
  check(v.length === 0, "axe on the message: " + v.join("; "));
  await p.fill("#code", "");
  await p.click("button");
  await p.waitForFunction(() => /Saisissez/.test(document.getElementById("message").textContent));
  const other = p.consoleErrors.slice(before).filter((e) => !/status of 40[04]/.test(e));
  check(other.length === 0, "console errors: " + other.join(" | "));
  ok("a mistyped code, an unknown one and an empty field each get one calm sentence, announced (role=status)");
} finally {
  await b.close();
}
done();
