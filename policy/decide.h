/*
 * decide.h - allow or deny each CRM operation under a workspace's rules,
 * with the rule that decided and a reason an agent can act on.
 *
 * A request is allowed only if every one of its operations is. Pure.
 */
#ifndef CRMGATE_DECIDE_H
#define CRMGATE_DECIDE_H

#include <stddef.h>

#include "crm.h"
#include "rules.h"

struct policy_verdict {
    int allow;
    char rule[256];   /* "acme.json#/hubspot/objects/deals/write", "builtin:unknown-call", ... */
    char reason[768]; /* names the object and fields; for the agent and the log */
    char fields[512]; /* the denied fields, comma-separated (Salesforce's "fields") */
};

/* Decide one operation. ws may be NULL (no workspace: everything is denied). */
void policy_decide_op(const struct rules_ws *ws, const struct crm_op *op, struct policy_verdict *v);

/*
 * Decide a request: the first denied operation decides (its index in
 * *denied_op), else allow with the rule of the first operation.
 * Returns 1 when allowed, 0 when denied.
 */
int policy_decide(const struct rules_ws *ws, const struct crm_ops *ops, struct policy_verdict *v,
                  size_t *denied_op);

#endif
