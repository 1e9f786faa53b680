/*  api_link — signed citizen links: "all my requests" without an account.

    A link is  <citizen_id>.<expires (unix s)>.<link id: 32 hex>.<HMAC: 64 hex>
    where the HMAC-SHA256 (libsodium) over "civibus-link-v1:" and the first
    three parts uses the secret key of links.secret_file (64 hex digits,
    `civibusctl link keygen`). It cannot be forged or altered without the
    key, it expires, and it can be revoked before that by its link id
    (api_revoked_links, `civibusctl link revoke`). Links are made by
    `civibusctl link create` (an agent hands or mails it to the citizen). */
#ifndef CV_API_LINK_H
#define CV_API_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CV_API_LINK_KEY 32
#define CV_API_LINK_MAX 160

/* Reads 64 hex digits (and optional white space) from path. */
int cv_api_link_key_load(const char *path, unsigned char key[CV_API_LINK_KEY], char *err, size_t errlen);

/* A new link for citizen_id valid until `expires`; out holds CV_API_LINK_MAX
   bytes; link_id (33 bytes) receives its id. */
void cv_api_link_make(const unsigned char key[CV_API_LINK_KEY], int64_t citizen_id, int64_t expires,
                      char out[CV_API_LINK_MAX], char link_id[33]);

/* 0 valid (citizen id and link id out), -1 malformed or bad signature,
   -2 expired at `now`. Constant-time signature comparison. */
int cv_api_link_check(const unsigned char key[CV_API_LINK_KEY], const char *link, int64_t now,
                      int64_t *citizen_id, char link_id[33]);

#endif
