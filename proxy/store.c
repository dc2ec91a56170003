/*
 * store.c - the LMDB environment and its single writer thread.
 *
 * Group commit without a delay: the writer takes everything queued (up to
 * STORE_BATCH_MAX items) into one transaction; while that transaction
 * syncs, new work queues up and becomes the next batch. Under load a batch
 * holds many requests and costs one fsync; alone, a request waits for one
 * commit and nothing else.
 *
 * Map growth follows Postfix's slmdb: MDB_MAP_FULL aborts the batch, the map
 * doubles (up to max_map_bytes) under the resize lock that every read
 * transaction holds for reading, and the batch is replayed from scratch. At
 * the limit, or when the disk is full, the batch fails with STORE_FULL and
 * the request path refuses writes (503) instead of forwarding them unaudited.
 *
 * Room for outcomes: an intent is forwarded once committed, so its outcome
 * must still fit when the CRM has answered. At max_map_bytes an append of
 * audit records is admitted only while the map keeps room, after it, for
 * the outcomes of every intent still open and of its own, plus a reserve
 * for the pages one transaction copies (store_admit). One refused is
 * STORE_FULL alone: the rest of its batch commits. From then on appends
 * are refused until the room has grown by the reserve again (a discard),
 * so "full" does not flicker while small records squeeze into what is
 * left. Should the estimate fall short (MDB_MAP_FULL at the limit), the
 * batch is replayed without its appends, so outcomes and settings that
 * shared a batch with them still commit.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/crypto.h>

#include "../policy/crm.h"
#include "../policy/jsonfilter.h"
#include "../policy/jsonout.h"
#include "../policy/synthesize.h"
#include "log.h"
#include "store.h"
#include "store_internal.h"

#define STORE_MAX_READERS    510
#define STORE_READER_CHECK_S 60
#define STORE_MAX_WS_CACHE   4096       /* workspaces with a runtime switch kept in memory */
#define STORE_RESERVE_BYTES  (1u << 20) /* room kept at the limit beyond the open outcomes */
/* reckoned for a record beyond its bytes: index entries, stats keys, the leaf an update copies */
#define STORE_RECORD_SLACK 4096

static const char *const store_db_names[STORE_DB_COUNT] = {
    "audit",   "idx_workspace", "idx_record", "idx_workflow", "idx_call",    "workspaces",
    "overlay", "stats",         "meta",       "keys",         "credentials",
};

enum store_item_kind {
    STORE_ITEM_APPEND,
    STORE_ITEM_UPDATE,
    STORE_ITEM_WORKSPACE,
    STORE_ITEM_KV_PUT,
    STORE_ITEM_KV_MERGE,
    STORE_ITEM_OVERLAY_DISCARD
};

/*
 * An audit record as the writer takes it: serialized on the submitting
 * thread (the caller keeps its JSON, nothing is shared across threads),
 * with what the indexes and stats need. Appended records have "id":"" at
 * id_at; the writer puts the id it assigns there.
 */
struct store_rec {
    char *json; /* compact, sorted keys */
    size_t len, id_at;
    uint64_t id; /* updates: the record's own id (0: none, the batch fails with EINVAL) */
    int reindex; /* updates: its idx_record entry may be missing (store_record.reindex) */
    /* NULL when absent or empty; pointers into strs */
    const char *ws, *wf, *call, *record, *crm, *object, *user, *outcome;
    const char **fields; /* nfields names, also into strs */
    size_t nfields;
    char *strs;
};

struct store_item {
    struct store_item *next;
    enum store_item_kind kind;
    struct store_rec *recs; /* appends and updates */
    size_t nrecs;
    json_t *records; /* overlay discards: the workspaces still in dry-run */
    json_t *overlay;
    struct store_seen *seen; /* appends: nseen entries parallel to overlay, or NULL */
    size_t nseen;
    char *ws;
    int dry_run;
    int discard_overlay;    /* a workspace item: discard ws's overlay too (n = entries) */
    enum store_table table; /* KV items */
    unsigned char *key, *val, *match;
    size_t klen, vlen, mlen;
    int has_val, has_match;
    int conflict; /* a KV condition did not hold: nothing written, STORE_CONFLICT */
    int refused;  /* an append left out for want of room: STORE_FULL, the batch commits */
    json_t *patch;
    store_done_cb cb;
    void *arg;
    struct store_port *port;
    uint64_t submitted_us;
    enum store_status status;
    uint64_t first;
    size_t n;
};

struct store_port {
    struct store *s;
    struct event *ev;
    pthread_mutex_t lock;
    struct store_item *done_head, *done_tail;
    size_t pending; /* items submitted and not yet handed back */
    int dead;       /* freed by its owner: free the struct when pending reaches 0 */
};

struct store_ws {
    char *name;
    int dry_run;
};

struct store {
    MDB_env *env;
    MDB_dbi dbi[STORE_DB_COUNT];
    int readonly;
    char *dir;
    size_t map_bytes, max_map_bytes;
    pthread_rwlock_t resize_lock;

    /* the queue, guarded by qlock */
    pthread_mutex_t qlock;
    pthread_cond_t qcond;
    struct store_item *qhead, *qtail;
    size_t qlen;
    int stopping;
    pthread_t writer;
    int writer_started;

    uint64_t last_id;  /* writer only */
    size_t psize;      /* LMDB's page size */
    size_t open_bytes; /* writer only: room the outcomes of open intents are reckoned to need */
    int refusing;      /* writer only: appends refused until the room grows by the reserve */

    /* runtime dry-run switches, guarded by wslock */
    pthread_mutex_t wslock;
    struct store_ws *ws;
    size_t nws;

    /* counters (relaxed atomics) */
    uint64_t records, commits, commit_errors, latency_count, latency_sum_us;
    uint64_t kv_generation; /* bumped after every commit that changed a KV table */
    uint64_t latency_le[8];
    int full;
};

static const uint64_t store_latency_bounds[8] = STORE_LATENCY_BOUNDS_US;

static uint64_t store_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t store_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

const char *store_status_name(enum store_status st)
{
    switch (st) {
    case STORE_OK:
        return "ok";
    case STORE_FULL:
        return "full";
    case STORE_FAILED:
        return "failed";
    case STORE_CLOSED:
        return "closed";
    case STORE_CONFLICT:
        return "conflict";
    }
    return "failed";
}

void store_be64_put(unsigned char out[8], uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

uint64_t store_be64_get(const unsigned char in[8])
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = (v << 8) | in[i];
    return v;
}

size_t store_key(unsigned char *out, const char *const *parts, size_t nparts, int with_id,
                 uint64_t id)
{
    size_t len = 0;

    for (size_t i = 0; i < nparts; i++) {
        size_t n = strlen(parts[i]);
        if (len + n + 1 > STORE_MAX_KEY)
            return 0;
        memcpy(out + len, parts[i], n);
        len += n;
        out[len++] = '\0';
    }
    if (with_id) {
        if (len + 8 > STORE_MAX_KEY)
            return 0;
        store_be64_put(out + len, id);
        len += 8;
    } else if (len > 0) {
        len--; /* no separator after the last part */
    }
    return len;
}

MDB_dbi store_dbi(const struct store *s, enum store_db db)
{
    return s->dbi[db];
}

int store_read_begin(struct store *s, MDB_txn **txn, char *err, size_t errlen)
{
    int rc;

    for (int attempt = 0; attempt < 3; attempt++) {
        pthread_rwlock_rdlock(&s->resize_lock);
        rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, txn);
        if (rc == 0)
            return 0;
        pthread_rwlock_unlock(&s->resize_lock);
        if (rc == MDB_MAP_RESIZED) {
            /* another process grew the map beyond ours: adopt its size, with no txn live */
            pthread_rwlock_wrlock(&s->resize_lock);
            mdb_env_set_mapsize(s->env, 0);
            pthread_rwlock_unlock(&s->resize_lock);
        } else if (rc == MDB_READERS_FULL) {
            int dead = 0;
            mdb_reader_check(s->env, &dead);
        } else {
            break;
        }
    }
    snprintf(err, errlen, "cannot read the store in %s: %s", s->dir, mdb_strerror(rc));
    return -1;
}

void store_read_end(struct store *s, MDB_txn *txn)
{
    mdb_txn_abort(txn);
    pthread_rwlock_unlock(&s->resize_lock);
}

/* ----- workspace switches (in memory, loaded at open, updated after commits) ----- */

static struct store_ws *store_ws_find(struct store *s, const char *ws)
{
    for (size_t i = 0; i < s->nws; i++) {
        if (strcmp(s->ws[i].name, ws) == 0)
            return &s->ws[i];
    }
    return NULL;
}

/* Record ws's switch in the cache (dry_run -1 removes it); 0 / -1 out of memory. */
static int store_ws_cache_set(struct store *s, const char *ws, int dry_run)
{
    struct store_ws *e;
    int rc = 0;

    pthread_mutex_lock(&s->wslock);
    e = store_ws_find(s, ws);
    if (dry_run < 0) {
        if (e != NULL) {
            free(e->name);
            e->name = NULL;
            *e = s->ws[--s->nws];
        }
    } else if (e != NULL) {
        e->dry_run = dry_run;
    } else if (s->nws >= STORE_MAX_WS_CACHE) {
        rc = -1;
    } else {
        struct store_ws *nv = realloc(s->ws, (s->nws + 1) * sizeof(*nv));
        char *name = strdup(ws);
        if (nv == NULL || name == NULL) {
            free(name);
            if (nv != NULL)
                s->ws = nv;
            rc = -1;
        } else {
            s->ws = nv;
            s->ws[s->nws].name = name;
            s->ws[s->nws].dry_run = dry_run;
            s->nws++;
        }
    }
    pthread_mutex_unlock(&s->wslock);
    return rc;
}

int store_workspace_dry_run(struct store *s, const char *ws)
{
    struct store_ws *e;
    int v;

    if (s == NULL || ws == NULL)
        return -1;
    pthread_mutex_lock(&s->wslock);
    e = store_ws_find(s, ws);
    v = e != NULL ? e->dry_run : -1;
    pthread_mutex_unlock(&s->wslock);
    return v;
}

static int store_ws_load(struct store *s, char *err, size_t errlen)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;

    if (store_read_begin(s, &txn, err, errlen) < 0)
        return -1;
    rc = mdb_cursor_open(txn, s->dbi[STORE_DB_WORKSPACES], &cur);
    if (rc != 0) {
        store_read_end(s, txn);
        snprintf(err, errlen, "%s: %s", s->dir, mdb_strerror(rc));
        return -1;
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        char name[STORE_MAX_KEY + 1];
        json_t *j = json_loadb(v.mv_data, v.mv_size, 0, NULL);
        json_t *d = json_object_get(j, "dry_run");
        if (k.mv_size <= STORE_MAX_KEY && json_is_boolean(d)) {
            memcpy(name, k.mv_data, k.mv_size);
            name[k.mv_size] = '\0';
            store_ws_cache_set(s, name, json_is_true(d));
        }
        json_decref(j);
    }
    mdb_cursor_close(cur);
    store_read_end(s, txn);
    return 0;
}

/* ----- the writer ----- */

static const char *store_jstr(const json_t *rec, const char *key, const char *dflt)
{
    const char *v = json_string_value(json_object_get(rec, key));

    return v != NULL && v[0] != '\0' ? v : dflt;
}

/* Lower-case copy of s into buf (truncated to buflen - 1). */
static const char *store_lower(const char *s, char *buf, size_t buflen)
{
    size_t i = 0;

    for (; s[i] != '\0' && i + 1 < buflen; i++)
        buf[i] = (char)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] + 32 : s[i]);
    buf[i] = '\0';
    return buf;
}

/*
 * Put an index entry. With may_exist (an update's entry, most often put by
 * its append already), one present is left alone: a read, where a put of
 * the same bytes would still copy its page into the transaction.
 */
static int store_put_empty(struct store *s, MDB_txn *txn, enum store_db db,
                           const char *const *parts, size_t nparts, uint64_t id, int may_exist)
{
    unsigned char key[STORE_MAX_KEY];
    size_t klen = store_key(key, parts, nparts, 1, id);
    MDB_val k = {klen, key}, v = {0, ""}, cur;
    int rc;

    if (klen == 0) {
        log_warn("store: index %s: key too long for record %llu, not indexed", store_db_names[db],
                 (unsigned long long)id);
        return 0;
    }
    if (may_exist) {
        rc = mdb_get(txn, s->dbi[db], &k, &cur);
        if (rc == 0 && cur.mv_size == 0)
            return 0;
        if (rc != 0 && rc != MDB_NOTFOUND)
            return rc;
    }
    return mdb_put(txn, s->dbi[db], &k, &v, 0);
}

static const char *store_or(const char *v, const char *dflt)
{
    return v != NULL ? v : dflt;
}

/* The record index entry of r, when it names a record (may_exist: see store_put_empty). */
static int store_index_record(struct store *s, MDB_txn *txn, const struct store_rec *r, uint64_t id,
                              int may_exist)
{
    const char *p[3];
    char lobj[256];

    if (r->record == NULL)
        return 0;
    p[0] = store_or(r->crm, "-");
    p[1] = store_lower(store_or(r->object, "-"), lobj, sizeof(lobj));
    p[2] = r->record;
    return store_put_empty(s, txn, STORE_DB_IDX_RECORD, p, 3, id, may_exist);
}

static int store_index(struct store *s, MDB_txn *txn, const struct store_rec *r, uint64_t id)
{
    const char *ws = store_or(r->ws, "-");
    int rc;

    {
        const char *p[] = {ws};
        if ((rc = store_put_empty(s, txn, STORE_DB_IDX_WORKSPACE, p, 1, id, 0)) != 0)
            return rc;
    }
    if ((rc = store_index_record(s, txn, r, id, 0)) != 0)
        return rc;
    if (r->wf != NULL) {
        const char *p[] = {ws, r->wf};
        if ((rc = store_put_empty(s, txn, STORE_DB_IDX_WORKFLOW, p, 2, id, 0)) != 0)
            return rc;
    }
    if (r->call != NULL) {
        const char *p[] = {ws, r->call};
        if ((rc = store_put_empty(s, txn, STORE_DB_IDX_CALL, p, 2, id, 0)) != 0)
            return rc;
    }
    return 0;
}

static int store_count_one(struct store *s, MDB_txn *txn, const char *const *parts)
{
    unsigned char key[STORE_MAX_KEY], val[8];
    size_t klen = store_key(key, parts, 7, 0, 0);
    MDB_val k = {klen, key}, v;
    uint64_t n = 0;
    int rc;

    if (klen == 0)
        return 0; /* names too long to count; the record itself is kept */
    rc = mdb_get(txn, s->dbi[STORE_DB_STATS], &k, &v);
    if (rc == 0 && v.mv_size == 8)
        n = store_be64_get(v.mv_data);
    else if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    store_be64_put(val, n + 1);
    v.mv_size = 8;
    v.mv_data = val;
    return mdb_put(txn, s->dbi[STORE_DB_STATS], &k, &v, 0);
}

/* Count a record with a final outcome: once per field it touched, or once as "-". */
static int store_count(struct store *s, MDB_txn *txn, const struct store_rec *r)
{
    const char *outcome = store_or(r->outcome, "unknown");
    const char *p[7] = {store_or(r->ws, "-"),
                        store_or(r->wf, "-"),
                        store_or(r->user, "-"),
                        store_or(r->crm, "-"),
                        store_or(r->object, "-"),
                        "-",
                        outcome};
    int rc;

    if (strcmp(outcome, "unknown") == 0)
        return 0;
    if (r->nfields == 0)
        return store_count_one(s, txn, p);
    for (size_t i = 0; i < r->nfields; i++) {
        p[5] = store_or(r->fields[i], "-");
        if ((rc = store_count_one(s, txn, p)) != 0)
            return rc;
    }
    return 0;
}

/* Put a record at id; an appended one gets its id written into its "id":"" first. */
static int store_put_record(struct store *s, MDB_txn *txn, const struct store_rec *r, uint64_t id,
                            int append)
{
    unsigned char key[8];
    char digits[CRM_DEC_MAX];
    const char *ids = NULL;
    size_t idlen = 0;
    MDB_val k = {8, key}, v;
    int rc;

    if (append) {
        if (r->id_at == 0 || r->id_at > r->len)
            return EINVAL;
        ids = crm_dec_u64(id, digits, &idlen);
    }
    store_be64_put(key, id);
    v.mv_size = r->len + idlen;
    v.mv_data = NULL;
    rc = mdb_put(txn, s->dbi[STORE_DB_AUDIT], &k, &v, MDB_RESERVE | (append ? MDB_APPEND : 0));
    if (rc != 0)
        return rc;
    if (!append) {
        memcpy(v.mv_data, r->json, r->len);
        return 0;
    }
    memcpy(v.mv_data, r->json, r->id_at);
    memcpy((char *)v.mv_data + r->id_at, ids, idlen);
    memcpy((char *)v.mv_data + r->id_at + idlen, r->json + r->id_at, r->len - r->id_at);
    return 0;
}

/*
 * An overlay record as stored: the fast parser, else jansson, for a record
 * nested deeper than JSONFILTER_MAX_DEPTH (jsonout writes up to 2048, and a
 * Salesforce before-state, parsed by jansson, can carry that deep a value
 * into the record). NULL when neither parses it.
 */
static json_t *store_overlay_parse(const void *data, size_t len)
{
    json_t *rec = jsonfilter_parse(data, len, NULL, 0);

    return rec != NULL ? rec : json_loadb(data, len, 0, NULL);
}

/* Whether the stored value v is still exactly what the item's writer read of record i. */
static int store_seen_current(const struct store_item *it, size_t i, const MDB_val *v)
{
    const struct store_seen *sn = it->seen != NULL && i < it->nseen ? &it->seen[i] : NULL;

    return sn != NULL && sn->bytes != NULL && v->mv_size == sn->len &&
           memcmp(v->mv_data, sn->bytes, sn->len) == 0;
}

static int store_apply_overlay(struct store *s, MDB_txn *txn, struct store_item *it)
{
    size_t i;
    json_t *o;

    json_array_foreach(it->overlay, i, o)
    {
        unsigned char key[STORE_MAX_KEY];
        char lobj[256];
        const char *p[] = {store_jstr(o, "workspace", "-"), store_jstr(o, "crm", "-"),
                           store_lower(store_jstr(o, "object", "-"), lobj, sizeof(lobj)),
                           store_jstr(o, "id", "-")};
        size_t klen = store_key(key, p, 4, 0, 0);
        MDB_val k = {klen, key}, v, old;
        char *json;
        int rc;

        if (klen == 0)
            continue;
        /* Writes are serialized here: a write that raced another to the same record keeps
         * what the other wrote (synth_overlay_combine). Unless nothing was written to it
         * since its writer read it, and combining with that adds nothing (the writer
         * checked): then o stands as it is, with no parse here. */
        if (mdb_get(txn, s->dbi[STORE_DB_OVERLAY], &k, &old) == 0 &&
            !store_seen_current(it, i, &old)) {
            json_t *prev = store_overlay_parse(old.mv_data, old.mv_size);
            /* o is the item's own (nobody else holds it): combined in place. A batch
             * replayed after map growth combines again: what it adds is already there. */
            rc = synth_overlay_combine_into(prev, o);
            json_decref(prev);
            if (rc < 0)
                return ENOMEM;
        }
        json = jsonout_dumps(o, NULL);
        if (json == NULL)
            return ENOMEM;
        v.mv_size = strlen(json);
        v.mv_data = json;
        rc = mdb_put(txn, s->dbi[STORE_DB_OVERLAY], &k, &v, 0);
        free(json);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int store_apply_workspace(struct store *s, MDB_txn *txn, struct store_item *it)
{
    MDB_val k = {strlen(it->ws), it->ws}, v;
    char buf[96];
    int rc;

    if (it->dry_run < 0) {
        rc = mdb_del(txn, s->dbi[STORE_DB_WORKSPACES], &k, NULL);
        return rc == MDB_NOTFOUND ? 0 : rc;
    }
    snprintf(buf, sizeof(buf), "{\"dry_run\":%s,\"updated_ms\":%llu}",
             it->dry_run ? "true" : "false", (unsigned long long)store_wall_ms());
    v.mv_size = strlen(buf);
    v.mv_data = buf;
    return mdb_put(txn, s->dbi[STORE_DB_WORKSPACES], &k, &v, 0);
}

static MDB_dbi store_table_dbi(const struct store *s, enum store_table t)
{
    switch (t) {
    case STORE_TABLE_KEYS:
        return s->dbi[STORE_DB_KEYS];
    case STORE_TABLE_CREDENTIALS:
        return s->dbi[STORE_DB_CREDENTIALS];
    case STORE_TABLE_META:
        break;
    }
    return s->dbi[STORE_DB_META];
}

/*
 * A KV put, delete or merge. A condition that does not hold (if_match
 * differs, a merge target is missing) writes nothing and marks the item
 * conflicting; it is not an error of the batch.
 */
static int store_apply_kv(struct store *s, MDB_txn *txn, struct store_item *it)
{
    MDB_dbi dbi = store_table_dbi(s, it->table);
    MDB_val k = {it->klen, it->key}, cur, v;
    int rc;

    it->conflict = 0;
    rc = mdb_get(txn, dbi, &k, &cur);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    if (it->kind == STORE_ITEM_KV_MERGE) {
        json_t *j;
        char *json;
        if (rc == MDB_NOTFOUND) {
            it->conflict = 1;
            return 0;
        }
        j = json_loadb(cur.mv_data, cur.mv_size, 0, NULL);
        if (!json_is_object(j) || json_object_update(j, it->patch) < 0) {
            json_decref(j);
            it->conflict = 1;
            return 0;
        }
        json = jsonout_dumps(j, NULL);
        json_decref(j);
        if (json == NULL)
            return ENOMEM;
        v.mv_size = strlen(json);
        v.mv_data = json;
        rc = mdb_put(txn, dbi, &k, &v, 0);
        free(json);
        return rc;
    }
    if (it->has_match && (rc == MDB_NOTFOUND || cur.mv_size != it->mlen ||
                          memcmp(cur.mv_data, it->match, it->mlen) != 0)) {
        it->conflict = 1;
        return 0;
    }
    if (!it->has_val)
        return rc == MDB_NOTFOUND ? 0 : mdb_del(txn, dbi, &k, NULL);
    v.mv_size = it->vlen;
    v.mv_data = it->val;
    return mdb_put(txn, dbi, &k, &v, 0);
}

/* What one attempt at a batch may still take (store_admit). */
struct store_room {
    size_t left;     /* bytes free in the map; SIZE_MAX while it can still grow */
    size_t reserve;  /* kept beyond the open outcomes */
    size_t opened;   /* the outcomes of this batch's admitted intents */
    size_t admitted; /* appends admitted */
    int no_appends;  /* the replay after MDB_MAP_FULL at the limit: appends left out */
};

/*
 * Pages on LMDB's free list that the next write may reuse: each entry of
 * the free database (handle 0, as mdb_stat -f reads it) is keyed by the
 * transaction that freed its pages and starts with their count; those the
 * last commit freed (last_txn) still belong to the snapshot before it.
 * Readers holding older snapshots are not looked at: the reserve covers
 * them. 0 when the list cannot be read: the room is then underestimated.
 */
static size_t store_freelist_pages(struct store *s, size_t last_txn)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    size_t pages = 0, n, freed_by;

    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) != 0)
        return 0;
    if (mdb_cursor_open(txn, 0, &cur) == 0) {
        while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
            if (k.mv_size != sizeof(freed_by) || v.mv_size < sizeof(n))
                continue;
            memcpy(&freed_by, k.mv_data, sizeof(freed_by));
            if (freed_by >= last_txn)
                break; /* keys are in order */
            memcpy(&n, v.mv_data, sizeof(n));
            pages += n;
        }
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    return pages;
}

/* A record whose outcome is still to come: an intent's. */
static int store_rec_open(const struct store_rec *r)
{
    return r->outcome == NULL || strcmp(r->outcome, "unknown") == 0;
}

/* The room an append takes: now (its records) and later (its intents' outcomes). */
static size_t store_append_need(const struct store_item *it, size_t *later)
{
    size_t now = 0;

    *later = 0;
    for (size_t i = 0; i < it->nrecs; i++) {
        size_t b = it->recs[i].len + STORE_RECORD_SLACK;
        now += b;
        if (store_rec_open(&it->recs[i]))
            *later += b;
    }
    return now;
}

/*
 * The room a batch starts with: unlimited below max_map_bytes (the map
 * grows on MDB_MAP_FULL), else the pages past the last one used, and those
 * on the free list unless the others already hold all the batch could ask
 * for. Called by the writer with no transaction of its own live.
 */
static void store_room_init(struct store *s, struct store_room *room,
                            const struct store_item *batch, int no_appends)
{
    MDB_envinfo ei;
    size_t used, ask, later;

    room->reserve =
        s->max_map_bytes / 4 < STORE_RESERVE_BYTES ? s->max_map_bytes / 4 : STORE_RESERVE_BYTES;
    room->opened = 0;
    room->admitted = 0;
    room->no_appends = no_appends;
    room->left = SIZE_MAX;
    if (s->map_bytes < s->max_map_bytes)
        return;
    room->left = 0;
    if (mdb_env_info(s->env, &ei) != 0)
        return;
    used = (ei.me_last_pgno + 1) * s->psize;
    room->left = used < s->map_bytes ? s->map_bytes - used : 0;
    ask = 2 * room->reserve + s->open_bytes;
    for (const struct store_item *it = batch; it != NULL; it = it->next) {
        if (it->kind == STORE_ITEM_APPEND)
            ask += store_append_need(it, &later) + later;
    }
    if (room->left < ask)
        room->left += store_freelist_pages(s, ei.me_last_txnid) * s->psize;
}

/*
 * Whether an append may be written: with its bytes now and its intents'
 * outcomes later, the room must keep the open outcomes and the reserve
 * (twice the reserve while refusing: the low mark). 1 and the room taken,
 * or 0 and the store refusing.
 */
static int store_admit(struct store *s, const struct store_item *it, struct store_room *room)
{
    size_t later, now, want;

    if (room->no_appends)
        return 0;
    now = store_append_need(it, &later);
    if (room->left != SIZE_MAX) {
        want = room->reserve * (s->refusing ? 2 : 1) + s->open_bytes + room->opened + now + later;
        if (room->left < want) {
            s->refusing = 1;
            return 0;
        }
        s->refusing = 0;
        room->left -= now;
    }
    room->opened += later;
    room->admitted++;
    return 1;
}

/* Apply one item inside the batch's transaction; an LMDB error code or 0. */
static int store_apply(struct store *s, MDB_txn *txn, struct store_item *it, uint64_t *last_id,
                       struct store_room *room)
{
    int rc;

    switch (it->kind) {
    case STORE_ITEM_APPEND: {
        uint64_t now = store_wall_ms() << 16;
        it->first = 0;
        it->n = 0;
        it->refused = !store_admit(s, it, room);
        if (it->refused)
            return 0;
        for (size_t i = 0; i < it->nrecs; i++) {
            const struct store_rec *r = &it->recs[i];
            uint64_t id = *last_id + 1 > now ? *last_id + 1 : now;
            if ((rc = store_put_record(s, txn, r, id, 1)) != 0 ||
                (rc = store_index(s, txn, r, id)) != 0 || (rc = store_count(s, txn, r)) != 0)
                return rc;
            if (it->first == 0)
                it->first = id;
            *last_id = id;
        }
        it->n = it->nrecs;
        return it->overlay != NULL ? store_apply_overlay(s, txn, it) : 0;
    }
    case STORE_ITEM_UPDATE:
        for (size_t i = 0; i < it->nrecs; i++) {
            const struct store_rec *r = &it->recs[i];
            if (r->id == 0)
                return EINVAL;
            /* a create's record id arrives with its outcome: index it now */
            if ((rc = store_put_record(s, txn, r, r->id, 0)) != 0 ||
                (r->reindex && (rc = store_index_record(s, txn, r, r->id, 1)) != 0) ||
                (rc = store_count(s, txn, r)) != 0)
                return rc;
        }
        it->n = it->nrecs;
        return 0;
    case STORE_ITEM_WORKSPACE:
        it->n = 0;
        if ((rc = store_apply_workspace(s, txn, it)) != 0 || !it->discard_overlay)
            return rc;
        return store_overlay_discard_txn(s, txn, it->ws, NULL, &it->n);
    case STORE_ITEM_OVERLAY_DISCARD:
        return store_overlay_discard_txn(s, txn, it->ws, it->records, &it->n);
    case STORE_ITEM_KV_PUT:
    case STORE_ITEM_KV_MERGE:
        return store_apply_kv(s, txn, it);
    }
    return EINVAL;
}

/* Double the map (up to the limit) with no transaction live in the process; 0 / -1 at the limit. */
static int store_grow(struct store *s)
{
    size_t next;
    int rc;

    if (s->map_bytes >= s->max_map_bytes)
        return -1;
    next = s->map_bytes * 2 < s->max_map_bytes ? s->map_bytes * 2 : s->max_map_bytes;
    pthread_rwlock_wrlock(&s->resize_lock);
    rc = mdb_env_set_mapsize(s->env, next);
    pthread_rwlock_unlock(&s->resize_lock);
    if (rc != 0) {
        log_error("store: cannot grow the map to %zu bytes: %s", next, mdb_strerror(rc));
        return -1;
    }
    log_notice("store: map grown from %zu to %zu bytes (limit %zu)", s->map_bytes, next,
               s->max_map_bytes);
    s->map_bytes = next;
    return 0;
}

static enum store_status store_status_of(int rc)
{
    return rc == MDB_MAP_FULL || rc == ENOSPC || rc == EDQUOT ? STORE_FULL : STORE_FAILED;
}

/* After a commit: the open outcomes the batch added (its intents) and settled (its updates). */
static void store_settle_open(struct store *s, const struct store_item *batch, size_t opened)
{
    s->open_bytes += opened;
    for (const struct store_item *it = batch; it != NULL; it = it->next) {
        if (it->kind != STORE_ITEM_UPDATE)
            continue;
        for (size_t i = 0; i < it->nrecs; i++) {
            size_t b = it->recs[i].len + STORE_RECORD_SLACK;
            s->open_bytes = s->open_bytes > b ? s->open_bytes - b : 0;
        }
    }
}

/*
 * Write a batch in one transaction, replaying it after map growth, or
 * without its appends when the map is at its limit; sets every item's status.
 */
static void store_write_batch(struct store *s, struct store_item *batch)
{
    enum store_status st = STORE_OK;
    struct store_room room;
    int rc = 0, no_appends = 0, was_refusing = s->refusing;

    for (;;) {
        uint64_t last = s->last_id;
        MDB_txn *txn;
        store_room_init(s, &room, batch, no_appends);
        rc = mdb_txn_begin(s->env, NULL, 0, &txn);
        if (rc == 0) {
            for (struct store_item *it = batch; it != NULL && rc == 0; it = it->next)
                rc = store_apply(s, txn, it, &last, &room);
            if (rc == 0)
                rc = mdb_txn_commit(txn); /* the fsync: one per batch */
            else
                mdb_txn_abort(txn);
        }
        if (rc == 0) {
            __atomic_store_n(&s->last_id, last, __ATOMIC_RELAXED); /* store_info reads it */
            /* before any callback runs: whoever is told "committed" sees the new generation */
            for (struct store_item *it = batch; it != NULL; it = it->next) {
                if ((it->kind == STORE_ITEM_KV_PUT || it->kind == STORE_ITEM_KV_MERGE) &&
                    !it->conflict) {
                    __atomic_add_fetch(&s->kv_generation, 1, __ATOMIC_RELEASE);
                    break;
                }
            }
            break;
        }
        if (rc == MDB_MAP_FULL && store_grow(s) == 0)
            continue;
        if (rc == MDB_MAP_FULL && room.admitted > 0) {
            /* the room was overestimated: the outcomes and settings go in without the appends */
            s->refusing = 1;
            no_appends = 1;
            continue;
        }
        st = store_status_of(rc);
        break;
    }
    if (st == STORE_OK) {
        store_settle_open(s, batch, room.opened);
        __atomic_add_fetch(&s->commits, 1, __ATOMIC_RELAXED);
        __atomic_store_n(&s->full, s->refusing, __ATOMIC_RELAXED);
        if (s->refusing && !was_refusing)
            log_error("store: the map is at store.max_map_bytes: new audit records are refused "
                      "(writes get 503) so that the outcomes of the writes under way still fit");
        else if (!s->refusing && was_refusing)
            log_notice("store: audit records are taken again (room was freed)");
    } else {
        __atomic_add_fetch(&s->commit_errors, 1, __ATOMIC_RELAXED);
        if (st == STORE_FULL)
            __atomic_store_n(&s->full, 1, __ATOMIC_RELAXED);
        log_error("store: a batch of writes failed (%s): %s", store_status_name(st),
                  rc == MDB_MAP_FULL ? "the map is at store.max_map_bytes" : mdb_strerror(rc));
    }
    for (struct store_item *it = batch; it != NULL; it = it->next) {
        it->status = st == STORE_OK && it->conflict ? STORE_CONFLICT : st;
        if (st == STORE_OK && it->kind == STORE_ITEM_APPEND && it->refused)
            it->status = STORE_FULL;
        if (st != STORE_OK || it->status == STORE_FULL) {
            it->first = 0;
            continue;
        }
        if (it->kind == STORE_ITEM_APPEND)
            __atomic_add_fetch(&s->records, it->n, __ATOMIC_RELAXED);
        if (it->kind == STORE_ITEM_WORKSPACE && store_ws_cache_set(s, it->ws, it->dry_run) < 0)
            log_error("store: workspace %s: switch committed but not cached (out of memory)",
                      it->ws);
    }
}

static void store_item_free(struct store_item *it)
{
    for (size_t i = 0; i < it->nrecs; i++) {
        free(it->recs[i].json);
        free(it->recs[i].strs); /* the field names' pointers too */
    }
    free(it->recs);
    json_decref(it->records);
    json_decref(it->overlay);
    store_seen_free(it->seen, it->nseen);
    json_decref(it->patch);
    free(it->key);
    if (it->val != NULL)
        OPENSSL_cleanse(it->val, it->vlen);
    free(it->val);
    free(it->match);
    free(it->ws);
    free(it);
}

static void store_port_release(struct store_port *p)
{
    pthread_mutex_destroy(&p->lock);
    free(p);
}

/* Count an item's commit latency (now - submitted) in the store's histogram. */
static void store_count_latency(struct store *s, const struct store_item *it, uint64_t now)
{
    uint64_t lat = now - it->submitted_us;

    __atomic_add_fetch(&s->latency_count, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&s->latency_sum_us, lat, __ATOMIC_RELAXED);
    for (int b = 0; b < 8; b++) {
        if (lat <= store_latency_bounds[b])
            __atomic_add_fetch(&s->latency_le[b], 1, __ATOMIC_RELAXED);
    }
}

/*
 * Free a list of p's items that will never be handed back (p->lock held);
 * 1 when p has nothing pending any more and, being dead, is to be released.
 */
static int store_port_drop(struct store_port *p, struct store_item *list)
{
    while (list != NULL) {
        struct store_item *it = list;
        list = it->next;
        p->pending--;
        store_item_free(it);
    }
    return p->dead && p->pending == 0;
}

/*
 * Hand a chain of items, all of port p, back to p's loop with one wake-up
 * (or drop them when the port is gone). The items are still pending, so p
 * lives at least until this returns.
 */
static void store_deliver_chain(struct store_port *p, struct store_item *head,
                                struct store_item *tail)
{
    int release;

    tail->next = NULL;
    pthread_mutex_lock(&p->lock);
    if (p->dead) {
        release = store_port_drop(p, head);
        pthread_mutex_unlock(&p->lock);
        if (release)
            store_port_release(p);
        return;
    }
    if (p->done_tail != NULL)
        p->done_tail->next = head;
    else
        p->done_head = head;
    p->done_tail = tail;
    event_active(p->ev, EV_READ, 0);
    pthread_mutex_unlock(&p->lock);
}

/*
 * Hand a committed batch back: each port gets its items, in order, with one
 * wake-up of its loop rather than one per item (a wake-up is a write to the
 * loop's notify descriptor, and the loop's lock taken against it).
 */
static void store_deliver(struct store *s, struct store_item *batch, uint64_t now)
{
    while (batch != NULL) {
        struct store_port *p = batch->port;
        struct store_item *head = batch, *tail = batch, *rest = NULL, **rtail = &rest;

        store_count_latency(s, batch, now);
        for (struct store_item *it = batch->next, *next; it != NULL; it = next) {
            next = it->next;
            if (it->port == p) {
                store_count_latency(s, it, now);
                tail->next = it;
                tail = it;
            } else {
                *rtail = it;
                rtail = &it->next;
            }
        }
        *rtail = NULL;
        store_deliver_chain(p, head, tail);
        batch = rest;
    }
}

static void *store_writer_main(void *arg)
{
    struct store *s = arg;
    time_t next_check = time(NULL) + STORE_READER_CHECK_S;

    for (;;) {
        struct store_item *batch = NULL, **tail = &batch;
        size_t n = 0;

        pthread_mutex_lock(&s->qlock);
        while (s->qhead == NULL && !s->stopping) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&s->qcond, &s->qlock, &ts);
            if (time(NULL) >= next_check)
                break;
        }
        if (s->qhead == NULL && s->stopping) {
            pthread_mutex_unlock(&s->qlock);
            break;
        }
        while (s->qhead != NULL && n < STORE_BATCH_MAX) {
            struct store_item *it = s->qhead;
            s->qhead = it->next;
            it->next = NULL;
            *tail = it;
            tail = &it->next;
            n++;
        }
        if (s->qhead == NULL)
            s->qtail = NULL;
        s->qlen -= n;
        pthread_mutex_unlock(&s->qlock);

        if (time(NULL) >= next_check) {
            int dead = 0;
            if (mdb_reader_check(s->env, &dead) == 0 && dead > 0)
                log_notice("store: cleared %d stale reader slot(s)", dead);
            next_check = time(NULL) + STORE_READER_CHECK_S;
        }
        if (batch == NULL)
            continue;
        store_write_batch(s, batch);
        store_deliver(s, batch, store_now_us());
    }
    return NULL;
}

static int store_submit(struct store_port *p, struct store_item *it)
{
    struct store *s = p->s;

    it->port = p;
    it->submitted_us = store_now_us();
    pthread_mutex_lock(&s->qlock);
    if (s->stopping || s->qlen >= STORE_QUEUE_MAX || s->readonly) {
        pthread_mutex_unlock(&s->qlock);
        return -1;
    }
    pthread_mutex_lock(&p->lock);
    p->pending++;
    pthread_mutex_unlock(&p->lock);
    if (s->qtail != NULL)
        s->qtail->next = it;
    else
        s->qhead = it;
    s->qtail = it;
    s->qlen++;
    pthread_cond_signal(&s->qcond);
    pthread_mutex_unlock(&s->qlock);
    return 0;
}

/* v, or NULL when v is empty. */
static const char *store_nonempty(const char *v)
{
    return v != NULL && v[0] != '\0' ? v : NULL;
}

/*
 * Take in's bytes into r and copy the strings the writer's indexes and
 * stats need (absent or empty: NULL), with the field names' pointers, into
 * one allocation. 0 / -1 (in->json is r's either way).
 */
static int store_rec_take(struct store_rec *r, struct store_record *in)
{
    const char *v[8] = {in->ws,  in->wf,     in->call, in->record,
                        in->crm, in->object, in->user, in->outcome};
    const char **slots[] = {&r->ws,  &r->wf,     &r->call, &r->record,
                            &r->crm, &r->object, &r->user, &r->outcome};
    size_t total = 0, off, nf = json_array_size(in->fields);

    r->json = in->json;
    r->len = in->len;
    r->id_at = in->id_at;
    r->id = in->id;
    r->reindex = in->reindex;
    in->json = NULL;
    for (size_t i = 0; i < 8; i++) {
        v[i] = store_nonempty(v[i]);
        total += v[i] != NULL ? strlen(v[i]) + 1 : 0;
    }
    for (size_t i = 0; i < nf; i++) {
        const char *n = json_string_value(json_object_get(json_array_get(in->fields, i), "name"));
        total += n != NULL ? strlen(n) + 1 : 0;
    }
    /* the names' pointers first (aligned by malloc), then the strings */
    r->strs = malloc((nf + 1) * sizeof(*r->fields) + total + 1);
    if (r->strs == NULL)
        return -1;
    r->fields = (const char **)(void *)r->strs;
    off = (nf + 1) * sizeof(*r->fields);
    for (size_t i = 0; i < 8; i++) {
        size_t n;
        *slots[i] = NULL;
        if (v[i] == NULL)
            continue;
        n = strlen(v[i]) + 1;
        memcpy(r->strs + off, v[i], n);
        *slots[i] = r->strs + off;
        off += n;
    }
    for (size_t i = 0; i < nf; i++) {
        const char *n = json_string_value(json_object_get(json_array_get(in->fields, i), "name"));
        size_t len;
        r->fields[i] = NULL; /* counted as "-" */
        if (n == NULL || n[0] == '\0')
            continue;
        len = strlen(n) + 1;
        memcpy(r->strs + off, n, len);
        r->fields[i] = r->strs + off;
        off += len;
    }
    r->nfields = nf;
    return 0;
}

/*
 * Serialize an item's records on the caller's thread: the writer then needs
 * no JSON, and the caller may go on changing its own (no deep copy). 0 / -1.
 */
static int store_item_records(struct store_item *it, const json_t *records)
{
    static const char *const keys[] = {"workspace", "workflow", "call", "record",
                                       "crm",       "object",   "user", "outcome"};
    size_t n = json_array_size(records);

    it->recs = calloc(n + 1, sizeof(*it->recs));
    if (it->recs == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const json_t *rec = json_array_get(records, i);
        struct store_record in = {0};
        const char **v[] = {&in.ws,  &in.wf,     &in.call, &in.record,
                            &in.crm, &in.object, &in.user, &in.outcome};
        struct jsonout out = {0};
        it->nrecs = i + 1;
        if (!json_is_object(rec))
            return -1;
        if (it->kind == STORE_ITEM_APPEND) {
            if (jsonout_record(&out, rec, &in.id_at) < 0 || in.id_at == 0) {
                jsonout_free(&out); /* an appended record's id is the writer's to give */
                return -1;
            }
        } else {
            const char *ids = json_string_value(json_object_get(rec, "id"));
            char *end;
            unsigned long long id = 0;
            if (ids != NULL) {
                errno = 0;
                id = strtoull(ids, &end, 10);
                if (errno != 0 || *end != '\0' || end == ids)
                    id = 0;
            }
            in.id = id;
            in.reindex = 1; /* whether "record" changed is not known here */
            if (jsonout_append(&out, rec) < 0) {
                jsonout_free(&out);
                return -1;
            }
        }
        in.json = out.buf;
        in.len = out.len;
        for (size_t k = 0; k < 8; k++)
            *v[k] = json_string_value(json_object_get(rec, keys[k]));
        in.fields = json_object_get(rec, "fields");
        if (store_rec_take(&it->recs[i], &in) < 0)
            return -1;
    }
    return 0;
}

/* Submit, or release what the caller handed over when the queue refuses it. */
static int store_submit_new(struct store_port *p, enum store_item_kind kind, json_t *records,
                            json_t *overlay, struct store_seen *seen, size_t nseen,
                            store_done_cb cb, void *arg)
{
    struct store_item *it = calloc(1, sizeof(*it));

    if (it == NULL) {
        json_decref(records);
        json_decref(overlay);
        store_seen_free(seen, nseen);
        return -1;
    }
    it->kind = kind;
    it->overlay = overlay;
    it->seen = seen;
    it->nseen = nseen;
    it->cb = cb;
    it->arg = arg;
    if (store_item_records(it, records) < 0 || store_submit(p, it) < 0) {
        json_decref(records);
        store_item_free(it);
        return -1;
    }
    json_decref(records);
    return 0;
}

void store_seen_free(struct store_seen *seen, size_t n)
{
    for (size_t i = 0; seen != NULL && i < n; i++) {
        free(seen[i].bytes);
        seen[i].bytes = NULL;
    }
    free(seen);
}

int store_audit_append_seen(struct store_port *p, json_t *records, json_t *overlay,
                            struct store_seen *seen, size_t nseen, store_done_cb cb, void *arg)
{
    if (!json_is_array(records) || (overlay != NULL && !json_is_array(overlay))) {
        json_decref(records);
        json_decref(overlay);
        store_seen_free(seen, nseen);
        return -1;
    }
    return store_submit_new(p, STORE_ITEM_APPEND, records, overlay, seen, nseen, cb, arg);
}

int store_audit_append(struct store_port *p, json_t *records, json_t *overlay, store_done_cb cb,
                       void *arg)
{
    return store_audit_append_seen(p, records, overlay, NULL, 0, cb, arg);
}

int store_audit_update(struct store_port *p, json_t *records, store_done_cb cb, void *arg)
{
    if (!json_is_array(records)) {
        json_decref(records);
        return -1;
    }
    return store_submit_new(p, STORE_ITEM_UPDATE, records, NULL, NULL, 0, cb, arg);
}

int store_audit_submit(struct store_port *p, int update, struct store_record *recs, size_t n,
                       json_t *overlay, struct store_seen *seen, size_t nseen, store_done_cb cb,
                       void *arg)
{
    struct store_item *it = calloc(1, sizeof(*it));
    size_t i = 0;

    if (it != NULL && (overlay == NULL || json_is_array(overlay)) &&
        (it->recs = calloc(n + 1, sizeof(*it->recs))) != NULL) {
        for (; i < n; i++) {
            it->nrecs = i + 1;
            if (store_rec_take(&it->recs[i], &recs[i]) < 0 ||
                (!update && (it->recs[i].id_at == 0 || it->recs[i].id_at > it->recs[i].len)))
                break;
        }
    }
    for (size_t k = i; k < n; k++) {
        free(recs[k].json); /* not taken: ours to free as promised */
        recs[k].json = NULL;
    }
    if (it == NULL) {
        json_decref(overlay);
        store_seen_free(seen, nseen);
        return -1;
    }
    it->kind = update ? STORE_ITEM_UPDATE : STORE_ITEM_APPEND;
    it->overlay = overlay;
    it->seen = seen;
    it->nseen = nseen;
    it->cb = cb;
    it->arg = arg;
    if (it->recs == NULL || i < n || (overlay != NULL && !json_is_array(overlay)) ||
        store_submit(p, it) < 0) {
        store_item_free(it);
        return -1;
    }
    return 0;
}

/* A new item naming workspace ws (copied; NULL: none) with records (ownership taken), or NULL. */
static struct store_item *store_ws_item_new(enum store_item_kind kind, const char *ws,
                                            json_t *records, store_done_cb cb, void *arg)
{
    struct store_item *it;

    if (ws != NULL && (ws[0] == '\0' || strlen(ws) > STORE_MAX_KEY)) {
        json_decref(records);
        return NULL;
    }
    it = calloc(1, sizeof(*it));
    if (it == NULL || (ws != NULL && (it->ws = strdup(ws)) == NULL)) {
        free(it);
        json_decref(records);
        return NULL;
    }
    it->kind = kind;
    it->records = records;
    it->cb = cb;
    it->arg = arg;
    return it;
}

/* Submit it, or free it when the queue refuses. 0 / -1. */
static int store_submit_or_free(struct store_port *p, struct store_item *it)
{
    if (store_submit(p, it) < 0) {
        store_item_free(it);
        return -1;
    }
    return 0;
}

int store_workspace_set_dry_run(struct store_port *p, const char *ws, int dry_run,
                                int discard_overlay, store_done_cb cb, void *arg)
{
    struct store_item *it =
        ws != NULL ? store_ws_item_new(STORE_ITEM_WORKSPACE, ws, NULL, cb, arg) : NULL;

    if (it == NULL)
        return -1;
    it->dry_run = dry_run < 0 ? -1 : dry_run != 0;
    it->discard_overlay = discard_overlay != 0;
    return store_submit_or_free(p, it);
}

int store_overlay_discard(struct store_port *p, const char *ws, json_t *dry_ws, store_done_cb cb,
                          void *arg)
{
    struct store_item *it;

    if ((ws == NULL) == (dry_ws == NULL) || (dry_ws != NULL && !json_is_array(dry_ws))) {
        json_decref(dry_ws);
        return -1;
    }
    it = store_ws_item_new(STORE_ITEM_OVERLAY_DISCARD, ws, dry_ws, cb, arg);
    return it != NULL ? store_submit_or_free(p, it) : -1;
}

static int store_kv_new(struct store_port *p, enum store_item_kind kind, enum store_table t,
                        const void *key, size_t klen, const void *val, size_t vlen,
                        const void *match, size_t mlen, json_t *patch, store_done_cb cb, void *arg)
{
    struct store_item *it = calloc(1, sizeof(*it));

    if (it == NULL || klen == 0 || klen > STORE_MAX_KEY)
        goto fail;
    it->kind = kind;
    it->table = t;
    it->patch = patch;
    patch = NULL;
    it->key = malloc(klen);
    if (it->key == NULL)
        goto fail;
    memcpy(it->key, key, klen);
    it->klen = klen;
    if (val != NULL) {
        it->val = malloc(vlen + 1);
        if (it->val == NULL)
            goto fail;
        memcpy(it->val, val, vlen);
        it->vlen = vlen;
        it->has_val = 1;
    }
    if (match != NULL) {
        it->match = malloc(mlen + 1);
        if (it->match == NULL)
            goto fail;
        memcpy(it->match, match, mlen);
        it->mlen = mlen;
        it->has_match = 1;
    }
    it->cb = cb;
    it->arg = arg;
    if (store_submit(p, it) < 0)
        goto fail;
    return 0;
fail:
    json_decref(patch);
    if (it != NULL)
        store_item_free(it);
    return -1;
}

int store_kv_put(struct store_port *p, enum store_table t, const void *key, size_t klen,
                 const void *val, size_t vlen, const void *if_match, size_t mlen, store_done_cb cb,
                 void *arg)
{
    return store_kv_new(p, STORE_ITEM_KV_PUT, t, key, klen, val, vlen, if_match, mlen, NULL, cb,
                        arg);
}

int store_kv_merge(struct store_port *p, enum store_table t, const void *key, size_t klen,
                   json_t *patch, store_done_cb cb, void *arg)
{
    if (!json_is_object(patch)) {
        json_decref(patch);
        return -1;
    }
    return store_kv_new(p, STORE_ITEM_KV_MERGE, t, key, klen, NULL, 0, NULL, 0, patch, cb, arg);
}

void *store_kv_get(struct store *s, enum store_table t, const void *key, size_t klen, size_t *vlen,
                   char *err, size_t errlen)
{
    MDB_val k = {klen, (void *)key}, v;
    MDB_txn *txn;
    void *out = NULL;
    int rc;

    err[0] = '\0';
    *vlen = 0;
    if (klen == 0 || klen > STORE_MAX_KEY || store_read_begin(s, &txn, err, errlen) < 0)
        return NULL;
    rc = mdb_get(txn, store_table_dbi(s, t), &k, &v);
    if (rc == 0) {
        out = malloc(v.mv_size + 1);
        if (out == NULL) {
            snprintf(err, errlen, "out of memory");
        } else {
            memcpy(out, v.mv_data, v.mv_size);
            ((char *)out)[v.mv_size] = '\0';
            *vlen = v.mv_size;
        }
    } else if (rc != MDB_NOTFOUND) {
        snprintf(err, errlen, "cannot read the store: %s", mdb_strerror(rc));
    }
    store_read_end(s, txn);
    return out;
}

int store_kv_scan(struct store *s, enum store_table t, const void *prefix, size_t plen,
                  store_scan_cb fn, void *arg, char *err, size_t errlen)
{
    MDB_val k = {plen, (void *)prefix}, v;
    MDB_cursor *cur;
    MDB_txn *txn;
    int rc, op = plen > 0 ? MDB_SET_RANGE : MDB_FIRST;

    if (store_read_begin(s, &txn, err, errlen) < 0)
        return -1;
    rc = mdb_cursor_open(txn, store_table_dbi(s, t), &cur);
    if (rc != 0) {
        store_read_end(s, txn);
        snprintf(err, errlen, "cannot read the store: %s", mdb_strerror(rc));
        return -1;
    }
    for (rc = mdb_cursor_get(cur, &k, &v, op); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (plen > 0 && (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0))
            break;
        if (fn(k.mv_data, k.mv_size, v.mv_data, v.mv_size, arg) != 0)
            break;
    }
    mdb_cursor_close(cur);
    store_read_end(s, txn);
    return 0;
}

int store_kv_put_sync(struct store *s, enum store_table t, const void *key, size_t klen,
                      const void *val, size_t vlen, char *err, size_t errlen)
{
    MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
    MDB_txn *txn;
    int rc;

    rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc == 0) {
        rc = mdb_put(txn, store_table_dbi(s, t), &k, &v, 0);
        if (rc == 0)
            rc = mdb_txn_commit(txn);
        else
            mdb_txn_abort(txn);
    }
    if (rc != 0)
        snprintf(err, errlen, "store %s: %s", s->dir, mdb_strerror(rc));
    else
        __atomic_add_fetch(&s->kv_generation, 1, __ATOMIC_RELEASE);
    return rc == 0 ? 0 : -1;
}

uint64_t store_kv_generation(struct store *s)
{
    return __atomic_load_n(&s->kv_generation, __ATOMIC_ACQUIRE);
}

/* ----- ports ----- */

static void store_portcb(evutil_socket_t fd, short what, void *arg)
{
    struct store_port *p = arg;
    struct store_item *list;

    (void)fd, (void)what;
    pthread_mutex_lock(&p->lock);
    list = p->done_head;
    p->done_head = p->done_tail = NULL;
    pthread_mutex_unlock(&p->lock);
    while (list != NULL) {
        struct store_item *it = list;
        list = it->next;
        pthread_mutex_lock(&p->lock);
        p->pending--;
        pthread_mutex_unlock(&p->lock);
        if (it->cb != NULL)
            it->cb(it->status, it->first, it->n, it->arg);
        store_item_free(it);
    }
}

struct store_port *store_port_new(struct store *s, struct event_base *base)
{
    struct store_port *p = calloc(1, sizeof(*p));

    if (p == NULL)
        return NULL;
    p->s = s;
    pthread_mutex_init(&p->lock, NULL);
    p->ev = event_new(base, -1, EV_READ, store_portcb, p);
    if (p->ev == NULL) {
        store_port_release(p);
        return NULL;
    }
    return p;
}

void store_port_free(struct store_port *p)
{
    struct store_item *list;
    int release;

    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    event_free(p->ev);
    p->ev = NULL;
    p->dead = 1;
    list = p->done_head;
    p->done_head = p->done_tail = NULL;
    release = store_port_drop(p, list);
    pthread_mutex_unlock(&p->lock);
    if (release)
        store_port_release(p);
}

/* ----- reads ----- */

json_t *store_audit_get(struct store *s, uint64_t id, char *err, size_t errlen)
{
    unsigned char key[8];
    MDB_val k = {8, key}, v;
    MDB_txn *txn;
    json_error_t jerr;
    json_t *rec = NULL;
    int rc;

    err[0] = '\0';
    if (store_read_begin(s, &txn, err, errlen) < 0)
        return NULL;
    store_be64_put(key, id);
    rc = mdb_get(txn, s->dbi[STORE_DB_AUDIT], &k, &v);
    if (rc == 0) {
        rec = json_loadb(v.mv_data, v.mv_size, 0, &jerr);
        if (rec == NULL)
            snprintf(err, errlen, "audit record %llu is corrupt: %s", (unsigned long long)id,
                     jerr.text);
    } else if (rc != MDB_NOTFOUND) {
        snprintf(err, errlen, "audit record %llu: %s", (unsigned long long)id, mdb_strerror(rc));
    }
    store_read_end(s, txn);
    return rec;
}

json_t *store_overlay_get(struct store *s, const char *ws, const char *crm, const char *object,
                          const char *id)
{
    return store_overlay_get_seen(s, ws, crm, object, id, NULL);
}

json_t *store_overlay_get_seen(struct store *s, const char *ws, const char *crm, const char *object,
                               const char *id, struct store_seen *seen)
{
    unsigned char key[STORE_MAX_KEY];
    char lobj[256], err[256];
    const char *p[] = {ws, crm, store_lower(object, lobj, sizeof(lobj)), id};
    size_t klen = store_key(key, p, 4, 0, 0);
    MDB_val k = {klen, key}, v;
    MDB_txn *txn;
    json_t *rec = NULL;

    if (seen != NULL) {
        seen->bytes = NULL;
        seen->len = 0;
    }
    if (klen == 0 || store_read_begin(s, &txn, err, sizeof(err)) < 0)
        return NULL;
    if (mdb_get(txn, s->dbi[STORE_DB_OVERLAY], &k, &v) == 0) {
        rec = store_overlay_parse(v.mv_data, v.mv_size);
        if (rec != NULL && seen != NULL && v.mv_size > 0 &&
            (seen->bytes = malloc(v.mv_size)) != NULL) {
            memcpy(seen->bytes, v.mv_data, v.mv_size);
            seen->len = v.mv_size;
        }
    }
    store_read_end(s, txn);
    return rec;
}

void store_info(struct store *s, struct store_info *out)
{
    MDB_envinfo ei;
    MDB_stat st;

    memset(out, 0, sizeof(*out));
    out->max_map_bytes = s->max_map_bytes;
    pthread_rwlock_rdlock(&s->resize_lock);
    if (mdb_env_info(s->env, &ei) == 0 && mdb_env_stat(s->env, &st) == 0) {
        out->map_bytes = ei.me_mapsize;
        out->used_bytes = (ei.me_last_pgno + 1) * (size_t)st.ms_psize;
    }
    pthread_rwlock_unlock(&s->resize_lock);
    out->last_id = __atomic_load_n(&s->last_id, __ATOMIC_RELAXED);
    out->records = __atomic_load_n(&s->records, __ATOMIC_RELAXED);
    out->commits = __atomic_load_n(&s->commits, __ATOMIC_RELAXED);
    out->commit_errors = __atomic_load_n(&s->commit_errors, __ATOMIC_RELAXED);
    pthread_mutex_lock(&s->qlock);
    out->queue_depth = s->qlen;
    pthread_mutex_unlock(&s->qlock);
    out->full = __atomic_load_n(&s->full, __ATOMIC_RELAXED);
    out->latency_count = __atomic_load_n(&s->latency_count, __ATOMIC_RELAXED);
    out->latency_sum_us = __atomic_load_n(&s->latency_sum_us, __ATOMIC_RELAXED);
    for (int b = 0; b < 8; b++)
        out->latency_le[b] = __atomic_load_n(&s->latency_le[b], __ATOMIC_RELAXED);
}

/* ----- open and close ----- */

static int store_open_dbs(struct store *s, char *err, size_t errlen)
{
    MDB_txn *txn;
    int rc;

    rc = mdb_txn_begin(s->env, NULL, s->readonly ? MDB_RDONLY : 0, &txn);
    if (rc != 0)
        goto fail;
    for (int i = 0; i < STORE_DB_COUNT; i++) {
        rc = mdb_dbi_open(txn, store_db_names[i], s->readonly ? 0 : MDB_CREATE, &s->dbi[i]);
        if (rc != 0) {
            mdb_txn_abort(txn);
            if (rc == MDB_NOTFOUND)
                snprintf(err, errlen, "%s: not a crmgate store (no \"%s\" database)", s->dir,
                         store_db_names[i]);
            else
                snprintf(err, errlen, "%s: database %s: %s", s->dir, store_db_names[i],
                         mdb_strerror(rc));
            return -1;
        }
    }
    if (!s->readonly) {
        MDB_val k = {6, "schema"}, v = {1, "1"}, last, val;
        MDB_cursor *cur;
        rc = mdb_put(txn, s->dbi[STORE_DB_META], &k, &v, 0);
        if (rc == 0)
            rc = mdb_cursor_open(txn, s->dbi[STORE_DB_AUDIT], &cur);
        if (rc == 0) {
            int grc = mdb_cursor_get(cur, &last, &val, MDB_LAST);
            if (grc == 0 && last.mv_size == 8)
                s->last_id = store_be64_get(last.mv_data);
            mdb_cursor_close(cur);
        }
        if (rc != 0) {
            mdb_txn_abort(txn);
            goto fail;
        }
        rc = mdb_txn_commit(txn);
        if (rc != 0)
            goto fail;
    } else {
        /* commit, not abort: aborting drops the handles the transaction opened */
        rc = mdb_txn_commit(txn);
        if (rc != 0)
            goto fail;
    }
    return 0;
fail:
    snprintf(err, errlen, "%s: %s", s->dir,
             rc == MDB_MAP_FULL ? "the map is full (raise store.max_map_bytes)" : mdb_strerror(rc));
    return -1;
}

struct store *store_open(const struct store_options *o, char *err, size_t errlen)
{
    struct store *s = calloc(1, sizeof(*s));
    MDB_envinfo ei;
    MDB_stat est;
    int rc, dead = 0;

    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_rwlock_init(&s->resize_lock, NULL);
    pthread_mutex_init(&s->qlock, NULL);
    pthread_cond_init(&s->qcond, NULL);
    pthread_mutex_init(&s->wslock, NULL);
    s->readonly = o->readonly;
    s->map_bytes = o->map_bytes != 0 ? o->map_bytes : STORE_DEFAULT_MAP_BYTES;
    s->max_map_bytes = o->max_map_bytes != 0 ? o->max_map_bytes : STORE_DEFAULT_MAX_MAP_BYTES;
    if (s->map_bytes > s->max_map_bytes)
        s->map_bytes = s->max_map_bytes;
    s->dir = strdup(o->dir);
    if (s->dir == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (!s->readonly && mkdir(s->dir, 0750) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "store %s: %s", s->dir, strerror(errno));
        goto fail;
    }
    if (s->readonly && access(s->dir, F_OK) < 0) {
        snprintf(err, errlen, "store %s: %s (is this crmgate's state directory/db?)", s->dir,
                 strerror(errno));
        goto fail;
    }
    if ((rc = mdb_env_create(&s->env)) != 0 ||
        (rc = mdb_env_set_maxdbs(s->env, STORE_DB_COUNT)) != 0 ||
        (rc = mdb_env_set_maxreaders(s->env, STORE_MAX_READERS)) != 0 ||
        (!s->readonly && (rc = mdb_env_set_mapsize(s->env, s->map_bytes)) != 0)) {
        snprintf(err, errlen, "store %s: %s", s->dir, mdb_strerror(rc));
        goto fail;
    }
    /* No MDB_WRITEMAP: a full disk must be ENOSPC on commit, not SIGBUS. MDB_NOTLS: read
     * transactions belong to their txn, not their thread. 0660: the CLI's group needs to
     * write lock.mdb even to read. */
    rc = mdb_env_open(s->env, s->dir, MDB_NOTLS | (s->readonly ? MDB_RDONLY : 0), 0660);
    if (rc != 0) {
        snprintf(err, errlen, "store %s: cannot open: %s", s->dir, mdb_strerror(rc));
        goto fail;
    }
    if (mdb_env_info(s->env, &ei) == 0 && ei.me_mapsize > s->map_bytes)
        s->map_bytes = ei.me_mapsize; /* an earlier run grew it */
    if (mdb_env_stat(s->env, &est) != 0) {
        snprintf(err, errlen, "store %s: cannot read its page size", s->dir);
        goto fail;
    }
    s->psize = est.ms_psize;
    mdb_reader_check(s->env, &dead);
    if (dead > 0)
        log_notice("store: cleared %d stale reader slot(s)", dead);
    if (store_open_dbs(s, err, errlen) < 0 || store_ws_load(s, err, errlen) < 0)
        goto fail;
    if (!s->readonly) {
        if (pthread_create(&s->writer, NULL, store_writer_main, s) != 0) {
            snprintf(err, errlen, "store %s: cannot start the writer thread", s->dir);
            goto fail;
        }
        s->writer_started = 1;
    }
    return s;
fail:
    store_close(s);
    return NULL;
}

void store_close(struct store *s)
{
    if (s == NULL)
        return;
    if (s->writer_started) {
        pthread_mutex_lock(&s->qlock);
        s->stopping = 1;
        pthread_cond_signal(&s->qcond);
        pthread_mutex_unlock(&s->qlock);
        pthread_join(s->writer, NULL);
    }
    if (s->env != NULL)
        mdb_env_close(s->env);
    s->env = NULL;
    for (size_t i = 0; i < s->nws; i++)
        free(s->ws[i].name);
    free(s->ws);
    s->ws = NULL;
    free(s->dir);
    s->dir = NULL;
    pthread_rwlock_destroy(&s->resize_lock);
    pthread_mutex_destroy(&s->qlock);
    pthread_cond_destroy(&s->qcond);
    pthread_mutex_destroy(&s->wslock);
    free(s);
}
