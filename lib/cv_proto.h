/*  cv_proto — the CIVIBUS/1 adapter protocol: command names, numbers, ACK ranges.

    docs/protocol.md is the specification; this module holds the pieces both
    the hub and the adapters use: naming commands, parsing the decimal
    numbers carried in frames, recognising session ids; ACK range lists are
    cv_rangeset.h's. Messages themselves are CZMQ zmsg_t: frame 0 is the
    command.

    ERROR's frames: code, text, then what it answers — the command, the
    session id that message named and its number (an EVENT's sequence, a
    RESULT's command id); each of the three empty when not known or not
    readable. A client reading only code and text keeps working. */
#ifndef CV_PROTO_H
#define CV_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cv_rangeset.h"

#define CV_PROTO_VERSION "CIVIBUS/1"
/* Version 1.1 (docs/protocol.md "Versions") adds one frame to ACK: what
   the ranges are, `stored`, `duplicate` or `id_reused`. A hub speaks both;
   the C runtime asks for 1.1 and falls back to 1 when refused. */
#define CV_PROTO_VERSION_1_1 "CIVIBUS/1.1"
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

/* True when the bytes are a session id: exactly CV_SESSION_ID_LEN
   hexadecimal digits (the hub writes lower case). */
bool cv_proto_is_session_id(const void *data, size_t len);

/* Strict unsigned decimal (no sign, no spaces, no leading '+', fits u64). */
int cv_proto_parse_u64(const void *data, size_t len, uint64_t *out);

#endif
