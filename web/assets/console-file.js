/* console-file.js — the service's queue (#/file, #/file/SERVICE; docs/web.md,
   docs/deadlines.md): its open requests past their due date, the oldest
   first, then those due within the chosen days, from
   GET /v1/services/{service}/queue?due=overdue|soon&days=N. An agent sees
   their own service; a supervisor picks one (the services the catalogue
   names). A request waiting for the citizen is not there: its clock stands
   still. Each line opens the citizen's timeline when the agent may see it. */
"use strict";
(function () {
  const C = window.civibusConsole;
  const T = C.T, $ = C.$;
  const JOUR = 86400000;

  function services() {
    const s = C.session();
    if (s.role === "agent") return [s.service];
    const k = T.cles("service.");              /* etat_civil and etat-civil: one service */
    return k.filter((x) => !(x.includes("_") && k.includes(x.replace(/_/g, "-"))));
  }

  function ligne(x, retard) {
    const li = document.createElement("li");
    li.className = "demande";
    const p = document.createElement("p");
    p.className = "ligne-file";
    const quand = T.heure(x.due_at);
    const ecart = (new Date(x.due_at) - Date.now()) / JOUR;     /* days left (< 0: late) */
    const jours = retard ? Math.max(1, Math.floor(-ecart)) : Math.ceil(ecart);
    const badge = document.createElement("span");
    badge.className = "badge" + (retard ? " retard" : "");
    badge.textContent = retard ? T.t("file.retard_de").replace("{n}", jours)
                               : (jours < 1 ? T.t("file.aujourdhui") : T.t("file.dans").replace("{n}", jours));
    const quoi = T.libelle("categorie", x.category) || "—";
    p.append(quand, " · ", quoi, " · ", x.channel ? T.libelle("canal", x.channel) : "", " ", badge);
    if (x.tracking_code) {
      const c = document.createElement("span");
      c.className = "code";
      c.textContent = " " + x.tracking_code;
      p.append(c);
    }
    li.appendChild(p);
    if (x.citizen_id) {
      const a = document.createElement("a");
      a.href = "#/usager/" + x.citizen_id;
      a.textContent = T.t("file.voir_usager");
      a.setAttribute("aria-label", T.t("file.voir_usager") + " — " + quoi + ", " + T.date(x.due_at));
      li.appendChild(a);
    }
    if (x.summary) {
      const d = document.createElement("p");
      d.className = "aide";
      d.textContent = x.summary;
      li.appendChild(d);
    }
    return li;
  }

  async function liste(service, due, cible, compte) {
    const ol = $(cible);
    ol.replaceChildren();
    let r;
    try {
      r = await C.api("GET", "/v1/services/" + encodeURIComponent(service) + "/queue?due=" + due +
                      "&days=" + $("file-jours").value + "&limit=100");
    } catch (e) { return; }
    if (!r.ok) {
      $(compte).textContent = T.t(r.status === 403 ? "file.interdit" : "console.panne");
      return;
    }
    const d = await r.json();
    (d.items || []).forEach((x) => ol.appendChild(ligne(x, due === "overdue")));
    const n = (d.items || []).length;
    $(compte).textContent = n === 0 ? T.t("file.aucune")
      : n + " " + T.t(n > 1 ? "file.demandes" : "file.demande") + (d.next_offset ? " " + T.t("file.et_plus") : "");
  }

  async function afficher() {
    const service = $("file-service").value;
    if (!service) return;
    await liste(service, "overdue", "file-retard", "file-retard-compte");
    await liste(service, "soon", "file-proche", "file-proche-compte");
  }
  $("file-service").addEventListener("change", function () {
    history.replaceState(null, "", "#/file/" + this.value);
    afficher();
  });
  $("file-jours").addEventListener("change", afficher);

  C.vue("file", /^#\/file(?:\/([a-z0-9_-]{1,63}))?$/, async function (m) {
    const s = C.session();
    const sel = $("file-service");
    sel.replaceChildren();
    const liste = services();
    liste.forEach((x) => sel.appendChild(new Option(T.libelle("service", x), x)));
    sel.disabled = s.role === "agent";
    const voulu = m[1] && liste.includes(m[1]) ? m[1] : (s.service && liste.includes(s.service) ? s.service : liste[0]);
    sel.value = voulu || "";
    await afficher();
  });
})();
