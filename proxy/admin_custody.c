/*
 * admin_custody.c - keys and integrations over the admin API (see
 * admin_custody.h). Handlers run on the admin thread; writes go through its
 * store port and are answered after their commit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "admin.h"
#include "admin_custody.h"
#include "custody.h"
#include "log.h"
#include "metrics.h"
#include "refresh.h"
#include "store.h"

#define ADMIN_CUSTODY_MAX_LIST 10000 /* keys or integrations one list returns */

/* What an asynchronous answer needs once its commit is done. */
struct admin_custody_op {
    json_t *answer; /* the 2xx body */
    int status;
    char what[2 * CUSTODY_MAX_NAME + 100]; /* for the log and errors */
};

static void admin_custody_op_free(void *arg)
{
    struct admin_custody_op *op = arg;

    json_decref(op->answer);
    free(op);
}

static void admin_custody_donecb(enum store_status st, uint64_t first, size_t n, void *arg)
{
    struct admin_req *r = arg;
    struct admin_custody_op *op = r->ctx;

    (void)first, (void)n;
    if (st == STORE_CONFLICT) {
        admin_reply_error(r, 404, "not_found", "%s: not found", op->what);
        return;
    }
    if (st != STORE_OK) {
        admin_reply_error(r, 503, "store_unavailable",
                          "%s could not be stored (%s); nothing changed", op->what,
                          store_status_name(st));
        return;
    }
    log_notice("admin: %s", op->what);
    admin_reply(r, op->status, json_incref(op->answer));
}

/* Attach op to r for the commit's callback; -1 after answering 503. */
static int admin_custody_pending(struct admin_req *r, json_t *answer, int status, const char *what)
{
    struct admin_custody_op *op = calloc(1, sizeof(*op));

    if (op == NULL) {
        json_decref(answer);
        admin_reply_error(r, 503, "out_of_memory", "crmgate is out of memory");
        return -1;
    }
    op->answer = answer;
    op->status = status;
    snprintf(op->what, sizeof(op->what), "%s", what);
    r->ctx = op;
    r->ctx_free = admin_custody_op_free;
    return 0;
}

/* A name in a request: non-empty, at most CUSTODY_MAX_NAME bytes, printable, no NUL or '/'. */
static int admin_custody_name_ok(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;

    if (n == 0 || n > CUSTODY_MAX_NAME)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x21 || c == 0x7f || c == '/')
            return 0;
    }
    return 1;
}

/* The request body as a JSON object (a new reference); -1 after answering 400. */
static int admin_custody_body(struct admin_req *r, json_t **body)
{
    if (admin_body_json(r, body) < 0)
        return -1;
    if (!json_is_object(*body)) {
        json_decref(*body);
        *body = NULL;
        admin_reply_error(r, 400, "bad_request", "the body must be a JSON object");
        return -1;
    }
    return 0;
}

/* Check that body has only the listed members; -1 after answering 400. */
static int admin_custody_keys_only(struct admin_req *r, json_t *body, const char *const *allowed)
{
    const char *key;
    json_t *v;

    json_object_foreach(body, key, v)
    {
        size_t i;
        for (i = 0; allowed[i] != NULL && strcmp(allowed[i], key) != 0; i++)
            ;
        if (allowed[i] == NULL && config_name_quotable(key)) {
            admin_reply_error(r, 400, "bad_request", "unknown member \"%s\"", key);
            return -1;
        }
        if (allowed[i] == NULL) {
            /* not quoted: it may be a token sent where a name belongs */
            admin_reply_error(r, 400, "bad_request",
                              "an unknown member (%zu characters, not shown)", strlen(key));
            return -1;
        }
    }
    return 0;
}

/* A string member or NULL; -1 after answering 400 when present and not a string. */
static int admin_custody_str(struct admin_req *r, json_t *body, const char *name, const char **out)
{
    json_t *v = json_object_get(body, name);

    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v)) {
        admin_reply_error(r, 400, "bad_request", "\"%s\" must be a string", name);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

/* ----- keys ----- */

static json_t *admin_custody_key_json(json_t *rec)
{
    json_t *out = json_deep_copy(rec);
    json_int_t rev = json_integer_value(json_object_get(rec, "revoked_ms"));
    json_int_t exp = json_integer_value(json_object_get(rec, "expires_ms"));
    const char *state = rev > 0                              ? "revoked"
                        : exp > 0 && exp <= custody_now_ms() ? "expired"
                                                             : "active";

    if (out != NULL)
        json_object_set_new(out, "state", json_string(state));
    return out;
}

static void admin_custody_key_create(struct admin_req *r)
{
    static const char *const allowed[] = {"workspace", "user",       "kind",
                                          "workflow",  "expires_ms", NULL};
    const char *ws, *user, *kind, *wf;
    char key[CUSTODY_KEY_LEN + 1], id[CUSTODY_KEY_ID_LEN + 1], *val = NULL,
                                                               what[2 * CUSTODY_MAX_NAME + 100];
    unsigned char hash[32];
    json_t *body, *rec = NULL, *answer, *exp;
    json_int_t expires = 0;
    long long now = custody_now_ms();

    if (admin_custody_body(r, &body) < 0)
        return;
    if (admin_custody_keys_only(r, body, allowed) < 0 ||
        admin_custody_str(r, body, "workspace", &ws) < 0 ||
        admin_custody_str(r, body, "user", &user) < 0 ||
        admin_custody_str(r, body, "kind", &kind) < 0 ||
        admin_custody_str(r, body, "workflow", &wf) < 0)
        goto done;
    exp = json_object_get(body, "expires_ms");
    if (exp != NULL && !json_is_null(exp)) {
        if (!json_is_integer(exp) || json_integer_value(exp) <= now) {
            admin_reply_error(r, 400, "bad_request",
                              "\"expires_ms\" must be a time in the future (milliseconds since "
                              "1970)");
            goto done;
        }
        expires = json_integer_value(exp);
    }
    if (!admin_custody_name_ok(ws)) {
        admin_reply_error(r, 400, "bad_request",
                          "\"workspace\" is required: 1 to %d printable characters, no '/'",
                          CUSTODY_MAX_NAME);
        goto done;
    }
    if (kind == NULL || (strcmp(kind, "chat") != 0 && strcmp(kind, "workflow") != 0)) {
        admin_reply_error(r, 400, "bad_request", "\"kind\" must be \"chat\" or \"workflow\"");
        goto done;
    }
    if (user != NULL && !admin_custody_name_ok(user)) {
        admin_reply_error(r, 400, "bad_request", "\"user\": 1 to %d printable characters, no '/'",
                          CUSTODY_MAX_NAME);
        goto done;
    }
    if (wf != NULL && !admin_custody_name_ok(wf)) {
        admin_reply_error(r, 400, "bad_request",
                          "\"workflow\": 1 to %d printable characters, no '/'", CUSTODY_MAX_NAME);
        goto done;
    }
    if (strcmp(kind, "chat") == 0 && user == NULL) {
        admin_reply_error(r, 400, "bad_request",
                          "a chat key acts for one user: give \"user\" (chat calls use that "
                          "user's integration)");
        goto done;
    }
    if (strcmp(kind, "chat") == 0 && wf != NULL) {
        admin_reply_error(r, 400, "bad_request", "\"workflow\" is for workflow keys only");
        goto done;
    }
    if (custody_key_generate(key, hash, id) < 0) {
        admin_reply_error(r, 503, "no_randomness", "crmgate could not generate a key");
        goto done;
    }
    rec = json_pack("{s:s, s:s, s:o, s:s, s:o, s:I, s:I, s:I}", "id", id, "workspace", ws, "user",
                    user != NULL ? json_string(user) : json_null(), "kind", kind, "workflow",
                    wf != NULL ? json_string(wf) : json_null(), "created_ms", (json_int_t)now,
                    "expires_ms", expires, "revoked_ms", (json_int_t)0);
    val = rec != NULL ? json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    answer = val != NULL ? admin_custody_key_json(rec) : NULL;
    if (answer == NULL || json_object_set_new(answer, "key", json_string(key)) < 0) {
        json_decref(answer);
        admin_reply_error(r, 503, "out_of_memory", "crmgate is out of memory");
        goto done;
    }
    snprintf(what, sizeof(what), "key %s created for workspace %s (%s%s%s)", id, ws, kind,
             user != NULL ? ", user " : "", user != NULL ? user : "");
    if (admin_custody_pending(r, answer, 201, what) == 0 &&
        store_kv_put(r->port, STORE_TABLE_KEYS, hash, 32, val, strlen(val), NULL, 0,
                     admin_custody_donecb, r) < 0)
        admin_reply_error(r, 503, "store_unavailable",
                          "the store is not taking writes; no key was created");
done:
    OPENSSL_cleanse(key, sizeof(key));
    free(val);
    json_decref(rec);
    json_decref(body);
}

struct admin_custody_list {
    json_t *arr;
    const char *ws;          /* filter, or NULL */
    unsigned backoff_max_ms; /* vault.refresh_backoff_max_ms (integrations) */
};

static int admin_custody_key_each(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    struct admin_custody_list *l = arg;
    json_t *rec = json_loadb(v, vl, 0, NULL);
    const char *ws = json_string_value(json_object_get(rec, "workspace"));

    (void)k, (void)kl;
    if (rec != NULL && (l->ws == NULL || (ws != NULL && strcmp(ws, l->ws) == 0)))
        json_array_append_new(l->arr, admin_custody_key_json(rec));
    json_decref(rec);
    return json_array_size(l->arr) >= ADMIN_CUSTODY_MAX_LIST;
}

/* The 8-byte prefix of the key hashes an id names; -1 when id is not 16 hex digits. */
static int admin_custody_id_prefix(const char *id, unsigned char out[8])
{
    if (strlen(id) != CUSTODY_KEY_ID_LEN)
        return -1;
    for (int i = 0; i < 8; i++) {
        unsigned v = 0;
        for (int j = 0; j < 2; j++) {
            char c = id[2 * i + j];
            v <<= 4;
            if (c >= '0' && c <= '9')
                v |= (unsigned)(c - '0');
            else if (c >= 'a' && c <= 'f')
                v |= (unsigned)(c - 'a' + 10);
            else
                return -1;
        }
        out[i] = (unsigned char)v;
    }
    return 0;
}

struct admin_custody_find {
    unsigned char hash[32];
    int found;
    int revoked;
};

static int admin_custody_find_each(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    struct admin_custody_find *f = arg;
    json_t *rec = json_loadb(v, vl, 0, NULL);

    if (kl == 32) {
        memcpy(f->hash, k, 32);
        f->found++;
        f->revoked = json_integer_value(json_object_get(rec, "revoked_ms")) > 0;
    }
    json_decref(rec);
    return 0;
}

static void admin_custody_keys(struct admin_req *r)
{
    char err[256], what[200];

    if (strcmp(r->method, "POST") == 0 && r->rest[0] == '\0') {
        admin_custody_key_create(r);
        return;
    }
    if (strcmp(r->method, "GET") == 0 && r->rest[0] == '\0') {
        struct admin_custody_list l = {json_array(), admin_param(r, "workspace"), 0};
        for (size_t i = 0; i < r->nparams; i++) {
            if (strcmp(r->params[i].name, "workspace") != 0) {
                json_decref(l.arr);
                admin_reply_error(r, 400, "bad_filter", "unknown parameter \"%s\" (workspace)",
                                  r->params[i].name);
                return;
            }
        }
        if (l.arr == NULL || store_kv_scan(r->store, STORE_TABLE_KEYS, NULL, 0,
                                           admin_custody_key_each, &l, err, sizeof(err)) < 0) {
            json_decref(l.arr);
            admin_reply_error(r, 500, "store_error", "%s", l.arr == NULL ? "out of memory" : err);
            return;
        }
        admin_reply(r, 200, json_pack("{s:o}", "keys", l.arr));
        return;
    }
    if (strcmp(r->method, "DELETE") == 0 && r->rest[0] != '\0') {
        struct admin_custody_find f = {0};
        unsigned char prefix[8];
        json_t *patch, *answer;
        if (admin_custody_id_prefix(r->rest, prefix) < 0) {
            admin_reply_error(r, 400, "bad_id", "\"%s\" is not a key id (16 hex digits)", r->rest);
            return;
        }
        if (store_kv_scan(r->store, STORE_TABLE_KEYS, prefix, 8, admin_custody_find_each, &f, err,
                          sizeof(err)) < 0) {
            admin_reply_error(r, 500, "store_error", "%s", err);
            return;
        }
        if (f.found != 1) {
            admin_reply_error(r, 404, "not_found", "no key %s", r->rest);
            return;
        }
        patch = json_pack("{s:I}", "revoked_ms", (json_int_t)custody_now_ms());
        answer = json_pack("{s:s, s:s}", "id", r->rest, "state", "revoked");
        snprintf(what, sizeof(what), "key %s revoked", r->rest);
        if (f.revoked) {
            json_decref(patch);
            admin_reply(r, 200, answer); /* already revoked: nothing to change */
            return;
        }
        if (patch == NULL || answer == NULL) {
            json_decref(patch);
            json_decref(answer);
            admin_reply_error(r, 503, "out_of_memory", "crmgate is out of memory");
            return;
        }
        if (admin_custody_pending(r, answer, 200, what) == 0 &&
            store_kv_merge(r->port, STORE_TABLE_KEYS, f.hash, 32, patch, admin_custody_donecb, r) <
                0)
            admin_reply_error(r, 503, "store_unavailable",
                              "the store is not taking writes; the key was not revoked");
        return;
    }
    admin_reply_error(r, 405, "method_not_allowed",
                      "keys: POST /v1/keys, GET /v1/keys, DELETE /v1/keys/{id}");
}

/* ----- integrations ----- */

/* The integration named by workspace/crm/user strings into ref; -1 after answering 400. */
static int admin_custody_ref(struct admin_req *r, const char *ws, const char *crm, const char *user,
                             struct custody_ref *ref)
{
    memset(ref, 0, sizeof(*ref));
    if (!admin_custody_name_ok(ws)) {
        admin_reply_error(r, 400, "bad_request",
                          "\"workspace\" is required: 1 to %d printable characters, no '/'",
                          CUSTODY_MAX_NAME);
        return -1;
    }
    if (crm == NULL || (strcmp(crm, "hubspot") != 0 && strcmp(crm, "salesforce") != 0)) {
        admin_reply_error(r, 400, "bad_request", "\"crm\" must be \"hubspot\" or \"salesforce\"");
        return -1;
    }
    if (user != NULL && !admin_custody_name_ok(user)) {
        admin_reply_error(r, 400, "bad_request", "\"user\": 1 to %d printable characters, no '/'",
                          CUSTODY_MAX_NAME);
        return -1;
    }
    snprintf(ref->ws, sizeof(ref->ws), "%s", ws);
    ref->crm = strcmp(crm, "hubspot") == 0 ? CRM_HUBSPOT : CRM_SALESFORCE;
    ref->scope = user != NULL ? CUSTODY_SCOPE_USER : CUSTODY_SCOPE_WORKSPACE;
    snprintf(ref->user, sizeof(ref->user), "%s", user != NULL ? user : "");
    return 0;
}

/*
 * The refresh state of an integration record: "state" ok, backoff (no
 * refresh before next_attempt_ms) or refused (none until an admin stores it
 * again), and the failed refreshes in a row.
 */
static json_t *admin_custody_refresh_json(json_t *rec, long long now_ms, unsigned max_ms)
{
    struct refresh_state st;
    int waiting;

    refresh_state_of(rec, &st);
    waiting = refresh_waiting(st.next_ms, now_ms, max_ms);
    return json_pack("{s:s, s:i, s:o}", "state",
                     st.refused ? "refused"
                     : waiting  ? "backoff"
                                : "ok",
                     "consecutive_failures", st.failures, "next_attempt_ms",
                     !st.refused && waiting ? json_integer(st.next_ms) : json_null());
}

/* The public view of an integration record: never a secret. */
static json_t *admin_custody_integration_json(const struct custody_ref *ref, json_t *rec,
                                              unsigned backoff_max_ms)
{
    const char *att = json_string_value(json_object_get(rec, "attention"));

    return json_pack(
        "{s:s, s:s, s:s, s:o, s:O, s:O, s:O, s:O, s:b, s:o, s:o}", "workspace", ref->ws, "crm",
        crm_name(ref->crm), "scope", custody_scope_name(ref->scope), "user",
        ref->scope == CUSTODY_SCOPE_USER ? json_string(ref->user) : json_null(), "type",
        json_object_get(rec, "type"), "created_ms", json_object_get(rec, "created_ms"),
        "updated_ms", json_object_get(rec, "updated_ms"), "expires_ms",
        json_object_get(rec, "expires_ms"), "needs_attention", att != NULL && att[0] != '\0',
        "attention", att != NULL && att[0] != '\0' ? json_string(att) : json_null(), "refresh",
        admin_custody_refresh_json(rec, custody_now_ms(), backoff_max_ms));
}

static char *admin_custody_sdup(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

static void admin_custody_integration_put(struct admin_req *r)
{
    static const char *const allowed[] = {
        "workspace", "crm",           "user",       "type",         "access_token", "refresh_token",
        "client_id", "client_secret", "expires_in", "instance_url", "token_url",    "lifetime_s",
        NULL};
    const char *ws, *crm, *user, *type, *at, *rt, *cid, *cs, *iu, *tu;
    struct custody_cred c = {0};
    struct custody_ref ref;
    unsigned char key[CUSTODY_MAX_KEY];
    size_t klen, vlen = 0;
    char *value = NULL, what[2 * CUSTODY_MAX_NAME + 100];
    json_t *body, *ei, *lt, *answer, *pub;
    long long now = custody_now_ms();
    const struct vault *v = custody_vault();

    if (v == NULL) {
        admin_reply_error(r, 409, "no_vault",
                          "crmgate runs without a vault key, so it cannot hold credentials: "
                          "start it with vault.key_file (crmgate vault keygen)");
        return;
    }
    if (admin_custody_body(r, &body) < 0)
        return;
    if (admin_custody_keys_only(r, body, allowed) < 0 ||
        admin_custody_str(r, body, "workspace", &ws) < 0 ||
        admin_custody_str(r, body, "crm", &crm) < 0 ||
        admin_custody_str(r, body, "user", &user) < 0 ||
        admin_custody_str(r, body, "type", &type) < 0 ||
        admin_custody_str(r, body, "access_token", &at) < 0 ||
        admin_custody_str(r, body, "refresh_token", &rt) < 0 ||
        admin_custody_str(r, body, "client_id", &cid) < 0 ||
        admin_custody_str(r, body, "client_secret", &cs) < 0 ||
        admin_custody_str(r, body, "instance_url", &iu) < 0 ||
        admin_custody_str(r, body, "token_url", &tu) < 0 ||
        admin_custody_ref(r, ws, crm, user, &ref) < 0)
        goto done;
    if (type == NULL || (strcmp(type, "private_app") != 0 && strcmp(type, "oauth") != 0)) {
        admin_reply_error(r, 400, "bad_request", "\"type\" must be \"private_app\" or \"oauth\"");
        goto done;
    }
    if (!custody_token_ok(at)) {
        admin_reply_error(r, 400, "bad_request",
                          "\"access_token\" is required (one token: visible ASCII, no whitespace "
                          "or control character)");
        goto done;
    }
    if ((rt != NULL && strlen(rt) > CUSTODY_MAX_SECRET) ||
        (cs != NULL && strlen(cs) > CUSTODY_MAX_SECRET) ||
        (cid != NULL && strlen(cid) > CUSTODY_MAX_SECRET)) {
        admin_reply_error(r, 400, "bad_request", "a secret is longer than %d bytes",
                          CUSTODY_MAX_SECRET);
        goto done;
    }
    if (strcmp(type, "oauth") == 0 && (rt == NULL || cid == NULL || cs == NULL)) {
        admin_reply_error(r, 400, "bad_request",
                          "an oauth integration needs \"refresh_token\", \"client_id\" and "
                          "\"client_secret\" (crmgate refreshes its access token)");
        goto done;
    }
    if (strcmp(type, "private_app") == 0 && (rt != NULL || cs != NULL)) {
        admin_reply_error(r, 400, "bad_request",
                          "a private_app integration holds only \"access_token\"");
        goto done;
    }
    if ((iu != NULL && !custody_url_ok(iu)) || (tu != NULL && !custody_url_ok(tu))) {
        admin_reply_error(r, 400, "bad_request",
                          "\"instance_url\" and \"token_url\" must be https:// URLs (http:// only "
                          "to loopback: localhost, 127.x.y.z, [::1]), without user info, query "
                          "or fragment");
        goto done;
    }
    if (iu != NULL && ref.crm != CRM_SALESFORCE) {
        admin_reply_error(r, 400, "bad_request", "\"instance_url\" is for salesforce only");
        goto done;
    }
    if ((iu != NULL && !custody_crm_url_ok(r->cfg, ref.crm, iu)) ||
        (tu != NULL && !custody_crm_url_ok(r->cfg, ref.crm, tu))) {
        int sf = ref.crm == CRM_SALESFORCE;
        char *const *list = sf ? r->cfg->sf_domains : r->cfg->hs_domains;
        size_t nlist = sf ? r->cfg->nsf_domains : r->cfg->nhs_domains;
        char doms[CONFIG_MAX_SF_DOMAINS * 64] = "";
        size_t n = 0;
        for (size_t i = 0; i < nlist && n < sizeof(doms); i++)
            n += (size_t)snprintf(doms + n, sizeof(doms) - n, "%s%s", i > 0 ? ", " : "", list[i]);
        admin_reply_error(r, 400, "bad_request",
                          "a %s integration's %s must be on a %s host, under %s (%s), or plain "
                          "http to loopback: crmgate sends the tokens there",
                          sf ? "Salesforce" : "HubSpot",
                          sf ? "\"instance_url\" and \"token_url\"" : "\"token_url\"",
                          sf ? "Salesforce" : "HubSpot", doms, custody_domains_key(ref.crm));
        goto done;
    }
    ei = json_object_get(body, "expires_in");
    lt = json_object_get(body, "lifetime_s");
    if ((ei != NULL && (!json_is_integer(ei) || json_integer_value(ei) <= 0 ||
                        json_integer_value(ei) > CUSTODY_MAX_EXPIRES_IN)) ||
        (lt != NULL && (!json_is_integer(lt) || json_integer_value(lt) <= 0 ||
                        json_integer_value(lt) > 365 * 86400))) {
        admin_reply_error(r, 400, "bad_request",
                          "\"expires_in\" and \"lifetime_s\" must be positive numbers of seconds");
        goto done;
    }
    if (ei != NULL && strcmp(type, "oauth") != 0) {
        admin_reply_error(r, 400, "bad_request", "\"expires_in\" is for oauth integrations");
        goto done;
    }
    c.type = strcmp(type, "oauth") == 0 ? CUSTODY_TYPE_OAUTH : CUSTODY_TYPE_PRIVATE_APP;
    c.access_token = admin_custody_sdup(at);
    c.refresh_token = admin_custody_sdup(rt);
    c.client_id = admin_custody_sdup(cid);
    c.client_secret = admin_custody_sdup(cs);
    c.instance_url = admin_custody_sdup(iu);
    c.token_url = admin_custody_sdup(tu);
    c.expires_ms = ei != NULL ? now + json_integer_value(ei) * 1000 : 0;
    /* a refresh the CRM answers without expires_in (Salesforce) lasts as long as this one */
    c.lifetime_s = lt != NULL ? json_integer_value(lt) : ei != NULL ? json_integer_value(ei) : 0;
    c.created_ms = c.updated_ms = now;
    klen = custody_ref_key(&ref, key, sizeof(key));
    if (klen == 0 || custody_cred_record(v, &ref, &c, &value, &vlen) < 0) {
        admin_reply_error(r, 503, "seal_failed", "crmgate could not seal the credentials");
        goto done;
    }
    pub = json_loadb(value, vlen, 0, NULL);
    answer = pub != NULL ? admin_custody_integration_json(&ref, pub, r->cfg->vault_backoff_max_ms)
                         : NULL;
    json_decref(pub);
    if (answer == NULL) {
        admin_reply_error(r, 503, "out_of_memory", "crmgate is out of memory");
        goto done;
    }
    snprintf(what, sizeof(what), "integration %s/%s (%s%s%s, %s) stored", ref.ws, crm,
             custody_scope_name(ref.scope), user != NULL ? " " : "", user != NULL ? user : "",
             type);
    if (admin_custody_pending(r, answer, 201, what) == 0 &&
        store_kv_put(r->port, STORE_TABLE_CREDENTIALS, key, klen, value, vlen, NULL, 0,
                     admin_custody_donecb, r) < 0)
        admin_reply_error(r, 503, "store_unavailable",
                          "the store is not taking writes; nothing was stored");
done:
    custody_cred_free(&c);
    if (value != NULL)
        OPENSSL_cleanse(value, vlen);
    free(value);
    json_decref(body);
}

static int admin_custody_int_each(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    struct admin_custody_list *l = arg;
    struct custody_ref ref;
    json_t *rec;

    if (custody_ref_parse(k, kl, &ref) < 0 || (l->ws != NULL && strcmp(ref.ws, l->ws) != 0))
        return 0;
    rec = json_loadb(v, vl, 0, NULL);
    if (rec != NULL)
        json_array_append_new(l->arr, admin_custody_integration_json(&ref, rec, l->backoff_max_ms));
    json_decref(rec);
    return json_array_size(l->arr) >= ADMIN_CUSTODY_MAX_LIST;
}

static void admin_custody_integrations(struct admin_req *r)
{
    char err[256], what[2 * CUSTODY_MAX_NAME + 100];
    struct custody_ref ref;
    unsigned char key[CUSTODY_MAX_KEY];
    size_t klen, vlen;
    void *cur;

    if (r->rest[0] != '\0') {
        admin_reply_error(r, 404, "not_found",
                          "integrations are named by parameters: /v1/integrations?workspace=W&"
                          "crm=C[&user=U]");
        return;
    }
    if (strcmp(r->method, "PUT") == 0 || strcmp(r->method, "POST") == 0) {
        admin_custody_integration_put(r);
        return;
    }
    for (size_t i = 0; i < r->nparams; i++) {
        const char *n = r->params[i].name;
        if (strcmp(n, "workspace") != 0 && strcmp(n, "crm") != 0 && strcmp(n, "user") != 0) {
            admin_reply_error(r, 400, "bad_filter",
                              "unknown parameter \"%s\" (workspace, crm, user)", n);
            return;
        }
    }
    if (strcmp(r->method, "GET") == 0) {
        struct admin_custody_list l = {json_array(), admin_param(r, "workspace"),
                                       r->cfg->vault_backoff_max_ms};
        if (l.arr == NULL || store_kv_scan(r->store, STORE_TABLE_CREDENTIALS, NULL, 0,
                                           admin_custody_int_each, &l, err, sizeof(err)) < 0) {
            json_decref(l.arr);
            admin_reply_error(r, 500, "store_error", "%s", l.arr == NULL ? "out of memory" : err);
            return;
        }
        admin_reply(r, 200, json_pack("{s:o}", "integrations", l.arr));
        return;
    }
    if (strcmp(r->method, "DELETE") != 0) {
        admin_reply_error(r, 405, "method_not_allowed",
                          "integrations: PUT, GET or DELETE /v1/integrations");
        return;
    }
    if (admin_custody_ref(r, admin_param(r, "workspace"), admin_param(r, "crm"),
                          admin_param(r, "user"), &ref) < 0)
        return;
    klen = custody_ref_key(&ref, key, sizeof(key));
    cur = store_kv_get(r->store, STORE_TABLE_CREDENTIALS, key, klen, &vlen, err, sizeof(err));
    if (cur == NULL) {
        admin_reply_error(r, err[0] != '\0' ? 500 : 404,
                          err[0] != '\0' ? "store_error" : "not_found", "%s",
                          err[0] != '\0' ? err : "no such integration");
        return;
    }
    free(cur);
    snprintf(what, sizeof(what), "integration %s/%s (%s%s%s) removed", ref.ws, crm_name(ref.crm),
             custody_scope_name(ref.scope), ref.user[0] != '\0' ? " " : "", ref.user);
    if (admin_custody_pending(r,
                              json_pack("{s:s, s:s, s:s, s:b}", "workspace", ref.ws, "crm",
                                        crm_name(ref.crm), "scope", custody_scope_name(ref.scope),
                                        "removed", 1),
                              200, what) == 0 &&
        store_kv_put(r->port, STORE_TABLE_CREDENTIALS, key, klen, NULL, 0, NULL, 0,
                     admin_custody_donecb, r) < 0)
        admin_reply_error(r, 503, "store_unavailable",
                          "the store is not taking writes; nothing was removed");
}

/* ----- the metrics ----- */

struct admin_custody_gauge {
    struct metrics_out *out;
    int failures; /* 0: the needs-attention gauge, 1: consecutive failed refreshes */
};

static void admin_custody_gauge_each(const struct custody_ref *ref, const struct refresh_state *st,
                                     void *arg)
{
    struct admin_custody_gauge *g = arg;
    char integ[CUSTODY_MAX_NAME + 32];
    const char *labels[6];

    snprintf(integ, sizeof(integ), "%s%s%s", custody_scope_name(ref->scope),
             ref->scope == CUSTODY_SCOPE_USER ? ":" : "", ref->user);
    labels[0] = "workspace";
    labels[1] = ref->ws;
    labels[2] = "crm";
    labels[3] = crm_name(ref->crm);
    labels[4] = "integration";
    labels[5] = integ;
    metrics_sample(g->out, g->failures ? st->failures : st->attention ? 1 : 0, labels, 3);
}

static int admin_custody_collect(struct metrics_out *out, void *arg)
{
    struct admin_custody_gauge g = {out, 0};

    return refresh_state_each(arg, admin_custody_gauge_each, &g);
}

static int admin_custody_collect_failures(struct metrics_out *out, void *arg)
{
    struct admin_custody_gauge g = {out, 1};

    return refresh_state_each(arg, admin_custody_gauge_each, &g);
}

static int admin_custody_collect_holds(struct metrics_out *out, void *arg)
{
    static const char *const reasons[REFRESH_HOLD_COUNT] = {"backoff", "refused"};

    (void)arg;
    for (int crm = CRM_HUBSPOT; crm <= CRM_SALESFORCE; crm++) {
        for (int h = 0; h < REFRESH_HOLD_COUNT; h++) {
            const char *labels[4] = {"crm", crm_name((enum crm)crm), "reason", reasons[h]};
            if (metrics_sample(out, (double)refresh_held_count((enum crm)crm, (enum refresh_hold)h),
                               labels, 2) < 0)
                return -1;
        }
    }
    return 0;
}

int admin_custody_register(struct store *s)
{
    if (admin_route_add("*", "/v1/keys", admin_custody_keys, NULL) < 0 ||
        admin_route_add("*", "/v1/integrations", admin_custody_integrations, NULL) < 0)
        return -1;
    if (metrics_family_add("crmgate_integration_needs_attention", METRICS_GAUGE,
                           "1 when the CRM refused an integration's credentials or their refresh; "
                           "an admin must reconnect it",
                           admin_custody_collect, s) < 0 ||
        metrics_family_add("crmgate_integration_refresh_failures", METRICS_GAUGE,
                           "OAuth refreshes of an integration that failed in a row (0 after a "
                           "success); crmgate backs off between them",
                           admin_custody_collect_failures, s) < 0 ||
        metrics_family_add("crmgate_oauth_refresh_backoff_total", METRICS_COUNTER,
                           "calls answered without an OAuth refresh because their integration's "
                           "refresh is backing off (503) or was refused for good (403)",
                           admin_custody_collect_holds, NULL) < 0)
        return -1;
    return 0;
}
