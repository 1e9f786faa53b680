/*  cv_log — one-line, levelled logging to stderr.

    Every line is "2026-11-28T11:40:02Z hub[1234] LEVEL component: message".
    Times are UTC so logs from several machines sort together.

    Rule for callers (RGPD): never pass personal data (names, e-mails,
    phones, addresses, payload bytes) to these functions. Log identifiers
    the city controls instead: source name, event id hash, session id,
    record counts, SQLSTATE codes.
*/
#ifndef CV_LOG_H
#define CV_LOG_H

typedef enum { CV_LOG_DEBUG = 0, CV_LOG_INFO, CV_LOG_WARN, CV_LOG_ERROR } cv_log_level_t;

/* Sets the program name shown in each line and the minimum level.
   The level can also come from CIVIBUS_LOG=debug|info|warn|error. */
void cv_log_init(const char *program, cv_log_level_t level);

void cv_log(cv_log_level_t level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define cv_debug(comp, ...) cv_log(CV_LOG_DEBUG, comp, __VA_ARGS__)
#define cv_info(comp, ...)  cv_log(CV_LOG_INFO, comp, __VA_ARGS__)
#define cv_warn(comp, ...)  cv_log(CV_LOG_WARN, comp, __VA_ARGS__)
#define cv_error(comp, ...) cv_log(CV_LOG_ERROR, comp, __VA_ARGS__)

#endif
