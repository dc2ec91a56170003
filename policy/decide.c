/*
 * decide.c - the policy decision for each operation.
 *
 * Order of checks, each a denial on failure: the call must be understood;
 * the workspace must list the CRM; auth and schema calls need their switch;
 * the object must be listed (or "*"); the verb must be allowed for it;
 * every field read must be readable; every field written must be writable
 * and never a read-only system field. Nothing is dropped silently: one bad
 * field denies the whole request, and the reason lists every bad field.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "decide.h"

static void verdict_set(struct policy_verdict *v, int allow, const char *rule, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void verdict_set(struct policy_verdict *v, int allow, const char *rule, const char *fmt, ...)
{
    va_list ap;

    v->allow = allow;
    snprintf(v->rule, sizeof(v->rule), "%s", rule);
    va_start(ap, fmt);
    vsnprintf(v->reason, sizeof(v->reason), fmt, ap);
    va_end(ap);
}

static const char *crm_title(enum crm crm)
{
    return crm == CRM_SALESFORCE ? "Salesforce" : "HubSpot";
}

/* Append name to a comma-separated list, truncating politely. */
static void list_append(char *buf, size_t len, const char *name)
{
    size_t used = strlen(buf);

    if (used + strlen(name) + 3 >= len) {
        if (used + 4 < len && strcmp(buf + (used >= 3 ? used - 3 : 0), "...") != 0)
            snprintf(buf + used, len - used, "...");
        return;
    }
    snprintf(buf + used, len - used, "%s%s", used ? ", " : "", name);
}

/* Whether any field of o may be read (its reads, lists and searches are allowed). */
static int readable(const struct rules_object *o)
{
    return o->read_all || o->read.n > 0;
}

/* Where the rule for verb lives: updates follow "write" unless switched off in "actions". */
static void verb_rule(char *out, size_t len, const struct rules_object *o, enum crm_verb verb)
{
    if (verb == CRM_VERB_UPDATE && (o->actions & (1u << CRM_VERB_UPDATE)))
        snprintf(out, len, "%s/write", o->ptr);
    else if (verb == CRM_VERB_UPDATE && !o->write_all && o->write.n == 0)
        snprintf(out, len, "%s/write", o->ptr);
    else
        snprintf(out, len, "%s/actions/%s", o->ptr, crm_verb_name(verb));
}

/*
 * The read-only system field write w sets, or NULL: its own name, or, for a
 * Salesforce parent set by a lookup ("CreatedBy": {"Id": ...}), the
 * relationship's id field (CreatedById), written into idf.
 */
static const char *read_only_written(const struct crm_op *op, const struct crm_write *w, char *idf,
                                     size_t idflen)
{
    int n;

    if (rules_field_read_only(op->crm, w->name))
        return w->name;
    if (op->crm != CRM_SALESFORCE || !json_is_object(w->value))
        return NULL;
    n = snprintf(idf, idflen, "%sId", w->name);
    return n > 0 && (size_t)n < idflen && rules_field_read_only(op->crm, idf) ? idf : NULL;
}

void policy_decide_op(const struct rules_ws *ws, const struct crm_op *op, struct policy_verdict *v)
{
    const struct rules_crm *rc;
    const struct rules_object *o;
    char rule[256], bad[512] = "";
    int is_read;

    v->fields[0] = '\0';
    if (op->verb == CRM_VERB_UNKNOWN) {
        verdict_set(v, 0, "builtin:unknown-call",
                    "crmgate does not recognise this %s call, so it is denied: %s",
                    crm_title(op->crm), op->detail ? op->detail : "unsupported endpoint");
        return;
    }
    if (ws == NULL) {
        verdict_set(v, 0, "builtin:no-workspace",
                    "no rules are loaded for this caller's workspace");
        return;
    }
    rc = rules_crm_of(ws, op->crm);
    if (!rc->listed) {
        verdict_set(v, 0, "builtin:crm-not-listed", "workspace %s has no %s rules (%s)", ws->name,
                    crm_title(op->crm), ws->file);
        return;
    }
    if (op->verb == CRM_VERB_AUTH || op->verb == CRM_VERB_REVOKE ||
        op->verb == CRM_VERB_SCHEMA_READ) {
        /* a token revocation is an auth call: the same switch allows it (and it is audited) */
        int auth = op->verb != CRM_VERB_SCHEMA_READ;
        const char *sw = auth ? "auth" : "schema_read";
        int on = auth ? rc->auth : rc->schema_read;
        snprintf(rule, sizeof(rule), "%s#/%s/%s", ws->file, crm_name(op->crm), sw);
        if (on)
            verdict_set(v, 1, rule, "%s calls are allowed", sw);
        else
            verdict_set(v, 0, rule, "workspace %s does not allow %s %s calls%s (set %s: true)",
                        ws->name, crm_title(op->crm), sw,
                        op->verb == CRM_VERB_REVOKE ? " such as this token revocation" : "", sw);
        return;
    }
    if (op->object == NULL) {
        verdict_set(v, 0, "builtin:unknown-call",
                    "crmgate could not tell which %s object this "
                    "call touches, so it is denied",
                    crm_title(op->crm));
        return;
    }
    o = rules_object_find(rc, op->object);
    if (o == NULL) {
        snprintf(rule, sizeof(rule), "%s#/%s/objects", ws->file, crm_name(op->crm));
        verdict_set(v, 0, rule, "workspace %s does not allow any access to %s object %s", ws->name,
                    crm_title(op->crm), op->object ? op->object : "(none)");
        return;
    }
    is_read = op->verb == CRM_VERB_READ || op->verb == CRM_VERB_LIST || op->verb == CRM_VERB_SEARCH;
    if (is_read) {
        snprintf(rule, sizeof(rule), "%s/read", o->ptr);
        if (!readable(o)) {
            verdict_set(v, 0, rule, "workspace %s does not allow reading %s", ws->name, op->object);
            return;
        }
    } else {
        verb_rule(rule, sizeof(rule), o, op->verb);
        if (!(o->actions & (1u << op->verb))) {
            verdict_set(v, 0, rule, "workspace %s does not allow %s on %s", ws->name,
                        crm_verb_name(op->verb), op->object);
            return;
        }
        if (op->save_duplicates && !(o->actions & RULES_SAVE_DUPLICATES)) {
            snprintf(rule, sizeof(rule), "%s/actions/save_duplicates", o->ptr);
            verdict_set(v, 0, rule,
                        "workspace %s does not allow saving %s records past Salesforce's "
                        "duplicate rules (Sforce-Duplicate-Rule-Header allowSave=true): send "
                        "the write without it, or set actions.save_duplicates",
                        ws->name, op->object);
            return;
        }
    }
    /* Fields read, by any verb: a filter or sort on a field reveals it. */
    for (size_t i = 0; i < op->nreads; i++) {
        const char *f = op->reads[i];
        if (strncmp(f, "associations.", 13) == 0) {
            /* Ids and labels of linked records: allowed when that type may be read. */
            const struct rules_object *to = rules_object_find(rc, f + 13);
            if (to != NULL && readable(to))
                continue;
        } else if (rules_can_read(o, f) ||
                   (op->crm == CRM_SALESFORCE && strcasecmp(f, "Id") == 0)) {
            continue; /* a Salesforce record's Id is always readable */
        }
        list_append(bad, sizeof(bad), f);
    }
    /* Looking a record up by a field (idProperty, external id) is an equality filter on it. */
    if (op->id_property != NULL && !rules_can_read(o, op->id_property) &&
        !(op->crm == CRM_SALESFORCE && strcasecmp(op->id_property, "Id") == 0))
        list_append(bad, sizeof(bad), op->id_property);
    if (bad[0] != '\0') {
        snprintf(rule, sizeof(rule), "%s/read", o->ptr);
        snprintf(v->fields, sizeof(v->fields), "%s", bad);
        verdict_set(v, 0, rule, "workspace %s does not allow reading these %s fields: %s", ws->name,
                    op->object, bad);
        return;
    }
    for (size_t i = 0; i < op->nwrites; i++) {
        char idf[128];
        const char *ro = read_only_written(op, &op->writes[i], idf, sizeof(idf));
        if (ro != NULL) {
            snprintf(rule, sizeof(rule), "builtin:read-only-field");
            snprintf(v->fields, sizeof(v->fields), "%s", op->writes[i].name);
            verdict_set(v, 0, rule,
                        "%s.%s is a read-only system field and can never be written%s%s",
                        op->object, ro, ro != op->writes[i].name ? ": a lookup through " : "",
                        ro != op->writes[i].name ? op->writes[i].name : "");
            return;
        }
        if (!rules_can_write(o, op->writes[i].name))
            list_append(bad, sizeof(bad), op->writes[i].name);
    }
    if (bad[0] != '\0') {
        snprintf(rule, sizeof(rule), "%s/write", o->ptr);
        snprintf(v->fields, sizeof(v->fields), "%s", bad);
        verdict_set(v, 0, rule, "workspace %s does not allow writing these %s fields: %s", ws->name,
                    op->object, bad);
        return;
    }
    /* A parent found by its external id is an equality filter on that field. */
    for (size_t i = 0; i < op->nlookups; i++) {
        const struct crm_lookup *lk = &op->lookups[i];
        const struct rules_object *po = rules_object_find(rc, lk->object);
        if (po != NULL &&
            (strcasecmp(lk->field, "Id") == 0 ? readable(po) : rules_can_read(po, lk->field)))
            continue;
        if (po == NULL)
            snprintf(rule, sizeof(rule), "%s#/%s/objects", ws->file, crm_name(op->crm));
        else
            snprintf(rule, sizeof(rule), "%s/read", po->ptr);
        snprintf(v->fields, sizeof(v->fields), "%s", lk->field);
        verdict_set(v, 0, rule,
                    "workspace %s does not allow reading %s.%s, which this write finds its "
                    "%s parent by (a lookup by external id tells whether such a record exists)",
                    ws->name, lk->object, lk->field, lk->object);
        return;
    }
    if (op->to_object != NULL && rules_object_find(rc, op->to_object) == NULL) {
        snprintf(rule, sizeof(rule), "%s#/%s/objects", ws->file, crm_name(op->crm));
        verdict_set(v, 0, rule, "workspace %s does not allow any access to %s object %s", ws->name,
                    crm_title(op->crm), op->to_object);
        return;
    }
    verdict_set(v, 1, rule, "%s on %s is allowed", crm_verb_name(op->verb), op->object);
}

int policy_decide(const struct rules_ws *ws, const struct crm_ops *ops, struct policy_verdict *v,
                  size_t *denied_op)
{
    struct policy_verdict first;

    if (ops->n == 0) {
        verdict_set(v, 0, "builtin:unknown-call", "crmgate found no CRM operation in this call");
        v->fields[0] = '\0';
        *denied_op = 0;
        return 0;
    }
    for (size_t i = 0; i < ops->n; i++) {
        policy_decide_op(ws, &ops->v[i], v);
        if (!v->allow) {
            *denied_op = i;
            return 0;
        }
        if (i == 0)
            first = *v;
    }
    *v = first;
    return 1;
}
