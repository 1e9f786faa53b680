/* textes.js — the pages' texts from one catalogue (assets/textes-fr.json), so
   that another language is one more file. Elements with data-t="key" get
   the catalogue's text; the French in the HTML stays as the fallback
   before the catalogue arrives. No inline script anywhere (the
   Content-Security-Policy forbids it). */
"use strict";
window.civibusTextes = (function () {
  let textes = {};
  const pret = fetch("/assets/textes-" + (document.documentElement.lang || "fr") + ".json")
    .then(function (r) { return r.ok ? r.json() : {}; })
    .then(function (t) { textes = t; appliquer(document); return t; })
    .catch(function () { return textes; });
  function t(cle, defaut) {
    return Object.prototype.hasOwnProperty.call(textes, cle) ? textes[cle] : (defaut !== undefined ? defaut : cle);
  }
  function appliquer(racine) {
    racine.querySelectorAll("[data-t]").forEach(function (el) {
      const v = textes[el.getAttribute("data-t")];
      if (typeof v === "string") el.textContent = v;
    });
  }
  /* A code of the model (a service, a category) in plain words: its
     catalogue entry, or the code with its underscores as spaces. */
  function libelle(prefixe, code) {
    if (!code) return "";
    return t(prefixe + "." + code, code.replace(/[_-]+/g, " "));
  }
  const dateFr = new Intl.DateTimeFormat("fr-FR", { dateStyle: "long", timeZone: "Europe/Paris" });
  const dateHeureFr = new Intl.DateTimeFormat("fr-FR", { dateStyle: "long", timeStyle: "short", timeZone: "Europe/Paris" });
  function date(iso, avecHeure) {
    if (!iso) return "";
    const d = new Date(iso);
    return isNaN(d) ? "" : (avecHeure ? dateHeureFr : dateFr).format(d);
  }
  /* a <time> element: the ISO date for machines, the French one for people */
  function heure(iso, avecHeure) {
    const el = document.createElement("time");
    el.dateTime = iso || "";
    el.textContent = date(iso, avecHeure);
    return el;
  }
  /* the codes the catalogue names under a prefix ("service." → ["accueil", ...]) */
  function cles(prefixe) {
    return Object.keys(textes).filter((k) => k.startsWith(prefixe)).map((k) => k.slice(prefixe.length));
  }
  return { pret: pret, t: t, libelle: libelle, date: date, heure: heure, appliquer: appliquer, cles: cles };
})();
