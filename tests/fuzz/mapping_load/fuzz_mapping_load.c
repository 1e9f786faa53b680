/*  fuzz_mapping_load — a source's mapping file (hub/map/cv_mapping_load.c:
    rules, field specs, value maps, date formats and zones, durations,
    `when` lists) through cv_mapping_load, the path it takes, then a few
    fixed records through what it compiled (cv_mapping_apply), so that a
    mapping the loader accepts is also one the mapper can run.

    Input: the mapping's text (cv_mapping_load is given no source name, so
    the file's own `source:` counts). Checked:
      - a failure is "file:line: reason";
      - a loaded mapping has a valid source name (1-63 of a-z 0-9 _ -);
      - applying it to any record gives either a valid canonical event
        (cv_model_validate) or a failure with a reason. */
#include "fuzz_util.h"

#include <jansson.h>

#include "map/cv_mapping.h"
#include "map/cv_model.h"

static json_t *s_records[4];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    const char *texts[] = {
        "{\"numero\": \"EC-1\", \"version\": 2, \"type_acte\": \"naissance\", \"statut\": \"EN_COURS\","
        " \"maj\": \"2024-03-31T03:05:00+02:00\", \"date_limite\": \"15/04/2024\", \"objet\": \"x\","
        " \"demandeur\": {\"id_usager\": \"U-1\", \"nom_usage\": \"DUPONT\", \"date_naissance\": \"12/05/1971\","
        " \"courriel\": \"A@B.FR\"}}",
        "{\"ref\": \"R\", \"motif\": \"naissance\", \"etat\": \"received\", \"quand\": \"2024-01-01\","
        " \"mail\": \"m\", \"items\": [{\"code\": \"A\"}, {\"code\": 42}], \"limite\": \"20240715 120000 +0000\"}",
        "{\"type\": \"CERT\", \"etat\": \"CONTROLE\", \"date_etat\": \"04/03/2024 10:00\","
        " \"dossier\": {\"numero\": \"CU1\"}, \"id\": \"A\", \"date\": \"2024-01-01T10:00:00\"}",
        "{}",
    };
    for (size_t i = 0; i < 4; i++)
        if (!(s_records[i] = json_loads(texts[i], 0, NULL)))
            abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    if (!path)
        return 0;
    char err[1024] = "";
    cv_mapping_t *m = cv_mapping_load(path, NULL, err, sizeof err);
    if (!m) {
        fuzz_check(fuzz_error_form(err), "error not file:line: reason: %s", err);
        return 0;
    }
    const char *src = cv_mapping_source(m);
    size_t n = strlen(src);
    fuzz_check(n >= 1 && n <= 63 && strspn(src, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n,
               "source name '%s'", src);
    for (size_t i = 0; i < 4; i++) {
        json_t *event = NULL;
        char reason[48] = "", detail[256] = "", why[256];
        if (cv_mapping_apply(m, s_records[i], &event, reason, sizeof reason, detail, sizeof detail) == 0)
            fuzz_check(cv_model_validate(event, why, sizeof why) == 0, "invalid event: %s", why);
        else
            fuzz_check(reason[0] && !event, "a failure without a reason");
        json_decref(event);
    }
    cv_mapping_destroy(&m);
    return 0;
}
