/*  cv_proto — see cv_proto.h and docs/protocol.md. */
#include "cv_proto.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *s_names[] = {
    [CV_CMD_INVALID] = "INVALID",
    [CV_CMD_HELLO] = "HELLO", [CV_CMD_EVENT] = "EVENT", [CV_CMD_PING] = "PING",
    [CV_CMD_BYE] = "BYE", [CV_CMD_WELCOME] = "WELCOME", [CV_CMD_ACK] = "ACK",
    [CV_CMD_NACK] = "NACK", [CV_CMD_PONG] = "PONG", [CV_CMD_ERROR] = "ERROR",
    [CV_CMD_COMMAND] = "COMMAND", [CV_CMD_RESULT] = "RESULT", [CV_CMD_RESULT_ACK] = "RESULT_ACK",
    [CV_CMD_RESULT_NACK] = "RESULT_NACK",
};

cv_cmd_t cv_proto_cmd(const void *data, size_t len)
{
    for (int c = CV_CMD_HELLO; c <= CV_CMD_LAST; c++)
        if (strlen(s_names[c]) == len && memcmp(s_names[c], data, len) == 0)
            return (cv_cmd_t) c;
    return CV_CMD_INVALID;
}

const char *cv_proto_cmd_name(cv_cmd_t cmd)
{
    return (cmd >= CV_CMD_INVALID && cmd <= CV_CMD_LAST) ? s_names[cmd] : "INVALID";
}

bool cv_proto_is_session_id(const void *data, size_t len)
{
    const unsigned char *p = data;
    if (!p || len != CV_SESSION_ID_LEN)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f') || (p[i] >= 'A' && p[i] <= 'F')))
            return false;
    return true;
}

int cv_proto_parse_u64(const void *data, size_t len, uint64_t *out)
{
    const unsigned char *p = data;
    if (len == 0 || len > 20)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        uint64_t d = (uint64_t) (p[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}
