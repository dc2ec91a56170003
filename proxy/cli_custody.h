/*
 * cli_custody.h - credential custody commands:
 *
 *   crmgate key create --workspace W [--user U] --kind chat|workflow [--workflow ID]
 *                      [--expires DATE] [--json]
 *   crmgate key list [--workspace W] [--json]
 *   crmgate key revoke ID
 *   crmgate integration add --workspace W [--user U] --crm hubspot|salesforce
 *                      --type private-app|oauth [--client-id ID] [--expires-in S]
 *                      [--instance-url URL] [--token-url URL] [--secrets-file FILE]
 *   crmgate integration list [--workspace W] [--json]
 *   crmgate integration remove --workspace W [--user U] --crm hubspot|salesforce
 *   crmgate vault keygen [--out FILE]
 *
 * key and integration talk to the running daemon's admin API (--socket,
 * --state-dir, --url as the other admin commands). Secrets are read from
 * stdin or --secrets-file, never from the command line, and never printed.
 * Exit status: 0 done, 1 refused or unreachable, 2 bad usage.
 */
#ifndef CRMGATE_CLI_CUSTODY_H
#define CRMGATE_CLI_CUSTODY_H

/* argv[0] is "key", "integration" or "vault". */
int cli_custody(int argc, char **argv);

#endif
