/*  cv_commands_int — private to cv_commands.c, cv_commands_template.c and
    cv_commands_journal.c, not for other code: the structures, the
    constants more than one of them uses, and the internal functions they
    share. Shared functions are named cv_commands__* (double underscore:
    internal). The design is explained at the top of cv_commands.c (the
    list, HTTP), cv_commands_journal.c (the journal) and
    cv_commands_template.c (templates). */
#ifndef CV_COMMANDS_INT_H
#define CV_COMMANDS_INT_H

#include "cv_commands.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define COMP            "commands"
#define JOURNAL         "commands.journal"

typedef enum { PH_SEND, PH_LOOKUP } phase_t;

typedef struct cmd {
    struct cmd *next;
    uint64_t id;
    char *kind, *key;
    json_t *payload;                   /* NULL once finished, or when not an object */
    const cv_command_kind_t *conf;     /* NULL: a kind this adapter does not know */
    cv_command_state_t state;
    int attempts;
    bool uncertain;                    /* an attempt may have reached the software */
    bool dup;                          /* sent again while uncertain, without protection */
    bool pending_try;                  /* journal: a "try" without its "tried" */
    bool found_by_lookup;
    phase_t phase;
    int64_t due;                       /* monotonic ms of the next attempt */
    int backoff_ms;
    /* the transfer in flight */
    CURL *easy;
    struct curl_slist *headers;
    char *answer;
    size_t answer_len;
    /* the last answer, the result */
    int http_status;
    char error[200];
    bool done;
    json_t *detail;
    int64_t finished_at;               /* wall-clock seconds */
    int64_t result_sent_at;            /* monotonic ms; 0: not sent in this session */
} cmd_t;

struct cv_commands {
    const cv_commands_conf_t *conf;
    char *name;
    int dir_fd, fd;
    uint64_t journal_bytes;
    CURLM *multi;
    cmd_t *head;
    size_t inflight;
    cv_commands_send_fn *send;
    void *send_arg;
    bool failed;                       /* the journal cannot be written */
};

/* cv_commands.c: the list */
cmd_t *cv_commands__find_key(const cv_commands_t *self, const char *key);
cmd_t *cv_commands__find_id(const cv_commands_t *self, uint64_t id);
cmd_t *cv_commands__add(cv_commands_t *self, uint64_t id, const char *kind, const char *key);
void cv_commands__free(cmd_t *c);

/* cv_commands_template.c: filling in a template */
char *cv_commands__expand(const char *tpl, const cmd_t *c, bool url, char *why, size_t wlen);
char *cv_commands__payload_text(const json_t *payload, const char *path, size_t len);

/* cv_commands_journal.c: writing lines, reading and rewriting the journal */
int cv_commands__journal(cv_commands_t *self, json_t *line, bool sync);
json_t *cv_commands__start_line(const cmd_t *c);
json_t *cv_commands__done_line(const cmd_t *c);
int cv_commands__read_journal(cv_commands_t *self, char *err, size_t errlen);
int cv_commands__rewrite(cv_commands_t *self);

#endif
