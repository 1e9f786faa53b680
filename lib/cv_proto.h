/*  cv_proto — the CIVIBUS/1 adapter protocol: command names, numbers, ACK ranges.

    docs/protocol.md is the specification; this module holds the pieces both
    the hub and the adapters use: naming commands, parsing the decimal
    numbers carried in frames, and formatting/parsing ACK range lists.
    Messages themselves are CZMQ zmsg_t: frame 0 is the command. */
#ifndef CV_PROTO_H
#define CV_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CV_PROTO_VERSION "CIVIBUS/1"
#define CV_SESSION_ID_LEN 32

typedef enum {
    CV_CMD_INVALID = 0,
    CV_CMD_HELLO, CV_CMD_EVENT, CV_CMD_PING, CV_CMD_BYE,
    CV_CMD_WELCOME, CV_CMD_ACK, CV_CMD_NACK, CV_CMD_PONG, CV_CMD_ERROR,
    /* outbound commands (docs/commands.md) */
    CV_CMD_COMMAND, CV_CMD_RESULT, CV_CMD_RESULT_ACK, CV_CMD_RESULT_NACK,
    CV_CMD_LAST = CV_CMD_RESULT_NACK
} cv_cmd_t;

/* Command from the bytes of frame 0 (not NUL-terminated); CV_CMD_INVALID if unknown. */
cv_cmd_t cv_proto_cmd(const void *data, size_t len);
const char *cv_proto_cmd_name(cv_cmd_t cmd);

/* Strict unsigned decimal (no sign, no spaces, no leading '+', fits u64). */
int cv_proto_parse_u64(const void *data, size_t len, uint64_t *out);

/* A set of sequence numbers as sorted, non-overlapping inclusive ranges.
   Adding numbers in increasing order (the common case) is O(1). */
typedef struct { uint64_t lo, hi; } cv_range_t;
typedef struct {
    cv_range_t *v;
    size_t n, cap;
} cv_rangeset_t;

void cv_rangeset_init(cv_rangeset_t *self);
void cv_rangeset_clear(cv_rangeset_t *self);    /* empties, keeps memory */
void cv_rangeset_free(cv_rangeset_t *self);
int  cv_rangeset_add(cv_rangeset_t *self, uint64_t seq);

/* Formats ranges [from, from+count) of the set as "1-3,5,7-9". Returns the
   number of ranges written (stops before overflowing buf, always
   NUL-terminates); the caller sends several messages when the set does not
   fit in one. */
size_t cv_ranges_format(const cv_rangeset_t *set, size_t from, char *buf, size_t len);

/* Parses "1-3,5" calling fn(lo, hi, arg) per range; -1 if malformed
   (empty, descending, overlapping, not numbers). */
int cv_ranges_parse(const char *text, size_t len,
                    void (*fn)(uint64_t lo, uint64_t hi, void *arg), void *arg);

#endif
