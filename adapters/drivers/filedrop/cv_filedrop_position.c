/*  driver_filedrop_position — the file-drop driver's position, as kept in
    the adapter's spool (cv_client_set_position, at most 4 KiB).

    It lists the files the driver has started and not yet moved away: for
    each, its name, the first digits of its content's SHA-256 (a new file
    under an old name is not mistaken for the old one), how many records
    were submitted out of how many, and the spool ids of the first and last
    of them (to know when the hub has settled them all):

      {"filedrop":1,"files":[{"name":"dossiers-20240314.csv","sha":"3f2a...",
        "done":1200,"total":5000,"first":8801,"last":10000}]}

    A file with done < total is the one being read: a restarted driver
    resumes it at record done + 1. The others wait for their records to be
    settled before they move to done/. */
#include "cv_filedrop.h"

#include <stdlib.h>
#include <string.h>

char *cv_filedrop_position_encode(const cv_filedrop_entry_t *files, size_t n)
{
    json_t *root = json_object(), *list = json_array();
    if (!root || !list || json_object_set_new(root, "filedrop", json_integer(1)) < 0
        || json_object_set(root, "files", list) < 0) {
        json_decref(root);
        json_decref(list);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const cv_filedrop_entry_t *e = &files[i];
        json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "name", e->name, "sha", e->sha,
                              "done", (json_int_t) e->done, "total", (json_int_t) e->total,
                              "first", (json_int_t) e->first, "last", (json_int_t) e->last);
        if (!o || json_array_append_new(list, o) < 0) {
            json_decref(root);
            json_decref(list);
            return NULL;
        }
    }
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(list);
    json_decref(root);
    return text;
}

void cv_filedrop_position_entries_free(cv_filedrop_entry_t **files, size_t *n)
{
    for (size_t i = 0; *files && i < *n; i++)
        free((*files)[i].name);
    free(*files);
    *files = NULL;
    *n = 0;
}

int cv_filedrop_position_decode(const char *text, cv_filedrop_entry_t **files, size_t *n)
{
    *files = NULL;
    *n = 0;
    json_t *root = json_loads(text, 0, NULL), *list;
    if (!root || json_integer_value(json_object_get(root, "filedrop")) != 1
        || !json_is_array(list = json_object_get(root, "files"))) {
        json_decref(root);
        return -1;
    }
    size_t count = json_array_size(list);
    if (!(*files = calloc(count ? count : 1, sizeof **files))) {
        json_decref(root);
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        const char *name, *sha;
        json_int_t done, total, first, last;
        if (json_unpack(json_array_get(list, i), "{s:s, s:s, s:I, s:I, s:I, s:I}", "name", &name, "sha", &sha,
                        "done", &done, "total", &total, "first", &first, "last", &last) < 0
            || strlen(sha) != CV_FILEDROP_SHA_HEX || done < 0 || total < -1 || first < 0 || last < first
            || strchr(name, '/') || !name[0]) {
            cv_filedrop_position_entries_free(files, n);
            json_decref(root);
            return -1;
        }
        cv_filedrop_entry_t *e = &(*files)[(*n)++];
        if (!(e->name = strdup(name))) {
            cv_filedrop_position_entries_free(files, n);
            json_decref(root);
            return -1;
        }
        memcpy(e->sha, sha, CV_FILEDROP_SHA_HEX + 1);
        e->done = (long) done;
        e->total = (long) total;
        e->first = (uint64_t) first;
        e->last = (uint64_t) last;
        e->checked = e->first;
    }
    json_decref(root);
    return 0;
}
