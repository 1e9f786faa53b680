/* console-fusions.js — the console's view #/fusions (docs/web.md): the open
   merge proposals (GET /v1/merge-proposals), for supervisors and admins.

   Each proposal shows its two citizens side by side, with what every source
   says of them (GET /v1/citizens/ID/timeline, its citizen's identities: names,
   birth date, e-mail, phone, address), the rule that proposed them and its
   confidence in plain French, and two answers:
     - "the same person": POST /v1/citizens/A/merge {"absorb": B}, A the older
       citizen (citizen_a < citizen_b, ids grow with time); the merge marks
       the proposal accepted;
     - "two different people": POST /v1/merge-proposals/ID/reject; the pair is
       never proposed again.
   After an answer the proposal leaves the list, the message line (role=status)
   says what was done, and the focus goes to the next proposal's heading (or
   the view's heading when none is left). A refusal (403, 409, a network or
   server failure) reads as one French sentence. An agent typing #/fusions gets
   the refusal without any call: the API would answer 403 anyway. Texts: the
   "fusions." keys of textes-fr.json. Uses window.civibusConsole (console.js). */
"use strict";
(function () {
  const C = window.civibusConsole;
  if (!C) return;
  const T = C.T, $ = C.$;
  const LIMITE = 50;
  let generation = 0;               /* a later opening wins over an earlier one still loading */

  function el(tag, classe, texte) {
    const e = document.createElement(tag);
    if (classe) e.className = classe;
    if (texte !== undefined) e.textContent = texte;
    return e;
  }

  /* The view's own parts, built once under its heading. */
  function parties() {
    let liste = $("fusions-liste");
    if (liste) return { aide: $("fusions-aide"), compte: $("fusions-compte"), liste: liste };
    const section = $("vue-fusions");
    const aide = el("p", "aide", T.t("fusions.aide"));
    aide.id = "fusions-aide";
    const compte = el("p", "compte");
    compte.id = "fusions-compte";
    compte.tabIndex = -1;
    liste = el("ul", "fusions");
    liste.id = "fusions-liste";
    liste.setAttribute("aria-labelledby", "titre-fusions");
    section.append(aide, compte, liste);
    return { aide: aide, compte: compte, liste: liste };
  }

  function nomDe(d) {
    const famille = d.family_name || d.last_name, prenoms = d.given_names || d.first_name;
    return [prenoms, famille].filter(Boolean).join(" ");
  }
  function nom(identites) {
    for (const i of identites || []) {
      const n = nomDe(i.identity || {});
      if (n) return n;
    }
    return T.t("console.sans_nom");
  }
  function adresse(a) {
    if (!a) return "";
    if (typeof a === "string") return a;
    return [a.line1, a.line2, [a.postcode, a.city].filter(Boolean).join(" ")].filter(Boolean).join(", ");
  }

  /* What a citizen's sources say, field by field: the distinct values, in
     the order the sources give them (a citizen of eight records of one
     software reads as one card, not eight). */
  const CHAMPS = [
    ["console.identite_nom", (d) => nomDe(d)],
    ["console.identite_naissance", (d) => (d.birth_date ? T.date(d.birth_date) : "")],
    ["console.identite_courriel", (d) => d.email || ""],
    ["console.identite_telephone", (d) => d.phone || ""],
    ["console.identite_adresse", (d) => adresse(d.address)],
  ];
  function valeurs(citoyen) {
    const ids = (citoyen && citoyen.identities) || [];
    const parSource = {};
    ids.forEach((i) => { parSource[i.source] = (parSource[i.source] || 0) + 1; });
    const champs = CHAMPS.map(function (c) {
      const vus = [];
      ids.forEach(function (i) {
        const v = String(c[1](i.identity || {}) || "").trim();
        if (v && !vus.some((x) => x.toLowerCase() === v.toLowerCase())) vus.push(v);
      });
      return vus;
    });
    return { sources: parSource, champs: champs };
  }

  /* One citizen: a heading, its number, then what its sources say; a value
     the other citizen has too is marked "en commun". */
  function carteUsager(id, citoyen, garde, autre) {
    const div = el("div", "fusions-usager");
    const h = el("h3", null, nom(citoyen && citoyen.identities));
    const qui = el("p", "aide", T.t("fusions.usager_numero") + " " + id + " — " +
                   T.t(garde ? "fusions.conserve" : "fusions.absorbe"));
    div.append(h, qui);
    if (!citoyen) { div.appendChild(el("p", null, T.t("fusions.illisible"))); return div; }
    const moi = valeurs(citoyen), lui = valeurs(autre);
    const dl = el("dl", "infos fusions-fiche");
    dl.append(el("dt", null, T.t("fusions.sources")),
              el("dd", null, Object.keys(moi.sources).map((k) => k + " (" + moi.sources[k] + " " +
                T.t(moi.sources[k] > 1 ? "fusions.fiches" : "fusions.fiche") + ")").join(", ") || "—"));
    CHAMPS.forEach(function (c, k) {
      const dd = el("dd");
      if (!moi.champs[k].length) dd.textContent = "—";
      else {
        const ul = el("ul", "fusions-valeurs");
        moi.champs[k].forEach(function (v) {
          const li = el("li", null, v);
          if (lui.champs[k].some((x) => x.toLowerCase() === v.toLowerCase())) {
            li.className = "fusions-commun";
            li.appendChild(el("span", "fusions-badge", T.t("fusions.en_commun")));
          }
          ul.appendChild(li);
        });
        dd.appendChild(ul);
      }
      dl.append(el("dt", null, T.t(c[0])), dd);
    });
    div.appendChild(dl);
    const lien = el("a", null, T.t("fusions.voir_demandes"));
    lien.href = "#/usager/" + id;
    lien.setAttribute("aria-label", T.t("fusions.voir_demandes") + " — " + T.t("fusions.usager_numero") + " " + id);
    div.appendChild(el("p")).appendChild(lien);
    return div;
  }

  function confiance(c) {
    const n = Math.round(Number(c) * 100);
    return isNaN(n) ? "" : T.t("fusions.confiance") + " " + n + " %";
  }

  async function lireUsager(id) {
    try {
      const r = await C.api("GET", "/v1/citizens/" + id + "/timeline?limit=1");
      return r.ok ? (await r.json()).citizen : null;
    } catch (e) { return null; }
  }

  /* One proposal as a list item: heading, reason, the pair, the two answers. */
  function carteProposition(p, a, b) {
    const li = el("li", "fusions-proposition");
    li.dataset.proposition = p.id;
    const nomA = nom(a && a.identities), nomB = nom(b && b.identities);
    const h = el("h2", null, nomA + " " + T.t("fusions.et") + " " + nomB);
    h.id = "fusion-" + p.id;
    h.tabIndex = -1;
    const raison = el("p", "fusions-raison");
    raison.append(el("strong", null, T.t("fusions.raison") + " "),
                  T.libelle("fusions.regle", p.rule) + (p.confidence !== undefined ? " — " + confiance(p.confidence) : ""));
    const paire = el("div", "fusions-paire");
    paire.append(carteUsager(p.citizen_a, a, true, b), carteUsager(p.citizen_b, b, false, a));
    const actions = el("div", "fusions-actions");
    const quoi = nomA + " (" + p.citizen_a + ") " + T.t("fusions.et") + " " + nomB + " (" + p.citizen_b + ")";
    const fusionner = el("button", "fusions-fusionner", T.t("fusions.fusionner"));
    fusionner.type = "button";
    fusionner.setAttribute("aria-label", T.t("fusions.fusionner") + " " + quoi);
    const rejeter = el("button", "fusions-rejeter", T.t("fusions.rejeter"));
    rejeter.type = "button";
    rejeter.setAttribute("aria-label", T.t("fusions.rejeter") + " : " + quoi);
    fusionner.addEventListener("click", function () { repondre(li, p, "fusionner", quoi); });
    rejeter.addEventListener("click", function () { repondre(li, p, "rejeter", quoi); });
    actions.append(fusionner, rejeter);
    li.append(h, raison, paire, actions);
    return li;
  }

  function compter(n, plus) {
    const c = parties().compte;
    c.textContent = n === 0 ? T.t("fusions.aucun")
                            : n + " " + T.t(n === 1 ? "fusions.un_doublon" : "fusions.doublons") +
                              (plus ? " " + T.t("fusions.plus_tard") : "");
  }

  /* The refusal of an answer, in one sentence. */
  function refus(status) {
    if (status === 403) return "fusions.refus_droits";
    if (status === 409) return "fusions.deja_traite";
    if (status === 0) return "fusions.reseau";
    return "fusions.panne";
  }

  async function repondre(li, p, action, quoi) {
    const boutons = li.querySelectorAll("button");
    boutons.forEach((x) => { x.disabled = true; });
    let r = null;
    try {
      r = action === "fusionner"
        ? await C.api("POST", "/v1/citizens/" + p.citizen_a + "/merge", { absorb: Number(p.citizen_b) })
        : await C.api("POST", "/v1/merge-proposals/" + p.id + "/reject");
    } catch (e) {
      if (e && e.message === "401") return;       /* console.js sends the agent to the sign-in */
    }
    const status = r ? r.status : 0;
    if (r && r.ok) {
      C.dire(null, T.t(action === "fusionner" ? "fusions.fusionnes" : "fusions.rejetes") + " " + quoi + ".");
      retirer(li);
      return;
    }
    C.dire(null, T.t(refus(status)));
    if (status === 409) { retirer(li); return; }  /* answered elsewhere meanwhile: it is not open any more */
    boutons.forEach((x) => { x.disabled = false; });
    li.querySelector("button").focus();
  }

  /* Takes a proposal off the list; the focus goes to the next one's heading,
     else the previous one's, else the count ("no more duplicates"). */
  function retirer(li) {
    const suivant = li.nextElementSibling || li.previousElementSibling;
    li.remove();
    const liste = parties().liste;
    compter(liste.children.length, false);
    const cible = suivant ? suivant.querySelector("h2") : parties().compte;
    cible.focus();
  }

  async function ouvrir() {
    const g = ++generation;
    const v = parties();
    v.liste.replaceChildren();
    v.compte.textContent = "";
    const s = C.session();
    if (s && s.role === "agent") {
      v.aide.hidden = true;                        /* the refusal is said once, in the message line */
      const retour = el("a", null, T.t("fusions.retour"));
      retour.href = "#/recherche";
      v.compte.appendChild(retour);
      C.dire("fusions.refus_droits");
      return;
    }
    v.aide.hidden = false;
    v.compte.textContent = T.t("fusions.chargement");
    let r;
    try { r = await C.api("GET", "/v1/merge-proposals?limit=" + LIMITE); } catch (e) {
      if (g === generation) v.compte.textContent = T.t("fusions.reseau");
      return;
    }
    if (g !== generation) return;
    if (!r.ok) {
      const cle = r.status === 404 ? "fusions.indisponible" : refus(r.status);
      v.compte.textContent = T.t(cle);
      C.dire(cle);
      return;
    }
    const d = await r.json();
    const items = (d.items || []).slice(0, LIMITE);
    const ids = [...new Set(items.flatMap((p) => [p.citizen_a, p.citizen_b]))];
    const lus = {};
    await Promise.all(ids.map(async function (id) { lus[id] = await lireUsager(id); }));
    if (g !== generation) return;
    items.forEach((p) => v.liste.appendChild(carteProposition(p, lus[p.citizen_a], lus[p.citizen_b])));
    compter(items.length, d.next_offset !== null && d.next_offset !== undefined);
  }

  C.vue("fusions", /^#\/fusions$/, ouvrir);
})();
