/*
 * exchange.h - the request pipeline for one request: route, (later:
 * identify, classify, decide), forward upstream, answer.
 */
#ifndef CRMGATE_EXCHANGE_H
#define CRMGATE_EXCHANGE_H

struct conn;
struct exchange;
struct http_request;

/*
 * Run req from connection c. Either answers at once (through conn_respond
 * or conn_abort) and returns NULL, or returns an exchange that answers
 * later and then frees itself. req stays owned by c.
 */
struct exchange *exchange_start(struct conn *c, struct http_request *req);

/* The connection is going away: stop, free, never touch it again. */
void exchange_cancel(struct exchange *ex);

#endif
