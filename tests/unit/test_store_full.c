/*
 * test_store_full.c - the store at max_map_bytes keeps room for outcomes,
 * on a real LMDB store whose map starts at its limit: intents are admitted
 * while the room keeps their outcomes, then refused (STORE_FULL), small
 * ones too, while the outcome of every intent admitted still commits (a
 * create's record id joining the index); a refused append leaves the items
 * queued with it committed; the store reports itself full.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <jansson.h>

#include "store.h"
#include "store_fixture.h"

#define MAP_BYTES  (256u << 10) /* the e2e suite's tiny map, at its limit from the start */
#define FILL_LIMIT 4000         /* appends before the map must have filled */

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

/* A refused append is refused alone: an outcome and a setting queued with it commit. */
static void test_store_full_alone(void **state)
{
    struct fixture *f = *state;
    struct wait wu = {.f = f}, wa = {.f = f}, ws = {.f = f};
    struct store_query q = {.workspace = "full", .limit = STORE_QUERY_MAX};
    json_t *out, *r;
    uint64_t next;
    char err[256];

    while (submit(f, create_rec("unknown", 600, 0), 0).st == STORE_OK)
        ;
    /* the oldest intent (newest first: the last), with its outcome */
    assert_int_equal(store_query_audit(f->s, &q, &out, &next, err, sizeof(err)), 0);
    assert_true(json_array_size(out) > 0);
    r = json_deep_copy(json_array_get(out, json_array_size(out) - 1));
    json_decref(out);
    json_object_set_new(r, "outcome", json_string("allowed"));
    /* queued together: the writer takes what is queued as one batch */
    assert_int_equal(store_audit_update(f->port, json_pack("[o]", r), waitcb, &wu), 0);
    assert_int_equal(store_audit_append(f->port, json_pack("[o]", create_rec("unknown", 1, 1)),
                                        NULL, waitcb, &wa),
                     0);
    assert_int_equal(store_workspace_set_dry_run(f->port, "full", 1, 0, waitcb, &ws), 0);
    await(&wu);
    await(&wa);
    await(&ws);
    assert_int_equal(wu.st, STORE_OK);
    assert_int_equal(wa.st, STORE_FULL);
    assert_int_equal(ws.st, STORE_OK);
    assert_int_equal(store_workspace_dry_run(f->s, "full"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_store_full_keeps_room, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_full_alone, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
