/*
 * cli_admin.h - `crmgate dry-run|diffs|stats`: the commands that use the
 * admin API of a running crmgate (or, for reads, its store directly).
 */
#ifndef CRMGATE_CLI_ADMIN_H
#define CRMGATE_CLI_ADMIN_H

/* argv[0] is "dry-run", "diffs" or "stats"; returns the process exit status. */
int cli_admin(int argc, char **argv);

#endif
