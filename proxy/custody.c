/*
 * custody.c - crmgate keys, sealed integration records, and which
 * integration a caller uses (see custody.h).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "custody.h"
#include "log.h"

#define CUSTODY_AAD_TAG    "crmgate-cred-v1"
#define CUSTODY_CHECK_KEY  "vault_check"
#define CUSTODY_CHECK_TEXT "crmgate vault check"

/* Set once before the workers start; read-only afterwards. */
static struct vault *custody_the_vault;

void custody_init(struct vault *v)
{
    custody_the_vault = v;
}

const struct vault *custody_vault(void)
{
    return custody_the_vault;
}

long long custody_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void custody_shutdown(void)
{
    vault_free(custody_the_vault);
    custody_the_vault = NULL;
}

const char *custody_scope_name(enum custody_scope s)
{
    return s == CUSTODY_SCOPE_USER ? "user" : "workspace";
}

const char *custody_type_name(enum custody_type t)
{
    return t == CUSTODY_TYPE_OAUTH ? "oauth" : "private_app";
}

/* ----- base64 (standard for records, url-safe for keys) ----- */

static char *custody_b64(const unsigned char *in, size_t len)
{
    size_t cap = 4 * ((len + 2) / 3) + 1;
    char *out = malloc(cap);

    if (out == NULL)
        return NULL;
    EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    return out;
}

/* Decode standard base64 (with padding) into a new buffer; NULL when malformed. */
static unsigned char *custody_unb64(const char *in, size_t *outlen)
{
    size_t len = strlen(in);
    unsigned char *out;
    int n;

    if (len == 0 || len % 4 != 0)
        return NULL;
    out = malloc(len / 4 * 3 + 1);
    if (out == NULL)
        return NULL;
    n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len);
    if (n < 0) {
        free(out);
        return NULL;
    }
    if (len >= 1 && in[len - 1] == '=')
        n--;
    if (len >= 2 && in[len - 2] == '=')
        n--;
    *outlen = (size_t)n;
    return out;
}

/* ----- the vault check ----- */

static int custody_has_credentials(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    (void)k, (void)kl, (void)v, (void)vl;
    *(int *)arg = 1;
    return 1;
}

int custody_check_store(struct store *s, const struct vault *v, char *err, size_t errlen)
{
    size_t len = 0, plen = 0;
    char serr[256];
    unsigned char *check = store_kv_get(s, STORE_TABLE_META, CUSTODY_CHECK_KEY,
                                        strlen(CUSTODY_CHECK_KEY), &len, serr, sizeof(serr));
    unsigned char *pt = NULL;
    int any = 0, rc = -1;

    if (check == NULL && serr[0] != '\0') {
        snprintf(err, errlen, "vault: %s", serr);
        return -1;
    }
    if (v == NULL) {
        if (store_kv_scan(s, STORE_TABLE_CREDENTIALS, NULL, 0, custody_has_credentials, &any, serr,
                          sizeof(serr)) < 0) {
            snprintf(err, errlen, "vault: %s", serr);
            goto done;
        }
        if (check != NULL || any) {
            snprintf(err, errlen,
                     "vault key missing: this state directory holds sealed CRM credentials; give "
                     "the vault key (vault.key_file, --vault-key, or "
                     "$CREDENTIALS_DIRECTORY/vault.key)");
            goto done;
        }
        rc = 0;
        goto done;
    }
    if (check == NULL) {
        unsigned char *blob = NULL;
        size_t blen = 0;
        if (vault_seal(v, VAULT_CHECK_AAD, strlen(VAULT_CHECK_AAD), CUSTODY_CHECK_TEXT,
                       strlen(CUSTODY_CHECK_TEXT), &blob, &blen) < 0 ||
            store_kv_put_sync(s, STORE_TABLE_META, CUSTODY_CHECK_KEY, strlen(CUSTODY_CHECK_KEY),
                              blob, blen, serr, sizeof(serr)) < 0) {
            free(blob);
            snprintf(err, errlen, "vault: cannot record the key check: %s", serr);
            goto done;
        }
        free(blob);
        log_notice("vault: first start with this key; its check value is recorded");
        rc = 0;
        goto done;
    }
    if (vault_open(v, VAULT_CHECK_AAD, strlen(VAULT_CHECK_AAD), check, len, &pt, &plen) < 0 ||
        plen != strlen(CUSTODY_CHECK_TEXT) || memcmp(pt, CUSTODY_CHECK_TEXT, plen) != 0) {
        snprintf(err, errlen,
                 "vault key wrong: it is not the key this state directory's credentials were "
                 "sealed with");
        goto done;
    }
    rc = 0;
done:
    if (pt != NULL)
        OPENSSL_cleanse(pt, plen);
    free(pt);
    free(check);
    return rc;
}

/* ----- keys ----- */

static int custody_b64url_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

int custody_key_parse(const char *tok, size_t len, unsigned char hash[32])
{
    unsigned int mdlen = 0;

    if (len != CUSTODY_KEY_LEN || memcmp(tok, CUSTODY_KEY_PREFIX, 4) != 0)
        return 0;
    for (size_t i = 4; i < len; i++) {
        if (!custody_b64url_char(tok[i]))
            return 0;
    }
    return EVP_Digest(tok, len, hash, &mdlen, EVP_sha256(), NULL) == 1 && mdlen == 32;
}

void custody_key_id(const unsigned char hash[32], char id[CUSTODY_KEY_ID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";

    for (size_t i = 0; i < CUSTODY_KEY_ID_LEN / 2; i++) {
        id[2 * i] = hex[hash[i] >> 4];
        id[2 * i + 1] = hex[hash[i] & 15];
    }
    id[CUSTODY_KEY_ID_LEN] = '\0';
}

int custody_key_generate(char out[CUSTODY_KEY_LEN + 1], unsigned char hash[32],
                         char id[CUSTODY_KEY_ID_LEN + 1])
{
    unsigned char rnd[CUSTODY_KEY_RANDOM];
    char b64[64];
    size_t n = 0;
    int rc = -1;

    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        goto done;
    EVP_EncodeBlock((unsigned char *)b64, rnd, (int)sizeof(rnd));
    memcpy(out, CUSTODY_KEY_PREFIX, 4);
    for (size_t i = 0; b64[i] != '\0' && b64[i] != '='; i++) {
        char c = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
        out[4 + n++] = c;
    }
    out[4 + n] = '\0';
    if (4 + n != CUSTODY_KEY_LEN || !custody_key_parse(out, CUSTODY_KEY_LEN, hash))
        goto done;
    custody_key_id(hash, id);
    rc = 0;
done:
    OPENSSL_cleanse(rnd, sizeof(rnd));
    OPENSSL_cleanse(b64, sizeof(b64));
    return rc;
}

static char *custody_dup(json_t *rec, const char *name)
{
    const char *s = json_string_value(json_object_get(rec, name));

    return s != NULL && s[0] != '\0' ? strdup(s) : NULL;
}

int custody_key_lookup(struct store *s, const unsigned char hash[32], long long now_ms,
                       struct custody_identity *id, char *why, size_t whylen)
{
    char err[256];
    size_t len = 0;
    char *val = store_kv_get(s, STORE_TABLE_KEYS, hash, 32, &len, err, sizeof(err));
    json_t *rec = NULL;
    const char *kind;
    json_int_t exp, revoked;

    memset(id, 0, sizeof(*id));
    custody_key_id(hash, id->key_id);
    if (val == NULL) {
        if (err[0] != '\0')
            snprintf(why, whylen, "crmgate could not check this key: %s", err);
        else
            snprintf(why, whylen, "this crmgate key is not known (key id %s)", id->key_id);
        return -1;
    }
    rec = json_loadb(val, len, 0, NULL);
    free(val);
    if (!json_is_object(rec)) {
        snprintf(why, whylen, "crmgate key %s has an unreadable record", id->key_id);
        goto fail;
    }
    revoked = json_integer_value(json_object_get(rec, "revoked_ms"));
    exp = json_integer_value(json_object_get(rec, "expires_ms"));
    if (revoked > 0) {
        snprintf(why, whylen, "crmgate key %s has been revoked", id->key_id);
        goto fail;
    }
    if (exp > 0 && exp <= now_ms) {
        snprintf(why, whylen, "crmgate key %s has expired", id->key_id);
        goto fail;
    }
    kind = json_string_value(json_object_get(rec, "kind"));
    id->caller.workspace = custody_dup(rec, "workspace");
    id->caller.user = custody_dup(rec, "user");
    id->workflow = custody_dup(rec, "workflow");
    if (id->caller.workspace == NULL || kind == NULL ||
        (strcmp(kind, "chat") != 0 && strcmp(kind, "workflow") != 0)) {
        snprintf(why, whylen, "crmgate key %s has an unreadable record", id->key_id);
        goto fail;
    }
    id->caller.kind = strcmp(kind, "chat") == 0 ? CONFIG_KIND_CHAT : CONFIG_KIND_WORKFLOW;
    id->expires_ms = exp;
    snprintf(id->caller.token_sha256, sizeof(id->caller.token_sha256), "key:%s", id->key_id);
    json_decref(rec);
    return 0;
fail:
    json_decref(rec);
    custody_identity_free(id);
    return -1;
}

void custody_identity_free(struct custody_identity *id)
{
    free(id->caller.workspace);
    id->caller.workspace = NULL;
    free(id->caller.user);
    id->caller.user = NULL;
    free(id->workflow);
    id->workflow = NULL;
}

/* ----- integration records ----- */

size_t custody_ref_key(const struct custody_ref *r, unsigned char *out, size_t cap)
{
    const char *parts[] = {r->ws, crm_name(r->crm), custody_scope_name(r->scope), r->user};
    size_t len = 0;

    for (size_t i = 0; i < 4; i++) {
        size_t n = strlen(parts[i]);
        if (len + n + 1 > cap)
            return 0;
        memcpy(out + len, parts[i], n);
        len += n;
        if (i < 3)
            out[len++] = '\0';
    }
    return len;
}

int custody_ref_parse(const void *key, size_t klen, struct custody_ref *r)
{
    const char *p = key, *end = p + klen;
    const char *parts[4];
    size_t lens[4];

    memset(r, 0, sizeof(*r));
    for (int i = 0; i < 4; i++) {
        const char *z = i < 3 ? memchr(p, '\0', (size_t)(end - p)) : end;
        if (z == NULL)
            return -1;
        parts[i] = p;
        lens[i] = (size_t)(z - p);
        p = z + (i < 3);
    }
    if (lens[0] == 0 || lens[0] > CUSTODY_MAX_NAME || lens[3] > CUSTODY_MAX_NAME)
        return -1;
    memcpy(r->ws, parts[0], lens[0]);
    memcpy(r->user, parts[3], lens[3]);
    if (lens[1] == 7 && memcmp(parts[1], "hubspot", 7) == 0)
        r->crm = CRM_HUBSPOT;
    else if (lens[1] == 10 && memcmp(parts[1], "salesforce", 10) == 0)
        r->crm = CRM_SALESFORCE;
    else
        return -1;
    r->scope = lens[2] == 4 && memcmp(parts[2], "user", 4) == 0 ? CUSTODY_SCOPE_USER
                                                                : CUSTODY_SCOPE_WORKSPACE;
    return 0;
}

/* The associated data: tag \0 key \0 type. Its length, 0 when it does not fit. */
static size_t custody_aad(const struct custody_ref *r, enum custody_type t, unsigned char *out,
                          size_t cap)
{
    size_t tl = strlen(CUSTODY_AAD_TAG), kl, nl = strlen(custody_type_name(t));

    if (cap < tl + 2 + nl)
        return 0;
    memcpy(out, CUSTODY_AAD_TAG, tl);
    out[tl] = '\0';
    kl = custody_ref_key(r, out + tl + 1, cap - tl - 2 - nl);
    if (kl == 0)
        return 0;
    out[tl + 1 + kl] = '\0';
    memcpy(out + tl + 2 + kl, custody_type_name(t), nl);
    return tl + 2 + kl + nl;
}

/* The sealed fields, in this order, as tag byte + 2-byte length + bytes. */
enum { CT_ACCESS = 1, CT_REFRESH, CT_CLIENT_ID, CT_CLIENT_SECRET, CT_INSTANCE, CT_TOKEN_URL };

static char **custody_field(struct custody_cred *c, int tag)
{
    switch (tag) {
    case CT_ACCESS:
        return &c->access_token;
    case CT_REFRESH:
        return &c->refresh_token;
    case CT_CLIENT_ID:
        return &c->client_id;
    case CT_CLIENT_SECRET:
        return &c->client_secret;
    case CT_INSTANCE:
        return &c->instance_url;
    case CT_TOKEN_URL:
        return &c->token_url;
    default:
        return NULL;
    }
}

/* Serialize the secrets of c into a new buffer. 0 / -1. */
static int custody_plain(const struct custody_cred *c, unsigned char **out, size_t *outlen)
{
    size_t cap = 0, len = 0;
    unsigned char *b;

    for (int t = CT_ACCESS; t <= CT_TOKEN_URL; t++) {
        char *s = *custody_field((struct custody_cred *)c, t);
        if (s != NULL)
            cap += 3 + strlen(s);
    }
    b = malloc(cap + 1);
    if (b == NULL)
        return -1;
    for (int t = CT_ACCESS; t <= CT_TOKEN_URL; t++) {
        char *s = *custody_field((struct custody_cred *)c, t);
        size_t n;
        if (s == NULL)
            continue;
        n = strlen(s);
        if (n > CUSTODY_MAX_SECRET) {
            OPENSSL_cleanse(b, len);
            free(b);
            return -1;
        }
        b[len++] = (unsigned char)t;
        b[len++] = (unsigned char)(n >> 8);
        b[len++] = (unsigned char)(n & 0xff);
        memcpy(b + len, s, n);
        len += n;
    }
    *out = b;
    *outlen = len;
    return 0;
}

static int custody_unplain(struct custody_cred *c, const unsigned char *p, size_t len)
{
    size_t off = 0;

    while (off < len) {
        int tag;
        size_t n;
        char **f;
        if (len - off < 3)
            return -1;
        tag = p[off];
        n = (size_t)p[off + 1] << 8 | p[off + 2];
        off += 3;
        f = custody_field(c, tag);
        if (f == NULL || *f != NULL || n > len - off)
            return -1;
        *f = strndup((const char *)p + off, n);
        if (*f == NULL)
            return -1;
        off += n;
    }
    return 0;
}

int custody_cred_record(const struct vault *v, const struct custody_ref *r,
                        const struct custody_cred *c, char **value, size_t *vlen)
{
    unsigned char aad[CUSTODY_MAX_KEY + 64], *plain = NULL, *blob = NULL;
    size_t alen = custody_aad(r, c->type, aad, sizeof(aad)), plen = 0, blen = 0;
    char *b64 = NULL;
    json_t *rec = NULL;
    int rc = -1;

    *value = NULL;
    if (alen == 0 || custody_plain(c, &plain, &plen) < 0 ||
        vault_seal(v, aad, alen, plain, plen, &blob, &blen) < 0 ||
        (b64 = custody_b64(blob, blen)) == NULL)
        goto done;
    rec =
        json_pack("{s:i, s:s, s:I, s:I, s:I, s:I, s:s, s:i, s:I, s:b, s:s}", "v", 1, "type",
                  custody_type_name(c->type), "created_ms", (json_int_t)c->created_ms, "updated_ms",
                  (json_int_t)c->updated_ms, "expires_ms", (json_int_t)c->expires_ms, "lifetime_s",
                  (json_int_t)c->lifetime_s, "attention", c->attention, "refresh_failures",
                  c->refresh_failures, "refresh_next_ms", (json_int_t)c->refresh_next_ms,
                  "refresh_refused", c->refresh_refused, "sealed", b64);
    if (rec == NULL)
        goto done;
    *value = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);
    if (*value != NULL) {
        *vlen = strlen(*value);
        rc = 0;
    }
done:
    json_decref(rec);
    free(b64);
    free(blob);
    if (plain != NULL)
        OPENSSL_cleanse(plain, plen);
    free(plain);
    return rc;
}

int custody_cred_read(struct store *s, const struct vault *v, const struct custody_ref *r,
                      struct custody_cred *out, char *err, size_t errlen)
{
    unsigned char key[CUSTODY_MAX_KEY], aad[CUSTODY_MAX_KEY + 64], *blob = NULL, *plain = NULL;
    size_t klen = custody_ref_key(r, key, sizeof(key)), len = 0, blen = 0, plen = 0, alen;
    char serr[256], *val;
    json_t *rec = NULL;
    const char *type, *sealed, *attention;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if (klen == 0) {
        snprintf(err, errlen, "integration name too long");
        return -1;
    }
    val = store_kv_get(s, STORE_TABLE_CREDENTIALS, key, klen, &len, serr, sizeof(serr));
    if (val == NULL) {
        if (serr[0] == '\0')
            return 0;
        snprintf(err, errlen, "%s", serr);
        return -1;
    }
    rec = json_loadb(val, len, 0, NULL);
    type = json_string_value(json_object_get(rec, "type"));
    sealed = json_string_value(json_object_get(rec, "sealed"));
    attention = json_string_value(json_object_get(rec, "attention"));
    if (type == NULL || sealed == NULL) {
        snprintf(err, errlen, "the integration record is unreadable");
        goto done;
    }
    out->type = strcmp(type, "oauth") == 0 ? CUSTODY_TYPE_OAUTH : CUSTODY_TYPE_PRIVATE_APP;
    out->expires_ms = json_integer_value(json_object_get(rec, "expires_ms"));
    out->lifetime_s = json_integer_value(json_object_get(rec, "lifetime_s"));
    out->created_ms = json_integer_value(json_object_get(rec, "created_ms"));
    out->updated_ms = json_integer_value(json_object_get(rec, "updated_ms"));
    snprintf(out->attention, sizeof(out->attention), "%s", attention != NULL ? attention : "");
    out->refresh_failures = (int)json_integer_value(json_object_get(rec, "refresh_failures"));
    out->refresh_next_ms = json_integer_value(json_object_get(rec, "refresh_next_ms"));
    out->refresh_refused = json_is_true(json_object_get(rec, "refresh_refused"));
    alen = custody_aad(r, out->type, aad, sizeof(aad));
    if (v == NULL) {
        snprintf(err, errlen, "crmgate has no vault key, so it cannot open credentials");
        goto done;
    }
    blob = custody_unb64(sealed, &blen);
    if (blob == NULL || alen == 0 || vault_open(v, aad, alen, blob, blen, &plain, &plen) < 0 ||
        custody_unplain(out, plain, plen) < 0 || out->access_token == NULL) {
        snprintf(err, errlen,
                 "the integration's credentials do not open with the vault key (altered, or "
                 "moved from another integration)");
        goto done;
    }
    out->stored = (unsigned char *)val;
    out->stored_len = len;
    val = NULL;
    rc = 1;
done:
    if (plain != NULL)
        OPENSSL_cleanse(plain, plen);
    free(plain);
    free(blob);
    free(val);
    json_decref(rec);
    if (rc < 0)
        custody_cred_free(out);
    return rc;
}

static void custody_str_free(char **s)
{
    if (*s != NULL) {
        OPENSSL_cleanse(*s, strlen(*s));
        free(*s);
    }
    *s = NULL;
}

void custody_cred_free(struct custody_cred *c)
{
    custody_str_free(&c->access_token);
    custody_str_free(&c->refresh_token);
    custody_str_free(&c->client_id);
    custody_str_free(&c->client_secret);
    custody_str_free(&c->instance_url);
    custody_str_free(&c->token_url);
    free(c->stored);
    c->stored = NULL;
    c->stored_len = 0;
}

/* ----- selection ----- */

int custody_select(const struct config_caller *who, const struct rules_ws *ws, enum crm crm,
                   struct custody_ref *out, char *why, size_t whylen)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->ws, sizeof(out->ws), "%s", who->workspace);
    out->crm = crm;
    if (who->kind == CONFIG_KIND_WORKFLOW || (ws != NULL && ws->chat_workspace)) {
        out->scope = CUSTODY_SCOPE_WORKSPACE;
        return 0;
    }
    if (who->user == NULL || who->user[0] == '\0') {
        snprintf(why, whylen,
                 "this chat key names no user, so crmgate cannot pick a user's "
                 "integration");
        return -1;
    }
    out->scope = CUSTODY_SCOPE_USER;
    snprintf(out->user, sizeof(out->user), "%s", who->user);
    return 0;
}

/* Whether h (hl bytes) names loopback: localhost, [::1], or 127.x.y.z (decimal octets). */
static int custody_loopback_host(const char *h, size_t hl)
{
    int dots = 0, digits = 0;

    if ((hl == 9 && strncasecmp(h, "localhost", 9) == 0) || (hl == 5 && memcmp(h, "[::1]", 5) == 0))
        return 1;
    if (hl < 4 || memcmp(h, "127.", 4) != 0)
        return 0;
    for (size_t i = 0; i < hl; i++) {
        if (h[i] == '.') {
            if (digits == 0 || digits > 3)
                return 0;
            dots++;
            digits = 0;
        } else if (h[i] >= '0' && h[i] <= '9') {
            digits++;
        } else {
            return 0;
        }
    }
    return dots == 3 && digits > 0 && digits <= 3;
}

/*
 * The host of an http(s) URL that custody_url_ok accepts: *h and *hl (without port, brackets
 * kept), *https. 0, or -1 when u is not one.
 */
static int custody_url_host(const char *u, const char **host, size_t *hostlen, int *https)
{
    const char *h, *end;
    size_t len = u != NULL ? strlen(u) : 0, hl;

    if (len == 0 || len > CUSTODY_MAX_URL)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)u[i];
        if (ch <= ' ' || ch >= 0x7f || ch == '?' || ch == '#' || ch == '\\')
            return -1;
    }
    *https = strncmp(u, "https://", 8) == 0;
    if (!*https && strncmp(u, "http://", 7) != 0)
        return -1;
    h = u + (*https ? 8 : 7);
    end = h + strcspn(h, "/");
    if (memchr(h, '@', (size_t)(end - h)) != NULL)
        return -1; /* user info: the host is not what it seems */
    hl = (size_t)(end - h);
    if (h[0] == '[') {
        const char *rb = memchr(h, ']', hl);
        if (rb == NULL)
            return -1;
        hl = (size_t)(rb + 1 - h);
    } else {
        const char *colon = memchr(h, ':', hl);
        if (colon != NULL)
            hl = (size_t)(colon - h);
    }
    if (hl == 0 || (h + hl < end && h[hl] != ':'))
        return -1;
    *host = h;
    *hostlen = hl;
    return 0;
}

int custody_url_ok(const char *u)
{
    const char *h;
    size_t hl;
    int https;

    if (custody_url_host(u, &h, &hl, &https) < 0)
        return 0;
    return https || custody_loopback_host(h, hl);
}

int custody_instance_url_ok(const char *u, const char *const *domains, size_t n)
{
    const char *h;
    size_t hl;
    int https;

    if (custody_url_host(u, &h, &hl, &https) < 0)
        return 0;
    if (!https)
        return custody_loopback_host(h, hl);
    for (size_t i = 0; i < hl; i++) {
        char c = h[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.'))
            return 0;
    }
    if (h[0] == '.' || h[hl - 1] == '.' || memmem(h, hl, "..", 2) != NULL)
        return 0; /* an empty label, or a trailing dot: not a name the domains are written in */
    for (size_t i = 0; i < n; i++) {
        size_t dl = strlen(domains[i]);
        if (dl == 0 || dl > hl || strncasecmp(h + hl - dl, domains[i], dl) != 0)
            continue;
        if (dl == hl || h[hl - dl - 1] == '.')
            return 1;
    }
    return 0;
}

int custody_crm_url_ok(const struct config *cfg, enum crm crm, const char *u)
{
    if (crm == CRM_SALESFORCE)
        return custody_instance_url_ok(u, (const char *const *)cfg->sf_domains, cfg->nsf_domains);
    return custody_instance_url_ok(u, (const char *const *)cfg->hs_domains, cfg->nhs_domains);
}

const char *custody_domains_key(enum crm crm)
{
    return crm == CRM_SALESFORCE ? "vault.salesforce_domains" : "vault.hubspot_domains";
}

long long custody_backoff_ms(int failures, unsigned min_ms, unsigned max_ms, unsigned rnd)
{
    long long d = min_ms > 0 ? min_ms : 1;

    for (int i = 1; i < failures && d < max_ms; i++)
        d *= 2;
    if (d > max_ms)
        d = max_ms;
    return d - (long long)(rnd % (unsigned)(d / 2 + 1));
}

int custody_token_ok(const char *t)
{
    size_t len = t != NULL ? strlen(t) : 0;

    if (len == 0 || len > CUSTODY_MAX_SECRET)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)t[i] <= ' ' || (unsigned char)t[i] >= 0x7f)
            return 0;
    }
    return 1;
}

int custody_cred_due(const struct custody_cred *c, long long now_ms, unsigned margin_s)
{
    if (c->type != CUSTODY_TYPE_OAUTH || c->expires_ms <= 0)
        return 0;
    return c->expires_ms - (long long)margin_s * 1000 <= now_ms;
}

json_t *custody_audit_json(const struct custody_ref *r)
{
    if (r == NULL) {
        /* every passthrough write's record has one: without json_pack's format walk */
        json_t *o = json_object();
        if (json_object_set_new_nocheck(o, "scope", json_string_nocheck("passthrough")) < 0) {
            json_decref(o);
            return NULL;
        }
        return o;
    }
    if (r->scope == CUSTODY_SCOPE_USER)
        return json_pack("{s:s, s:s, s:s}", "scope", "user", "user", r->user, "workspace", r->ws);
    return json_pack("{s:s, s:s}", "scope", "workspace", "workspace", r->ws);
}

/* ----- the per-thread cache ----- */

struct custody_cache_key {
    int used;
    unsigned char hash[32];
    struct custody_identity id;
};

struct custody_cache_cred {
    int used;
    unsigned char key[CUSTODY_MAX_KEY];
    size_t klen;
    struct custody_cred cred;
};

struct custody_cache {
    uint64_t gen;
    struct custody_cache_key keys[CUSTODY_CACHE_SLOTS];
    struct custody_cache_cred creds[CUSTODY_CACHE_SLOTS];
};

static pthread_once_t custody_cache_once = PTHREAD_ONCE_INIT;
static pthread_key_t custody_cache_tls;

static void custody_cache_flush(struct custody_cache *c)
{
    for (size_t i = 0; i < CUSTODY_CACHE_SLOTS; i++) {
        if (c->keys[i].used)
            custody_identity_free(&c->keys[i].id);
        c->keys[i].used = 0;
        if (c->creds[i].used)
            custody_cred_free(&c->creds[i].cred);
        c->creds[i].used = 0;
    }
}

static void custody_cache_destroy(void *arg)
{
    struct custody_cache *c = arg;

    custody_cache_flush(c);
    OPENSSL_cleanse(c, sizeof(*c));
    free(c);
}

static void custody_cache_init(void)
{
    if (pthread_key_create(&custody_cache_tls, custody_cache_destroy) != 0)
        log_error("custody: no thread-local cache (pthread_key_create failed); lookups read "
                  "the store every time");
}

/* The calling thread's cache, current for s's generation, or NULL (no memory). */
static struct custody_cache *custody_cache_get(struct store *s)
{
    struct custody_cache *c;
    uint64_t gen = store_kv_generation(s);

    pthread_once(&custody_cache_once, custody_cache_init);
    c = pthread_getspecific(custody_cache_tls);
    if (c == NULL) {
        c = calloc(1, sizeof(*c));
        if (c == NULL || pthread_setspecific(custody_cache_tls, c) != 0) {
            free(c);
            return NULL;
        }
        c->gen = gen;
    }
    if (c->gen != gen) {
        custody_cache_flush(c);
        c->gen = gen;
    }
    return c;
}

static size_t custody_slot(const unsigned char *p, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h % CUSTODY_CACHE_SLOTS;
}

static char *custody_sdup(const char *s, int *bad)
{
    char *d = s != NULL ? strdup(s) : NULL;

    if (s != NULL && d == NULL)
        *bad = 1;
    return d;
}

static int custody_identity_copy(struct custody_identity *dst, const struct custody_identity *src)
{
    int bad = 0;

    *dst = *src;
    dst->caller.workspace = custody_sdup(src->caller.workspace, &bad);
    dst->caller.user = custody_sdup(src->caller.user, &bad);
    dst->workflow = custody_sdup(src->workflow, &bad);
    if (bad)
        custody_identity_free(dst);
    return bad ? -1 : 0;
}

static int custody_cred_copy(struct custody_cred *dst, const struct custody_cred *src)
{
    int bad = 0;

    *dst = *src;
    dst->access_token = custody_sdup(src->access_token, &bad);
    dst->refresh_token = custody_sdup(src->refresh_token, &bad);
    dst->client_id = custody_sdup(src->client_id, &bad);
    dst->client_secret = custody_sdup(src->client_secret, &bad);
    dst->instance_url = custody_sdup(src->instance_url, &bad);
    dst->token_url = custody_sdup(src->token_url, &bad);
    dst->stored = NULL;
    if (!bad && src->stored != NULL) {
        dst->stored = malloc(src->stored_len + 1);
        if (dst->stored == NULL)
            bad = 1;
        else
            memcpy(dst->stored, src->stored, src->stored_len + 1);
    }
    if (bad)
        custody_cred_free(dst);
    return bad ? -1 : 0;
}

int custody_key_lookup_cached(struct store *s, const unsigned char hash[32], long long now_ms,
                              struct custody_identity *id, char *why, size_t whylen)
{
    struct custody_cache *c = custody_cache_get(s);
    struct custody_cache_key *e = c != NULL ? &c->keys[custody_slot(hash, 32)] : NULL;

    if (e != NULL && e->used && memcmp(e->hash, hash, 32) == 0 &&
        (e->id.expires_ms <= 0 || e->id.expires_ms > now_ms))
        return custody_identity_copy(id, &e->id) == 0
                   ? 0
                   : (snprintf(why, whylen, "crmgate is out of memory"), -1);
    if (custody_key_lookup(s, hash, now_ms, id, why, whylen) < 0)
        return -1;
    if (e != NULL) {
        if (e->used)
            custody_identity_free(&e->id);
        e->used = custody_identity_copy(&e->id, id) == 0;
        memcpy(e->hash, hash, 32);
    }
    return 0;
}

int custody_cred_read_cached(struct store *s, const struct vault *v, const struct custody_ref *r,
                             struct custody_cred *out, char *err, size_t errlen)
{
    struct custody_cache *c = custody_cache_get(s);
    unsigned char key[CUSTODY_MAX_KEY];
    size_t klen = custody_ref_key(r, key, sizeof(key));
    struct custody_cache_cred *e =
        c != NULL && klen > 0 ? &c->creds[custody_slot(key, klen)] : NULL;
    int found;

    if (e != NULL && e->used && e->klen == klen && memcmp(e->key, key, klen) == 0) {
        if (custody_cred_copy(out, &e->cred) == 0)
            return 1;
        snprintf(err, errlen, "crmgate is out of memory");
        return -1;
    }
    found = custody_cred_read(s, v, r, out, err, errlen);
    if (found == 1 && e != NULL) {
        if (e->used)
            custody_cred_free(&e->cred);
        e->used = custody_cred_copy(&e->cred, out) == 0;
        memcpy(e->key, key, klen);
        e->klen = klen;
    }
    return found;
}
