/*
 * test_store_full.c - the store at max_map_bytes keeps room for outcomes,
 * on a real LMDB store whose map starts at its limit: intents are admitted
 * while the room keeps their outcomes, then refused (STORE_FULL), small
 * ones too, while the outcome of every intent admitted still commits (a
 * create's record id joining the index); a refused append leaves the items
 * batched with it committed, also when LMDB itself finds the map full (a
 * reader pinning pages); the store reports itself full.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <jansson.h>

#include "store.h"
#include "store_fixture.h"
#include "store_internal.h"

#define MAP_BYTES  (256u << 10) /* the e2e suite's tiny map, at its limit from the start */
#define FILL_LIMIT 4000         /* appends before the map must have filled */
/* past the last page used: room for two small commits, not for a BIG intent */
#define HEADROOM (16u << 12)
#define BIG      60000

/* One submission's result, with the first id its callback got. */
struct wait {
    struct fixture *f;
    int done;
    enum store_status st;
    uint64_t first;
};

static void waitcb(enum store_status st, uint64_t first, size_t n, void *arg)
{
    struct wait *w = arg;

    (void)n;
    w->st = st;
    w->first = first;
    w->done = 1;
    event_base_loopbreak(w->f->base);
}

static void await(struct wait *w)
{
    while (!w->done)
        event_base_loop(w->f->base, EVLOOP_ONCE);
}

/* A create's record: no record id yet, a value of vlen bytes, the given outcome. */
static json_t *create_rec(const char *outcome, size_t vlen, int n)
{
    char *v = malloc(vlen + 1);
    json_t *r;

    assert_non_null(v);
    memset(v, 'v', vlen);
    v[vlen] = '\0';
    r = json_pack("{s:s, s:s, s:s, s:s, s:n, s:s, s:s, s:i, s:[{s:s, s:n, s:s}]}", "workspace",
                  "full", "crm", "salesforce", "object", "Account", "verb", "create", "record",
                  "outcome", outcome, "user", "ana", "n", n, "fields", "name", "Name", "before",
                  "after", v);
    free(v);
    assert_non_null(r);
    return r;
}

/* Submit an append of one record (update 0) or an update, and wait for its commit. */
static struct wait submit(struct fixture *f, json_t *r, int update)
{
    struct wait w = {.f = f};
    json_t *arr = json_pack("[o]", r);

    assert_int_equal(update ? store_audit_update(f->port, arr, waitcb, &w)
                            : store_audit_append(f->port, arr, NULL, waitcb, &w),
                     0);
    await(&w);
    return w;
}

static int setup(void **state)
{
    return store_fixture_setup_limit(state, "full", MAP_BYTES, MAP_BYTES);
}

/* The outcome of an intent (its record as appended, id given): allowed, with the id the CRM
 * gave, so its record joins the index. */
static json_t *outcome_rec(uint64_t id, size_t i, char *rid, size_t ridlen)
{
    json_t *r = create_rec("allowed", 600, (int)i);

    snprintf(rid, ridlen, "001Hs%013zu", i);
    json_object_set_new(r, "id", json_sprintf("%llu", (unsigned long long)id));
    json_object_set_new(r, "record", json_string(rid));
    json_object_set_new(r, "upstream_status", json_integer(201));
    json_object_set_new(r, "latency_us", json_integer(123456));
    return r;
}

/*
 * Intents left open fill the room first: refused then, small ones and final
 * records too, while every admitted one's outcome commits (one commit each:
 * the most pages copied). With the outcomes in, intents settled one at a
 * time (a client after another) are admitted again until the room is
 * short, each outcome committing, and then refused for good.
 */
static void test_store_full_keeps_room(void **state)
{
    struct fixture *f = *state;
    uint64_t ids[FILL_LIMIT];
    size_t n = 0, more = 0;
    struct store_info si;
    struct store_query byrec = {.crm = "salesforce", .object = "Account", .limit = 1};
    struct store_query open = {.workspace = "full", .outcome = "unknown", .limit = 10};
    json_t *out;
    uint64_t next;
    char err[256], rid[32];

    for (;;) {
        struct wait w = submit(f, create_rec("unknown", 600, (int)n), 0);
        if (w.st == STORE_FULL)
            break;
        assert_int_equal(w.st, STORE_OK);
        assert_true(n < FILL_LIMIT);
        ids[n++] = w.first;
    }
    assert_true(n >= 10);
    store_info(f->s, &si);
    assert_int_equal(si.full, 1);
    assert_int_equal(submit(f, create_rec("unknown", 1, 0), 0).st, STORE_FULL);
    assert_int_equal(submit(f, create_rec("denied", 1, 0), 0).st, STORE_FULL);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(submit(f, outcome_rec(ids[i], i, rid, sizeof(rid)), 1).st, STORE_OK);

    for (;;) {
        struct wait w = submit(f, create_rec("unknown", 600, (int)(n + more)), 0);
        if (w.st == STORE_FULL)
            break;
        assert_int_equal(w.st, STORE_OK);
        assert_true(more < FILL_LIMIT);
        assert_int_equal(submit(f, outcome_rec(w.first, n + more, rid, sizeof(rid)), 1).st,
                         STORE_OK);
        more++;
    }
    for (int k = 0; k < 3; k++)
        assert_int_equal(submit(f, create_rec("unknown", 1, 0), 0).st, STORE_FULL);
    store_info(f->s, &si);
    assert_int_equal(si.full, 1);

    assert_int_equal(store_query_audit(f->s, &open, &out, &next, err, sizeof(err)), 0);
    assert_int_equal(json_array_size(out), 0);
    json_decref(out);
    byrec.record = rid;
    assert_int_equal(store_query_audit(f->s, &byrec, &out, &next, err, sizeof(err)), 0);
    assert_int_equal(json_array_size(out), 1);
    json_decref(out);
}

/*
 * Another process holding LMDB's write lock (a write transaction open in a
 * child): the store's writer, blocked on it with the item it took, lets
 * what is submitted meanwhile queue up as its next batch.
 */
struct lock_holder {
    pid_t pid;
    int go[2], ready[2];
};

static void hold_write_lock(const struct fixture *f, struct lock_holder *h)
{
    char c = 0;

    assert_int_equal(pipe(h->go), 0);
    assert_int_equal(pipe(h->ready), 0);
    h->pid = fork();
    assert_true(h->pid >= 0);
    if (h->pid == 0) {
        MDB_env *env;
        MDB_txn *txn;
        if (mdb_env_create(&env) != 0 || mdb_env_set_maxdbs(env, STORE_DB_COUNT) != 0 ||
            mdb_env_open(env, f->db, MDB_NOTLS, 0660) != 0 ||
            mdb_txn_begin(env, NULL, 0, &txn) != 0)
            _exit(1);
        if (write(h->ready[1], "r", 1) != 1 || read(h->go[0], &c, 1) != 1)
            _exit(2);
        mdb_txn_abort(txn);
        mdb_env_close(env);
        _exit(0);
    }
    close(h->go[0]);
    close(h->ready[1]);
    assert_int_equal(read(h->ready[0], &c, 1), 1);
}

static void release_write_lock(struct lock_holder *h)
{
    int status = 0;

    assert_int_equal(write(h->go[1], "g", 1), 1);
    assert_int_equal(waitpid(h->pid, &status, 0), h->pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(h->go[1]);
    close(h->ready[0]);
}

/*
 * The writer blocked on a switch of another workspace behind another
 * process's write lock (hold_write_lock): what is submitted next queues up
 * as its next batch. Returns the commits so far.
 */
static uint64_t block_writer(struct fixture *f, struct lock_holder *h, struct wait *wx)
{
    struct store_info si;
    int waited = 0;

    hold_write_lock(f, h);
    assert_int_equal(store_workspace_set_dry_run(f->port, "other", 1, 0, waitcb, wx), 0);
    do {
        usleep(1000);
        assert_true(++waited < 10000);
        store_info(f->s, &si);
    } while (si.queue_depth > 0);
    return si.commits;
}

/* A refused append is refused alone: an outcome and a setting queued with it commit. */
static void test_store_full_alone(void **state)
{
    struct fixture *f = *state;
    struct wait wx = {.f = f}, wu = {.f = f}, wa = {.f = f}, ws = {.f = f};
    struct store_query q = {.workspace = "full", .limit = STORE_QUERY_MAX};
    struct lock_holder h;
    struct store_info si;
    json_t *out, *r;
    uint64_t next, commits;
    char err[256];

    while (submit(f, create_rec("unknown", 600, 0), 0).st == STORE_OK)
        ;
    /* the oldest intent (newest first: the last), with its outcome */
    assert_int_equal(store_query_audit(f->s, &q, &out, &next, err, sizeof(err)), 0);
    assert_true(json_array_size(out) > 0);
    r = json_deep_copy(json_array_get(out, json_array_size(out) - 1));
    json_decref(out);
    json_object_set_new(r, "outcome", json_string("allowed"));
    commits = block_writer(f, &h, &wx);
    assert_int_equal(store_audit_update(f->port, json_pack("[o]", r), waitcb, &wu), 0);
    assert_int_equal(store_audit_append(f->port, json_pack("[o]", create_rec("unknown", 1, 1)),
                                        NULL, waitcb, &wa),
                     0);
    assert_int_equal(store_workspace_set_dry_run(f->port, "full", 1, 0, waitcb, &ws), 0);
    release_write_lock(&h);
    await(&wx);
    await(&wu);
    await(&wa);
    await(&ws);
    store_info(f->s, &si);
    assert_int_equal(si.commits - commits, 2); /* the other switch, then the three */
    assert_int_equal(wx.st, STORE_OK);
    assert_int_equal(wu.st, STORE_OK);
    assert_int_equal(wa.st, STORE_FULL);
    assert_int_equal(ws.st, STORE_OK);
    assert_int_equal(store_workspace_dry_run(f->s, "full"), 1);
}

/*
 * A reader holding an old snapshot keeps the pages freed since from being
 * reused, though they are on the free list the room counts: an append
 * admitted on them does not fit (MDB_MAP_FULL at the limit), and its batch
 * is written again without it, so an outcome batched with it commits.
 */
static void test_store_full_replay(void **state)
{
    struct fixture *f = *state;
    struct wait wx = {.f = f}, wu = {.f = f}, wa = {.f = f};
    struct lock_holder h;
    struct store_info si;
    MDB_txn *reader;
    json_t *r;
    uint64_t id, commits;
    char err[256];

    id = submit(f, create_rec("unknown", 600, 0), 0).first;
    assert_true(id != 0);
    assert_int_equal(store_read_begin(f->s, &reader, err, sizeof(err)), 0);
    /* the intent rewritten until the pinned pages leave little room past the last page used */
    for (int k = 0;; k++) {
        store_info(f->s, &si);
        if (si.map_bytes - si.used_bytes < HEADROOM)
            break;
        r = create_rec("unknown", 600, k);
        json_object_set_new(r, "id", json_sprintf("%llu", (unsigned long long)id));
        assert_int_equal(submit(f, r, 1).st, STORE_OK);
        assert_true(k < FILL_LIMIT);
    }
    /* the outcome and a large intent queued up together */
    commits = block_writer(f, &h, &wx);
    r = create_rec("allowed", 10, 0);
    json_object_set_new(r, "id", json_sprintf("%llu", (unsigned long long)id));
    assert_int_equal(store_audit_update(f->port, json_pack("[o]", r), waitcb, &wu), 0);
    assert_int_equal(store_audit_append(f->port, json_pack("[o]", create_rec("unknown", BIG, 1)),
                                        NULL, waitcb, &wa),
                     0);
    release_write_lock(&h);
    await(&wx);
    await(&wu);
    await(&wa);
    store_info(f->s, &si);
    assert_int_equal(si.commits - commits, 2); /* the switch, then the outcome and the intent */
    assert_int_equal(wx.st, STORE_OK);
    assert_int_equal(wu.st, STORE_OK);
    assert_int_equal(wa.st, STORE_FULL);
    store_read_end(f->s, reader);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_store_full_keeps_room, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_full_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_full_replay, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
