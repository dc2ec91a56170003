/*
 * test_store_overlay.c - discarding the dry-run overlay on a real LMDB
 * store: one workspace's entries (and not those of a workspace whose name
 * it prefixes), the sweep of every workspace not in dry-run (the runtime
 * switch wins over the rules' list), a switch that discards in its own
 * commit, enough entries to span many pages (deletes while walking), and
 * audit records left alone. And overlay records nested deeper than the fast
 * parser goes (a Salesforce before-state can be): read back, and combined
 * with a later write to the same record, not silently dropped. And a
 * write that hands back the stored bytes it read: taken as given while
 * they are current, combined once a racing write changed them.
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

static void wait_done(struct fixture *f)
{
    while (!f->done)
        event_base_loop(f->base, EVLOOP_ONCE);
    assert_int_equal(f->st, STORE_OK);
}

/* n overlay entries of ws (contacts 1..n), with one audit record. */
static void put(struct fixture *f, const char *ws, int n)
{
    json_t *ov = json_array(), *recs = json_array();

    for (int i = 1; i <= n; i++) {
        char id[16];
        snprintf(id, sizeof(id), "%d", i);
        json_array_append_new(ov,
                              json_pack("{s:s, s:s, s:s, s:s, s:{s:s}, s:b, s:b}", "workspace", ws,
                                        "crm", "hubspot", "object", "contacts", "id", id, "fields",
                                        "firstname", "dry", "created", 0, "deleted", 0));
    }
    json_array_append_new(recs, json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "workspace", ws, "crm",
                                          "hubspot", "object", "contacts", "record", "1", "outcome",
                                          "dry_run", "ts", (json_int_t)1));
    f->done = 0;
    assert_int_equal(store_audit_append(f->port, recs, ov, donecb, f), 0);
    wait_done(f);
}

static int has(struct fixture *f, const char *ws, int i)
{
    char id[16];
    json_t *o;

    snprintf(id, sizeof(id), "%d", i);
    o = store_overlay_get(f->s, ws, "hubspot", "contacts", id);
    json_decref(o);
    return o != NULL;
}

static size_t audited(struct fixture *f, const char *ws)
{
    struct store_query q = {.workspace = ws, .limit = STORE_QUERY_MAX};
    json_t *out;
    uint64_t next;
    char err[256];
    size_t n;

    assert_int_equal(store_query_audit(f->s, &q, &out, &next, err, sizeof(err)), 0);
    n = json_array_size(out);
    json_decref(out);
    return n;
}

static int setup(void **state)
{
    return store_fixture_setup(state, "ov", 0);
}

static void test_overlay_discard_one(void **state)
{
    struct fixture *f = *state;

    put(f, "a", 3000); /* many pages: deletes while the cursor walks them */
    put(f, "ab", 5);   /* "a" is a prefix of its name, not its workspace */
    put(f, "b", 7);
    f->done = 0;
    assert_int_equal(store_overlay_discard(f->port, "a", NULL, donecb, f), 0);
    wait_done(f);
    assert_int_equal(f->n, 3000);
    for (int i = 1; i <= 3000; i += 97)
        assert_false(has(f, "a", i));
    assert_true(has(f, "ab", 1) && has(f, "ab", 5) && has(f, "b", 7));
    assert_int_equal(audited(f, "a"), 1);

    /* again: nothing left */
    f->done = 0;
    assert_int_equal(store_overlay_discard(f->port, "a", NULL, donecb, f), 0);
    wait_done(f);
    assert_int_equal(f->n, 0);

    /* bad calls: neither or both of ws and the list, an empty name */
    assert_int_equal(store_overlay_discard(f->port, NULL, NULL, donecb, f), -1);
    assert_int_equal(store_overlay_discard(f->port, "a", json_array(), donecb, f), -1);
    assert_int_equal(store_overlay_discard(f->port, "", NULL, donecb, f), -1);
    assert_int_equal(store_overlay_discard(f->port, NULL, json_object(), donecb, f), -1);
}

static void test_overlay_sweep(void **state)
{
    struct fixture *f = *state;

    put(f, "enf", 1200);   /* enforce by its rules, no switch: goes */
    put(f, "rules", 400);  /* dry_run by its rules: stays */
    put(f, "sw-on", 300);  /* enforce rules, switch on: stays */
    put(f, "sw-off", 250); /* dry_run rules, switch off: goes */
    put(f, "gone", 20);    /* not in the rules any more: goes */
    f->done = 0;
    assert_int_equal(store_workspace_set_dry_run(f->port, "sw-on", 1, 0, donecb, f), 0);
    wait_done(f);
    assert_int_equal(f->n, 0);
    f->done = 0;
    /* a switch that does not discard leaves the values */
    assert_int_equal(store_workspace_set_dry_run(f->port, "sw-off", 0, 0, donecb, f), 0);
    wait_done(f);
    assert_true(has(f, "sw-off", 250));

    f->done = 0;
    assert_int_equal(
        store_overlay_discard(f->port, NULL, json_pack("[s, s]", "rules", "sw-off"), donecb, f), 0);
    wait_done(f);
    assert_int_equal(f->n, 1200 + 250 + 20);
    assert_false(has(f, "enf", 1) || has(f, "enf", 1200) || has(f, "sw-off", 1) ||
                 has(f, "gone", 20));
    assert_true(has(f, "rules", 1) && has(f, "rules", 400) && has(f, "sw-on", 1) &&
                has(f, "sw-on", 300));
    assert_int_equal(audited(f, "enf"), 1);

    /* the switch off with discard: its entries go in the same commit */
    f->done = 0;
    assert_int_equal(store_workspace_set_dry_run(f->port, "sw-on", 0, 1, donecb, f), 0);
    wait_done(f);
    assert_int_equal(f->n, 300);
    assert_false(has(f, "sw-on", 1));
    assert_int_equal(store_workspace_dry_run(f->s, "sw-on"), 0);
    assert_true(has(f, "rules", 400));
}

/* A value nested depth arrays deep. */
static json_t *nested(int depth)
{
    json_t *v = json_array();

    for (int i = 1; i < depth; i++)
        v = json_pack("[o]", v);
    return v;
}

/* One dry-run overlay record of Account 001A (fields and written as synth leaves them). */
static void put_account(struct fixture *f, json_t *fields, json_t *written)
{
    json_t *ov = json_pack("[{s:s, s:s, s:s, s:s, s:o, s:o, s:b, s:b}]", "workspace", "w", "crm",
                           "salesforce", "object", "Account", "id", "001A", "fields", fields,
                           "written", written, "created", 0, "deleted", 0);
    json_t *recs = json_pack("[{s:s, s:s, s:s, s:s, s:s}]", "workspace", "w", "crm", "salesforce",
                             "object", "Account", "record", "001A", "outcome", "dry_run");

    f->done = 0;
    assert_int_equal(store_audit_append(f->port, recs, ov, donecb, f), 0);
    wait_done(f);
}

/*
 * jsonfilter_parse stops at 64 levels; jansson (and jsonout, which wrote
 * the record) go to 2048. An overlay record deeper than 64 must still be
 * found, and still be combined with a racing write to the same record.
 */
static void test_overlay_deep(void **state)
{
    struct fixture *f = *state;
    json_t *o;

    put_account(f, json_pack("{s:s, s:o}", "Name", "Dry1", "Deep__c", nested(70)),
                json_pack("[s]", "Name"));
    o = store_overlay_get(f->s, "w", "salesforce", "Account", "001A");
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "fields"), "Name")),
                        "Dry1");
    json_decref(o);

    /* a write that read the record before the first was committed: keeps Name */
    put_account(f, json_pack("{s:s}", "Industry", "Dry2"), json_pack("[s]", "Industry"));
    o = store_overlay_get(f->s, "w", "salesforce", "Account", "001A");
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "fields"), "Name")),
                        "Dry1");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(o, "fields"), "Industry")), "Dry2");
    json_decref(o);
}

/* Append one overlay record of contact 7 in "w", with seen (NULL: none) as its writer read it. */
static void put_seen(struct fixture *f, json_t *fields, const char *written,
                     struct store_seen *seen)
{
    json_t *ov = json_pack("[{s:s, s:s, s:s, s:s, s:o, s:[s], s:b, s:b}]", "workspace", "w", "crm",
                           "hubspot", "object", "contacts", "id", "7", "fields", fields, "written",
                           written, "created", 0, "deleted", 0);
    json_t *recs = json_pack("[{s:s, s:s, s:s, s:s, s:s}]", "workspace", "w", "crm", "hubspot",
                             "object", "contacts", "record", "7", "outcome", "dry_run");

    f->done = 0;
    assert_int_equal(store_audit_append_seen(f->port, recs, ov, seen, seen != NULL, donecb, f), 0);
    wait_done(f);
}

static const char *field7(struct fixture *f, const char *name, char *buf, size_t len)
{
    json_t *o = store_overlay_get(f->s, "w", "hubspot", "contacts", "7");
    const char *v = json_string_value(json_object_get(json_object_get(o, "fields"), name));

    snprintf(buf, len, "%s", v != NULL ? v : "(none)");
    json_decref(o);
    return buf;
}

/*
 * A dry-run write hands back the stored bytes it read: the writer takes the
 * record as given while the stored one is still exactly those bytes, and
 * combines as always once another write landed in between (the race).
 */
static void test_overlay_seen(void **state)
{
    struct fixture *f = *state;
    struct store_seen *seen;
    json_t *o;
    char buf[64];

    put_seen(f, json_pack("{s:s, s:s}", "a", "A1", "b", "B0"), "a", NULL);
    /* a second write reads it (A1 and its own b), and a third lands before its commit */
    seen = calloc(1, sizeof(*seen));
    assert_non_null(seen);
    o = store_overlay_get_seen(f->s, "w", "hubspot", "contacts", "7", seen);
    assert_non_null(o);
    assert_non_null(seen->bytes);
    json_decref(o);
    put_seen(f, json_pack("{s:s, s:s, s:s}", "a", "A1", "b", "B0", "c", "C3"), "c", NULL);
    put_seen(f, json_pack("{s:s, s:s}", "a", "A1", "b", "B2"), "b", seen);
    assert_string_equal(field7(f, "a", buf, sizeof(buf)), "A1");
    assert_string_equal(field7(f, "b", buf, sizeof(buf)), "B2");
    assert_string_equal(field7(f, "c", buf, sizeof(buf)), "C3"); /* the racing write's */

    /* still exactly what was read: written as given, the stored record not read back */
    seen = calloc(1, sizeof(*seen));
    assert_non_null(seen);
    o = store_overlay_get_seen(f->s, "w", "hubspot", "contacts", "7", seen);
    json_decref(o);
    put_seen(f, json_pack("{s:s}", "d", "D4"), "d", seen);
    assert_string_equal(field7(f, "d", buf, sizeof(buf)), "D4");
    assert_string_equal(field7(f, "c", buf, sizeof(buf)), "(none)");

    /* no record stored: no bytes */
    seen = calloc(1, sizeof(*seen));
    assert_non_null(seen);
    assert_null(store_overlay_get_seen(f->s, "w", "hubspot", "contacts", "8", seen));
    assert_null(seen->bytes);
    store_seen_free(seen, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_overlay_discard_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overlay_sweep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overlay_deep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overlay_seen, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
