/*
 * config.c - load, override and validate the configuration.
 *
 * The file is JSON, loaded with JSON_REJECT_DUPLICATES, and unknown keys are
 * errors: a misspelt limit must not silently fall back to a default. Every
 * error names the file and the JSON pointer of the offending value.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "config.h"
#include "rulesdir.h"
#include "store.h"
#include "tls.h"

#define CONFIG_MAX_FILE_BYTES (1024 * 1024)
/* The most of an upstream URL an error quotes (config_url_shown). */
#define CONFIG_URL_SHOWN_MAX 256
/* The longest member name an error quotes back (config_name_quotable). */
#define CONFIG_QUOTABLE_NAME_MAX 32

static const struct config_limits config_default_limits = {
    .header_bytes = 64 * 1024,
    .header_count = 100,
    .body_bytes = 1024 * 1024,
    .response_bytes = 32 * 1024 * 1024,
    .header_timeout_ms = 10000,
    .body_timeout_ms = 30000,
    .idle_timeout_ms = 60000,
    .write_timeout_ms = 30000,
    .connections = 4096,
};

struct config *config_ref(struct config *cfg)
{
    __atomic_add_fetch(&cfg->refs, 1, __ATOMIC_RELAXED);
    return cfg;
}

void config_unref(struct config *cfg)
{
    if (cfg == NULL || __atomic_sub_fetch(&cfg->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    free(cfg->path);
    free(cfg->listen);
    free(cfg->listen_host);
    free(cfg->listen_port);
    free(cfg->upstream_hubspot);
    free(cfg->upstream_salesforce);
    free(cfg->state_dir);
    free(cfg->admin_socket);
    free(cfg->admin_listen);
    free(cfg->admin_host);
    free(cfg->admin_port);
    if (cfg->admin_token != NULL)
        OPENSSL_cleanse(cfg->admin_token, strlen(cfg->admin_token));
    free(cfg->admin_token);
    free(cfg->vault_key_file);
    for (size_t i = 0; i < cfg->nsf_domains; i++)
        free(cfg->sf_domains[i]);
    cfg->nsf_domains = 0;
    for (size_t i = 0; i < cfg->nhs_domains; i++)
        free(cfg->hs_domains[i]);
    cfg->nhs_domains = 0;
    free(cfg->ca_bundle);
    free(cfg->rules_dir);
    free(cfg->tls_cert);
    free(cfg->tls_key);
    SSL_CTX_free(cfg->tls_ctx); /* connections hold their own references */
    for (size_t i = 0; i < cfg->ntls_mint_names; i++)
        free(cfg->tls_mint_names[i]);
    cfg->ntls_mint_names = 0;
    if (cfg->tls_reverse != NULL)
        tls_reverse_clear(cfg->tls_reverse);
    free(cfg->tls_reverse);
    cfg->tls_reverse = NULL;
    SSL_CTX_free(cfg->mitm_ctx);
    free(cfg->forward_listen);
    free(cfg->forward_host);
    free(cfg->forward_port);
    free(cfg->transparent_listen);
    free(cfg->transparent_host);
    free(cfg->transparent_port);
    free(cfg->ca_dir);
    free(cfg->sf_instance_host);
    certs_cache_free(cfg->leaf_cache);
    certs_ca_free(cfg->ca);
    rules_unref(cfg->rules);
    for (size_t i = 0; i < cfg->ncallers; i++) {
        free(cfg->callers[i].workspace);
        free(cfg->callers[i].user);
    }
    free(cfg->callers);
    free(cfg);
}

static int config_set_str(char **dst, const char *src)
{
    char *copy = strdup(src);

    if (copy == NULL)
        return -1;
    free(*dst);
    *dst = copy;
    return 0;
}

/* "ADDR:PORT", "[v6]:PORT"; the port may be 0 (pick one, as the tests do). */
static int config_parse_listen(struct config *cfg, const char *where, char *err, size_t errlen)
{
    const char *s = cfg->listen, *colon;
    char host[256];
    size_t hl;
    char *end;
    long port;

    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            goto bad;
        hl = (size_t)(close - s - 1);
        if (hl == 0 || hl >= sizeof(host))
            goto bad;
        memcpy(host, s + 1, hl);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL || colon == s)
            goto bad;
        hl = (size_t)(colon - s);
        if (hl >= sizeof(host))
            goto bad;
        memcpy(host, s, hl);
    }
    host[hl] = '\0';
    errno = 0;
    port = strtol(colon + 1, &end, 10);
    if (errno != 0 || end == colon + 1 || *end != '\0' || port < 0 || port > 65535)
        goto bad;
    if (config_set_str(&cfg->listen_host, host) < 0 ||
        config_set_str(&cfg->listen_port, colon + 1) < 0)
        goto oom;
    return 0;
bad:
    snprintf(err, errlen, "%s: listen address \"%s\" is not ADDR:PORT (e.g. 127.0.0.1:8080)", where,
             s);
    return -1;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

/*
 * An upstream URL as an error may quote it: never user info, a query or a
 * fragment (https://user:password@host, ?hapikey=...: credentials). With an
 * '@' anywhere only its scheme is kept; else it is cut before '?' or '#'.
 * Either way "..." marks what was left out. Into out; returns out.
 */
static const char *config_url_shown(const char *url, char *out, size_t outlen)
{
    const char *sep = strstr(url, "://");
    size_t keep =
        strchr(url, '@') != NULL ? (sep != NULL ? (size_t)(sep - url) + 3 : 0) : strcspn(url, "?#");

    snprintf(out, outlen, "%.*s%s", (int)keep, url, url[keep] != '\0' ? "..." : "");
    return out;
}

/*
 * An upstream base URL: http or https, a host, an optional path, no query,
 * no fragment, no credentials. Stored without a trailing slash so that the
 * request path can be appended as is.
 */
static int config_set_upstream(char **dst, const char *url, const char *where, char *err,
                               size_t errlen)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *query = NULL, *frag = NULL, *user = NULL, *out = NULL;
    char shown[CONFIG_URL_SHOWN_MAX];
    int rc = -1;
    size_t n;

    if (u == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
        snprintf(err, errlen, "%s: \"%s\" is not a valid URL", where,
                 config_url_shown(url, shown, sizeof(shown)));
        goto done;
    }
    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    curl_url_get(u, CURLUPART_HOST, &host, 0);
    curl_url_get(u, CURLUPART_QUERY, &query, 0);
    curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0);
    curl_url_get(u, CURLUPART_USER, &user, 0);
    if (scheme == NULL || (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        snprintf(err, errlen, "%s: \"%s\" must be an http:// or https:// URL", where,
                 config_url_shown(url, shown, sizeof(shown)));
        goto done;
    }
    if (host == NULL || host[0] == '\0') {
        snprintf(err, errlen, "%s: \"%s\" has no host", where,
                 config_url_shown(url, shown, sizeof(shown)));
        goto done;
    }
    if (query != NULL || frag != NULL || user != NULL) {
        snprintf(err, errlen, "%s: \"%s\" must not carry a query, fragment or credentials", where,
                 config_url_shown(url, shown, sizeof(shown)));
        goto done;
    }
    if (curl_url_get(u, CURLUPART_URL, &out, 0) != CURLUE_OK) {
        snprintf(err, errlen, "%s: \"%s\" is not a valid URL", where,
                 config_url_shown(url, shown, sizeof(shown)));
        goto done;
    }
    n = strlen(out);
    while (n > 0 && out[n - 1] == '/')
        out[--n] = '\0';
    if (config_set_str(dst, out) < 0) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    rc = 0;
done:
    curl_free(scheme);
    curl_free(host);
    curl_free(query);
    curl_free(frag);
    curl_free(user);
    curl_free(out);
    curl_url_cleanup(u);
    return rc;
}

/* Read a JSON unsigned integer in [min, max] at obj[key], if present. */
static int config_get_uint(json_t *obj, const char *key, unsigned long long min,
                           unsigned long long max, unsigned long long *out, const char *file,
                           const char *ptr, char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, key);

    if (v == NULL)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        (unsigned long long)json_integer_value(v) < min ||
        (unsigned long long)json_integer_value(v) > max) {
        snprintf(err, errlen, "%s: %s/%s: must be an integer between %llu and %llu", file, ptr, key,
                 min, max);
        return -1;
    }
    *out = (unsigned long long)json_integer_value(v);
    return 0;
}

static int config_check_keys(json_t *obj, const char *const *allowed, const char *file,
                             const char *ptr, char *err, size_t errlen)
{
    const char *key;
    json_t *v;

    json_object_foreach(obj, key, v)
    {
        int ok = 0;
        for (size_t i = 0; allowed[i] != NULL; i++)
            ok |= strcmp(key, allowed[i]) == 0;
        if (!ok && config_name_quotable(key)) {
            snprintf(err, errlen, "%s: %s/%s: unknown key", file, ptr, key);
            return -1;
        }
        if (!ok) {
            /* not quoted: the file holds the admin token, and this may be it, misplaced */
            snprintf(err, errlen, "%s: %s: an unknown key (%zu characters, not shown)", file,
                     ptr[0] != '\0' ? ptr : "/", strlen(key));
            return -1;
        }
    }
    (void)v;
    return 0;
}

static int config_get_string(json_t *obj, const char *key, const char **out, const char *file,
                             char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, key);

    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        snprintf(err, errlen, "%s: /%s: must be a non-empty string", file, key);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

static int config_apply_limits(struct config *cfg, json_t *lim, const char *file, char *err,
                               size_t errlen)
{
    static const char *const keys[] = {"header_bytes",      "header_count",
                                       "body_bytes",        "response_bytes",
                                       "header_timeout_ms", "body_timeout_ms",
                                       "idle_timeout_ms",   "write_timeout_ms",
                                       "connections",       NULL};
    struct config_limits *l = &cfg->limits;
    unsigned long long v;

    if (!json_is_object(lim)) {
        snprintf(err, errlen, "%s: /limits: must be an object", file);
        return -1;
    }
    if (config_check_keys(lim, keys, file, "/limits", err, errlen) < 0)
        return -1;
#define LIMIT(key, min, max, field, type)                                                          \
    do {                                                                                           \
        v = l->field;                                                                              \
        if (config_get_uint(lim, key, min, max, &v, file, "/limits", err, errlen) < 0)             \
            return -1;                                                                             \
        l->field = (type)v;                                                                        \
    } while (0)
    LIMIT("header_bytes", 1024, 1024 * 1024, header_bytes, size_t);
    LIMIT("header_count", 8, 10000, header_count, size_t);
    LIMIT("body_bytes", 0, 256ULL * 1024 * 1024, body_bytes, size_t);
    LIMIT("response_bytes", 1024, 1024ULL * 1024 * 1024, response_bytes, size_t);
    LIMIT("header_timeout_ms", 10, 3600000, header_timeout_ms, unsigned);
    LIMIT("body_timeout_ms", 10, 3600000, body_timeout_ms, unsigned);
    LIMIT("idle_timeout_ms", 10, 3600000, idle_timeout_ms, unsigned);
    LIMIT("write_timeout_ms", 10, 3600000, write_timeout_ms, unsigned);
    LIMIT("connections", 1, 1000000, connections, size_t);
#undef LIMIT
    return 0;
}

/*
 * "tls": {"cert": "reverse.pem", "key": "reverse.key"}, or {"mint_names": ["crmgate.corp"],
 * "ca_dir": DIR}: the reverse listener speaks HTTPS with the files' certificate, or with leaves
 * minted from crmgate's CA for those names.
 */
static int config_apply_tls(struct config *cfg, json_t *tls, const char *file, char *err,
                            size_t errlen)
{
    static const char *const keys[] = {"cert", "key", "mint_names", "ca_dir", NULL};
    json_t *names = json_object_get(tls, "mint_names"), *v;
    const char *cert, *key, *dir;
    size_t i;

    if (!json_is_object(tls)) {
        snprintf(err, errlen, "%s: /tls: must be an object with cert and key, or mint_names", file);
        return -1;
    }
    if (config_check_keys(tls, keys, file, "/tls", err, errlen) < 0)
        return -1;
    cert = json_string_value(json_object_get(tls, "cert"));
    key = json_string_value(json_object_get(tls, "key"));
    dir = json_string_value(json_object_get(tls, "ca_dir"));
    if (json_object_get(tls, "ca_dir") != NULL && (dir == NULL || dir[0] == '\0')) {
        snprintf(err, errlen, "%s: /tls/ca_dir: must be a directory name", file);
        return -1;
    }
    if (dir != NULL && cfg->ca_dir != NULL && strcmp(dir, cfg->ca_dir) != 0) {
        snprintf(err, errlen, "%s: /tls/ca_dir: forward, transparent and tls must use one CA",
                 file);
        return -1;
    }
    if (names != NULL) {
        if (json_object_get(tls, "cert") != NULL || json_object_get(tls, "key") != NULL) {
            snprintf(err, errlen,
                     "%s: /tls: give either cert and key, or mint_names (a certificate minted "
                     "from the CA), not both",
                     file);
            return -1;
        }
        if (!json_is_array(names) || json_array_size(names) == 0 ||
            json_array_size(names) > TLS_MAX_MINT_NAMES) {
            snprintf(err, errlen, "%s: /tls/mint_names: must be an array of 1 to %d host names",
                     file, TLS_MAX_MINT_NAMES);
            return -1;
        }
        json_array_foreach(names, i, v)
        {
            if (!json_is_string(v) || json_string_length(v) == 0) {
                snprintf(err, errlen, "%s: /tls/mint_names/%zu: must be a host name", file, i);
                return -1;
            }
            if (config_set_str(&cfg->tls_mint_names[i], json_string_value(v)) < 0)
                goto oom;
            cfg->ntls_mint_names = i + 1;
        }
    } else if (cert == NULL || key == NULL || cert[0] == '\0' || key[0] == '\0') {
        snprintf(err, errlen, "%s: /tls: needs both cert and key (PEM file paths), or mint_names",
                 file);
        return -1;
    } else if (config_set_str(&cfg->tls_cert, cert) < 0 || config_set_str(&cfg->tls_key, key) < 0) {
        goto oom;
    }
    if (dir != NULL && config_set_str(&cfg->ca_dir, dir) < 0)
        goto oom;
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

/*
 * "store": {"map_bytes": N, "max_map_bytes": N, "record_volatile_fields": false}: the LMDB
 * map starts at map_bytes and doubles on demand up to max_map_bytes; past that, writes are
 * refused (503) rather than forwarded unaudited.
 */
static int config_apply_store(struct config *cfg, json_t *st, const char *file, char *err,
                              size_t errlen)
{
    static const char *const keys[] = {"map_bytes", "max_map_bytes", "record_volatile_fields",
                                       NULL};
    unsigned long long v;
    json_t *rv;

    if (!json_is_object(st)) {
        snprintf(err, errlen, "%s: /store: must be an object", file);
        return -1;
    }
    if (config_check_keys(st, keys, file, "/store", err, errlen) < 0)
        return -1;
    v = cfg->store_map_bytes;
    if (config_get_uint(st, "map_bytes", 64 * 1024, 1ULL << 40, &v, file, "/store", err, errlen) <
        0)
        return -1;
    cfg->store_map_bytes = (size_t)v;
    v = cfg->store_max_map_bytes;
    if (config_get_uint(st, "max_map_bytes", 64 * 1024, 1ULL << 40, &v, file, "/store", err,
                        errlen) < 0)
        return -1;
    cfg->store_max_map_bytes = (size_t)v;
    rv = json_object_get(st, "record_volatile_fields");
    if (rv != NULL && !json_is_boolean(rv)) {
        snprintf(err, errlen, "%s: /store/record_volatile_fields: must be true or false", file);
        return -1;
    }
    if (rv != NULL)
        cfg->store_record_volatile = json_is_true(rv);
    return 0;
}

/*
 * "admin": {"socket": PATH, "listen": "ADDR:PORT", "token": T}: the admin API always listens
 * on its unix socket; TCP is optional and then requires a bearer token of 24+ characters.
 */
static int config_apply_admin(struct config *cfg, json_t *ad, const char *file, char *err,
                              size_t errlen)
{
    static const char *const keys[] = {"socket", "listen", "token", NULL};
    const char *sock = NULL, *listen = NULL, *token = NULL;

    if (!json_is_object(ad)) {
        snprintf(err, errlen, "%s: /admin: must be an object", file);
        return -1;
    }
    if (config_check_keys(ad, keys, file, "/admin", err, errlen) < 0)
        return -1;
    if (config_get_string(ad, "socket", &sock, file, err, errlen) < 0 ||
        config_get_string(ad, "listen", &listen, file, err, errlen) < 0 ||
        config_get_string(ad, "token", &token, file, err, errlen) < 0) {
        /* config_get_string names the key without its object */
        char tmp[512];
        snprintf(tmp, sizeof(tmp), "%s", err + strlen(file) + 2);
        snprintf(err, errlen, "%s: /admin%s", file, tmp);
        return -1;
    }
    if ((sock != NULL && config_set_str(&cfg->admin_socket, sock) < 0) ||
        (listen != NULL && config_set_str(&cfg->admin_listen, listen) < 0) ||
        (token != NULL && config_set_str(&cfg->admin_token, token) < 0)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/*
 * One entry of vault.salesforce_domains or vault.hubspot_domains into its canonical form (lower
 * case, no leading dot): letters, digits, '-' and '.', at least two labels (a bare "com" would let
 * every .com host through), no empty label, a last label that is not all digits. 0 / -1.
 */
static int config_domain(const char *in, char *out, size_t outlen)
{
    size_t n, labels = 1;

    if (in[0] == '.')
        in++;
    n = strlen(in);
    if (n == 0 || n >= outlen || in[0] == '.' || in[n - 1] == '.' || strstr(in, "..") != NULL)
        return -1;
    for (size_t i = 0; i <= n; i++) {
        char c = in[i];
        if (c == '.')
            labels++;
        else if (c != '\0' && !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                (c >= '0' && c <= '9') || c == '-'))
            return -1;
        out[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    /* an all-numeric last label is an IP address in disguise (as certs/ refuses it) */
    return labels >= 2 &&
                   strspn(strrchr(out, '.') + 1, "0123456789") < strlen(strrchr(out, '.') + 1)
               ? 0
               : -1;
}

/*
 * Replace a domain list (cfg's sf_domains or hs_domains, *n entries) with
 * names[0..count); -1 with err naming the bad one.
 */
static int config_set_domains(char **list, size_t *n, const char *const *names, size_t count,
                              const char *where, char *err, size_t errlen)
{
    char canon[256];

    for (size_t i = 0; i < *n; i++)
        free(list[i]);
    *n = 0;
    for (size_t i = 0; i < count && i < CONFIG_MAX_SF_DOMAINS; i++) {
        if (config_domain(names[i], canon, sizeof(canon)) < 0) {
            snprintf(err, errlen,
                     "%s/%zu: \"%s\" is not a domain (letters, digits, '-' and '.', at least two "
                     "labels: \".salesforce.com\", \"api.hubapi.com\")",
                     where, i, names[i]);
            return -1;
        }
        if ((list[i] = strdup(canon)) == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        *n = i + 1;
    }
    return 0;
}

/* vault.KEY (an array of 1 to CONFIG_MAX_SF_DOMAINS domains, when present) into a list. */
static int config_apply_domains(json_t *vt, const char *key, char **list, size_t *n,
                                const char *file, char *err, size_t errlen)
{
    json_t *doms = json_object_get(vt, key), *d;
    const char *names[CONFIG_MAX_SF_DOMAINS];
    char where[600];
    size_t i;

    if (doms == NULL)
        return 0;
    if (!json_is_array(doms) || json_array_size(doms) == 0 ||
        json_array_size(doms) > CONFIG_MAX_SF_DOMAINS) {
        snprintf(err, errlen, "%s: /vault/%s: must be an array of 1 to %d domains", file, key,
                 CONFIG_MAX_SF_DOMAINS);
        return -1;
    }
    json_array_foreach(doms, i, d)
    {
        names[i] = json_string_value(d);
        if (names[i] == NULL) {
            snprintf(err, errlen, "%s: /vault/%s/%zu: must be a string", file, key, i);
            return -1;
        }
    }
    snprintf(where, sizeof(where), "%s: /vault/%s", file, key);
    return config_set_domains(list, n, names, json_array_size(doms), where, err, errlen);
}

/*
 * "vault": {"key_file": PATH, "refresh_margin_s": N, "refresh_backoff_min_ms": N,
 * "refresh_backoff_max_ms": N, "salesforce_domains": [..]}: the key that seals CRM credentials
 * (custody.h), how long before an OAuth access token expires crmgate refreshes it, how long it
 * waits after a failed refresh (refresh.h), and where a Salesforce instance URL may point.
 */
static int config_apply_vault(struct config *cfg, json_t *vt, const char *file, char *err,
                              size_t errlen)
{
    static const char *const keys[] = {"key_file",
                                       "refresh_margin_s",
                                       "refresh_backoff_min_ms",
                                       "refresh_backoff_max_ms",
                                       "salesforce_domains",
                                       "hubspot_domains",
                                       NULL};
    const char *kf = NULL;
    unsigned long long v = cfg->vault_refresh_margin_s, bmin = cfg->vault_backoff_min_ms,
                       bmax = cfg->vault_backoff_max_ms;

    if (!json_is_object(vt)) {
        snprintf(err, errlen, "%s: /vault: must be an object", file);
        return -1;
    }
    if (config_check_keys(vt, keys, file, "/vault", err, errlen) < 0)
        return -1;
    if (config_get_string(vt, "key_file", &kf, file, err, errlen) < 0) {
        char tmp[512];
        snprintf(tmp, sizeof(tmp), "%s", err + strlen(file) + 2);
        snprintf(err, errlen, "%s: /vault%s", file, tmp);
        return -1;
    }
    if (config_get_uint(vt, "refresh_margin_s", 0, 86400, &v, file, "/vault", err, errlen) < 0 ||
        config_get_uint(vt, "refresh_backoff_min_ms", 100, 3600000, &bmin, file, "/vault", err,
                        errlen) < 0 ||
        config_get_uint(vt, "refresh_backoff_max_ms", 100, 86400000, &bmax, file, "/vault", err,
                        errlen) < 0)
        return -1;
    if (bmax < bmin) {
        snprintf(err, errlen,
                 "%s: /vault/refresh_backoff_max_ms: must not be below refresh_backoff_min_ms",
                 file);
        return -1;
    }
    cfg->vault_refresh_margin_s = (unsigned)v;
    cfg->vault_backoff_min_ms = (unsigned)bmin;
    cfg->vault_backoff_max_ms = (unsigned)bmax;
    if (config_apply_domains(vt, "salesforce_domains", cfg->sf_domains, &cfg->nsf_domains, file,
                             err, errlen) < 0 ||
        config_apply_domains(vt, "hubspot_domains", cfg->hs_domains, &cfg->nhs_domains, file, err,
                             errlen) < 0)
        return -1;
    if (kf != NULL && config_set_str(&cfg->vault_key_file, kf) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/*
 * "forward" and "transparent": {"listen": "ADDR:PORT", "ca_dir": "/var/lib/crmgate/ca"}.
 * Both intercept with the same CA, so two different ca_dir values are an error.
 */
static int config_apply_forward(struct config *cfg, json_t *fw, const char *ptr, char **listen_out,
                                const char *file, char *err, size_t errlen)
{
    static const char *const keys[] = {"listen", "ca_dir", NULL};
    const char *listen, *dir;

    if (!json_is_object(fw)) {
        snprintf(err, errlen, "%s: %s: must be an object with listen and ca_dir", file, ptr);
        return -1;
    }
    if (config_check_keys(fw, keys, file, ptr, err, errlen) < 0)
        return -1;
    listen = json_string_value(json_object_get(fw, "listen"));
    dir = json_string_value(json_object_get(fw, "ca_dir"));
    if (listen == NULL || listen[0] == '\0') {
        snprintf(err, errlen, "%s: %s/listen: required, ADDR:PORT", file, ptr);
        return -1;
    }
    if (dir != NULL && cfg->ca_dir != NULL && strcmp(dir, cfg->ca_dir) != 0) {
        snprintf(err, errlen, "%s: %s/ca_dir: forward and transparent must use one CA", file, ptr);
        return -1;
    }
    if (config_set_str(listen_out, listen) < 0 ||
        (dir != NULL && config_set_str(&cfg->ca_dir, dir) < 0)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/*
 * crmgate's CA, once for every user of it (interception, the reverse listener's minted
 * certificate): ca_dir/ca.pem, and the key from $CREDENTIALS_DIRECTORY/ca.key under systemd
 * (LoadCredential=), else ca_dir/ca.key. who names the user in the error when ca_dir is unset.
 */
static int config_load_ca(struct config *cfg, const char *who, char *err, size_t errlen)
{
    char cert[4096], key[4096];
    const char *creds = getenv("CREDENTIALS_DIRECTORY");

    if (cfg->ca != NULL)
        return 0;
    if (cfg->ca_dir == NULL) {
        snprintf(err, errlen,
                 "%s needs a ca_dir (or --ca-dir): the CA that signs its certificates "
                 "(crmgate ca init --dir DIR)",
                 who);
        return -1;
    }
    snprintf(cert, sizeof(cert), "%s/ca.pem", cfg->ca_dir);
    snprintf(key, sizeof(key), "%s/ca.key", cfg->ca_dir);
    if (creds != NULL && creds[0] != '\0') {
        char ck[4096];
        snprintf(ck, sizeof(ck), "%s/ca.key", creds);
        if (access(ck, R_OK) == 0)
            snprintf(key, sizeof(key), "%s", ck);
    }
    cfg->ca = certs_ca_load(cert, key, err, errlen);
    return cfg->ca != NULL ? 0 : -1;
}

/*
 * tls.mint_names: the reverse listener presents leaves minted from the CA. Each name is
 * minted once here, so a name outside the CA's name constraints stops the start (or the
 * reload) with one line saying which and what to do.
 */
static int config_load_reverse_mint(struct config *cfg, char *err, size_t errlen)
{
    char why[600];

    if (config_load_ca(cfg, "tls.mint_names (--tls-mint)", err, errlen) < 0)
        return -1;
    if ((cfg->tls_reverse = calloc(1, sizeof(*cfg->tls_reverse))) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (tls_reverse_init(cfg->tls_reverse, cfg->ca, (const char *const *)cfg->tls_mint_names,
                         cfg->ntls_mint_names, why, sizeof(why)) < 0) {
        snprintf(err, errlen,
                 "tls.mint_names: cannot mint the reverse listener's certificate "
                 "from the CA in %s: %s%s",
                 cfg->ca_dir, why,
                 strstr(why, "name constraints") != NULL
                     ? "; create a CA that also permits it (crmgate ca init --permit-extra "
                       "NAME), or give tls.cert and tls.key"
                     : "");
        return -1;
    }
    cfg->tls_ctx = tls_reverse_ctx_new(cfg->tls_reverse, err, errlen);
    return cfg->tls_ctx != NULL ? 0 : -1;
}
static int config_load_interception(struct config *cfg, char *err, size_t errlen)
{
    char where[600];
    CURLU *u;
    char *host = NULL;

    /* reuse the listen parser on scratch configs */
    if (cfg->forward_listen != NULL) {
        struct config tmp = {0};
        snprintf(where, sizeof(where), "forward.listen %s", cfg->forward_listen);
        tmp.listen = cfg->forward_listen;
        if (config_parse_listen(&tmp, where, err, errlen) < 0)
            return -1;
        cfg->forward_host = tmp.listen_host;
        cfg->forward_port = tmp.listen_port;
    }
    if (cfg->transparent_listen != NULL) {
        struct config tmp = {0};
        snprintf(where, sizeof(where), "transparent.listen %s", cfg->transparent_listen);
        tmp.listen = cfg->transparent_listen;
        if (config_parse_listen(&tmp, where, err, errlen) < 0)
            return -1;
        cfg->transparent_host = tmp.listen_host;
        cfg->transparent_port = tmp.listen_port;
    }
    if (config_load_ca(cfg, "interception (forward or transparent listen)", err, errlen) < 0)
        return -1;
    cfg->leaf_cache = certs_cache_new(1024);
    if (cfg->leaf_cache == NULL) {
        snprintf(err, errlen, "cannot create the certificate cache");
        return -1;
    }
    cfg->mitm_ctx = tls_mitm_ctx_new(err, errlen);
    if (cfg->mitm_ctx == NULL)
        return -1;
    if (cfg->upstream_salesforce != NULL && (u = curl_url()) != NULL) {
        if (curl_url_set(u, CURLUPART_URL, cfg->upstream_salesforce, 0) == CURLUE_OK &&
            curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
            config_set_str(&cfg->sf_instance_host, host);
        curl_free(host);
        curl_url_cleanup(u);
    }
    return 0;
}

static int config_caller_cmp(const void *a, const void *b)
{
    return strcmp(((const struct config_caller *)a)->token_sha256,
                  ((const struct config_caller *)b)->token_sha256);
}

const struct config_caller *config_caller_find(const struct config *cfg, const char *sha256_hex)
{
    struct config_caller key;

    if (cfg->ncallers == 0 || strlen(sha256_hex) != 64)
        return NULL;
    memcpy(key.token_sha256, sha256_hex, 65);
    return bsearch(&key, cfg->callers, cfg->ncallers, sizeof(key), config_caller_cmp);
}

const char *config_json_error(const json_error_t *e, char *out, size_t outlen)
{
    const char *near = strstr(e->text, " near '");
    char name[CONFIG_QUOTABLE_NAME_MAX + 1];
    size_t n;

    /* a member name stays: "duplicate object key near '"token"'" says which */
    if (near != NULL) {
        const char *q = near + 7;
        n = strlen(q);
        /* q is "NAME"' */
        if (n >= 4 && n - 3 <= CONFIG_QUOTABLE_NAME_MAX && q[0] == '"' && q[n - 2] == '"' &&
            q[n - 1] == '\'') {
            memcpy(name, q + 1, n - 3);
            name[n - 3] = '\0';
            if (config_name_quotable(name))
                near = NULL;
        }
    }
    snprintf(out, outlen, "%.*s", near != NULL ? (int)(near - e->text) : (int)strlen(e->text),
             e->text);
    return out;
}

int config_name_quotable(const char *name)
{
    size_t n = strspn(name, "abcdefghijklmnopqrstuvwxyz_");

    return n > 0 && n <= CONFIG_QUOTABLE_NAME_MAX && name[n] == '\0';
}

const char *config_kind_name(enum config_kind kind)
{
    return kind == CONFIG_KIND_WORKFLOW ? "workflow" : "chat";
}

/*
 * "callers": [{"token_sha256": "<64 hex>", "workspace": "acme", "user": "ana@acme.com",
 *              "kind": "chat" | "workflow"}]
 * Only the fingerprint of a token is ever configured, never the token.
 */
static int config_apply_callers(struct config *cfg, json_t *arr, const char *file, char *err,
                                size_t errlen)
{
    static const char *const keys[] = {"token_sha256", "workspace", "user", "kind", NULL};
    size_t i;
    json_t *c;

    if (!json_is_array(arr)) {
        snprintf(err, errlen, "%s: /callers: must be a list", file);
        return -1;
    }
    cfg->callers = calloc(json_array_size(arr) ? json_array_size(arr) : 1, sizeof(*cfg->callers));
    if (cfg->callers == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    json_array_foreach(arr, i, c)
    {
        struct config_caller *cc = &cfg->callers[i];
        const char *fp, *ws, *user, *kind;
        char ptr[64];

        snprintf(ptr, sizeof(ptr), "/callers/%zu", i);
        cfg->ncallers = i + 1;
        if (!json_is_object(c)) {
            snprintf(err, errlen, "%s: %s: must be an object", file, ptr);
            return -1;
        }
        if (config_check_keys(c, keys, file, ptr, err, errlen) < 0)
            return -1;
        fp = json_string_value(json_object_get(c, "token_sha256"));
        ws = json_string_value(json_object_get(c, "workspace"));
        user = json_string_value(json_object_get(c, "user"));
        kind = json_string_value(json_object_get(c, "kind"));
        if (fp == NULL || strlen(fp) != 64 || strspn(fp, "0123456789abcdef") != 64) {
            snprintf(err, errlen,
                     "%s: %s/token_sha256: must be 64 lower-case hex digits (crmgate "
                     "token fingerprint prints it)",
                     file, ptr);
            return -1;
        }
        if (ws == NULL || ws[0] == '\0') {
            snprintf(err, errlen, "%s: %s/workspace: required", file, ptr);
            return -1;
        }
        if (json_object_get(c, "user") != NULL && user == NULL) {
            snprintf(err, errlen, "%s: %s/user: must be a string", file, ptr);
            return -1;
        }
        if (kind == NULL || (strcmp(kind, "chat") != 0 && strcmp(kind, "workflow") != 0)) {
            snprintf(err, errlen, "%s: %s/kind: must be \"chat\" or \"workflow\"", file, ptr);
            return -1;
        }
        memcpy(cc->token_sha256, fp, 65);
        cc->kind = strcmp(kind, "workflow") == 0 ? CONFIG_KIND_WORKFLOW : CONFIG_KIND_CHAT;
        cc->workspace = strdup(ws);
        cc->user = user != NULL ? strdup(user) : NULL;
        if (cc->workspace == NULL || (user != NULL && cc->user == NULL)) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    qsort(cfg->callers, cfg->ncallers, sizeof(*cfg->callers), config_caller_cmp);
    for (i = 1; i < cfg->ncallers; i++) {
        if (strcmp(cfg->callers[i - 1].token_sha256, cfg->callers[i].token_sha256) == 0) {
            snprintf(err, errlen, "%s: /callers: token fingerprint %.12s... is registered twice",
                     file, cfg->callers[i].token_sha256);
            return -1;
        }
    }
    return 0;
}

static int config_apply_file(struct config *cfg, const char *file, char *err, size_t errlen)
{
    static const char *const keys[] = {"listen",
                                       "workers",
                                       "state_dir",
                                       "upstreams",
                                       "ca_bundle",
                                       "log_level",
                                       "limits",
                                       "upstream_connect_timeout_ms",
                                       "upstream_timeout_ms",
                                       "drain_timeout_ms",
                                       "before_read_window_ms",
                                       "rules_dir",
                                       "callers",
                                       "tls",
                                       "forward",
                                       "transparent",
                                       "store",
                                       "admin",
                                       "vault",
                                       NULL};
    static const char *const upstream_keys[] = {"hubspot", "salesforce", NULL};
    json_error_t jerr;
    json_t *root, *ups, *lim;
    const char *s = NULL;
    unsigned long long v;
    int rc = -1;
    FILE *f;

    f = fopen(file, "r");
    if (f == NULL) {
        snprintf(err, errlen, "%s: cannot open: %s", file, strerror(errno));
        return -1;
    }
    if (fseek(f, 0, SEEK_END) == 0 && ftell(f) > CONFIG_MAX_FILE_BYTES) {
        fclose(f);
        snprintf(err, errlen, "%s: larger than %d bytes", file, CONFIG_MAX_FILE_BYTES);
        return -1;
    }
    rewind(f);
    root = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
    fclose(f);
    if (root == NULL) {
        char why[JSON_ERROR_TEXT_LENGTH];
        snprintf(err, errlen, "%s:%d:%d: invalid JSON: %s", file, jerr.line, jerr.column,
                 config_json_error(&jerr, why, sizeof(why)));
        return -1;
    }
    if (!json_is_object(root)) {
        snprintf(err, errlen, "%s: the top level must be an object", file);
        goto done;
    }
    if (config_check_keys(root, keys, file, "", err, errlen) < 0)
        goto done;

    if (config_get_string(root, "listen", &s, file, err, errlen) < 0)
        goto done;
    if (s != NULL && config_set_str(&cfg->listen, s) < 0)
        goto oom;
    s = NULL;
    if (config_get_string(root, "state_dir", &s, file, err, errlen) < 0)
        goto done;
    if (s != NULL && config_set_str(&cfg->state_dir, s) < 0)
        goto oom;
    s = NULL;
    if (config_get_string(root, "ca_bundle", &s, file, err, errlen) < 0)
        goto done;
    if (s != NULL && config_set_str(&cfg->ca_bundle, s) < 0)
        goto oom;
    s = NULL;
    if (config_get_string(root, "rules_dir", &s, file, err, errlen) < 0)
        goto done;
    if (s != NULL && config_set_str(&cfg->rules_dir, s) < 0)
        goto oom;
    s = NULL;
    if (config_get_string(root, "log_level", &s, file, err, errlen) < 0)
        goto done;
    if (s != NULL && log_level_parse(s, &cfg->log_level) < 0) {
        snprintf(err, errlen, "%s: /log_level: must be error, warn, notice, info or debug", file);
        goto done;
    }
    v = (unsigned long long)cfg->workers;
    if (config_get_uint(root, "workers", 0, CONFIG_MAX_WORKERS, &v, file, "", err, errlen) < 0)
        goto done;
    cfg->workers = (int)v;
    v = cfg->upstream_connect_timeout_ms;
    if (config_get_uint(root, "upstream_connect_timeout_ms", 10, 600000, &v, file, "", err,
                        errlen) < 0)
        goto done;
    cfg->upstream_connect_timeout_ms = (unsigned)v;
    v = cfg->upstream_timeout_ms;
    if (config_get_uint(root, "upstream_timeout_ms", 10, 3600000, &v, file, "", err, errlen) < 0)
        goto done;
    cfg->upstream_timeout_ms = (unsigned)v;
    v = cfg->before_read_window_ms;
    if (config_get_uint(root, "before_read_window_ms", 0, CONFIG_MAX_BEFORE_WINDOW_MS, &v, file, "",
                        err, errlen) < 0)
        goto done;
    cfg->before_read_window_ms = (unsigned)v;
    v = cfg->drain_timeout_ms;
    if (config_get_uint(root, "drain_timeout_ms", 0, 3600000, &v, file, "", err, errlen) < 0)
        goto done;
    cfg->drain_timeout_ms = (unsigned)v;

    ups = json_object_get(root, "upstreams");
    if (ups != NULL) {
        json_t *hs, *sf;
        if (!json_is_object(ups)) {
            snprintf(err, errlen, "%s: /upstreams: must be an object", file);
            goto done;
        }
        if (config_check_keys(ups, upstream_keys, file, "/upstreams", err, errlen) < 0)
            goto done;
        hs = json_object_get(ups, "hubspot");
        sf = json_object_get(ups, "salesforce");
        if (hs != NULL && (!json_is_string(hs) ||
                           config_set_upstream(&cfg->upstream_hubspot, json_string_value(hs),
                                               "/upstreams/hubspot", err, errlen) < 0)) {
            if (!json_is_string(hs))
                snprintf(err, errlen, "%s: /upstreams/hubspot: must be a URL string", file);
            goto prefixed;
        }
        if (sf != NULL && !json_is_null(sf) &&
            (!json_is_string(sf) ||
             config_set_upstream(&cfg->upstream_salesforce, json_string_value(sf),
                                 "/upstreams/salesforce", err, errlen) < 0)) {
            if (!json_is_string(sf))
                snprintf(err, errlen, "%s: /upstreams/salesforce: must be a URL string", file);
            goto prefixed;
        }
    }
    lim = json_object_get(root, "limits");
    if (lim != NULL && config_apply_limits(cfg, lim, file, err, errlen) < 0)
        goto done;
    if (json_object_get(root, "forward") != NULL &&
        config_apply_forward(cfg, json_object_get(root, "forward"), "/forward",
                             &cfg->forward_listen, file, err, errlen) < 0)
        goto done;
    if (json_object_get(root, "transparent") != NULL &&
        config_apply_forward(cfg, json_object_get(root, "transparent"), "/transparent",
                             &cfg->transparent_listen, file, err, errlen) < 0)
        goto done;
    if (json_object_get(root, "tls") != NULL &&
        config_apply_tls(cfg, json_object_get(root, "tls"), file, err, errlen) < 0)
        goto done;
    if (json_object_get(root, "store") != NULL &&
        config_apply_store(cfg, json_object_get(root, "store"), file, err, errlen) < 0)
        goto done;
    if (json_object_get(root, "admin") != NULL &&
        config_apply_admin(cfg, json_object_get(root, "admin"), file, err, errlen) < 0)
        goto done;
    if (json_object_get(root, "vault") != NULL &&
        config_apply_vault(cfg, json_object_get(root, "vault"), file, err, errlen) < 0)
        goto done;
    if (json_object_get(root, "callers") != NULL &&
        config_apply_callers(cfg, json_object_get(root, "callers"), file, err, errlen) < 0)
        goto done;
    rc = 0;
    goto done;
prefixed:
    /* config_set_upstream names the pointer but not the file. */
    if (strncmp(err, file, strlen(file)) != 0) {
        char tmp[512];
        snprintf(tmp, sizeof(tmp), "%s", err);
        snprintf(err, errlen, "%s: %s", file, tmp);
    }
    goto done;
oom:
    snprintf(err, errlen, "out of memory");
done:
    json_decref(root);
    return rc;
}

static int config_apply_overrides(struct config *cfg, const struct config_overrides *ov, char *err,
                                  size_t errlen)
{
    if (ov->listen != NULL && config_set_str(&cfg->listen, ov->listen) < 0)
        goto oom;
    if (ov->state_dir != NULL && config_set_str(&cfg->state_dir, ov->state_dir) < 0)
        goto oom;
    if (ov->ca_bundle != NULL && config_set_str(&cfg->ca_bundle, ov->ca_bundle) < 0)
        goto oom;
    if (ov->rules_dir != NULL && config_set_str(&cfg->rules_dir, ov->rules_dir) < 0)
        goto oom;
    if (ov->ntls_mint > 0 && (ov->tls_cert != NULL || ov->tls_key != NULL)) {
        snprintf(err, errlen, "--tls-mint and --tls-cert/--tls-key exclude each other");
        return -1;
    }
    if (ov->tls_cert != NULL || ov->tls_key != NULL || ov->ntls_mint > 0) {
        /* The command line's choice of certificate replaces the file's, whichever kind. */
        for (size_t i = 0; i < cfg->ntls_mint_names; i++) {
            free(cfg->tls_mint_names[i]);
            cfg->tls_mint_names[i] = NULL;
        }
        cfg->ntls_mint_names = 0;
        if (ov->ntls_mint > 0) {
            free(cfg->tls_cert);
            cfg->tls_cert = NULL;
            free(cfg->tls_key);
            cfg->tls_key = NULL;
        }
    }
    for (size_t i = 0; i < ov->ntls_mint && i < TLS_MAX_MINT_NAMES; i++) {
        if (config_set_str(&cfg->tls_mint_names[i], ov->tls_mint[i]) < 0)
            goto oom;
        cfg->ntls_mint_names = i + 1;
    }
    if (ov->tls_cert != NULL && config_set_str(&cfg->tls_cert, ov->tls_cert) < 0)
        goto oom;
    if (ov->tls_key != NULL && config_set_str(&cfg->tls_key, ov->tls_key) < 0)
        goto oom;
    if (ov->forward_listen != NULL && config_set_str(&cfg->forward_listen, ov->forward_listen) < 0)
        goto oom;
    if (ov->transparent_listen != NULL &&
        config_set_str(&cfg->transparent_listen, ov->transparent_listen) < 0)
        goto oom;
    if (ov->ca_dir != NULL && config_set_str(&cfg->ca_dir, ov->ca_dir) < 0)
        goto oom;
    if (ov->admin_socket != NULL && config_set_str(&cfg->admin_socket, ov->admin_socket) < 0)
        goto oom;
    if (ov->admin_listen != NULL && config_set_str(&cfg->admin_listen, ov->admin_listen) < 0)
        goto oom;
    if (ov->vault_key_file != NULL && config_set_str(&cfg->vault_key_file, ov->vault_key_file) < 0)
        goto oom;
    if (ov->upstream_hubspot != NULL &&
        config_set_upstream(&cfg->upstream_hubspot, ov->upstream_hubspot, "--upstream hubspot", err,
                            errlen) < 0)
        return -1;
    if (ov->upstream_salesforce != NULL &&
        config_set_upstream(&cfg->upstream_salesforce, ov->upstream_salesforce,
                            "--upstream salesforce", err, errlen) < 0)
        return -1;
    if (ov->workers != NULL) {
        char *end;
        long n;
        errno = 0;
        n = strtol(ov->workers, &end, 10);
        if (errno != 0 || end == ov->workers || *end != '\0' || n < 0 || n > CONFIG_MAX_WORKERS) {
            snprintf(err, errlen, "--workers: must be an integer between 0 and %d",
                     CONFIG_MAX_WORKERS);
            return -1;
        }
        cfg->workers = (int)n;
    }
    if (ov->log_level != NULL && log_level_parse(ov->log_level, &cfg->log_level) < 0) {
        snprintf(err, errlen, "--log-level: must be error, warn, notice, info or debug");
        return -1;
    }
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

/* The embedded default: loopback only, HubSpot's public API, no Salesforce. */
static struct config *config_new_default(void)
{
    static const char *const sf_default[] = {CERTS_SALESFORCE_DOMAINS};
    static const char *const hs_default[] = {CERTS_HUBSPOT_DOMAINS};
    struct config *cfg = calloc(1, sizeof(*cfg));
    const char *sd = getenv("STATE_DIRECTORY");
    char first[PATH_MAX], err[300];

    if (cfg == NULL)
        return NULL;
    cfg->refs = 1;
    cfg->limits = config_default_limits;
    cfg->log_level = LOG_LEVEL_INFO;
    cfg->upstream_connect_timeout_ms = 5000;
    cfg->upstream_timeout_ms = 30000;
    cfg->drain_timeout_ms = 30000;
    cfg->store_map_bytes = STORE_DEFAULT_MAP_BYTES;
    cfg->store_max_map_bytes = STORE_DEFAULT_MAX_MAP_BYTES;
    cfg->vault_refresh_margin_s = 300;
    cfg->vault_backoff_min_ms = CONFIG_BACKOFF_MIN_MS;
    cfg->vault_backoff_max_ms = CONFIG_BACKOFF_MAX_MS;
    /* systemd may pass several directories separated by ':'; ours is the first. */
    if (sd != NULL && sd[0] != '\0') {
        size_t n = strcspn(sd, ":");
        if (n >= sizeof(first))
            n = sizeof(first) - 1;
        memcpy(first, sd, n);
        first[n] = '\0';
    } else {
        snprintf(first, sizeof(first), "./var");
    }
    if (config_set_str(&cfg->listen, "127.0.0.1:8080") < 0 ||
        config_set_str(&cfg->upstream_hubspot, "https://api.hubapi.com") < 0 ||
        config_set_str(&cfg->state_dir, first) < 0 ||
        config_set_str(&cfg->rules_dir, "./rules") < 0 ||
        config_set_domains(cfg->sf_domains, &cfg->nsf_domains, sf_default,
                           sizeof(sf_default) / sizeof(sf_default[0]), "default", err,
                           sizeof(err)) < 0 ||
        config_set_domains(cfg->hs_domains, &cfg->nhs_domains, hs_default,
                           sizeof(hs_default) / sizeof(hs_default[0]), "default", err,
                           sizeof(err)) < 0) {
        config_unref(cfg);
        return NULL;
    }
    return cfg;
}

/*
 * The admin socket defaults to <state_dir>/admin.sock. A TCP admin listener needs a token long
 * enough not to be guessed: the admin API switches dry-run off and reads every audit record.
 */
static int config_check_admin(struct config *cfg, char *err, size_t errlen)
{
    struct sockaddr_un sun;
    char where[600];

    if (cfg->admin_socket == NULL) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/admin.sock", cfg->state_dir);
        if (config_set_str(&cfg->admin_socket, path) < 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    if (strlen(cfg->admin_socket) >= sizeof(sun.sun_path)) {
        snprintf(err, errlen, "admin.socket %s: longer than a unix socket path may be (%zu)",
                 cfg->admin_socket, sizeof(sun.sun_path) - 1);
        return -1;
    }
    if (cfg->admin_listen == NULL) {
        if (cfg->admin_token != NULL) {
            snprintf(err, errlen,
                     "admin.token is set but admin.listen is not: the token "
                     "guards the TCP admin listener only");
            return -1;
        }
        return 0;
    }
    if (cfg->admin_token == NULL || strlen(cfg->admin_token) < CONFIG_ADMIN_TOKEN_MIN) {
        snprintf(err, errlen,
                 "admin.listen %s needs admin.token, a bearer token of at least %d characters",
                 cfg->admin_listen, CONFIG_ADMIN_TOKEN_MIN);
        return -1;
    }
    {
        struct config tmp = {0};
        snprintf(where, sizeof(where), "admin.listen %s", cfg->admin_listen);
        tmp.listen = cfg->admin_listen;
        if (config_parse_listen(&tmp, where, err, errlen) < 0)
            return -1;
        cfg->admin_host = tmp.listen_host;
        cfg->admin_port = tmp.listen_port;
    }
    return 0;
}

struct config *config_load(const char *path, const struct config_overrides *ov, char *err,
                           size_t errlen)
{
    struct config *cfg = config_new_default();
    static const struct config_overrides none;

    if (cfg == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (path != NULL) {
        if (config_set_str(&cfg->path, path) < 0) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        if (config_apply_file(cfg, path, err, errlen) < 0)
            goto fail;
    }
    if (config_apply_overrides(cfg, ov != NULL ? ov : &none, err, errlen) < 0)
        goto fail;
    if (config_parse_listen(cfg, path != NULL ? path : "listen", err, errlen) < 0)
        goto fail;
    if (cfg->ca_bundle != NULL && access(cfg->ca_bundle, R_OK) != 0) {
        snprintf(err, errlen, "ca_bundle %s: %s", cfg->ca_bundle, strerror(errno));
        goto fail;
    }
    if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL)) {
        snprintf(err, errlen,
                 "TLS needs both a certificate and a key (tls.cert and tls.key, or "
                 "--tls-cert and --tls-key)");
        goto fail;
    }
    if (cfg->tls_cert != NULL &&
        (cfg->tls_ctx = tls_server_ctx_new(cfg->tls_cert, cfg->tls_key, err, errlen)) == NULL)
        goto fail;
    if ((cfg->forward_listen != NULL || cfg->transparent_listen != NULL) &&
        config_load_interception(cfg, err, errlen) < 0)
        goto fail;
    if (cfg->ntls_mint_names > 0 && config_load_reverse_mint(cfg, err, errlen) < 0)
        goto fail;
    if (config_check_admin(cfg, err, errlen) < 0)
        goto fail;
    if (cfg->store_map_bytes > cfg->store_max_map_bytes) {
        snprintf(err, errlen, "store.map_bytes (%zu) is larger than store.max_map_bytes (%zu)",
                 cfg->store_map_bytes, cfg->store_max_map_bytes);
        goto fail;
    }
    cfg->rules = rulesdir_load(cfg->rules_dir, err, errlen);
    if (cfg->rules == NULL)
        goto fail;
    for (size_t i = 0; i < cfg->ncallers; i++) {
        if (rules_workspace(cfg->rules, cfg->callers[i].workspace) == NULL) {
            snprintf(err, errlen,
                     "callers: workspace \"%s\" has no rules file in %s and there "
                     "is no default.json",
                     cfg->callers[i].workspace, cfg->rules_dir);
            goto fail;
        }
    }
    return cfg;
fail:
    config_unref(cfg);
    return NULL;
}

void config_print(const struct config *cfg)
{
    const struct config_limits *l = &cfg->limits;

    printf("config: %s\n", cfg->path != NULL ? cfg->path : "(embedded default)");
    printf("listen: %s (reverse, %s)\n", cfg->listen,
           cfg->tls_ctx != NULL ? "HTTPS" : "plain HTTP");
    if (cfg->tls_reverse != NULL) {
        printf("tls: certificate minted from the CA in %s for", cfg->ca_dir);
        for (size_t i = 0; i < cfg->tls_reverse->n; i++)
            printf(" %s", cfg->tls_reverse->names[i]);
        printf(" (TLS 1.2+, ALPN http/1.1; re-minted 10 days before it expires)\n");
    } else if (cfg->tls_ctx != NULL) {
        printf("tls: cert %s, key %s (TLS 1.2+, ALPN http/1.1)\n", cfg->tls_cert, cfg->tls_key);
    }
    if (cfg->forward_listen != NULL)
        printf("forward: %s (CONNECT to CRM hosts, intercepted with the CA in %s)\n",
               cfg->forward_listen, cfg->ca_dir);
    if (cfg->transparent_listen != NULL)
        printf("transparent: %s (REDIRECTed TLS to CRM hosts, intercepted with the CA in %s)\n",
               cfg->transparent_listen, cfg->ca_dir);
    printf("workers: %d%s\n", cfg->workers, cfg->workers == 0 ? " (one per core)" : "");
    printf("state_dir: %s\n", cfg->state_dir);
    printf("store: map %zu bytes, growing up to %zu\n", cfg->store_map_bytes,
           cfg->store_max_map_bytes);
    printf("vault: %s (OAuth tokens refreshed %us before expiry; a failed refresh waits %ums, "
           "doubling up to %ums)\n",
           cfg->vault_key_file != NULL ? cfg->vault_key_file
                                       : "$CREDENTIALS_DIRECTORY/vault.key when present, else none",
           cfg->vault_refresh_margin_s, cfg->vault_backoff_min_ms, cfg->vault_backoff_max_ms);
    printf("salesforce instance URLs: under");
    for (size_t i = 0; i < cfg->nsf_domains; i++)
        printf(" %s", cfg->sf_domains[i]);
    printf(" (or plain http to loopback)\nhubspot token URLs: under");
    for (size_t i = 0; i < cfg->nhs_domains; i++)
        printf(" %s", cfg->hs_domains[i]);
    printf(" (or plain http to loopback)\n");
    printf("admin: unix socket %s%s%s%s\n", cfg->admin_socket,
           cfg->admin_listen != NULL ? ", TCP " : "",
           cfg->admin_listen != NULL ? cfg->admin_listen : "",
           cfg->admin_listen != NULL ? " (bearer token required)" : "");
    printf("upstream hubspot: %s\n", cfg->upstream_hubspot);
    printf("upstream salesforce: %s\n", cfg->upstream_salesforce != NULL
                                            ? cfg->upstream_salesforce
                                            : "(none: /salesforce/ requests are refused)");
    printf("ca_bundle: %s\n", cfg->ca_bundle != NULL ? cfg->ca_bundle : "(system trust store)");
    printf("rules_dir: %s (%zu workspaces%s)\n", cfg->rules_dir, cfg->rules->n,
           cfg->rules->fallback != NULL ? ", with default" : ", no default");
    for (size_t i = 0; i < cfg->rules->n; i++)
        printf("  workspace %s: %s, %s\n", cfg->rules->ws[i]->name, cfg->rules->ws[i]->file,
               rules_mode_name(cfg->rules->ws[i]->mode));
    printf("callers: %zu registered token fingerprints\n", cfg->ncallers);
    printf("limits: header_bytes=%zu header_count=%zu body_bytes=%zu response_bytes=%zu "
           "connections=%zu per worker\n",
           l->header_bytes, l->header_count, l->body_bytes, l->response_bytes, l->connections);
    printf("timeouts: header=%ums body=%ums idle=%ums write=%ums upstream_connect=%ums "
           "upstream=%ums drain=%ums before_read_window=%ums\n",
           l->header_timeout_ms, l->body_timeout_ms, l->idle_timeout_ms, l->write_timeout_ms,
           cfg->upstream_connect_timeout_ms, cfg->upstream_timeout_ms, cfg->drain_timeout_ms,
           cfg->before_read_window_ms);
}
