/*
 * main.c - the crmgate command: subcommands and start-up.
 *
 * Start-up runs in one fixed order, and any failure before READY=1 exits
 * with one line saying what and where:
 *   parse arguments and config (which loads the CA and compiles the rules)
 *   -> open the state directory and its LMDB store -> bind the admin API's
 *   listeners -> bind the proxy listeners -> start the admin thread and the
 *   workers -> READY=1.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "../certs/cli_ca.h"
#include "admin.h"
#include "admin_api.h"
#include "cli_admin.h"
#include "cli_custody.h"
#include "cli_policy.h"
#include "jsonalloc.h"
#include "config.h"
#include "admin_custody.h"
#include "custody.h"
#include "log.h"
#include "server.h"
#include "store.h"

#ifndef CRMGATE_VERSION
#define CRMGATE_VERSION "0.0.0-dev"
#endif

static void usage(FILE *out)
{
    fprintf(
        out,
        "crmgate %s - policy-enforcing proxy for AI agents' HubSpot and Salesforce API calls\n"
        "\n"
        "Usage:\n"
        "  crmgate serve [options]    run the proxy\n"
        "  crmgate policy check|explain|prompt ...\n"
        "                             validate rules, explain a call's decision, or print\n"
        "                             an agent's limits (crmgate policy help)\n"
        "  crmgate token fingerprint  SHA-256 of a CRM token read on stdin, to register it\n"
        "  crmgate ca init|export|mint ...\n"
        "                             create the name-constrained CA, print its certificate\n"
        "                             (crmgate ca help)\n"
        "  crmgate key create|list|revoke ...\n"
        "                             crmgate keys for agents (crmgate key --help)\n"
        "  crmgate integration add|list|remove ...\n"
        "                             the CRM accounts crmgate acts with (secrets on stdin)\n"
        "  crmgate vault keygen [--out FILE]\n"
        "                             a key to seal CRM credentials with\n"
        "  crmgate dry-run on|off|reset|clear|status [--workspace W] [--json]\n"
        "                             a workspace's runtime dry-run switch (persisted);\n"
        "                             off and reset to enforce discard its dry-run values\n"
        "  crmgate diffs [--workspace W --crm C --object O --record R --workflow F\n"
        "                 --call C --outcome X --since T --until T --limit N\n"
        "                 --cursor C] [--json] [--db DIR]\n"
        "                             audited changes: field before -> after, newest first\n"
        "  crmgate stats [--workspace W] [--json] [--db DIR]\n"
        "                             which workflows change which fields, how often\n"
        "  crmgate version            print the version and library versions\n"
        "  crmgate help               this text (also -h, --help)\n"
        "\n"
        "key, integration, dry-run, diffs and stats reach the daemon through its admin\n"
        "API: --socket PATH, -c FILE (serve's config), --state-dir DIR, or --url URL with\n"
        "$CRMGATE_ADMIN_TOKEN; diffs and stats --db DIR read the store directly, even with\n"
        "the daemon stopped. Each command has --help. They exit 0 when done, 2 when the\n"
        "command was wrong (usage, config, a 4xx answer but 409), 1 when it could not be\n"
        "carried out (crmgate unreachable, a 409 or 5xx answer, an unreadable store).\n"
        "\n"
        "serve options (each overrides the config file):\n"
        "  -c, --config FILE          JSON config file (default: embedded safe default)\n"
        "      --listen ADDR:PORT     reverse listener (default 127.0.0.1:8080)\n"
        "      --upstream CRM=URL     hubspot=URL or salesforce=URL (repeatable)\n"
        "      --state-dir DIR        state directory (default $STATE_DIRECTORY or ./var)\n"
        "      --workers N            worker threads (default: number of cores)\n"
        "      --ca-bundle FILE       CA certificates to verify upstream TLS with\n"
        "      --rules-dir DIR        workspace rules (default ./rules)\n"
        "      --forward-listen ADDR:PORT  forward (HTTPS_PROXY) listener: CONNECT to CRM hosts,\n"
        "                             intercepted with the CA in --ca-dir\n"
        "      --transparent-listen ADDR:PORT  listener for connections redirected by\n"
        "                             iptables REDIRECT (TLS to CRM hosts, intercepted)\n"
        "      --ca-dir DIR           crmgate's CA (crmgate ca init --dir DIR)\n"
        "      --tls-cert FILE        serve the reverse listener over HTTPS with this\n"
        "      --tls-key FILE         PEM certificate chain and key\n"
        "      --tls-mint NAME        or: HTTPS with a certificate for NAME minted from the\n"
        "                             CA in --ca-dir (repeatable; NAME must be inside the\n"
        "                             CA's name constraints: crmgate ca init --permit-extra)\n"
        "      --admin-socket PATH    admin API unix socket (default STATE_DIR/admin.sock)\n"
        "      --admin-listen ADDR:PORT  admin API over TCP too (needs admin.token)\n"
        "      --vault-key FILE       the key that seals CRM credentials (default\n"
        "                             $CREDENTIALS_DIRECTORY/vault.key when present); in the\n"
        "                             file's \"vault\": refresh_margin_s, refresh_backoff_min_ms\n"
        "                             and refresh_backoff_max_ms (the wait after a failed OAuth\n"
        "                             refresh: 1 s doubling up to 5 min), salesforce_domains\n"
        "                             (where Salesforce tokens may go: salesforce.com, force.com)\n"
        "                             and hubspot_domains (where a HubSpot token URL may point:\n"
        "                             api.hubapi.com, api.hubspot.com)\n"
        "      --log-level LEVEL      error, warn, notice, info (default) or debug\n"
        "      --check                validate the configuration, print it, and exit\n"
        "\n"
        "Agents point their SDK at the proxy:\n"
        "  HubSpot:    basePath    http://HOST:8080/hubspot\n"
        "  Salesforce: instanceUrl http://HOST:8080/salesforce\n"
        "\n"
        "Signals: SIGHUP reloads the config, SIGTERM drains in-flight requests and exits.\n",
        CRMGATE_VERSION);
}

static int cmd_version(void)
{
    curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);

    printf("crmgate %s\n", CRMGATE_VERSION);
    printf("libevent %s, %s, libcurl %s, jansson %s\n", event_get_version(),
           OpenSSL_version(OPENSSL_VERSION), cv->version, jansson_version_str());
    return 0;
}

/* mkdir -p with mode 0750, then require write access. */
static int state_dir_prepare(const char *dir, int create)
{
    char path[4096];
    size_t n = strlen(dir);
    struct stat st;

    if (n == 0 || n >= sizeof(path)) {
        fprintf(stderr, "crmgate: state directory \"%s\": bad path\n", dir);
        return -1;
    }
    memcpy(path, dir, n + 1);
    if (create) {
        for (char *p = path + 1; *p != '\0'; p++) {
            if (*p != '/')
                continue;
            *p = '\0';
            if (mkdir(path, 0750) < 0 && errno != EEXIST) {
                fprintf(stderr, "crmgate: state directory %s: cannot create %s: %s\n", dir, path,
                        strerror(errno));
                return -1;
            }
            *p = '/';
        }
        if (mkdir(path, 0750) < 0 && errno != EEXIST) {
            fprintf(stderr, "crmgate: state directory %s: %s\n", dir, strerror(errno));
            return -1;
        }
    }
    if (stat(path, &st) < 0) {
        if (!create && errno == ENOENT)
            return 0; /* --check: serve would create it */
        fprintf(stderr, "crmgate: state directory %s: %s\n", dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        fprintf(stderr, "crmgate: state directory %s: not a directory\n", dir);
        return -1;
    }
    if (access(path, W_OK | X_OK) < 0) {
        fprintf(stderr, "crmgate: state directory %s: not writable: %s\n", dir, strerror(errno));
        return -1;
    }
    return 0;
}

/*
 * The vault key: vault.key_file / --vault-key, else systemd's
 * $CREDENTIALS_DIRECTORY/vault.key when present. It must be the key the
 * store's credentials were sealed with; without one, a store that holds
 * credentials refuses to start. 0, or -1 after printing one line.
 */
/* Where the vault key is: 0 and path, or -1 when none is configured or provided. */
static int main_vault_path(const struct config *cfg, char *path, size_t pathlen)
{
    const char *creds = getenv("CREDENTIALS_DIRECTORY");

    path[0] = '\0';
    if (cfg->vault_key_file != NULL) {
        snprintf(path, pathlen, "%s", cfg->vault_key_file);
    } else if (creds != NULL && creds[0] != '\0') {
        snprintf(path, pathlen, "%s/vault.key", creds);
        if (access(path, F_OK) < 0)
            path[0] = '\0';
    }
    return path[0] != '\0' ? 0 : -1;
}

static int main_open_vault(const struct config *cfg, struct store *store)
{
    char path[4096], err[1024];
    struct vault *v = NULL;

    if (main_vault_path(cfg, path, sizeof(path)) == 0) {
        v = vault_load(path, err, sizeof(err));
        if (v == NULL) {
            fprintf(stderr, "crmgate: %s\n", err);
            return -1;
        }
    }
    if (custody_check_store(store, v, err, sizeof(err)) < 0) {
        if (path[0] != '\0')
            fprintf(stderr, "crmgate: %s (%s)\n", err, path);
        else
            fprintf(stderr, "crmgate: %s\n", err);
        vault_free(v);
        return -1;
    }
    custody_init(v);
    if (v != NULL)
        log_notice("vault: credentials sealed with the key in %s", path);
    return 0;
}

enum {
    OPT_LISTEN = 256,
    OPT_UPSTREAM,
    OPT_STATE_DIR,
    OPT_WORKERS,
    OPT_CA_BUNDLE,
    OPT_RULES_DIR,
    OPT_TLS_CERT,
    OPT_TLS_KEY,
    OPT_TLS_MINT,
    OPT_FORWARD_LISTEN,
    OPT_TRANSPARENT_LISTEN,
    OPT_CA_DIR,
    OPT_LOG_LEVEL,
    OPT_ADMIN_SOCKET,
    OPT_ADMIN_LISTEN,
    OPT_VAULT_KEY,
    OPT_CHECK,
};

/*
 * crmgate serve holds secrets in memory (the vault key, opened CRM tokens, the
 * CA's and TLS private keys): no core dump may write them to disk, and no
 * other process of its user may read them (ptrace, /proc/PID/mem). Before
 * anything is loaded. Sanitizer builds stay dumpable: LeakSanitizer stops
 * the process's threads with ptrace at exit.
 */
static void main_no_core_dumps(void)
{
    struct rlimit rl = {0, 0};

    if (setrlimit(RLIMIT_CORE, &rl) != 0)
        fprintf(stderr, "crmgate: warning: cannot turn core dumps off: %s\n", strerror(errno));
#ifndef __SANITIZE_ADDRESS__
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        fprintf(stderr, "crmgate: warning: cannot make the process non-dumpable: %s\n",
                strerror(errno));
#endif
}

static int cmd_serve(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"upstream", required_argument, NULL, OPT_UPSTREAM},
        {"state-dir", required_argument, NULL, OPT_STATE_DIR},
        {"workers", required_argument, NULL, OPT_WORKERS},
        {"ca-bundle", required_argument, NULL, OPT_CA_BUNDLE},
        {"rules-dir", required_argument, NULL, OPT_RULES_DIR},
        {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
        {"tls-key", required_argument, NULL, OPT_TLS_KEY},
        {"tls-mint", required_argument, NULL, OPT_TLS_MINT},
        {"forward-listen", required_argument, NULL, OPT_FORWARD_LISTEN},
        {"transparent-listen", required_argument, NULL, OPT_TRANSPARENT_LISTEN},
        {"ca-dir", required_argument, NULL, OPT_CA_DIR},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"admin-socket", required_argument, NULL, OPT_ADMIN_SOCKET},
        {"admin-listen", required_argument, NULL, OPT_ADMIN_LISTEN},
        {"vault-key", required_argument, NULL, OPT_VAULT_KEY},
        {"check", no_argument, NULL, OPT_CHECK},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static struct config_overrides ov; /* outlives server_run for SIGHUP reloads */
    const char *config_path = NULL;
    struct config *cfg;
    char err[1024];
    int check = 0, ch, status;

    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            config_path = optarg;
            break;
        case OPT_LISTEN:
            ov.listen = optarg;
            break;
        case OPT_UPSTREAM:
            if (strncmp(optarg, "hubspot=", 8) == 0) {
                ov.upstream_hubspot = optarg + 8;
            } else if (strncmp(optarg, "salesforce=", 11) == 0) {
                ov.upstream_salesforce = optarg + 11;
            } else {
                fprintf(stderr,
                        "crmgate: --upstream %s: expected hubspot=URL or "
                        "salesforce=URL\n",
                        optarg);
                return 2;
            }
            break;
        case OPT_STATE_DIR:
            ov.state_dir = optarg;
            break;
        case OPT_WORKERS:
            ov.workers = optarg;
            break;
        case OPT_CA_BUNDLE:
            ov.ca_bundle = optarg;
            break;
        case OPT_RULES_DIR:
            ov.rules_dir = optarg;
            break;
        case OPT_TLS_CERT:
            ov.tls_cert = optarg;
            break;
        case OPT_TLS_KEY:
            ov.tls_key = optarg;
            break;
        case OPT_TLS_MINT:
            if (ov.ntls_mint == TLS_MAX_MINT_NAMES) {
                fprintf(stderr, "crmgate: at most %d --tls-mint names\n", TLS_MAX_MINT_NAMES);
                return 2;
            }
            ov.tls_mint[ov.ntls_mint++] = optarg;
            break;
        case OPT_FORWARD_LISTEN:
            ov.forward_listen = optarg;
            break;
        case OPT_TRANSPARENT_LISTEN:
            ov.transparent_listen = optarg;
            break;
        case OPT_CA_DIR:
            ov.ca_dir = optarg;
            break;
        case OPT_LOG_LEVEL:
            ov.log_level = optarg;
            break;
        case OPT_ADMIN_SOCKET:
            ov.admin_socket = optarg;
            break;
        case OPT_ADMIN_LISTEN:
            ov.admin_listen = optarg;
            break;
        case OPT_VAULT_KEY:
            ov.vault_key_file = optarg;
            break;
        case OPT_CHECK:
            check = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "crmgate serve: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    main_no_core_dumps();
    cfg = config_load(config_path, &ov, err, sizeof(err));
    if (cfg == NULL) {
        fprintf(stderr, "crmgate: %s\n", err);
        return 1;
    }
    log_set_level(cfg->log_level);
    if (state_dir_prepare(cfg->state_dir, !check) < 0) {
        config_unref(cfg);
        return 1;
    }
    if (check) {
        char vpath[4096];
        if (main_vault_path(cfg, vpath, sizeof(vpath)) == 0) {
            struct vault *v = vault_load(vpath, err, sizeof(err));
            if (v == NULL) {
                fprintf(stderr, "crmgate: %s\n", err);
                config_unref(cfg);
                return 1;
            }
            vault_free(v); /* its format only: whether it is the store's key shows at start */
        }
        config_print(cfg);
        printf("OK\n");
        config_unref(cfg);
        return 0;
    }
    {
        char dbdir[4096];
        struct store_options so = {.dir = dbdir,
                                   .map_bytes = cfg->store_map_bytes,
                                   .max_map_bytes = cfg->store_max_map_bytes};
        struct store *store;
        struct admin *admin;
        snprintf(dbdir, sizeof(dbdir), "%s/db", cfg->state_dir);
        store = store_open(&so, err, sizeof(err));
        if (store == NULL) {
            fprintf(stderr, "crmgate: %s\n", err);
            config_unref(cfg);
            return 1;
        }
        if (main_open_vault(cfg, store) < 0) {
            store_close(store);
            config_unref(cfg);
            return 1;
        }
        if (admin_api_register() < 0 || admin_custody_register(store) < 0) {
            fprintf(stderr, "crmgate: cannot register the admin API's routes\n");
            store_close(store);
            config_unref(cfg);
            custody_shutdown();
            return 1;
        }
        admin = admin_open(cfg, store, err, sizeof(err));
        if (admin == NULL) {
            fprintf(stderr, "crmgate: %s\n", err);
            admin_routes_clear();
            store_close(store);
            config_unref(cfg);
            custody_shutdown();
            libevent_global_shutdown();
            return 1;
        }
        status = server_run(cfg, store, admin, config_path, &ov);
        admin_close(admin); /* it served during the drain; its port goes before the store */
        admin_routes_clear();
        store_close(store);
        custody_shutdown();
        libevent_global_shutdown();
    }
    config_unref(cfg);
    return status;
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : NULL;

    /* A peer that vanished must be an error on write, not a process kill. */
    signal(SIGPIPE, SIG_IGN);
    (void)jsonalloc_install(); /* before any thread: jansson's allocator is process-wide */
    if (cmd == NULL) {
        usage(stderr);
        return 2;
    }
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "policy") == 0)
        return cli_policy(argc - 1, argv + 1);
    if (strcmp(cmd, "ca") == 0)
        return cli_ca(argc - 1, argv + 1);
    if (strcmp(cmd, "token") == 0)
        return cli_token(argc - 1, argv + 1);
    if (strcmp(cmd, "key") == 0 || strcmp(cmd, "integration") == 0 || strcmp(cmd, "vault") == 0)
        return cli_custody(argc - 1, argv + 1);
    if (strcmp(cmd, "dry-run") == 0 || strcmp(cmd, "diffs") == 0 || strcmp(cmd, "stats") == 0)
        return cli_admin(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0)
        return cmd_version();
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "crmgate: unknown command \"%s\" (try crmgate --help)\n", cmd);
    return 2;
}
