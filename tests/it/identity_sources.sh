#!/usr/bin/env bash
# A source's `identity:` in civibus.yaml (hub/identity/cv_idsources.c, docs/identity.md):
#   - `identity: declared` puts the source at level 1 in identity_sources at the hub's start,
#     before any event: a record of it giving a stored citizen's e-mail (the careless or
#     malicious sender) gets a citizen of its own and a proposal, never that citizen's file;
#   - the same e-mail from a back-office software (no key) links, as before;
#   - `identity: software` removes the row at the next start; `identity: certified` is 4;
#   - a bad value stops the hub with file:line.
. "$(dirname "$0")/lib.sh"
M=$(mktemp -d "${CIVIBUS_TEST_TMP:-/tmp}/it-idsrc-maps.XXXXXX")
at_exit "rm -rf '$M'"
for s in logiciel formulaire autre; do sed "s/^source: demo$/source: $s/" "$ROOT/deploy/mappings/demo.yaml" >"$M/$s.yaml"; done
it_setup identity_sources "logiciel:$M/logiciel.yaml" "formulaire:$M/formulaire.yaml" "autre:$M/autre.yaml"
sed -i '/- name: formulaire/a\    identity: declared' "$W/hub.yaml"
at_exit 'hub_stop'
hub_start
[ "$(q "select certainty from identity_sources where source = 'formulaire'")" = 1 ] \
    || fail "formulaire not at level 1: $(q "select * from identity_sources")"
[ -z "$(q "select certainty from identity_sources where source in ('logiciel', 'autre')")" ] || fail "other sources listed"
grep -q "identity: 1 sources' levels set from the configuration" "$W/hub.log" || fail "the start-up does not say it"
ok "identity: declared puts the source at level 1 at the hub's start"

rec() {  # id citizen-id email
    printf '{"id": "%s", "version": 1, "type": "bac_casse", "statut": "EN_COURS", "canal": "WEB", "date": "02/03/2024 09:01", "objet": "Demande %s", "usager": {"id": "%s", "nom": "MARTIN", "prenom": "Jeanne", "naissance": "12/05/1971", "email": "%s"}}\n' "$1" "$1" "$2" "$3"
}
rec L-1 U-1 jeanne.martin@exemple.fr >"$W/logiciel.jsonl"
replay logiciel "$W/logiciel.jsonl" --timeout 30
[ "$REPLAY_RC" = 0 ] || fail "replay logiciel: $REPLAY_RC"
VICTIM=$(q "select citizen_id from citizen_sources where source = 'logiciel'")
[ -n "$VICTIM" ] || fail "no citizen from the software"
# the same address typed into a form by someone else; and by a second software
rec F-1 FORM-1 Jeanne.Martin@exemple.fr >"$W/form.jsonl"
replay formulaire "$W/form.jsonl" --timeout 30
[ "$REPLAY_RC" = 0 ] || fail "replay formulaire: $REPLAY_RC"
rec A-1 AUTRE-1 jeanne.martin@exemple.fr >"$W/autre.jsonl"
replay autre "$W/autre.jsonl" --timeout 30
FORM=$(q "select citizen_id from citizen_sources where source = 'formulaire'")
[ -n "$FORM" ] && [ "$FORM" != "$VICTIM" ] || fail "the form's record reached the stored citizen ($FORM, $VICTIM)"
[ "$(q "select count(*) from merge_proposals where status = 'open' and $VICTIM in (citizen_a, citizen_b) and $FORM in (citizen_a, citizen_b)")" = 1 ] \
    || fail "no open proposal between the two: $(q "select * from merge_proposals")"
[ "$(q "select citizen_id from citizen_sources where source = 'autre'")" = "$VICTIM" ] \
    || fail "a software's record with the same e-mail did not link as before"
[ "$(q "select count(*) from events where source = 'formulaire' and citizen_id = $VICTIM")" = 0 ] || fail "an event of the form on the victim"
ok "a declared source's record with a stored citizen's e-mail: a citizen of its own and a proposal; a software's links"

hub_stop
sed -i 's/^    identity: declared$/    identity: software/' "$W/hub.yaml"
sed -i '/- name: autre/a\    identity: certified' "$W/hub.yaml"
mv "$W/hub.log" "$W/hub-1.log"      # hub_start waits for this start's own "listening" line
hub_start
[ -z "$(q "select certainty from identity_sources where source = 'formulaire'")" ] || fail "software did not remove the row: $(q "select * from identity_sources")"
[ "$(q "select certainty from identity_sources where source = 'autre'")" = 4 ] || fail "certified is not level 4"
[ "$(q "select certainty from citizen_sources where source = 'formulaire'")" = 1 ] || fail "the pair's level changed afterwards"
ok "identity: software removes the row, certified is level 4; a pair keeps the level it was made with"

hub_stop
sed -i 's/^    identity: certified$/    identity: peut-être/' "$W/hub.yaml"
line=$(grep -n "identity: peut-être" "$W/hub.yaml" | cut -d: -f1)
out=$("$HUB" --config "$W/hub.yaml" --check-config 2>&1); rc=$?
[ $rc = 2 ] && echo "$out" | grep -q "hub.yaml:$line:.*'identity' of source 'autre': declared, software or certified" \
    || fail "a bad identity value: rc $rc, $out"
ok "a bad identity value stops the hub with file:line ($out)"
