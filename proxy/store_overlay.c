/*
 * store_overlay.c - discarding the dry-run overlay (store.h): one
 * workspace's, when it leaves dry-run through its runtime switch or is
 * cleared on demand, and, when rules are loaded, that of every workspace
 * whose effective mode is not dry-run. Runs inside the writer's
 * transaction, so a switch and its discard commit together. Audit records
 * are never touched.
 */
#include <errno.h>
#include <string.h>

#include <jansson.h>

#include "store_internal.h"

/*
 * Whether ws is in dry-run as of txn: its runtime switch (the workspaces
 * table), else whether dry_ws (a JSON array of the names whose rules say
 * mode dry_run) names it. 1, 0, or -1 with an LMDB error in *rc.
 */
static int store_overlay_ws_dry(struct store *s, MDB_txn *txn, const char *ws, size_t wslen,
                                const json_t *dry_ws, int *rc)
{
    MDB_val k = {wslen, (void *)ws}, v;
    size_t i;
    json_t *name;

    *rc = mdb_get(txn, store_dbi(s, STORE_DB_WORKSPACES), &k, &v);
    if (*rc == 0) {
        json_t *j = json_loadb(v.mv_data, v.mv_size, 0, NULL);
        json_t *d = json_object_get(j, "dry_run");
        int on = json_is_true(d);
        int known = json_is_boolean(d);
        json_decref(j);
        if (known)
            return on;
    } else if (*rc != MDB_NOTFOUND) {
        return -1;
    }
    *rc = 0;
    json_array_foreach(dry_ws, i, name)
    {
        const char *n = json_string_value(name);
        if (n != NULL && strlen(n) == wslen && memcmp(n, ws, wslen) == 0)
            return 1;
    }
    return 0;
}

int store_overlay_discard_txn(struct store *s, MDB_txn *txn, const char *ws, const json_t *dry_ws,
                              size_t *n)
{
    MDB_cursor *cur;
    MDB_val k, v;
    size_t plen = ws != NULL ? strlen(ws) + 1 : 0; /* the workspace and its NUL */
    char group[STORE_MAX_KEY + 1];                 /* a sweep's current workspace ... */
    size_t glen = 0;
    int have = 0, drop = 0; /* ... and whether its entries go */
    int rc;

    *n = 0;
    if (plen > STORE_MAX_KEY)
        return 0;
    rc = mdb_cursor_open(txn, store_dbi(s, STORE_DB_OVERLAY), &cur);
    if (rc != 0)
        return rc;
    k.mv_size = plen;
    k.mv_data = (void *)ws;
    rc = mdb_cursor_get(cur, &k, &v, plen > 0 ? MDB_SET_RANGE : MDB_FIRST);
    while (rc == 0) {
        const char *key = k.mv_data;
        const char *nul = memchr(key, '\0', k.mv_size);
        size_t wslen = nul != NULL ? (size_t)(nul - key) : k.mv_size;
        if (ws != NULL) {
            if (k.mv_size < plen || memcmp(key, ws, plen) != 0)
                break;
            drop = 1;
        } else if (!have || wslen != glen || memcmp(key, group, wslen) != 0) {
            /* a sweep: keys are grouped by workspace, decided once per group */
            int dry = store_overlay_ws_dry(s, txn, key, wslen, dry_ws, &rc);
            if (dry < 0)
                break;
            memcpy(group, key, wslen);
            glen = wslen;
            have = 1;
            drop = !dry;
        }
        if (drop) {
            rc = mdb_cursor_del(cur, 0);
            if (rc != 0)
                break;
            (*n)++;
        }
        /* after a delete, MDB_NEXT lands on the entry that followed the deleted one */
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}
