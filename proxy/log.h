/*
 * log.h - one-line log records on stderr, safe from any thread.
 *
 * Every record is written with a single write(2), so lines from different
 * workers never interleave. Nothing secret may be passed in: callers log
 * paths without query strings and never log header values.
 */
#ifndef CRMGATE_LOG_H
#define CRMGATE_LOG_H

/* notice: lifecycle (ready, reload, drain, exit); info adds one line per request. */
enum log_level {
    LOG_LEVEL_ERROR,
    LOG_LEVEL_WARN,
    LOG_LEVEL_NOTICE,
    LOG_LEVEL_INFO,
    LOG_LEVEL_DEBUG
};

/* Set the most verbose level that is still written (default: info). */
void log_set_level(enum log_level level);

/* Parse "error", "warn", "notice", "info" or "debug"; 0 on success, -1 otherwise. */
int log_level_parse(const char *name, enum log_level *out);

/* Whether a record at this level would be written. */
int log_enabled(enum log_level level);

/* Write one record; a trailing newline is added. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...)  log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...)   log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_LEVEL_NOTICE, __VA_ARGS__)
#define log_info(...)   log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_enabled(LOG_LEVEL_DEBUG))                                                          \
            log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__);                                                 \
    } while (0)

#endif
