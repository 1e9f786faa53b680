/*  store — the hub's PostgreSQL writer: one batch, one transaction.

    The ingest loop hands the store thread a batch of items; the store
    writes them in one transaction and fills in each item's outcome. Only
    after cv_store_write_batch returned 0 (COMMIT succeeded) does the hub
    send ACKs and NACKs for those items.

    One transaction holds, for a batch:
      - the new rows of the append-only `events` timeline (deduplicated on
        (source, event_id): an identical re-send is a DUPLICATE, the same id
        with another content hash is ID_REUSED and gets a dead letter);
      - the personal data: `source_records` (latest raw record, summary) and
        `citizens` / `citizen_sources` (identity block);
      - the `requests` projection and `request_sources` links;
      - `dead_letters` rows, for items the hub already rejected (kind DEAD)
        and for events PostgreSQL refused with a data error (SQLSTATE class
        22 or 23 other than the dedupe conflict), which are isolated so
        that they alone are dead-lettered.
    A lost connection or a COMMIT of unknown outcome returns -1: nothing may
    be acknowledged; the caller reconnects and writes the same batch again,
    which dedupe makes safe.

    The store is single-writer: events.id is assigned in commit order
    because only one store connection inserts events at a time. */
#ifndef CV_STORE_H
#define CV_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cv_store cv_store_t;

/* CV_ITEM_RESULT: an adapter's result for an outbound command
   (docs/commands.md). `record` is {"command": id, "outcome": "done" |
   "failed", "detail": {...}}, `raw` the detail bytes as received,
   `content_hash` the hash of `record`. The store has cv_commander.c record it
   in the batch's transaction: STORED (now recorded; `event` is then set,
   owned by the item, when a command_result event was appended), DUPLICATE
   (recorded before) or DEAD_LETTERED (reason unknown_command). */
typedef enum { CV_ITEM_EVENT = 0, CV_ITEM_DEAD, CV_ITEM_RESULT } cv_item_kind_t;

#define CV_STORE_KEY_MAX 216      /* a source_citizen_id (<= 200 bytes) or "sha256:" + 64 hex */

typedef enum {
    CV_OUT_NONE = 0,
    CV_OUT_STORED,          /* new event committed                     -> ACK  */
    CV_OUT_DUPLICATE,       /* same (source,event_id,hash) already there -> ACK */
    CV_OUT_ID_REUSED,       /* same id, other content: dead letter     -> ACK  */
    CV_OUT_DEAD_LETTERED    /* rejected for good, dead letter committed -> NACK */
} cv_outcome_t;

typedef struct {
    /* inputs (pointers are borrowed; they stay valid during the call) */
    cv_item_kind_t kind;
    char source[64];
    json_t *event;           /* canonical event (kind EVENT), see schemas/v2 */
    json_t *record;          /* raw record as parsed, NULL if not parseable */
    const char *raw;         /* raw bytes as received */
    size_t raw_len;
    char content_hash[65];   /* sha256 hex of the raw record (canonical JSON) */
    char reason[48];         /* kind DEAD: reason code; out: reason if the store dead-letters */
    char detail[256];        /* non-personal detail for the dead letter */
    /* optional, filled by cv_store_item_prepare off the writer thread */
    bool prepared;
    char *citizen_json;      /* compact JSON text, or NULL (absent/null); owned */
    size_t citizen_json_len;
    char *fields;            /* the event's fields from event_id to extra, as cv_ingest's
                                array elements, ready to copy; owned */
    char citizen_key[CV_STORE_KEY_MAX];  /* "" when the event has no citizen block */
    /* outputs */
    cv_outcome_t outcome;
    int64_t event_seq;       /* events.id when STORED or DUPLICATE, else 0 */
    int64_t request_id;      /* requests.id when STORED or DUPLICATE */
    char tracking_code[16];  /* the request's public tracking code */
    bool transition_flagged; /* status change outside the lifecycle */
} cv_store_item_t;

/* Serialises what the store would otherwise serialise on its own thread
   (the event's fields as cv_ingest's array elements, the citizen block as
   JSON text, the citizen key), so the ingest loop does it while PostgreSQL
   works on the previous batch: the writer thread then only copies. For an
   EVENT item with its event; -1 when out of memory (the store then does it
   itself). cv_store_item_release frees it. */
int cv_store_item_prepare(cv_store_item_t *it);
void cv_store_item_release(cv_store_item_t *it);

/* Connects, refuses a server whose fsync or synchronous_commit is off, and
   applies pending migrations from sql_dir (files NNN_name.sql, in order,
   each in its own transaction, recorded in schema_migrations). Returns NULL
   with a reason in err on failure. */
cv_store_t *cv_store_new(const char *conninfo, const char *sql_dir, char *err, size_t errlen);
void cv_store_destroy(cv_store_t **self_p);

/* 0: committed, every item has an outcome. -1: failed with no trusted
   outcome (connection lost, COMMIT unknown): call cv_store_reconnect until
   it returns 0, then write the same batch again. */
int cv_store_write_batch(cv_store_t *self, cv_store_item_t *items, size_t n);
int cv_store_reconnect(cv_store_t *self);

/* Remembers the stored identity block of up to `pairs` (source, source
   citizen id) pairs in a bounded cache (cv_idcache.h), so an unchanged block
   skips identity resolution; 0 turns the cache off (the default). -1 when
   out of memory. */
int cv_store_set_identity_cache(cv_store_t *self, size_t pairs);

/* The identity limits of docs/identity.md, set on this store's session (and
   again after every reconnection): a value held by more than max_shared
   holders stops linking; new pairs of one batch that would join into a
   component larger than max_absorb stay apart. -1 on a database error. */
int cv_store_set_identity_limits(cv_store_t *self, int max_shared, int max_absorb);

/* Events sent without their block, the cache knowing it (hits), or with it
   (misses). Safe from another thread than the store's. */
void cv_store_identity_cache_stats(const cv_store_t *self, uint64_t *hits, uint64_t *misses);

/* Makes every store of the process empty its cache before its next batch
   (any thread): identity blocks were erased (cv_citizen_erase). */
void cv_store_forget_identities(void);

/* Last error text (no personal data), for logs. */
const char *cv_store_error(const cv_store_t *self);

/* One statement of start-up on a short connection of its own (cv_store_once.c):
   `sql` with one text parameter (may be NULL), its first value into `value`
   (may be NULL). The configuration a stage hands to its SQL functions
   (deadlines, routing) goes this way, before the store's threads start.
   0, or -1 with "WHAT: ..." in err (the SQLSTATE, never a value). */
int cv_store_once(const char *conninfo, const char *sql, const char *param, const char *what, char *value,
                  size_t valuelen, char *err, size_t errlen);

#endif
