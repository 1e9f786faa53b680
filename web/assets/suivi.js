/* suivi.js — the citizen's status page (/suivi/, docs/web.md).

   A tracking code typed in the form, or in the path (/suivi/KXD7M4RT9CP:
   the link of a notification), is looked up with GET /v1/track/{code}; a
   signed link (/suivi/#lien=…: the fragment never reaches a server log)
   with GET /v1/me/{link}, which lists that citizen's requests. The page
   shows only what those public endpoints give: status, service, type,
   dates and the history of statuses — never a name or an address. Every
   failure but a mistyped code and the rate limit reads the same calm
   message: an unknown, erased or wrong code are not told apart. */
"use strict";
(function () {
  const T = window.civibusTextes;
  const form = document.getElementById("recherche");
  const champ = document.getElementById("code");
  const message = document.getElementById("message");
  const resultats = document.getElementById("resultats");
  const modele = document.getElementById("modele-fiche");

  function classeEtat(statut) {
    if (statut === "resolved" || statut === "closed") return "etat fini";
    if (statut === "waiting_citizen") return "etat attente";
    if (statut === "rejected" || statut === "cancelled") return "etat refus";
    return "etat";
  }

  /* KXD7M4RT9CP as on the receipt: KXD7-M4RT-9CP */
  function grouper(code) {
    return code.length === 11 ? code.slice(0, 4) + "-" + code.slice(4, 8) + "-" + code.slice(8) : code;
  }

  function fiche(d, n) {
    const f = modele.content.firstElementChild.cloneNode(true);
    T.appliquer(f);
    const id = "fiche-" + n;
    f.querySelector(".titre-fiche").id = id;
    f.setAttribute("aria-labelledby", id);
    f.querySelector(".code").textContent = grouper(d.tracking_code || "");
    const etat = f.querySelector(".etat");
    etat.textContent = T.t("statut." + d.status, d.status);
    etat.className = classeEtat(d.status);
    f.querySelector(".phrase").textContent = T.t("statut_phrase." + d.status, "");
    f.querySelector(".objet").textContent = T.libelle("categorie", d.category) || "—";
    f.querySelector(".service").textContent = T.libelle("service", d.service) || "—";
    f.querySelector(".deposee").textContent = T.date(d.requested_at || d.created_at) || "—";
    f.querySelector(".prevue").textContent = d.due_at ? T.date(d.due_at) : T.t("suivi.pas_de_date");
    const liste = f.querySelector(".historique");
    const histoire = Array.isArray(d.history) ? d.history : [];
    if (!histoire.length) {
      f.querySelector(".titre-historique").hidden = true;
      liste.hidden = true;
    }
    let avant = null;
    histoire.forEach(function (h) {
      if (h.status === avant) return;            /* the same status again says nothing new */
      avant = h.status;
      const li = document.createElement("li");
      li.appendChild(T.heure(h.occurred_at, true));
      li.appendChild(document.createTextNode(T.t("statut." + h.status, h.status)));
      liste.appendChild(li);
    });
    return f;
  }

  function dire(cle) {
    message.textContent = cle ? T.t(cle) : "";
  }

  function montrer(liste) {
    resultats.replaceChildren();
    liste.forEach(function (d, i) { resultats.appendChild(fiche(d, i)); });
    const premier = resultats.querySelector("h2");
    if (premier) { premier.tabIndex = -1; premier.focus(); }
  }

  /* 11 characters of the code's alphabet once '-' and spaces are removed. */
  function nettoyer(texte) {
    return texte.toUpperCase().replace(/[\s-]+/g, "");
  }

  function chercher(code) {
    resultats.replaceChildren();
    if (!code) { dire("suivi.vide"); champ.focus(); return; }
    if (!/^[A-Z0-9]{6,16}$/.test(code)) { dire("suivi.mal_saisi"); champ.focus(); return; }
    dire("suivi.chargement");
    fetch("/v1/track/" + encodeURIComponent(code), { headers: { Accept: "application/json" } })
      .then(function (r) {
        if (r.ok) return r.json().then(function (d) { dire(null); montrer([d]); });
        if (r.status === 429) return dire("suivi.trop");
        if (r.status >= 500) return dire("suivi.panne");
        return r.json().then(function (e) {
          dire(e && e.error && e.error.code === "mistyped" ? "suivi.mal_saisi" : "suivi.inconnu");
        }, function () { dire("suivi.inconnu"); });
      })
      .catch(function () { dire("suivi.panne"); });
  }

  function lien(l) {
    dire("suivi.chargement");
    fetch("/v1/me/" + encodeURIComponent(l), { headers: { Accept: "application/json" } })
      .then(function (r) {
        if (r.ok) return r.json().then(function (d) { dire(null); montrer(d.requests || d.items || []); });
        dire(r.status === 429 ? "suivi.trop" : r.status >= 500 ? "suivi.panne" : "suivi.inconnu");
      })
      .catch(function () { dire("suivi.panne"); });
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    const code = nettoyer(champ.value);
    history.replaceState(null, "", code ? "/suivi/" + code : "/suivi/");
    chercher(code);
  });

  T.pret.then(function () {
    const m = /^#lien=([A-Za-z0-9._-]{1,300})$/.exec(location.hash);
    if (m) { lien(m[1]); return; }
    const p = /^\/suivi\/([^/]+)\/?$/.exec(location.pathname);
    if (p) {
      champ.value = decodeURIComponent(p[1]);
      chercher(nettoyer(champ.value));
    }
  });
})();
