/*
 * cli_policy.h - `crmgate policy check|explain|prompt` and
 * `crmgate token fingerprint`: offline tools that read the same rules and
 * config the daemon uses.
 */
#ifndef CRMGATE_CLI_POLICY_H
#define CRMGATE_CLI_POLICY_H

/* argv[0] is "policy"; returns the process exit status. */
int cli_policy(int argc, char **argv);

/* argv[0] is "token"; returns the process exit status. */
int cli_token(int argc, char **argv);

#endif
