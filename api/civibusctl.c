/*  civibusctl — administration of civibus-api from the command line.

        civibusctl --config FILE token create --role agent --service dechets [--label NAME] [--days N]
        civibusctl --config FILE token create --role supervisor|admin [--label NAME] [--days N]
        civibusctl --config FILE token revoke ID
        civibusctl --config FILE token list
        civibusctl link keygen                       (64 hex digits for links.secret_file)
        civibusctl --config FILE link create --citizen ID [--days N]
        civibusctl --config FILE link revoke LINK_ID
        civibusctl --config FILE citizen erase ID    (RGPD: docs/schema.md, "Erasure")
        civibusctl --config FILE citizen export ID   (RGPD access: docs/rgpd.md)
        civibusctl --config FILE citizen rectify ID --source S --key K --field F --value V [--document D]
        civibusctl --config FILE retention run [--rules FILE] [--dry-run]
        civibusctl --config FILE attachments gc [--dry-run] [--grace-minutes N]   (ctl_attachments.h)

    `link create` prints the citizen's link path (/v1/me/...) on stdout and
    its link id on stderr (days default and maximum: links.max_days).
    `token create` prints the token once on stdout (64 hex digits = 256 random
    bits) and its id on stderr; only its SHA-256 is stored. An agent's
    --service must be one the timeline knows (service_categories, filled
    by the hub as records arrive): a typo would make a token that sees
    nothing, or the service of tomorrow's adapter, whichever it is. Without
    --config the PostgreSQL connection comes from the PG* environment.
    `citizen export` prints the JSON document of cv_citizen_export
    (schemas/sql/functions/rgpd.sql, schemas/v1/citizen-export.schema.json).
    `retention run` reads the rules (--rules, default retention.yaml next to
    the --config file, else deploy/retention.yaml), runs cv_retention_run
    and prints its counts (never a name or a value).
    `citizen rectify` calls cv_citizen_rectify (actor "civibusctl") on the
    identity block (S, K): the value V as text, or a JSON object when it
    begins with '{' (an address); --document D marks the new value checked
    on that document. It prints the rectification's id, never a value.
    Exit codes: 0 ok, 1 database error, 2 usage (or a value rectify
    refuses: its reason), 3 no such citizen to export or rectify (unknown,
    erased, or merged into another: the message says which; for rectify
    also a pair the citizen does not have). */
#include "api_access.h"
#include "api_config.h"
#include "api_link.h"
#include "api_retention.h"
#include "api_util.h"
#include "ctl_attachments.h"
#include "ctl_fix.h"

#include <libpq-fe.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int s_usage(void)
{
    fprintf(stderr, "usage: civibusctl [--config FILE] token create --role agent|supervisor|admin"
                    " [--service SERVICE] [--label LABEL] [--days N]\n"
                    "       civibusctl [--config FILE] token revoke ID\n"
                    "       civibusctl [--config FILE] token list\n"
                    "       civibusctl link keygen\n"
                    "       civibusctl --config FILE link create --citizen ID [--days N]\n"
                    "       civibusctl --config FILE link revoke LINK_ID\n"
                    "       civibusctl [--config FILE] citizen erase ID\n"
                    "       civibusctl [--config FILE] citizen export ID\n"
                    "       civibusctl [--config FILE] citizen rectify ID --source S --key K --field F"
                    " --value V [--document D]\n"
                    "       civibusctl [--config FILE] retention run [--rules FILE] [--dry-run]\n"
                    "       civibusctl --config FILE attachments gc [--dry-run] [--grace-minutes N]\n"
                    "       civibusctl [--config FILE] dead-letters list --source S [--reason R] [--limit N]\n"
                    "       civibusctl dead-letters replay --hub-config FILE --source S [--reason R] [--dry-run]\n"
                    "       civibusctl remap --hub-config FILE --source S [--since DATE] [--dry-run]\n");
    return 2;
}

static int s_fail(PGconn *pg, PGresult *r, const char *what)
{
    const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    fprintf(stderr, "civibusctl: %s failed: %s", what, r ? PQresultErrorMessage(r) : PQerrorMessage(pg));
    if (st)
        fprintf(stderr, "(SQLSTATE %s)\n", st);
    PQclear(r);
    return 1;
}

/* "--name value" pairs: out[k] the value of names[k] (NULL-terminated; the
   last one given wins). False for an unknown name or a name without value. */
static bool s_options(int argc, char **argv, const char *const *names, const char **out)
{
    for (int i = 0; i < argc; i += 2) {
        size_t k = 0;
        while (names[k] && strcmp(argv[i], names[k]) != 0)
            k++;
        if (i + 1 >= argc || !names[k])
            return false;
        out[k] = argv[i + 1];
    }
    return true;
}

static int s_create(PGconn *pg, int argc, char **argv)
{
    static const char *const names[] = { "--role", "--service", "--label", "--days", NULL };
    const char *o[4] = { NULL };
    if (!s_options(argc, argv, names, o))
        return s_usage();
    const char *role = o[0], *service = o[1], *label = o[2], *days = o[3];
    cv_api_role_t r;
    int64_t ndays = 0;
    if (!cv_api_role_parse(role, &r)) {
        fprintf(stderr, "civibusctl: --role must be agent, supervisor or admin\n");
        return 2;
    }
    if ((r == CV_API_AGENT) != (service != NULL)) {
        fprintf(stderr, "civibusctl: --service is required for an agent, and only for an agent\n");
        return 2;
    }
    if (service && (!*service || strlen(service) > 200 || !cv_api_utf8_valid(service, strlen(service), true))) {
        fprintf(stderr, "civibusctl: --service: 1 to 200 characters of text\n");
        return 2;
    }
    if (days && !cv_api_parse_int(days, 1, 3650, &ndays)) {
        fprintf(stderr, "civibusctl: --days: 1 to 3650\n");
        return 2;
    }
    if (service) {
        const char *sv[1] = { service };
        PGresult *known = PQexecParams(pg, "SELECT EXISTS (SELECT 1 FROM service_categories WHERE service = $1)"
                                           " OR EXISTS (SELECT 1 FROM requests WHERE service = $1)",
                                       1, NULL, sv, NULL, NULL, 0);
        if (PQresultStatus(known) != PGRES_TUPLES_OK)
            return s_fail(pg, known, "token create");
        bool exists = strcmp(PQgetvalue(known, 0, 0), "t") == 0;
        PQclear(known);
        if (!exists) {
            fprintf(stderr, "civibusctl: no service '%s' in the timeline (a service exists once"
                            " the hub stored a record of it)\n", service);
            return 2;
        }
    }
    char token[CV_API_TOKEN_HEX + 1], hash[CV_API_TOKEN_HEX + 1];
    cv_api_token_new(token);
    cv_api_token_hash(token, hash);
    const char *v[5] = { hash, role, service, label, days };
    PGresult *res = PQexecParams(pg,
        "INSERT INTO api_tokens (token_hash, role, service, label, expires_at)"
        " VALUES ($1, $2, $3, $4, now() + make_interval(days => $5::int)) RETURNING id",
        5, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return s_fail(pg, res, "token create");
    printf("%s\n", token);
    fprintf(stderr, "token id %s (role %s%s%s)\n", PQgetvalue(res, 0, 0), role,
            service ? ", service " : "", service ? service : "");
    sodium_memzero(token, sizeof token);
    PQclear(res);
    return 0;
}

static int s_revoke(PGconn *pg, const char *id)
{
    int64_t n;
    if (!cv_api_parse_int(id, 1, INT64_MAX, &n))
        return s_usage();
    const char *v[1] = { id };
    PGresult *r = PQexecParams(pg, "UPDATE api_tokens SET revoked_at = now()"
                                   " WHERE id = $1::bigint AND revoked_at IS NULL",
                               1, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        return s_fail(pg, r, "token revoke");
    int done = atoi(PQcmdTuples(r));
    PQclear(r);
    if (!done) {
        fprintf(stderr, "civibusctl: no active token %s\n", id);
        return 1;
    }
    return 0;
}

static int s_list(PGconn *pg)
{
    PGresult *r = PQexec(pg, "SELECT id, role, coalesce(service, '-'), coalesce(label, '-'),"
                             " created_at, coalesce(expires_at::text, '-'),"
                             " CASE WHEN revoked_at IS NULL THEN 'active' ELSE 'revoked' END"
                             " FROM api_tokens ORDER BY id");
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return s_fail(pg, r, "token list");
    for (int i = 0; i < PQntuples(r); i++)
        printf("%s\t%s\t%s\t%s\t%s\t%s\t%s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1),
               PQgetvalue(r, i, 2), PQgetvalue(r, i, 3), PQgetvalue(r, i, 4), PQgetvalue(r, i, 5),
               PQgetvalue(r, i, 6));
    PQclear(r);
    return 0;
}

static int s_link_create(PGconn *pg, const cv_api_config_t *cfg, int argc, char **argv)
{
    int64_t cid = 0, days = cfg ? cfg->link_max_days : 0;
    for (int i = 0; i < argc; i++) {
        if (i + 1 >= argc)
            return s_usage();
        if (strcmp(argv[i], "--citizen") == 0 && cv_api_parse_int(argv[i + 1], 1, INT64_MAX, &cid))
            i++;
        else if (strcmp(argv[i], "--days") == 0 && cfg
                 && cv_api_parse_int(argv[i + 1], 1, cfg->link_max_days, &days))
            i++;
        else
            return s_usage();
    }
    if (!cfg || !cfg->link_key_file || !cid) {
        fprintf(stderr, "civibusctl: link create needs --config with links.secret_file, and --citizen"
                        " (--days at most links.max_days)\n");
        return 2;
    }
    unsigned char key[CV_API_LINK_KEY];
    char err[512];
    if (cv_api_link_key_load(cfg->link_key_file, key, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    char cs[24];
    snprintf(cs, sizeof cs, "%lld", (long long) cid);
    const char *v[1] = { cs };
    PGresult *r = PQexecParams(pg, "SELECT 1 FROM citizens WHERE id = $1::bigint", 1, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return s_fail(pg, r, "link create");
    bool found = PQntuples(r) == 1;
    PQclear(r);
    if (!found) {
        fprintf(stderr, "civibusctl: no citizen %s\n", cs);
        return 1;
    }
    char link[CV_API_LINK_MAX], id[33];
    cv_api_link_make(key, cid, (int64_t) time(NULL) + days * 86400, link, id);
    sodium_memzero(key, sizeof key);
    printf("/v1/me/%s\n", link);
    fprintf(stderr, "link id %s, valid %lld days\n", id, (long long) days);
    return 0;
}

static int s_link_revoke(PGconn *pg, const char *id)
{
    if (strlen(id) != 32 || strspn(id, "0123456789abcdef") != 32)
        return s_usage();
    const char *v[1] = { id };
    PGresult *r = PQexecParams(pg, "INSERT INTO api_revoked_links (link_id) VALUES ($1)"
                                   " ON CONFLICT DO NOTHING", 1, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        return s_fail(pg, r, "link revoke");
    PQclear(r);
    return 0;
}

/* Deletes a citizen's personal data (cv_citizen_erase, functions/erasure.sql);
   the timeline keeps its events. Prints the number of rows deleted. */
static int s_erase(PGconn *pg, const char *id)
{
    int64_t n;
    if (!cv_api_parse_int(id, 1, INT64_MAX, &n))
        return s_usage();
    const char *v[1] = { id };
    PGresult *r = PQexecParams(pg, "SELECT cv_citizen_erase($1::bigint)", 1, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return s_fail(pg, r, "citizen erase");
    printf("citizen %s: %s rows of personal data erased\n", id, PQgetvalue(r, 0, 0));
    PQclear(r);
    return 0;
}

/* Prints everything civibus keeps about a citizen (cv_citizen_export). */
static int s_export(PGconn *pg, const char *id)
{
    int64_t n;
    if (!cv_api_parse_int(id, 1, INT64_MAX, &n))
        return s_usage();
    const char *v[1] = { id };
    PGresult *r = PQexecParams(pg, "SELECT jsonb_pretty(cv_citizen_export($1::bigint))", 1, NULL, v, NULL,
                               NULL, 0);
    const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (PQresultStatus(r) != PGRES_TUPLES_OK && st && strcmp(st, "P0002") == 0) {
        fprintf(stderr, "civibusctl: citizen export: %s", PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY));
        fprintf(stderr, "\n");
        PQclear(r);
        return 3;
    }
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return s_fail(pg, r, "citizen export");
    printf("%s\n", PQgetvalue(r, 0, 0));
    PQclear(r);
    return 0;
}

/* The rules file of `retention run` without --rules: retention.yaml in the
   --config file's folder, else deploy/retention.yaml. */
static void s_rules_path(const char *config, char *out, size_t len)
{
    const char *slash = config ? strrchr(config, '/') : NULL;
    if (config && slash)
        snprintf(out, len, "%.*s/retention.yaml", (int) (slash - config), config);
    else if (config)
        snprintf(out, len, "retention.yaml");
    else
        snprintf(out, len, "deploy/retention.yaml");
}

/* Rectifies one field of one identity block (cv_citizen_rectify, actor
   "civibusctl"): --source S --key K --field F --value V [--document D].
   V is a JSON object when it begins with '{' (an address), else the text
   itself. Prints the rectification's id, never a value. Exit 2 for a value
   the function refuses (its reason on stderr), 3 for an unknown, merged or
   erased citizen or a pair it does not have. */
static int s_rectify(PGconn *pg, const char *id, int argc, char **argv)
{
    static const char *const names[] = { "--source", "--key", "--field", "--value", "--document", NULL };
    const char *o[5] = { NULL };
    int64_t n;
    if (!cv_api_parse_int(id, 1, INT64_MAX, &n) || !s_options(argc, argv, names, o))
        return s_usage();
    const char *source = o[0], *key = o[1], *field = o[2], *value = o[3], *document = o[4];
    if (!source || !key || !field || !value)
        return s_usage();
    json_t *j = value[0] == '{' ? json_loads(value, JSON_REJECT_DUPLICATES, NULL) : json_string(value);
    char *jv = json_is_object(j) || json_is_string(j) ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(j);
    if (!jv) {
        fprintf(stderr, "civibusctl: citizen rectify: --value is a text (UTF-8), or a JSON object for an address\n");
        return 2;
    }
    const char *v[6] = { id, source, key, field, jv, document };
    PGresult *r = PQexecParams(pg, "SELECT cv_citizen_rectify($1::bigint, $2, $3, $4, $5::jsonb, 'civibusctl', $6)",
                               6, NULL, v, NULL, NULL, 0);
    free(jv);
    const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (PQresultStatus(r) != PGRES_TUPLES_OK && st && (strcmp(st, "22000") == 0 || strcmp(st, "22023") == 0)) {
        fprintf(stderr, "civibusctl: citizen rectify: %s\n", PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY));
        int rc = strcmp(st, "22000") == 0 ? 2 : 3;     /* st lives in r */
        PQclear(r);
        return rc;
    }
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return s_fail(pg, r, "citizen rectify");
    printf("citizen %s: %s rectified (rectification %s)\n", id, field, PQgetvalue(r, 0, 0));
    PQclear(r);
    return 0;
}

/* Erases what is past its retention period (cv_retention_run); counts only. */
static int s_retention(PGconn *pg, const char *config, int argc, char **argv)
{
    const char *rules_file = NULL;
    bool dry = false;
    char path[4096];
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--dry-run") == 0)
            dry = true;
        else if (strcmp(argv[i], "--rules") == 0 && i + 1 < argc)
            rules_file = argv[++i];
        else
            return s_usage();
    }
    if (!rules_file) {
        s_rules_path(config, path, sizeof path);
        rules_file = path;
    }
    char err[1024];
    json_t *rules = cv_api_retention_load(rules_file, err, sizeof err);
    if (!rules) {
        fprintf(stderr, "civibusctl: retention: %s\n", err);
        return 2;
    }
    char *text = json_dumps(rules, JSON_COMPACT);
    json_decref(rules);
    const char *v[2] = { text, dry ? "true" : "false" };
    PGresult *r = PQexecParams(pg, "SELECT cv_retention_run($1::jsonb, $2::boolean)", 2, NULL, v, NULL, NULL, 0);
    free(text);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return s_fail(pg, r, "retention run");
    json_error_t e;
    json_t *c = json_loads(PQgetvalue(r, 0, 0), 0, &e);
    PQclear(r);
    printf("retention%s: %lld requests past retention, %lld source records erased,"
           " %lld command payloads erased, %lld citizens erased (%lld rows),"
           " %lld audit rows erased, %lld dead letters erased\n",
           dry ? " (dry run: nothing changed; would be)" : "",
           (long long) json_integer_value(json_object_get(c, "requests_expired")),
           (long long) json_integer_value(json_object_get(c, "records")),
           (long long) json_integer_value(json_object_get(c, "command_payloads")),
           (long long) json_integer_value(json_object_get(c, "citizens")),
           (long long) json_integer_value(json_object_get(c, "citizen_rows")),
           (long long) json_integer_value(json_object_get(c, "audit_rows")),
           (long long) json_integer_value(json_object_get(c, "dead_letters")));
    json_decref(c);
    return 0;
}

int main(int argc, char **argv)
{
    int i = 1;
    cv_api_config_t *cfg = NULL;
    const char *config_path = NULL;
    if (sodium_init() < 0)
        return 1;
    if (argc == 3 && strcmp(argv[1], "link") == 0 && strcmp(argv[2], "keygen") == 0) {
        unsigned char key[CV_API_LINK_KEY];
        char hex[2 * CV_API_LINK_KEY + 1];
        randombytes_buf(key, sizeof key);
        sodium_bin2hex(hex, sizeof hex, key, sizeof key);
        printf("%s\n", hex);
        sodium_memzero(key, sizeof key);
        sodium_memzero(hex, sizeof hex);
        return 0;
    }
    if (i + 1 < argc && strcmp(argv[i], "--config") == 0) {
        char err[1024];
        config_path = argv[i + 1];
        cfg = cv_api_config_load(config_path, err, sizeof err);
        if (!cfg) {
            fprintf(stderr, "%s\n", err);
            return 2;
        }
        i += 2;
    }
    if (argc - i >= 1 && strcmp(argv[i], "attachments") == 0) {
        int gc = cv_ctl_attachments_main(cfg, argc - i, argv + i);                  /* ctl_attachments.h */
        cv_api_config_destroy(&cfg);
        return gc;
    }
    if (argc - i >= 1 && (strcmp(argv[i], "dead-letters") == 0 || strcmp(argv[i], "remap") == 0)) {
        int fix = cv_ctl_fix_main(cfg ? cfg->conninfo : NULL, argc - i, argv + i);   /* ctl_fix.h */
        cv_api_config_destroy(&cfg);
        return fix;
    }
    if (argc - i < 2 || (strcmp(argv[i], "token") != 0 && strcmp(argv[i], "link") != 0
                         && strcmp(argv[i], "citizen") != 0 && strcmp(argv[i], "retention") != 0)) {
        cv_api_config_destroy(&cfg);
        return s_usage();
    }
    char *conninfo = cfg ? strdup(cfg->conninfo) : NULL;
    PGconn *pg = PQconnectdb(conninfo ? conninfo : "");
    free(conninfo);
    int rc;
    bool link = strcmp(argv[i], "link") == 0;
    if (PQstatus(pg) != CONNECTION_OK)
        rc = s_fail(pg, NULL, "connection");
    else if (strcmp(argv[i], "citizen") == 0)
        rc = argc - i >= 3 && strcmp(argv[i + 1], "rectify") == 0 ? s_rectify(pg, argv[i + 2], argc - i - 3, argv + i + 3)
             : argc - i != 3 ? s_usage()
             : strcmp(argv[i + 1], "erase") == 0 ? s_erase(pg, argv[i + 2])
             : strcmp(argv[i + 1], "export") == 0 ? s_export(pg, argv[i + 2]) : s_usage();
    else if (strcmp(argv[i], "retention") == 0)
        rc = strcmp(argv[i + 1], "run") == 0 ? s_retention(pg, config_path, argc - i - 2, argv + i + 2)
                                             : s_usage();
    else if (link && strcmp(argv[i + 1], "create") == 0)
        rc = s_link_create(pg, cfg, argc - i - 2, argv + i + 2);
    else if (link && strcmp(argv[i + 1], "revoke") == 0 && argc - i == 3)
        rc = s_link_revoke(pg, argv[i + 2]);
    else if (link)
        rc = s_usage();
    else if (strcmp(argv[i + 1], "create") == 0)
        rc = s_create(pg, argc - i - 2, argv + i + 2);
    else if (strcmp(argv[i + 1], "revoke") == 0 && argc - i == 3)
        rc = s_revoke(pg, argv[i + 2]);
    else if (strcmp(argv[i + 1], "list") == 0 && argc - i == 2)
        rc = s_list(pg);
    else
        rc = s_usage();
    PQfinish(pg);
    cv_api_config_destroy(&cfg);
    return rc;
}
