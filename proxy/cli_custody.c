/*
 * cli_custody.c - crmgate key, crmgate integration, crmgate vault keygen
 * (see cli_custody.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "admin_client.h"
#include "cli_custody.h"
#include "config.h"
#include "vault.h"

#define CLI_CUSTODY_MAX_SECRETS (64 * 1024) /* bytes read from stdin or --secrets-file */

enum {
    OPT_JSON = 500,
    OPT_WORKSPACE,
    OPT_USER,
    OPT_KIND,
    OPT_WORKFLOW,
    OPT_EXPIRES,
    OPT_CRM,
    OPT_TYPE,
    OPT_CLIENT_ID,
    OPT_EXPIRES_IN,
    OPT_INSTANCE_URL,
    OPT_TOKEN_URL,
    OPT_SECRETS_FILE,
    OPT_OUT,
};

static const struct option cli_custody_opts[] = {
    ADMIN_TARGET_OPTIONS,
    {"json", no_argument, NULL, OPT_JSON},
    {"workspace", required_argument, NULL, OPT_WORKSPACE},
    {"user", required_argument, NULL, OPT_USER},
    {"kind", required_argument, NULL, OPT_KIND},
    {"workflow", required_argument, NULL, OPT_WORKFLOW},
    {"expires", required_argument, NULL, OPT_EXPIRES},
    {"crm", required_argument, NULL, OPT_CRM},
    {"type", required_argument, NULL, OPT_TYPE},
    {"client-id", required_argument, NULL, OPT_CLIENT_ID},
    {"expires-in", required_argument, NULL, OPT_EXPIRES_IN},
    {"instance-url", required_argument, NULL, OPT_INSTANCE_URL},
    {"token-url", required_argument, NULL, OPT_TOKEN_URL},
    {"secrets-file", required_argument, NULL, OPT_SECRETS_FILE},
    {"out", required_argument, NULL, OPT_OUT},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

struct cli_custody_args {
    struct admin_target_flags target;
    const char *workspace, *user, *kind, *workflow, *expires, *crm, *type, *client_id;
    const char *expires_in, *instance_url, *token_url, *secrets_file, *out;
    int json;
};

static void cli_custody_usage(FILE *out)
{
    fputs("Usage:\n"
          "  crmgate key create --workspace W [--user U] --kind chat|workflow [--workflow ID]\n"
          "                     [--expires YYYY-MM-DD[THH:MM:SSZ]] [--json]\n"
          "      make a crmgate key for an agent; it is printed once, only its hash is kept.\n"
          "      A chat key needs --user: its calls use that user's integration.\n"
          "  crmgate key list [--workspace W] [--json]\n"
          "  crmgate key revoke ID          refused from the next request on\n"
          "  crmgate integration add --workspace W [--user U] --crm hubspot|salesforce\n"
          "                     --type private-app|oauth [--client-id ID] [--expires-in SECONDS]\n"
          "                     [--instance-url URL] [--token-url URL] [--secrets-file FILE]\n"
          "      connect a CRM account: without --user, the workspace integration (workflows);\n"
          "      with --user, that user's (chat). Secrets come from stdin or --secrets-file,\n"
          "      never from the command line:\n"
          "        private-app: the token (or {\"access_token\": \"...\"})\n"
          "        oauth:       {\"access_token\", \"refresh_token\", \"client_secret\",\n"
          "                      \"client_id\"?, \"expires_in\"?}\n"
          "      Salesforce: --instance-url is where the calls go (https://X.my.salesforce.com);\n"
          "      it and --token-url must be on a host under vault.salesforce_domains\n"
          "      (default salesforce.com, force.com), or plain http to loopback.\n"
          "      HubSpot: --token-url must be on a host under vault.hubspot_domains\n"
          "      (default api.hubapi.com, api.hubspot.com), or plain http to loopback.\n"
          "  crmgate integration list [--workspace W] [--json]\n"
          "      no secret; the token expiry, the OAuth refresh state (ok; backoff to TIME after\n"
          "      failed refreshes; refused: none until the integration is added again) and\n"
          "      why it needs attention\n"
          "  crmgate integration remove --workspace W [--user U] --crm hubspot|salesforce\n"
          "  crmgate vault keygen [--out FILE]\n"
          "      a new vault key (64 hex digits); --out writes it with mode 0600 and\n"
          "      refuses to overwrite\n"
          "\n",
          out);
    admin_target_help(out);
}

/* Parse the flags after the verb; -1 after printing an error (or 1 for --help). */
static int cli_custody_parse(int argc, char **argv, struct cli_custody_args *a)
{
    int ch;

    memset(a, 0, sizeof(*a));
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "c:h", cli_custody_opts, NULL)) != -1) {
        if (admin_target_flag(&a->target, ch, optarg))
            continue;
        switch (ch) {
        case OPT_JSON:
            a->json = 1;
            break;
        case OPT_WORKSPACE:
            a->workspace = optarg;
            break;
        case OPT_USER:
            a->user = optarg;
            break;
        case OPT_KIND:
            a->kind = optarg;
            break;
        case OPT_WORKFLOW:
            a->workflow = optarg;
            break;
        case OPT_EXPIRES:
            a->expires = optarg;
            break;
        case OPT_CRM:
            a->crm = optarg;
            break;
        case OPT_TYPE:
            a->type = optarg;
            break;
        case OPT_CLIENT_ID:
            a->client_id = optarg;
            break;
        case OPT_EXPIRES_IN:
            a->expires_in = optarg;
            break;
        case OPT_INSTANCE_URL:
            a->instance_url = optarg;
            break;
        case OPT_TOKEN_URL:
            a->token_url = optarg;
            break;
        case OPT_SECRETS_FILE:
            a->secrets_file = optarg;
            break;
        case OPT_OUT:
            a->out = optarg;
            break;
        case 'h':
            cli_custody_usage(stdout);
            return 1;
        default:
            fprintf(stderr, "crmgate: unknown or incomplete option \"%s\" (crmgate key --help)\n",
                    argv[optind - 1]);
            return -1;
        }
    }
    return 0;
}

/* The verb's help, or its flags into a: an exit status, or -1 to go on. */
static int cli_custody_begin(int argc, char **argv, struct cli_custody_args *a)
{
    const char *verb = argc > 1 ? argv[1] : NULL;
    int rc;

    if (verb == NULL || strcmp(verb, "help") == 0 || strcmp(verb, "--help") == 0 ||
        strcmp(verb, "-h") == 0) {
        cli_custody_usage(verb == NULL ? stderr : stdout);
        return verb == NULL ? 2 : 0;
    }
    rc = cli_custody_parse(argc - 1, argv + 1, a);
    return rc == 0 ? -1 : rc > 0 ? 0 : 2;
}

/* Call the daemon; 0 and *out on a 2xx, else 1 (unreachable, refused) or 2 (a 4xx). */
static int cli_custody_call(const struct cli_custody_args *a, const char *method, const char *path,
                            const json_t *body, json_t **out)
{
    struct admin_target t;
    char err[1024], msg[1024];
    long status = 0;
    json_t *ans = NULL;

    *out = NULL;
    if (admin_target_init(&t, a->target.url, a->target.socket, a->target.config,
                          a->target.state_dir, err, sizeof(err)) < 0) {
        fprintf(stderr, "crmgate: %s\n", err);
        return 2;
    }
    if (admin_client_call(&t, method, path, body, &status, &ans, err, sizeof(err)) < 0) {
        fprintf(stderr, "crmgate: %s\n", err);
        return 1;
    }
    if (status < 200 || status > 299) {
        admin_client_error(ans, msg, sizeof(msg));
        fprintf(stderr, "crmgate: %s (HTTP %ld)\n", msg[0] != '\0' ? msg : "refused", status);
        json_decref(ans);
        return admin_client_exit_status(status);
    }
    *out = ans;
    return 0;
}

/* GET base[?workspace=W] into *out; with --json it is printed here. 0, or the exit status. */
static int cli_custody_list(const struct cli_custody_args *a, const char *base, json_t **out)
{
    char path[ADMIN_CLIENT_MAX_PATH];
    int rc;

    snprintf(path, sizeof(path), "%s", base);
    if (a->workspace != NULL &&
        admin_client_query_add(path, sizeof(path), "workspace", a->workspace) < 0)
        return 2;
    if ((rc = cli_custody_call(a, "GET", path, NULL, out)) != 0)
        return rc;
    if (a->json) {
        json_dumpf(*out, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
        fputc('\n', stdout);
    }
    return 0;
}

/* YYYY-MM-DD (midnight UTC) or YYYY-MM-DDTHH:MM:SSZ into milliseconds; -1 when malformed. */
static long long cli_custody_date(const char *s)
{
    struct tm tm;
    const char *end;

    memset(&tm, 0, sizeof(tm));
    end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (end == NULL || *end != '\0') {
        memset(&tm, 0, sizeof(tm));
        end = strptime(s, "%Y-%m-%d", &tm);
        if (end == NULL || *end != '\0')
            return -1;
    }
    return (long long)timegm(&tm) * 1000;
}

static void cli_custody_when(json_t *ms, char *out, size_t outlen)
{
    json_int_t v = json_integer_value(ms);
    time_t t = (time_t)(v / 1000);
    struct tm tm;

    if (v <= 0 || gmtime_r(&t, &tm) == NULL) {
        snprintf(out, outlen, "-");
        return;
    }
    strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static const char *cli_custody_s(json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));

    return v != NULL ? v : "-";
}

static int cli_custody_key(int argc, char **argv)
{
    struct cli_custody_args a;
    const char *verb = argc > 1 ? argv[1] : NULL;
    json_t *out = NULL;
    int rc = cli_custody_begin(argc, argv, &a);

    if (rc >= 0)
        return rc;
    if (strcmp(verb, "create") == 0) {
        json_t *body;
        long long exp = 0;
        if (optind < argc - 1) {
            fprintf(stderr, "crmgate key create: unexpected argument \"%s\"\n", argv[optind + 1]);
            return 2;
        }
        if (a.workspace == NULL || a.kind == NULL) {
            fprintf(stderr, "crmgate key create: --workspace and --kind are required\n");
            return 2;
        }
        if (strcmp(a.kind, "chat") != 0 && strcmp(a.kind, "workflow") != 0) {
            fprintf(stderr, "crmgate key create: --kind must be chat or workflow\n");
            return 2;
        }
        if (strcmp(a.kind, "chat") == 0 && a.user == NULL) {
            fprintf(stderr, "crmgate key create: a chat key needs --user (its calls use that "
                            "user's integration)\n");
            return 2;
        }
        if (a.expires != NULL && (exp = cli_custody_date(a.expires)) < 0) {
            fprintf(stderr,
                    "crmgate key create: --expires %s: expected YYYY-MM-DD or "
                    "YYYY-MM-DDTHH:MM:SSZ (UTC)\n",
                    a.expires);
            return 2;
        }
        body = json_pack("{s:s, s:s}", "workspace", a.workspace, "kind", a.kind);
        if (body == NULL)
            return 1;
        if (a.user != NULL)
            json_object_set_new(body, "user", json_string(a.user));
        if (a.workflow != NULL)
            json_object_set_new(body, "workflow", json_string(a.workflow));
        if (a.expires != NULL) /* even 1970-01-01 (0): the daemon refuses a past time */
            json_object_set_new(body, "expires_ms", json_integer(exp));
        rc = cli_custody_call(&a, "POST", "/v1/keys", body, &out);
        json_decref(body);
        if (rc != 0)
            return rc;
        if (a.json) {
            json_dumpf(out, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
            fputc('\n', stdout);
        } else {
            printf("%s\n", cli_custody_s(out, "key"));
            fprintf(stderr,
                    "key %s for workspace %s (%s%s%s): store it now, crmgate shows it only "
                    "once\n",
                    cli_custody_s(out, "id"), a.workspace, a.kind, a.user != NULL ? ", user " : "",
                    a.user != NULL ? a.user : "");
        }
        json_decref(out);
        return 0;
    }
    if (strcmp(verb, "list") == 0) {
        size_t i;
        json_t *k;
        if ((rc = cli_custody_list(&a, "/v1/keys", &out)) != 0)
            return rc;
        if (!a.json) {
            printf("%-16s  %-8s  %-20s  %-24s  %-8s  %-20s  %s\n", "ID", "KIND", "WORKSPACE",
                   "USER", "STATE", "EXPIRES", "WORKFLOW");
            json_array_foreach(json_object_get(out, "keys"), i, k)
            {
                char when[32];
                cli_custody_when(json_object_get(k, "expires_ms"), when, sizeof(when));
                printf("%-16s  %-8s  %-20s  %-24s  %-8s  %-20s  %s\n", cli_custody_s(k, "id"),
                       cli_custody_s(k, "kind"), cli_custody_s(k, "workspace"),
                       cli_custody_s(k, "user"), cli_custody_s(k, "state"), when,
                       cli_custody_s(k, "workflow"));
            }
        }
        json_decref(out);
        return 0;
    }
    if (strcmp(verb, "revoke") == 0) {
        char path[ADMIN_CLIENT_MAX_PATH];
        if (optind != argc - 2) {
            fprintf(stderr, "crmgate key revoke: give exactly one key id (crmgate key list)\n");
            return 2;
        }
        snprintf(path, sizeof(path), "/v1/keys/%s", argv[optind + 1]);
        if (strspn(argv[optind + 1], "0123456789abcdef") != strlen(argv[optind + 1]) ||
            strlen(argv[optind + 1]) != 16) {
            fprintf(stderr, "crmgate key revoke: \"%s\" is not a key id (16 hex digits)\n",
                    argv[optind + 1]);
            return 2;
        }
        if ((rc = cli_custody_call(&a, "DELETE", path, NULL, &out)) != 0)
            return rc;
        printf("key %s revoked\n", argv[optind + 1]);
        json_decref(out);
        return 0;
    }
    fprintf(stderr, "crmgate key: unknown command \"%s\" (create, list, revoke)\n", verb);
    return 2;
}

/* Read all of fd (at most CLI_CUSTODY_MAX_SECRETS) into a new NUL-terminated buffer. */
static char *cli_custody_read_all(int fd, size_t *len)
{
    char *buf = malloc(CLI_CUSTODY_MAX_SECRETS + 1);
    size_t n = 0;

    if (buf == NULL)
        return NULL;
    for (;;) {
        ssize_t r = read(fd, buf + n, CLI_CUSTODY_MAX_SECRETS + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            OPENSSL_cleanse(buf, n);
            free(buf);
            return NULL;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > CLI_CUSTODY_MAX_SECRETS) {
            OPENSSL_cleanse(buf, n);
            free(buf);
            errno = EFBIG;
            return NULL;
        }
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* The secrets as JSON members of body; 0, or 2 after printing why. */
static int cli_custody_secrets(const struct cli_custody_args *a, int oauth, json_t *body)
{
    static const char *const allowed[] = {"access_token", "refresh_token", "client_secret",
                                          "client_id",    "expires_in",    NULL};
    int fd = 0, rc = 2;
    size_t len = 0;
    char *buf, *p;
    json_t *j = NULL, *v;
    const char *key;

    if (a->secrets_file != NULL) {
        fd = open(a->secrets_file, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            fprintf(stderr, "crmgate integration add: %s: %s\n", a->secrets_file, strerror(errno));
            return 2;
        }
    } else if (isatty(0)) {
        fprintf(stderr, "crmgate integration add: reading the secrets from the terminal "
                        "(end with Ctrl-D)\n");
    }
    buf = cli_custody_read_all(fd, &len);
    if (fd != 0)
        close(fd);
    if (buf == NULL) {
        fprintf(stderr, "crmgate integration add: cannot read the secrets: %s\n",
                errno == EFBIG ? "more than 64 KiB" : strerror(errno));
        return 2;
    }
    p = buf;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    while (len > 0 && (buf[len - 1] == ' ' || buf[len - 1] == '\n' || buf[len - 1] == '\r' ||
                       buf[len - 1] == '\t'))
        buf[--len] = '\0';
    if (*p == '{') {
        json_error_t jerr;
        j = json_loads(p, JSON_REJECT_DUPLICATES, &jerr);
        if (!json_is_object(j)) {
            char why[JSON_ERROR_TEXT_LENGTH];
            fprintf(stderr,
                    "crmgate integration add: the secrets are not a JSON object (line "
                    "%d: %s)\n",
                    jerr.line, config_json_error(&jerr, why, sizeof(why)));
            goto done;
        }
        json_object_foreach(j, key, v)
        {
            size_t i;
            for (i = 0; allowed[i] != NULL && strcmp(allowed[i], key) != 0; i++)
                ;
            if (allowed[i] == NULL) {
                /* a name that is not quotable may be a token in the wrong place */
                fprintf(stderr,
                        "crmgate integration add: unknown secret %s%s%s (access_token, "
                        "refresh_token, client_secret, client_id, expires_in)\n",
                        config_name_quotable(key) ? "\"" : "",
                        config_name_quotable(key) ? key : "(a name not shown)",
                        config_name_quotable(key) ? "\"" : "");
                goto done;
            }
            json_object_set(body, key, v);
        }
    } else if (*p == '\0') {
        fprintf(stderr, "crmgate integration add: no secrets on %s\n",
                a->secrets_file != NULL ? a->secrets_file : "stdin");
        goto done;
    } else if (oauth) {
        fprintf(stderr, "crmgate integration add: an oauth integration's secrets are a JSON "
                        "object {\"access_token\", \"refresh_token\", \"client_secret\", ...}\n");
        goto done;
    } else {
        json_object_set_new(body, "access_token", json_string(p));
    }
    rc = 0;
done:
    json_decref(j);
    OPENSSL_cleanse(buf, len);
    free(buf);
    return rc;
}

static int cli_custody_integration(int argc, char **argv)
{
    struct cli_custody_args a;
    const char *verb = argc > 1 ? argv[1] : NULL;
    json_t *out = NULL;
    int rc = cli_custody_begin(argc, argv, &a);

    if (rc >= 0)
        return rc;
    if (optind < argc - 1) {
        /* Not quoted: a stray argument here is most likely a token typed where it does not
         * belong, and this line can end up in a shell log or a CI transcript. */
        fprintf(stderr,
                "crmgate integration %s: unexpected argument (%zu characters, not shown: secrets "
                "are read from stdin, never from the command line)\n",
                verb, strlen(argv[optind + 1]));
        return 2;
    }
    if (strcmp(verb, "add") == 0) {
        json_t *body;
        int oauth;
        if (a.workspace == NULL || a.crm == NULL || a.type == NULL) {
            fprintf(stderr, "crmgate integration add: --workspace, --crm and --type are "
                            "required\n");
            return 2;
        }
        if (strcmp(a.type, "private-app") != 0 && strcmp(a.type, "oauth") != 0) {
            fprintf(stderr, "crmgate integration add: --type must be private-app or oauth\n");
            return 2;
        }
        oauth = strcmp(a.type, "oauth") == 0;
        body = json_pack("{s:s, s:s, s:s}", "workspace", a.workspace, "crm", a.crm, "type",
                         oauth ? "oauth" : "private_app");
        if (body == NULL)
            return 1;
        if (a.user != NULL)
            json_object_set_new(body, "user", json_string(a.user));
        if (a.client_id != NULL)
            json_object_set_new(body, "client_id", json_string(a.client_id));
        if (a.instance_url != NULL)
            json_object_set_new(body, "instance_url", json_string(a.instance_url));
        if (a.token_url != NULL)
            json_object_set_new(body, "token_url", json_string(a.token_url));
        if (a.expires_in != NULL) {
            char *end;
            long v = strtol(a.expires_in, &end, 10);
            if (*end != '\0' || v <= 0) {
                fprintf(stderr, "crmgate integration add: --expires-in must be seconds > 0\n");
                json_decref(body);
                return 2;
            }
            json_object_set_new(body, "expires_in", json_integer(v));
        }
        rc = cli_custody_secrets(&a, oauth, body);
        if (rc == 0)
            rc = cli_custody_call(&a, "PUT", "/v1/integrations", body, &out);
        /* the body held the secrets */
        {
            const char *k;
            json_t *v;
            json_object_foreach(body, k, v)
            {
                if (json_is_string(v))
                    OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
            }
        }
        json_decref(body);
        if (rc != 0)
            return rc;
        printf("integration %s/%s (%s%s, %s) stored, sealed with the vault key\n", a.workspace,
               a.crm, a.user != NULL ? "user " : "workspace", a.user != NULL ? a.user : "",
               oauth ? "oauth" : "private-app");
        json_decref(out);
        return 0;
    }
    if (strcmp(verb, "list") == 0) {
        size_t i;
        json_t *it;
        if ((rc = cli_custody_list(&a, "/v1/integrations", &out)) != 0)
            return rc;
        if (!a.json) {
            printf("%-20s  %-10s  %-9s  %-24s  %-11s  %-20s  %-32s  %s\n", "WORKSPACE", "CRM",
                   "SCOPE", "USER", "TYPE", "EXPIRES", "REFRESH", "ATTENTION");
            json_array_foreach(json_object_get(out, "integrations"), i, it)
            {
                char when[32], next[32], refresh[64];
                json_t *rf = json_object_get(it, "refresh");
                const char *st = cli_custody_s(rf, "state");
                cli_custody_when(json_object_get(it, "expires_ms"), when, sizeof(when));
                cli_custody_when(json_object_get(rf, "next_attempt_ms"), next, sizeof(next));
                /* backoff: no refresh before that time; refused: none until added again */
                if (strcmp(st, "backoff") == 0)
                    snprintf(refresh, sizeof(refresh), "backoff to %s", next);
                else
                    snprintf(refresh, sizeof(refresh), "%s", st);
                printf("%-20s  %-10s  %-9s  %-24s  %-11s  %-20s  %-32s  %s\n",
                       cli_custody_s(it, "workspace"), cli_custody_s(it, "crm"),
                       cli_custody_s(it, "scope"), cli_custody_s(it, "user"),
                       cli_custody_s(it, "type"), when, refresh,
                       json_is_true(json_object_get(it, "needs_attention"))
                           ? cli_custody_s(it, "attention")
                           : "-");
            }
        }
        json_decref(out);
        return 0;
    }
    if (strcmp(verb, "remove") == 0) {
        char path[ADMIN_CLIENT_MAX_PATH] = "/v1/integrations";
        if (a.workspace == NULL || a.crm == NULL) {
            fprintf(stderr, "crmgate integration remove: --workspace and --crm are required\n");
            return 2;
        }
        if (admin_client_query_add(path, sizeof(path), "workspace", a.workspace) < 0 ||
            admin_client_query_add(path, sizeof(path), "crm", a.crm) < 0 ||
            (a.user != NULL && admin_client_query_add(path, sizeof(path), "user", a.user) < 0))
            return 2;
        if ((rc = cli_custody_call(&a, "DELETE", path, NULL, &out)) != 0)
            return rc;
        printf("integration %s/%s (%s%s) removed\n", a.workspace, a.crm,
               a.user != NULL ? "user " : "workspace", a.user != NULL ? a.user : "");
        json_decref(out);
        return 0;
    }
    fprintf(stderr, "crmgate integration: unknown command \"%s\" (add, list, remove)\n", verb);
    return 2;
}

static int cli_custody_vault(int argc, char **argv)
{
    struct cli_custody_args a;
    const char *verb = argc > 1 ? argv[1] : NULL;
    int fd = 1, rc;

    if (verb == NULL || strcmp(verb, "keygen") != 0) {
        if (verb != NULL &&
            (strcmp(verb, "--help") == 0 || strcmp(verb, "help") == 0 || strcmp(verb, "-h") == 0)) {
            cli_custody_usage(stdout);
            return 0;
        }
        fprintf(stderr, "crmgate vault: expected keygen [--out FILE]\n");
        return 2;
    }
    rc = cli_custody_parse(argc - 1, argv + 1, &a);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    if (a.out != NULL) {
        fd = open(a.out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) {
            fprintf(stderr, "crmgate vault keygen: %s: %s\n", a.out,
                    errno == EEXIST ? "exists (a vault key is never overwritten)"
                                    : strerror(errno));
            return 1;
        }
    }
    rc = vault_keygen(fd);
    if (fd != 1 && close(fd) < 0)
        rc = -1;
    if (rc < 0) {
        fprintf(stderr, "crmgate vault keygen: cannot write the key\n");
        return 1;
    }
    if (a.out != NULL)
        fprintf(stderr,
                "vault key written to %s (mode 0600); back it up: without it the "
                "credentials cannot be opened\n",
                a.out);
    return 0;
}

int cli_custody(int argc, char **argv)
{
    if (strcmp(argv[0], "key") == 0)
        return cli_custody_key(argc, argv);
    if (strcmp(argv[0], "integration") == 0)
        return cli_custody_integration(argc, argv);
    return cli_custody_vault(argc, argv);
}
