/*  cv_commands_journal — the journal of cv_commands (see cv_commands.c):
    appending lines, and reading and rewriting the file on open and
    when it grows.

    The journal (dir/commands.journal) is a file of JSON lines, appended:

        {"j":"start","id":7,"kind":"k","key":"cvb-…","payload":{…},"t":…}  synced
        {"j":"try","id":7,"n":2,"dup":false}    before a request that may
                                                reach the software, synced
        {"j":"tried","id":7,"n":2,"uncertain":true}   after any attempt
        {"j":"clear","id":7}                    a lookup found nothing
        {"j":"done","id":7,"kind":…,"key":…,"outcome":"done","detail":{…},"t":…}  synced
        {"j":"acked","id":7}                    the hub recorded the result
        {"j":"state","id":7,"n":2,"uncertain":…,"dup":…}  (written by compaction)

    Reading it back, a "try" without its "tried" means the process died
    while a request was out: the command is uncertain. Only "start", "try"
    and "done" must be durable: losing a "tried", "clear" or "acked" only
    makes the module more careful (a lookup, a flag) or resends a result
    the hub recognises. A torn last line is ignored. On open, and when the
    file passes 4 MiB, it is rewritten from memory (temp file, fdatasync,
    rename): finished commands lose their payload, old acknowledged ones
    disappear. */
#include "cv_commands_int.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cv_log.h"

#define JOURNAL_NEW     "commands.journal.new"

/* ---- the journal -------------------------------------------------------------- */

static int s_write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        data += n;
        len -= (size_t) n;
    }
    return 0;
}

static int s_line_to(int fd, json_t *line, uint64_t *bytes)
{
    char *text = line ? json_dumps(line, JSON_COMPACT) : NULL;
    json_decref(line);
    if (!text)
        return -1;
    size_t len = strlen(text);
    char *grown = realloc(text, len + 2);    /* one write per line: a crash tears at most the last */
    if (!grown) {
        free(text);
        return -1;
    }
    grown[len] = '\n';
    int rc = s_write_all(fd, grown, len + 1);
    free(grown);
    if (rc == 0 && bytes)
        *bytes += len + 1;
    return rc;
}

/* Appends one line (stolen); synced when asked. -1 is fatal for the module. */
int cv_commands__journal(cv_commands_t *self, json_t *line, bool sync)
{
    if (self->failed) {
        json_decref(line);
        return -1;
    }
    if (s_line_to(self->fd, line, &self->journal_bytes) < 0 || (sync && fdatasync(self->fd) < 0)) {
        cv_error(COMP, "%s: cannot write %s: %s; no more commands are performed", self->name, JOURNAL,
                 strerror(errno));
        self->failed = true;
        return -1;
    }
    return 0;
}

json_t *cv_commands__start_line(const cmd_t *c)
{
    return json_pack("{s:s, s:I, s:s, s:s, s:O?, s:I}", "j", "start", "id", (json_int_t) c->id,
                     "kind", c->kind, "key", c->key, "payload", c->payload, "t", (json_int_t) time(NULL));
}

json_t *cv_commands__done_line(const cmd_t *c)
{
    return json_pack("{s:s, s:I, s:s, s:s, s:s, s:O, s:I}", "j", "done", "id", (json_int_t) c->id,
                     "kind", c->kind, "key", c->key, "outcome", c->done ? "done" : "failed",
                     "detail", c->detail, "t", (json_int_t) c->finished_at);
}

/* ---- reading and rewriting the journal ---------------------------------------------- */

static void s_replay_line(cv_commands_t *self, json_t *line)
{
    const char *j = json_string_value(json_object_get(line, "j"));
    uint64_t id = (uint64_t) json_integer_value(json_object_get(line, "id"));
    const char *kind = json_string_value(json_object_get(line, "kind"));
    const char *key = json_string_value(json_object_get(line, "key"));
    if (!j)
        return;
    if (strcmp(j, "start") == 0 || strcmp(j, "done") == 0) {
        if (!kind || !key)
            return;
        cmd_t *c = cv_commands__find_key(self, key);
        if (!c && !(c = cv_commands__add(self, id, kind, key)))
            return;
        if (strcmp(j, "start") == 0) {
            json_t *payload = json_object_get(line, "payload");
            json_decref(c->payload);
            c->payload = json_is_object(payload) ? json_incref(payload) : NULL;
            return;
        }
        const char *outcome = json_string_value(json_object_get(line, "outcome"));
        json_t *detail = json_object_get(line, "detail");
        c->state = CV_COMMAND_FINISHED;
        c->done = outcome && strcmp(outcome, "done") == 0;
        json_decref(c->detail);
        c->detail = json_is_object(detail) ? json_incref(detail) : json_object();
        c->finished_at = json_integer_value(json_object_get(line, "t"));
        c->attempts = (int) json_integer_value(json_object_get(c->detail, "attempts"));
        c->dup = json_is_true(json_object_get(c->detail, "possible_duplicate"));
        json_decref(c->payload);
        c->payload = NULL;
        return;
    }
    cmd_t *c = cv_commands__find_id(self, id);
    if (!c)
        return;
    if (strcmp(j, "acked") == 0) {
        if (c->state == CV_COMMAND_FINISHED)
            c->state = CV_COMMAND_ACKED;
        return;
    }
    if (c->state != CV_COMMAND_RUNNING)
        return;
    int n = (int) json_integer_value(json_object_get(line, "n"));
    if (n > c->attempts)
        c->attempts = n;
    if (strcmp(j, "try") == 0) {
        c->pending_try = true;
        c->dup |= json_is_true(json_object_get(line, "dup"));
    }
    else if (strcmp(j, "tried") == 0) {
        c->pending_try = false;
        c->uncertain |= json_is_true(json_object_get(line, "uncertain"));
    }
    else if (strcmp(j, "clear") == 0)
        c->uncertain = false;
    else if (strcmp(j, "state") == 0) {
        c->uncertain = json_is_true(json_object_get(line, "uncertain"));
        c->dup = json_is_true(json_object_get(line, "dup"));
    }
}

int cv_commands__read_journal(cv_commands_t *self, char *err, size_t errlen)
{
    int fd = openat(self->dir_fd, JOURNAL, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : (snprintf(err, errlen, "%s: %s", JOURNAL, strerror(errno)), -1);
    struct stat st;
    char *text = NULL;
    size_t len = 0;
    if (fstat(fd, &st) == 0 && st.st_size > 0 && (text = malloc((size_t) st.st_size + 1)))
        while (len < (size_t) st.st_size) {
            ssize_t n = read(fd, text + len, (size_t) st.st_size - len);
            if (n <= 0)
                break;
            len += (size_t) n;
        }
    close(fd);
    if (st.st_size > 0 && (!text || len != (size_t) st.st_size)) {
        free(text);
        snprintf(err, errlen, "%s: cannot read it", JOURNAL);
        return -1;
    }
    size_t bad = 0;
    for (size_t at = 0; at < len;) {
        char *nl = memchr(text + at, '\n', len - at);
        if (!nl) {
            cv_warn(COMP, "%s: %s: torn last line ignored", self->name, JOURNAL);
            break;
        }
        json_t *line = json_loadb(text + at, (size_t) (nl - text - at), 0, NULL);
        if (json_is_object(line))
            s_replay_line(self, line);
        else
            bad++;
        json_decref(line);
        at = (size_t) (nl - text) + 1;
    }
    free(text);
    if (bad)
        cv_warn(COMP, "%s: %s: %zu unreadable line(s) skipped", self->name, JOURNAL, bad);
    return 0;
}

/* Rewrites the journal from memory; drops acknowledged results older than
   keep_days. */
int cv_commands__rewrite(cv_commands_t *self)
{
    int64_t horizon = (int64_t) time(NULL) - (int64_t) self->conf->keep_days * 86400;
    for (cmd_t **p = &self->head; *p;) {
        cmd_t *c = *p;
        if (c->state == CV_COMMAND_ACKED && c->finished_at < horizon) {
            *p = c->next;
            cv_commands__free(c);
        }
        else
            p = &c->next;
    }
    int fd = openat(self->dir_fd, JOURNAL_NEW, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    uint64_t bytes = 0;
    int rc = fd < 0 ? -1 : 0;
    for (cmd_t *c = self->head; rc == 0 && c; c = c->next) {
        if (c->state == CV_COMMAND_RUNNING) {
            rc = s_line_to(fd, cv_commands__start_line(c), &bytes);
            if (rc == 0)
                rc = s_line_to(fd, json_pack("{s:s, s:I, s:i, s:b, s:b}", "j", "state", "id", (json_int_t) c->id,
                                             "n", c->attempts, "uncertain", c->uncertain || c->pending_try,
                                             "dup", c->dup), &bytes);
            continue;
        }
        rc = s_line_to(fd, cv_commands__done_line(c), &bytes);
        if (rc == 0 && c->state == CV_COMMAND_ACKED)
            rc = s_line_to(fd, json_pack("{s:s, s:I}", "j", "acked", "id", (json_int_t) c->id), &bytes);
    }
    if (rc == 0 && (fdatasync(fd) < 0 || renameat(self->dir_fd, JOURNAL_NEW, self->dir_fd, JOURNAL) < 0
                    || fsync(self->dir_fd) < 0))
        rc = -1;
    if (rc < 0) {
        cv_error(COMP, "%s: cannot rewrite %s: %s", self->name, JOURNAL, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    if (self->fd >= 0)
        close(self->fd);
    self->fd = openat(self->dir_fd, JOURNAL, O_WRONLY | O_APPEND | O_CLOEXEC);
    self->journal_bytes = bytes;
    return self->fd < 0 ? -1 : 0;
}
