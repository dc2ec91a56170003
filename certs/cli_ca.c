/*
 * cli_ca.c - crmgate's CA on the command line.
 *
 *   crmgate ca init [--dir D] [--permit NAME]... [--permit-extra NAME]...
 *   crmgate ca export [--dir D] [--format pem|der]
 *   crmgate ca mint [--dir D] HOST
 *
 * D defaults to $STATE_DIRECTORY/ca (the first directory when systemd passes
 * several) or ./var/ca, beside the rest of crmgate's state. Export reads only
 * ca.pem, so it works for users who may not read the key.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "ca.h"
#include "cli_ca.h"
#include "mint.h"

enum { OPT_DIR = 300, OPT_PERMIT, OPT_PERMIT_EXTRA, OPT_FORMAT };

static const struct option cli_ca_opts[] = {
    {"dir", required_argument, NULL, OPT_DIR},
    {"permit", required_argument, NULL, OPT_PERMIT},
    {"permit-extra", required_argument, NULL, OPT_PERMIT_EXTRA},
    {"format", required_argument, NULL, OPT_FORMAT},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static void cli_ca_usage(FILE *out)
{
    fprintf(out,
            "Usage:\n"
            "  crmgate ca init [--dir D] [--permit NAME]... [--permit-extra NAME]...\n"
            "      create a CA (P-256, 10 years) in D: ca.key (0600) and ca.pem (0644).\n"
            "      Its name constraints permit only the CRM domains: each --permit NAME\n"
            "      (\".salesforce.com\" and \"salesforce.com\" both mean the domain and all its\n"
            "      subdomains), by default api.hubapi.com, api.hubspot.com, .salesforce.com,\n"
            "      .force.com; IP addresses are always excluded. --permit-extra NAME adds NAME\n"
            "      to those (or to the --permit list): the reverse listener's own name, for\n"
            "      serve --tls-mint NAME. Refuses to overwrite a CA.\n"
            "  crmgate ca export [--dir D] [--format pem|der]\n"
            "      write the CA certificate to stdout, for clients to trust\n"
            "  crmgate ca mint [--dir D] HOST\n"
            "      print (PEM) the leaf certificate crmgate would present for HOST, or why it\n"
            "      refuses to mint one; for inspection with openssl x509 / openssl verify\n"
            "\n"
            "D defaults to $STATE_DIRECTORY/ca, or ./var/ca without systemd.\n");
}

static void cli_ca_default_dir(char *dir, size_t dirlen)
{
    const char *sd = getenv("STATE_DIRECTORY");

    if (sd != NULL && sd[0] != '\0')
        snprintf(dir, dirlen, "%.*s/ca", (int)strcspn(sd, ":"), sd);
    else
        snprintf(dir, dirlen, "./var/ca");
}

/* --dir D: a name that does not fit is an error, not a silently different directory. */
static int cli_ca_set_dir(char *dir, size_t dirlen, const char *arg)
{
    if (strlen(arg) >= dirlen) {
        fprintf(stderr, "crmgate ca: --dir name too long\n");
        return -1;
    }
    memcpy(dir, arg, strlen(arg) + 1);
    return 0;
}

/* dir/file in buf; a path that does not fit is an error, not a silently different file. */
static int cli_ca_path(char *buf, size_t buflen, const char *dir, const char *file)
{
    int n = snprintf(buf, buflen, "%s/%s", dir, file);

    if (n < 0 || (size_t)n >= buflen) {
        fprintf(stderr, "crmgate ca: directory name too long\n");
        return -1;
    }
    return 0;
}

static int cli_ca_init(int argc, char **argv)
{
    const char *permit[CERTS_CA_MAX_PERMITTED], *extra[CERTS_CA_MAX_PERMITTED];
    char dir[PATH_MAX], cert_path[PATH_MAX], key_path[PATH_MAX], err[512];
    const unsigned char *fp;
    struct certs_ca *ca = NULL;
    size_t npermit = 0, nextra = 0;
    int ch;

    cli_ca_default_dir(dir, sizeof(dir));
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", cli_ca_opts, NULL)) != -1) {
        switch (ch) {
        case OPT_DIR:
            if (cli_ca_set_dir(dir, sizeof(dir), optarg) < 0)
                return 2;
            break;
        case OPT_PERMIT:
        case OPT_PERMIT_EXTRA:
            if (npermit + nextra == CERTS_CA_MAX_PERMITTED) {
                fprintf(stderr, "crmgate ca init: at most %d permitted names\n",
                        CERTS_CA_MAX_PERMITTED);
                return 2;
            }
            if (ch == OPT_PERMIT)
                permit[npermit++] = optarg;
            else
                extra[nextra++] = optarg;
            break;
        case 'h':
            cli_ca_usage(stdout);
            return 0;
        default:
            cli_ca_usage(stderr);
            return 2;
        }
    }
    /* --permit-extra adds to --permit's list, or to the CRM defaults when there is none. */
    if (nextra > 0 && npermit == 0) {
        if (certs_ca_default_npermitted + nextra > CERTS_CA_MAX_PERMITTED) {
            fprintf(stderr, "crmgate ca init: at most %d permitted names\n",
                    CERTS_CA_MAX_PERMITTED);
            return 2;
        }
        for (size_t i = 0; i < certs_ca_default_npermitted; i++)
            permit[npermit++] = certs_ca_default_permitted[i];
    }
    for (size_t i = 0; i < nextra; i++)
        permit[npermit++] = extra[i];
    if (optind < argc) {
        fprintf(stderr, "crmgate ca init: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    if (certs_ca_init(dir, npermit ? permit : NULL, npermit, err, sizeof(err)) != 0) {
        fprintf(stderr, "crmgate ca init: %s\n", err);
        return 1;
    }
    /* Read it back: what is printed is what a later `serve` will load. */
    if (cli_ca_path(cert_path, sizeof(cert_path), dir, CERTS_CA_CERT_FILE) != 0 ||
        cli_ca_path(key_path, sizeof(key_path), dir, CERTS_CA_KEY_FILE) != 0)
        return 1;
    if ((ca = certs_ca_load(cert_path, key_path, err, sizeof(err))) == NULL) {
        fprintf(stderr, "crmgate ca init: created, but cannot load it back: %s\n", err);
        return 1;
    }
    fp = certs_ca_fingerprint(ca);
    printf("created a crmgate CA in %s\n"
           "  certificate  %s (trust this one: crmgate ca export)\n"
           "  key          %s (mode 0600; under systemd install it as\n"
           "               /etc/credstore/crmgate-ca.key, mode 0600, owner root)\n"
           "  permits      %s (IP addresses excluded)\n"
           "  SHA-256      ",
           dir, cert_path, key_path, certs_ca_permitted_str(ca));
    for (int i = 0; i < 32; i++)
        printf("%02X%s", fp[i], i < 31 ? ":" : "\n");
    certs_ca_free(ca);
    ca = NULL;
    return 0;
}

static int cli_ca_export(int argc, char **argv)
{
    char dir[PATH_MAX], cert_path[PATH_MAX], err[512];
    enum certs_format format = CERTS_FORMAT_PEM;
    struct certs_ca *ca = NULL;
    int ch, rc;

    cli_ca_default_dir(dir, sizeof(dir));
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", cli_ca_opts, NULL)) != -1) {
        switch (ch) {
        case OPT_DIR:
            if (cli_ca_set_dir(dir, sizeof(dir), optarg) < 0)
                return 2;
            break;
        case OPT_FORMAT:
            if (strcmp(optarg, "pem") == 0) {
                format = CERTS_FORMAT_PEM;
            } else if (strcmp(optarg, "der") == 0) {
                format = CERTS_FORMAT_DER;
            } else {
                fprintf(stderr, "crmgate ca export: --format is pem or der, not \"%s\"\n", optarg);
                return 2;
            }
            break;
        case 'h':
            cli_ca_usage(stdout);
            return 0;
        default:
            cli_ca_usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "crmgate ca export: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    if (format == CERTS_FORMAT_DER && isatty(STDOUT_FILENO)) {
        fprintf(stderr, "crmgate ca export: DER is binary; redirect stdout to a file\n");
        return 2;
    }
    if (cli_ca_path(cert_path, sizeof(cert_path), dir, CERTS_CA_CERT_FILE) != 0)
        return 2;
    if ((ca = certs_ca_load(cert_path, NULL, err, sizeof(err))) == NULL) {
        fprintf(stderr, "crmgate ca export: %s (create one with crmgate ca init)\n", err);
        return 1;
    }
    rc = certs_ca_export(ca, format, stdout, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "crmgate ca export: %s\n", err);
    certs_ca_free(ca);
    ca = NULL;
    return rc == 0 ? 0 : 1;
}

static int cli_ca_mint(int argc, char **argv)
{
    char dir[PATH_MAX], cert_path[PATH_MAX], key_path[PATH_MAX], err[512];
    struct certs_ca *ca = NULL;
    EVP_PKEY *key = NULL;
    X509 *leaf = NULL;
    int ch, rc = 1;

    cli_ca_default_dir(dir, sizeof(dir));
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", cli_ca_opts, NULL)) != -1) {
        switch (ch) {
        case OPT_DIR:
            if (cli_ca_set_dir(dir, sizeof(dir), optarg) < 0)
                return 2;
            break;
        case 'h':
            cli_ca_usage(stdout);
            return 0;
        default:
            cli_ca_usage(stderr);
            return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "crmgate ca mint: exactly one HOST expected\n");
        return 2;
    }
    if (cli_ca_path(cert_path, sizeof(cert_path), dir, CERTS_CA_CERT_FILE) != 0 ||
        cli_ca_path(key_path, sizeof(key_path), dir, CERTS_CA_KEY_FILE) != 0)
        return 2;
    if ((ca = certs_ca_load(cert_path, key_path, err, sizeof(err))) == NULL ||
        (key = certs_key_new(err, sizeof(err))) == NULL ||
        (leaf = certs_mint_leaf(ca, argv[optind], time(NULL), key, err, sizeof(err))) == NULL) {
        fprintf(stderr, "crmgate ca mint: %s\n", err);
        goto fail;
    }
    if (!PEM_write_X509(stdout, leaf) || fflush(stdout) != 0) {
        fprintf(stderr, "crmgate ca mint: cannot write the certificate\n");
        goto fail;
    }
    rc = 0;
fail:
    X509_free(leaf);
    EVP_PKEY_free(key);
    certs_ca_free(ca);
    return rc;
}

int cli_ca(int argc, char **argv)
{
    if (argc < 2) {
        cli_ca_usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "init") == 0)
        return cli_ca_init(argc - 1, argv + 1);
    if (strcmp(argv[1], "export") == 0)
        return cli_ca_export(argc - 1, argv + 1);
    if (strcmp(argv[1], "mint") == 0)
        return cli_ca_mint(argc - 1, argv + 1);
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        cli_ca_usage(stdout);
        return 0;
    }
    fprintf(stderr, "crmgate ca: unknown command \"%s\"\n", argv[1]);
    cli_ca_usage(stderr);
    return 2;
}
