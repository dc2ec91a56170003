/*
 * store_query.c - reading the audit log: filtered, paged queries and the
 * stats counters.
 *
 * A query walks ids downwards (newest first) on the most selective index
 * the filters allow: a record (crm, object and record given), a workflow
 * or a call (with the workspace), the workspace, or else the log itself.
 * Every candidate is checked against all the filters, so an index only
 * saves work and never changes an answer.
 *
 * Ids carry their commit time (id >> 16 is at least the record's ts in
 * milliseconds), so "since" stops the walk and "until" starts it late (with
 * a margin for the time between a record's ts and its commit). The work of
 * one call is bounded by STORE_QUERY_SCAN_MAX candidates: a page may then
 * hold fewer than limit records and still come with a cursor.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store.h"
#include "store_internal.h"

#define STORE_QUERY_SCAN_MAX    50000   /* candidates one query call examines */
#define STORE_QUERY_SLACK_MS    600000  /* a record's ts precedes its id's time by less */
#define STORE_STATS_SCAN_MAX    1000000 /* stats entries one call reads */
#define STORE_STATS_ROWS_MAX    5000    /* detail rows one answer carries */
#define STORE_QUERY_DEFAULT_LIM 100

static int store_q_eq(const json_t *rec, const char *key, const char *want)
{
    const char *v;

    if (want == NULL)
        return 1;
    v = json_string_value(json_object_get(rec, key));
    return v != NULL && strcmp(v, want) == 0;
}

static int store_q_match(const struct store_query *q, const json_t *rec)
{
    const char *obj = json_string_value(json_object_get(rec, "object"));
    long long ts = json_integer_value(json_object_get(rec, "ts"));

    if (!store_q_eq(rec, "workspace", q->workspace) || !store_q_eq(rec, "crm", q->crm) ||
        !store_q_eq(rec, "record", q->record) || !store_q_eq(rec, "workflow", q->workflow) ||
        !store_q_eq(rec, "call", q->call) || !store_q_eq(rec, "outcome", q->outcome))
        return 0;
    if (q->object != NULL && (obj == NULL || strcasecmp(obj, q->object) != 0))
        return 0;
    if (q->since_ms > 0 && ts < q->since_ms)
        return 0;
    if (q->until_ms > 0 && ts > q->until_ms)
        return 0;
    return 1;
}

/* Lower-case copy (object names in idx_record are lower-cased). */
static void store_q_lower(const char *s, char *out, size_t outlen)
{
    size_t i = 0;

    for (; s[i] != '\0' && i + 1 < outlen; i++)
        out[i] = (char)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] + 32 : s[i]);
    out[i] = '\0';
}

/*
 * Position cur on the greatest key <= prefix + be64(upper) (or on the log's
 * greatest id <= upper when plen is 0). 0 when positioned, MDB_NOTFOUND
 * when nothing is there, else an LMDB error.
 */
static int store_q_seek(MDB_cursor *cur, const unsigned char *prefix, size_t plen, uint64_t upper,
                        MDB_val *k, MDB_val *v)
{
    unsigned char key[STORE_MAX_KEY];
    int rc;

    memcpy(key, prefix, plen);
    store_be64_put(key + plen, upper);
    k->mv_size = plen + 8;
    k->mv_data = key;
    rc = mdb_cursor_get(cur, k, v, MDB_SET_RANGE);
    if (rc == MDB_NOTFOUND)
        return mdb_cursor_get(cur, k, v, MDB_LAST);
    if (rc != 0)
        return rc;
    if (k->mv_size == plen + 8 && memcmp(k->mv_data, key, plen + 8) == 0)
        return 0;
    return mdb_cursor_get(cur, k, v, MDB_PREV);
}

int store_query_audit(struct store *s, const struct store_query *q, json_t **out, uint64_t *next,
                      char *err, size_t errlen)
{
    unsigned char prefix[STORE_MAX_KEY];
    size_t plen = 0, limit = q->limit == 0 ? STORE_QUERY_DEFAULT_LIM : q->limit;
    uint64_t upper = q->cursor != 0 ? q->cursor - 1 : UINT64_MAX, lower = 0, last_seen = 0;
    enum store_db db = STORE_DB_AUDIT;
    size_t scanned = 0;
    int rc, more = 0;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    json_t *arr;

    *out = NULL;
    *next = 0;
    if (limit > STORE_QUERY_MAX)
        limit = STORE_QUERY_MAX;
    if (q->cursor == 1)
        goto empty; /* nothing lies below id 1 */
    /* times too far ahead for an id (ms << 16 would overflow) bound nothing, or everything */
    if (q->until_ms > 0 && (uint64_t)q->until_ms < (UINT64_MAX >> 16) - STORE_QUERY_SLACK_MS) {
        uint64_t u = (((uint64_t)q->until_ms + STORE_QUERY_SLACK_MS) << 16) | 0xffff;
        if (u < upper)
            upper = u;
    }
    if (q->since_ms > 0)
        lower =
            (uint64_t)q->since_ms <= (UINT64_MAX >> 16) ? (uint64_t)q->since_ms << 16 : UINT64_MAX;
    {
        char lobj[256];
        const char *parts[3];
        size_t np = 0;
        if (q->record != NULL && q->crm != NULL && q->object != NULL) {
            store_q_lower(q->object, lobj, sizeof(lobj));
            parts[0] = q->crm;
            parts[1] = lobj;
            parts[2] = q->record;
            np = 3;
            db = STORE_DB_IDX_RECORD;
        } else if (q->workspace != NULL && q->workflow != NULL) {
            parts[0] = q->workspace;
            parts[1] = q->workflow;
            np = 2;
            db = STORE_DB_IDX_WORKFLOW;
        } else if (q->workspace != NULL && q->call != NULL) {
            parts[0] = q->workspace;
            parts[1] = q->call;
            np = 2;
            db = STORE_DB_IDX_CALL;
        } else if (q->workspace != NULL) {
            parts[0] = q->workspace;
            np = 1;
            db = STORE_DB_IDX_WORKSPACE;
        }
        if (np > 0) {
            /* the key form with an id: each part then a NUL, then be64(id) */
            plen = store_key(prefix, parts, np, 1, 0);
            if (plen == 0)
                goto empty; /* longer than any key written: nothing was indexed under it */
            plen -= 8;
        }
    }
    arr = json_array();
    if (arr == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (store_read_begin(s, &txn, err, errlen) < 0) {
        json_decref(arr);
        return -1;
    }
    rc = mdb_cursor_open(txn, store_dbi(s, db), &cur);
    if (rc == 0)
        rc = store_q_seek(cur, prefix, plen, upper, &k, &v);
    for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_PREV)) {
        uint64_t id;
        json_t *rec;
        if (k.mv_size != plen + 8 || memcmp(k.mv_data, prefix, plen) != 0)
            break; /* left the prefix */
        id = store_be64_get((const unsigned char *)k.mv_data + plen);
        if (id < lower || id == 0)
            break;
        if (scanned++ >= STORE_QUERY_SCAN_MAX) {
            more = 1; /* out of budget: the caller goes on from here */
            break;
        }
        last_seen = id;
        if (db != STORE_DB_AUDIT) {
            unsigned char ik[8];
            MDB_val ak = {8, ik};
            store_be64_put(ik, id);
            rc = mdb_get(txn, store_dbi(s, STORE_DB_AUDIT), &ak, &v);
            if (rc == MDB_NOTFOUND)
                continue; /* an index entry without its record: skip it */
            if (rc != 0)
                break;
        }
        rec = json_loadb(v.mv_data, v.mv_size, 0, NULL);
        if (rec == NULL) {
            rc = MDB_CORRUPTED;
            snprintf(err, errlen, "audit record %llu is not valid JSON", (unsigned long long)id);
            break;
        }
        if (!store_q_match(q, rec)) {
            json_decref(rec);
            continue;
        }
        if (json_array_size(arr) >= limit) {
            /* one match beyond the page: there is a next page */
            json_decref(rec);
            more = 1;
            break;
        }
        if (json_array_append_new(arr, rec) < 0) {
            rc = ENOMEM;
            break;
        }
    }
    if (cur != NULL)
        mdb_cursor_close(cur);
    store_read_end(s, txn);
    if (rc != 0 && rc != MDB_NOTFOUND && !more) {
        if (rc != MDB_CORRUPTED)
            snprintf(err, errlen, "reading the audit log: %s", mdb_strerror(rc));
        json_decref(arr);
        return -1;
    }
    if (more) {
        /* the page ends at its last record, or (budget spent) at the last id looked at */
        json_t *lastrec = json_array_get(arr, json_array_size(arr) - 1);
        const char *ids = json_string_value(json_object_get(lastrec, "id"));
        *next = json_array_size(arr) >= limit && ids != NULL ? strtoull(ids, NULL, 10) : last_seen;
    }
    *out = arr;
    return 0;
empty:
    *out = json_array();
    if (*out == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* obj[key] += n */
static int store_q_add(json_t *obj, const char *key, uint64_t n)
{
    json_t *cur = json_object_get(obj, key);
    json_int_t base = cur != NULL ? json_integer_value(cur) : 0;

    return json_object_set_new(obj, key, json_integer(base + (json_int_t)n));
}

int store_query_stats(struct store *s, const char *ws, json_t **out, char *err, size_t errlen)
{
    unsigned char prefix[STORE_MAX_KEY];
    size_t plen = 0, scanned = 0;
    json_t *root, *by_outcome, *by_ws, *by_wf, *by_obj, *by_field, *by_user, *rows;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    uint64_t total = 0;
    int rc, truncated = 0, rows_truncated = 0;

    *out = NULL;
    if (ws != NULL) {
        size_t n = strlen(ws);
        if (n + 1 > STORE_MAX_KEY) {
            snprintf(err, errlen, "workspace name too long");
            return -1;
        }
        memcpy(prefix, ws, n);
        prefix[n] = '\0';
        plen = n + 1;
    }
    root = json_object();
    by_outcome = json_object();
    by_ws = json_object();
    by_wf = json_object();
    by_obj = json_object();
    by_field = json_object();
    by_user = json_object();
    rows = json_array();
    if (root == NULL || by_outcome == NULL || by_ws == NULL || by_wf == NULL || by_obj == NULL ||
        by_field == NULL || by_user == NULL || rows == NULL ||
        json_object_set_new(root, "by_outcome", by_outcome) < 0 ||
        json_object_set_new(root, "by_workspace", by_ws) < 0 ||
        json_object_set_new(root, "by_workflow", by_wf) < 0 ||
        json_object_set_new(root, "by_object", by_obj) < 0 ||
        json_object_set_new(root, "by_field", by_field) < 0 ||
        json_object_set_new(root, "by_user", by_user) < 0 ||
        json_object_set_new(root, "rows", rows) < 0) {
        /* set_new stole the ones it took even on failure; the rest leak only on OOM paths */
        json_decref(root);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (store_read_begin(s, &txn, err, errlen) < 0) {
        json_decref(root);
        return -1;
    }
    rc = mdb_cursor_open(txn, store_dbi(s, STORE_DB_STATS), &cur);
    if (rc == 0) {
        if (plen > 0) {
            k.mv_size = plen;
            k.mv_data = prefix;
            rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        } else {
            rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        }
    }
    for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        char key[STORE_MAX_KEY + 1], name[600];
        const char *part[7];
        size_t np = 0;
        uint64_t n;
        if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0)
            break;
        if (scanned++ >= STORE_STATS_SCAN_MAX) {
            truncated = 1;
            break;
        }
        if (k.mv_size > STORE_MAX_KEY || v.mv_size != 8)
            continue;
        memcpy(key, k.mv_data, k.mv_size);
        key[k.mv_size] = '\0';
        part[np++] = key;
        for (size_t i = 0; i < k.mv_size && np < 7; i++) {
            if (key[i] == '\0')
                part[np++] = key + i + 1;
        }
        if (np != 7)
            continue;
        n = store_be64_get(v.mv_data);
        total += n;
        rc = store_q_add(by_outcome, part[6], n);
        if (rc == 0)
            rc = store_q_add(by_ws, part[0], n);
        if (rc == 0)
            rc = store_q_add(by_wf, part[1], n);
        if (rc == 0)
            rc = store_q_add(by_user, part[2], n);
        snprintf(name, sizeof(name), "%s/%s", part[3], part[4]);
        if (rc == 0)
            rc = store_q_add(by_obj, name, n);
        if (rc == 0 && strcmp(part[5], "-") != 0) {
            snprintf(name, sizeof(name), "%s/%s.%s", part[3], part[4], part[5]);
            rc = store_q_add(by_field, name, n);
        }
        if (rc == 0 && json_array_size(rows) < STORE_STATS_ROWS_MAX) {
            rc = json_array_append_new(rows, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I}",
                                                       "workspace", part[0], "workflow", part[1],
                                                       "user", part[2], "crm", part[3], "object",
                                                       part[4], "field", part[5], "outcome",
                                                       part[6], "count", (json_int_t)n));
        } else if (rc == 0) {
            rows_truncated = 1;
        }
        if (rc != 0) {
            rc = ENOMEM;
            break;
        }
    }
    if (cur != NULL)
        mdb_cursor_close(cur);
    store_read_end(s, txn);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        snprintf(err, errlen, "reading the stats: %s", mdb_strerror(rc));
        json_decref(root);
        return -1;
    }
    if (json_object_set_new(root, "total", json_integer((json_int_t)total)) < 0 ||
        json_object_set_new(root, "truncated", json_boolean(truncated || rows_truncated)) < 0) {
        json_decref(root);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (ws != NULL && json_object_set_new(root, "workspace", json_string(ws)) < 0) {
        json_decref(root);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    *out = root;
    return 0;
}
