/*
 * store_internal.h - what store.c (environment, writer) and store_query.c
 * (reading the log) share beyond store.h. Not for other modules.
 */
#ifndef CRMGATE_STORE_INTERNAL_H
#define CRMGATE_STORE_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include <jansson.h>
#include <lmdb.h>

#include "store.h"

enum store_db {
    STORE_DB_AUDIT,
    STORE_DB_IDX_WORKSPACE,
    STORE_DB_IDX_RECORD,
    STORE_DB_IDX_WORKFLOW,
    STORE_DB_IDX_CALL,
    STORE_DB_WORKSPACES,
    STORE_DB_OVERLAY,
    STORE_DB_STATS,
    STORE_DB_META,
    STORE_DB_KEYS,
    STORE_DB_CREDENTIALS,
    STORE_DB_COUNT
};

#define STORE_MAX_KEY 511 /* LMDB's default maximum key size */

/*
 * Begin a read transaction on the calling thread (under the resize lock,
 * adopting a map another process grew). 0, or -1 with err. Every successful
 * begin is paired with store_read_end.
 */
int store_read_begin(struct store *s, MDB_txn **txn, char *err, size_t errlen);
void store_read_end(struct store *s, MDB_txn *txn);

/* The handle of one named database. */
MDB_dbi store_dbi(const struct store *s, enum store_db db);

/* 8-byte big-endian encoding of v into out; and back. */
void store_be64_put(unsigned char out[8], uint64_t v);
uint64_t store_be64_get(const unsigned char in[8]);

/*
 * Build a composite key: the NUL-separated parts, then be64(id) when id is
 * nonzero (with_id). Parts longer than the key allows fail. Returns the key
 * length, or 0 when it does not fit STORE_MAX_KEY.
 */
size_t store_key(unsigned char *out, const char *const *parts, size_t nparts, int with_id,
                 uint64_t id);

/*
 * Inside a write transaction (store_overlay.c): delete the overlay entries
 * of ws, or with ws NULL those of every workspace not in dry-run (its
 * switch in txn, else listed in dry_ws, a JSON array of the names whose
 * rules say mode dry_run). *n: entries deleted. 0 or an LMDB error code.
 */
int store_overlay_discard_txn(struct store *s, MDB_txn *txn, const char *ws, const json_t *dry_ws,
                              size_t *n);

#endif
