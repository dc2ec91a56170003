/*
 * identify.h - who is calling: the SHA-256 fingerprint of the CRM token in
 * Authorization, looked up in the config's registered callers.
 *
 * Tokens are hashed and forgotten; only fingerprints are compared, logged
 * (a 12-digit prefix) or configured.
 */
#ifndef CRMGATE_IDENTIFY_H
#define CRMGATE_IDENTIFY_H

#include <stddef.h>

#include "config.h"
#include "http.h"

/* Lower-case hex SHA-256 of data into out[65]; 0 / -1. */
int identify_fingerprint(const char *data, size_t len, char out[65]);

/*
 * The registered caller for the request's "Authorization: Bearer <token>"
 * (or "OAuth <token>"), or NULL with why set ("no Authorization header",
 * "token not registered (sha256:1a2b3c4d5e6f...)"). fp receives the
 * fingerprint when a token was present, else "".
 */
const struct config_caller *identify_caller(const struct config *cfg,
                                            const struct http_fields *headers, char fp[65],
                                            char *why, size_t whylen);

#endif
