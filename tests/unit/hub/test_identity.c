/*  test_identity — identity resolution (schemas/sql/004_identity.sql)
    through hub/store/cv_store.c, against a real PostgreSQL.

    Like test_store: the server comes from the PG* variables (tests/run.sh
    starts a throwaway cluster); the group creates civibus_test_identity_<pid>
    and drops it at the end; each test uses its own source names and people.
    Run from the repository root (migrations are read from schemas/sql).

    Events are canonical events written with cv_store_write_batch, the
    hub's own write path; the checks read the tables back. */
#include "store/cv_store.h"

#include "cv_hash.h"

#include <libpq-fe.h>
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

#include "pg_fixture.h"



/* ---- batches ------------------------------------------------------------- */

#define MAX_ITEMS 32

typedef struct {
    cv_store_item_t items[MAX_ITEMS];
    json_t *events[MAX_ITEMS], *records[MAX_ITEMS];
    char *raws[MAX_ITEMS];
    size_t n;
} tbatch_t;

static void s_batch_free(tbatch_t *b)
{
    for (size_t i = 0; i < b->n; i++) {
        json_decref(b->events[i]);
        json_decref(b->records[i]);
        free(b->raws[i]);
    }
    memset(b, 0, sizeof *b);
}

/* Adds an event of record `record` naming citizen block `citizen` (JSON
   text, or NULL); the event id is record/status. */
static void s_add(tbatch_t *b, const char *source, const char *record, const char *status,
                  const char *at, const char *citizen)
{
    assert_true(b->n < MAX_ITEMS);
    char event_id[96];
    snprintf(event_id, sizeof event_id, "%s-%s", record, status);
    json_t *e = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:n}",
                          "schema_version", 1, "source", source, "event_id", event_id,
                          "kind", "demande", "source_record_id", record, "service", "etat_civil",
                          "category", "acte", "channel", "web", "status", status,
                          "occurred_at", at, "due_at");
    assert_non_null(e);
    if (citizen) {
        json_error_t jerr;
        json_t *c = json_loads(citizen, 0, &jerr);
        assert_non_null(c);
        json_object_set_new(e, "citizen", c);
    }
    size_t i = b->n++;
    cv_store_item_t *it = &b->items[i];
    memset(it, 0, sizeof *it);
    b->events[i] = e;
    b->records[i] = json_deep_copy(e);
    b->raws[i] = json_dumps(b->records[i], JSON_COMPACT | JSON_SORT_KEYS);
    it->kind = CV_ITEM_EVENT;
    snprintf(it->source, sizeof it->source, "%s", source);
    it->event = e;
    it->record = b->records[i];
    it->raw = b->raws[i];
    it->raw_len = strlen(b->raws[i]);
    assert_int_equal(cv_hash_json(b->records[i], it->content_hash), 0);
}

/* Writes the batch in one transaction, with the identity limits max_shared
   and max_absorb (0: the SQL defaults); every event must be stored. */
static void s_write_limits(tbatch_t *b, int max_shared, int max_absorb)
{
    char err[512] = "";
    cv_store_t *store = cv_store_new(pgf_conninfo, PGF_SQL_DIR, err, sizeof err);
    if (!store)
        print_error("cv_store_new: %s\n", err);
    assert_non_null(store);
    if (max_shared)
        assert_int_equal(cv_store_set_identity_limits(store, max_shared, max_absorb), 0);
    int rc = cv_store_write_batch(store, b->items, b->n);
    if (rc != 0)
        print_error("write_batch: %s\n", cv_store_error(store));
    assert_int_equal(rc, 0);
    for (size_t i = 0; i < b->n; i++)
        assert_int_equal(b->items[i].outcome, CV_OUT_STORED);
    cv_store_destroy(&store);
    s_batch_free(b);
}

static void s_write(tbatch_t *b)
{
    s_write_limits(b, 0, 0);
}

/* The citizen a source's citizen id is linked to (-1 if none). */
static long long s_citizen(const char *source, const char *key)
{
    return pgf_number("SELECT citizen_id FROM citizen_sources WHERE source = $1 "
                    "AND source_citizen_id = $2", source, key);
}

static int s_group_setup(void **state)
{
    if (pgf_setup("identity") < 0)
        return -1;
    char err[512] = "";                     /* apply the migrations once */
    cv_store_t *store = cv_store_new(pgf_conninfo, PGF_SQL_DIR, err, sizeof err);
    if (!store) {
        fprintf(stderr, "test_identity: cv_store_new: %s\n", err);
        return -1;
    }
    cv_store_destroy(&store);
    return 0;
}

static int s_group_teardown(void **state)
{
    return pgf_teardown();
}

/* ---- tests ---------------------------------------------------------------- */

static void test_normalisation(void **state)
{
    static const char *phones[] = { "06 12 34 56 78", "0612345678", "06.12.34.56.78",
                                    "+33 6 12 34 56 78", "+33 (0)6 12 34 56 78",
                                    "0033 6 12 34 56 78", "06-12-34-56-78" };
    for (size_t i = 0; i < sizeof phones / sizeof *phones; i++)
        pgf_expect("+33612345678", "SELECT cv_norm_phone($1)", phones[i], NULL);
    pgf_expect("+4915123456789", "SELECT cv_norm_phone($1)", "0049 151 2345 6789", NULL);
    pgf_expect(NULL, "SELECT cv_norm_phone($1)", "12 34", NULL);
    pgf_expect(NULL, "SELECT cv_norm_phone($1)", "inconnu", NULL);

    pgf_expect("jp.dupont@example.fr", "SELECT cv_norm_email($1)", "  JP.Dupont@Example.FR ", NULL);
    pgf_expect(NULL, "SELECT cv_norm_email($1)", "pas un courriel", NULL);

    pgf_expect("fontaine jean", "SELECT cv_norm_name($1)", "de La Fontaine  Jean", NULL);
    pgf_expect("arc", "SELECT cv_norm_name($1)", "d'Arc", NULL);
    pgf_expect("lefevre", "SELECT cv_norm_name($1)", "LEFÈVRE", NULL);
    pgf_expect("jean pierre", "SELECT cv_given_key($1)", "Jean-Pierre", NULL);
    pgf_expect("jean pierre", "SELECT cv_given_key($1)", "Pierre JEAN", NULL);
    pgf_expect("helene marie", "SELECT cv_given_key($1)", "Marie-Hélène", NULL);
    pgf_expect("{dupont,martin}", "SELECT cv_family_keys($1, NULL)::text", "DUPONT née MARTIN", NULL);
    pgf_expect("{dupont,martin}", "SELECT cv_family_keys($1, NULL)::text", "Martin épouse Dupont", NULL);
    pgf_expect("{dupont,martin}", "SELECT cv_family_keys('Dupont', $1)::text", "Martin", NULL);
    pgf_expect("{saintexupery}", "SELECT cv_family_keys($1, NULL)::text", "de Saint-Exupéry", NULL);
    pgf_expect("12 rue des lilas|75019",
             "SELECT cv_address_key($1::jsonb)", "{\"line1\": \"12, r. des Lilas\", \"postcode\": \"75 019\"}",
             NULL);
    /* an identity block gives every identifier it can */
    pgf_expect("email=a@b.fr,name_address=dupont|jean pierre|3 avenue foch|75016,"
             "name_birth=dupont|jean pierre|1971-05-12,phone=+33612345678",
             "SELECT string_agg(kind || '=' || value, ',' ORDER BY kind) FROM cv_identifiers($1::jsonb)",
             "{\"family_name\": \"DUPONT\", \"given_names\": \"Jean Pierre\", \"birth_date\": \"1971-05-12\","
             " \"email\": \"A@B.fr\", \"phone\": \"06 12 34 56 78\","
             " \"address\": {\"line1\": \"3 av Foch\", \"postcode\": \"75016\"}}", NULL);
}

#define DUPONT_EC "{\"source_citizen_id\": \"EC-1\", \"family_name\": \"DUPONT\", " \
    "\"given_names\": \"Jean-Pierre\", \"birth_date\": \"1971-05-12\", " \
    "\"email\": \"jp.dupont@example.fr\", \"phone\": \"06 12 34 56 78\"}"
#define DUPONT_URBA "{\"source_citizen_id\": \"U-77\", \"family_name\": \"Dupont\", " \
    "\"given_names\": \"Jean Pierre\", \"birth_date\": \"1971-05-12\", " \
    "\"phone\": \"+33 6 12 34 56 78\", \"email\": \"jean-pierre.dupont@mairie.example\"}"
#define DUPONT_DECH "{\"source_citizen_id\": \"D-3\", \"family_name\": \"DUPONT\", " \
    "\"given_names\": \"J-P\", \"email\": \"jp.dupont@example.fr\", \"phone\": \"0612345678\"}"

static void test_three_spellings_one_citizen(void **state)
{
    tbatch_t b = { 0 };
    s_add(&b, "i_ec", "EC-R1", "received", "2024-03-04T09:00:00Z", DUPONT_EC);
    s_write(&b);
    s_add(&b, "i_urba", "PC-1", "received", "2024-03-05T09:00:00Z", DUPONT_URBA);
    s_write(&b);
    s_add(&b, "i_dech", "DE-9", "received", "2024-03-06T09:00:00Z", DUPONT_DECH);
    s_add(&b, "i_dech", "DE-9", "in_progress", "2024-03-06T10:00:00Z", DUPONT_DECH);
    s_write(&b);

    long long c = s_citizen("i_ec", "EC-1");
    assert_true(c > 0);
    assert_int_equal(s_citizen("i_urba", "U-77"), c);
    assert_int_equal(s_citizen("i_dech", "D-3"), c);
    /* each link says why: the first created it, then phone (0.9, before
       name + birth date at the same confidence), then e-mail (0.95) */
    pgf_expect("i_dech:email:0.95,i_ec:new:1,i_urba:phone:0.9",
             "SELECT string_agg(source || ':' || rule || ':' || confidence, ',' ORDER BY source) "
             "FROM citizen_sources WHERE source LIKE 'i\\_%'", NULL, NULL);
    /* one timeline: every event and request of the three softwares */
    char cid[24];
    snprintf(cid, sizeof cid, "%lld", c);
    assert_int_equal(pgf_number("SELECT count(DISTINCT citizen_id) FROM events WHERE source LIKE 'i\\_%'",
                              NULL, NULL), 1);
    assert_int_equal(pgf_number("SELECT count(*) FROM events WHERE citizen_id = $1::bigint", cid, NULL), 4);
    assert_int_equal(pgf_number("SELECT count(*) FROM requests WHERE citizen_id = $1::bigint", cid, NULL), 3);
    /* the person keeps both e-mails and all name forms */
    pgf_expect("email:jean-pierre.dupont@mairie.example,email:jp.dupont@example.fr,phone:+33612345678",
             "SELECT string_agg(DISTINCT kind || ':' || value, ',') FROM citizen_identifiers "
             "WHERE citizen_id = $1::bigint AND kind IN ('email', 'phone')", cid, NULL);
    assert_int_equal(pgf_number("SELECT count(*) FROM citizens WHERE id = $1::bigint", cid, NULL), 1);
}

static void test_same_batch_one_citizen(void **state)
{
    /* three softwares in one batch, no citizen known yet: linked inside the
       batch (e-mail, then phone), one new citizen */
    tbatch_t b = { 0 };
    s_add(&b, "j_ec", "R1", "received", "2024-03-04T09:00:00Z",
          "{\"source_citizen_id\": \"1\", \"family_name\": \"LEFÈVRE\", \"given_names\": \"Anne\","
          " \"birth_date\": \"1980-01-02\", \"email\": \"anne.l@example.org\"}");
    s_add(&b, "j_urba", "R2", "received", "2024-03-04T09:01:00Z",
          "{\"source_citizen_id\": \"2\", \"family_name\": \"Lefevre\", \"given_names\": \"anne\","
          " \"email\": \"ANNE.L@example.org\", \"phone\": \"07 11 22 33 44\"}");
    s_add(&b, "j_dech", "R3", "received", "2024-03-04T09:02:00Z",
          "{\"source_citizen_id\": \"3\", \"family_name\": \"L.\", \"given_names\": \"A.\","
          " \"phone\": \"+33711223344\"}");
    long long before = pgf_number("SELECT count(*) FROM citizens", NULL, NULL);
    s_write(&b);
    long long c = s_citizen("j_ec", "1");
    assert_true(c > 0);
    assert_int_equal(s_citizen("j_urba", "2"), c);
    assert_int_equal(s_citizen("j_dech", "3"), c);
    assert_int_equal(pgf_number("SELECT count(*) FROM citizens", NULL, NULL), before + 1);
    pgf_expect("j_dech:phone,j_ec:new,j_urba:email",
             "SELECT string_agg(source || ':' || rule, ',' ORDER BY source) FROM citizen_sources "
             "WHERE source LIKE 'j\\_%'", NULL, NULL);
}

static void test_known_pairs_skip_resolution(void **state)
{
    tbatch_t b = { 0 };
    s_add(&b, "k_ec", "R1", "received", "2024-03-04T09:00:00Z",
          "{\"source_citizen_id\": \"K1\", \"family_name\": \"ROUX\", \"given_names\": \"Léa\","
          " \"email\": \"lea.roux@example.net\"}");
    s_write(&b);
    long long ids = pgf_number("SELECT count(*) FROM citizen_identifiers", NULL, NULL);

    /* the resolver itself: a known pair is no work (0 new pairs) */
    pgf_expect("0", "SELECT cv_identity_resolve('{0}', '{k_ec}', '{K1}', '{R1-in_progress}', "
                  "'{2024-03-05T09:00:00Z}', ARRAY['{\"source_citizen_id\": \"K1\"}'])", NULL, NULL);
    /* a new event of a known pair with another e-mail: the pair keeps its
       citizen and its rule, the person gains the e-mail (006) */
    long long k1 = s_citizen("k_ec", "K1");
    char sk1[24];
    snprintf(sk1, sizeof sk1, "%lld", k1);
    s_add(&b, "k_ec", "R1", "in_progress", "2024-03-05T09:00:00Z",
          "{\"source_citizen_id\": \"K1\", \"family_name\": \"ROUX\", \"given_names\": \"Léa\","
          " \"email\": \"lea.nouvelle@example.net\"}");
    s_write(&b);
    assert_int_equal(pgf_number("SELECT count(*) FROM citizen_identifiers", NULL, NULL), ids + 1);
    assert_int_equal(s_citizen("k_ec", "K1"), k1);
    pgf_expect("new", "SELECT rule FROM citizen_sources WHERE source = 'k_ec'", NULL, NULL);
    pgf_expect("email:lea.nouvelle@example.net,email:lea.roux@example.net",
             "SELECT string_agg(kind || ':' || value, ',' ORDER BY value) FROM citizen_identifiers "
             "WHERE source = 'k_ec' AND source_citizen_id = 'K1' AND citizen_id = $1::bigint",
             sk1, NULL);
    /* the same block again: nothing more */
    s_add(&b, "k_ec", "R1", "resolved", "2024-03-06T09:00:00Z",
          "{\"source_citizen_id\": \"K1\", \"family_name\": \"ROUX\", \"given_names\": \"Léa\","
          " \"email\": \"lea.nouvelle@example.net\"}");
    s_write(&b);
    assert_int_equal(pgf_number("SELECT count(*) FROM citizen_identifiers", NULL, NULL), ids + 1);
    /* a new pair is resolved (counted, then rolled back) */
    PGresult *res = PQexec(pgf_db, "BEGIN");
    PQclear(res);
    pgf_expect("1", "SELECT cv_identity_resolve('{0}', '{k_urba}', '{K9}', '{X-1}', "
                  "'{2024-03-05T09:00:00Z}', ARRAY['{\"email\": \"Lea.Roux@example.net\"}'])", NULL, NULL);
    char cid[24];
    snprintf(cid, sizeof cid, "%lld", s_citizen("k_ec", "K1"));
    pgf_expect(cid, "SELECT citizen_id::text || '' FROM citizen_sources WHERE source = 'k_urba'", NULL, NULL);
    res = PQexec(pgf_db, "ROLLBACK");
    PQclear(res);
}

#define WEAK_A "{\"source_citizen_id\": \"W-1\", \"family_name\": \"MOREAU\", " \
    "\"given_names\": \"Paul\", \"email\": \"paul.moreau@example.com\", " \
    "\"address\": {\"line1\": \"8 bd Voltaire\", \"postcode\": \"75011\"}}"
#define WEAK_B "{\"source_citizen_id\": \"W-2\", \"family_name\": \"Moreau\", " \
    "\"given_names\": \"paul\", \"phone\": \"01 40 00 00 01\", " \
    "\"address\": {\"line1\": \"8 boulevard Voltaire\", \"postcode\": \"75011\"}}"

static void test_weak_match_proposed_then_merge_split(void **state)
{
    tbatch_t b = { 0 };
    s_add(&b, "w_ec", "WR1", "received", "2024-03-04T09:00:00Z", WEAK_A);
    s_add(&b, "w_dech", "WR2", "received", "2024-03-04T09:00:00Z", WEAK_B);
    s_add(&b, "w_dech", "WR3", "received", "2024-03-04T10:00:00Z", WEAK_B);
    s_write(&b);
    long long a = s_citizen("w_ec", "W-1"), c = s_citizen("w_dech", "W-2");
    assert_true(a > 0 && c > 0);
    assert_true(a != c);                    /* not merged on ingest */

    /* off the ingest path: proposed once, with its rule */
    assert_true(pgf_number("SELECT cv_identity_propose()", NULL, NULL) >= 1);
    char sa[24], sc[24];                    /* keep a (1 request), absorb c (2 requests) */
    snprintf(sa, sizeof sa, "%lld", a);
    snprintf(sc, sizeof sc, "%lld", c);
    pgf_expect("name_address:0.6:open", "SELECT rule || ':' || confidence || ':' || status FROM merge_proposals "
             "WHERE citizen_a = least($1::bigint, $2::bigint) "
             "AND citizen_b = greatest($1::bigint, $2::bigint)", sa, sc);
    assert_int_equal(pgf_number("SELECT cv_identity_propose()", NULL, NULL), 0);

    /* the state of both citizens, to compare after merge + split */
    const char *snapshot =
        "SELECT (SELECT string_agg(source || '/' || source_citizen_id || '>' || citizen_id || ':' || rule, ',' "
        "        ORDER BY source, source_citizen_id) FROM citizen_sources WHERE source LIKE 'w\\_%') || ' ' || "
        "       (SELECT string_agg(kind || '>' || citizen_id, ',' ORDER BY kind, citizen_id, source) "
        "        FROM citizen_identifiers WHERE source LIKE 'w\\_%') || ' ' || "
        "       (SELECT string_agg(r.id || '>' || r.citizen_id, ',' ORDER BY r.id) FROM requests r "
        "        JOIN request_sources s ON s.request_id = r.id WHERE s.source LIKE 'w\\_%') || ' ' || "
        "       (SELECT count(*) FROM citizens WHERE id IN ($1::bigint, $2::bigint) AND merged_into IS NULL)";
    char *before = pgf_value(snapshot, sa, sc);
    assert_non_null(before);

    char *merge = pgf_value("SELECT cv_citizen_merge($1::bigint, $2::bigint, 'agent-42')", sa, sc);
    assert_non_null(merge);
    assert_int_equal(pgf_number("SELECT count(DISTINCT citizen_id) FROM citizen_sources WHERE source LIKE 'w\\_%'",
                              NULL, NULL), 1);
    pgf_expect(sa, "SELECT string_agg(DISTINCT citizen_id::text, ',') FROM requests r "
             "JOIN request_sources s ON s.request_id = r.id WHERE s.source LIKE 'w\\_%'", NULL, NULL);
    pgf_expect(sa, "SELECT merged_into::text FROM citizens WHERE id = $1::bigint", sc, NULL);
    pgf_expect("accepted", "SELECT status FROM merge_proposals WHERE $1::bigint IN (citizen_a, citizen_b)",
             sa, NULL);
    /* the merge is in the timeline, one event per moved request */
    assert_int_equal(pgf_number("SELECT count(*) FROM events WHERE kind = 'citizen_merge' "
                              "AND citizen_id = $1::bigint", sa, NULL), 2);
    char *after = pgf_value(snapshot, sa, sc);
    assert_string_not_equal(after, before);
    free(after);

    /* a split restores both exactly */
    pgf_expect("", "SELECT cv_citizen_split($1::bigint, 'agent-42')::text", merge, NULL);
    after = pgf_value(snapshot, sa, sc);
    assert_string_equal(after, before);
    free(after);
    assert_int_equal(pgf_number("SELECT count(*) FROM events WHERE kind = 'citizen_split' "
                              "AND citizen_id = $1::bigint", sc, NULL), 2);
    pgf_expect("rejected", "SELECT status FROM merge_proposals WHERE $1::bigint IN (citizen_a, citizen_b)",
             sa, NULL);
    assert_int_equal(pgf_number("SELECT cv_identity_propose()", NULL, NULL), 0);  /* not re-proposed */

    /* splitting twice, or merging a citizen with itself, is refused */
    PGresult *res = PQexecParams(pgf_db, "SELECT cv_citizen_split($1::bigint, 'agent-42')", 1, NULL,
                                 (const char *[]) { merge }, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(res), PGRES_FATAL_ERROR);
    PQclear(res);
    res = PQexecParams(pgf_db, "SELECT cv_citizen_merge($1::bigint, $1::bigint, 'agent-42')", 1, NULL,
                       (const char *[]) { sa }, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(res), PGRES_FATAL_ERROR);
    PQclear(res);
    free(merge);
    free(before);
}

static void test_conflict_is_proposed_not_linked(void **state)
{
    tbatch_t b = { 0 };
    s_add(&b, "x_ec", "X1", "received", "2024-03-04T09:00:00Z",
          "{\"source_citizen_id\": \"X-1\", \"family_name\": \"BLANC\", \"given_names\": \"Eve\","
          " \"email\": \"famille.blanc@example.fr\"}");
    s_add(&b, "x_urba", "X2", "received", "2024-03-04T09:00:00Z",
          "{\"source_citizen_id\": \"X-2\", \"family_name\": \"BLANC\", \"given_names\": \"Tom\","
          " \"phone\": \"06 00 00 00 01\"}");
    s_write(&b);
    long long e = s_citizen("x_ec", "X-1"), t = s_citizen("x_urba", "X-2");
    assert_true(e != t);
    /* two citizens with one e-mail: what pairs stored before 004 leave
       (the migration's backfill keeps existing citizens apart) */
    char st[24];
    snprintf(st, sizeof st, "%lld", t);
    pgf_expect("1", "WITH i AS (INSERT INTO citizen_identifiers (citizen_id, kind, value, source, "
             "source_citizen_id) VALUES ($1::bigint, 'email', 'famille.blanc@example.fr', 'x_urba', 'X-2') "
             "RETURNING 1) SELECT count(*) FROM i", st, NULL);
    /* that e-mail again: no auto-link, a new citizen, proposals */
    s_add(&b, "x_dech", "X3", "received", "2024-03-04T09:00:00Z",
          "{\"source_citizen_id\": \"X-3\", \"family_name\": \"BLANC\","
          " \"email\": \"Famille.Blanc@example.fr\"}");      /* no given name: no veto */
    s_write(&b);
    long long g = s_citizen("x_dech", "X-3");
    assert_true(g != e && g != t);
    pgf_expect("new", "SELECT rule FROM citizen_sources WHERE source = 'x_dech'", NULL, NULL);
    assert_true(pgf_number("SELECT cv_identity_propose()", NULL, NULL) >= 2);
    char sg[24];
    snprintf(sg, sizeof sg, "%lld", g);
    pgf_expect("email:open,email:open", "SELECT string_agg(rule || ':' || status, ',') FROM merge_proposals "
             "WHERE $1::bigint IN (citizen_a, citizen_b)", sg, NULL);
}

static void test_strongest_kind_decides(void **state)
{
    /* one citizen known by name + birth date only, another by e-mail only */
    tbatch_t b = { 0 };
    s_add(&b, "y_demo", "Y1", "received", "2024-03-04T09:00:00Z",
          "{\"source_citizen_id\": \"Y-1\", \"family_name\": \"PETIT\", \"given_names\": \"Rose\","
          " \"birth_date\": \"1990-07-14\"}");
    s_add(&b, "y_dech", "Y2", "received", "2024-03-04T09:00:00Z",
          "{\"source_citizen_id\": \"Y-2\", \"family_name\": \"PETIT\", \"given_names\": \"R.\","
          " \"email\": \"rose.petit@example.fr\"}");
    s_write(&b);
    long long p = s_citizen("y_demo", "Y-1"), q = s_citizen("y_dech", "Y-2");
    assert_true(p != q);
    /* a third software knows both: the e-mail wins, the other is proposed */
    s_add(&b, "y_urba", "Y3", "received", "2024-03-04T09:00:00Z",
          "{\"source_citizen_id\": \"Y-3\", \"family_name\": \"Petit\", \"given_names\": \"rose\","
          " \"birth_date\": \"1990-07-14\", \"email\": \"Rose.Petit@example.fr\"}");
    s_write(&b);
    assert_int_equal(s_citizen("y_urba", "Y-3"), q);
    pgf_expect("email", "SELECT rule FROM citizen_sources WHERE source = 'y_urba'", NULL, NULL);
    assert_true(pgf_number("SELECT cv_identity_propose()", NULL, NULL) >= 1);
    char sp[24], sq[24];
    snprintf(sp, sizeof sp, "%lld", p);
    snprintf(sq, sizeof sq, "%lld", q);
    pgf_expect("name_birth:open", "SELECT rule || ':' || status FROM merge_proposals "
             "WHERE citizen_a = least($1::bigint, $2::bigint) "
             "AND citizen_b = greatest($1::bigint, $2::bigint)", sp, sq);
}

#define FAMILY(key, given, born) "{\"source_citizen_id\": \"" key "\", \"family_name\": \"GARNIER\"," \
    " \"given_names\": \"" given "\", " born "\"email\": \"famille.garnier@example.fr\"," \
    " \"phone\": \"05 55 00 00 01\"}"

static void test_veto_family_email(void **state)
{
    /* Marc is known; his wife Julie writes from the family e-mail and phone */
    tbatch_t b = { 0 };
    s_add(&b, "v_ec", "V1", "received", "2024-03-04T09:00:00Z",
          FAMILY("V-1", "Marc", "\"birth_date\": \"1970-02-03\","));
    s_write(&b);
    long long marc = s_citizen("v_ec", "V-1");
    s_add(&b, "v_urba", "V2", "received", "2024-03-05T09:00:00Z",
          FAMILY("V-2", "Julie", "\"birth_date\": \"1972-08-09\","));
    s_write(&b);
    long long julie = s_citizen("v_urba", "V-2");
    assert_true(julie > 0 && julie != marc);
    pgf_expect("new", "SELECT rule FROM citizen_sources WHERE source = 'v_urba'", NULL, NULL);
    /* the vetoed match is an open proposal at once, e-mail first */
    char sm[24], sj[24];
    snprintf(sm, sizeof sm, "%lld", marc);
    snprintf(sj, sizeof sj, "%lld", julie);
    const char *proposal = "SELECT rule || ':' || confidence || ':' || status FROM merge_proposals "
                           "WHERE citizen_a = least($1::bigint, $2::bigint) "
                           "AND citizen_b = greatest($1::bigint, $2::bigint)";
    pgf_expect("email_conflict:0.5:open", proposal, sm, sj);

    /* same birth date but another initial (no dates known on one side):
       vetoed too; "M." without birth date is Marc, linked */
    s_add(&b, "v_dech", "V3", "received", "2024-03-06T09:00:00Z", FAMILY("V-3", "Théo", ""));
    s_add(&b, "v_dech", "V4", "received", "2024-03-06T09:00:00Z", FAMILY("V-4", "M.", ""));
    s_write(&b);
    long long theo = s_citizen("v_dech", "V-3");
    assert_true(theo != marc && theo != julie);
    assert_int_equal(s_citizen("v_dech", "V-4"), marc);
    pgf_expect("email", "SELECT rule FROM citizen_sources WHERE source_citizen_id = 'V-4'", NULL, NULL);
    /* Théo's e-mail and phone hit Marc and Julie, both vetoed: two proposals */
    char st[24];
    snprintf(st, sizeof st, "%lld", theo);
    pgf_expect("email_conflict:0.5:open", proposal, st, sm);
    pgf_expect("email_conflict:0.5:open", proposal, st, sj);
    /* the proposals job adds nothing between these three */
    pgf_number("SELECT cv_identity_propose()", NULL, NULL);
    char three[80];
    snprintf(three, sizeof three, "{%s,%s,%s}", sm, sj, st);
    pgf_expect("3", "SELECT count(*) FROM merge_proposals WHERE citizen_a = ANY ($1::bigint[]) "
             "AND citizen_b = ANY ($1::bigint[]) AND rule = 'email_conflict'", three, NULL);
}

static void test_veto_inside_batch(void **state)
{
    /* new pairs of one batch sharing a phone: joined only when their birth
       dates and initials agree; one without birth date between two dates
       joins nobody */
    tbatch_t b = { 0 };
    s_add(&b, "vb_ec", "B1", "received", "2024-03-04T09:00:00Z",
          "{\"source_citizen_id\": \"B-1\", \"family_name\": \"HENRY\", \"given_names\": \"Paul\","
          " \"birth_date\": \"1950-01-01\", \"phone\": \"04 78 00 00 02\"}");
    s_add(&b, "vb_urba", "B2", "received", "2024-03-04T09:00:00Z",
          "{\"source_citizen_id\": \"B-2\", \"family_name\": \"HENRY\", \"given_names\": \"Paul\","
          " \"birth_date\": \"1980-06-06\", \"phone\": \"+33 4 78 00 00 02\"}");
    s_add(&b, "vb_dech", "B3", "received", "2024-03-04T09:00:00Z",
          "{\"source_citizen_id\": \"B-3\", \"family_name\": \"HENRY\", \"given_names\": \"P.\","
          " \"phone\": \"0478000002\"}");
    s_add(&b, "vb_demo", "B4", "received", "2024-03-04T09:00:00Z",
          "{\"source_citizen_id\": \"B-4\", \"family_name\": \"Henry\", \"given_names\": \"paul\","
          " \"birth_date\": \"1980-06-06\", \"phone\": \"04.78.00.00.02\"}");
    long long before = pgf_number("SELECT count(*) FROM citizens", NULL, NULL);
    s_write(&b);
    long long father = s_citizen("vb_ec", "B-1"), son = s_citizen("vb_urba", "B-2");
    long long unsure = s_citizen("vb_dech", "B-3");
    assert_true(father != son && unsure != father && unsure != son);
    assert_int_equal(s_citizen("vb_demo", "B-4"), son);
    assert_int_equal(pgf_number("SELECT count(*) FROM citizens", NULL, NULL), before + 3);
    char ids[80];
    snprintf(ids, sizeof ids, "{%lld,%lld,%lld}", father, son, unsure);
    pgf_expect("phone_conflict:3", "SELECT min(rule) || ':' || count(*) FROM merge_proposals "
             "WHERE citizen_a = ANY ($1::bigint[]) AND citizen_b = ANY ($1::bigint[]) "
             "AND rule = 'phone_conflict' AND status = 'open'", ids, NULL);
}

#define NOEL(mail) "{\"source_citizen_id\": \"N-1\", \"family_name\": \"NOEL\", \"given_names\": \"Ines\"," \
    " \"email\": \"" mail "\"}"
/* cv_ingest's 21 arrays for events of record N1 of pair (n_ec, N-1); $1 is
   the list of statuses, $2 the identity blocks (text[], NULL elements: the
   hub's "known pair, unchanged block") */
#define NOEL_INGEST "SELECT string_agg(o_outcome, ',' ORDER BY o_idx) FROM cv_ingest(" \
    "ARRAY(SELECT generate_subscripts($1::text[], 1) - 1)::int[], " \
    "array_fill('n_ec'::text, ARRAY[cardinality($1::text[])]), " \
    "ARRAY(SELECT 'h-' || s FROM unnest($1::text[]) s), " \
    "array_fill('N-1'::text, ARRAY[cardinality($1::text[])]), convert_to('ACDEFHJKLM', 'UTF8'), " \
    "ARRAY(SELECT 'N1-' || s FROM unnest($1::text[]) s), " \
    "array_fill('demande'::text, ARRAY[cardinality($1::text[])]), " \
    "array_fill('N1'::text, ARRAY[cardinality($1::text[])]), " \
    "array_fill(NULL::text, ARRAY[cardinality($1::text[])]), " \
    "array_fill('etat_civil'::text, ARRAY[cardinality($1::text[])]), " \
    "array_fill('acte'::text, ARRAY[cardinality($1::text[])]), " \
    "array_fill('web'::text, ARRAY[cardinality($1::text[])]), $1::text[], " \
    "array_fill(NULL::text, ARRAY[cardinality($1::text[])]), " \
    "array_fill(NULL::text, ARRAY[cardinality($1::text[])]), " \
    "ARRAY(SELECT '2024-03-0' || (4 + i) || 'T09:00:00Z' FROM generate_subscripts($1::text[], 1) i), " \
    "array_fill(NULL::text, ARRAY[cardinality($1::text[])]), " \
    "array_fill(NULL::text, ARRAY[cardinality($1::text[])]), " \
    "array_fill(NULL::text, ARRAY[cardinality($1::text[])]), $2::text[], " \
    "array_fill('{}'::text, ARRAY[cardinality($1::text[])]))"

static void test_known_pair_null_citizen(void **state)
{
    tbatch_t b = { 0 };
    s_add(&b, "n_ec", "N1", "received", "2024-03-05T09:00:00Z", NOEL("ines.noel@example.org"));
    s_write(&b);
    long long c = s_citizen("n_ec", "N-1");
    char sc[24];
    snprintf(sc, sizeof sc, "%lld", c);
    const char *state_sql =
        "SELECT (SELECT identity::text || '|' || identity_at || '|' || citizen_id FROM citizen_sources "
        "        WHERE source = 'n_ec') || ' ' || "
        "       (SELECT string_agg(kind || ':' || value, ',' ORDER BY kind, value) FROM citizen_identifiers "
        "        WHERE source = 'n_ec') || ' ' || (SELECT count(*) FROM citizens)";
    char *before = pgf_value(state_sql, NULL, NULL);
    assert_non_null(before);

    /* the hub knows the pair and its block is unchanged: citizen NULL */
    pgf_expect("stored", NOEL_INGEST, "{acknowledged}", "{NULL}");
    char *after = pgf_value(state_sql, NULL, NULL);
    assert_string_equal(after, before);             /* same citizen, identity, identifiers */
    free(after);
    pgf_expect(sc, "SELECT citizen_id::text FROM events WHERE source = 'n_ec' "
             "AND event_id = 'N1-acknowledged'", NULL, NULL);
    pgf_expect("acknowledged", "SELECT r.status FROM requests r JOIN request_sources s "
             "ON s.request_id = r.id WHERE s.source = 'n_ec' AND r.citizen_id = $1::bigint", sc, NULL);

    /* a changed block, then NULL in the same batch: the changed block is the
       identity (not NULL), its new e-mail an identifier, the pair not re-linked */
    pgf_expect("stored,stored", NOEL_INGEST, "{in_progress,resolved}",
             "{\"" "{\\\"source_citizen_id\\\": \\\"N-1\\\", \\\"family_name\\\": \\\"NOEL\\\", "
             "\\\"given_names\\\": \\\"Ines\\\", \\\"email\\\": \\\"ines@example.org\\\"}\", NULL}");
    pgf_expect("ines@example.org", "SELECT identity->>'email' FROM citizen_sources WHERE source = 'n_ec'",
             NULL, NULL);
    pgf_expect("ines.noel@example.org,ines@example.org", "SELECT string_agg(value, ',' ORDER BY value) "
             "FROM citizen_identifiers WHERE source = 'n_ec' AND kind = 'email' AND citizen_id = $1::bigint",
             sc, NULL);
    assert_int_equal(s_citizen("n_ec", "N-1"), c);
    assert_int_equal(pgf_number("SELECT count(*) FROM events WHERE source = 'n_ec' AND citizen_id = $1::bigint",
                              sc, NULL), 4);
    free(before);
}

#define MERCIER(key, given, mail) "{\"source_citizen_id\": \"" key "\", \"family_name\": \"MERCIER\"," \
    " \"given_names\": \"" given "\", \"email\": \"" mail "\"}"

static void test_detach(void **state)
{
    /* A. and Alix share the family e-mail, nothing tells them apart (an
       initial, no birth date): linked */
    tbatch_t b = { 0 };
    s_add(&b, "d_ec", "D1", "received", "2024-03-04T09:00:00Z", MERCIER("D-1", "A.", "mercier@example.fr"));
    s_write(&b);
    s_add(&b, "d_urba", "D2", "received", "2024-03-05T09:00:00Z", MERCIER("D-2", "Alix", "mercier@example.fr"));
    s_add(&b, "d_urba", "D3", "received", "2024-03-05T10:00:00Z", MERCIER("D-2", "Alix", "mercier@example.fr"));
    s_write(&b);
    long long c = s_citizen("d_ec", "D-1");
    assert_int_equal(s_citizen("d_urba", "D-2"), c);
    char sc[24];
    snprintf(sc, sizeof sc, "%lld", c);
    pgf_refused("22023", "SELECT cv_citizen_detach($1::bigint, 'd_urba', 'D-9', 'agent-7')", sc, NULL);
    pgf_refused("22023", "SELECT cv_citizen_detach(999999999, 'd_urba', 'D-2', 'agent-7')", NULL, NULL);

    /* an agent detaches Alix: her pair, identifiers and requests move */
    char *n = pgf_value("SELECT cv_citizen_detach($1::bigint, 'd_urba', 'D-2', 'agent-7')", sc, NULL);
    assert_non_null(n);
    assert_true(atoll(n) > c);
    pgf_expect(n, "SELECT citizen_id::text FROM citizen_sources WHERE source = 'd_urba'", NULL, NULL);
    pgf_expect("detached", "SELECT rule FROM citizen_sources WHERE source = 'd_urba'", NULL, NULL);
    pgf_expect(sc, "SELECT string_agg(DISTINCT citizen_id::text, ',') FROM citizen_identifiers "
             "WHERE source = 'd_ec'", NULL, NULL);
    pgf_expect(n, "SELECT string_agg(DISTINCT citizen_id::text, ',') FROM citizen_identifiers "
             "WHERE source = 'd_urba'", NULL, NULL);
    pgf_expect(n, "SELECT string_agg(DISTINCT r.citizen_id::text, ',') FROM requests r "
             "JOIN request_sources s ON s.request_id = r.id WHERE s.source = 'd_urba'", NULL, NULL);
    pgf_expect(sc, "SELECT string_agg(DISTINCT r.citizen_id::text, ',') FROM requests r "
             "JOIN request_sources s ON s.request_id = r.id WHERE s.source = 'd_ec'", NULL, NULL);
    /* in the timeline: one event per moved request, ids and statuses only */
    pgf_expect("2:civibus:received", "SELECT count(*) || ':' || min(source) || ':' || min(status) FROM events "
             "WHERE kind = 'citizen_detach' AND citizen_id = $1::bigint", n, NULL);
    /* answered once: never proposed again */
    pgf_expect("email:rejected:agent-7", "SELECT rule || ':' || status || ':' || decided_by FROM merge_proposals "
             "WHERE citizen_a = $1::bigint AND citizen_b = $2::bigint", sc, n);
    pgf_number("SELECT cv_identity_propose()", NULL, NULL);
    pgf_expect("1", "SELECT count(*) FROM merge_proposals WHERE citizen_a = $1::bigint "
             "OR citizen_b = $1::bigint", n, NULL);
    /* her next events follow her pair */
    s_add(&b, "d_urba", "D2", "in_progress", "2024-03-06T09:00:00Z", MERCIER("D-2", "Alix", "mercier@example.fr"));
    s_write(&b);
    pgf_expect(n, "SELECT citizen_id::text FROM events WHERE source = 'd_urba' AND event_id = 'D2-in_progress'",
             NULL, NULL);
    /* refused: the pair is no longer there; a citizen's only pair */
    pgf_refused("22023", "SELECT cv_citizen_detach($1::bigint, 'd_urba', 'D-2', 'agent-7')", sc, NULL);
    pgf_refused("22023", "SELECT cv_citizen_detach($1::bigint, 'd_urba', 'D-2', 'agent-7')", n, NULL);

    /* two pairs of one source on a citizen: whose requests are whose is unknown */
    s_add(&b, "d_dech", "E1", "received", "2024-03-04T09:00:00Z", MERCIER("E-1", "Lou", "lou@example.fr"));
    s_add(&b, "d_dech", "E2", "received", "2024-03-04T09:00:00Z", MERCIER("E-2", "Lou", "lou@example.fr"));
    s_write(&b);
    char se[24];
    snprintf(se, sizeof se, "%lld", s_citizen("d_dech", "E-1"));
    assert_int_equal(s_citizen("d_dech", "E-2"), atoll(se));
    pgf_refused("55000", "SELECT cv_citizen_detach($1::bigint, 'd_dech', 'E-1', 'agent-7')", se, NULL);
    free(n);
}

/* ---- self-declared identities (015_identity_declared.sql) ------------------ */

/* Declares `source` self-declared, as a city lists its web forms. */
static void s_declared_source(const char *source)
{
    pgf_expect("1", "WITH i AS (INSERT INTO identity_declared_sources (source, channel) "
             "VALUES ($1, 'test form') RETURNING 1) SELECT count(*) FROM i", source, NULL);
}

/* The rule and status of the proposals between two citizens ("" if none). */
static char *s_proposal(long long a, long long b)
{
    char sa[24], sb[24];
    snprintf(sa, sizeof sa, "%lld", a < b ? a : b);
    snprintf(sb, sizeof sb, "%lld", a < b ? b : a);
    return pgf_value("SELECT coalesce(string_agg(rule || ':' || status, ','), '') FROM merge_proposals "
                     "WHERE citizen_a = $1::bigint AND citizen_b = $2::bigint", sa, sb);
}

static void s_expect_proposal(const char *expected, long long a, long long b)
{
    char *got = s_proposal(a, b);
    if (strcmp(got, expected) != 0)
        print_error("proposal %lld-%lld: '%s', expected '%s'\n", a, b, got, expected);
    assert_string_equal(got, expected);
    free(got);
}

static void test_declared_never_attaches(void **state)
{
    /* a citizen the civil registry knows well */
    tbatch_t b = { 0 };
    s_add(&b, "sd_ec", "D1", "received", "2024-03-04T09:00:00Z",
          "{\"source_citizen_id\": \"D-1\", \"family_name\": \"MOREAU\", \"given_names\": \"Claire\","
          " \"birth_date\": \"1975-05-05\", \"email\": \"claire.moreau@example.fr\","
          " \"phone\": \"06 22 33 44 55\"}");
    s_write(&b);
    long long victim = s_citizen("sd_ec", "D-1");
    assert_true(victim > 0);
    s_declared_source("sd_web");

    /* an anonymous form with her e-mail and no first name: no veto could
       stop it, yet it is not linked; a proposal waits for an agent */
    s_add(&b, "sd_web", "W1", "received", "2024-03-05T09:00:00Z",
          "{\"source_citizen_id\": \"W-1\", \"family_name\": \"Moreau\","
          " \"email\": \"Claire.Moreau@EXAMPLE.fr\"}");
    s_write(&b);
    long long w1 = s_citizen("sd_web", "W-1");
    assert_true(w1 > 0 && w1 != victim);
    pgf_expect("new:true", "SELECT rule || ':' || declared FROM citizen_sources WHERE source = 'sd_web'", NULL, NULL);
    pgf_expect("t", "SELECT bool_and(declared) FROM citizen_identifiers WHERE source = 'sd_web'", NULL, NULL);
    s_expect_proposal("declared_email:open", victim, w1);
    char sv[24];
    snprintf(sv, sizeof sv, "%lld", victim);
    assert_int_equal(pgf_number("SELECT count(*) FROM requests WHERE citizen_id = $1::bigint", sv, NULL), 1);
    assert_int_equal(pgf_number("SELECT count(*) FROM events WHERE citizen_id = $1::bigint", sv, NULL), 1);

    /* her name, first name and birth date, typed in: the same */
    s_add(&b, "sd_web", "W2", "received", "2024-03-05T10:00:00Z",
          "{\"source_citizen_id\": \"W-2\", \"family_name\": \"moreau\", \"given_names\": \"claire\","
          " \"birth_date\": \"1975-05-05\", \"phone\": \"+33622334455\"}");
    s_write(&b);
    long long w2 = s_citizen("sd_web", "W-2");
    assert_true(w2 != victim && w2 != w1);
    s_expect_proposal("declared_name_birth:open", victim, w2);      /* the strongest of the two */

    /* an agent says "not the same person": never proposed again */
    char sa[24], sb[24];
    snprintf(sa, sizeof sa, "%lld", victim < w1 ? victim : w1);
    snprintf(sb, sizeof sb, "%lld", victim < w1 ? w1 : victim);
    pgf_expect("1", "WITH u AS (UPDATE merge_proposals SET status = 'rejected', decided_by = 'agent-1',"
             " decided_at = now() WHERE citizen_a = $1::bigint AND citizen_b = $2::bigint RETURNING 1)"
             " SELECT count(*) FROM u", sa, sb);
    pgf_number("SELECT cv_identity_propose()", NULL, NULL);
    s_expect_proposal("declared_email:rejected", victim, w1);
    assert_int_equal(s_citizen("sd_web", "W-1"), w1);
    assert_int_equal(s_citizen("sd_ec", "D-1"), victim);
}

static void test_declared_is_no_link_target(void **state)
{
    s_declared_source("sn_web");
    /* the form comes first, with somebody's e-mail and phone */
    tbatch_t b = { 0 };
    s_add(&b, "sn_web", "W1", "received", "2024-03-04T09:00:00Z",
          "{\"source_citizen_id\": \"W-1\", \"family_name\": \"ROUX\","
          " \"email\": \"paul.roux@example.fr\", \"phone\": \"07 55 66 77 88\"}");
    s_write(&b);
    long long w = s_citizen("sn_web", "W-1");
    assert_true(w > 0);

    /* then the real person, from a back-office software: not attached to
       what the form declared */
    s_add(&b, "sn_ec", "E1", "received", "2024-03-05T09:00:00Z",
          "{\"source_citizen_id\": \"E-1\", \"family_name\": \"Roux\", \"given_names\": \"Paul\","
          " \"email\": \"paul.roux@example.fr\"}");
    s_write(&b);
    long long p = s_citizen("sn_ec", "E-1");
    assert_true(p > 0 && p != w);
    pgf_expect("new", "SELECT rule FROM citizen_sources WHERE source = 'sn_ec'", NULL, NULL);
    assert_true(pgf_number("SELECT cv_identity_propose()", NULL, NULL) >= 1);
    s_expect_proposal("declared_email:open", w, p);

    /* both in one batch, sharing a phone: apart, and proposed */
    s_add(&b, "sn_web", "W3", "received", "2024-03-06T09:00:00Z",
          "{\"source_citizen_id\": \"W-3\", \"family_name\": \"Petit\", \"phone\": \"01 40 50 60 70\"}");
    s_add(&b, "sn_dech", "E3", "received", "2024-03-06T09:00:01Z",
          "{\"source_citizen_id\": \"E-3\", \"family_name\": \"PETIT\", \"given_names\": \"Lou\","
          " \"phone\": \"+33140506070\"}");
    s_write(&b);
    long long w3 = s_citizen("sn_web", "W-3"), e3 = s_citizen("sn_dech", "E-3");
    assert_true(w3 > 0 && e3 > 0 && w3 != e3);
    s_expect_proposal("declared_phone:open", w3, e3);

    /* the form's sender writes again with another e-mail: that one is
       declared too, and no later record links to it */
    s_add(&b, "sn_web", "W1", "in_progress", "2024-03-07T09:00:00Z",
          "{\"source_citizen_id\": \"W-1\", \"family_name\": \"ROUX\","
          " \"email\": \"p.roux@example.org\", \"phone\": \"07 55 66 77 88\"}");
    s_write(&b);
    pgf_expect("t", "SELECT bool_and(declared) FROM citizen_identifiers WHERE source = 'sn_web'", NULL, NULL);
    s_add(&b, "sn_urba", "U1", "received", "2024-03-08T09:00:00Z",
          "{\"source_citizen_id\": \"U-1\", \"family_name\": \"Roux\", \"email\": \"p.roux@example.org\"}");
    s_write(&b);
    long long u = s_citizen("sn_urba", "U-1");
    assert_true(u != w && u != p);

    /* and a trusted pair still links to a trusted citizen as before */
    s_add(&b, "sn_dech", "E4", "received", "2024-03-09T09:00:00Z",
          "{\"source_citizen_id\": \"E-4\", \"family_name\": \"ROUX\", \"given_names\": \"P.\","
          " \"email\": \"PAUL.ROUX@example.fr\"}");
    s_write(&b);
    assert_int_equal(s_citizen("sn_dech", "E-4"), p);
}

/* ---- shared and placeholder values (017_identity_shared.sql) --------------- */

/* A person of source `source`, key `key`: family name, given names, phone,
   e-mail (NULL: none), no birth date (so no veto on the initial "J"). */
static void s_add_person(tbatch_t *b, const char *source, const char *key, const char *family,
                         const char *given, const char *phone, const char *email)
{
    char citizen[512], record[64];
    snprintf(citizen, sizeof citizen,
             "{\"source_citizen_id\": \"%s\", \"family_name\": \"%s\", \"given_names\": \"%s\""
             "%s%s%s%s%s%s}", key, family, given,
             phone ? ", \"phone\": \"" : "", phone ? phone : "", phone ? "\"" : "",
             email ? ", \"email\": \"" : "", email ? email : "", email ? "\"" : "");
    snprintf(record, sizeof record, "R-%s", key);
    s_add(b, source, record, "received", "2024-03-04T09:00:00Z", citizen);
}

static const char *s_families[] = { "MARTIN", "BERNARD", "THOMAS", "PETIT", "ROBERT", "RICHARD",
                                    "DURAND", "LEROY", "MOREAU", "SIMON", "LAURENT", "LEFEBVRE" };

static void test_placeholders_never_link(void **state)
{
    /* twelve people whose phone the counter typed as 06 00 00 00 00, one
       batch each: without the deny list they all become one citizen */
    tbatch_t b = { 0 };
    char key[16];
    for (int i = 0; i < 12; i++) {
        snprintf(key, sizeof key, "P-%d", i);
        s_add_person(&b, "pl_ec", key, s_families[i], "Jean", "06 00 00 00 00", NULL);
        s_write(&b);
    }
    assert_int_equal(pgf_number("SELECT count(DISTINCT citizen_id) FROM citizen_sources WHERE source = 'pl_ec'",
                                NULL, NULL), 12);
    assert_int_equal(pgf_number("SELECT count(*) FROM citizen_identifiers WHERE value = '+33600000000'",
                                NULL, NULL), 0);
    /* the same with placeholder e-mails, in one batch */
    for (int i = 0; i < 6; i++) {
        snprintf(key, sizeof key, "E-%d", i);
        s_add_person(&b, "pl_ec", key, s_families[i], "Jeanne", NULL,
                     i % 3 == 0 ? "test@test.fr" : i % 3 == 1 ? "Aucun@Gmail.com" : "pas.de.mail@orange.fr");
    }
    s_write(&b);
    assert_int_equal(pgf_number("SELECT count(DISTINCT citizen_id) FROM citizen_sources WHERE source = 'pl_ec'",
                                NULL, NULL), 18);
    pgf_number("SELECT cv_identity_propose()", NULL, NULL);
    assert_int_equal(pgf_number("SELECT count(*) FROM merge_proposals p JOIN citizen_sources cs "
                                "ON cs.citizen_id IN (p.citizen_a, p.citizen_b) WHERE cs.source = 'pl_ec'",
                                NULL, NULL), 0);
    /* a city adds its own switchboard number; real numbers still link */
    pgf_expect("1", "WITH i AS (INSERT INTO identifier_denylist (kind, pattern, reason) "
             "VALUES ('phone', '^\\+33140506070$', 'the town hall') RETURNING 1) SELECT count(*) FROM i", NULL, NULL);
    s_add_person(&b, "pl_ec", "H-1", "GARCIA", "Luis", "01 40 50 60 70", NULL);
    s_add_person(&b, "pl_urba", "H-2", "DAVID", "Lou", "01 40 50 60 70", NULL);
    s_add_person(&b, "pl_ec", "R-1", "ROUX", "Anne", "07 11 22 33 44", NULL);
    s_add_person(&b, "pl_urba", "R-2", "Roux", "A.", "+33 7 11 22 33 44", NULL);
    s_write(&b);
    assert_true(s_citizen("pl_ec", "H-1") != s_citizen("pl_urba", "H-2"));
    assert_int_equal(s_citizen("pl_ec", "R-1"), s_citizen("pl_urba", "R-2"));
}

/* Open proposals involving a citizen of source `source`. */
static long long s_proposals_of(const char *source)
{
    return pgf_number("SELECT count(DISTINCT p.id) FROM merge_proposals p JOIN citizen_sources cs "
                      "ON cs.citizen_id IN (p.citizen_a, p.citizen_b) WHERE cs.source = $1", source, NULL);
}

static void test_shared_value_stops_linking(void **state)
{
    /* a care home's phone, given for eight residents one after the other:
       the veto keeps them apart (family names differ) but each vetoed match
       is a proposal; once more than max_shared (3) holders have the number,
       it is shared: no hit, no proposal, not even from the periodic job */
    tbatch_t b = { 0 };
    char key[16];
    for (int i = 0; i < 8; i++) {
        snprintf(key, sizeof key, "S-%d", i);
        s_add_person(&b, "sh_ec", key, s_families[i], "Jean", "04 78 12 34 56", NULL);
        s_write(&b);
    }
    assert_int_equal(pgf_number("SELECT count(DISTINCT citizen_id) FROM citizen_sources WHERE source = 'sh_ec'",
                                NULL, NULL), 8);
    pgf_expect("phone:4", "SELECT kind || ':' || holders FROM shared_identifiers "
             "WHERE value_hash = cv_identifier_hash('phone', '+33478123456')", NULL, NULL);
    pgf_expect("t", "SELECT bool_and(shared) FROM citizen_identifiers WHERE value = '+33478123456'", NULL, NULL);
    long long made = s_proposals_of("sh_ec");
    assert_true(made <= 3);                  /* the second to the fourth resident's, before it was shared */
    pgf_number("SELECT cv_identity_propose()", NULL, NULL);
    assert_int_equal(s_proposals_of("sh_ec"), made);
    /* a later resident with that phone: a citizen of her own, nothing proposed */
    s_add_person(&b, "sh_urba", "S-9", "LEROY", "Jeanne", "04.78.12.34.56", NULL);
    s_write(&b);
    assert_int_equal(s_proposals_of("sh_urba"), 0);

    /* with max_shared 1, the second holder already finds the value shared:
       not even the one proposal */
    s_add_person(&b, "sh_mx", "T-1", "DURAND", "Jean", "04 78 99 99 98", NULL);
    s_write_limits(&b, 1, 20);
    s_add_person(&b, "sh_mx", "T-2", "LEROY", "Jean", "04 78 99 99 98", NULL);
    s_write_limits(&b, 1, 20);
    assert_true(s_citizen("sh_mx", "T-1") != s_citizen("sh_mx", "T-2"));
    assert_int_equal(s_proposals_of("sh_mx"), 0);
    /* ten holders in one batch: apart, and no proposal among them */
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof key, "U-%d", i);
        s_add_person(&b, "sh_dech", key, s_families[i], "Jean", "04 78 77 77 70", NULL);
    }
    s_write(&b);
    assert_int_equal(pgf_number("SELECT count(DISTINCT citizen_id) FROM citizen_sources WHERE source = 'sh_dech'",
                                NULL, NULL), 10);
    pgf_number("SELECT cv_identity_propose()", NULL, NULL);
    assert_int_equal(s_proposals_of("sh_dech"), 0);
}

static void test_given_and_family_veto(void **state)
{
    /* a household's e-mail: Josiane and Julie share an initial, no birth
       date; René ADAM and René DAVID share a first name */
    tbatch_t b = { 0 };
    s_add_person(&b, "gv_ec", "G-1", "DURAND", "Josiane", NULL, "famille.durand@example.fr");
    s_write(&b);
    s_add_person(&b, "gv_urba", "G-2", "Durand", "Julie", NULL, "famille.durand@example.fr");
    s_write(&b);
    assert_true(s_citizen("gv_ec", "G-1") != s_citizen("gv_urba", "G-2"));
    pgf_expect("email_conflict", "SELECT p.rule FROM merge_proposals p JOIN citizen_sources cs ON "
             "cs.citizen_id = p.citizen_b WHERE cs.source = 'gv_urba'", NULL, NULL);
    s_add_person(&b, "gv_ec", "A-1", "ADAM", "René", NULL, "famille.adam@example.fr");
    s_write(&b);
    s_add_person(&b, "gv_urba", "A-2", "DAVID", "René", NULL, "famille.adam@example.fr");
    s_write(&b);
    assert_true(s_citizen("gv_ec", "A-1") != s_citizen("gv_urba", "A-2"));
    /* the same in one batch */
    s_add_person(&b, "gv_dech", "J-1", "MARTIN", "Josiane", NULL, "famille.martin@example.fr");
    s_add_person(&b, "gv_dech", "J-2", "MARTIN", "Julie", NULL, "famille.martin@example.fr");
    s_add_person(&b, "gv_dech", "J-3", "BLANC", "Julie", NULL, "famille.martin@example.fr");
    s_write(&b);
    assert_int_equal(pgf_number("SELECT count(DISTINCT citizen_id) FROM citizen_sources WHERE source = 'gv_dech'",
                                NULL, NULL), 3);
    /* what must still link: an initial, a married name, capitals, accents */
    s_add_person(&b, "gv_ec", "L-1", "LEFÈVRE épouse MOREL", "Anne-Sophie", NULL, "as.morel@example.fr");
    s_write(&b);
    s_add_person(&b, "gv_urba", "L-2", "MOREL", "A.", NULL, "AS.Morel@example.fr");
    s_add_person(&b, "gv_dech", "L-3", "lefevre", "ANNE SOPHIE", NULL, "as.morel@example.fr");
    s_write(&b);
    assert_int_equal(s_citizen("gv_urba", "L-2"), s_citizen("gv_ec", "L-1"));
    assert_int_equal(s_citizen("gv_dech", "L-3"), s_citizen("gv_ec", "L-1"));
}

static void test_batch_absorb_limit(void **state)
{
    /* 25 records of one "J. MARTIN" sharing a phone, in one batch: one
       holder, so the value is not shared, but no person has 25 files in one
       export: above max_absorb (20) they stay apart, each proposed */
    tbatch_t b = { 0 };
    char key[16];
    for (int i = 0; i < 25; i++) {
        snprintf(key, sizeof key, "A-%d", i);
        s_add_person(&b, "ab_ec", key, "MARTIN", "J.", "04 78 55 55 55", NULL);
    }
    s_write(&b);
    assert_int_equal(pgf_number("SELECT count(DISTINCT citizen_id) FROM citizen_sources WHERE source = 'ab_ec'",
                                NULL, NULL), 25);
    /* with a larger limit the same batch is one person */
    for (int i = 0; i < 25; i++) {
        snprintf(key, sizeof key, "B-%d", i);
        s_add_person(&b, "ab_urba", key, "MARTIN", "J.", "04 78 55 55 56", NULL);
    }
    s_write_limits(&b, 3, 30);
    assert_int_equal(pgf_number("SELECT count(DISTINCT citizen_id) FROM citizen_sources WHERE source = 'ab_urba'",
                                NULL, NULL), 1);
    /* a later record with the kept-apart phone finds many citizens: a
       conflict, so a citizen of its own and proposals, not a 26th link */
    s_add_person(&b, "ab_dech", "C-1", "MARTIN", "J.", "04 78 55 55 55", NULL);
    s_write(&b);
    char sc[24];
    snprintf(sc, sizeof sc, "%lld", s_citizen("ab_dech", "C-1"));
    assert_int_equal(pgf_number("SELECT count(*) FROM citizen_sources WHERE citizen_id = $1::bigint", sc, NULL), 1);
    assert_true(pgf_number("SELECT cv_identity_propose()", NULL, NULL) > 0);     /* the periodic job */
    assert_true(pgf_number("SELECT count(*) FROM merge_proposals WHERE $1::bigint IN (citizen_a, citizen_b)",
                           sc, NULL) >= 1);
}

int main(int argc, char **argv)
{
    cv_test_begin(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalisation),
        cmocka_unit_test(test_three_spellings_one_citizen),
        cmocka_unit_test(test_same_batch_one_citizen),
        cmocka_unit_test(test_known_pairs_skip_resolution),
        cmocka_unit_test(test_weak_match_proposed_then_merge_split),
        cmocka_unit_test(test_conflict_is_proposed_not_linked),
        cmocka_unit_test(test_strongest_kind_decides),
        cmocka_unit_test(test_veto_family_email),
        cmocka_unit_test(test_veto_inside_batch),
        cmocka_unit_test(test_known_pair_null_citizen),
        cmocka_unit_test(test_detach),
        cmocka_unit_test(test_declared_never_attaches),
        cmocka_unit_test(test_declared_is_no_link_target),
        cmocka_unit_test(test_placeholders_never_link),
        cmocka_unit_test(test_shared_value_stops_linking),
        cmocka_unit_test(test_given_and_family_veto),
        cmocka_unit_test(test_batch_absorb_limit),
    };
    return cv_test_end(cv_test_group(tests, s_group_setup, s_group_teardown));
}
