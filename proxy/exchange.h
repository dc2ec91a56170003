/*
 * exchange.h - the request pipeline for one request: route, (later:
 * identify, classify, decide), forward upstream, answer.
 */
#ifndef CRMGATE_EXCHANGE_H
#define CRMGATE_EXCHANGE_H

struct conn;
struct exchange;
struct http_request;
struct worker;

/*
 * Run req from connection c. Either answers at once (through conn_respond
 * or conn_abort) and returns NULL, or returns an exchange that answers
 * later and then frees itself. req stays owned by c.
 */
struct exchange *exchange_start(struct conn *c, struct http_request *req);

/*
 * The connection is going away: never touch it again. A write already at
 * the CRM is not cut: it finishes detached, so its record gets the CRM's
 * outcome (and a draining worker waits for it); so does a commit in
 * flight. Anything else stops and is freed now.
 */
void exchange_cancel(struct exchange *ex);

/* Shutdown past the drain: cut and free w's detached exchanges (their records stay as they are). */
void exchange_abandon_all(struct worker *w);

#endif
