/*
 * jsonalloc.c - jansson's allocations from per-thread free lists (see
 * jsonalloc.h).
 */
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>

#include <jansson.h>

#include "jsonalloc.h"

/* Under memcheck a kept block is no-access until handed out again (a use after free is still
 * caught); elsewhere these are a few instructions that do nothing. */
#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#endif
#endif
#ifndef VALGRIND_MAKE_MEM_NOACCESS
#define VALGRIND_MAKE_MEM_NOACCESS(p, n)  ((void)(p), (void)(n))
#define VALGRIND_MAKE_MEM_UNDEFINED(p, n) ((void)(p), (void)(n))
#define VALGRIND_MAKE_MEM_DEFINED(p, n)   ((void)(p), (void)(n))
#endif

#if defined(__SANITIZE_ADDRESS__)
#define JSONALLOC_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define JSONALLOC_SANITIZED 1
#endif
#endif
#ifndef JSONALLOC_SANITIZED
#define JSONALLOC_SANITIZED 0
#endif

/* glibc's usable sizes of small chunks: 24, then steps of 16 */
#define JSONALLOC_MIN  24
#define JSONALLOC_STEP 16

struct jsonalloc_block {
    struct jsonalloc_block *next;
};

struct jsonalloc_cache {
    struct jsonalloc_block *head[JSONALLOC_CLASSES];
    unsigned count[JSONALLOC_CLASSES];
    int registered; /* the exit destructor is armed */
};

static __thread struct jsonalloc_cache jsonalloc_tls;
static pthread_key_t jsonalloc_key;

static void *jsonalloc_malloc(size_t n)
{
    struct jsonalloc_cache *c = &jsonalloc_tls;
    size_t k = n <= JSONALLOC_MIN ? 0 : (n - JSONALLOC_MIN + JSONALLOC_STEP - 1) / JSONALLOC_STEP;
    struct jsonalloc_block *b;

    if (k >= JSONALLOC_CLASSES)
        return malloc(n);
    b = c->head[k];
    if (b == NULL)
        return malloc(JSONALLOC_MIN + k * JSONALLOC_STEP); /* its class's size: reusable as it */
    VALGRIND_MAKE_MEM_DEFINED(b, sizeof(*b));
    c->head[k] = b->next;
    c->count[k]--;
    VALGRIND_MAKE_MEM_UNDEFINED(b, JSONALLOC_MIN + k * JSONALLOC_STEP); /* all it holds */
    return b;
}

static void jsonalloc_free(void *p)
{
    struct jsonalloc_cache *c = &jsonalloc_tls;
    struct jsonalloc_block *b = p;
    size_t u, k;

    if (p == NULL)
        return;
    u = malloc_usable_size(p);
    /* a block serves the largest class it holds in full */
    k = u >= JSONALLOC_MIN ? (u - JSONALLOC_MIN) / JSONALLOC_STEP : JSONALLOC_CLASSES;
    if (k >= JSONALLOC_CLASSES || c->count[k] >= JSONALLOC_PER_CLASS) {
        free(p);
        return;
    }
    if (!c->registered) {
        /* a thread's blocks go when it exits (the destructor runs for non-NULL values) */
        if (pthread_setspecific(jsonalloc_key, c) != 0) {
            free(p);
            return;
        }
        c->registered = 1;
    }
    VALGRIND_MAKE_MEM_UNDEFINED(b, sizeof(*b)); /* a short request's block: made whole again */
    b->next = c->head[k];
    c->head[k] = b;
    c->count[k]++;
    VALGRIND_MAKE_MEM_NOACCESS(b, u);
}

/* At a thread's exit: release what it kept. */
static void jsonalloc_thread_exit(void *arg)
{
    struct jsonalloc_cache *c = arg;

    for (size_t k = 0; k < JSONALLOC_CLASSES; k++) {
        while (c->head[k] != NULL) {
            struct jsonalloc_block *b = c->head[k];
            VALGRIND_MAKE_MEM_DEFINED(b, sizeof(*b));
            c->head[k] = b->next;
            free(b);
        }
        c->count[k] = 0;
    }
    c->registered = 0;
}

/* At the process's exit: what the exiting thread (main) kept; no key destructor runs for it. */
static void jsonalloc_process_exit(void)
{
    jsonalloc_thread_exit(&jsonalloc_tls);
}

int jsonalloc_install(void)
{
    if (JSONALLOC_SANITIZED)
        return 0;
    if (pthread_key_create(&jsonalloc_key, jsonalloc_thread_exit) != 0)
        return 0;
    if (atexit(jsonalloc_process_exit) != 0) {
        pthread_key_delete(jsonalloc_key);
        return 0;
    }
    json_set_alloc_funcs(jsonalloc_malloc, jsonalloc_free);
    return 1;
}
