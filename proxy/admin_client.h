/*
 * admin_client.h - how the CLI reaches a running crmgate: its admin API
 * over the unix socket (libcurl's CURLOPT_UNIX_SOCKET_PATH), or over TCP
 * with the bearer token from $CRMGATE_ADMIN_TOKEN.
 */
#ifndef CRMGATE_ADMIN_CLIENT_H
#define CRMGATE_ADMIN_CLIENT_H

#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#define ADMIN_CLIENT_MAX_ANSWER (64u << 20) /* bytes of one answer */
#define ADMIN_CLIENT_TIMEOUT_MS 30000
#define ADMIN_CLIENT_MAX_PATH   4096 /* a request path with its query */

struct admin_target {
    char socket[108]; /* the unix socket path ("" when url is set) */
    char url[512];    /* "http://HOST:PORT" for TCP, or "" */
    char token[512];  /* bearer token for TCP, or "" */
};

/*
 * Where the daemon is, by precedence: url (--url), socket (--socket), the
 * socket serve's config file names (-c/--config: its admin.socket, else its
 * state_dir/admin.sock; only these keys are read), state_dir/admin.sock
 * (--state-dir), $CRMGATE_ADMIN_URL, then $STATE_DIRECTORY/admin.sock, then
 * ./var/admin.sock (serve's defaults). A TCP target takes its token from
 * $CRMGATE_ADMIN_TOKEN. Any argument may be NULL. 0, or -1 with err (a path
 * too long, a URL not http://, no token, a config file that cannot be read
 * or names no socket).
 */
int admin_target_init(struct admin_target *t, const char *url, const char *socket,
                      const char *config, const char *state_dir, char *err, size_t errlen);

/* The help text of the flags admin_target_init takes, for every CLI command's usage. */
void admin_target_help(FILE *out);

/*
 * The flags every CLI command takes to find the daemon, parsed in one place:
 * put ADMIN_TARGET_OPTIONS in the command's getopt_long table (and "c:" in
 * its short options), then hand each option to admin_target_flag.
 */
struct admin_target_flags {
    const char *url, *socket, *config, *state_dir;
};
enum { ADMIN_OPT_SOCKET = 300, ADMIN_OPT_STATE_DIR, ADMIN_OPT_URL };
#define ADMIN_TARGET_OPTIONS                                                                       \
    {"socket", required_argument, NULL, ADMIN_OPT_SOCKET},                                         \
        {"config", required_argument, NULL, 'c'},                                                  \
        {"state-dir", required_argument, NULL, ADMIN_OPT_STATE_DIR},                               \
    {                                                                                              \
        "url", required_argument, NULL, ADMIN_OPT_URL                                              \
    }

/* Store getopt's option ch with its arg in f: 1 when ch was a target flag, 0 otherwise. */
int admin_target_flag(struct admin_target_flags *f, int ch, const char *arg);

/* Where t points, for messages: the socket path or the URL. */
const char *admin_target_name(const struct admin_target *t);

/*
 * Call method on path (with its query, already escaped) with body (JSON,
 * may be NULL). 0 when the daemon answered: *status, and *out its JSON (a
 * new reference) or NULL when the answer is not JSON. -1 with err when it
 * could not be reached ("cannot reach crmgate at SOCKET: is it running?").
 */
int admin_client_call(const struct admin_target *t, const char *method, const char *path,
                      const json_t *body, long *status, json_t **out, char *err, size_t errlen);

/*
 * Append name=value (both percent-encoded) to the path in buf, after "?"
 * or "&". 0, or -1 when it would not fit in buflen.
 */
int admin_client_query_add(char *buf, size_t buflen, const char *name, const char *value);

/* "code: message" of an {"error": {...}} answer into out; "" when it has none. */
void admin_client_error(const json_t *answer, char *out, size_t outlen);

/*
 * The CLI's exit status for a daemon's non-2xx answer, the same for every
 * admin command: 2 when the daemon found the request wrong (a 4xx: bad
 * input, unknown workspace or key, no or a wrong admin token), 1 when it
 * could not carry it out (a 409 conflict with the state, a 5xx).
 */
int admin_client_exit_status(long status);

#endif
