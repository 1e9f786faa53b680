/*  api_session — the console's sign-in: an agent's token exchanged once for
    a session cookie (docs/web.md, "Signing in").

    POST /v1/sessions {"token": "…"} checks the token as a bearer would be
    checked, draws a 256-bit session id, stores its SHA-256 in api_sessions
    (029_web_sessions.sql) and answers Set-Cookie: civibus_session=<id>;
    HttpOnly; SameSite=Strict; Path=/ (and Secure under TLS) with the
    session's CSRF token. Afterwards a request with that cookie and no
    Authorization header is the token's principal (cv_api_authenticate asks
    cv_api_session_authenticate), as long as the session is neither idle
    past web.session_idle_min nor older than web.session_max_hours, and its
    token is neither revoked nor expired — checked at every request. Every
    request but GET and HEAD must carry X-CSRF-Token: the session's CSRF
    token, which is derived from the session id (SHA-256 of a label and the
    id), never stored; SameSite=Strict already keeps other sites' requests
    cookieless, the token is the second lock. POST /v1/session/logout
    deletes the session and clears the cookie.

    The session does not know how its agent proved who they are: an OpenID
    Connect sign-in would be one more handler creating the same row (method
    'oidc') and setting the same cookie; the pages would not change. */
#ifndef CV_API_SESSION_H
#define CV_API_SESSION_H

#include "api_access.h"
#include "api_server.h"

#define CV_API_SESSION_COOKIE "civibus_session"
#define CV_API_SESSION_ID_HEX 64

/* The session id of the request's Cookie header into out (64 lower-case hex
   digits); false when it has none. */
bool cv_api_session_cookie(cv_api_req_t *req, char out[CV_API_SESSION_ID_HEX + 1]);

/* The principal of the session named by id (the request's cookie); 0, or
   the error status already answered (401 for no valid session, 403 for a
   write without its CSRF token, 503). Sets req->session. */
int cv_api_session_authenticate(cv_api_req_t *req, const char *id, cv_api_principal_t *who);

/* Handlers (api_route_table.c). */
void cv_api_session_open(cv_api_req_t *req, const cv_api_principal_t *who);
void cv_api_session_show(cv_api_req_t *req, const cv_api_principal_t *who);
void cv_api_session_logout(cv_api_req_t *req, const cv_api_principal_t *who);

#endif
