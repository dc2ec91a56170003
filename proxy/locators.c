/*
 * locators.c - a ring of remembered query cursors under one mutex. Follow-up
 * pages are rare next to other calls, so a linear scan is fine.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "locators.h"

struct locator_entry {
    char *ws;
    char *locator;
    time_t expires;
    struct crm_ops ops;
};

static pthread_mutex_t locators_lock = PTHREAD_MUTEX_INITIALIZER;
static struct locator_entry locators_ring[LOCATORS_MAX];
static size_t locators_next;

static void locator_entry_clear(struct locator_entry *e)
{
    free(e->ws);
    e->ws = NULL;
    free(e->locator);
    e->locator = NULL;
    crm_ops_free(&e->ops);
}

/*
 * Copy what decide needs of the reads: crm, verb, object, reads. A page of a
 * query is a read, whatever else the request that handed its locator out
 * did: a composite's writes (their records and fields are not kept anyway)
 * would make the follow-up GET a write, audited and before-read for
 * nothing. 0 / -1.
 */
static int locators_copy_ops(const struct crm_ops *from, struct crm_ops *to)
{
    for (size_t i = 0; i < from->n; i++) {
        const struct crm_op *s = &from->v[i];
        struct crm_op *d;
        if (s->verb != CRM_VERB_LIST && s->verb != CRM_VERB_READ && s->verb != CRM_VERB_SEARCH)
            continue;
        d = crm_ops_add(to, s->crm, s->verb);
        if (d == NULL)
            return -1;
        d->reads_default = s->reads_default;
        if (s->object != NULL && crm_op_set(&d->object, s->object, strlen(s->object)) < 0)
            return -1;
        for (size_t k = 0; k < s->nreads; k++) {
            if (crm_op_add_read(d, s->reads[k], strlen(s->reads[k])) < 0)
                return -1;
        }
    }
    return 0;
}

void locators_remember(const char *ws, const char *locator, const struct crm_ops *ops, time_t now)
{
    struct locator_entry *e;

    pthread_mutex_lock(&locators_lock);
    e = &locators_ring[locators_next];
    locators_next = (locators_next + 1) % LOCATORS_MAX;
    locator_entry_clear(e);
    e->ws = strdup(ws);
    e->locator = strdup(locator);
    e->expires = now + LOCATORS_TTL_SEC;
    if (e->ws == NULL || e->locator == NULL || locators_copy_ops(ops, &e->ops) < 0)
        locator_entry_clear(e); /* out of memory: the follow-up will be denied */
    pthread_mutex_unlock(&locators_lock);
}

int locators_lookup(const char *ws, const char *locator, struct crm_ops *out, time_t now)
{
    int rc = -1;

    pthread_mutex_lock(&locators_lock);
    for (size_t i = 0; i < LOCATORS_MAX; i++) {
        struct locator_entry *e = &locators_ring[i];
        if (e->locator == NULL || strcmp(e->locator, locator) != 0 || strcmp(e->ws, ws) != 0)
            continue;
        if (e->expires < now)
            break;
        /* Paging moves on: each page's locator is remembered anew. */
        e->expires = now + LOCATORS_TTL_SEC;
        rc = locators_copy_ops(&e->ops, out);
        break;
    }
    pthread_mutex_unlock(&locators_lock);
    return rc;
}

void locators_clear(void)
{
    pthread_mutex_lock(&locators_lock);
    for (size_t i = 0; i < LOCATORS_MAX; i++)
        locator_entry_clear(&locators_ring[i]);
    locators_next = 0;
    pthread_mutex_unlock(&locators_lock);
}
