/*  test_mapping — the mapping language, end to end: load errors with
    file:line, every field spec and modifier, per-kind rules and fallback,
    default event ids, French text, dates and time zones, and the rule that
    a failure's detail names the field path, never the value.
    Fixtures: tests/unit/data/mapping_*.yaml (runs from the repository root);
    short error cases are written to temporary files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cv_test.h"
#include <jansson.h>

#include "cv_hash.h"
#include "map/cv_mapping.h"
#include "map/cv_model.h"

#define DATA "tests/unit/data/"
#define SECRET "SECRET-4242-jean.dupont@example.fr"

/* ---- helpers ------------------------------------------------------------- */

static cv_mapping_t *s_load_ok(const char *path, const char *source)
{
    char err[512];
    cv_mapping_t *m = cv_mapping_load(path, source, err, sizeof err);
    if (!m)
        fail_msg("%s", err);
    return m;
}

/* Loading fails with "<path>:<line>: ...<want>...". */
static void s_load_fails(const char *path, const char *source, int line, const char *want)
{
    char err[512] = "", prefix[300];
    cv_mapping_t *m = cv_mapping_load(path, source, err, sizeof err);
    if (m) {
        cv_mapping_destroy(&m);
        fail_msg("%s loaded; expected line %d: %s", path, line, want);
    }
    snprintf(prefix, sizeof prefix, "%s:%d: ", path, line);
    if (strncmp(err, prefix, strlen(prefix)) != 0 || !strstr(err, want))
        fail_msg("error '%s' is not '%s...%s'", err, prefix, want);
}

static char *s_tmp_yaml(const char *text)
{
    const char *dir = getenv("CIVIBUS_TEST_TMP") ? getenv("CIVIBUS_TEST_TMP") : "/tmp";
    char *path = malloc(strlen(dir) + 40);
    sprintf(path, "%s/mapping-XXXXXX.yaml", dir);
    int fd = mkstemps(path, 5);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t) strlen(text));
    close(fd);
    return path;
}

static json_t *s_json(const char *text)
{
    json_error_t je;
    json_t *v = json_loads(text, 0, &je);
    if (!v)
        fail_msg("test JSON line %d: %s", je.line, je.text);
    return v;
}

/* Maps a record given as JSON text; returns the event (owned) or NULL
   with reason and detail filled. */
static json_t *s_map(const cv_mapping_t *m, const char *record, char reason[64], char detail[256])
{
    json_t *rec = s_json(record), *event = NULL;
    int rc = cv_mapping_apply(m, rec, &event, reason, 64, detail, 256);
    json_decref(rec);
    assert_true(rc == 0 ? event != NULL : event == NULL);
    return event;
}

static json_t *s_map_ok(const cv_mapping_t *m, const char *record)
{
    char reason[64], detail[256];
    json_t *event = s_map(m, record, reason, detail);
    if (!event)
        fail_msg("mapping failed: %s: %s", reason, detail);
    char d[256];
    assert_int_equal(cv_model_validate(event, d, sizeof d), 0);
    return event;
}

/* Mapping fails with `reason`; detail names `names` and never `value`. */
static void s_map_fails(const cv_mapping_t *m, const char *record, const char *reason_want,
                        const char *names, const char *value)
{
    char reason[64] = "", detail[256] = "";
    json_t *event = s_map(m, record, reason, detail);
    if (event) {
        json_decref(event);
        fail_msg("record mapped; expected %s", reason_want);
    }
    assert_string_equal(reason, reason_want);
    if (!strstr(detail, names))
        fail_msg("detail '%s' does not name '%s'", detail, names);
    if (value && strstr(detail, value))
        fail_msg("detail '%s' contains the value '%s'", detail, value);
}

static const char *s_str(const json_t *event, const char *path)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    const json_t *v = event;
    for (char *seg = strtok(buf, "."); seg; seg = strtok(NULL, "."))
        v = json_object_get(v, seg);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

#define FIELD_IS(event, path, want) do {                                        \
        const char *got_ = s_str(event, path);                                  \
        if (!got_ || strcmp(got_, want) != 0)                                   \
            fail_msg("%s is '%s', expected '%s'", path, got_ ? got_ : "(null)", want); \
    } while (0)

#define FIELD_NULL(event, path) do {                                            \
        const char *got_ = s_str(event, path);                                  \
        if (got_)                                                               \
            fail_msg("%s is '%s', expected null", path, got_);                  \
    } while (0)

/* ---- loading ------------------------------------------------------------- */

static void test_load_error_fixtures(void **state)
{
    s_load_fails(DATA "mapping_err_unknown_key.yaml", "bad", 8, "unknown key 'mapp' in field 'status'");
    s_load_fails(DATA "mapping_err_status_target.yaml", "bad", 12, "'done' is not a canonical status");
    s_load_fails(DATA "mapping_err_missing_spec.yaml", "bad", 5, "rule 'k' has no field 'status'");
    s_load_fails(DATA "mapping_err_zone.yaml", "bad", 3, "unknown time zone 'Europe/Nowhere'");
    s_load_fails(DATA "mapping_err_yaml.yaml", "bad", 7, "YAML syntax");
    s_load_fails(DATA "mapping_err_format.yaml", "bad", 9, "'%j' is not supported");
    s_load_fails(DATA "mapping_err_when.yaml", "bad", 13, "'when' value 'X' already selects rule 'a' (line 6)");
    s_load_fails(DATA "mapping_err_channel.yaml", "bad", 9, "'fax' is not a canonical channel");
    s_load_fails(DATA "mapping_err_two_sources.yaml", "bad", 6, "exactly one of path, const, join, hash");
    s_load_fails(DATA "mapping_urbanisme.yaml", "etat_civil", 3, "does not match");
    char err[256];
    assert_null(cv_mapping_load(DATA "mapping_does_not_exist.yaml", "x", err, sizeof err));
    assert_non_null(strstr(err, "mapping_does_not_exist.yaml"));
}

#define RULE_HEAD "mapping_version: 1\nsource: t\n"
#define BASIC_FIELDS "      source_record_id: {path: id}\n      service: {const: s}\n" \
                     "      status: {const: received}\n      occurred_at: {path: date}\n"

static void test_load_error_cases(void **state)
{
    static const struct { const char *yaml; int line; const char *want; } cases[] = {
        { "mapping_version: 2\nsource: t\nrules: []\n", 1, "mapping_version 2 is not supported" },
        { RULE_HEAD "color: blue\n", 3, "unknown key 'color' in the mapping file" },
        { RULE_HEAD "rules:\n  - kind: correction\n    fields:\n" BASIC_FIELDS, 4, "kind 'correction' is reserved" },
        { RULE_HEAD "rules:\n  - kind: k\n    fields:\n" BASIC_FIELDS "      outcome.code: {const: fini}\n",
          10, "'fini' is not a canonical outcome" },
        { RULE_HEAD "rules:\n  - kind: k\n    when: [A]\n    fields:\n" BASIC_FIELDS, 5, "'when' needs 'kind_from'" },
        { RULE_HEAD "kind_from: type\nrules:\n  - kind: a\n    fields:\n" BASIC_FIELDS
          "  - kind: b\n    fields:\n" BASIC_FIELDS, 11, "only one fallback rule" },
        { RULE_HEAD "rules:\n  - kind: a\n    fields:\n" BASIC_FIELDS "  - kind: b\n    fields:\n" BASIC_FIELDS,
          4, "several rules need 'kind_from'" },
        { RULE_HEAD "rules:\n  - kind: k\n    fields:\n" BASIC_FIELDS "      summary: {path: x, format: \"%d\"}\n",
          10, "'format' only applies to date fields" },
        { RULE_HEAD "rules:\n  - kind: k\n    fields:\n" BASIC_FIELDS
          "      citizen.birth_date: {path: n, timezone: Europe/Paris}\n", 10, "'timezone' only applies to date-times" },
        { RULE_HEAD "rules:\n  - kind: k\n    fields:\n" BASIC_FIELDS "      due_at: {path: x, timezone: Mars/Olympus}\n",
          10, "unknown time zone 'Mars/Olympus'" },
        { RULE_HEAD "rules:\n  - kind: k\n    fields:\n" BASIC_FIELDS "      due_at: {path: x, default: \"2024-01-01\"}\n",
          10, "'default' does not apply to the date field 'due_at'" },
        { RULE_HEAD "rules:\n  - kind: k\n    fields:\n" BASIC_FIELDS "      summary: {path: x, case: title}\n",
          10, "'case' of field 'summary' must be upper or lower" },
        { RULE_HEAD "rules:\n  - kind: k\n    fields:\n" BASIC_FIELDS "      event_id: {hash: fields}\n",
          10, "'hash' of field 'event_id' must be 'record'" },
        { RULE_HEAD "rules:\n  - kind: k\n    fields:\n" BASIC_FIELDS "      summary: {path: a..b}\n",
          10, "path 'a..b' has an empty segment" },
        { RULE_HEAD "rules:\n  - kind: k\n    fields:\n" BASIC_FIELDS "      citizen.nir: {path: nir}\n",
          10, "unknown field 'citizen.nir' in rule 'k'" },
        { RULE_HEAD "rules:\n  - kind: k\n    fields:\n" BASIC_FIELDS "      source_status: {path: x}\n",
          10, "'source_status' is filled from status/channel" },
        { RULE_HEAD "rules:\n  - kind: k\n    fields:\n" BASIC_FIELDS "      summary: {path: x}\n    extra: all\n",
          11, "'extra' must be rest, none or a list of paths" },
        { RULE_HEAD "rules:\n  - kind: k\n    fields:\n" BASIC_FIELDS "      summary: {path: x, map: {}}\n",
          10, "is empty" },
        { RULE_HEAD "rules:\n  - kind: k\n    fields:\n" BASIC_FIELDS "      summary: {path: x, required: maybe}\n",
          10, "'required' must be true or false" },
        { RULE_HEAD "rules:\n  - kind: k\n    fields:\n" BASIC_FIELDS "      summary: x\n",
          10, "field 'summary' must be a map" },
        { RULE_HEAD "rules:\n  - kind: k\n    fields:\n      source_record_id: {path: id}\n"
          "      service: {const: s}\n      status: {const: finished}\n      occurred_at: {path: date}\n",
          8, "'finished' is not a canonical status" },
        { RULE_HEAD "rules: []\n", 3, "'rules' is empty" },
        { RULE_HEAD "kind_from: type\nrules:\n  - kind: a\n    when: []\n    fields:\n" BASIC_FIELDS,
          6, "'when' must be a value or a non-empty list" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *path = s_tmp_yaml(cases[i].yaml);
        s_load_fails(path, "t", cases[i].line, cases[i].want);
        unlink(path);
        free(path);
    }
    /* the file's own source name, when the hub config gives none */
    char *path = s_tmp_yaml("mapping_version: 1\nsource: Bad Name\nrules: []\n");
    s_load_fails(path, NULL, 2, "source name must be");
    unlink(path);
    free(path);
    path = s_tmp_yaml("mapping_version: 1\nrules: []\n");
    s_load_fails(path, NULL, 1, "missing 'source'");
    unlink(path);
    free(path);
}

static void test_source_name(void **state)
{
    cv_mapping_t *m = s_load_ok(DATA "mapping_urbanisme.yaml", NULL);
    assert_string_equal(cv_mapping_source(m), "urbanisme");
    cv_mapping_destroy(&m);
    assert_null(m);
    cv_mapping_destroy(&m);
    m = s_load_ok(DATA "mapping_urbanisme.yaml", "urbanisme");
    cv_mapping_destroy(&m);
    /* a file without `source:` takes the hub config's name */
    char *path = s_tmp_yaml("mapping_version: 1\nrules:\n  - kind: k\n    fields:\n" BASIC_FIELDS);
    m = s_load_ok(path, "etat_civil");
    assert_string_equal(cv_mapping_source(m), "etat_civil");
    json_t *e = s_map_ok(m, "{\"id\": \"A\", \"date\": \"2024-01-01T10:00:00\"}");
    FIELD_IS(e, "source", "etat_civil");
    json_decref(e);
    cv_mapping_destroy(&m);
    unlink(path);
    free(path);
}

/* ---- rules --------------------------------------------------------------- */

#define PERMIS_RECORD \
    "{\"type\": \"PC\", \"etat\": \"INSTRUCTION\", \"canal\": \"GUICHET\"," \
    " \"date_etat\": \"2024-03-04T10:00:00\", \"date_limite\": \"2024-05-05\"," \
    " \"date_depot\": \"2024-02-12T14:30:00\"," \
    " \"terrain\": {\"adresse\": \"4 chemin des Vignes\", \"cp\": \"75019\", \"lat\": \"48,8839\", \"lon\": 2.3822}," \
    " \"objet\": \"Extension d'une maison individuelle\"," \
    " \"dossier\": {\"numero\": \"PC0751232400001\", \"numero_affiche\": \"PC 075 123 24 00001\"}," \
    " \"petitionnaire\": {\"id\": \"PET-4411\", \"nom\": \"DUPONT\", \"nom_naissance\": \"MARTIN\"," \
    "   \"prenom\": \"Jean-Pierre\", \"naissance\": \"12/05/1971\", \"mail\": \"jp.dupont@example.fr\"," \
    "   \"telephones\": [\"06 12 34 56 78\", \"01 00 00 00 00\"], \"adresse\": \"12 rue de l'Église\"," \
    "   \"cp\": \"75019\", \"ville\": \"Paris\"}," \
    " \"surface_plancher\": 32.5, \"instructeur\": \"SVC-URBA-3\"}"

/* The urbanisme record maps to exactly the example event of the schema
   (apart from the event id, built here from the date as the source wrote it). */
static void test_permis_gives_the_example_event(void **state)
{
    cv_mapping_t *m = s_load_ok(DATA "mapping_urbanisme.yaml", "urbanisme");
    json_t *event = s_map_ok(m, PERMIS_RECORD);
    json_error_t je;
    json_t *want = json_load_file("schemas/v2/example-event.json", 0, &je);
    assert_non_null(want);
    FIELD_IS(event, "event_id", "PC0751232400001|INSTRUCTION|2024-03-04T10:00:00");
    if (!json_equal(event, want)) {
        char *got = json_dumps(event, JSON_INDENT(2));
        fail_msg("event differs from the example:\n%s", got);
    }
    json_decref(want);
    json_decref(event);
    cv_mapping_destroy(&m);
}

static void test_rules_and_fallback(void **state)
{
    cv_mapping_t *m = s_load_ok(DATA "mapping_urbanisme.yaml", "urbanisme");
    /* DP: same rule, another category; PA: not in the category map -> default */
    json_t *e = s_map_ok(m, "{\"type\": \"DP\", \"etat\": \"DEPOT\", \"date_etat\": \"2024-03-04T10:00\","
                            " \"dossier\": {\"numero\": \"DP1\"}}");
    FIELD_IS(e, "kind", "permis");
    FIELD_IS(e, "category", "declaration_prealable");
    FIELD_IS(e, "channel", "inconnu");             /* no canal in the record, default */
    FIELD_NULL(e, "source_channel");
    FIELD_IS(e, "status", "received");
    FIELD_NULL(e, "due_at");
    assert_true(json_is_null(json_object_get(e, "citizen")));   /* no citizen value at all */
    json_decref(e);
    e = s_map_ok(m, "{\"type\": \"PA\", \"etat\": \"DEPOT\", \"date_etat\": \"2024-03-04T10:00\","
                    " \"dossier\": {\"numero\": \"PA1\"}}");
    FIELD_IS(e, "category", "autre");
    json_decref(e);

    /* CERT: its own rule (a single `when` value), extra as a list of paths */
    e = s_map_ok(m, "{\"type\": \"CERT\", \"etat\": \"CONTROLE\", \"date_etat\": \"04/03/2024 10:00\","
                    " \"dossier\": {\"numero\": \"CU1\"}, \"surface\": 12,"
                    " \"instructeur\": {\"code\": \"I-9\", \"nom\": \"Mme X\"}, \"autre\": 1}");
    FIELD_IS(e, "kind", "certificat");
    FIELD_IS(e, "category", "certificat");
    FIELD_IS(e, "status", "in_progress");          /* unmapped, default */
    FIELD_IS(e, "source_status", "CONTROLE");
    FIELD_IS(e, "channel", "inconnu");
    FIELD_IS(e, "occurred_at", "2024-03-04T09:00:00Z");
    assert_true(json_is_null(json_object_get(e, "citizen")));
    json_t *want = s_json("{\"surface\": 12, \"instructeur.code\": \"I-9\"}");
    assert_true(json_equal(json_object_get(e, "extra"), want));
    json_decref(want);
    json_decref(e);

    /* unknown type and missing type: the fallback rule, extra none, its own zone */
    static const char *others[] = {
        "{\"type\": \"ZZ\", \"date_etat\": \"04/03/2024 10:00\", \"dossier\": {\"numero\": \"X1\"}, \"k\": 1}",
        "{\"date_etat\": \"04/03/2024 10:00\", \"dossier\": {\"numero\": \"X1\"}, \"k\": 1}",
    };
    for (int i = 0; i < 2; i++) {
        e = s_map_ok(m, others[i]);
        FIELD_IS(e, "kind", "autre_dossier");
        FIELD_IS(e, "occurred_at", "2024-03-04T13:00:00Z");   /* America/Cayenne, UTC-3 */
        assert_int_equal(json_object_size(json_object_get(e, "extra")), 0);
        json_decref(e);
    }
    /* kind_from holding an object */
    s_map_fails(m, "{\"type\": {\"code\": \"" SECRET "\"}, \"dossier\": {\"numero\": \"X\"}}",
                "bad_type", "kind_from: path 'type'", SECRET);
    cv_mapping_destroy(&m);

    /* without a fallback rule, an unknown or missing kind is no_rule */
    char *path = s_tmp_yaml(RULE_HEAD "kind_from: nature.code\nrules:\n  - kind: k\n    when: [A, 7]\n"
                            "    fields:\n" BASIC_FIELDS);
    m = s_load_ok(path, "t");
    e = s_map_ok(m, "{\"id\": \"1\", \"date\": \"2024-01-01\", \"nature\": {\"code\": 7}}");  /* number */
    FIELD_IS(e, "kind", "k");
    assert_null(json_object_get(json_object_get(e, "extra"), "nature"));  /* kind_from is read */
    json_decref(e);
    s_map_fails(m, "{\"id\": \"1\", \"date\": \"2024-01-01\", \"nature\": {\"code\": \"" SECRET "\"}}",
                "no_rule", "kind_from: the value at path 'nature.code' selects no rule", SECRET);
    s_map_fails(m, "{\"id\": \"1\", \"date\": \"2024-01-01\"}", "no_rule", "path 'nature.code' is missing", NULL);
    cv_mapping_destroy(&m);
    unlink(path);
    free(path);
}

/* ---- field specs ----------------------------------------------------------- */

#define SPECS_RECORD(canal, motif, etat, extra) \
    "{\"ref\": \"  R-1 \", \"items\": [{\"code\": \"A\"}, {\"code\": 42}], \"motif\": " motif "," \
    " \"canal\": " canal ", \"etat\": " etat ", \"quand\": \"2024-07-14T10:00:00\"," \
    " \"limite\": \"20240715 120000 +0000\", \"numero\": 7, \"nom\": \"Lefèvre-Cœur ÿ\"," \
    " \"prenom\": \"ÉLOÏSE Ÿ\", \"naissance\": \"1971-05-12\", \"mail\": \"x@example.fr\"" extra "}"

static void test_field_specs(void **state)
{
    cv_mapping_t *m = s_load_ok(DATA "mapping_specs.yaml", "specs");
    const char *text = SPECS_RECORD("\"TEL\"", "\"NAISSANCE\"", "\"received\"", "");
    json_t *e = s_map_ok(m, text);
    FIELD_IS(e, "source_record_id", "R-1");                 /* trimmed */
    FIELD_IS(e, "request_ref", "42");                       /* array index, number as text */
    FIELD_IS(e, "service", "état civil");                   /* const */
    FIELD_IS(e, "category", "acte_naissance");              /* lower case, then map */
    FIELD_IS(e, "channel", "telephone");
    FIELD_IS(e, "source_channel", "TEL");                   /* before case and map */
    FIELD_IS(e, "status", "received");                      /* canonical already: no map needed */
    FIELD_IS(e, "source_status", "received");
    FIELD_IS(e, "occurred_at", "2024-07-14T08:00:00Z");     /* ISO, Paris summer time */
    FIELD_IS(e, "due_at", "2024-07-15T12:00:00Z");          /* format with %z */
    FIELD_IS(e, "summary", "R-1|NAISSANCE|7");              /* join of trimmed parts */
    FIELD_IS(e, "citizen.family_name", "LEFÈVRE-CŒUR Ÿ");   /* upper case, French letters */
    FIELD_IS(e, "citizen.given_names", "éloïse ÿ");         /* lower case */
    FIELD_IS(e, "citizen.birth_date", "1971-05-12");
    FIELD_IS(e, "citizen.phone", "non communiqué");         /* default when missing */
    FIELD_NULL(e, "citizen.birth_name");
    assert_true(json_is_null(json_object_get(json_object_get(e, "citizen"), "address")));
    /* hash: record is the record's canonical hash */
    json_t *rec = s_json(text);
    char hash[CV_HASH_HEX_LEN + 1];
    assert_int_equal(cv_hash_json(rec, hash), 0);
    FIELD_IS(e, "event_id", hash);
    json_decref(rec);
    /* extra: rest holds only what no spec read */
    json_decref(e);
    e = s_map_ok(m, SPECS_RECORD("\"TEL\"", "\"NAISSANCE\"", "\"received\"",
                                 ", \"commentaire\": \"ok\", \"pieces\": [1, 2]"));
    json_t *want = s_json("{\"commentaire\": \"ok\", \"pieces\": [1, 2]}");
    assert_true(json_equal(json_object_get(e, "extra"), want));
    json_decref(want);
    json_decref(e);

    /* numbers and booleans at a string field are their text */
    e = s_map_ok(m, SPECS_RECORD("1", "\"mariage\"", "\"received\"", ""));
    FIELD_IS(e, "channel", "guichet");
    FIELD_IS(e, "source_channel", "1");
    FIELD_IS(e, "category", "acte_mariage");
    json_decref(e);
    e = s_map_ok(m, SPECS_RECORD("true", "\"Mariage\"", "\"received\"", ""));
    FIELD_IS(e, "channel", "web");
    json_decref(e);
    /* absent, null or blank values: channel inconnu, category autre */
    e = s_map_ok(m, SPECS_RECORD("null", "\"  \"", "\"received\"", ""));
    FIELD_IS(e, "channel", "inconnu");
    FIELD_NULL(e, "source_channel");
    FIELD_IS(e, "category", "autre");
    json_decref(e);
    cv_mapping_destroy(&m);
}

static void test_field_failures(void **state)
{
    cv_mapping_t *m = s_load_ok(DATA "mapping_specs.yaml", "specs");
    /* a value the map does not know, without default */
    s_map_fails(m, SPECS_RECORD("\"" SECRET "\"", "\"naissance\"", "\"received\"", ""),
                "unmapped_value", "channel: the value at path 'canal' has no entry in 'map'", SECRET);
    s_map_fails(m, SPECS_RECORD("\"TEL\"", "\"" SECRET "\"", "\"received\"", ""),
                "unmapped_value", "category: the value at path 'motif'", SECRET);
    /* a status that is not canonical and has no map */
    s_map_fails(m, SPECS_RECORD("\"TEL\"", "\"naissance\"", "\"" SECRET "\"", ""),
                "unmapped_value", "status: the value at path 'etat' is not a canonical status", SECRET);
    /* an object where a value is expected */
    s_map_fails(m, SPECS_RECORD("\"TEL\"", "{\"x\": \"" SECRET "\"}", "\"received\"", ""),
                "bad_type", "category: path 'motif' holds an object or a list", SECRET);
    s_map_fails(m, SPECS_RECORD("\"TEL\"", "\"naissance\"", "[\"" SECRET "\"]", ""),
                "bad_type", "status: path 'etat'", SECRET);
    /* a join part that is an object */
    s_map_fails(m, "{\"ref\": \"R\", \"motif\": \"naissance\", \"numero\": {\"n\": \"" SECRET "\"},"
                   " \"etat\": \"received\", \"quand\": \"2024-01-01\", \"mail\": \"m\"}",
                "bad_type", "summary: join part 'numero'", SECRET);
    /* required values */
    s_map_fails(m, "{\"motif\": \"naissance\", \"etat\": \"received\", \"quand\": \"2024-01-01\", \"mail\": \"m\"}",
                "missing_field", "source_record_id: path 'ref' is missing", NULL);
    s_map_fails(m, "{\"ref\": \"   \", \"etat\": \"received\", \"quand\": \"2024-01-01\", \"mail\": \"m\"}",
                "missing_field", "source_record_id: path 'ref' is missing", NULL);
    s_map_fails(m, "{\"ref\": \"R\", \"etat\": \"received\", \"quand\": \"2024-01-01\"}",
                "missing_field", "citizen.email: path 'mail' is missing", NULL);
    s_map_fails(m, "{\"ref\": \"R\", \"quand\": \"2024-01-01\", \"mail\": \"m\"}",
                "missing_field", "status: path 'etat' is missing", NULL);
    /* an optional join with a missing part is null, not a half-joined value */
    json_t *e = s_map_ok(m, "{\"ref\": \"R\", \"motif\": \"naissance\", \"etat\": \"received\","
                            " \"quand\": \"2024-01-01\", \"mail\": \"m\"}");
    FIELD_NULL(e, "summary");
    json_decref(e);
    /* dates */
    s_map_fails(m, "{\"ref\": \"R\", \"etat\": \"received\", \"quand\": \"" SECRET "\", \"mail\": \"m\"}",
                "bad_date", "occurred_at: the value at path 'quand' does not match ISO 8601 form: expected YYYY-MM-DD", SECRET);
    s_map_fails(m, "{\"ref\": \"R\", \"etat\": \"received\", \"quand\": \"2024-02-30T10:00\", \"mail\": \"m\"}",
                "bad_date", "occurred_at: the value at path 'quand' is not a real date in ISO 8601 form: day 30 does not exist in February", "2024-02-30");
    s_map_fails(m, "{\"ref\": \"R\", \"etat\": \"received\", \"quand\": \"2024-01-01\", \"mail\": \"m\","
                   " \"naissance\": \"31/12/1971\"}", "bad_date", "citizen.birth_date", "1971");
    s_map_fails(m, "{\"ref\": \"R\", \"etat\": \"received\", \"quand\": \"0024-01-01\", \"mail\": \"m\"}",
                "bad_date", "outside years 1800-2999", "0024");
    s_map_fails(m, "{\"ref\": \"R\", \"etat\": \"received\", \"quand\": \"2024-01-01\", \"mail\": \"m\","
                   " \"limite\": \"2024-01-01 10:00\"}", "bad_date", "does not match format '%Y%m%d %H%M%S %z': expected a month (%m) at character 5", "10:00");
    /* the event fails validation: the detail names the field, not the value */
    char big[300];
    memset(big, 'A', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    memcpy(big, SECRET, strlen(SECRET));
    char rec[800];
    snprintf(rec, sizeof rec, "{\"ref\": \"R\", \"etat\": \"received\", \"quand\": \"2024-01-01\","
             " \"mail\": \"m\", \"nom\": \"%s\"}", big);
    s_map_fails(m, rec, "invalid_event", "citizen.family_name", SECRET);
    /* not an object */
    s_map_fails(m, "[1, 2]", "bad_type", "not a JSON object", NULL);
    cv_mapping_destroy(&m);
}

/* ---- event ids, text, dates ---------------------------------------------- */

static void test_default_event_id(void **state)
{
    cv_mapping_t *m = s_load_ok(DATA "mapping_urbanisme.yaml", "urbanisme");
    const char *a = "{\"type\": \"CERT\", \"etat\": \"DEPOT\", \"date_etat\": \"04/03/2024 10:00\","
                    " \"dossier\": {\"numero\": \"CU7\", \"v\": [1, {\"x\": 2, \"y\": 3}]}}";
    const char *b = "{\"dossier\":{\"v\":[1,{\"y\":3,\"x\":2}],\"numero\":\"CU7\"},\"date_etat\":"
                    "\"04/03/2024 10:00\",\"etat\":\"DEPOT\",   \"type\":\"CERT\"}";
    const char *c = "{\"type\": \"CERT\", \"etat\": \"DEPOT\", \"date_etat\": \"04/03/2024 10:00\","
                    " \"dossier\": {\"numero\": \"CU7\", \"v\": [1, {\"x\": 2, \"y\": 4}]}}";
    json_t *ea = s_map_ok(m, a), *eb = s_map_ok(m, b), *ec = s_map_ok(m, c);
    const char *id = s_str(ea, "event_id");
    assert_int_equal(strlen(id), strlen("CU7|") + CV_HASH_HEX_LEN);
    assert_memory_equal(id, "CU7|", 4);
    FIELD_IS(eb, "event_id", id);                  /* same record, keys reordered */
    assert_string_not_equal(s_str(ec, "event_id"), id);
    assert_true(json_equal(ea, eb));
    /* the caller's hash is used as given */
    json_t *rec = s_json(a), *ed = NULL;
    char hash[CV_HASH_HEX_LEN + 1], reason[64], detail[256];
    assert_int_equal(cv_hash_json(rec, hash), 0);
    assert_string_equal(id + 4, hash);
    const char *fake = "0000000000000000000000000000000000000000000000000000000000000000";
    assert_int_equal(cv_mapping_apply_hashed(m, rec, fake, &ed, reason, sizeof reason, detail, sizeof detail), 0);
    assert_string_equal(s_str(ed, "event_id"), "CU7|0000000000000000000000000000000000000000000000000000000000000000");
    json_decref(ed);
    json_decref(rec);
    json_decref(ea);
    json_decref(eb);
    json_decref(ec);
    cv_mapping_destroy(&m);
}

static void test_french_text_intact(void **state)
{
    cv_mapping_t *m = s_load_ok(DATA "mapping_urbanisme.yaml", "urbanisme");
    /* accents, œ, typographic apostrophe and quotes, NBSP around (trimmed) */
    json_t *e = s_map_ok(m, "{\"type\": \"PC\", \"etat\": \"DEPOT\", \"date_etat\": \"2024-03-04T10:00\","
                            " \"objet\": \"\u00a0Cœur d’îlot — « Rénovation » à l’Haÿ-les-Roses\u202f \","
                            " \"dossier\": {\"numero\": \"PC-Œ1\"},"
                            " \"petitionnaire\": {\"nom\": \"N’DIAYE-LŒUVRE\", \"prenom\": \"Aïssatou Zoë\","
                            "   \"adresse\": \"3 bis, rue de l’Église\", \"ville\": \"L’Haÿ-les-Roses\"}}");
    FIELD_IS(e, "summary", "Cœur d’îlot — « Rénovation » à l’Haÿ-les-Roses");
    FIELD_IS(e, "source_record_id", "PC-Œ1");
    FIELD_IS(e, "citizen.family_name", "N’DIAYE-LŒUVRE");
    FIELD_IS(e, "citizen.given_names", "Aïssatou Zoë");
    FIELD_IS(e, "citizen.address.line1", "3 bis, rue de l’Église");
    FIELD_IS(e, "citizen.address.city", "L’Haÿ-les-Roses");
    json_decref(e);
    cv_mapping_destroy(&m);
}

static void test_summary_is_cut_on_a_character(void **state)
{
    cv_mapping_t *m = s_load_ok(DATA "mapping_urbanisme.yaml", "urbanisme");
    size_t n = 3000;               /* 3000 x "é" = 6000 bytes */
    char *rec = malloc(n * 2 + 300);
    strcpy(rec, "{\"type\": \"PC\", \"etat\": \"DEPOT\", \"date_etat\": \"2024-03-04T10:00\","
                " \"dossier\": {\"numero\": \"P\"}, \"objet\": \"a");
    char *at = rec + strlen(rec);
    for (size_t i = 0; i < n; i++, at += 2)
        memcpy(at, "\xc3\xa9", 2);
    strcpy(at, "\"}");
    json_t *e = s_map_ok(m, rec);
    const char *s = s_str(e, "summary");
    assert_int_equal(strlen(s), CV_MODEL_SUMMARY_MAX - 1);   /* "a" + 1999 x "é" */
    assert_int_equal((unsigned char) s[strlen(s) - 1], 0xa9);
    json_decref(e);
    free(rec);
    cv_mapping_destroy(&m);
}

static void test_dates_and_zones(void **state)
{
    char *path = s_tmp_yaml(RULE_HEAD "rules:\n  - kind: k\n    fields:\n"
                            "      source_record_id: {path: id}\n      service: {const: s}\n"
                            "      status: {const: received}\n"
                            "      occurred_at: {path: date, format: \"%d/%m/%Y %H:%M\"}\n"
                            "      due_at: {join: [jour, heure], format: \"%d/%m/%Y|%Hh%M\", timezone: Indian/Reunion}\n"
                            "      citizen.birth_date: {path: naissance, format: \"%d/%m/%Y\"}\n");
    cv_mapping_t *m = s_load_ok(path, "t");
    static const struct { const char *local, *utc; } cases[] = {
        { "15/01/2024 10:00", "2024-01-15T09:00:00Z" },     /* winter, +01:00 */
        { "01/07/2024 10:00", "2024-07-01T08:00:00Z" },     /* summer, +02:00 */
        { "27/10/2024 02:30", "2024-10-27T00:30:00Z" },     /* repeated hour: first occurrence */
        { "27/10/2024 03:00", "2024-10-27T02:00:00Z" },
        { "31/03/2024 02:30", "2024-03-31T01:30:00Z" },     /* gap: offset before the jump */
        { "31/03/2024 03:00", "2024-03-31T01:00:00Z" },
        { "29/02/2024 23:59", "2024-02-29T22:59:00Z" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char rec[200];
        snprintf(rec, sizeof rec, "{\"id\": \"1\", \"date\": \"%s\", \"jour\": \"01/07/2024\","
                 " \"heure\": \"10h00\", \"naissance\": \"29/02/1972\"}", cases[i].local);
        json_t *e = s_map_ok(m, rec);
        FIELD_IS(e, "occurred_at", cases[i].utc);
        FIELD_IS(e, "due_at", "2024-07-01T06:00:00Z");       /* Réunion, +04:00 */
        FIELD_IS(e, "citizen.birth_date", "1972-02-29");     /* no zone conversion */
        json_decref(e);
    }
    static const char *bad[] = { "31/02/2024 10:00", "29/02/2023 10:00", "garbage", "2024-03-04T10:00",
                                 "04/03/2024 10:61", "04/03/2024", NULL };
    for (int i = 0; bad[i]; i++) {
        char rec[200];
        snprintf(rec, sizeof rec, "{\"id\": \"1\", \"date\": \"%s\"}", bad[i]);
        s_map_fails(m, rec, "bad_date", "occurred_at: the value at path 'date'", bad[i]);
    }
    s_map_fails(m, "{\"id\": \"1\", \"date\": \"04/03/2024 10:00\", \"naissance\": \"30/02/1972\"}",
                "bad_date", "citizen.birth_date", "1972");
    s_map_fails(m, "{\"id\": \"1\", \"date\": \"04/03/2024 10:00\", \"jour\": \"01/07/2024\", \"heure\": \"25h00\"}",
                "bad_date", "due_at: the value at join starting at 'jour'", "25h00");
    cv_mapping_destroy(&m);
    unlink(path);
    free(path);
}

static void test_demo_mapping(void **state)
{
    cv_mapping_t *m = s_load_ok("deploy/mappings/demo.yaml", "demo");
    json_t *e = s_map_ok(m, "{\"id\":\"D-1\",\"version\":3,\"type\":\"encombrants\",\"statut\":\"EN_COURS\","
                            "\"canal\":\"TEL\",\"date\":\"04/03/2024 10:15\",\"echeance\":\"10/03/2024\","
                            "\"objet\":\"Enlèvement d’un canapé\",\"usager\":{\"id\":\"U-77\",\"nom\":\"DUPONT\","
                            "\"prenom\":\"Jean-Pierre\",\"naissance\":\"12/05/1971\",\"email\":\"JP@Example.fr\","
                            "\"tel\":\"06 12 34 56 78\",\"adresse\":\"12 rue de l'Église\",\"cp\":\"75019\","
                            "\"ville\":\"Paris\"}}");
    FIELD_IS(e, "source", "demo");
    FIELD_IS(e, "event_id", "D-1|3");
    FIELD_IS(e, "source_record_id", "D-1");
    FIELD_IS(e, "service", "dechets");
    FIELD_IS(e, "category", "encombrants");
    FIELD_IS(e, "channel", "telephone");
    FIELD_IS(e, "status", "in_progress");
    FIELD_IS(e, "source_status", "EN_COURS");
    FIELD_IS(e, "occurred_at", "2024-03-04T09:15:00Z");
    FIELD_IS(e, "due_at", "2024-03-09T23:00:00Z");
    FIELD_IS(e, "summary", "Enlèvement d’un canapé");
    FIELD_IS(e, "citizen.source_citizen_id", "U-77");
    FIELD_IS(e, "citizen.birth_date", "1971-05-12");
    FIELD_IS(e, "citizen.email", "jp@example.fr");
    FIELD_IS(e, "citizen.address.line1", "12 rue de l'Église");
    FIELD_IS(e, "citizen.address.country", "FR");
    assert_int_equal(json_object_size(json_object_get(e, "extra")), 0);
    json_decref(e);
    /* another version of the same record is another event */
    e = s_map_ok(m, "{\"id\":\"D-1\",\"version\":4,\"type\":\"bac_casse\",\"statut\":\"TRAITE\","
                    "\"canal\":\"MAIL\",\"date\":\"05/03/2024 10:15\",\"usager\":{\"id\":\"U-77\"}}");
    FIELD_IS(e, "event_id", "D-1|4");
    FIELD_IS(e, "status", "resolved");
    FIELD_IS(e, "channel", "email");
    FIELD_IS(e, "citizen.source_citizen_id", "U-77");
    FIELD_NULL(e, "citizen.family_name");
    assert_true(json_is_null(json_object_get(json_object_get(e, "citizen"), "address")));
    json_decref(e);
    s_map_fails(m, "{\"id\":\"D-1\",\"version\":4,\"type\":\"bac_casse\",\"statut\":\"PERDU\","
                   "\"date\":\"05/03/2024 10:15\"}", "unmapped_value", "status: the value at path 'statut'", "PERDU");
    cv_mapping_destroy(&m);
}

int main(int argc, char **argv)
{
    cv_test_begin(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_error_fixtures),
        cmocka_unit_test(test_load_error_cases),
        cmocka_unit_test(test_source_name),
        cmocka_unit_test(test_permis_gives_the_example_event),
        cmocka_unit_test(test_rules_and_fallback),
        cmocka_unit_test(test_field_specs),
        cmocka_unit_test(test_field_failures),
        cmocka_unit_test(test_default_event_id),
        cmocka_unit_test(test_french_text_intact),
        cmocka_unit_test(test_summary_is_cut_on_a_character),
        cmocka_unit_test(test_dates_and_zones),
        cmocka_unit_test(test_demo_mapping),
    };
    return cv_test_end(cv_test_group(tests, NULL, NULL));
}
