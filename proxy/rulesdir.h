/*
 * rulesdir.h - read a rules directory: every *.json directly in it is one
 * workspace (default.json is the "default" workspace); subfolders such as
 * examples/ are not read. The parsing itself is policy/rules.c.
 */
#ifndef CRMGATE_RULESDIR_H
#define CRMGATE_RULESDIR_H

#include <stddef.h>

#include "../policy/rules.h"

/* Load and compile every workspace file; NULL with err naming file and pointer. */
struct rules *rulesdir_load(const char *dir, char *err, size_t errlen);

/* Load and compile the given files (for `crmgate policy check FILES`). */
struct rules *rulesdir_load_files(char *const *files, size_t n, char *err, size_t errlen);

#endif
