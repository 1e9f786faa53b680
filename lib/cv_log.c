/*  cv_log — see cv_log.h. A single fprintf per line keeps lines whole
    when several threads log at once (stdio locks the stream per call). */

#include "cv_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static const char *s_program = "civibus";
static cv_log_level_t s_level = CV_LOG_INFO;
static const char *s_names[] = { "DEBUG", "INFO", "WARN", "ERROR" };

void cv_log_init(const char *program, cv_log_level_t level)
{
    s_program = program;
    s_level = level;
    const char *env = getenv("CIVIBUS_LOG");
    if (env) {
        for (int i = 0; i <= CV_LOG_ERROR; i++)
            if (strcasecmp(env, s_names[i]) == 0 || (i == CV_LOG_WARN && strcasecmp(env, "warning") == 0))
                s_level = (cv_log_level_t) i;
    }
}

void cv_log(cv_log_level_t level, const char *component, const char *fmt, ...)
{
    if (level < s_level)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03ldZ %s[%ld] %s %s: %s\n", when, ts.tv_nsec / 1000000L,
            s_program, (long) getpid(), s_names[level], component, msg);
}
