/*
 * rules.c - parse, validate and compile workspace rules.
 *
 * Everything not listed is denied, so validation is strict: unknown keys,
 * duplicate keys, duplicate fields, read-only system fields in a write list
 * and options that crmgate does not enforce yet are all errors, named by
 * file and JSON pointer. A rule that parses is a rule that is enforced.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "rules.h"

#define RULES_MAX_BYTES (4 * 1024 * 1024)

/* ---- case-insensitive hashing ---- */

static size_t rules_hash(const char *s)
{
    size_t h = 1469598103934665603ULL; /* FNV-1a over lower-cased bytes */

    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch >= 'A' && ch <= 'Z')
            ch = (unsigned char)(ch + 32);
        h ^= ch;
        h *= 1099511628211ULL;
    }
    return h;
}

static int rules_set_grow(struct rules_set *s)
{
    size_t cap = s->cap ? s->cap * 2 : 16;
    char **slot = calloc(cap, sizeof(*slot));

    if (slot == NULL)
        return -1;
    for (size_t i = 0; i < s->cap; i++) {
        if (s->slot[i] == NULL)
            continue;
        size_t j = rules_hash(s->slot[i]) & (cap - 1);
        while (slot[j] != NULL)
            j = (j + 1) & (cap - 1);
        slot[j] = s->slot[i];
    }
    free(s->slot);
    s->slot = slot;
    s->cap = cap;
    return 0;
}

int rules_set_has(const struct rules_set *s, const char *name)
{
    if (s->cap == 0)
        return 0;
    for (size_t j = rules_hash(name) & (s->cap - 1); s->slot[j] != NULL;
         j = (j + 1) & (s->cap - 1)) {
        if (strcasecmp(s->slot[j], name) == 0)
            return 1;
    }
    return 0;
}

/* 1 added, 0 already there, -1 out of memory. */
int rules_set_add(struct rules_set *s, const char *name)
{
    size_t j;

    if (rules_set_has(s, name))
        return 0;
    if ((s->n + 1) * 2 > s->cap && rules_set_grow(s) < 0)
        return -1;
    j = rules_hash(name) & (s->cap - 1);
    while (s->slot[j] != NULL)
        j = (j + 1) & (s->cap - 1);
    s->slot[j] = strdup(name);
    if (s->slot[j] == NULL)
        return -1;
    s->n++;
    return 1;
}

void rules_set_free(struct rules_set *s)
{
    for (size_t i = 0; i < s->cap; i++)
        free(s->slot[i]);
    free(s->slot);
    s->slot = NULL;
    s->cap = s->n = 0;
}

static int rules_name_cmp(const void *a, const void *b)
{
    return strcasecmp(*(const char *const *)a, *(const char *const *)b);
}

const char **rules_set_sorted(const struct rules_set *s, size_t *n)
{
    const char **v = malloc((s->n ? s->n : 1) * sizeof(*v));

    *n = 0;
    if (v == NULL)
        return NULL;
    for (size_t i = 0; i < s->cap; i++) {
        if (s->slot[i] != NULL)
            v[(*n)++] = s->slot[i];
    }
    qsort(v, *n, sizeof(*v), rules_name_cmp);
    return v;
}

/* ---- read-only system fields ---- */

static const char *const rules_hubspot_read_only[] = {"hs_object_id",
                                                      "lastmodifieddate",
                                                      "hs_lastmodifieddate",
                                                      "createdate",
                                                      "hs_createdate",
                                                      "hs_object_source*",
                                                      "hs_updated_by_user_id",
                                                      "hs_created_by_user_id",
                                                      "hs_all_owner_ids",
                                                      "hs_merged_object_ids",
                                                      "hs_unique_creation_key",
                                                      "hs_was_imported",
                                                      NULL};

static const char *const rules_salesforce_read_only[] = {"Id",
                                                         "SystemModstamp",
                                                         "LastModifiedDate",
                                                         "LastModifiedById",
                                                         "CreatedDate",
                                                         "CreatedById",
                                                         "IsDeleted",
                                                         "LastActivityDate",
                                                         "LastViewedDate",
                                                         "LastReferencedDate",
                                                         "MasterRecordId",
                                                         NULL};

int rules_field_read_only(enum crm crm, const char *field)
{
    const char *const *list =
        crm == CRM_SALESFORCE ? rules_salesforce_read_only : rules_hubspot_read_only;

    for (size_t i = 0; list[i] != NULL; i++) {
        size_t n = strlen(list[i]);
        /* "name*" covers a family (hs_object_source, hs_object_source_detail_2, ...) */
        if (list[i][n - 1] == '*' ? strncasecmp(list[i], field, n - 1) == 0
                                  : strcasecmp(list[i], field) == 0)
            return 1;
    }
    return 0;
}

const char *rules_mode_name(enum rules_mode mode)
{
    switch (mode) {
    case RULES_MODE_DRY_RUN:
        return "dry_run";
    case RULES_MODE_REVIEW:
        return "review";
    case RULES_MODE_ENFORCE:
        break;
    }
    return "enforce";
}

/* ---- errors and JSON pointers ---- */

struct rules_ctx {
    const char *file; /* as given: errors name it */
    const char *id;   /* its base name: rule ids use it */
    char *err;
    size_t errlen;
};

static int rules_fail(struct rules_ctx *cx, const char *ptr, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int rules_fail(struct rules_ctx *cx, const char *ptr, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(cx->err, cx->errlen, "%s: %s: %s", cx->file, ptr[0] ? ptr : "/", msg);
    return -1;
}

/* ptr + "/" + key with ~ and / escaped (RFC 6901). */
static void rules_ptr(char *out, size_t outlen, const char *ptr, const char *key)
{
    size_t o = (size_t)snprintf(out, outlen, "%s/", ptr);

    for (; *key != '\0' && o + 3 < outlen; key++) {
        if (*key == '~' || *key == '/') {
            out[o++] = '~';
            out[o++] = *key == '~' ? '0' : '1';
        } else {
            out[o++] = *key;
        }
    }
    out[o < outlen ? o : outlen - 1] = '\0';
}

/*
 * The JSON pointer of the member key that ends at byte pos of text (jansson
 * reports a duplicate key there). The text before pos is valid JSON, so a
 * plain scan that tracks the open containers and their current key or
 * index is enough. 0, or -1 when pos is not inside an object.
 */
static int rules_pointer_at(const char *text, size_t len, size_t pos, char *out, size_t outlen)
{
    enum { MAXD = 64 };
    struct {
        int object, want_key;
        size_t index;
        char key[128];
    } st[MAXD];
    int d = -1;

    if (pos > len)
        pos = len;
    for (size_t i = 0; i < pos; i++) {
        char ch = text[i];
        if (ch == '{' || ch == '[') {
            if (++d == MAXD)
                return -1;
            st[d].object = ch == '{';
            st[d].want_key = st[d].object;
            st[d].index = 0;
            st[d].key[0] = '\0';
        } else if (ch == '}' || ch == ']') {
            if (d-- < 0)
                return -1;
        } else if (ch == ',' && d >= 0) {
            if (st[d].object)
                st[d].want_key = 1;
            else
                st[d].index++;
        } else if (ch == '"') {
            size_t start = ++i, n;
            while (i < len && text[i] != '"')
                i += text[i] == '\\' ? 2 : 1;
            if (d >= 0 && st[d].object && st[d].want_key) {
                n = i - start < sizeof(st[d].key) - 1 ? i - start : sizeof(st[d].key) - 1;
                memcpy(st[d].key, text + start, n);
                st[d].key[n] = '\0';
                st[d].want_key = 0;
            }
        }
    }
    if (d < 0 || !st[d].object)
        return -1;
    out[0] = '\0';
    for (int k = 0; k <= d; k++) {
        char seg[160], tmp[512];
        if (st[k].object)
            rules_ptr(tmp, sizeof(tmp), out, st[k].key);
        else {
            snprintf(seg, sizeof(seg), "%zu", st[k].index);
            rules_ptr(tmp, sizeof(tmp), out, seg);
        }
        snprintf(out, outlen, "%s", tmp);
    }
    return 0;
}

static int rules_check_keys(struct rules_ctx *cx, json_t *obj, const char *ptr,
                            const char *const *allowed)
{
    const char *key;
    json_t *v;

    json_object_foreach(obj, key, v)
    {
        size_t i;
        for (i = 0; allowed[i] != NULL; i++) {
            if (strcmp(key, allowed[i]) == 0)
                break;
        }
        if (allowed[i] == NULL) {
            char p[512];
            rules_ptr(p, sizeof(p), ptr, key);
            return rules_fail(cx, p, "unknown key");
        }
    }
    (void)v;
    return 0;
}

/* ---- objects ---- */

static int rules_field_name_ok(const char *s)
{
    if (*s == '\0' || strlen(s) > 255)
        return 0;
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch <= ' ' || ch == 0x7f || ch == ',' || ch == '"')
            return 0;
    }
    return 1;
}

static int rules_parse_read(struct rules_ctx *cx, struct rules_object *o, json_t *v,
                            const char *ptr)
{
    size_t i;
    json_t *f;

    if (json_is_string(v) && strcmp(json_string_value(v), "*") == 0) {
        o->read_all = 1;
        return 0;
    }
    if (!json_is_array(v))
        return rules_fail(cx, ptr, "must be a list of field names, or \"*\" for every field");
    json_array_foreach(v, i, f)
    {
        char p[544];
        int rc;
        snprintf(p, sizeof(p), "%s/%zu", ptr, i);
        if (!json_is_string(f) || !rules_field_name_ok(json_string_value(f)))
            return rules_fail(cx, p, "must be a field name");
        rc = rules_set_add(&o->read, json_string_value(f));
        if (rc < 0)
            return rules_fail(cx, p, "out of memory");
        if (rc == 0)
            return rules_fail(cx, p, "duplicate field \"%s\"", json_string_value(f));
    }
    return 0;
}

static int rules_add_write(struct rules_ctx *cx, enum crm crm, struct rules_object *o,
                           const char *field, const char *p)
{
    int rc;

    if (!rules_field_name_ok(field))
        return rules_fail(cx, p, "must be a field name");
    if (rules_field_read_only(crm, field))
        return rules_fail(cx, p, "\"%s\" is a read-only system field and can never be written",
                          field);
    rc = rules_set_add(&o->write, field);
    if (rc < 0)
        return rules_fail(cx, p, "out of memory");
    if (rc == 0)
        return rules_fail(cx, p, "duplicate field \"%s\"", field);
    return 0;
}

static int rules_parse_write(struct rules_ctx *cx, enum crm crm, struct rules_object *o, json_t *v,
                             const char *ptr)
{
    const char *key;
    json_t *f;
    size_t i;

    if (json_is_string(v) && strcmp(json_string_value(v), "*") == 0) {
        o->write_all = 1;
        return 0;
    }
    if (json_is_array(v)) {
        json_array_foreach(v, i, f)
        {
            char p[544];
            snprintf(p, sizeof(p), "%s/%zu", ptr, i);
            if (!json_is_string(f))
                return rules_fail(cx, p, "must be a field name");
            if (rules_add_write(cx, crm, o, json_string_value(f), p) < 0)
                return -1;
        }
        return 0;
    }
    if (!json_is_object(v))
        return rules_fail(cx, ptr,
                          "must be a list of field names, an object of field: {}, or "
                          "\"*\"");
    json_object_foreach(v, key, f)
    {
        char p[512];
        rules_ptr(p, sizeof(p), ptr, key);
        if (!json_is_object(f))
            return rules_fail(cx, p, "must be an object ({} for a plain writable field)");
        if (json_object_size(f) != 0) {
            /* Guards that are accepted but not enforced would be a silent lie. */
            const char *opt = json_object_iter_key(json_object_iter(f));
            char q[600];
            rules_ptr(q, sizeof(q), p, opt);
            return rules_fail(cx, q,
                              "write option \"%s\" is not supported yet (overwrite guards "
                              "and review arrive in a later release); remove it",
                              opt);
        }
        if (rules_add_write(cx, crm, o, key, p) < 0)
            return -1;
    }
    return 0;
}

static const struct {
    const char *name;
    unsigned bit;
    enum crm crm; /* CRM_NONE: both */
} rules_actions[] = {
    {"create", 1u << CRM_VERB_CREATE, CRM_NONE},
    {"update", 1u << CRM_VERB_UPDATE, CRM_NONE},
    {"upsert", 1u << CRM_VERB_UPSERT, CRM_NONE},
    {"delete", 1u << CRM_VERB_DELETE, CRM_NONE},
    {"merge", 1u << CRM_VERB_MERGE, CRM_NONE},
    {"gdpr_delete", 1u << CRM_VERB_GDPR_DELETE, CRM_NONE},
    {"associate", 1u << CRM_VERB_ASSOCIATE, CRM_NONE},
    {"dissociate", 1u << CRM_VERB_DISSOCIATE, CRM_NONE},
    {"save_duplicates", RULES_SAVE_DUPLICATES, CRM_SALESFORCE},
};

static int rules_parse_actions(struct rules_ctx *cx, enum crm crm, struct rules_object *o,
                               json_t *v, const char *ptr, int *update_given)
{
    const char *key;
    json_t *f;

    if (!json_is_object(v))
        return rules_fail(cx, ptr, "must be an object such as {\"create\": true}");
    json_object_foreach(v, key, f)
    {
        char p[512];
        size_t i;
        rules_ptr(p, sizeof(p), ptr, key);
        for (i = 0; i < sizeof(rules_actions) / sizeof(rules_actions[0]); i++) {
            if (strcmp(key, rules_actions[i].name) == 0)
                break;
        }
        if (i == sizeof(rules_actions) / sizeof(rules_actions[0]))
            return rules_fail(cx, p,
                              "unknown action (known: create, update, upsert, delete, "
                              "merge, gdpr_delete, associate, dissociate, save_duplicates)");
        if (rules_actions[i].crm != CRM_NONE && rules_actions[i].crm != crm)
            return rules_fail(cx, p,
                              "save_duplicates is a Salesforce action (Sforce-Duplicate-Rule-"
                              "Header); HubSpot has no way to save past its duplicate checks");
        if (!json_is_boolean(f))
            return rules_fail(cx, p, "must be true or false");
        if (rules_actions[i].bit == 1u << CRM_VERB_UPDATE)
            *update_given = 1;
        if (json_is_true(f))
            o->actions |= rules_actions[i].bit;
    }
    return 0;
}

static void rules_object_clear(struct rules_object *o)
{
    free(o->name);
    free(o->ptr);
    rules_set_free(&o->read);
    rules_set_free(&o->write);
    free(o);
}

static int rules_crm_insert(struct rules_crm *rc, struct rules_object *o)
{
    size_t j;

    if ((rc->nobjects + 1) * 2 > rc->cap) {
        size_t cap = rc->cap ? rc->cap * 2 : 16;
        struct rules_object **slot = calloc(cap, sizeof(*slot));
        if (slot == NULL)
            return -1;
        for (size_t i = 0; i < rc->cap; i++) {
            if (rc->slot[i] == NULL)
                continue;
            j = rules_hash(rc->slot[i]->name) & (cap - 1);
            while (slot[j] != NULL)
                j = (j + 1) & (cap - 1);
            slot[j] = rc->slot[i];
        }
        free(rc->slot);
        rc->slot = slot;
        rc->cap = cap;
    }
    j = rules_hash(o->name) & (rc->cap - 1);
    while (rc->slot[j] != NULL)
        j = (j + 1) & (rc->cap - 1);
    rc->slot[j] = o;
    rc->nobjects++;
    return 0;
}

/* The entry named object exactly (case-insensitive), without the "*" fallback. */
static const struct rules_object *rules_object_lookup(const struct rules_crm *rc,
                                                      const char *object)
{
    if (object == NULL || rc->cap == 0)
        return NULL;
    for (size_t j = rules_hash(object) & (rc->cap - 1); rc->slot[j] != NULL;
         j = (j + 1) & (rc->cap - 1)) {
        if (strcasecmp(rc->slot[j]->name, object) == 0)
            return rc->slot[j];
    }
    return NULL;
}

const struct rules_object *rules_object_find(const struct rules_crm *rc, const char *object)
{
    const struct rules_object *o = rules_object_lookup(rc, object);

    return o != NULL ? o : rc->any;
}

int rules_can_read(const struct rules_object *o, const char *field)
{
    return o->read_all || rules_set_has(&o->read, field);
}

int rules_can_write(const struct rules_object *o, const char *field)
{
    return o->write_all || rules_set_has(&o->write, field);
}

static int rules_parse_object(struct rules_ctx *cx, enum crm crm, struct rules_crm *rc,
                              const char *name, json_t *v, const char *ptr)
{
    static const char *const keys[] = {"read", "write", "actions", NULL};
    struct rules_object *o;
    json_t *f;
    int update_given = 0;

    if (!json_is_object(v))
        return rules_fail(cx, ptr, "must be an object with read, write and actions");
    if (rules_check_keys(cx, v, ptr, keys) < 0)
        return -1;
    if (!rules_field_name_ok(name))
        return rules_fail(cx, ptr, "not a valid object name");
    if (strcmp(name, "*") == 0 ? rc->any != NULL : rules_object_lookup(rc, name) != NULL)
        return rules_fail(cx, ptr, "object \"%s\" is listed twice (names are case-insensitive)",
                          name);
    o = calloc(1, sizeof(*o));
    if (o == NULL || (o->name = strdup(name)) == NULL ||
        (o->ptr = malloc(strlen(cx->id) + strlen(ptr) + 2)) == NULL) {
        if (o != NULL)
            rules_object_clear(o);
        return rules_fail(cx, ptr, "out of memory");
    }
    snprintf(o->ptr, strlen(cx->id) + strlen(ptr) + 2, "%s#%s", cx->id, ptr);
    if ((f = json_object_get(v, "read")) != NULL) {
        char p[512];
        rules_ptr(p, sizeof(p), ptr, "read");
        if (rules_parse_read(cx, o, f, p) < 0)
            goto fail;
    }
    if ((f = json_object_get(v, "write")) != NULL) {
        char p[512];
        rules_ptr(p, sizeof(p), ptr, "write");
        if (rules_parse_write(cx, crm, o, f, p) < 0)
            goto fail;
    }
    if ((f = json_object_get(v, "actions")) != NULL) {
        char p[512];
        rules_ptr(p, sizeof(p), ptr, "actions");
        if (rules_parse_actions(cx, crm, o, f, p, &update_given) < 0)
            goto fail;
    }
    /* Listing writable fields means updates of them are allowed, unless said otherwise. */
    if (!update_given && (o->write_all || o->write.n > 0))
        o->actions |= 1u << CRM_VERB_UPDATE;
    if (strcmp(name, "*") == 0) {
        rc->any = o;
        return 0;
    }
    if (rules_crm_insert(rc, o) < 0) {
        rules_fail(cx, ptr, "out of memory");
        goto fail;
    }
    return 0;
fail:
    rules_object_clear(o);
    return -1;
}

static int rules_parse_crm(struct rules_ctx *cx, enum crm crm, struct rules_crm *rc, json_t *v,
                           const char *ptr)
{
    static const char *const keys[] = {"objects", "schema_read", "auth", NULL};
    json_t *objs, *f;
    const char *name;

    if (!json_is_object(v))
        return rules_fail(cx, ptr, "must be an object");
    if (rules_check_keys(cx, v, ptr, keys) < 0)
        return -1;
    rc->listed = 1;
    if ((f = json_object_get(v, "schema_read")) != NULL) {
        if (!json_is_boolean(f))
            return rules_fail(cx, ptr, "schema_read must be true or false");
        rc->schema_read = json_is_true(f);
    }
    if ((f = json_object_get(v, "auth")) != NULL) {
        if (!json_is_boolean(f))
            return rules_fail(cx, ptr, "auth must be true or false");
        rc->auth = json_is_true(f);
    }
    objs = json_object_get(v, "objects");
    if (objs == NULL)
        return 0;
    {
        char p[512];
        rules_ptr(p, sizeof(p), ptr, "objects");
        if (!json_is_object(objs))
            return rules_fail(cx, p, "must be an object of object name: rules");
        json_object_foreach(objs, name, f)
        {
            char q[512];
            rules_ptr(q, sizeof(q), p, name);
            if (rules_parse_object(cx, crm, rc, name, f, q) < 0)
                return -1;
        }
    }
    return 0;
}

static void rules_crm_clear(struct rules_crm *rc)
{
    for (size_t i = 0; i < rc->cap; i++) {
        if (rc->slot[i] != NULL)
            rules_object_clear(rc->slot[i]);
    }
    free(rc->slot);
    rc->slot = NULL;
    if (rc->any != NULL)
        rules_object_clear(rc->any);
    rc->any = NULL;
}

void rules_ws_free(struct rules_ws *ws)
{
    if (ws == NULL)
        return;
    rules_crm_clear(&ws->hubspot);
    rules_crm_clear(&ws->salesforce);
    free(ws->name);
    free(ws->file);
    free(ws);
}

static int rules_ws_name_ok(const char *s)
{
    if (*s == '\0' || strlen(s) > 64)
        return 0;
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_' || ch == '.'))
            return 0;
    }
    return 1;
}

struct rules_ws *rules_ws_parse(const char *file, const char *text, size_t len, char *err,
                                size_t errlen)
{
    static const char *const keys[] = {"workspace",         "mode",        "hubspot",
                                       "salesforce",        "description", "chat_integration",
                                       "allow_passthrough", NULL};
    /* Rule ids reach agents in denials: they name the file, never the server's path to it. */
    const char *base = strrchr(file, '/') != NULL ? strrchr(file, '/') + 1 : file;
    struct rules_ctx cx = {.file = file, .id = base, .err = err, .errlen = errlen};
    struct rules_ws *ws = NULL;
    json_error_t jerr;
    json_t *root, *v;
    const char *mode;

    if (len > RULES_MAX_BYTES) {
        rules_fail(&cx, "", "larger than %d bytes", RULES_MAX_BYTES);
        return NULL;
    }
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        char ptr[512];
        if (json_error_code(&jerr) == json_error_duplicate_key &&
            rules_pointer_at(text, len, (size_t)jerr.position, ptr, sizeof(ptr)) == 0)
            rules_fail(&cx, ptr, "duplicate key");
        else
            snprintf(err, errlen, "%s:%d:%d: invalid JSON: %s", file, jerr.line, jerr.column,
                     jerr.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        rules_fail(&cx, "", "the top level must be an object");
        goto fail;
    }
    if (rules_check_keys(&cx, root, "", keys) < 0)
        goto fail;
    ws = calloc(1, sizeof(*ws));
    if (ws == NULL || (ws->file = strdup(base)) == NULL) {
        rules_fail(&cx, "", "out of memory");
        goto fail;
    }
    v = json_object_get(root, "workspace");
    if (!json_is_string(v) || !rules_ws_name_ok(json_string_value(v))) {
        rules_fail(&cx, "/workspace", "required: a name of letters, digits, '-', '_' or '.'");
        goto fail;
    }
    if ((ws->name = strdup(json_string_value(v))) == NULL) {
        rules_fail(&cx, "", "out of memory");
        goto fail;
    }
    v = json_object_get(root, "description");
    if (v != NULL && !json_is_string(v)) {
        rules_fail(&cx, "/description", "must be a string");
        goto fail;
    }
    v = json_object_get(root, "mode");
    mode = json_is_string(v) ? json_string_value(v) : NULL;
    if (v != NULL && mode == NULL) {
        rules_fail(&cx, "/mode", "must be a string");
        goto fail;
    }
    ws->mode = RULES_MODE_ENFORCE;
    if (mode != NULL && strcmp(mode, "dry_run") == 0) {
        ws->mode = RULES_MODE_DRY_RUN;
    } else if (mode != NULL && strcmp(mode, "review") == 0) {
        rules_fail(&cx, "/mode",
                   "mode \"review\" is not supported yet: \"enforce\" or \"dry_run\"");
        goto fail;
    } else if (mode != NULL && strcmp(mode, "enforce") != 0) {
        rules_fail(&cx, "/mode", "must be \"enforce\" or \"dry_run\"");
        goto fail;
    }
    v = json_object_get(root, "chat_integration");
    if (v != NULL) {
        const char *ci = json_string_value(v);
        if (ci == NULL || (strcmp(ci, "user") != 0 && strcmp(ci, "workspace") != 0)) {
            rules_fail(&cx, "/chat_integration",
                       "must be \"user\" (chat acts with the calling user's integration) or "
                       "\"workspace\"");
            goto fail;
        }
        ws->chat_workspace = strcmp(ci, "workspace") == 0;
    }
    v = json_object_get(root, "allow_passthrough");
    if (v != NULL && !json_is_boolean(v)) {
        rules_fail(&cx, "/allow_passthrough", "must be true or false");
        goto fail;
    }
    ws->allow_passthrough = json_is_true(v);
    if ((v = json_object_get(root, "hubspot")) != NULL &&
        rules_parse_crm(&cx, CRM_HUBSPOT, &ws->hubspot, v, "/hubspot") < 0)
        goto fail;
    if ((v = json_object_get(root, "salesforce")) != NULL &&
        rules_parse_crm(&cx, CRM_SALESFORCE, &ws->salesforce, v, "/salesforce") < 0)
        goto fail;
    json_decref(root);
    return ws;
fail:
    rules_ws_free(ws);
    json_decref(root);
    return NULL;
}

struct rules *rules_new(struct rules_ws **ws, size_t n, char *err, size_t errlen)
{
    struct rules *r = calloc(1, sizeof(*r));

    if (r == NULL || (n > 0 && (r->ws = calloc(n, sizeof(*r->ws))) == NULL)) {
        free(r);
        snprintf(err, errlen, "out of memory");
        goto fail_inputs;
    }
    r->refs = 1;
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < r->n; k++) {
            if (strcmp(r->ws[k]->name, ws[i]->name) == 0) {
                snprintf(err, errlen, "%s: workspace \"%s\" is also defined in %s", ws[i]->file,
                         ws[i]->name, r->ws[k]->file);
                for (size_t j = i; j < n; j++)
                    rules_ws_free(ws[j]);
                rules_unref(r);
                return NULL;
            }
        }
        r->ws[r->n++] = ws[i];
        if (strcmp(ws[i]->name, "default") == 0)
            r->fallback = ws[i];
    }
    return r;
fail_inputs:
    for (size_t j = 0; j < n; j++)
        rules_ws_free(ws[j]);
    return NULL;
}

struct rules *rules_ref(struct rules *r)
{
    __atomic_add_fetch(&r->refs, 1, __ATOMIC_RELAXED);
    return r;
}

void rules_unref(struct rules *r)
{
    if (r == NULL || __atomic_sub_fetch(&r->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    for (size_t i = 0; i < r->n; i++)
        rules_ws_free(r->ws[i]);
    free(r->ws);
    free(r);
}

const struct rules_ws *rules_workspace(const struct rules *r, const char *name)
{
    for (size_t i = 0; name != NULL && i < r->n; i++) {
        if (strcmp(r->ws[i]->name, name) == 0)
            return r->ws[i];
    }
    return r->fallback;
}

const struct rules_crm *rules_crm_of(const struct rules_ws *ws, enum crm crm)
{
    return crm == CRM_SALESFORCE ? &ws->salesforce : &ws->hubspot;
}
