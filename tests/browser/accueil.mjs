// accueil.mjs — registering a contact in the console (#/accueil) and the service's queue
// (#/file), in Debian's chromium. Env: BASE_URL, TOKEN (an agent of dechets), CITIZEN and
// CITIZEN_NAME (a citizen of the demo data), PDF and FAKE (a real PDF, a text file named
// .pdf), OVERDUE and SOON (tracking codes the queue must show), OUT_DIR. Prints CODE_LETTER,
// CODE_CITIZEN lines for the shell script to check in SQL.
import { BASE, ok, check, done, browser, page, axe, shot } from "./lib.mjs";

const E = process.env;
const b = await browser();
try {
  const p = await page(b, 1280, 900);
  const posts = [];
  p.on("request", (r) => { if (r.method() === "POST" && r.url().endsWith("/v1/requests")) posts.push(r.url()); });
  await p.goto(BASE + "/console/#/accueil");
  await p.waitForSelector("#vue-connexion:not([hidden])");
  await p.waitForTimeout(1000);              /* the catalogue and the session check arrive */
  const firstLoad = await p.evaluate(() => performance.getEntriesByType("navigation").concat(performance.getEntriesByType("resource"))
    .reduce((n, e) => n + (e.transferSize || e.encodedBodySize || 0), 0));
  check(firstLoad > 20 * 1024 && firstLoad < 100 * 1024, "the console's first load is " + firstLoad + " bytes (at most 100 kB)");
  ok("the console's first load: " + Math.round(firstLoad / 1024) + " kB");
  await p.fill("#jeton", E.TOKEN);
  await p.keyboard.press("Enter");
  await p.waitForSelector("#vue-recherche:not([hidden])");
  await p.click('a[href="#/accueil"]');
  await p.waitForSelector("#vue-accueil:not([hidden]) #a-categorie option[value=encombrants]", { state: "attached" });
  check(await p.isHidden('a[href="#/fusions"]'), "an agent sees the duplicates' menu entry");
  // the keyboard alone reaches every control of the form, in reading order
  await p.check("#canal-courrier");                      /* the letter's date field shown too */
  await p.focus("#titre-accueil");
  const controls = await p.$$eval("#form-accueil :is(input, select, textarea, button)",
    (els) => els.filter((e) => e.offsetParent !== null && !(e.type === "radio" && !e.checked)).map((e) => e.id));
  const reached = [];
  for (let i = 0; i < controls.length * 5 && !reached.includes("a-enregistrer"); i++) {
    await p.keyboard.press("Tab");          /* a date field takes a Tab per part: day, month, year */
    const id = await p.evaluate(() => document.activeElement.id);
    if (reached[reached.length - 1] !== id) reached.push(id);
  }
  const missed = controls.filter((c) => !reached.includes(c));
  check(missed.length === 0, "Tab does not reach: " + missed.join(", "));
  const order = reached.filter((r) => controls.includes(r));
  check(order.join() === controls.slice(0, order.length).join(), "Tab order differs from the reading order: " + order.join(", "));
  await p.check("#canal-guichet");
  ok("the keyboard reaches the form's " + controls.length + " controls in reading order");
  let v = await axe(p);
  check(v.length === 0, "axe on the form: " + v.join("; "));
  await shot(p, "console-accueil");

  // nothing filled: the first missing field is named, in French, and gets the focus
  await p.click("#a-enregistrer");
  check((await p.textContent("#a-erreur")).includes("objet"), "empty form: " + await p.textContent("#a-erreur"));
  check(await p.evaluate(() => document.activeElement.id) === "a-categorie", "the focus is not on the missing field");
  check(posts.length === 0, "an empty form was sent");
  ok("an empty form: nothing sent, the missing field named in French and focused");

  // a letter with a file that is no PDF: refused by the API, said in French
  await p.check("#canal-courrier");
  check(await p.isVisible("#a-date"), "the letter's arrival date is not offered");
  await p.selectOption("#a-categorie", "encombrants");
  await p.fill("#a-description", "Courrier : un canapé à enlever devant le 3 rue des Lilas.");
  await p.fill("#a-nom", "Lettre-Navigateur");
  await p.fill("#a-prenom", "Agathe");
  await p.fill("#a-courriel", "agathe.lettre@exemple.fr");
  await p.setInputFiles("#a-fichiers", E.FAKE);
  await p.click("#a-enregistrer");
  await p.waitForFunction(() => document.getElementById("a-erreur").textContent.length > 0);
  check((await p.textContent("#a-erreur")).includes("PDF, JPEG et PNG"), "a fake PDF: " + await p.textContent("#a-erreur"));
  check(await p.isHidden("#a-resultat"), "a refused letter shows a result");
  ok("a text file named .pdf: refused, said in French, the form kept");

  // the real PDF: registered, the code and the letter's number shown; a double click sends once
  await p.setInputFiles("#a-fichiers", E.PDF);
  const before = posts.length;
  await p.dblclick("#a-enregistrer");
  await p.waitForSelector("#a-resultat:not([hidden])");
  const code = (await p.textContent("#a-resultat-infos dd.code")).trim();
  const infos = await p.textContent("#a-resultat-infos");
  check(/^[ACDEFHJKLMNPRTUVWXY34679]{11}$/.test(code), "tracking code shown: " + code);
  check(/\d{4}-\d{6}/.test(infos), "no letter registration number: " + infos);
  check(infos.includes("Propreté et déchets"), "the service in plain words: " + infos);
  check(posts.length - before === 1, "a double click sent " + (posts.length - before) + " registrations");
  check(await p.evaluate(() => document.activeElement.id) === "a-resultat", "the focus is not on the result");
  await shot(p, "console-accueil-enregistree");
  v = await axe(p);
  check(v.length === 0, "axe on the result: " + v.join("; "));
  console.log("CODE_LETTER=" + code);
  ok("a letter with its scan: registered once, code " + code + " and its registration number shown, focused");

  // from a citizen's page: the request joins that file
  await p.goto(BASE + "/console/#/usager/" + E.CITIZEN);
  await p.waitForSelector("#vue-usager:not([hidden]) #frise li");
  await p.click("#lien-accueil-usager");
  await p.waitForSelector("#a-usager-trouve:not([hidden])");
  check((await p.textContent("#a-usager-nom")).includes(E.CITIZEN_NAME), "the citizen's name: " + await p.textContent("#a-usager-nom"));
  check(await p.isHidden("#a-usager-saisi"), "the declared identity is asked for a citizen already found");
  await p.check("#canal-telephone");
  await p.selectOption("#a-categorie", "bac_casse");
  await p.fill("#a-description", "Appel : le bac est fendu.");
  await p.click("#a-enregistrer");
  await p.waitForSelector("#a-resultat:not([hidden])");
  const call = (await p.textContent("#a-resultat-infos dd.code")).trim();
  console.log("CODE_CITIZEN=" + call);
  // and it is in the citizen's timeline at once
  await p.goto(BASE + "/console/#/usager/" + E.CITIZEN);
  await p.waitForSelector("#vue-usager:not([hidden]) #frise li");
  const first = p.locator("#frise li.demande").first();
  await first.locator("summary").click();
  check((await first.textContent()).includes(call), "the new call is not first in the timeline: " + await first.textContent());
  check((await first.textContent()).includes("Téléphone"), "the call's channel: " + await first.textContent());
  ok("from a citizen's page: a phone call registered into that file, first in the timeline at once");
  // a request unfolded says what the citizen was told, without the address
  const told = p.locator("#frise li.demande", { hasText: E.NOTIFIED });
  await told.locator("summary").click();
  await told.locator("ul.messages li").first().waitFor();
  const said = await told.locator("ul.messages").textContent();
  check(/Accusé de réception \(Courriel, à l’usager\) : envoyé/.test(said), "the messages sent: " + said);
  check(!said.includes("@"), "an address on the page: " + said);
  ok("an unfolded request lists the messages sent to the citizen, without their address");

  // the service's queue: overdue first, then due soon
  await p.goto(BASE + "/console/#/file");
  await p.waitForSelector("#file-retard li");
  const late = await p.$$eval("#file-retard li", (ls) => ls.map((l) => l.textContent));
  const soon = await p.$$eval("#file-proche li", (ls) => ls.map((l) => l.textContent));
  check(late.some((t) => t.includes(E.OVERDUE)), "the overdue request is not in the late list: " + late.join(" | "));
  check(soon.some((t) => t.includes(E.SOON)) && !soon.some((t) => t.includes(E.OVERDUE)),
        "the soon list: " + soon.join(" | "));
  check(late.every((t) => /en retard de \d+ j/.test(t)), "a late line without its delay: " + late.join(" | "));
  check(await p.isDisabled("#file-service"), "an agent may pick another service's queue");
  v = await axe(p);
  check(v.length === 0, "axe on the queue: " + v.join("; "));
  await shot(p, "console-file");
  ok("the queue: " + late.length + " late (the oldest first), " + soon.length + " due soon; the agent's service only");

  // 360 px: the form and the queue fit
  const m = await page(b, 360, 740);
  await m.context().addCookies(await p.context().cookies());
  await m.goto(BASE + "/console/#/accueil");
  await m.waitForSelector("#vue-accueil:not([hidden]) #a-categorie option[value=encombrants]", { state: "attached" });
  const wide = await m.evaluate(() => document.documentElement.scrollWidth);
  check(wide <= 360, "the form is " + wide + " px wide at 360 px");
  await shot(m, "console-accueil-360");
  await m.goto(BASE + "/console/#/file");
  await m.waitForSelector("#file-retard li");
  check(await m.evaluate(() => document.documentElement.scrollWidth) <= 360, "the queue overflows at 360 px");
  await shot(m, "console-file-360");
  // the 401 of the first GET /v1/session (not yet signed in) and the refused letter's 400
  // are expected answers, which chromium logs as "Failed to load resource"; nothing else is
  const errors = p.consoleErrors.filter((e) => !/^Failed to load resource: .* (401|400) /.test(e)).concat(m.consoleErrors);
  check(errors.length === 0, "console errors: " + errors.join("; "));
  ok("at 360 px: the form and the queue fit, no console error");
} finally {
  await b.close();
}
done();
