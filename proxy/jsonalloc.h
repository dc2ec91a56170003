/*
 * jsonalloc.h - jansson's allocations from small per-thread free lists.
 *
 * The write path builds and drops jansson trees by the hundred per request
 * (a dry-run write: the stored overlay record parsed, the synthesized answer
 * and the new overlay record built, ~480 allocations), nearly all of a few
 * small sizes, freed within the request. glibc's per-thread cache holds 7
 * blocks of a size; past that a malloc or free goes through the arena's
 * bins (~130 instructions a call here). With jsonalloc each thread keeps up
 * to JSONALLOC_PER_CLASS freed blocks of each small size and hands them out
 * again, a pop or a push.
 *
 * Blocks are plain malloc blocks, found by their usable size: free()
 * releases any of them (json_dumps' strings are freed so), and jsonalloc
 * takes blocks malloc'd elsewhere. A thread's blocks are freed when it
 * exits, the main thread's at exit(). Under AddressSanitizer it is not installed, so that ASan sees
 * every allocation and free; under valgrind's memcheck a kept block is
 * marked no-access until it is handed out again.
 */
#ifndef CRMGATE_JSONALLOC_H
#define CRMGATE_JSONALLOC_H

#define JSONALLOC_CLASSES   16  /* sizes cached: 24, 40, ..., 264 bytes (glibc's usable sizes) */
#define JSONALLOC_PER_CLASS 128 /* freed blocks a thread keeps per size */

/* Install the allocator for jansson (before threads start); 1 installed, 0 standing aside. */
int jsonalloc_install(void);

#endif
