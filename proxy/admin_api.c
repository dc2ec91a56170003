/*
 * admin_api.c - crmgate's own admin endpoints, on admin.c's route table:
 *
 *   GET /healthz                   liveness and the store's state
 *   GET /metrics                   Prometheus text (metrics.c)
 *   GET /v1/workspaces             every workspace of the loaded rules
 *   GET /v1/workspaces/{ws}        its mode and dry-run state
 *   PUT /v1/workspaces/{ws}        {"dry_run": true | false | null}: the runtime switch,
 *                                  answered once durable (null: the rules decide again);
 *                                  leaving dry-run discards the workspace's overlay
 *   DELETE /v1/workspaces/{ws}/overlay  discard the overlay (the dry-run values), staying
 *                                  in whatever mode the workspace is
 *   GET /v1/audit                  filtered, paged records (query.h), newest first
 *   GET /v1/audit/{id}             one record
 *   GET /v1/stats[?workspace=W]    counts per workspace, workflow, object, field, outcome
 *
 * Bad input is a 400 naming what is wrong and changes nothing.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "admin.h"
#include "admin_api.h"
#include "log.h"
#include "metrics.h"
#include "query.h"
#include "store.h"

#ifndef CRMGATE_VERSION
#define CRMGATE_VERSION "0.0.0-dev"
#endif

static long long admin_api_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The rules workspace named exactly ws (no fallback to "default"), or NULL. */
static const struct rules_ws *admin_api_ws_find(const struct config *cfg, const char *ws)
{
    const struct rules *r = cfg->rules;

    for (size_t i = 0; r != NULL && i < r->n; i++) {
        if (strcmp(r->ws[i]->name, ws) == 0)
            return r->ws[i];
    }
    return NULL;
}

/* The workspace r->rest names, or NULL after answering 404 (r is then gone). */
static const struct rules_ws *admin_api_ws_named(struct admin_req *r)
{
    const struct rules_ws *w = admin_api_ws_find(r->cfg, r->rest);

    if (w == NULL)
        admin_reply_error(r, 404, "unknown_workspace",
                          "no workspace \"%s\" in the loaded rules (%s)", r->rest,
                          r->cfg->rules_dir);
    return w;
}

/* {"workspace","mode","rules_file","dry_run","dry_run_switch","dry_run_source"} */
static json_t *admin_api_ws_json(struct store *s, const struct rules_ws *w)
{
    int sw = store_workspace_dry_run(s, w->name);
    int effective = sw >= 0 ? sw : w->mode == RULES_MODE_DRY_RUN;

    return json_pack("{s:s, s:s, s:s?, s:b, s:o, s:s}", "workspace", w->name, "mode",
                     rules_mode_name(w->mode), "rules_file", w->file, "dry_run", effective,
                     "dry_run_switch", sw < 0 ? json_null() : json_boolean(sw), "dry_run_source",
                     sw >= 0 ? "switch" : "rules");
}

/* Endpoints without sub-paths: /healthz/x is no endpoint. 0, or -1 after a 404. */
static int admin_api_exact(struct admin_req *r)
{
    if (r->rest[0] == '\0')
        return 0;
    admin_reply_error(r, 404, "not_found", "no admin endpoint at %s", r->path);
    return -1;
}

static void admin_api_healthz(struct admin_req *r)
{
    struct store_info si;
    char last[24];

    if (admin_api_exact(r) < 0)
        return;
    store_info(r->store, &si);
    snprintf(last, sizeof(last), "%llu", (unsigned long long)si.last_id);
    admin_reply(r, 200,
                json_pack("{s:s, s:s, s:{s:b, s:s, s:I, s:I, s:I, s:I}}", "status", "ok", "version",
                          CRMGATE_VERSION, "store", "writes_refused", si.full, "last_id", last,
                          "queue_depth", (json_int_t)si.queue_depth, "map_bytes",
                          (json_int_t)si.map_bytes, "used_bytes", (json_int_t)si.used_bytes,
                          "max_map_bytes", (json_int_t)si.max_map_bytes));
}

static void admin_api_metrics(struct admin_req *r)
{
    struct evbuffer *buf;

    if (admin_api_exact(r) < 0)
        return;
    buf = evbuffer_new();
    if (buf == NULL || metrics_render(buf, r->store, r->cfg->leaf_cache) < 0) {
        if (buf != NULL)
            evbuffer_free(buf);
        admin_reply_error(r, 503, "out_of_memory", "crmgate is out of memory");
        return;
    }
    admin_reply_raw(r, 200, "text/plain; version=0.0.4; charset=utf-8", evbuffer_pullup(buf, -1),
                    evbuffer_get_length(buf));
    evbuffer_free(buf);
}

static void admin_api_ws_get(struct admin_req *r)
{
    const struct rules_ws *w;
    json_t *list;

    if (r->rest[0] == '\0') {
        list = json_array();
        for (size_t i = 0; list != NULL && r->cfg->rules != NULL && i < r->cfg->rules->n; i++) {
            if (json_array_append_new(list, admin_api_ws_json(r->store, r->cfg->rules->ws[i])) <
                0) {
                json_decref(list);
                list = NULL;
            }
        }
        if (list == NULL) {
            admin_reply_error(r, 503, "out_of_memory", "crmgate is out of memory");
            return;
        }
        admin_reply(r, 200, json_pack("{s:o}", "workspaces", list));
        return;
    }
    w = admin_api_ws_named(r);
    if (w == NULL)
        return;
    admin_reply(r, 200, admin_api_ws_json(r->store, w));
}

/* What a PUT waits for: the workspace it changes (the rules may be reloaded meanwhile). */
struct admin_api_put {
    struct admin_req *r;
    char *ws;
};

static void admin_api_put_free(void *arg)
{
    struct admin_api_put *p = arg;

    free(p->ws);
    free(p);
}

/* r's state naming the wslen bytes of ws, or NULL after answering 503 (r is then gone). */
static struct admin_api_put *admin_api_put_new(struct admin_req *r, const char *ws, size_t wslen)
{
    struct admin_api_put *p = calloc(1, sizeof(*p));

    if (p == NULL || (p->ws = strndup(ws, wslen)) == NULL) {
        free(p);
        admin_reply_error(r, 503, "out_of_memory", "crmgate is out of memory");
        return NULL;
    }
    p->r = r;
    r->ctx = p;
    r->ctx_free = admin_api_put_free;
    return p;
}

static void admin_api_ws_putcb(enum store_status st, uint64_t first, size_t n, void *arg)
{
    struct admin_req *r = arg;
    struct admin_api_put *p = r->ctx;
    const struct rules_ws *w;

    json_t *ans;

    (void)first;
    if (st != STORE_OK) {
        admin_reply_error(r, 503, "store_unavailable",
                          "the dry-run switch of %s could not be stored (%s); nothing changed",
                          p->ws, store_status_name(st));
        return;
    }
    w = admin_api_ws_find(r->cfg, p->ws);
    if (w == NULL) {
        /* stored, and the rules no longer know it: say what is stored */
        int sw = store_workspace_dry_run(r->store, p->ws);
        admin_reply(r, 200,
                    json_pack("{s:s, s:o, s:I}", "workspace", p->ws, "dry_run_switch",
                              sw < 0 ? json_null() : json_boolean(sw), "overlay_discarded",
                              (json_int_t)n));
        return;
    }
    log_notice("admin: workspace %s: dry-run switch %s; %zu dry-run record(s) discarded", p->ws,
               store_workspace_dry_run(r->store, p->ws) < 0
                   ? "cleared (the rules decide)"
                   : (store_workspace_dry_run(r->store, p->ws) ? "on" : "off"),
               n);
    ans = admin_api_ws_json(r->store, w);
    if (ans != NULL)
        json_object_set_new(ans, "overlay_discarded", json_integer((json_int_t)n));
    admin_reply(r, 200, ans);
}

static void admin_api_ws_put(struct admin_req *r)
{
    const struct rules_ws *w;
    struct admin_api_put *p;
    json_t *body, *d;
    const char *key;
    json_t *val;
    int dry;

    if (r->rest[0] == '\0') {
        admin_reply_error(r, 405, "method_not_allowed", "PUT needs /v1/workspaces/{workspace}");
        return;
    }
    w = admin_api_ws_named(r);
    if (w == NULL)
        return;
    if (admin_body_json(r, &body) < 0)
        return;
    if (!json_is_object(body)) {
        json_decref(body);
        admin_reply_error(r, 400, "bad_request", "the body must be a JSON object");
        return;
    }
    json_object_foreach(body, key, val)
    {
        if (strcmp(key, "dry_run") != 0) {
            if (strcmp(key, "mode") == 0)
                admin_reply_error(r, 400, "bad_request",
                                  "\"mode\" is set in the workspace's rules file; only "
                                  "\"dry_run\" can be changed here");
            else
                admin_reply_error(r, 400, "bad_request",
                                  "unknown member \"%s\" (expected {\"dry_run\": true, false "
                                  "or null})",
                                  key);
            json_decref(body);
            return;
        }
    }
    d = json_object_get(body, "dry_run");
    if (d == NULL || !(json_is_boolean(d) || json_is_null(d))) {
        json_decref(body);
        admin_reply_error(r, 400, "bad_request",
                          "\"dry_run\" must be true, false or null (null: the rules decide)");
        return;
    }
    dry = json_is_null(d) ? -1 : json_is_true(d);
    json_decref(body);
    p = admin_api_put_new(r, w->name, strlen(w->name));
    if (p == NULL)
        return;
    /* Leaving dry-run (off, or back to rules that do not say dry_run) ends its values: the
     * overlay goes in the same transaction, so turning dry-run on again starts clean. */
    if (store_workspace_set_dry_run(r->port, p->ws, dry,
                                    dry == 0 || (dry < 0 && w->mode != RULES_MODE_DRY_RUN),
                                    admin_api_ws_putcb, r) < 0)
        admin_reply_error(r, 503, "store_unavailable",
                          "the store is not taking writes (closing or overloaded); nothing "
                          "changed");
}

static void admin_api_overlay_delcb(enum store_status st, uint64_t first, size_t n, void *arg)
{
    struct admin_req *r = arg;
    struct admin_api_put *p = r->ctx;

    (void)first;
    if (st != STORE_OK) {
        admin_reply_error(r, 503, "store_unavailable",
                          "the dry-run records of %s could not be discarded (%s); nothing "
                          "changed",
                          p->ws, store_status_name(st));
        return;
    }
    log_notice("admin: workspace %s: %zu dry-run record(s) discarded", p->ws, n);
    admin_reply(r, 200,
                json_pack("{s:s, s:I}", "workspace", p->ws, "overlay_discarded", (json_int_t)n));
}

/* DELETE /v1/workspaces/{ws}/overlay: the dry-run values go, the mode and the audit stay. */
static void admin_api_overlay_del(struct admin_req *r)
{
    static const char suffix[] = "/overlay";
    size_t len = strlen(r->rest), wslen;
    struct admin_api_put *p;

    if (len <= sizeof(suffix) - 1 || strcmp(r->rest + len - (sizeof(suffix) - 1), suffix) != 0) {
        admin_reply_error(r, 405, "method_not_allowed",
                          "DELETE needs /v1/workspaces/{workspace}/overlay");
        return;
    }
    wslen = len - (sizeof(suffix) - 1);
    p = admin_api_put_new(r, r->rest, wslen);
    if (p == NULL)
        return;
    if (admin_api_ws_find(r->cfg, p->ws) == NULL) {
        admin_reply_error(r, 404, "unknown_workspace",
                          "no workspace \"%s\" in the loaded rules (%s)", p->ws, r->cfg->rules_dir);
        return;
    }
    if (store_overlay_discard(r->port, p->ws, NULL, admin_api_overlay_delcb, r) < 0)
        admin_reply_error(r, 503, "store_unavailable",
                          "the store is not taking writes (closing or overloaded); nothing "
                          "changed");
}

static void admin_api_audit(struct admin_req *r)
{
    const char *names[ADMIN_MAX_PARAMS], *values[ADMIN_MAX_PARAMS], *bad;
    struct store_query q;
    uint64_t next = 0;
    json_t *recs;
    char err[512], ids[24];

    if (strchr(r->rest, '/') != NULL) {
        admin_reply_error(r, 404, "not_found", "no admin endpoint at %s", r->path);
        return;
    }
    if (r->rest[0] != '\0') {
        unsigned long long id;
        char *end;
        json_t *rec;
        if (r->nparams > 0) {
            admin_reply_error(r, 400, "bad_filter", "GET /v1/audit/{id} takes no parameters");
            return;
        }
        errno = 0;
        id = strtoull(r->rest, &end, 10);
        if (r->rest[0] < '0' || r->rest[0] > '9' || errno != 0 || *end != '\0' || id == 0) {
            admin_reply_error(r, 400, "bad_id", "\"%s\" is not an audit record id (a number)",
                              r->rest);
            return;
        }
        rec = store_audit_get(r->store, id, err, sizeof(err));
        if (rec == NULL && err[0] == '\0')
            admin_reply_error(r, 404, "not_found", "no audit record %llu", id);
        else if (rec == NULL)
            admin_reply_error(r, 500, "store_error", "%s", err);
        else
            admin_reply(r, 200, rec);
        return;
    }
    for (size_t i = 0; i < r->nparams; i++) {
        names[i] = r->params[i].name;
        values[i] = r->params[i].value;
    }
    if (query_audit_from_params(names, values, r->nparams, admin_api_now_ms(), &q, &bad, err,
                                sizeof(err)) < 0) {
        json_t *e = json_pack("{s:{s:s, s:s, s:s}}", "error", "code", "bad_filter", "message", err,
                              "parameter", bad != NULL ? bad : "");
        admin_reply(r, 400, e);
        return;
    }
    if (store_query_audit(r->store, &q, &recs, &next, err, sizeof(err)) < 0) {
        admin_reply_error(r, 500, "store_error", "%s", err);
        return;
    }
    snprintf(ids, sizeof(ids), "%llu", (unsigned long long)next);
    admin_reply(r, 200,
                json_pack("{s:o, s:o}", "records", recs, "next",
                          next != 0 ? json_string(ids) : json_null()));
}

static void admin_api_stats(struct admin_req *r)
{
    const char *ws = admin_param(r, "workspace");
    json_t *out;
    char err[512];

    if (admin_api_exact(r) < 0)
        return;
    for (size_t i = 0; i < r->nparams; i++) {
        if (strcmp(r->params[i].name, "workspace") != 0) {
            json_t *e =
                json_pack("{s:{s:s, s:s, s:s}}", "error", "code", "bad_filter", "message",
                          "unknown parameter (known: workspace)", "parameter", r->params[i].name);
            admin_reply(r, 400, e);
            return;
        }
    }
    if (ws != NULL && (ws[0] == '\0' || strlen(ws) > QUERY_MAX_VALUE)) {
        json_t *e = json_pack("{s:{s:s, s:s, s:s}}", "error", "code", "bad_filter", "message",
                              "\"workspace\" is empty or too long", "parameter", "workspace");
        admin_reply(r, 400, e);
        return;
    }
    if (store_query_stats(r->store, ws, &out, err, sizeof(err)) < 0) {
        admin_reply_error(r, 500, "store_error", "%s", err);
        return;
    }
    admin_reply(r, 200, out);
}

int admin_api_register(void)
{
    if (admin_route_add("GET", "/healthz", admin_api_healthz, NULL) < 0 ||
        admin_route_add("GET", "/metrics", admin_api_metrics, NULL) < 0 ||
        admin_route_add("GET", "/v1/workspaces", admin_api_ws_get, NULL) < 0 ||
        admin_route_add("PUT", "/v1/workspaces", admin_api_ws_put, NULL) < 0 ||
        admin_route_add("DELETE", "/v1/workspaces", admin_api_overlay_del, NULL) < 0 ||
        admin_route_add("GET", "/v1/audit", admin_api_audit, NULL) < 0 ||
        admin_route_add("GET", "/v1/stats", admin_api_stats, NULL) < 0)
        return -1;
    return 0;
}
