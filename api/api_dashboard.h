/*  api_dashboard — GET /v1/dashboard and the cost per contact it uses
    (api_dashboard.c has the design). */
#ifndef CV_API_DASHBOARD_H
#define CV_API_DASHBOARD_H

#include "api_access.h"
#include "api_server.h"

/* deploy/costs.yaml as a JSON object {"guichet": 12, "telephone": null, ...}
   (malloc'd); path NULL: the defaults. NULL with err "file:line: reason". */
char *cv_api_costs_load(const char *path, char *err, size_t errlen);

/* SIGHUP: reads config->costs_file again into ctx->costs; -1 with err (the
   running amounts stay). */
int cv_api_costs_reload(cv_api_ctx_t *ctx, char *err, size_t errlen);

void cv_api_dashboard(cv_api_req_t *req, const cv_api_principal_t *who);

#endif
