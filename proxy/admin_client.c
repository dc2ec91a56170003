/*
 * admin_client.c - the CLI's side of the admin API: one blocking libcurl
 * call per request (a command makes one or a few), never a shared handle.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "admin_client.h"
#include "config.h"

struct admin_client_buf {
    char *data;
    size_t len;
    int too_large;
};

static size_t admin_client_writecb(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct admin_client_buf *b = arg;
    size_t n = size * nmemb;
    char *nd;

    if (b->len + n > ADMIN_CLIENT_MAX_ANSWER) {
        b->too_large = 1;
        return 0; /* curl stops with CURLE_WRITE_ERROR */
    }
    nd = realloc(b->data, b->len + n + 1);
    if (nd == NULL)
        return 0;
    b->data = nd;
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

static int admin_target_socket(struct admin_target *t, const char *dir, const char *file, char *err,
                               size_t errlen)
{
    int n = snprintf(t->socket, sizeof(t->socket), "%s%s%s", dir, file != NULL ? "/" : "",
                     file != NULL ? file : "");

    if (n < 0 || (size_t)n >= sizeof(t->socket)) {
        snprintf(err, errlen, "admin socket path %s%s%s is too long", dir, file ? "/" : "",
                 file ? file : "");
        return -1;
    }
    return 0;
}

/*
 * The admin socket serve's config file names: admin.socket, else
 * state_dir/admin.sock (only these keys are read: the CLI needs neither the
 * CA nor the rules). 0, or -1 with err.
 */
static int admin_target_config(struct admin_target *t, const char *file, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_load_file(file, JSON_REJECT_DUPLICATES, &jerr);
    const char *sock, *sd;
    int rc;

    if (root == NULL) {
        /* jansson's text names the file already when it cannot be opened (line -1) */
        char why[JSON_ERROR_TEXT_LENGTH];
        if (jerr.line < 0)
            snprintf(err, errlen, "%s", jerr.text);
        else /* serve's config holds the admin token: nothing it could not parse is quoted */
            snprintf(err, errlen, "%s: %s (line %d)", file,
                     config_json_error(&jerr, why, sizeof(why)), jerr.line);
        return -1;
    }
    sock = json_string_value(json_object_get(json_object_get(root, "admin"), "socket"));
    sd = json_string_value(json_object_get(root, "state_dir"));
    if (sock == NULL && sd == NULL) {
        snprintf(err, errlen,
                 "%s sets neither admin.socket nor state_dir: give --socket or --state-dir", file);
        json_decref(root);
        return -1;
    }
    rc = sock != NULL ? admin_target_socket(t, sock, NULL, err, errlen)
                      : admin_target_socket(t, sd, "admin.sock", err, errlen);
    json_decref(root);
    return rc;
}

void admin_target_help(FILE *out)
{
    fprintf(out,
            "Reaching crmgate (first that applies):\n"
            "  --url http://HOST:PORT     the TCP admin API; the token in $CRMGATE_ADMIN_TOKEN\n"
            "  --socket PATH              the admin socket (serve's admin.socket)\n"
            "  -c, --config FILE          serve's config: its admin.socket, else\n"
            "                             its state_dir/admin.sock\n"
            "  --state-dir DIR            DIR/admin.sock\n"
            "  $CRMGATE_ADMIN_URL, else $STATE_DIRECTORY/admin.sock, else ./var/admin.sock\n");
}

int admin_target_flag(struct admin_target_flags *f, int ch, const char *arg)
{
    switch (ch) {
    case ADMIN_OPT_SOCKET:
        f->socket = arg;
        return 1;
    case 'c':
        f->config = arg;
        return 1;
    case ADMIN_OPT_STATE_DIR:
        f->state_dir = arg;
        return 1;
    case ADMIN_OPT_URL:
        f->url = arg;
        return 1;
    }
    return 0;
}

int admin_target_init(struct admin_target *t, const char *url, const char *socket,
                      const char *config, const char *state_dir, char *err, size_t errlen)
{
    const char *env_url = getenv("CRMGATE_ADMIN_URL");
    const char *sd = getenv("STATE_DIRECTORY");

    memset(t, 0, sizeof(*t));
    if (url == NULL && socket == NULL && config == NULL && state_dir == NULL && env_url != NULL &&
        env_url[0] != '\0')
        url = env_url;
    if (url != NULL) {
        const char *tok = getenv("CRMGATE_ADMIN_TOKEN");
        size_t n = strlen(url);
        if (strncmp(url, "http://", 7) != 0 || n <= 7 || n >= sizeof(t->url)) {
            snprintf(err, errlen, "admin URL \"%s\": expected http://HOST:PORT", url);
            return -1;
        }
        memcpy(t->url, url, n + 1);
        while (n > 7 && t->url[n - 1] == '/')
            t->url[--n] = '\0';
        if (tok == NULL || tok[0] == '\0' || strlen(tok) >= sizeof(t->token)) {
            snprintf(err, errlen,
                     "the TCP admin API needs its token in $CRMGATE_ADMIN_TOKEN (admin.token)");
            return -1;
        }
        memcpy(t->token, tok, strlen(tok) + 1);
        return 0;
    }
    if (socket != NULL)
        return admin_target_socket(t, socket, NULL, err, errlen);
    if (config != NULL)
        return admin_target_config(t, config, err, errlen);
    if (state_dir != NULL)
        return admin_target_socket(t, state_dir, "admin.sock", err, errlen);
    if (sd != NULL && sd[0] != '\0') {
        char first[sizeof(t->socket)];
        size_t n = strcspn(sd, ":"); /* systemd's first directory, as serve takes it */
        if (n >= sizeof(first))
            n = sizeof(first) - 1;
        memcpy(first, sd, n);
        first[n] = '\0';
        return admin_target_socket(t, first, "admin.sock", err, errlen);
    }
    return admin_target_socket(t, "./var", "admin.sock", err, errlen);
}

const char *admin_target_name(const struct admin_target *t)
{
    return t->url[0] != '\0' ? t->url : t->socket;
}

int admin_client_call(const struct admin_target *t, const char *method, const char *path,
                      const json_t *body, long *status, json_t **out, char *err, size_t errlen)
{
    static int curl_ready;
    struct admin_client_buf b = {0};
    struct curl_slist *hdrs = NULL;
    char url[ADMIN_CLIENT_MAX_PATH + 600], auth[600];
    char *json = NULL;
    CURL *e = NULL;
    CURLcode rc;
    int ret = -1;

    *status = 0;
    *out = NULL;
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            snprintf(err, errlen, "cannot initialise libcurl");
            return -1;
        }
        curl_ready = 1;
    }
    snprintf(url, sizeof(url), "%s%s", t->url[0] != '\0' ? t->url : "http://localhost", path);
    e = curl_easy_init();
    if (e == NULL) {
        snprintf(err, errlen, "cannot initialise libcurl");
        return -1;
    }
    if (body != NULL) {
        json = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
        if (json == NULL ||
            (hdrs = curl_slist_append(hdrs, "Content-Type: application/json")) == NULL) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, json);
    }
    if (t->token[0] != '\0') {
        struct curl_slist *h;
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", t->token);
        h = curl_slist_append(hdrs, auth);
        if (h == NULL) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        hdrs = h;
    }
    curl_easy_setopt(e, CURLOPT_URL, url);
    /* The admin token goes to crmgate itself, never to a proxy the shell's environment names. */
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    if (t->url[0] == '\0')
        curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, t->socket);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "GET") == 0)
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, admin_client_writecb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)ADMIN_CLIENT_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http");
    rc = curl_easy_perform(e);
    if (rc != CURLE_OK) {
        if (b.too_large)
            snprintf(err, errlen, "crmgate at %s answered more than %u bytes", admin_target_name(t),
                     ADMIN_CLIENT_MAX_ANSWER);
        else if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST)
            snprintf(err, errlen, "cannot reach crmgate at %s: is it running? (%s)",
                     admin_target_name(t), curl_easy_strerror(rc));
        else
            snprintf(err, errlen, "crmgate at %s: %s", admin_target_name(t),
                     curl_easy_strerror(rc));
        goto fail;
    }
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
    if (b.len > 0)
        *out = json_loadb(b.data, b.len, 0, NULL);
    ret = 0;
fail:
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(e);
    free(json);
    free(b.data);
    return ret;
}

int admin_client_query_add(char *buf, size_t buflen, const char *name, const char *value)
{
    char *n = curl_easy_escape(NULL, name, 0), *v = curl_easy_escape(NULL, value, 0);
    size_t len = strlen(buf);
    int w = -1;

    if (n != NULL && v != NULL)
        w = snprintf(buf + len, buflen - len, "%s%s=%s", strchr(buf, '?') != NULL ? "&" : "?", n,
                     v);
    curl_free(n);
    curl_free(v);
    if (w < 0 || (size_t)w >= buflen - len) {
        buf[len] = '\0';
        return -1;
    }
    return 0;
}

void admin_client_error(const json_t *answer, char *out, size_t outlen)
{
    const json_t *e = json_object_get(answer, "error");
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *msg = json_string_value(json_object_get(e, "message"));

    out[0] = '\0';
    if (code != NULL || msg != NULL)
        snprintf(out, outlen, "%s: %s", code != NULL ? code : "error", msg != NULL ? msg : "");
}

int admin_client_exit_status(long status)
{
    return status >= 400 && status <= 499 && status != 409 ? 2 : 1;
}
