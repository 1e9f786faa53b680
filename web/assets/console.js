/* console.js — the agents' console (/console/, docs/web.md).

   One page, its views chosen by the URL's fragment. This file: the session,
   the API, the fragment's routing, and three views: #/connexion (a token
   exchanged for a session cookie: POST /v1/sessions), #/recherche (citizens
   found as the agent types: GET /v1/citizens, debounced) and #/usager/ID (one
   timeline across services: GET /v1/citizens/ID/timeline, paged, filtered
   by service, status and channel in the page). Other views live in their
   own files and register with window.civibusConsole.vue: console-accueil.js
   (register a contact), console-file.js (the service's queue),
   console-fusions.js (merge proposals). Everything comes from the
   API with the session's cookie; writes carry the session's X-CSRF-Token.
   What the agent's role may not see is not in the API's answers, so it is
   not here either: a field the answer lacks reads "non visible pour votre
   service". No inline script, no outside resource (the CSP forbids both). */
"use strict";
(function () {
  const T = window.civibusTextes;
  const $ = (id) => document.getElementById(id);
  const vues = ["connexion", "recherche", "usager"];
  const autres = [];            /* views of other files: {vue, motif, ouvrir} (civibusConsole.vue) */
  let csrf = null;
  let session = null;           /* the answer of GET /v1/session: role, service, ... */
  let usager = null;            /* {id, requests: [], events: [], next: offset|null} */

  function dire(cle, texte) { $("message").textContent = cle ? T.t(cle, texte) : (texte || ""); }

  /* Shows one view; after a change of view (not at the page's load, where the
     skip link comes first) the focus goes to its heading, read out first. */
  let vueActuelle = null;
  function montrer(vue) {
    vues.concat(autres.map((a) => a.vue)).forEach((v) => { $("vue-" + v).hidden = v !== vue; });
    $("menu").hidden = vue === "connexion";
    const h = $("vue-" + vue).querySelector("h1");
    if (h && vueActuelle !== null && vueActuelle !== vue) { h.tabIndex = -1; h.focus(); }
    vueActuelle = vue;
  }

  async function api(method, path, body) {
    const opts = { method: method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    if (method !== "GET" && csrf) opts.headers["X-CSRF-Token"] = csrf;
    let r;
    try { r = await fetch(path, opts); } catch (e) { dire("console.panne"); throw e; }
    if (r.status === 401 && path !== "/v1/sessions") {
      csrf = null;
      $("qui").hidden = true;
      dire("console.session_finie");
      location.hash = "#/connexion";
      throw new Error("401");
    }
    return r;
  }

  function quiEstLa(s) {
    csrf = s.csrf_token;
    session = s;
    const role = T.t("console.connecte_" + s.role, s.role);
    $("qui-texte").textContent = s.service ? role + " " + T.libelle("service", s.service) : role;
    $("qui").hidden = false;
    $("menu-tdb").hidden = s.role === "agent";          /* the dashboard is the management's */
    document.querySelectorAll("[data-roles]").forEach(function (el) {   /* menu entries by role */
      el.hidden = !el.getAttribute("data-roles").split(" ").includes(s.role);
    });
  }

  /* ---- sign-in ---- */
  $("form-connexion").addEventListener("submit", async function (ev) {
    ev.preventDefault();
    const jeton = $("jeton").value.trim();
    let r;
    try { r = await api("POST", "/v1/sessions", { token: jeton }); } catch (e) { return; }
    $("jeton").value = "";
    if (r.status === 201) {
      quiEstLa(await r.json());
      dire(null);
      location.hash = "#/recherche";
    } else {
      dire(r.status === 429 ? "console.trop" : r.status >= 500 ? "console.panne" : "console.jeton_refuse");
      $("jeton").focus();
    }
  });

  $("deconnexion").addEventListener("click", async function () {
    try { await api("POST", "/v1/session/logout"); } catch (e) { /* ended already */ }
    csrf = null;
    $("qui").hidden = true;
    location.hash = "#/connexion";
  });

  /* ---- search ---- */
  function critere(q) {
    const code = q.toUpperCase().replace(/[\s-]+/g, "");
    if (q.includes("@")) return "email=" + encodeURIComponent(q);
    if (/^[+0-9 .()-]{9,}$/.test(q)) return "phone=" + encodeURIComponent(q);
    if (/^[ACDEFHJKLMNPRTUVWXY34679]{10,11}$/.test(code) && /[0-9]/.test(code)) return "tracking_code=" + code;
    if (/^\d+\s/.test(q)) return "address=" + encodeURIComponent(q);
    return "name=" + encodeURIComponent(q);
  }

  function nom(identites) {
    for (const i of identites || []) {
      const d = i.identity || {};
      const famille = d.family_name || d.last_name, prenoms = d.given_names || d.first_name;
      if (famille || prenoms) return [prenoms, famille].filter(Boolean).join(" ");
    }
    return T.t("console.sans_nom");
  }

  function naissance(identites) {
    for (const i of identites || []) if (i.identity && i.identity.birth_date) return i.identity.birth_date;
    return "";
  }

  let minuterie = null, derniere = "";
  $("q").addEventListener("input", function () {
    clearTimeout(minuterie);
    minuterie = setTimeout(chercher, 250);
  });
  $("form-recherche").addEventListener("submit", function (ev) { ev.preventDefault(); chercher(); });

  async function chercher() {
    const q = $("q").value.trim();
    if (q.length < 2 || q === derniere) return;
    derniere = q;
    let r;
    try { r = await api("GET", "/v1/citizens?" + critere(q) + "&limit=20"); } catch (e) { return; }
    if (q !== $("q").value.trim()) return;                 /* typed on meanwhile */
    const liste = $("resultats");
    liste.replaceChildren();
    if (!r.ok) { $("compte").textContent = T.t("console.aucun"); return; }
    const d = await r.json();
    (d.items || []).forEach(function (c) {
      const li = document.createElement("li");
      const a = document.createElement("a");
      a.href = "#/usager/" + c.id;
      a.textContent = nom(c.identities);
      li.appendChild(a);
      const n = naissance(c.identities);
      if (n) li.appendChild(document.createTextNode(" — " + T.t("console.ne_le") + " " + T.date(n)));
      liste.appendChild(li);
    });
    $("compte").textContent = d.items && d.items.length ? d.items.length + " " + T.t("console.trouves")
                                                         : T.t("console.aucun");
  }

  /* ---- a citizen's timeline ---- */
  function ajouterInfo(dl, cle, valeur) {
    if (!valeur) return;
    const dt = document.createElement("dt"), dd = document.createElement("dd");
    dt.textContent = T.t(cle);
    dd.textContent = valeur;
    dl.append(dt, dd);
  }

  function adresse(a) {
    if (!a) return "";
    if (typeof a === "string") return a;
    return [a.line1, a.line2, [a.postcode, a.city].filter(Boolean).join(" ")].filter(Boolean).join(", ");
  }

  async function ouvrirUsager(id) {
    usager = { id: id, requests: [], events: [], next: 0, citizen: null };
    $("lien-accueil-usager").href = "#/accueil/usager/" + id;
    $("frise").replaceChildren();
    await pageSuivante();
  }

  async function pageSuivante() {
    let r;
    try { r = await api("GET", "/v1/citizens/" + usager.id + "/timeline?limit=20&offset=" + usager.next); } catch (e) { return; }
    if (!r.ok) { dire("console.aucun"); return; }
    const d = await r.json();
    usager.citizen = d.citizen;
    usager.requests = usager.requests.concat(d.requests || []);
    usager.events = usager.events.concat(d.events || []);
    usager.next = d.next_offset;
    dessinerIdentite();
    remplirFiltres();
    dessinerFrise();
    $("plus").hidden = d.next_offset === null || d.next_offset === undefined;
  }

  function dessinerIdentite() {
    const ids = (usager.citizen && usager.citizen.identities) || [];
    $("titre-usager").textContent = nom(ids);
    $("fiches-titre").textContent = ids.length + " " + T.t("console.fiches");
    const corps = $("identite").querySelector("tbody");
    corps.replaceChildren();
    ids.forEach(function (i) {
      const d = i.identity || {};
      const tr = document.createElement("tr");
      [i.source, nom([i]) === T.t("console.sans_nom") ? "—" : nom([i]), d.birth_date ? T.date(d.birth_date) : "—",
       d.email || "—", d.phone || "—", adresse(d.address) || "—"].forEach(function (v, k) {
        const c = document.createElement(k === 0 ? "th" : "td");
        if (k === 0) c.scope = "row";
        c.textContent = v;
        tr.appendChild(c);
      });
      corps.appendChild(tr);
    });
  }

  function options(select, valeurs, prefixe) {
    const garde = select.value;
    select.replaceChildren(new Option(T.t("console.tous"), ""));
    [...valeurs].sort().forEach((v) => select.appendChild(new Option(T.libelle(prefixe, v), v)));
    select.value = [...valeurs].includes(garde) ? garde : "";
  }

  function remplirFiltres() {
    const rq = usager.requests;
    options($("f-service"), new Set(rq.map((x) => x.service).filter(Boolean)), "service");
    options($("f-statut"), new Set(rq.map((x) => x.status).filter(Boolean)), "statut");
    options($("f-canal"), new Set(rq.map((x) => x.channel).filter(Boolean)), "canal");
  }
  ["f-service", "f-statut", "f-canal"].forEach((id) => $(id).addEventListener("change", dessinerFrise));

  function texte(v) { return v === undefined ? T.t("console.masque") : (v || "—"); }

  function dessinerFrise() {
    const fs = $("f-service").value, fe = $("f-statut").value, fc = $("f-canal").value;
    const liste = usager.requests
      .filter((x) => (!fs || x.service === fs) && (!fe || x.status === fe) && (!fc || x.channel === fc))
      .sort((a, b) => (a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : b.id - a.id));
    const ol = $("frise");
    ol.replaceChildren();
    liste.forEach(function (x) {
      const li = document.createElement("li");
      li.className = "demande";
      const det = document.createElement("details");
      const sum = document.createElement("summary");
      const quand = T.heure(x.requested_at || x.created_at);
      const etat = document.createElement("span");
      etat.className = "badge statut-" + x.status;
      etat.textContent = T.t("statut." + x.status, x.status);
      sum.append(quand, " · ", T.libelle("service", x.service) || "—", " · ",
                 T.libelle("categorie", x.category) || "—", " · ",
                 x.channel === undefined ? T.t("console.masque") : T.libelle("canal", x.channel), " ", etat);
      if (x.overdue) {
        const r = document.createElement("span");
        r.className = "badge retard";
        r.textContent = T.t("console.en_retard");
        sum.append(" ", r);
      }
      det.appendChild(sum);
      const dl = document.createElement("dl");
      dl.className = "infos";
      ajouterInfo(dl, "suivi.demande", texte(x.tracking_code));
      ajouterInfo(dl, "console.echeance", x.due_at ? T.date(x.due_at) : "—");
      if (x.summary !== undefined) ajouterInfo(dl, "suivi.objet", x.summary || "—");
      det.appendChild(dl);
      const evs = usager.events.filter((e) => e.request_id === x.id);
      if (evs.length) {
        const h = document.createElement("h3");
        h.textContent = T.t("console.evenements");
        const ul = document.createElement("ol");
        ul.className = "historique";
        evs.forEach(function (e) {
          const eli = document.createElement("li");
          eli.append(T.heure(e.occurred_at, true), T.t("statut." + e.status, e.status));
          if (e.source) eli.append(" — " + T.t("console.source") + " " + e.source);
          ul.appendChild(eli);
        });
        det.append(h, ul);
      }
      if (x.tracking_code !== undefined) {        /* the request's own view: what the citizen was told */
        det.addEventListener("toggle", function () { if (det.open) messages(x.id, det); }, { once: true });
      }
      li.appendChild(det);
      ol.appendChild(li);
    });
    $("compte-demandes").textContent = liste.length + " " + T.t("console.demandes_affichees");
  }
  $("plus").addEventListener("click", pageSuivante);

  /* The notifications sent about a request (GET /v1/requests/ID: channel,
     template, state, when; never an address nor a content), once unfolded. */
  async function messages(id, det) {
    let r;
    try { r = await api("GET", "/v1/requests/" + id); } catch (e) { return; }
    if (!r.ok) return;
    const n = (await r.json()).notifications || [];
    if (!n.length) return;
    const h = document.createElement("h3");
    h.textContent = T.t("console.messages");
    const ul = document.createElement("ul");
    ul.className = "messages";
    n.forEach(function (m) {
      const li = document.createElement("li");
      const qui = m.recipient.split(":")[0];          /* supervisor:SERVICE, webhook:NAME */
      li.append(T.heure(m.done_at || m.planned_at, true), " — ", T.t("modele." + m.template, m.template), " (",
                T.libelle("canal", m.channel), ", ", T.t("destinataire." + qui, qui), ") : ",
                T.t("envoi." + m.state, m.state));
      ul.appendChild(li);
    });
    det.append(h, ul);
  }

  /* ---- the fragment says the view ---- */
  async function route() {
    const h = location.hash;
    if (!csrf) {
      let r = null;
      try { r = await fetch("/v1/session", { credentials: "same-origin" }); } catch (e) { /* down */ }
      if (r && r.ok) quiEstLa(await r.json());
    }
    if (!csrf) { montrer("connexion"); return; }
    const m = /^#\/usager\/(\d{1,18})$/.exec(h);
    if (m) { montrer("usager"); await ouvrirUsager(m[1]); return; }
    for (const a of autres) {
      const ma = a.motif.exec(h);
      if (ma) { montrer(a.vue); await a.ouvrir(ma); return; }
    }
    if (h !== "#/recherche") { history.replaceState(null, "", "#/recherche"); }
    montrer("recherche");
  }
  /* What the console's other files (console-*.js, loaded after this one) use:
     the API with the session, the message line, the session, and vue() to add
     a view: its section #vue-NAME, the fragments it answers, what opens it. */
  window.civibusConsole = {
    T: T, $: $, api: api, dire: dire,
    session: function () { return session; },
    nom: nom,
    /* the citizen's name as the console shows it (GET /v1/citizens/ID/timeline, first page) */
    nomUsager: async function (id) {
      const r = await api("GET", "/v1/citizens/" + id + "/timeline?limit=1");
      if (!r.ok) return null;
      const d = await r.json();
      return nom((d.citizen && d.citizen.identities) || []);
    },
    vue: function (vue, motif, ouvrir) { autres.push({ vue: vue, motif: motif, ouvrir: ouvrir }); }
  };
  window.addEventListener("hashchange", route);
  const charge = new Promise((ok) => {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", ok); else ok();
  });
  Promise.all([T.pret, charge]).then(route);
})();
