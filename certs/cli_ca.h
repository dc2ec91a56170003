/*
 * cli_ca.h - `crmgate ca init|export`: create the per-install CA and print
 * its certificate for clients to trust.
 */
#ifndef CRMGATE_CLI_CA_H
#define CRMGATE_CLI_CA_H

/* argv[0] is "ca"; returns the process exit status (0 ok, 1 failed, 2 usage). */
int cli_ca(int argc, char **argv);

#endif
