/*
 * admin_api.h - crmgate's own admin endpoints (healthz, metrics,
 * workspaces, audit, stats; admin_api.c lists them).
 */
#ifndef CRMGATE_ADMIN_API_H
#define CRMGATE_ADMIN_API_H

/* Add the endpoints to admin.c's route table. 0, or -1 when the table refuses one. */
int admin_api_register(void);

#endif
