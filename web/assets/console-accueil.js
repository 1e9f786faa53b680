/* console-accueil.js — registering a counter visit, a call or a letter
   (#/accueil, #/accueil/usager/ID; docs/web.md, docs/intake.md).

   The form posts POST /v1/requests as the API documents it: the channel,
   the category (the list of GET /open311/v2/services.json, which a signed-in
   agent gets whole), the description, and either the citizen found by the
   search (#/accueil/usager/ID: citizen_id) or what the person declares (a
   `citizen` block: it never reaches a stored file by itself, the API makes a
   proposal for an agent to check). Files are read in the page and sent as
   base64 (PDF, JPEG, PNG; the API checks their content again). The answer's
   tracking code is shown at once, with a letter's registration number.
   A refusal names the field in French, never in the API's words. */
"use strict";
(function () {
  const C = window.civibusConsole;
  const T = C.T, $ = C.$;
  const MAX_FICHIERS = 5, MAX_OCTETS = 10 * 1024 * 1024;
  let usagerId = null, categories = null, fichiers = [];

  function erreur(cle) {
    $("a-erreur").textContent = cle ? T.t(cle) : "";
  }

  async function chargerCategories() {
    if (categories) return;
    const r = await C.api("GET", "/open311/v2/services.json");
    const liste = r.ok ? await r.json() : [];
    categories = liste.map((s) => s.service_code).filter(Boolean).sort(
      (a, b) => T.libelle("categorie", a).localeCompare(T.libelle("categorie", b), "fr"));
    const sel = $("a-categorie");
    sel.replaceChildren(new Option(T.t("accueil.choisir"), ""));
    categories.forEach((c) => sel.appendChild(new Option(T.libelle("categorie", c), c)));
  }

  function canal() { return document.querySelector('input[name="canal"]:checked').value; }

  function selonCanal() {
    $("a-date-bloc").hidden = canal() !== "courrier";
  }
  document.querySelectorAll('input[name="canal"]').forEach((r) => r.addEventListener("change", selonCanal));

  function montrerUsager(nom) {
    $("a-usager-trouve").hidden = usagerId === null;
    $("a-usager-saisi").hidden = usagerId !== null;
    $("a-usager-nom").textContent = nom || "";
  }
  $("a-usager-autre").addEventListener("click", function () {
    usagerId = null;
    montrerUsager();
    history.replaceState(null, "", "#/accueil");
    $("a-nom").focus();
  });

  /* ---- files: read in the page, checked for what the person can fix ---- */
  function taille(n) {
    return n < 1024 * 1024 ? Math.max(1, Math.round(n / 1024)) + " ko" : (n / 1024 / 1024).toFixed(1).replace(".", ",") + " Mo";
  }
  function lire(f) {
    return new Promise(function (ok, ko) {
      const rd = new FileReader();
      rd.onload = () => ok(String(rd.result).replace(/^data:[^,]*,/, ""));
      rd.onerror = () => ko(rd.error);
      rd.readAsDataURL(f);
    });
  }
  $("a-fichiers").addEventListener("change", function () {
    fichiers = [...this.files];
    const ul = $("a-fichiers-liste");
    ul.replaceChildren();
    fichiers.forEach(function (f) {
      const li = document.createElement("li");
      li.textContent = f.name + " (" + taille(f.size) + ")";
      ul.appendChild(li);
    });
    erreur(fichiers.length > MAX_FICHIERS ? "accueil.trop_de_fichiers"
           : fichiers.some((f) => f.size > MAX_OCTETS || f.size === 0) ? "accueil.fichier_trop_gros" : null);
  });

  /* ---- the body, as docs/intake.md lists it ---- */
  function texte(id) { return $(id).value.trim(); }
  function sansVides(o) {
    Object.keys(o).forEach((k) => {
      if (o[k] && typeof o[k] === "object") sansVides(o[k]);
      if (o[k] === "" || o[k] === null || (typeof o[k] === "object" && !Object.keys(o[k]).length)) delete o[k];
    });
    return o;
  }
  async function corps() {
    const b = { channel: canal(), category: $("a-categorie").value, description: texte("a-description") };
    if (usagerId !== null) b.citizen_id = Number(usagerId);
    else {
      b.citizen = sansVides({
        last_name: texte("a-nom"), first_name: texte("a-prenom"), birth_date: $("a-naissance").value,
        email: texte("a-courriel"), phone: texte("a-telephone"),
        address: { line1: texte("a-adresse"), postcode: texte("a-cp"), city: texte("a-ville") }
      });
      if ($("a-piece").value) b.checked_document = $("a-piece").value;
    }
    const lieu = sansVides({ address: texte("a-lieu"), postcode: texte("a-lieu-cp"), city: texte("a-lieu-ville") });
    if (Object.keys(lieu).length) b.location = lieu;
    if (canal() === "courrier" && $("a-date").value && $("a-date").value !== aujourdhui()) {
      b.requested_at = $("a-date").value + "T12:00:00Z";
    }
    if (fichiers.length) {
      b.attachments = [];
      for (const f of fichiers) b.attachments.push({ name: f.name, content_base64: await lire(f) });
    }
    return b;
  }
  function aujourdhui() {
    return new Intl.DateTimeFormat("en-CA", { timeZone: "Europe/Paris" }).format(new Date());
  }

  /* the API names the field in English: the person is told in French */
  const CHAMPS = [["attachments", "accueil.refus_fichier"], ["description", "accueil.refus_description"],
                  ["category", "accueil.refus_categorie"], ["email", "accueil.refus_courriel"],
                  ["phone", "accueil.refus_telephone"], ["birth_date", "accueil.refus_naissance"],
                  ["requested_at", "accueil.refus_date"], ["last_name", "accueil.refus_nom"],
                  ["citizen", "accueil.refus_usager"], ["location", "accueil.refus_lieu"]];
  function refus(message) {
    for (const [champ, cle] of CHAMPS) if (message.indexOf(champ) >= 0) return cle;
    return "accueil.refus";
  }

  function verifier() {
    if (!$("a-categorie").value) return ["a-categorie", "accueil.refus_categorie"];
    if (!texte("a-description")) return ["a-description", "accueil.refus_description"];
    if (usagerId === null && !texte("a-nom")) return ["a-nom", "accueil.refus_nom"];
    if (fichiers.length > MAX_FICHIERS) return ["a-fichiers", "accueil.trop_de_fichiers"];
    if (fichiers.some((f) => f.size > MAX_OCTETS || f.size === 0)) return ["a-fichiers", "accueil.fichier_trop_gros"];
    return null;
  }

  let envoi = false;
  $("form-accueil").addEventListener("submit", async function (ev) {
    ev.preventDefault();
    if (envoi) return;                       /* a double click registers once */
    const manque = verifier();
    if (manque) { erreur(manque[1]); $(manque[0]).focus(); return; }
    erreur(null);
    envoi = true;
    $("a-enregistrer").disabled = true;
    try {
      const r = await C.api("POST", "/v1/requests", await corps());
      const d = await r.json().catch(() => ({}));
      if (r.status === 201) return resultat(d);
      erreur(r.status === 400 ? refus((d.error && d.error.message) || "")
             : r.status === 409 ? "accueil.refus_usager_inconnu"
             : r.status === 413 ? "accueil.fichier_trop_gros"
             : r.status === 403 ? "accueil.refus_droits" : "console.panne");
      $("a-erreur").focus();
    } catch (e) {
      if (String(e.message) !== "401") erreur("console.panne");
    } finally {
      envoi = false;
      $("a-enregistrer").disabled = false;
    }
  });

  function info(dl, cle, valeur, classe) {
    const dt = document.createElement("dt"), dd = document.createElement("dd");
    dt.textContent = T.t(cle);
    dd.textContent = valeur;
    if (classe) dd.className = classe;
    dl.append(dt, dd);
  }
  function resultat(d) {
    const dl = $("a-resultat-infos");
    dl.replaceChildren();
    info(dl, "accueil.code", d.tracking_code, "code");
    if (d.registration_number) info(dl, "accueil.numero_courrier", d.registration_number);
    info(dl, "suivi.service", T.libelle("service", d.service) || "—");
    if (d.attachments && d.attachments.length) info(dl, "accueil.fichiers_recus", String(d.attachments.length));
    $("form-accueil").hidden = true;
    $("a-resultat").hidden = false;
    $("a-resultat").focus();
  }

  function vider() {
    $("form-accueil").reset();
    fichiers = [];
    $("a-fichiers-liste").replaceChildren();
    erreur(null);
    selonCanal();
    $("form-accueil").hidden = false;
    $("a-resultat").hidden = true;
  }
  $("a-nouvelle").addEventListener("click", function () {
    vider();
    usagerId = null;
    montrerUsager();
    history.replaceState(null, "", "#/accueil");
    document.querySelector('input[name="canal"]:checked').focus();
  });

  C.vue("accueil", /^#\/accueil(?:\/usager\/(\d{1,18}))?$/, async function (m) {
    vider();
    $("a-date").value = aujourdhui();
    $("a-date").max = aujourdhui();
    usagerId = m[1] || null;
    montrerUsager(usagerId ? (await C.nomUsager(usagerId)) || T.t("console.sans_nom") : "");
    await chargerCategories();
  });
})();
