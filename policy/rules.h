/*
 * rules.h - workspace policies: parse and validate the JSON rules format
 * (rules/README.md is the reference), compile them into hash sets so that
 * checking a field is one lookup, and hold them immutable and
 * reference-counted so a reload can swap them atomically.
 *
 * Pure: the proxy reads the files and hands their bytes in.
 */
#ifndef CRMGATE_RULES_H
#define CRMGATE_RULES_H

#include <stddef.h>

#include "crm.h"

enum rules_mode { RULES_MODE_ENFORCE, RULES_MODE_DRY_RUN, RULES_MODE_REVIEW };

/* A case-insensitive set of names (open addressing). */
struct rules_set {
    char **slot;
    size_t cap, n;
};

struct rules_object {
    char *name;    /* as written in the rules ("deals", "Opportunity", "*") */
    char *ptr;     /* rule id base: "acme.json#/hubspot/objects/deals" */
    int read_all;  /* "read": "*" */
    int write_all; /* "write": "*" */
    struct rules_set read, write;
    unsigned actions; /* bit (1u << verb) for each allowed verb beyond read, and
                       * RULES_SAVE_DUPLICATES */
};

/*
 * actions.save_duplicates (Salesforce): a write may ask Salesforce to save
 * past its duplicate rules (Sforce-Duplicate-Rule-Header allowSave=true).
 * A bit above every verb's.
 */
#define RULES_SAVE_DUPLICATES (1u << 24)

struct rules_crm {
    int listed;                 /* the workspace has a section for this CRM */
    struct rules_object **slot; /* open addressing by case-insensitive name */
    size_t cap, nobjects;
    struct rules_object *any; /* the "*" entry, or NULL */
    int schema_read;          /* properties, owners, describe */
    int auth;                 /* OAuth token calls */
};

struct rules_ws {
    char *name;
    char *file;
    enum rules_mode mode;
    int chat_workspace;    /* "chat_integration": "workspace": chat acts with the workspace
                              integration too (the admin override) */
    int allow_passthrough; /* agents' own CRM tokens (registered fingerprints) may call */
    struct rules_crm hubspot, salesforce;
};

struct rules {
    int refs;
    struct rules_ws **ws;
    size_t n;
    const struct rules_ws *fallback; /* the "default" workspace, or NULL */
};

/*
 * Parse and validate one workspace file. file names it in errors ("acme.json"),
 * which name the JSON pointer and the problem. Returns the compiled workspace
 * or NULL with err set.
 */
struct rules_ws *rules_ws_parse(const char *file, const char *text, size_t len, char *err,
                                size_t errlen);

/* Free a workspace that was not handed to rules_new. */
void rules_ws_free(struct rules_ws *ws);

/*
 * Gather parsed workspaces (ownership moves in; the array is copied). Two
 * workspaces with one name is an error. Returns rules with one reference.
 */
struct rules *rules_new(struct rules_ws **ws, size_t n, char *err, size_t errlen);

/* Reference counting; thread-safe. */
struct rules *rules_ref(struct rules *r);
void rules_unref(struct rules *r);

/* The workspace called name, else the "default" workspace, else NULL. */
const struct rules_ws *rules_workspace(const struct rules *r, const char *name);

/* The rules of one CRM within a workspace. */
const struct rules_crm *rules_crm_of(const struct rules_ws *ws, enum crm crm);

/* The rules for object (case-insensitive), else the "*" entry, else NULL. */
const struct rules_object *rules_object_find(const struct rules_crm *rc, const char *object);

/* Whether field may be read / written under o. */
int rules_can_read(const struct rules_object *o, const char *field);
int rules_can_write(const struct rules_object *o, const char *field);

/* Whether field is a system field that no rule may make writable. */
int rules_field_read_only(enum crm crm, const char *field);

/* "enforce", "dry_run", "review". */
const char *rules_mode_name(enum rules_mode mode);

/* Set helpers (exposed for the tests). */
int rules_set_add(struct rules_set *s, const char *name);
int rules_set_has(const struct rules_set *s, const char *name);
void rules_set_free(struct rules_set *s);

/* The names of s in case-insensitive order, as a malloc'ed array of *n pointers into s. */
const char **rules_set_sorted(const struct rules_set *s, size_t *n);

#endif
