// fusions.mjs — the console's duplicates view (#/fusions, web/assets/console-fusions.js) in a
// real browser: a supervisor sees the open proposals, each pair side by side with what the
// sources say, merges one with the keyboard, rejects another, gets a calm status and a
// sensible focus; a stale page's answer gets the French 409 sentence; 1280 and 360 px; an
// agent sees no menu entry and a French refusal at #/fusions; axe-core on each state.
// Env: BASE_URL, SUP (a supervisor's token), AGENT (an agent's token), P1 A1 B1 (the
// proposal to merge and its citizens), P2 A2 B2 (the one to reject), MAIL1 (an e-mail of
// pair 1, shown on both sides).
import { BASE, ok, check, done, browser, page, axe, shot, signIn as libSignIn } from "./lib.mjs";

const E = process.env;
const item = (id) => 'li[data-proposition="' + id + '"]';

async function signIn(p, token) {
  await libSignIn(p, token);
  p.consoleErrors.length = 0;       /* the signed-out page's GET /v1/session answers 401 */
}

const b = await browser();
try {
  const p = await page(b, 1280, 900);
  await signIn(p, E.SUP);
  check(await p.isVisible('nav#menu a[href="#/fusions"]'), "the supervisor does not see the menu entry");
  await p.click('nav#menu a[href="#/fusions"]');
  await p.waitForSelector(item(E.P1) + " h2");
  await p.waitForSelector(item(E.P2) + " h2");
  const focused = await p.evaluate(() => document.activeElement && document.activeElement.id);
  check(focused === "titre-fusions", "focus after opening the view: " + focused);
  // the pair side by side, with what the sources say
  const sides = await p.$$eval(item(E.P1) + " .fusions-usager", (ds) => ds.map((d) => d.textContent));
  check(sides.length === 2, "pair 1 shows " + sides.length + " citizens");
  check(sides.every((t) => t.includes(E.MAIL1)), "the shared e-mail is not on both sides: " + sides.join(" | "));
  check(sides[0].includes("Fiche n° " + E.A1) && sides[1].includes("Fiche n° " + E.B1), "the citizens' numbers");
  check(sides[0].includes("conservée"), "the older citizen is not said to be kept");
  const reason = await p.textContent(item(E.P1) + " .fusions-raison");
  check(/même courriel/.test(reason) && /fiabilité estimée \d+ %/.test(reason) && !/_/.test(reason),
        "the rule in plain French: " + reason);
  const names = await p.$$eval(item(E.P1) + " button", (bs) => bs.map((x) => x.getAttribute("aria-label")));
  check(names.length === 2 && names[0].startsWith("Ce sont la même personne : fusionner") &&
        names[1].startsWith("Ce sont deux personnes différentes") &&
        names.every((n) => n.includes("(" + E.A1 + ")") && n.includes("(" + E.B1 + ")")),
        "the buttons' accessible names do not say which pair: " + names.join(" | "));
  await shot(p, "fusions-1280");
  let v = await axe(p);
  check(v.length === 0, "axe on the proposals: " + v.join("; "));
  ok("the proposals side by side: the shared e-mail on both sides, the rule in French, buttons naming the pair");

  // a second page at 360 px, opened before the answers: it will be stale
  const m = await page(b, 360, 740);
  await m.context().addCookies(await p.context().cookies());
  await m.goto(BASE + "/console/#/fusions");
  await m.waitForSelector(item(E.P1) + " h2");
  const width = await m.evaluate(() => document.documentElement.scrollWidth);
  check(width <= 360, "the view at 360 px is " + width + " px wide");
  await shot(m, "fusions-360");
  v = await axe(m);
  check(v.length === 0, "axe at 360 px: " + v.join("; "));
  ok("at 360 px: one column, no horizontal scroll (" + width + " px)");

  // merge pair 1 with the keyboard
  await p.focus(item(E.P1) + " button.fusions-fusionner");
  await p.keyboard.press("Enter");
  await p.waitForSelector(item(E.P1), { state: "detached" });
  const said = await p.textContent("#message");
  check(said.startsWith("Fiches fusionnées") && said.includes("(" + E.A1 + ")"), "the status after a merge: " + said);
  check(await p.getAttribute("#message", "role") === "status", "the message is not a status region");
  const after = await p.evaluate(() => {
    const a = document.activeElement;
    return a && a.tagName === "H2" && a.closest("li") ? a.closest("li").dataset.proposition : (a && a.id);
  });
  check(after && after !== "body" && after !== E.P1, "focus after the merge: " + after);
  ok("merged with the keyboard: '" + said + "', the proposal left the list, focus on " + after);

  // reject pair 2
  await p.click(item(E.P2) + " button.fusions-rejeter");
  await p.waitForSelector(item(E.P2), { state: "detached" });
  const said2 = await p.textContent("#message");
  check(said2.startsWith("Noté, ce sont deux personnes différentes") && said2.includes("(" + E.A2 + ")"),
        "the status after a rejection: " + said2);
  const focus2 = await p.evaluate(() => document.activeElement && (document.activeElement.id || document.activeElement.tagName));
  check(focus2 && focus2 !== "BODY", "focus after the rejection: " + focus2);
  v = await axe(p);
  check(v.length === 0, "axe after the answers: " + v.join("; "));
  await shot(p, "fusions-apres");
  check(p.consoleErrors.length === 0, "console errors: " + p.consoleErrors.join("; "));
  ok("rejected: '" + said2 + "', focus on " + focus2);

  // the stale page answers pair 1 again: 409, one sentence, the item leaves
  await m.click(item(E.P1) + " button.fusions-rejeter");
  await m.waitForSelector(item(E.P1), { state: "detached" });
  const stale = await m.textContent("#message");
  check(/déjà été traité/.test(stale), "a stale answer (409): " + stale);
  ok("a proposal answered elsewhere: '" + stale + "'");

  // an agent: no menu entry; typing #/fusions reads a refusal (the supervisor's pages closed
  // first: three renderers at once are too many for a small test machine)
  await m.context().close();
  await p.context().close();
  const a = await page(b, 1280, 900);
  await signIn(a, E.AGENT);
  check(!(await a.isVisible('nav#menu a[href="#/fusions"]')), "an agent sees the duplicates' menu entry");
  const calls = [];
  a.on("request", (r) => { if (r.url().includes("merge-proposals")) calls.push(r.url()); });
  await a.evaluate(() => { location.hash = "#/fusions"; });        /* typed in the address bar */
  await a.waitForFunction(() => !document.getElementById("vue-fusions").hidden &&
    /responsables/.test(document.getElementById("message").textContent));
  check(await a.isVisible('#fusions-compte a[href="#/recherche"]'), "no way back from the refusal");
  const refusal = await a.textContent("#message");
  check(/votre compte n’y a pas accès/.test(refusal), "the agent's refusal: " + refusal);
  check(calls.length === 0, "the agent's page asked for the proposals: " + calls.join(", "));
  check(await a.locator("#fusions-liste li").count() === 0, "an agent sees proposals");
  v = await axe(a);
  check(v.length === 0, "axe on the agent's refusal: " + v.join("; "));
  await shot(a, "fusions-agent");
  ok("an agent: no menu entry, '" + refusal + "' at #/fusions");
} finally {
  await b.close();
}
done();
