/*
 * ca.c - crmgate's per-install CA: creation with name constraints, loading
 * (own or enterprise CA), export.
 *
 * The name constraints are what make a local MITM CA tolerable: even when an
 * operator trusts it system-wide, or its key leaks, a verifier that honours
 * constraints on the trust anchor (OpenSSL, Go, NSS, BoringSSL) refuses any
 * certificate it signs for a host outside the CRM domains, and for any IP
 * address.
 *
 * How the subtrees are written: RFC 5280 defines a dNSName constraint as
 * "any name built by adding zero or more labels on the left", so the subtree
 * "salesforce.com" permits salesforce.com and every *.salesforce.com, and
 * never "evilsalesforce.com" (OpenSSL's nc_dns() demands a '.' before the
 * matched suffix). A leading dot (".salesforce.com") is not part of RFC 5280
 * for DNS names; OpenSSL and Go read it as "subdomains only", other
 * verifiers (older Apple and Windows stacks) have mishandled it. So a
 * configured ".salesforce.com" is written as the RFC form "salesforce.com":
 * the apex is a Salesforce host too, and every verifier agrees. A DNS subtree
 * cannot pin one exact host: "api.hubapi.com" also permits
 * x.api.hubapi.com; which hosts are actually intercepted is the proxy's
 * allow-list, the constraint is the outer fence.
 *
 * IP addresses: with only DNS subtrees permitted, RFC 5280 leaves other name
 * types unconstrained, so an IP SAN would pass. Excluding 0.0.0.0/0 and ::/0
 * closes that.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "ca_internal.h"

#define CA_VALIDITY_DAYS 3652 /* ten years, leap days included */
#define CA_BACKDATE_SECS 3600 /* clock skew between this host and its clients */
#define CA_SERIAL_BYTES  16
#define CA_MAX_CN_HOSTNAME                                                                         \
    40 /* "crmgate local CA (" + name + ")" stays under the 64-char CN limit */

const char *const certs_ca_default_permitted[] = {
    CERTS_HUBSPOT_DOMAINS,
    CERTS_SALESFORCE_DOMAINS,
};
const size_t certs_ca_default_npermitted =
    sizeof(certs_ca_default_permitted) / sizeof(certs_ca_default_permitted[0]);

void certs_ssl_err(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    char reason[256];

    if (e != 0) {
        ERR_error_string_n(e, reason, sizeof(reason));
        /* A reason cut short is still a reason: truncation is fine here. */
        if (snprintf(err, errlen, "%s (%s)", what, reason) < 0 && errlen > 0)
            err[0] = '\0';
    } else {
        snprintf(err, errlen, "%s", what);
    }
    ERR_clear_error();
}

int certs_dns_name_normalize(const char *in, char *out, size_t outlen, char *err, size_t errlen)
{
    size_t len = strlen(in), label = 0, label_start = 0, i;
    int numeric = 1;

    if (len > 0 && in[len - 1] == '.')
        len--; /* the absolute form names the same host */
    if (len == 0) {
        snprintf(err, errlen, "empty host name");
        return -1;
    }
    if (len > CERTS_MAX_HOST) {
        snprintf(err, errlen, "host name longer than %d characters", CERTS_MAX_HOST);
        return -1;
    }
    if (len >= outlen) {
        snprintf(err, errlen, "host name too long for its buffer");
        return -1;
    }
    for (i = 0; i <= len; i++) {
        unsigned char c = i < len ? (unsigned char)in[i] : '.';

        if (c == '.') {
            if (label == 0) {
                snprintf(err, errlen, "empty label in host name at position %zu", i);
                return -1;
            }
            if (out[label_start] == '-' || out[i - 1] == '-') {
                snprintf(err, errlen, "label \"%.*s\" starts or ends with '-'", (int)label,
                         out + label_start);
                return -1;
            }
            if (i < len) {
                out[i] = '.';
                label = 0;
                label_start = i + 1;
                numeric = 1;
            }
            continue;
        }
        if (c == '*') {
            snprintf(err, errlen, "wildcard host names are not minted");
            return -1;
        }
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
            if (c > 0x20 && c < 0x7f)
                snprintf(err, errlen, "invalid character '%c' in host name at position %zu", c, i);
            else
                snprintf(err, errlen, "invalid byte 0x%02x in host name at position %zu", c, i);
            return -1;
        }
        if (!(c >= '0' && c <= '9'))
            numeric = 0;
        if (++label > 63) {
            snprintf(err, errlen, "label longer than 63 characters in host name");
            return -1;
        }
        out[i] = (char)c;
    }
    /*
     * "1.2.3" or "10.1" are not valid dotted quads for inet_pton() but
     * inet_aton() and URL parsers read them as addresses.
     */
    if (numeric) {
        snprintf(err, errlen, "all-numeric last label: an IP address is not a host name");
        return -1;
    }
    out[len] = '\0';
    return 0;
}

/* A whole-file path "dir/name" in buf, or -1 if it does not fit. */
static int ca_path(char *buf, size_t buflen, const char *dir, const char *name)
{
    int n = snprintf(buf, buflen, "%s/%s", dir, name);

    return n < 0 || (size_t)n >= buflen ? -1 : 0;
}

/* mkdir -p: missing components are created 0750 (the state directory's mode). */
static int ca_mkdirs(const char *dir, char *err, size_t errlen)
{
    char path[PATH_MAX];
    size_t len = strlen(dir);

    if (len == 0 || len >= sizeof(path)) {
        snprintf(err, errlen, "CA directory name is empty or too long");
        return -1;
    }
    memcpy(path, dir, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        path[i] = '\0';
        if (mkdir(path, 0750) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
            return -1;
        }
        path[i] = i < len ? '/' : '\0';
    }
    return 0;
}

int certs_random_serial(X509 *x)
{
    unsigned char b[CA_SERIAL_BYTES];
    BIGNUM *bn = NULL;
    int rc = -1;

    if (RAND_bytes(b, sizeof(b)) != 1)
        goto fail;
    /* Positive (top bit clear) and exactly 16 bytes long (next bit set). */
    b[0] = (unsigned char)((b[0] & 0x7f) | 0x40);
    bn = BN_bin2bn(b, sizeof(b), NULL);
    if (bn == NULL || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL)
        goto fail;
    rc = 0;
fail:
    BN_free(bn);
    return rc;
}

/* "crmgate local CA (<hostname>)", or a random tag when the host name is unusable. */
static void ca_common_name(char *cn, size_t cnlen)
{
    char host[256];
    unsigned char tag[4];
    size_t i, len;

    if (gethostname(host, sizeof(host)) == 0) {
        host[sizeof(host) - 1] = '\0';
        len = strlen(host);
        for (i = 0; i < len; i++) {
            char c = host[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.'))
                break;
        }
        if (len > 0 && len <= CA_MAX_CN_HOSTNAME && i == len) {
            snprintf(cn, cnlen, "crmgate local CA (%.*s)", CA_MAX_CN_HOSTNAME, host);
            return;
        }
    }
    if (RAND_bytes(tag, sizeof(tag)) != 1)
        memset(tag, 0, sizeof(tag));
    snprintf(cn, cnlen, "crmgate local CA (%02x%02x%02x%02x)", tag[0], tag[1], tag[2], tag[3]);
}

static GENERAL_SUBTREE *ca_subtree_dns(const char *name)
{
    GENERAL_SUBTREE *st = GENERAL_SUBTREE_new();
    ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();

    if (st == NULL || ia5 == NULL || !ASN1_STRING_set(ia5, name, (int)strlen(name)))
        goto fail;
    GENERAL_NAME_set0_value(st->base, GEN_DNS, ia5);
    return st;
fail:
    ASN1_IA5STRING_free(ia5);
    GENERAL_SUBTREE_free(st);
    return NULL;
}

/* An iPAddress subtree is address || mask; all zero bytes = every address of that family. */
static GENERAL_SUBTREE *ca_subtree_ip_all(int len)
{
    static const unsigned char zero[32];
    GENERAL_SUBTREE *st = GENERAL_SUBTREE_new();
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();

    if (st == NULL || os == NULL || !ASN1_OCTET_STRING_set(os, zero, len))
        goto fail;
    GENERAL_NAME_set0_value(st->base, GEN_IPADD, os);
    return st;
fail:
    ASN1_OCTET_STRING_free(os);
    GENERAL_SUBTREE_free(st);
    return NULL;
}

static int ca_add_name_constraints(X509 *x, char names[][CERTS_MAX_HOST + 1], size_t n)
{
    NAME_CONSTRAINTS *nc = NAME_CONSTRAINTS_new();
    GENERAL_SUBTREE *st = NULL;
    int rc = -1;

    if (nc == NULL)
        goto fail;
    nc->permittedSubtrees = sk_GENERAL_SUBTREE_new_null();
    nc->excludedSubtrees = sk_GENERAL_SUBTREE_new_null();
    if (nc->permittedSubtrees == NULL || nc->excludedSubtrees == NULL)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        if ((st = ca_subtree_dns(names[i])) == NULL ||
            !sk_GENERAL_SUBTREE_push(nc->permittedSubtrees, st))
            goto fail;
        st = NULL;
    }
    if ((st = ca_subtree_ip_all(8)) == NULL || !sk_GENERAL_SUBTREE_push(nc->excludedSubtrees, st))
        goto fail;
    if ((st = ca_subtree_ip_all(32)) == NULL || !sk_GENERAL_SUBTREE_push(nc->excludedSubtrees, st))
        goto fail;
    st = NULL;
    if (X509_add1_ext_i2d(x, NID_name_constraints, nc, 1, X509V3_ADD_DEFAULT) != 1)
        goto fail;
    rc = 0;
fail:
    GENERAL_SUBTREE_free(st);
    NAME_CONSTRAINTS_free(nc);
    return rc;
}

static int ca_add_ext(X509 *x, X509V3_CTX *v3, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, v3, nid, value);
    int ok = ext != NULL && X509_add_ext(x, ext, -1) == 1;

    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

static X509 *ca_build_cert(EVP_PKEY *key, char names[][CERTS_MAX_HOST + 1], size_t n, time_t now,
                           char *err, size_t errlen)
{
    X509 *x = X509_new();
    X509_NAME *name = NULL;
    X509V3_CTX v3;
    char cn[64];

    if (x == NULL || X509_set_version(x, X509_VERSION_3) != 1 || certs_random_serial(x) != 0)
        goto fail;
    ca_common_name(cn, sizeof(cn));
    name = X509_get_subject_name(x);
    if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"crmgate", -1,
                                    -1, 0) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
                                    0) ||
        X509_set_issuer_name(x, name) != 1)
        goto fail;
    if (X509_time_adj_ex(X509_getm_notBefore(x), 0, -CA_BACKDATE_SECS, &now) == NULL ||
        X509_time_adj_ex(X509_getm_notAfter(x), CA_VALIDITY_DAYS, 0, &now) == NULL ||
        X509_set_pubkey(x, key) != 1)
        goto fail;
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    if (ca_add_ext(x, &v3, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") != 0 ||
        ca_add_ext(x, &v3, NID_key_usage, "critical,keyCertSign,cRLSign") != 0 ||
        ca_add_ext(x, &v3, NID_subject_key_identifier, "hash") != 0 ||
        ca_add_name_constraints(x, names, n) != 0)
        goto fail;
    if (X509_sign(x, key, EVP_sha256()) <= 0)
        goto fail;
    return x;
fail:
    certs_ssl_err(err, errlen, "cannot build the CA certificate");
    X509_free(x);
    return NULL;
}

/*
 * Write one PEM object to a fresh temporary file in dir, mode forced with
 * fchmod so the umask cannot loosen (or over-tighten) it, synced to disk.
 */
static int ca_write_temp(const char *dir, const char *base, mode_t mode, EVP_PKEY *key, X509 *cert,
                         char *tmp, size_t tmplen, char *err, size_t errlen)
{
    char name[64];
    BIO *bio = NULL;
    int fd = -1, ok;

    snprintf(name, sizeof(name), ".%s.XXXXXX", base);
    if (ca_path(tmp, tmplen, dir, name) != 0) {
        snprintf(err, errlen, "CA directory path too long");
        tmp[0] = '\0';
        return -1;
    }
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create a file in %s: %s", dir, strerror(errno));
        tmp[0] = '\0';
        return -1;
    }
    if (fchmod(fd, mode) != 0) {
        snprintf(err, errlen, "cannot chmod %s: %s", tmp, strerror(errno));
        goto fail;
    }
    if ((bio = BIO_new_fd(fd, BIO_NOCLOSE)) == NULL) {
        certs_ssl_err(err, errlen, "out of memory");
        goto fail;
    }
    ok = key != NULL ? PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)
                     : PEM_write_bio_X509(bio, cert);
    if (!ok || BIO_flush(bio) != 1) {
        certs_ssl_err(err, errlen, "cannot write the CA files");
        goto fail;
    }
    if (fsync(fd) != 0) {
        snprintf(err, errlen, "cannot sync %s: %s", tmp, strerror(errno));
        goto fail;
    }
    BIO_free(bio);
    bio = NULL;
    if (close(fd) != 0) {
        fd = -1;
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        goto fail;
    }
    return 0;
fail:
    BIO_free(bio);
    if (fd >= 0)
        close(fd);
    return -1;
}

/* Normalise the configured names into subtrees (leading dot dropped, see top), deduplicated. */
static int ca_permitted_names(const char *const *permitted, size_t n,
                              char names[][CERTS_MAX_HOST + 1], size_t *nnames, char *err,
                              size_t errlen)
{
    char why[128];

    if (permitted == NULL || n == 0) {
        permitted = certs_ca_default_permitted;
        n = certs_ca_default_npermitted;
    }
    if (n > CERTS_CA_MAX_PERMITTED) {
        snprintf(err, errlen, "more than %d permitted names", CERTS_CA_MAX_PERMITTED);
        return -1;
    }
    *nnames = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = permitted[i] != NULL ? permitted[i] : "";
        size_t j;

        if (p[0] == '.')
            p++;
        if (certs_dns_name_normalize(p, names[*nnames], CERTS_MAX_HOST + 1, why, sizeof(why)) !=
            0) {
            snprintf(err, errlen, "permitted name \"%.80s\": %s", permitted[i] ? permitted[i] : "",
                     why);
            return -1;
        }
        /* A single label ("com") would permit a whole TLD: not a CRM domain. */
        if (strchr(names[*nnames], '.') == NULL) {
            snprintf(err, errlen, "permitted name \"%.80s\": a single label is too broad",
                     permitted[i]);
            return -1;
        }
        for (j = 0; j < *nnames; j++)
            if (strcmp(names[j], names[*nnames]) == 0)
                break;
        if (j == *nnames)
            (*nnames)++;
    }
    return 0;
}

int certs_ca_init(const char *dir, const char *const *permitted, size_t n, char *err, size_t errlen)
{
    char(*names)[CERTS_MAX_HOST + 1] = NULL;
    char key_path[PATH_MAX], cert_path[PATH_MAX], key_tmp[PATH_MAX] = "", cert_tmp[PATH_MAX] = "";
    size_t nnames = 0;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    struct stat st;
    int key_linked = 0, rc = -1, dfd;

    names = calloc(CERTS_CA_MAX_PERMITTED, sizeof(*names));
    if (names == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (ca_permitted_names(permitted, n, names, &nnames, err, errlen) != 0)
        goto fail;
    if (ca_path(key_path, sizeof(key_path), dir, CERTS_CA_KEY_FILE) != 0 ||
        ca_path(cert_path, sizeof(cert_path), dir, CERTS_CA_CERT_FILE) != 0) {
        snprintf(err, errlen, "CA directory path too long");
        goto fail;
    }
    if (ca_mkdirs(dir, err, errlen) != 0)
        goto fail;
    /* Checked early for a clear message; link() below is what really refuses to overwrite. */
    if (lstat(key_path, &st) == 0 || lstat(cert_path, &st) == 0) {
        snprintf(err, errlen,
                 "a CA already exists in %s (%s or %s present); refusing to overwrite it: "
                 "move it away first to create a new one",
                 dir, CERTS_CA_KEY_FILE, CERTS_CA_CERT_FILE);
        goto fail;
    }
    if ((key = EVP_EC_gen("P-256")) == NULL) {
        certs_ssl_err(err, errlen, "cannot generate the CA key");
        goto fail;
    }
    if ((cert = ca_build_cert(key, names, nnames, time(NULL), err, errlen)) == NULL)
        goto fail;
    if (ca_write_temp(dir, CERTS_CA_KEY_FILE, 0600, key, NULL, key_tmp, sizeof(key_tmp), err,
                      errlen) != 0 ||
        ca_write_temp(dir, CERTS_CA_CERT_FILE, 0644, NULL, cert, cert_tmp, sizeof(cert_tmp), err,
                      errlen) != 0)
        goto fail;
    /* link() fails with EEXIST where rename() would replace: a racing init cannot be clobbered. */
    if (link(key_tmp, key_path) != 0) {
        snprintf(err, errlen, "cannot create %s: %s%s", key_path, strerror(errno),
                 errno == EEXIST ? " (refusing to overwrite an existing CA)" : "");
        goto fail;
    }
    key_linked = 1;
    if (link(cert_tmp, cert_path) != 0) {
        snprintf(err, errlen, "cannot create %s: %s%s", cert_path, strerror(errno),
                 errno == EEXIST ? " (refusing to overwrite an existing CA)" : "");
        goto fail;
    }
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd); /* best effort: the files themselves are already synced */
        close(dfd);
    }
    rc = 0;
fail:
    if (rc != 0 && key_linked)
        unlink(key_path);
    if (key_tmp[0] != '\0')
        unlink(key_tmp);
    if (cert_tmp[0] != '\0')
        unlink(cert_tmp);
    X509_free(cert);
    EVP_PKEY_free(key);
    free(names);
    return rc;
}

/* Encrypted keys are refused instead of prompting on a terminal from inside a daemon. */
static int ca_no_passphrase_cb(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

static EVP_PKEY *ca_read_key(const char *path, char *err, size_t errlen)
{
    EVP_PKEY *key = NULL;
    struct stat st;
    BIO *bio = NULL;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open CA key %s: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "CA key %s is not a regular file", path);
        goto fail;
    }
    if ((st.st_mode & 0007) != 0) {
        snprintf(err, errlen, "CA key %s is accessible to other users (mode %04o); chmod 0600 it",
                 path, (unsigned)(st.st_mode & 07777));
        goto fail;
    }
    if ((bio = BIO_new_fd(fd, BIO_CLOSE)) == NULL) {
        certs_ssl_err(err, errlen, "out of memory");
        goto fail;
    }
    fd = -1;
    key = PEM_read_bio_PrivateKey(bio, NULL, ca_no_passphrase_cb, NULL);
    if (key == NULL) {
        snprintf(err, errlen, "cannot read CA key %s: not an unencrypted PEM private key", path);
        ERR_clear_error();
    }
fail:
    BIO_free(bio);
    if (fd >= 0)
        close(fd);
    return key;
}

static time_t ca_time(const ASN1_TIME *t)
{
    struct tm tm;

    if (ASN1_TIME_to_tm(t, &tm) != 1)
        return (time_t)-1;
    return timegm(&tm);
}

/* "api.hubapi.com, salesforce.com", for error messages and `crmgate ca init` output. */
static char *ca_describe_permitted(const NAME_CONSTRAINTS *nc)
{
    size_t cap = 64, len = 0;
    char *s = malloc(cap), *grown;
    int n = nc != NULL ? sk_GENERAL_SUBTREE_num(nc->permittedSubtrees) : 0;

    if (s == NULL)
        return NULL;
    s[0] = '\0';
    for (int i = 0; i < n; i++) {
        GENERAL_SUBTREE *st = sk_GENERAL_SUBTREE_value(nc->permittedSubtrees, i);
        const char *v = "(non-DNS name)";
        int vlen = (int)strlen(v);

        if (st->base->type == GEN_DNS) {
            v = (const char *)ASN1_STRING_get0_data(st->base->d.dNSName);
            vlen = ASN1_STRING_length(st->base->d.dNSName);
        }
        if (len + (size_t)vlen + 3 > cap) {
            cap = (len + (size_t)vlen + 3) * 2;
            if ((grown = realloc(s, cap)) == NULL) {
                free(s);
                return NULL;
            }
            s = grown;
        }
        len += (size_t)snprintf(s + len, cap - len, "%s%.*s", len ? ", " : "", vlen, v);
    }
    if (nc == NULL)
        snprintf(s, cap, "any name (no name constraints)");
    else if (len == 0)
        snprintf(s, cap, "no DNS names");
    return s;
}

static STACK_OF(X509) * ca_read_certs(const char *path, X509 **first, char *err, size_t errlen)
{
    STACK_OF(X509) *chain = sk_X509_new_null();
    BIO *bio = BIO_new_file(path, "r");
    X509 *x;

    *first = NULL;
    if (chain == NULL || bio == NULL) {
        if (bio == NULL)
            snprintf(err, errlen, "cannot open CA certificate %s: %s", path, strerror(errno));
        else
            snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if ((*first = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL) {
        certs_ssl_err(err, errlen, "no PEM certificate in the CA certificate file");
        goto fail;
    }
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (!sk_X509_push(chain, x)) {
            X509_free(x);
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
    }
    /* The loop ends at end of file ("no start line") or on a damaged certificate. */
    if (ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE) {
        certs_ssl_err(err, errlen, "damaged certificate after the first in the CA file");
        goto fail;
    }
    ERR_clear_error();
    BIO_free(bio);
    return chain;
fail:
    BIO_free(bio);
    X509_free(*first);
    *first = NULL;
    sk_X509_pop_free(chain, X509_free);
    return NULL;
}

struct certs_ca *certs_ca_load(const char *cert_path, const char *key_path, char *err,
                               size_t errlen)
{
    struct certs_ca *ca = calloc(1, sizeof(*ca));
    const ASN1_OCTET_STRING *skid;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    char why[300];
    uint32_t flags;
    int crit = -1;

    if (ca == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if ((ca->chain = ca_read_certs(cert_path, &ca->cert, why, sizeof(why))) == NULL) {
        snprintf(err, errlen, "%s: %s", cert_path, why);
        goto fail;
    }
    /* Also fills the certificate's extension cache now, before threads share it. */
    flags = X509_get_extension_flags(ca->cert);
    if ((flags & EXFLAG_INVALID) != 0) {
        snprintf(err, errlen, "%s: the certificate has invalid or duplicate extensions", cert_path);
        goto fail;
    }
    if ((flags & EXFLAG_CA) == 0) {
        snprintf(err, errlen, "%s: not a CA certificate (basicConstraints CA:TRUE missing)",
                 cert_path);
        goto fail;
    }
    if ((flags & EXFLAG_KUSAGE) != 0 && (X509_get_key_usage(ca->cert) & KU_KEY_CERT_SIGN) == 0) {
        snprintf(err, errlen, "%s: the CA certificate's keyUsage lacks keyCertSign", cert_path);
        goto fail;
    }
    ca->nc = X509_get_ext_d2i(ca->cert, NID_name_constraints, &crit, NULL);
    if (ca->nc == NULL && crit != -1) {
        snprintf(err, errlen, "%s: unreadable or repeated nameConstraints extension", cert_path);
        goto fail;
    }
    ERR_clear_error();
    ca->not_before = ca_time(X509_get0_notBefore(ca->cert));
    ca->not_after = ca_time(X509_get0_notAfter(ca->cert));
    if (ca->not_before == (time_t)-1 || ca->not_after == (time_t)-1) {
        snprintf(err, errlen, "%s: unreadable validity dates", cert_path);
        goto fail;
    }
    if ((skid = X509_get0_subject_key_id(ca->cert)) != NULL) {
        ca->skid = ASN1_OCTET_STRING_dup(skid);
    } else {
        /* No SKI extension: the RFC 5280 method 1 key id, as "subjectKeyIdentifier=hash" makes. */
        if (!X509_pubkey_digest(ca->cert, EVP_sha1(), digest, &dlen) ||
            (ca->skid = ASN1_OCTET_STRING_new()) == NULL ||
            !ASN1_OCTET_STRING_set(ca->skid, digest, (int)dlen)) {
            certs_ssl_err(err, errlen, "cannot compute the CA key identifier");
            goto fail;
        }
    }
    if (ca->skid == NULL || !X509_digest(ca->cert, EVP_sha256(), ca->fingerprint, &dlen)) {
        certs_ssl_err(err, errlen, "out of memory");
        goto fail;
    }
    if ((ca->permitted_str = ca_describe_permitted(ca->nc)) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (key_path != NULL) {
        if ((ca->key = ca_read_key(key_path, err, errlen)) == NULL)
            goto fail;
        if (X509_check_private_key(ca->cert, ca->key) != 1) {
            ERR_clear_error();
            snprintf(err, errlen, "CA key %s does not match the certificate %s", key_path,
                     cert_path);
            goto fail;
        }
        /* EdDSA signs the message itself and takes no separate digest. */
        ca->md = EVP_PKEY_is_a(ca->key, "ED25519") || EVP_PKEY_is_a(ca->key, "ED448")
                     ? NULL
                     : EVP_sha256();
    }
    return ca;
fail:
    certs_ca_free(ca);
    return NULL;
}

void certs_ca_free(struct certs_ca *ca)
{
    if (ca == NULL)
        return;
    X509_free(ca->cert);
    ca->cert = NULL;
    EVP_PKEY_free(ca->key);
    ca->key = NULL;
    sk_X509_pop_free(ca->chain, X509_free);
    ca->chain = NULL;
    NAME_CONSTRAINTS_free(ca->nc);
    ca->nc = NULL;
    ASN1_OCTET_STRING_free(ca->skid);
    ca->skid = NULL;
    free(ca->permitted_str);
    ca->permitted_str = NULL;
    free(ca);
}

int certs_ca_export(const struct certs_ca *ca, enum certs_format format, FILE *out, char *err,
                    size_t errlen)
{
    int ok;

    if (format == CERTS_FORMAT_DER)
        ok = i2d_X509_fp(out, ca->cert);
    else
        ok = PEM_write_X509(out, ca->cert);
    if (!ok || fflush(out) != 0 || ferror(out)) {
        certs_ssl_err(err, errlen, "cannot write the CA certificate");
        return -1;
    }
    return 0;
}

X509 *certs_ca_cert(const struct certs_ca *ca)
{
    return ca->cert;
}

STACK_OF(X509) * certs_ca_chain(const struct certs_ca *ca)
{
    return ca->chain;
}

int certs_ca_can_sign(const struct certs_ca *ca)
{
    return ca->key != NULL;
}

const unsigned char *certs_ca_fingerprint(const struct certs_ca *ca)
{
    return ca->fingerprint;
}

const char *certs_ca_permitted_str(const struct certs_ca *ca)
{
    return ca->permitted_str;
}
