/*
 * cli_policy.c - policy tools on the command line.
 *
 *   crmgate policy check [-c CONFIG | --rules-dir DIR] [FILES...]
 *   crmgate policy explain [-c CONFIG | --rules-dir DIR] --workspace W --crm hubspot|salesforce
 *                          [--body FILE] [--header 'Name: value']... METHOD PATH
 *   crmgate policy prompt [-c CONFIG | --rules-dir DIR] --workspace W
 *   crmgate token fingerprint   (reads the token on stdin)
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "../policy/decide.h"
#include "../policy/hubspot.h"
#include "../policy/salesforce.h"
#include "cli_policy.h"
#include "config.h"
#include "enforce.h"
#include "identify.h"
#include "route.h"
#include "rulesdir.h"

#define CLI_MAX_BODY (16 * 1024 * 1024)

enum { OPT_RULES_DIR = 300, OPT_WORKSPACE, OPT_CRM, OPT_BODY, OPT_HEADER };

static const struct option cli_opts[] = {
    {"config", required_argument, NULL, 'c'},
    {"rules-dir", required_argument, NULL, OPT_RULES_DIR},
    {"workspace", required_argument, NULL, OPT_WORKSPACE},
    {"crm", required_argument, NULL, OPT_CRM},
    {"body", required_argument, NULL, OPT_BODY},
    {"header", required_argument, NULL, OPT_HEADER},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

struct cli_args {
    const char *config, *rules_dir, *workspace, *crm, *body;
    const char *headers[16];
    size_t nheaders;
};

static void cli_policy_usage(FILE *out)
{
    fprintf(out,
            "Usage:\n"
            "  crmgate policy check [-c CONFIG | --rules-dir DIR] [FILES...]\n"
            "      validate rule files (default: the rules_dir of the config)\n"
            "  crmgate policy explain [-c CONFIG | --rules-dir DIR] --workspace W\n"
            "      --crm hubspot|salesforce [--body FILE] [--header 'Name: value'] METHOD PATH\n"
            "      print, as JSON, the operations of a call and each one's decision and rule\n"
            "  crmgate policy prompt [-c CONFIG | --rules-dir DIR] --workspace W\n"
            "      print a plain-language summary of what the agent may do\n"
            "\n"
            "Exit status: 0 valid (explain: the call would be allowed), 1 invalid rules or an\n"
            "unreadable file, 2 bad usage, 3 (explain) the call would be denied.\n");
}

static int cli_parse(int argc, char **argv, struct cli_args *a)
{
    int ch;

    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:h", cli_opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            a->config = optarg;
            break;
        case OPT_RULES_DIR:
            a->rules_dir = optarg;
            break;
        case OPT_WORKSPACE:
            a->workspace = optarg;
            break;
        case OPT_CRM:
            a->crm = optarg;
            break;
        case OPT_BODY:
            a->body = optarg;
            break;
        case OPT_HEADER:
            if (a->nheaders == sizeof(a->headers) / sizeof(a->headers[0])) {
                fprintf(stderr, "crmgate policy: too many --header options\n");
                return -1;
            }
            a->headers[a->nheaders++] = optarg;
            break;
        case 'h':
            cli_policy_usage(stdout);
            exit(0);
        default:
            cli_policy_usage(stderr);
            return -1;
        }
    }
    return 0;
}

/* The rules the daemon would use: --rules-dir, else the config's rules_dir. */
static struct rules *cli_rules(const struct cli_args *a)
{
    struct config_overrides ov = {.rules_dir = a->rules_dir};
    struct config *cfg;
    struct rules *r;
    char err[1024];

    cfg = config_load(a->config, &ov, err, sizeof(err));
    if (cfg == NULL) {
        fprintf(stderr, "crmgate: %s\n", err);
        return NULL;
    }
    r = rules_ref(cfg->rules);
    config_unref(cfg);
    return r;
}

static void cli_warn_wildcards(const struct rules_ws *ws)
{
    const struct rules_crm *crms[2] = {&ws->hubspot, &ws->salesforce};
    const char *names[2] = {"hubspot", "salesforce"};

    for (int i = 0; i < 2; i++) {
        const struct rules_crm *rc = crms[i];
        if (rc->any != NULL)
            printf("warning: %s: /%s/objects/*: every unlisted %s object is accessible\n", ws->file,
                   names[i], names[i]);
        for (size_t k = 0; k < rc->cap; k++) {
            const struct rules_object *o = rc->slot[k];
            if (o != NULL && o->write_all)
                printf("warning: %s: every field of %s %s is writable\n", ws->file, names[i],
                       o->name);
            /* A HubSpot custom object has two spellings (2-<id> and p<portal>_<name>) that
             * crmgate cannot map to each other without the portal's schema: the one not
             * listed falls to "*", and its rules, not these, apply to it. */
            if (o != NULL && i == 0 && rc->any != NULL &&
                ((o->name[0] == '2' && o->name[1] == '-') ||
                 ((o->name[0] == 'p' || o->name[0] == 'P') && strchr(o->name, '_') != NULL)))
                printf("warning: %s: hubspot custom object %s is also reachable by its other "
                       "spelling (2-<id> or p<portal>_<name>), which /hubspot/objects/* covers: "
                       "list both\n",
                       ws->file, o->name);
        }
    }
}

static int cli_check(int argc, char **argv)
{
    struct cli_args a = {0};
    struct rules *r;
    char err[1024];

    if (cli_parse(argc, argv, &a) < 0)
        return 2;
    if (optind < argc)
        r = rulesdir_load_files(argv + optind, (size_t)(argc - optind), err, sizeof(err));
    else
        r = cli_rules(&a);
    if (r == NULL) {
        if (optind < argc)
            fprintf(stderr, "crmgate: %s\n", err);
        return 1;
    }
    for (size_t i = 0; i < r->n; i++) {
        /* The path as given (files keep their order), else the file's name in rules_dir. */
        printf("%s: workspace %s, mode %s\n",
               optind < argc ? argv[optind + (int)i] : r->ws[i]->file, r->ws[i]->name,
               rules_mode_name(r->ws[i]->mode));
        cli_warn_wildcards(r->ws[i]);
    }
    printf("OK: %zu workspace%s\n", r->n, r->n == 1 ? "" : "s");
    rules_unref(r);
    return 0;
}

static char *cli_read_file(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    struct evbuffer *b = evbuffer_new();
    char chunk[8192], *out = NULL;
    size_t n;

    if (f == NULL || b == NULL) {
        fprintf(stderr, "crmgate: %s: %s\n", path, f == NULL ? strerror(errno) : "out of memory");
        goto done;
    }
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (evbuffer_get_length(b) + n > CLI_MAX_BODY) {
            fprintf(stderr, "crmgate: %s: larger than %d bytes\n", path, CLI_MAX_BODY);
            goto done;
        }
        evbuffer_add(b, chunk, n);
    }
    *len = evbuffer_get_length(b);
    out = malloc(*len + 1);
    if (out != NULL) {
        evbuffer_remove(b, out, *len);
        out[*len] = '\0';
    }
done:
    if (f != NULL && f != stdin)
        fclose(f);
    if (b != NULL)
        evbuffer_free(b);
    return out;
}

/* The value of --header 'Name: value' for name, or NULL. */
static const char *cli_header(const struct cli_args *a, const char *name, char *buf, size_t len)
{
    size_t nl = strlen(name);

    for (size_t i = 0; i < a->nheaders; i++) {
        const char *h = a->headers[i];
        if (strncasecmp(h, name, nl) == 0 && h[nl] == ':') {
            h += nl + 1;
            while (*h == ' ')
                h++;
            snprintf(buf, len, "%s", h);
            return buf;
        }
    }
    return NULL;
}

static json_t *cli_filter_json(const struct rules_ws *ws, const struct crm_op *op)
{
    const struct rules_object *o;

    if (op->object == NULL || op->verb == CRM_VERB_AUTH || op->verb == CRM_VERB_REVOKE ||
        op->verb == CRM_VERB_SCHEMA_READ)
        return NULL;
    o = rules_object_find(rules_crm_of(ws, op->crm), op->object);
    if (o == NULL)
        return NULL;
    if (o->read_all)
        return json_pack("{s:s}", "keeps", "*");
    {
        json_t *keep = json_array();
        size_t n;
        const char **names = rules_set_sorted(&o->read, &n);
        for (size_t i = 0; names != NULL && i < n; i++)
            json_array_append_new(keep, json_string(names[i]));
        free(names);
        return json_pack("{s:o, s:s}", "keeps", keep, "strips", "every other field of the answer");
    }
}

static int cli_explain(int argc, char **argv)
{
    struct cli_args a = {0};
    struct crm_request cr = {0};
    struct crm_ops ops = {0};
    struct policy_verdict v;
    const struct rules_ws *ws;
    struct rules *r = NULL;
    enum crm crm;
    char ctype[256], cenc[256], ovr[256], dup[1024], *path = NULL, *body = NULL;
    const char *target, *rest = NULL, *q;
    size_t blen = 0, denied = 0;
    json_t *out = NULL, *jops;
    int status = 1, allowed;

    if (cli_parse(argc, argv, &a) < 0)
        return 2;
    if (a.workspace == NULL || a.crm == NULL || argc - optind != 2) {
        cli_policy_usage(stderr);
        return 2;
    }
    if (strcmp(a.crm, "hubspot") == 0) {
        crm = CRM_HUBSPOT;
    } else if (strcmp(a.crm, "salesforce") == 0) {
        crm = CRM_SALESFORCE;
    } else {
        fprintf(stderr, "crmgate policy explain: --crm must be hubspot or salesforce\n");
        return 2;
    }
    r = cli_rules(&a);
    if (r == NULL)
        return 1;
    ws = rules_workspace(r, a.workspace);
    if (ws == NULL) {
        fprintf(stderr, "crmgate: no rules for workspace %s and no default.json\n", a.workspace);
        goto done;
    }
    target = argv[optind + 1];
    /* Accept the reverse-mode path too: /hubspot/crm/v3/... */
    if (route_reverse(target, &rest) == crm)
        target = rest[0] != '\0' ? rest : "/";
    q = strchr(target, '?');
    path = q != NULL ? strndup(target, (size_t)(q - target)) : strdup(target);
    if (a.body != NULL && (body = cli_read_file(a.body, &blen)) == NULL)
        goto done;
    cr.method = argv[optind];
    cr.path = path;
    cr.query = q != NULL ? q + 1 : NULL;
    cr.body = body;
    cr.body_len = blen;
    cr.content_type = cli_header(&a, "content-type", ctype, sizeof(ctype));
    if (cr.content_type == NULL && body != NULL)
        cr.content_type = "application/json";
    cr.content_encoding = cli_header(&a, "content-encoding", cenc, sizeof(cenc));
    cr.method_override = cli_header(&a, "x-http-method-override", ovr, sizeof(ovr));
    cr.duplicate_rule = cli_header(&a, "sforce-duplicate-rule-header", dup, sizeof(dup));
    if ((crm == CRM_SALESFORCE ? salesforce_classify(&cr, NULL, &ops)
                               : hubspot_classify(&cr, &ops)) < 0 ||
        enforce_revoked_fingerprint(&ops) < 0) {
        fprintf(stderr, "crmgate: out of memory\n");
        goto done;
    }
    allowed = policy_decide(ws, &ops, &v, &denied);
    jops = crm_ops_to_json(&ops);
    for (size_t i = 0; i < ops.n; i++) {
        struct policy_verdict ov;
        json_t *o = json_array_get(jops, i), *flt;
        policy_decide_op(ws, &ops.v[i], &ov);
        json_object_set_new(o, "decision", json_string(ov.allow ? "allow" : "deny"));
        json_object_set_new(o, "rule", json_string(ov.rule));
        json_object_set_new(o, "reason", json_string(ov.reason));
        if (ov.allow && (flt = cli_filter_json(ws, &ops.v[i])) != NULL)
            json_object_set_new(o, "response_filter", flt);
    }
    out = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "workspace", ws->name, "crm", a.crm,
                    "decision", allowed ? "allow" : "deny", "rule", v.rule, "reason", v.reason,
                    "operations", jops);
    if (out != NULL && !allowed && denied < ops.n)
        json_object_set_new(out, "denied_operation", json_integer((json_int_t)denied));
    if (out == NULL || json_dumpf(out, stdout, JSON_INDENT(2)) < 0) {
        fprintf(stderr, "crmgate: out of memory\n");
        goto done;
    }
    printf("\n");
    status = allowed ? 0 : 3; /* scripts can branch on the decision */
done:
    json_decref(out);
    crm_ops_free(&ops);
    free(path);
    free(body);
    rules_unref(r);
    return status;
}

static void cli_prompt_list(const struct rules_set *s, int all)
{
    const char **names;
    size_t n;

    if (all) {
        printf("every field");
        return;
    }
    names = rules_set_sorted(s, &n);
    for (size_t i = 0; names != NULL && i < n; i++)
        printf("%s%s", i ? ", " : "", names[i]);
    free(names);
}

static void cli_prompt_object(const struct rules_object *o)
{
    static const char *const acts[] = {"create",      "upsert",    "delete",    "merge",
                                       "gdpr_delete", "associate", "dissociate"};
    static const enum crm_verb verbs[] = {
        CRM_VERB_CREATE,      CRM_VERB_UPSERT,    CRM_VERB_DELETE,    CRM_VERB_MERGE,
        CRM_VERB_GDPR_DELETE, CRM_VERB_ASSOCIATE, CRM_VERB_DISSOCIATE};
    size_t yes = 0;

    printf("- %s: ", strcmp(o->name, "*") == 0 ? "any other object" : o->name);
    if (o->read_all || o->read.n > 0) {
        printf("read ");
        cli_prompt_list(&o->read, o->read_all);
    } else {
        printf("no reading");
    }
    if ((o->actions & (1u << CRM_VERB_UPDATE)) && (o->write_all || o->write.n > 0)) {
        printf("; update ");
        cli_prompt_list(&o->write, o->write_all);
    } else {
        printf("; no updates");
    }
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
        if (o->actions & (1u << verbs[i]))
            printf("%s%s", yes++ ? ", " : "; may also ", acts[i]);
    }
    if (o->actions & RULES_SAVE_DUPLICATES)
        printf("%ssave past duplicate rules (Sforce-Duplicate-Rule-Header allowSave=true)",
               yes++ ? ", " : "; may also ");
    printf(".\n");
}

static void cli_prompt_crm(enum crm crm, const char *title, const struct rules_crm *rc)
{
    printf("\n%s:\n", title);
    if (!rc->listed) {
        printf("- not available: every %s call is refused.\n", title);
        return;
    }
    for (size_t i = 0; i < rc->cap; i++) {
        if (rc->slot[i] != NULL)
            cli_prompt_object(rc->slot[i]);
    }
    if (rc->any != NULL)
        cli_prompt_object(rc->any);
    else
        printf("- no other object may be read or changed.\n");
    printf("- schema and owner lookups: %s. OAuth token calls (token revocations too): %s.\n",
           rc->schema_read ? "allowed" : "refused", rc->auth ? "allowed" : "refused");
    if (crm == CRM_SALESFORCE)
        printf("- a write sent with Sforce-Duplicate-Rule-Header allowSave=true is refused "
               "unless its object above says it may save past duplicate rules.\n");
}

static int cli_prompt(int argc, char **argv)
{
    struct cli_args a = {0};
    const struct rules_ws *ws;
    struct rules *r;

    if (cli_parse(argc, argv, &a) < 0)
        return 2;
    if (a.workspace == NULL) {
        cli_policy_usage(stderr);
        return 2;
    }
    r = cli_rules(&a);
    if (r == NULL)
        return 1;
    ws = rules_workspace(r, a.workspace);
    if (ws == NULL) {
        fprintf(stderr, "crmgate: no rules for workspace %s and no default.json\n", a.workspace);
        rules_unref(r);
        return 1;
    }
    printf("Your HubSpot and Salesforce calls go through crmgate, which enforces the policy of "
           "workspace \"%s\". Anything not listed below is refused with a 403 error that names the "
           "rule; do not retry a refused call unchanged. A write that touches one field you may "
           "not write is refused whole, so send only the fields listed. Filters and sorts count "
           "as reads.\n",
           ws->name);
    cli_prompt_crm(CRM_HUBSPOT, "HubSpot", &ws->hubspot);
    cli_prompt_crm(CRM_SALESFORCE, "Salesforce", &ws->salesforce);
    rules_unref(r);
    return 0;
}

int cli_policy(int argc, char **argv)
{
    if (argc < 2) {
        cli_policy_usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "check") == 0)
        return cli_check(argc - 1, argv + 1);
    if (strcmp(argv[1], "explain") == 0)
        return cli_explain(argc - 1, argv + 1);
    if (strcmp(argv[1], "prompt") == 0)
        return cli_prompt(argc - 1, argv + 1);
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        cli_policy_usage(stdout);
        return 0;
    }
    fprintf(stderr, "crmgate policy: unknown command \"%s\"\n", argv[1]);
    cli_policy_usage(stderr);
    return 2;
}

int cli_token(int argc, char **argv)
{
    static const char usage[] =
        "Usage: crmgate token fingerprint < token-file\n"
        "  prints the SHA-256 fingerprint to register a CRM token in callers;\n"
        "  the token is read from stdin so it stays out of argv and history\n";
    const char *last = argc > 1 ? argv[argc - 1] : "";
    char buf[8192], fp[65];
    size_t n;

    /* crmgate token --help, and crmgate token fingerprint --help */
    if (argc <= 3 &&
        (strcmp(last, "--help") == 0 || strcmp(last, "-h") == 0 || strcmp(last, "help") == 0)) {
        fputs(usage, stdout);
        return 0;
    }
    if (argc != 2 || strcmp(argv[1], "fingerprint") != 0) {
        fputs(usage, stderr);
        return 2;
    }
    n = fread(buf, 1, sizeof(buf) - 1, stdin);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--;
    if (n == 0) {
        fprintf(stderr, "crmgate token fingerprint: no token on stdin\n");
        return 1;
    }
    if (identify_fingerprint(buf, n, fp) < 0) {
        fprintf(stderr, "crmgate token fingerprint: hashing failed\n");
        return 1;
    }
    memset(buf, 0, sizeof(buf));
    printf("%s\n", fp);
    return 0;
}
