// console.mjs — the agents' console (/console/) in a real browser: sign in, find a citizen
// as you type, one timeline across services, what another service's request hides, the
// filters, logout. Env: BASE_URL, TOKEN (an agent of SERVICE), SERVICE_FR, NAME (typed in the
// search), CITIZEN (the id that must be found), REQUESTS (the citizen's requests), OWN (of
// them, SERVICE's), SERVICES (how many services they span).
import { BASE, ok, check, done, browser, page, axe, shot, tabOrder } from "./lib.mjs";

const E = process.env;
const b = await browser();
try {
  const p = await page(b, 1280, 900);
  const timelines = [];
  p.on("response", async (r) => {
    if (/\/v1\/citizens\/\d+\/timeline/.test(r.url())) timelines.push(await r.json());
  });
  await p.goto(BASE + "/console/");
  await p.waitForSelector("#vue-connexion:not([hidden])");
  await shot(p, "console-connexion");
  let v = await axe(p);
  check(v.length === 0, "axe on the sign-in: " + v.join("; "));
  const order = await tabOrder(p, 3);
  check(order[0] === "#contenu" && order[1] === "jeton" && order[2] === "button",
        "keyboard order at sign-in: " + order.join(", "));
  await p.fill("#jeton", "0".repeat(64));
  await p.click("#form-connexion button");
  await p.waitForFunction(() => /pas reconnu/.test(document.getElementById("message").textContent));
  check(await p.isVisible("#vue-connexion"), "a wrong token left the sign-in");
  ok("the sign-in: accessible, keyboard order, a wrong token gets one sentence");

  await p.fill("#jeton", E.TOKEN);
  await p.keyboard.press("Enter");
  await p.waitForSelector("#vue-recherche:not([hidden])");
  const qui = (await p.textContent("#qui-texte")).trim();
  check(qui === "Agent du service " + E.SERVICE_FR, "who is signed in: " + qui);
  const cookies = await p.context().cookies();
  const c = cookies.find((x) => x.name === "civibus_session");
  check(c && c.httpOnly && c.sameSite === "Strict", "the session cookie: " + JSON.stringify(c));
  check(await p.evaluate(() => document.cookie.indexOf("civibus_session") < 0), "the session cookie is readable by scripts");
  ok("signed in: '" + qui + "', the cookie HttpOnly and SameSite=Strict, out of the scripts' reach");

  await p.focus("#q");
  await p.keyboard.type(E.NAME, { delay: 60 });
  await p.waitForSelector('#resultats a[href="#/usager/' + E.CITIZEN + '"]');
  await shot(p, "console-recherche");
  v = await axe(p);
  check(v.length === 0, "axe on the search: " + v.join("; "));
  ok("typing '" + E.NAME + "' lists the citizen as you type");

  await p.click('#resultats a[href="#/usager/' + E.CITIZEN + '"]');
  await p.waitForSelector("#vue-usager:not([hidden]) #frise li");
  const shown = await p.locator("#frise li.demande").count();
  check(String(shown) === E.REQUESTS, "requests in the timeline: " + shown + ", expected " + E.REQUESTS);
  const services = await p.$$eval("#f-service option", (os) => os.filter((o) => o.value).length);
  check(String(services) === E.SERVICES, "services in the filter: " + services + ", expected " + E.SERVICES);
  // what another service's request hides is not in the answer, nor on the page
  const tl = timelines[timelines.length - 1];
  const other = tl.requests.filter((r) => r.service !== E.SERVICE);
  check(other.length > 0, "no other service's request to check");
  check(other.every((r) => !("summary" in r) && !("channel" in r) && !("tracking_code" in r)),
        "another service's request carries its summary, channel or code to this agent's browser");
  check(tl.requests.filter((r) => r.service === E.SERVICE).every((r) => "summary" in r),
        "the agent's own requests lack their summary");
  const hidden = await p.locator("text=non visible pour votre service").count();
  check(hidden >= other.length, "the page does not say what is hidden: " + hidden);
  await p.click("#frise li.demande summary");
  await p.waitForSelector("#frise details[open] .historique li");
  await shot(p, "console-usager");
  v = await axe(p);
  check(v.length === 0, "axe on the timeline: " + v.join("; "));
  ok("one timeline: " + shown + " requests across " + services + " services; another service's summary, channel and code never reach the browser");

  await p.selectOption("#f-service", E.SERVICE);
  const own = await p.locator("#frise li.demande").count();
  check(String(own) === E.OWN, "filtered by service: " + own + ", expected " + E.OWN);
  await p.selectOption("#f-service", "");
  ok("the service filter keeps " + own + " of " + shown);

  const m = await page(b, 360, 740);
  await m.context().addCookies([c]);
  await m.goto(BASE + "/console/#/usager/" + E.CITIZEN);
  await m.waitForSelector("#vue-usager:not([hidden]) #frise li");
  const width = await m.evaluate(() => document.documentElement.scrollWidth);
  check(width <= 360, "the timeline at 360 px is " + width + " px wide");
  await shot(m, "console-usager-360");
  ok("the timeline at 360 px: no horizontal scroll");

  await p.click("#deconnexion");
  await p.waitForSelector("#vue-connexion:not([hidden])");
  const after = await p.evaluate(async () => (await fetch("/v1/session")).status);
  check(after === 401, "after logout the session answers " + after);
  ok("logout: back to the sign-in, the session ended");
} finally {
  await b.close();
}
done();
