/*
 * cli_admin.c - the commands that talk to a running crmgate through its
 * admin API, or read its store directly:
 *
 *   crmgate dry-run on|off|reset|clear|status [--workspace W]
 *   crmgate diffs [FILTERS] [--json] [--db DIR]
 *   crmgate stats [--workspace W] [--json] [--db DIR]
 *
 * Changes always go through the daemon (it owns the store's writer); reads
 * may open LMDB read-only with --db, even while the daemon is stopped.
 * Exit status: 0 done, 1 the daemon or the store refused or could not be
 * reached, 2 bad usage (including a request the daemon answers 400).
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "admin_client.h"
#include "cli_admin.h"
#include "query.h"
#include "store.h"

#define CLI_ADMIN_VALUE_COLS 28 /* characters of a before or after value in the table */
#define CLI_ADMIN_TOP        10 /* entries of each stats breakdown */
#define CLI_ADMIN_ROWS       50 /* detail rows of `stats` */

enum {
    OPT_JSON = 400,
    OPT_DB,
    OPT_WORKSPACE,
    OPT_CRM,
    OPT_OBJECT,
    OPT_RECORD,
    OPT_WORKFLOW,
    OPT_CALL,
    OPT_OUTCOME,
    OPT_SINCE,
    OPT_UNTIL,
    OPT_LIMIT,
    OPT_CURSOR,
};

static const struct option cli_admin_opts[] = {
    ADMIN_TARGET_OPTIONS,
    {"json", no_argument, NULL, OPT_JSON},
    {"db", required_argument, NULL, OPT_DB},
    {"workspace", required_argument, NULL, OPT_WORKSPACE},
    {"crm", required_argument, NULL, OPT_CRM},
    {"object", required_argument, NULL, OPT_OBJECT},
    {"record", required_argument, NULL, OPT_RECORD},
    {"workflow", required_argument, NULL, OPT_WORKFLOW},
    {"call", required_argument, NULL, OPT_CALL},
    {"outcome", required_argument, NULL, OPT_OUTCOME},
    {"since", required_argument, NULL, OPT_SINCE},
    {"until", required_argument, NULL, OPT_UNTIL},
    {"limit", required_argument, NULL, OPT_LIMIT},
    {"cursor", required_argument, NULL, OPT_CURSOR},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* The filter flags in the order of their query parameters. */
static const char *const cli_admin_filters[] = {
    "workspace", "crm",   "object", "record", "workflow", "call",
    "outcome",   "since", "until",  "limit",  "cursor",
};
#define CLI_ADMIN_NFILTERS (sizeof(cli_admin_filters) / sizeof(cli_admin_filters[0]))

struct cli_admin_args {
    struct admin_target_flags target;
    const char *db;
    const char *filter[CLI_ADMIN_NFILTERS]; /* by cli_admin_filters' index */
    int json;
    int filters_allowed; /* diffs: every filter; others: --workspace only */
    char **pos;
    int npos;
};

static void cli_admin_target_help(FILE *out)
{
    fputc('\n', out);
    admin_target_help(out);
    fprintf(out,
            "\nExit status: 0 done, 1 crmgate refused or could not be reached, 2 bad usage.\n");
}

static void cli_admin_usage_dry_run(FILE *out)
{
    fprintf(out, "Usage: crmgate dry-run on|off|reset|clear|status [--workspace W] [--json]\n"
                 "\n"
                 "  on, off   set the workspace's runtime dry-run switch (persisted; it\n"
                 "            survives a restart and overrides the rules' mode)\n"
                 "  reset     remove the switch: the workspace's rules decide again\n"
                 "  clear     discard the values written in dry-run (reads show the CRM's\n"
                 "            again); the mode stays. off, and a reset to rules that do\n"
                 "            not say dry_run, discard them too. Audit records stay.\n"
                 "  status    the workspace's mode and dry-run state (every workspace\n"
                 "            without --workspace)\n");
    cli_admin_target_help(out);
}

static void cli_admin_usage_diffs(FILE *out)
{
    fprintf(out,
            "Usage: crmgate diffs [--workspace W] [--crm hubspot|salesforce] [--object O]\n"
            "                     [--record ID] [--workflow F] [--call C] [--outcome X]\n"
            "                     [--since T] [--until T] [--limit N] [--cursor C]\n"
            "                     [--json] [--db DIR]\n"
            "\n"
            "The audited changes, newest first: time (UTC), workspace, workflow,\n"
            "object/record, field before -> after, outcome; one line per field.\n"
            "\n"
            "  --outcome X   allowed, denied, dry_run, upstream_error, unknown, ...\n"
            "  --since T     2026-12-07, 2026-12-07T12:30:00Z, an age (15m, 2h, 7d), or ms\n"
            "  --limit N     records per page, 1..%d (default 100); --cursor C: the next\n"
            "                page, as printed after a full one\n"
            "  --json        the records as JSON ({\"records\": [...], \"next\": ...})\n"
            "  --db DIR      read the store in DIR (the state directory or its db/)\n"
            "                directly, read-only, even while crmgate is stopped\n",
            STORE_QUERY_MAX);
    cli_admin_target_help(out);
}

static void cli_admin_usage_stats(FILE *out)
{
    fprintf(out, "Usage: crmgate stats [--workspace W] [--json] [--db DIR]\n"
                 "\n"
                 "Counts of audited field changes by outcome, workspace, workflow, user,\n"
                 "object and field: which workflows change which fields, how often, for whom.\n"
                 "A record counts once per field it touched (once when it touched none).\n"
                 "  --db DIR      read the store in DIR directly, read-only\n");
    cli_admin_target_help(out);
}

/* 0, 1 (help printed), or 2 (usage error printed). */
static int cli_admin_parse(int argc, char **argv, struct cli_admin_args *a, void (*usage)(FILE *))
{
    int ch;

    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "c:h", cli_admin_opts, NULL)) != -1) {
        if (admin_target_flag(&a->target, ch, optarg))
            continue;
        switch (ch) {
        case OPT_JSON:
            a->json = 1;
            break;
        case OPT_DB:
            a->db = optarg;
            break;
        case 'h':
            usage(stdout);
            return 1;
        default:
            if (ch >= OPT_WORKSPACE && ch <= OPT_CURSOR) {
                size_t i = (size_t)(ch - OPT_WORKSPACE);
                if (!a->filters_allowed && ch != OPT_WORKSPACE) {
                    fprintf(stderr, "crmgate %s: --%s is not an option of this command\n", argv[0],
                            cli_admin_filters[i]);
                    return 2;
                }
                if (a->filter[i] != NULL) {
                    fprintf(stderr, "crmgate %s: --%s is given twice\n", argv[0],
                            cli_admin_filters[i]);
                    return 2;
                }
                a->filter[i] = optarg;
                break;
            }
            if (optopt != 0 && optopt < 256)
                fprintf(stderr, "crmgate %s: bad option -%c (crmgate %s --help)\n", argv[0], optopt,
                        argv[0]);
            else
                fprintf(stderr, "crmgate %s: bad option %s (crmgate %s --help)\n", argv[0],
                        argv[optind - 1], argv[0]);
            return 2;
        }
    }
    a->pos = argv + optind;
    a->npos = argc - optind;
    return 0;
}

/*
 * Call the daemon; 0 with a 2xx answer in *out, else the exit status after
 * saying why on stderr: 2 when the target is wrong (a bad config, no admin
 * token) or the daemon found the request wrong, 1 when the daemon cannot be
 * reached or could not carry it out (admin_client_exit_status).
 */
static int cli_admin_call(const char *cmd, const struct cli_admin_args *a, const char *method,
                          const char *path, const json_t *body, json_t **out)
{
    struct admin_target t;
    char err[1024], why[1200];
    long status;

    *out = NULL;
    if (admin_target_init(&t, a->target.url, a->target.socket, a->target.config,
                          a->target.state_dir, err, sizeof(err)) < 0) {
        fprintf(stderr, "crmgate %s: %s\n", cmd, err);
        return 2;
    }
    if (admin_client_call(&t, method, path, body, &status, out, err, sizeof(err)) < 0) {
        fprintf(stderr, "crmgate %s: %s\n", cmd, err);
        return 1;
    }
    if (status >= 200 && status <= 299 && *out != NULL)
        return 0;
    admin_client_error(*out, why, sizeof(why));
    fprintf(stderr, "crmgate %s: crmgate answered %ld%s%s\n", cmd, status, why[0] ? ": " : "", why);
    json_decref(*out);
    *out = NULL;
    return admin_client_exit_status(status);
}

static void cli_admin_print_json(const json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_ENCODE_ANY);

    if (s != NULL)
        printf("%s\n", s);
    free(s);
}

/* ----- dry-run ----- */

static void cli_admin_ws_line(const json_t *w)
{
    const char *name = json_string_value(json_object_get(w, "workspace"));
    const char *mode = json_string_value(json_object_get(w, "mode"));
    const json_t *sw = json_object_get(w, "dry_run_switch");
    int on = json_is_true(json_object_get(w, "dry_run"));

    if (json_is_boolean(sw))
        printf("%s: dry-run %s (runtime switch; the rules say mode %s)\n", name ? name : "?",
               on ? "on" : "off", mode ? mode : "?");
    else
        printf("%s: dry-run %s (from the rules: mode %s)\n", name ? name : "?", on ? "on" : "off",
               mode ? mode : "?");
}

/* "W: N dry-run records discarded ..." after a clear, or a switch that discarded some. */
static void cli_admin_discarded_line(const json_t *w)
{
    json_int_t n = json_integer_value(json_object_get(w, "overlay_discarded"));
    const char *name = json_string_value(json_object_get(w, "workspace"));

    if (json_is_integer(json_object_get(w, "overlay_discarded")))
        printf("%s: %lld dry-run record%s discarded (reads show the CRM's values; the audit "
               "log keeps them)\n",
               name ? name : "?", (long long)n, n == 1 ? "" : "s");
}

static int cli_admin_ws_path(char *buf, size_t buflen, const char *ws)
{
    char *e = curl_easy_escape(NULL, ws, 0);
    int n = e != NULL ? snprintf(buf, buflen, "/v1/workspaces/%s", e) : -1;

    curl_free(e);
    return n < 0 || (size_t)n >= buflen ? -1 : 0;
}

static int cli_dry_run(int argc, char **argv)
{
    struct cli_admin_args a = {0};
    const char *action, *ws;
    char path[ADMIN_CLIENT_MAX_PATH];
    json_t *out = NULL, *body = NULL;
    int rc;

    rc = cli_admin_parse(argc, argv, &a, cli_admin_usage_dry_run);
    if (rc != 0)
        return rc == 1 ? 0 : 2;
    ws = a.filter[0];
    if (a.db != NULL) {
        fprintf(stderr, "crmgate dry-run: --db is for reading; the switch is changed through "
                        "the running crmgate\n");
        return 2;
    }
    if (a.npos != 1) {
        cli_admin_usage_dry_run(stderr);
        return 2;
    }
    action = a.pos[0];
    if (strcmp(action, "status") == 0) {
        if (ws == NULL) {
            rc = cli_admin_call("dry-run", &a, "GET", "/v1/workspaces", NULL, &out);
            if (rc != 0)
                return rc;
            if (a.json) {
                cli_admin_print_json(out);
            } else {
                size_t i;
                json_t *w;
                json_array_foreach(json_object_get(out, "workspaces"), i, w) cli_admin_ws_line(w);
            }
            json_decref(out);
            return 0;
        }
    } else if (strcmp(action, "clear") == 0) {
        if (ws == NULL) {
            fprintf(stderr, "crmgate dry-run clear: --workspace W is required\n");
            return 2;
        }
    } else if (strcmp(action, "on") == 0 || strcmp(action, "off") == 0 ||
               strcmp(action, "reset") == 0) {
        if (ws == NULL) {
            fprintf(stderr, "crmgate dry-run %s: --workspace W is required\n", action);
            return 2;
        }
        body = json_pack("{s:o}", "dry_run",
                         strcmp(action, "reset") == 0 ? json_null()
                                                      : json_boolean(strcmp(action, "on") == 0));
    } else {
        fprintf(stderr,
                "crmgate dry-run: unknown action \"%s\" (on, off, reset, clear or status)\n",
                action);
        return 2;
    }
    if (cli_admin_ws_path(path, sizeof(path), ws) < 0) {
        fprintf(stderr, "crmgate dry-run: workspace name too long\n");
        json_decref(body);
        return 2;
    }
    if (strcmp(action, "clear") == 0 &&
        (strlen(path) + sizeof("/overlay") > sizeof(path) ||
         snprintf(path + strlen(path), sizeof(path) - strlen(path), "/overlay") < 0)) {
        fprintf(stderr, "crmgate dry-run: workspace name too long\n");
        return 2;
    }
    rc = cli_admin_call("dry-run", &a,
                        body != NULL ? "PUT" : (strcmp(action, "clear") == 0 ? "DELETE" : "GET"),
                        path, body, &out);
    json_decref(body);
    if (rc != 0)
        return rc;
    if (a.json) {
        cli_admin_print_json(out);
    } else {
        if (json_object_get(out, "mode") != NULL)
            cli_admin_ws_line(out);
        if (strcmp(action, "clear") == 0 ||
            json_integer_value(json_object_get(out, "overlay_discarded")) > 0)
            cli_admin_discarded_line(out);
    }
    json_decref(out);
    return 0;
}

/* ----- reading the store directly ----- */

/* Open DIR/db, or DIR itself when it holds the LMDB files, read-only. */
static struct store *cli_admin_open_db(const char *cmd, const char *dir)
{
    struct store_options o = {.readonly = 1};
    char path[4096], probe[4200], err[1024];
    struct stat st;
    struct store *s;

    snprintf(probe, sizeof(probe), "%s/db/data.mdb", dir);
    if (stat(probe, &st) == 0)
        snprintf(path, sizeof(path), "%s/db", dir);
    else
        snprintf(path, sizeof(path), "%s", dir);
    o.dir = path;
    s = store_open(&o, err, sizeof(err));
    if (s == NULL)
        fprintf(stderr, "crmgate %s: %s\n", cmd, err);
    return s;
}

static long long cli_admin_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * printf for table lines that carry what agents sent (field names, values,
 * record ids, workflows): every control character (C0, DEL, and C1 as
 * UTF-8) is printed as '?', so no escape sequence or carriage return from a
 * record can reach the terminal, recolour it or overwrite what it shows.
 */
static void cli_admin_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void cli_admin_printf(const char *fmt, ...)
{
    char stack[1024], *line = stack;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(stack, sizeof(stack), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(stack)) {
        line = malloc((size_t)n + 1);
        if (line == NULL)
            return;
        va_start(ap, fmt);
        vsnprintf(line, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    for (int i = 0; i < n; i++) {
        unsigned char c = (unsigned char)line[i];
        if ((c < 0x20 && !(c == '\n' && i == n - 1)) || c == 0x7f)
            line[i] = '?';
        else if (c == 0xc2 && i + 1 < n && (unsigned char)line[i + 1] >= 0x80 &&
                 (unsigned char)line[i + 1] <= 0x9f)
            line[i] = line[i + 1] = '?';
    }
    fwrite(line, 1, (size_t)n, stdout);
    if (line != stack)
        free(line);
}

/* ----- diffs ----- */

/* A JSON value as table text, cut to CLI_ADMIN_VALUE_COLS characters; null reads as null_text. */
static void cli_admin_value(const json_t *v, const char *null_text, char *out, size_t outlen)
{
    char *s = NULL;
    const char *text;
    size_t n;

    if (v == NULL || json_is_null(v)) {
        text = null_text;
    } else if (json_is_string(v)) {
        text = json_string_value(v);
    } else {
        s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        text = s != NULL ? s : "?";
    }
    n = strlen(text);
    if (n > CLI_ADMIN_VALUE_COLS && outlen > CLI_ADMIN_VALUE_COLS)
        snprintf(out, outlen, "%.*s...", CLI_ADMIN_VALUE_COLS - 3, text);
    else
        snprintf(out, outlen, "%s", text);
    /* one line per field: no control character may break the table */
    for (char *p = out; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    }
    free(s);
}

static const char *cli_admin_str(const json_t *rec, const char *key)
{
    const char *v = json_string_value(json_object_get(rec, key));

    return v != NULL && v[0] != '\0' ? v : "-";
}

static void cli_admin_diff_table(const json_t *records)
{
    size_t i;
    json_t *rec;

    cli_admin_printf("%-19s  %-10s  %-14s  %-30s  %-14s  %-44s  %s\n", "TIME (UTC)", "WORKSPACE",
                     "WORKFLOW", "OBJECT/RECORD", "FIELD", "BEFORE -> AFTER", "OUTCOME");
    json_array_foreach(records, i, rec)
    {
        long long ts = json_integer_value(json_object_get(rec, "ts"));
        time_t secs = (time_t)(ts / 1000);
        struct tm tm;
        char when[32] = "-", objrec[300], change[200], before[64], after[64], outcome[96];
        const char *unread;
        json_t *fields = json_object_get(rec, "fields"), *f;
        size_t k;

        if (gmtime_r(&secs, &tm) != NULL)
            strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
        snprintf(objrec, sizeof(objrec), "%s/%s", cli_admin_str(rec, "object"),
                 cli_admin_str(rec, "record"));
        /* a write sent to be saved past Salesforce's duplicate rules says so */
        snprintf(outcome, sizeof(outcome), "%s%s", cli_admin_str(rec, "outcome"),
                 json_is_true(json_object_get(rec, "save_duplicates")) ? " (past duplicate rules)"
                                                                       : "");
        if (json_array_size(fields) == 0) {
            snprintf(change, sizeof(change), "[%s]", cli_admin_str(rec, "verb"));
            cli_admin_printf("%-19s  %-10s  %-14s  %-30s  %-14s  %-44s  %s\n", when,
                             cli_admin_str(rec, "workspace"), cli_admin_str(rec, "workflow"),
                             objrec, "-", change, outcome);
            continue;
        }
        /* a null before: a new record, a value crmgate did not read (denied, or the CRM
         * refused the read), or a field that was empty */
        if (strcmp(cli_admin_str(rec, "verb"), "create") == 0)
            unread = "(new)";
        else if (strcmp(cli_admin_str(rec, "decision"), "deny") == 0 ||
                 json_object_get(rec, "before_state") != NULL)
            unread = "(not read)";
        else
            unread = "(empty)";
        json_array_foreach(fields, k, f)
        {
            cli_admin_value(json_object_get(f, "before"), unread, before, sizeof(before));
            cli_admin_value(json_object_get(f, "after"), "(empty)", after, sizeof(after));
            snprintf(change, sizeof(change), "%s -> %s", before, after);
            cli_admin_printf("%-19s  %-10s  %-14s  %-30s  %-14s  %-44s  %s\n", when,
                             cli_admin_str(rec, "workspace"), cli_admin_str(rec, "workflow"),
                             objrec, cli_admin_str(f, "name"), change, outcome);
        }
    }
}

static int cli_diffs(int argc, char **argv)
{
    struct cli_admin_args a = {.filters_allowed = 1};
    json_t *out = NULL, *records;
    const char *next;
    int rc;

    rc = cli_admin_parse(argc, argv, &a, cli_admin_usage_diffs);
    if (rc != 0)
        return rc == 1 ? 0 : 2;
    if (a.npos != 0) {
        fprintf(stderr, "crmgate diffs: unexpected argument \"%s\"\n", a.pos[0]);
        return 2;
    }
    if (a.db != NULL) {
        const char *names[CLI_ADMIN_NFILTERS], *values[CLI_ADMIN_NFILTERS], *bad;
        struct store_query q;
        struct store *s;
        uint64_t nextid = 0;
        size_t n = 0;
        char err[1024], ids[24];
        for (size_t i = 0; i < CLI_ADMIN_NFILTERS; i++) {
            if (a.filter[i] != NULL) {
                names[n] = cli_admin_filters[i];
                values[n++] = a.filter[i];
            }
        }
        if (query_audit_from_params(names, values, n, cli_admin_now_ms(), &q, &bad, err,
                                    sizeof(err)) < 0) {
            fprintf(stderr, "crmgate diffs: %s\n", err);
            return 2;
        }
        s = cli_admin_open_db("diffs", a.db);
        if (s == NULL)
            return 1;
        rc = store_query_audit(s, &q, &records, &nextid, err, sizeof(err));
        store_close(s);
        if (rc < 0) {
            fprintf(stderr, "crmgate diffs: %s\n", err);
            return 1;
        }
        snprintf(ids, sizeof(ids), "%llu", (unsigned long long)nextid);
        out = json_pack("{s:o, s:o}", "records", records, "next",
                        nextid != 0 ? json_string(ids) : json_null());
        if (out == NULL) {
            fprintf(stderr, "crmgate diffs: out of memory\n");
            return 1;
        }
    } else {
        char path[ADMIN_CLIENT_MAX_PATH] = "/v1/audit";
        for (size_t i = 0; i < CLI_ADMIN_NFILTERS; i++) {
            if (a.filter[i] != NULL &&
                admin_client_query_add(path, sizeof(path), cli_admin_filters[i], a.filter[i]) < 0) {
                fprintf(stderr, "crmgate diffs: the filters are too long\n");
                return 2;
            }
        }
        rc = cli_admin_call("diffs", &a, "GET", path, NULL, &out);
        if (rc != 0)
            return rc;
    }
    if (a.json) {
        cli_admin_print_json(out);
    } else {
        records = json_object_get(out, "records");
        if (json_array_size(records) == 0)
            printf("no audited changes match\n");
        else
            cli_admin_diff_table(records);
        next = json_string_value(json_object_get(out, "next"));
        if (next != NULL)
            fprintf(stderr, "(more: add --cursor %s)\n", next);
    }
    json_decref(out);
    return 0;
}

/* ----- stats ----- */

struct cli_admin_kv {
    const char *key;
    long long n;
};

static int cli_admin_kv_cmp(const void *x, const void *y)
{
    const struct cli_admin_kv *a = x, *b = y;

    if (a->n != b->n)
        return a->n > b->n ? -1 : 1;
    return strcmp(a->key, b->key);
}

/* One breakdown, largest first, at most CLI_ADMIN_TOP entries. */
static void cli_admin_breakdown(const char *title, const json_t *obj)
{
    size_t n = json_object_size(obj), k = 0;
    struct cli_admin_kv *kv;
    const char *key;
    json_t *v;

    if (n == 0)
        return;
    kv = calloc(n, sizeof(*kv));
    if (kv == NULL)
        return;
    json_object_foreach((json_t *)obj, key, v)
    {
        kv[k].key = key;
        kv[k++].n = json_integer_value(v);
    }
    qsort(kv, k, sizeof(*kv), cli_admin_kv_cmp);
    cli_admin_printf("%s\n", title);
    for (size_t i = 0; i < k && i < CLI_ADMIN_TOP; i++)
        cli_admin_printf("  %-50s %10lld\n", kv[i].key, kv[i].n);
    if (k > CLI_ADMIN_TOP)
        cli_admin_printf("  ... %zu more (--json for all)\n", k - CLI_ADMIN_TOP);
    free(kv);
}

static void cli_admin_stats_print(const json_t *out)
{
    const json_t *rows = json_object_get(out, "rows");
    size_t i;
    json_t *row;

    cli_admin_printf("audited field changes: %lld\n",
                     (long long)json_integer_value(json_object_get(out, "total")));
    cli_admin_breakdown("by outcome:", json_object_get(out, "by_outcome"));
    cli_admin_breakdown("by workspace:", json_object_get(out, "by_workspace"));
    cli_admin_breakdown("by workflow:", json_object_get(out, "by_workflow"));
    cli_admin_breakdown("by user:", json_object_get(out, "by_user"));
    cli_admin_breakdown("by object:", json_object_get(out, "by_object"));
    cli_admin_breakdown("by field:", json_object_get(out, "by_field"));
    if (json_array_size(rows) == 0)
        return;
    putchar('\n');
    cli_admin_printf("%-10s  %-14s  %-20s  %-24s  %-14s  %-14s  %s\n", "WORKSPACE", "WORKFLOW",
                     "USER", "CRM/OBJECT", "FIELD", "OUTCOME", "COUNT");
    json_array_foreach(rows, i, row)
    {
        char obj[300];
        if (i >= CLI_ADMIN_ROWS) {
            cli_admin_printf("... %zu more rows (--json for all)\n", json_array_size(rows) - i);
            break;
        }
        snprintf(obj, sizeof(obj), "%s/%s", cli_admin_str(row, "crm"),
                 cli_admin_str(row, "object"));
        cli_admin_printf("%-10s  %-14s  %-20s  %-24s  %-14s  %-14s  %lld\n",
                         cli_admin_str(row, "workspace"), cli_admin_str(row, "workflow"),
                         cli_admin_str(row, "user"), obj, cli_admin_str(row, "field"),
                         cli_admin_str(row, "outcome"),
                         (long long)json_integer_value(json_object_get(row, "count")));
    }
}

static int cli_stats(int argc, char **argv)
{
    struct cli_admin_args a = {0};
    const char *ws;
    json_t *out = NULL;
    int rc;

    rc = cli_admin_parse(argc, argv, &a, cli_admin_usage_stats);
    if (rc != 0)
        return rc == 1 ? 0 : 2;
    ws = a.filter[0];
    if (a.npos != 0) {
        fprintf(stderr, "crmgate stats: unexpected argument \"%s\"\n", a.pos[0]);
        return 2;
    }
    if (ws != NULL && (ws[0] == '\0' || strlen(ws) > QUERY_MAX_VALUE)) {
        fprintf(stderr, "crmgate stats: --workspace is empty or too long\n");
        return 2;
    }
    if (a.db != NULL) {
        struct store *s = cli_admin_open_db("stats", a.db);
        char err[1024];
        if (s == NULL)
            return 1;
        rc = store_query_stats(s, ws, &out, err, sizeof(err));
        store_close(s);
        if (rc < 0) {
            fprintf(stderr, "crmgate stats: %s\n", err);
            return 1;
        }
    } else {
        char path[ADMIN_CLIENT_MAX_PATH] = "/v1/stats";
        if (ws != NULL && admin_client_query_add(path, sizeof(path), "workspace", ws) < 0) {
            fprintf(stderr, "crmgate stats: --workspace is too long\n");
            return 2;
        }
        rc = cli_admin_call("stats", &a, "GET", path, NULL, &out);
        if (rc != 0)
            return rc;
    }
    if (a.json)
        cli_admin_print_json(out);
    else
        cli_admin_stats_print(out);
    json_decref(out);
    return 0;
}

int cli_admin(int argc, char **argv)
{
    if (strcmp(argv[0], "dry-run") == 0)
        return cli_dry_run(argc, argv);
    if (strcmp(argv[0], "diffs") == 0)
        return cli_diffs(argc, argv);
    if (strcmp(argv[0], "stats") == 0)
        return cli_stats(argc, argv);
    fprintf(stderr, "crmgate: unknown command \"%s\"\n", argv[0]);
    return 2;
}
