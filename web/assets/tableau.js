/* tableau.js — the city's dashboard (/tableau-de-bord/, docs/web.md).

   One call, GET /v1/dashboard?year=Y (supervisors and admins, through the
   console's session cookie), gives every figure, each from a view of
   schemas/sql/functions/dashboard.sql; this script only draws them: bars
   as SVG made here (no charting library to download), every chart with the
   same numbers in a table beside it for screen readers, and the simulation
   of moving counter and letter requests online recomputed as the slider
   moves. Each figure's cell carries its raw value in data-valeur, which
   the browser test compares with its own SQL. */
"use strict";
(function () {
  const T = window.civibusTextes;
  const $ = (id) => document.getElementById(id);
  const nombre = new Intl.NumberFormat("fr-FR");
  const euros = new Intl.NumberFormat("fr-FR", { style: "currency", currency: "EUR", maximumFractionDigits: 0 });
  const eurosPrecis = new Intl.NumberFormat("fr-FR", { style: "currency", currency: "EUR", maximumFractionDigits: 2 });
  const SVG = "http://www.w3.org/2000/svg";
  let donnees = null;

  function dire(cle) { $("message").textContent = cle ? T.t(cle) : ""; }

  function duree(s) {
    if (s === null || s === undefined) return T.t("tdb.sans_delai");
    const j = Math.floor(s / 86400), h = Math.round((s % 86400) / 3600);
    return j > 0 ? j + " " + T.t("tdb.jours") + (h ? " " + h + " " + T.t("tdb.heures") : "") : h + " " + T.t("tdb.heures");
  }

  function cellule(tr, texte, valeur, entete) {
    const c = document.createElement(entete ? "th" : "td");
    if (entete) c.scope = "row";
    c.textContent = texte;
    if (valeur !== undefined) c.dataset.valeur = valeur === null ? "" : String(valeur);
    tr.appendChild(c);
    return c;
  }

  /* Horizontal bars: [{label, value}], drawn in an SVG that names its figures. */
  function barres(conteneur, lignes, titre) {
    conteneur.replaceChildren();
    const max = Math.max(1, ...lignes.map((l) => l.value));
    const h = 28, w = 640, gauche = 150;
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 " + w + " " + (lignes.length * h + 4));
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", titre + " : " + lignes.map((l) => l.label + " " + nombre.format(l.value)).join(", "));
    lignes.forEach(function (l, i) {
      const y = i * h + 2;
      const t = document.createElementNS(SVG, "text");
      t.setAttribute("x", gauche - 8); t.setAttribute("y", y + 18); t.setAttribute("text-anchor", "end");
      t.textContent = l.label;
      const r = document.createElementNS(SVG, "rect");
      r.setAttribute("x", gauche); r.setAttribute("y", y + 4); r.setAttribute("height", h - 10);
      r.setAttribute("width", Math.max(1, (w - gauche - 70) * l.value / max));
      r.setAttribute("class", "barre");
      const v = document.createElementNS(SVG, "text");
      v.setAttribute("x", gauche + 6 + (w - gauche - 70) * l.value / max); v.setAttribute("y", y + 18);
      v.textContent = nombre.format(l.value);
      svg.append(t, r, v);
    });
    conteneur.appendChild(svg);
  }

  /* Columns: 12 months. */
  function colonnes(conteneur, mois, titre) {
    conteneur.replaceChildren();
    const max = Math.max(1, ...mois.map((m) => m.value));
    const w = 640, h = 180, bas = 24, l = (w - 20) / mois.length;
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 " + w + " " + h);
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", titre + " : " + mois.map((m) => m.label + " " + nombre.format(m.value)).join(", "));
    mois.forEach(function (m, i) {
      const hauteur = (h - bas - 20) * m.value / max;
      const r = document.createElementNS(SVG, "rect");
      r.setAttribute("x", 10 + i * l + 4); r.setAttribute("width", l - 8);
      r.setAttribute("y", h - bas - hauteur); r.setAttribute("height", Math.max(0, hauteur));
      r.setAttribute("class", "barre");
      const t = document.createElementNS(SVG, "text");
      t.setAttribute("x", 10 + i * l + l / 2); t.setAttribute("y", h - 6); t.setAttribute("text-anchor", "middle");
      t.textContent = m.court;
      svg.append(r, t);
      if (m.value) {
        const v = document.createElementNS(SVG, "text");
        v.setAttribute("x", 10 + i * l + l / 2); v.setAttribute("y", h - bas - hauteur - 4);
        v.setAttribute("text-anchor", "middle");
        v.textContent = nombre.format(m.value);
        svg.appendChild(v);
      }
    });
    conteneur.appendChild(svg);
  }

  function dessiner(d) {
    donnees = d;
    const total = d.volumes.reduce((a, v) => a + v.requests, 0);
    $("total").textContent = nombre.format(total);
    $("total").dataset.valeur = total;
    if (!total) dire("tdb.aucune"); else dire(null);

    const canaux = d.costs.filter((c) => c.requests > 0);
    barres($("graphe-canaux"), canaux.map((c) => ({ label: T.libelle("canal", c.channel), value: c.requests })),
           T.t("tdb.canaux"));

    /* months x channels */
    const noms = [];
    const fmt = new Intl.DateTimeFormat("fr-FR", { month: "long" }), court = new Intl.DateTimeFormat("fr-FR", { month: "short" });
    for (let m = 0; m < 12; m++) {
      const date = new Date(Date.UTC(d.year, m, 15));
      noms.push({ cle: d.year + "-" + String(m + 1).padStart(2, "0"), label: fmt.format(date), court: court.format(date) });
    }
    const parMois = noms.map((n) => ({ label: n.label, court: n.court,
      value: d.volumes.filter((v) => v.month === n.cle).reduce((a, v) => a + v.requests, 0) }));
    colonnes($("graphe-mois"), parMois, T.t("tdb.mois"));
    const chans = [...new Set(d.volumes.map((v) => v.channel))].sort();
    const tete = $("table-mois").querySelector("thead"), corps = $("table-mois").querySelector("tbody");
    tete.replaceChildren(); corps.replaceChildren();
    const tr0 = document.createElement("tr");
    tr0.appendChild(Object.assign(document.createElement("th"), { scope: "col", textContent: T.t("tdb.mois") }));
    chans.forEach((c) => tr0.appendChild(Object.assign(document.createElement("th"), { scope: "col", textContent: T.libelle("canal", c) })));
    tete.appendChild(tr0);
    noms.forEach(function (n) {
      const tr = document.createElement("tr");
      cellule(tr, n.label, undefined, true);
      chans.forEach(function (c) {
        const v = d.volumes.filter((x) => x.month === n.cle && x.channel === c).reduce((a, x) => a + x.requests, 0);
        cellule(tr, nombre.format(v), v);
      });
      corps.appendChild(tr);
    });

    /* services */
    const services = [...new Set(d.volumes.map((v) => v.service).concat(d.overdue.map((o) => o.service))
                                 .concat(d.response_times.map((r) => r.service)))].sort();
    const ts = $("table-services").querySelector("tbody");
    ts.replaceChildren();
    services.forEach(function (s) {
      const tr = document.createElement("tr");
      tr.dataset.service = s;
      cellule(tr, s ? T.libelle("service", s) : T.t("tdb.sans_service"), undefined, true);
      const n = d.volumes.filter((v) => v.service === s).reduce((a, v) => a + v.requests, 0);
      cellule(tr, nombre.format(n), n);
      const o = (d.overdue.find((x) => x.service === s) || { overdue: 0 }).overdue;
      cellule(tr, nombre.format(o), o);
      const r = d.response_times.find((x) => x.service === s) || {};
      cellule(tr, duree(r.median_s), r.median_s === undefined ? null : r.median_s);
      cellule(tr, duree(r.p90_s), r.p90_s === undefined ? null : r.p90_s);
      ts.appendChild(tr);
    });

    /* costs */
    const tc = $("table-couts").querySelector("tbody");
    tc.replaceChildren();
    let connu = 0;
    d.costs.forEach(function (c) {
      const tr = document.createElement("tr");
      tr.dataset.canal = c.channel;
      cellule(tr, T.libelle("canal", c.channel), undefined, true);
      cellule(tr, nombre.format(c.requests), c.requests);
      const u = typeof c.unit_cost === "number";
      cellule(tr, u ? eurosPrecis.format(c.unit_cost) : T.t("tdb.non_renseigne"), u ? c.unit_cost : null);
      cellule(tr, c.total !== null && c.total !== undefined ? euros.format(c.total) : T.t("tdb.non_renseigne"),
              c.total === undefined ? null : c.total);
      if (typeof c.total === "number") connu += c.total;
      tc.appendChild(tr);
    });
    $("cout-total").textContent = euros.format(connu);
    $("cout-total").dataset.valeur = connu;
    simuler();
  }

  /* Moving a share of counter and letter requests online saves, per request moved,
     its channel's cost minus the online cost; channels without a cost are left out
     (and said). */
  function simuler() {
    if (!donnees) return;
    const part = Number($("part").value) / 100;
    const cout = (c) => (donnees.costs.find((x) => x.channel === c) || {});
    const web = cout("web").unit_cost;
    const note = $("economie-note");
    if (typeof web !== "number") {
      $("economie").textContent = T.t("tdb.sans_cout_en_ligne");
      $("economie").dataset.valeur = "";
      note.textContent = "";
      return;
    }
    let gain = 0, deplacees = 0;
    const exclus = [];
    ["guichet", "courrier"].forEach(function (c) {
      const x = cout(c);
      if (typeof x.unit_cost !== "number") { if (x.requests) exclus.push(T.libelle("canal", c)); return; }
      deplacees += part * x.requests;
      gain += part * x.requests * (x.unit_cost - web);
    });
    $("economie").textContent = T.t("tdb.economie") + " " + euros.format(gain) + " " + T.t("tdb.economie_pour") + " " +
      nombre.format(Math.round(deplacees)) + " " + T.t("tdb.economie_demandes") + " (" + Math.round(part * 100) + " %)";
    $("economie").dataset.valeur = Math.round(gain * 100) / 100;
    note.textContent = exclus.length ? T.t("tdb.exclus") + " " + exclus.join(", ") + "." : "";
  }
  $("part").addEventListener("input", simuler);

  async function charger(annee) {
    let r;
    try { r = await fetch("/v1/dashboard?year=" + annee, { credentials: "same-origin" }); }
    catch (e) { dire("console.panne"); return; }
    if (r.status === 401) { dire("tdb.connexion_requise"); $("connexion").hidden = false; return; }
    if (r.status === 403) { dire("tdb.reserve"); return; }
    if (!r.ok) { dire("console.panne"); return; }
    $("choix").hidden = false;
    $("tableau").hidden = false;
    dessiner(await r.json());
  }

  T.pret.then(function () {
    const ici = new Date().getFullYear();
    const m = /^#(\d{4})$/.exec(location.hash);
    const annee = m ? Number(m[1]) : ici;
    for (let a = ici; a >= ici - 4; a--) $("annee").appendChild(new Option(String(a), String(a)));
    if (annee < ici - 4 || annee > ici) $("annee").appendChild(new Option(String(annee), String(annee)));
    $("annee").value = String(annee);
    $("annee").addEventListener("change", function () {
      history.replaceState(null, "", "#" + $("annee").value);
      charger($("annee").value);
    });
    charger(annee);
  });
})();
