/*
 * store_fixture.h - a real LMDB store in a temporary directory for the
 * store's unit tests: setup/teardown for cmocka, a completion port on a
 * private event_base, and a done callback that records the status and n.
 * Include after cmocka.h.
 */
#ifndef CRMGATE_TEST_STORE_FIXTURE_H
#define CRMGATE_TEST_STORE_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "store.h"

struct fixture {
    char dir[64], db[80];
    struct event_base *base;
    struct store *s;
    struct store_port *port;
    int done;
    enum store_status st;
    size_t n;
};

static inline void donecb(enum store_status st, uint64_t first, size_t n, void *arg)
{
    struct fixture *f = arg;

    (void)first;
    f->st = st;
    f->n = n;
    f->done = 1;
    event_base_loopbreak(f->base);
}

/* A fresh store under /tmp, named after tag (map_bytes, max_map_bytes 0: the defaults). */
static int store_fixture_setup_limit(void **state, const char *tag, size_t map_bytes,
                                     size_t max_map_bytes)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct store_options o = {0};
    char err[512];

    assert_non_null(f);
    evthread_use_pthreads();
    snprintf(f->dir, sizeof(f->dir), "/tmp/crmgate-unit-%s-XXXXXX", tag);
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->db, sizeof(f->db), "%s/db", f->dir);
    o.dir = f->db;
    o.map_bytes = map_bytes;
    o.max_map_bytes = max_map_bytes;
    f->s = store_open(&o, err, sizeof(err));
    if (f->s == NULL)
        fail_msg("store_open: %s", err);
    f->base = event_base_new();
    f->port = store_port_new(f->s, f->base);
    assert_non_null(f->port);
    *state = f;
    return 0;
}

/* store_fixture_setup_limit with the default limit. */
static inline int store_fixture_setup(void **state, const char *tag, size_t map_bytes)
{
    return store_fixture_setup_limit(state, tag, map_bytes, 0);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char p[128];

    store_port_free(f->port);
    store_close(f->s);
    event_base_free(f->base);
    snprintf(p, sizeof(p), "%s/data.mdb", f->db);
    unlink(p);
    snprintf(p, sizeof(p), "%s/lock.mdb", f->db);
    unlink(p);
    rmdir(f->db);
    rmdir(f->dir);
    free(f);
    return 0;
}

#endif
