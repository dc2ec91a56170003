/*
 * cli_driver.c - `crmgate ca` without the rest of crmgate, for
 * openssl_check.sh until proxy/main.c dispatches the ca subcommand.
 */
#include <stdio.h>
#include <string.h>

#include "cli_ca.h"

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "ca") != 0) {
        fprintf(stderr, "usage: %s ca init|export|mint ...\n", argv[0]);
        return 2;
    }
    return cli_ca(argc - 1, argv + 1);
}
