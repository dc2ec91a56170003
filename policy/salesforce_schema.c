/*
 * salesforce_schema.c - the relationship and key-prefix schema the
 * Salesforce classifier follows: the built-in tables of standard objects'
 * relationships and id key prefixes, the caller's additions (typically
 * from describe, for custom objects) that override them, and Salesforce id
 * validation (length, characters, 18-char checksum).
 *
 * Pure: libc only, no I/O.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "salesforce.h"
#include "salesforce_internal.h"

struct sf_rel {
    char *object, *relname, *target; /* target NULL: polymorphic */
    int is_child;
};

struct sf_prefix {
    char *object;
    char prefix[4];
};

struct sf_schema {
    struct sf_rel *rels;
    size_t nrels;
    struct sf_prefix *prefixes;
    size_t nprefixes;
};

struct sf_builtin_rel {
    const char *object, *relname, *target; /* target NULL: polymorphic */
    int is_child;
};

/*
 * Standard relationships. Lookups follow the *Id fields of the sample
 * OpenAPI schemas (specs/salesforce/openapi-beta-v59); targets are the
 * documented referenceTo. Owner on Lead/Case/Task/Event can be a User or a
 * queue (Group), Who and What span several objects: polymorphic, never
 * resolved. CreatedBy and LastModifiedBy are User on every object and are
 * handled in code.
 */
static const struct sf_builtin_rel sf_builtin_rels[] = {
    {"Account", "Parent", "Account", 0},
    {"Account", "Owner", "User", 0},
    {"Account", "MasterRecord", "Account", 0},
    {"Contact", "Account", "Account", 0},
    {"Contact", "ReportsTo", "Contact", 0},
    {"Contact", "Owner", "User", 0},
    {"Contact", "MasterRecord", "Contact", 0},
    {"Contact", "Individual", "Individual", 0},
    {"Lead", "Owner", NULL, 0},
    {"Lead", "ConvertedAccount", "Account", 0},
    {"Lead", "ConvertedContact", "Contact", 0},
    {"Lead", "ConvertedOpportunity", "Opportunity", 0},
    {"Lead", "MasterRecord", "Lead", 0},
    {"Lead", "Individual", "Individual", 0},
    {"Opportunity", "Account", "Account", 0},
    {"Opportunity", "Owner", "User", 0},
    {"Opportunity", "Campaign", "Campaign", 0},
    {"Opportunity", "Pricebook2", "Pricebook2", 0},
    {"Opportunity", "Contact", "Contact", 0},
    {"OpportunityLineItem", "Opportunity", "Opportunity", 0},
    {"OpportunityLineItem", "PricebookEntry", "PricebookEntry", 0},
    {"OpportunityLineItem", "Product2", "Product2", 0},
    {"OpportunityContactRole", "Opportunity", "Opportunity", 0},
    {"OpportunityContactRole", "Contact", "Contact", 0},
    {"Case", "Account", "Account", 0},
    {"Case", "Contact", "Contact", 0},
    {"Case", "Asset", "Asset", 0},
    {"Case", "Parent", "Case", 0},
    {"Case", "MasterRecord", "Case", 0},
    {"Case", "Owner", NULL, 0},
    {"Case", "Source", NULL, 0},
    {"Task", "Who", NULL, 0},
    {"Task", "What", NULL, 0},
    {"Task", "Owner", NULL, 0},
    {"Task", "Account", "Account", 0},
    {"Event", "Who", NULL, 0},
    {"Event", "What", NULL, 0},
    {"Event", "Owner", NULL, 0},
    {"Event", "Account", "Account", 0},
    {"User", "UserRole", "UserRole", 0},
    {"User", "Profile", "Profile", 0},
    {"User", "Manager", "User", 0},
    {"User", "DelegatedApprover", NULL, 0},
    {"User", "Contact", "Contact", 0},
    {"User", "Account", "Account", 0},
    {"Campaign", "Parent", "Campaign", 0},
    {"Campaign", "Owner", "User", 0},
    {"CampaignMember", "Campaign", "Campaign", 0},
    {"CampaignMember", "Lead", "Lead", 0},
    {"CampaignMember", "Contact", "Contact", 0},
    {"Contract", "Account", "Account", 0},
    {"Contract", "Owner", "User", 0},
    {"Order", "Account", "Account", 0},
    {"Order", "Contract", "Contract", 0},
    {"PricebookEntry", "Pricebook2", "Pricebook2", 0},
    {"PricebookEntry", "Product2", "Product2", 0},
    {"CaseComment", "Parent", "Case", 0},
    {"Account", "Contacts", "Contact", 1},
    {"Account", "Opportunities", "Opportunity", 1},
    {"Account", "Cases", "Case", 1},
    {"Account", "Tasks", "Task", 1},
    {"Account", "Events", "Event", 1},
    {"Account", "ChildAccounts", "Account", 1},
    {"Account", "Contracts", "Contract", 1},
    {"Account", "Orders", "Order", 1},
    {"Account", "Notes", "Note", 1},
    {"Account", "Attachments", "Attachment", 1},
    {"Contact", "Cases", "Case", 1},
    {"Contact", "Tasks", "Task", 1},
    {"Contact", "Events", "Event", 1},
    {"Contact", "OpportunityContactRoles", "OpportunityContactRole", 1},
    {"Contact", "CampaignMembers", "CampaignMember", 1},
    {"Contact", "Notes", "Note", 1},
    {"Contact", "Attachments", "Attachment", 1},
    {"Lead", "Tasks", "Task", 1},
    {"Lead", "Events", "Event", 1},
    {"Lead", "CampaignMembers", "CampaignMember", 1},
    {"Opportunity", "OpportunityLineItems", "OpportunityLineItem", 1},
    {"Opportunity", "OpportunityContactRoles", "OpportunityContactRole", 1},
    {"Opportunity", "Tasks", "Task", 1},
    {"Opportunity", "Events", "Event", 1},
    {"Opportunity", "Notes", "Note", 1},
    {"Opportunity", "Attachments", "Attachment", 1},
    {"Case", "Tasks", "Task", 1},
    {"Case", "Events", "Event", 1},
    {"Case", "Cases", "Case", 1},
    {"Case", "CaseComments", "CaseComment", 1},
    {"Campaign", "CampaignMembers", "CampaignMember", 1},
    {"Campaign", "Opportunities", "Opportunity", 1},
    {"Campaign", "ChildCampaigns", "Campaign", 1},
    {"Pricebook2", "PricebookEntries", "PricebookEntry", 1},
    {"Product2", "PricebookEntries", "PricebookEntry", 1},
};

/* Key prefixes of reference §9; custom objects come from the schema. */
static const struct {
    const char *prefix, *object;
} sf_builtin_prefixes[] = {
    {"001", "Account"},
    {"002", "Note"},
    {"003", "Contact"},
    {"005", "User"},
    {"006", "Opportunity"},
    {"00Q", "Lead"},
    {"500", "Case"},
    {"00T", "Task"},
    {"00U", "Event"},
    {"701", "Campaign"},
    {"00v", "CampaignMember"},
    {"00k", "OpportunityLineItem"},
    {"00K", "OpportunityContactRole"},
    {"800", "Contract"},
    {"801", "Order"},
    {"01t", "Product2"},
    {"01s", "Pricebook2"},
    {"01u", "PricebookEntry"},
    {"00D", "Organization"},
    {"00G", "Group"},
    {"00e", "Profile"},
    {"012", "RecordType"},
    {"00P", "Attachment"},
    {"069", "ContentDocument"},
    {"068", "ContentVersion"},
};

int sf_ident(const char *s, size_t len)
{
    if (len == 0 || len > SF_MAX_NAME)
        return 0;
    if (!((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z')))
        return 0;
    for (size_t i = 1; i < len; i++) {
        char ch = s[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '_'))
            return 0;
    }
    return 1;
}

int sf_eq(const char *name, const char *s, size_t len)
{
    return strlen(name) == len && strncasecmp(name, s, len) == 0;
}

struct sf_schema *sf_schema_new(void)
{
    return calloc(1, sizeof(struct sf_schema));
}

int sf_schema_add(struct sf_schema *schema, const char *object, const char *relname,
                  const char *target, int is_child)
{
    struct sf_rel *nr, *r;

    if (schema == NULL || object == NULL || relname == NULL || !sf_ident(object, strlen(object)) ||
        !sf_ident(relname, strlen(relname)) ||
        (target != NULL && !sf_ident(target, strlen(target))))
        return -1;
    for (size_t i = 0; i < schema->nrels; i++) {
        r = &schema->rels[i];
        if (r->is_child == (is_child != 0) && strcasecmp(r->object, object) == 0 &&
            strcasecmp(r->relname, relname) == 0) {
            /* A second target makes the relationship polymorphic. */
            if (r->target != NULL && (target == NULL || strcasecmp(r->target, target) != 0)) {
                free(r->target);
                r->target = NULL;
            }
            return 0;
        }
    }
    nr = realloc(schema->rels, (schema->nrels + 1) * sizeof(*nr));
    if (nr == NULL)
        return -1;
    schema->rels = nr;
    r = &nr[schema->nrels];
    r->object = strdup(object);
    r->relname = strdup(relname);
    r->target = target ? strdup(target) : NULL;
    r->is_child = is_child != 0;
    if (r->object == NULL || r->relname == NULL || (target != NULL && r->target == NULL))
        goto fail;
    schema->nrels++;
    return 0;
fail:
    free(r->object);
    free(r->relname);
    free(r->target);
    return -1;
}

int sf_schema_add_prefix(struct sf_schema *schema, const char *object, const char *prefix)
{
    struct sf_prefix *np;

    if (schema == NULL || object == NULL || prefix == NULL || !sf_ident(object, strlen(object)) ||
        strlen(prefix) != 3)
        return -1;
    for (size_t i = 0; i < 3; i++) {
        char ch = prefix[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')))
            return -1;
    }
    np = realloc(schema->prefixes, (schema->nprefixes + 1) * sizeof(*np));
    if (np == NULL)
        return -1;
    schema->prefixes = np;
    np[schema->nprefixes].object = strdup(object);
    if (np[schema->nprefixes].object == NULL)
        return -1;
    memcpy(np[schema->nprefixes].prefix, prefix, 4);
    schema->nprefixes++;
    return 0;
}

void sf_schema_free(struct sf_schema *schema)
{
    if (schema == NULL)
        return;
    for (size_t i = 0; i < schema->nrels; i++) {
        free(schema->rels[i].object);
        free(schema->rels[i].relname);
        free(schema->rels[i].target);
    }
    free(schema->rels);
    for (size_t i = 0; i < schema->nprefixes; i++)
        free(schema->prefixes[i].object);
    free(schema->prefixes);
    free(schema);
}

int sf_schema_resolve(const struct sf_schema *schema, const char *object, const char *relname,
                      size_t len, int is_child, const char **target)
{
    is_child = is_child != 0;
    if (schema != NULL) {
        for (size_t i = 0; i < schema->nrels; i++) {
            const struct sf_rel *r = &schema->rels[i];
            if (r->is_child == is_child && strcasecmp(r->object, object) == 0 &&
                sf_eq(r->relname, relname, len)) {
                *target = r->target;
                return r->target ? 1 : -1;
            }
        }
    }
    for (size_t i = 0; i < sizeof(sf_builtin_rels) / sizeof(sf_builtin_rels[0]); i++) {
        const struct sf_builtin_rel *r = &sf_builtin_rels[i];
        if (r->is_child == is_child && strcasecmp(r->object, object) == 0 &&
            sf_eq(r->relname, relname, len)) {
            *target = r->target;
            return r->target ? 1 : -1;
        }
    }
    if (!is_child && (sf_eq("CreatedBy", relname, len) || sf_eq("LastModifiedBy", relname, len))) {
        *target = "User";
        return 1;
    }
    return 0;
}

const char *sf_object_for_id(const struct sf_schema *schema, const char *id)
{
    if (schema != NULL) {
        for (size_t i = 0; i < schema->nprefixes; i++) {
            if (memcmp(schema->prefixes[i].prefix, id, 3) == 0)
                return schema->prefixes[i].object;
        }
    }
    for (size_t i = 0; i < sizeof(sf_builtin_prefixes) / sizeof(sf_builtin_prefixes[0]); i++) {
        if (memcmp(sf_builtin_prefixes[i].prefix, id, 3) == 0)
            return sf_builtin_prefixes[i].object;
    }
    return NULL;
}

int sf_object_has_prefix(const struct sf_schema *schema, const char *object, size_t len)
{
    if (schema != NULL) {
        for (size_t i = 0; i < schema->nprefixes; i++) {
            if (sf_eq(schema->prefixes[i].object, object, len))
                return 1;
        }
    }
    for (size_t i = 0; i < sizeof(sf_builtin_prefixes) / sizeof(sf_builtin_prefixes[0]); i++) {
        if (sf_eq(sf_builtin_prefixes[i].object, object, len))
            return 1;
    }
    return 0;
}

const char *sf_prefix_for_object(const struct sf_schema *schema, const char *object)
{
    size_t len = strlen(object);

    if (schema != NULL) {
        for (size_t i = 0; i < schema->nprefixes; i++) {
            if (sf_eq(schema->prefixes[i].object, object, len))
                return schema->prefixes[i].prefix;
        }
    }
    for (size_t i = 0; i < sizeof(sf_builtin_prefixes) / sizeof(sf_builtin_prefixes[0]); i++) {
        if (sf_eq(sf_builtin_prefixes[i].object, object, len))
            return sf_builtin_prefixes[i].prefix;
    }
    return NULL;
}

int sf_id_valid(const char *s, size_t len)
{
    static const char T[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

    if (len != 15 && len != 18)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')))
            return 0;
    }
    if (len == 18) {
        for (int c = 0; c < 3; c++) {
            int v = 0;
            for (int i = 0; i < 5; i++) {
                char ch = s[c * 5 + i];
                if (ch >= 'A' && ch <= 'Z')
                    v |= 1 << i;
            }
            if (s[15 + c] != T[v])
                return 0;
        }
    }
    return 1;
}
