/*
 * store.h - crmgate's durable state: one LMDB environment in <state_dir>/db
 * holding the audit log, its indexes, workspace settings, the dry-run
 * overlay and the stats counters (DESIGN.md §4).
 *
 * Writes: one writer thread owns every write transaction and commits in
 * groups (whatever queued while the previous commit synced, up to
 * STORE_BATCH_MAX items), with LMDB's default durable sync: one fsync per
 * batch, not per request. A loop thread submits work through its port; the callback runs
 * on that port's event loop once the batch holding the work is committed,
 * or has failed. Nothing is acknowledged before its commit.
 *
 * Reads (store_audit_get, store_query.c, store_overlay_get, ...) open short
 * read transactions on the calling thread (MDB_NOTLS), under a read lock
 * that map growth takes for writing: LMDB may only resize with no
 * transaction live in the process.
 *
 * Layout (named databases; "\0" is one NUL byte; be64 = 8-byte big-endian):
 *   audit         be64(id) -> audit record, compact JSON with sorted keys
 *   idx_workspace ws \0 be64(id) -> ""
 *   idx_record    crm \0 lower(object) \0 record \0 be64(id) -> ""
 *   idx_workflow  ws \0 workflow \0 be64(id) -> ""
 *   idx_call      ws \0 call \0 be64(id) -> ""
 *   workspaces    ws -> {"dry_run": true|false, "updated_ms": N}
 *   overlay       ws \0 crm \0 lower(object) \0 record -> overlay record
 *                 {"object","id","fields":{...},"created":bool,"deleted":bool,"ts":ms}
 *                 (discarded when ws leaves dry-run, on demand, and at start and
 *                 reload for workspaces not in dry-run: store_overlay.c)
 *   stats         ws \0 workflow \0 user \0 crm \0 object \0 field \0 outcome
 *                 -> be64(count)   ("-" stands for an absent workflow, user or
 *                 field; a record that touched no field counts once as "-")
 *   meta          "schema" -> "1"; "vault_check" -> a value sealed with the
 *                 vault key (custody.c), so a wrong key is caught at start
 *   keys          sha256(crmgate key) -> {"id","workspace","user","kind",
 *                 "workflow","created_ms","expires_ms","revoked_ms"} (custody.h)
 *   credentials   ws \0 crm \0 "user"|"workspace" \0 user -> {"v":1,"type",
 *                 "created_ms","updated_ms","expires_ms","attention","sealed"}
 *                 where sealed is the vault's base64 AES-GCM blob (custody.h)
 *
 * Audit ids are time-ordered: max(last + 1, unix_ms << 16), allocated by the
 * writer, so keys only grow (MDB_APPEND) and byte order is time order. They
 * are written as decimal strings in JSON (JavaScript clients round 64-bit
 * numbers).
 *
 * An audit record (one per CRM operation; a batch of ten is ten records):
 *   {"id":"N","ts":ms,"workspace","user","kind","workflow","call","reason",
 *    "integration", "crm","object","record","verb",
 *    "fields":[{"name","before","after"}],"decision","rule","outcome",
 *    "upstream_status","latency_us","synthetic":bool,"request_id"}
 * outcome: allowed | denied | dry_run | upstream_error | unknown. Absent
 * strings are JSON null. "save_duplicates":true only on a Salesforce write
 * sent with Sforce-Duplicate-Rule-Header allowSave=true. No secret is ever
 * part of a record.
 */
#ifndef CRMGATE_STORE_H
#define CRMGATE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

#define STORE_BATCH_MAX             256 /* items in one write transaction */
#define STORE_BATCH_WAIT_US         500 /* how long the writer gathers a batch after its first item */
#define STORE_QUEUE_MAX             16384 /* items waiting for the writer; more are refused */
#define STORE_DEFAULT_MAP_BYTES     (64ull << 20)
#define STORE_DEFAULT_MAX_MAP_BYTES (8ull << 30)
#define STORE_QUERY_MAX             1000 /* records one query returns at most */

struct store;
struct store_port;

enum store_status {
    STORE_OK = 0,
    STORE_FULL,     /* the map is at max_map_bytes, or the disk is full */
    STORE_FAILED,   /* any other LMDB or I/O error (logged) */
    STORE_CLOSED,   /* the store is shutting down */
    STORE_CONFLICT, /* a KV condition did not hold: nothing was written (not an error) */
};

struct store_options {
    const char *dir;      /* the environment's directory (created 0750 if missing) */
    size_t map_bytes;     /* initial map size; 0 = STORE_DEFAULT_MAP_BYTES */
    size_t max_map_bytes; /* the map doubles on MDB_MAP_FULL up to this; 0 = default */
    int readonly;         /* the CLI's --db: no writer thread, no changes */
};

/*
 * Open (creating if needed) the environment and its databases, clear stale
 * reader slots and, unless readonly, start the writer thread. NULL with err
 * naming the directory and the problem.
 */
struct store *store_open(const struct store_options *o, char *err, size_t errlen);

/* Commit what is queued, stop the writer and close; NULL is ignored. No port may be live. */
void store_close(struct store *s);

/* "ok", "full", "failed", "closed": for logs and error bodies. */
const char *store_status_name(enum store_status st);

/*
 * A completion port for one event loop: callbacks of work submitted through
 * it run on base. Create and free it on base's thread. Freeing it while work
 * is pending is allowed: that work's callbacks then never run (its commit
 * still happens).
 */
struct store_port *store_port_new(struct store *s, struct event_base *base);
void store_port_free(struct store_port *p);

/* first: the first id assigned (appends) or 0; n: how many records. */
typedef void (*store_done_cb)(enum store_status st, uint64_t first, size_t n, void *arg);

/*
 * Append a request's audit records (a JSON array of record objects; one
 * reference taken). They are serialized before this returns, on the calling
 * thread, so the caller may keep and change its own reference. The writer
 * assigns consecutive ids, writes them into the records' "id" (any "id"
 * given is replaced), writes the records and their index entries,
 * counts records whose outcome is final in stats, and puts each overlay
 * record (an array parallel to nothing: each element carries its own
 * "workspace","crm","object","id"; may be NULL) in the same transaction.
 * Returns 0, or -1 (callback never runs) when the queue is full or closed.
 */
int store_audit_append(struct store_port *p, json_t *records, json_t *overlay, store_done_cb cb,
                       void *arg);

/*
 * The stored bytes an overlay record was parsed from (store_overlay_get_seen),
 * handed back with the write that follows the read (store_audit_append_seen).
 */
struct store_seen {
    char *bytes; /* a malloc'd copy, or NULL: none */
    size_t len;
};

/*
 * store_audit_append, where seen (NULL, or nseen entries parallel to
 * overlay; ownership of the array and its bytes taken, also on failure)
 * says what each overlay record's writer read of it: a record whose stored
 * value is still exactly its entry's bytes at the commit is written as
 * given, without reading the stored one back and combining them
 * (synth_overlay_combine). The caller vouches that combining it with the
 * record those bytes hold adds nothing (synth_overlay_combine_adds). Any
 * other stored value (a racing write landed in between) is combined as
 * store_audit_append does. 0 / -1 as store_audit_append.
 */
int store_audit_append_seen(struct store_port *p, json_t *records, json_t *overlay,
                            struct store_seen *seen, size_t nseen, store_done_cb cb, void *arg);

/* Release seen's n entries and seen itself; NULL is ignored. */
void store_seen_free(struct store_seen *seen, size_t n);

/*
 * Replace records appended earlier (a JSON array; each record carries its
 * "id"), typically an intent's final outcome, and count them in stats. A
 * record id set since the append (a create's) joins idx_record. One
 * reference taken, serialized at once, as store_audit_append. 0 / -1 as
 * store_audit_append.
 */
int store_audit_update(struct store_port *p, json_t *records, store_done_cb cb, void *arg);

/*
 * One audit record serialized by its builder (audit.c) rather than as JSON
 * handed to store_audit_append: the bytes, and what the indexes and stats
 * need of it.
 */
struct store_record {
    char *json;   /* compact JSON with sorted keys, malloc'd; the store's once submitted */
    size_t len;   /* bytes of json */
    size_t id_at; /* appends: the offset between the quotes of its "id":"" */
    uint64_t id;  /* updates: the record's id */
    int reindex;  /* updates: "record" may be new since the append (a create's id): index it */
    /* NULL when absent or empty; copied */
    const char *ws, *wf, *call, *record, *crm, *object, *user, *outcome;
    const json_t *fields; /* its "fields" array: the "name" of each is counted in stats */
};

/*
 * store_audit_append_seen (update 0) or store_audit_update (update 1) of n
 * records already serialized: every recs[i].json is taken (freed by the
 * store, also on failure), the rest copied before this returns. 0 / -1 as
 * store_audit_append.
 */
int store_audit_submit(struct store_port *p, int update, struct store_record *recs, size_t n,
                       json_t *overlay, struct store_seen *seen, size_t nseen, store_done_cb cb,
                       void *arg);

/*
 * Set a workspace's runtime dry-run switch: 1 on, 0 off, -1 removed (the
 * rules decide again). With discard_overlay, ws's overlay is deleted in
 * the same transaction, and cb's n says how many entries went. Durable
 * once cb reports STORE_OK. 0 / -1.
 */
int store_workspace_set_dry_run(struct store_port *p, const char *ws, int dry_run,
                                int discard_overlay, store_done_cb cb, void *arg);

/*
 * Discard dry-run overlay entries (never audit records): those of ws, or,
 * with ws NULL, those of every workspace not in dry-run as of the commit:
 * its runtime switch, else whether dry_ws (a JSON array of the workspace
 * names whose rules say mode dry_run; ownership taken) lists it. Exactly
 * one of ws and dry_ws is given. cb's n: entries deleted. 0 / -1.
 */
int store_overlay_discard(struct store_port *p, const char *ws, json_t *dry_ws, store_done_cb cb,
                          void *arg);

/* The runtime dry-run switch of ws: 1, 0, or -1 when none is set. Any thread; no I/O. */
int store_workspace_dry_run(struct store *s, const char *ws);

/* The audit record id as a new JSON reference, or NULL (not found: err ""; else err says). */
json_t *store_audit_get(struct store *s, uint64_t id, char *err, size_t errlen);

/* The overlay record of (ws, crm name, object, record id) as a new reference, or NULL. */
json_t *store_overlay_get(struct store *s, const char *ws, const char *crm, const char *object,
                          const char *id);

/*
 * store_overlay_get, and a copy of the stored bytes the record was parsed
 * from in *seen (the caller's to free; bytes NULL when the record is NULL,
 * or when out of memory for the copy).
 */
json_t *store_overlay_get_seen(struct store *s, const char *ws, const char *crm, const char *object,
                               const char *id, struct store_seen *seen);

/* Counters for /metrics and /healthz. */
struct store_info {
    size_t map_bytes;     /* current map size */
    size_t max_map_bytes; /* the configured limit */
    size_t used_bytes;    /* pages in use x page size */
    uint64_t last_id;
    uint64_t records;       /* audit records written since start */
    uint64_t commits;       /* write transactions committed (each one sync) */
    uint64_t commit_errors; /* batches that failed */
    uint64_t queue_depth;   /* items waiting for the writer */
    int full; /* audit records are refused: the map is at its limit, or the last batch failed with
                 STORE_FULL */
    /* commit latency (submit to commit) histogram, microseconds */
    uint64_t latency_count;
    uint64_t latency_sum_us;
    uint64_t latency_le[8]; /* cumulative counts for STORE_LATENCY_BOUNDS_US */
};
#define STORE_LATENCY_BOUNDS_US                                                                    \
    {                                                                                              \
        500, 1000, 2500, 5000, 10000, 25000, 100000, 1000000                                       \
    }

/* Fill out; any thread. */
void store_info(struct store *s, struct store_info *out);

/* ----- small tables: crmgate keys, sealed credentials, meta (custody.c) ----- */

enum store_table { STORE_TABLE_KEYS, STORE_TABLE_CREDENTIALS, STORE_TABLE_META };

/*
 * Put val (vlen bytes) at key, or delete key when val is NULL. With
 * if_match, only when the current value is exactly those mlen bytes (else
 * the callback gets STORE_CONFLICT and nothing is written). Copies
 * everything; the value copy is cleansed when freed. 0 / -1 as
 * store_audit_append.
 */
int store_kv_put(struct store_port *p, enum store_table t, const void *key, size_t klen,
                 const void *val, size_t vlen, const void *if_match, size_t mlen, store_done_cb cb,
                 void *arg);

/* Merge the members of patch (ownership taken) into the JSON object at key; STORE_CONFLICT when
 * absent. */
int store_kv_merge(struct store_port *p, enum store_table t, const void *key, size_t klen,
                   json_t *patch, store_done_cb cb, void *arg);

/* A NUL-terminated copy of the value at key (*vlen bytes; the caller frees), or NULL: absent (err
 * "") or failed. */
void *store_kv_get(struct store *s, enum store_table t, const void *key, size_t klen, size_t *vlen,
                   char *err, size_t errlen);

/* Called per entry of a scan, inside its read transaction; nonzero stops the scan. */
typedef int (*store_scan_cb)(const void *key, size_t klen, const void *val, size_t vlen, void *arg);

/* Visit the entries whose key starts with prefix (plen 0: all), in key order. 0, or -1 with err. */
int store_kv_scan(struct store *s, enum store_table t, const void *prefix, size_t plen,
                  store_scan_cb fn, void *arg, char *err, size_t errlen);

/*
 * A counter that moves after every commit that changed a KV table, before
 * that commit's callbacks run: a cache of KV values is current while the
 * generation it was filled at is. Any thread.
 */
uint64_t store_kv_generation(struct store *s);

/* Start-up only (no worker running): put in a transaction of its own. 0, or -1 with err. */
int store_kv_put_sync(struct store *s, enum store_table t, const void *key, size_t klen,
                      const void *val, size_t vlen, char *err, size_t errlen);

/* ----- reading the log (store_query.c) ----- */

/* A query on the audit log; NULL/0 members do not filter. */
struct store_query {
    const char *workspace, *crm, *object, *record, *workflow, *call, *outcome;
    long long since_ms, until_ms; /* ts within [since, until]; 0 = open */
    size_t limit;                 /* 1..STORE_QUERY_MAX; 0 = 100 */
    uint64_t cursor;              /* only ids below this (newest first); 0 = from the newest */
};

/*
 * The records matching q, newest first, as a new JSON array in *out, and the
 * cursor for the next page in *next (0 when there is none). Uses the most
 * selective index q allows. 0, or -1 with err.
 */
int store_query_audit(struct store *s, const struct store_query *q, json_t **out, uint64_t *next,
                      char *err, size_t errlen);

/*
 * Counts from the stats database, for one workspace or all (ws NULL):
 * {"total":N,"by_outcome":{...},"by_workspace":{...},"by_workflow":{...},
 *  "by_object":{"crm/object":N},"by_field":{"crm/object.field":N},"by_user":{...},
 *  "rows":[{"workspace","workflow","user","crm","object","field","outcome","count"}]}.
 * A new reference in *out; 0, or -1 with err.
 */
int store_query_stats(struct store *s, const char *ws, json_t **out, char *err, size_t errlen);

#endif
