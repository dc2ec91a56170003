'use strict';
/*
 * Credential custody: what crmgate does after a refused or failed OAuth refresh, and where it
 * lets a Salesforce token go. Both CRMs (HubSpot and jsforce / raw calls with a crmgate key).
 *
 *   - a refresh that fails (5xx at the token endpoint): 502 for the calls that waited for it,
 *     then back-off: calls get 503 in the CRM's shape with Retry-After, and the token endpoint
 *     hears nothing (its request log); the first call after the wait refreshes again (still
 *     failing: failure 2, a longer wait; recovered: 200 with the new token, the count cleared);
 *     the admin API and the metrics show it; one oauth_refresh audit record per attempt, and a
 *     write refused meanwhile is audited
 *   - a refresh the token endpoint refuses (a wrong client secret: invalid_client,
 *     BAD_CLIENT_SECRET): 403, needs attention, and never again, however long one waits and
 *     across a restart, until an admin stores the integration again; then one refresh and 200
 *   - the token endpoint failing with 503 (HubSpot) or 429 (Salesforce: a rate limit is about
 *     the moment) backs off; a 4xx other than 408/429 is a refusal
 *   - through that outage, a token due for refresh but valid for more than a minute still
 *     serves every call (the one whose refresh failed, and those during the wait); the refresh
 *     is tried again after the wait; but not when an admin removed the integration while the
 *     refresh ran (it hangs until crmgate's timeout): 403 no_integration, nothing sent
 *   - a stored wait further off than refresh_backoff_max_ms from now (the maximum lowered, the
 *     clock set back) is over: the back-off never outlasts its configured maximum
 *   - a token endpoint's error code that echoes the client secret or refresh token is not
 *     quoted (agent, log, the record's clear part); a real code still is
 *   - Salesforce instance URLs: only hosts under vault.salesforce_domains (default
 *     salesforce.com, force.com) or plain http to loopback; an admin's other URL is a 400, a
 *     token endpoint's other instance_url fails the refresh for good and drops its token, and a
 *     stored URL the configured domains no longer cover is refused at use
 *
 * Back-off waits scale with CRMGATE_SLOW (valgrind); every wait polls with a deadline.
 *
 *   CRMGATE_BIN=$PWD/crmgate node --test tests/e2e/custody_backoff.test.js
 */
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { Client } = require('@hubspot/api-client');
const jsforce = require('jsforce');
const harness = require('./harness.js');
const { cli, ok, newKey, addIntegration, integrations, metrics, startCustody, postForm, assertNoSecrets } = require('./custody_util.js');

const SLOW = Boolean(process.env.CRMGATE_SLOW);
const GATE = harness.crmgateAvailable() ? false : 'crmgate binary not built (make)';
const VERSION = '62.0';
/* vault.refresh_backoff_min_ms: the first wait is between half of it and all of it */
const BACKOFF_MS = SLOW ? 15000 : 3000;
const CALLS = 10; /* calls made while backing off */

const OPEN_ACTIONS = { create: true, update: true, upsert: true, delete: true, associate: true };
const OPEN_CRM = { schema_read: true, objects: { '*': { read: '*', write: '*', actions: OPEN_ACTIONS } } };
const RULES = { 'acme.json': { workspace: 'acme', hubspot: OPEN_CRM, salesforce: OPEN_CRM } };

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function start() {
  return startCustody({ rules: RULES, vault: { refresh_backoff_min_ms: BACKOFF_MS, refresh_backoff_max_ms: 8 * BACKOFF_MS } });
}

/*
 * Per CRM: seed the fake's OAuth client, connect a workspace OAuth integration whose access
 * token is due at once (it expires within the 300 s margin), and a workflow key. secret: the
 * client secret crmgate is given (a wrong one makes the token endpoint refuse the refresh).
 */
const CRMS = {
  hubspot: {
    tokenPath: '^/oauth/v1/token',
    secret: 'cs-hs-bo-SECRET-1',
    outage: 503, /* how the token endpoint fails */
    refusal: /BAD_CLIENT_SECRET/,
    async setup({ fake, gate }, secret, expiresIn = 60) {
      await fake.seed({ hubspot: { oauth: { clients: [{ clientId: 'cid-hs-bo', clientSecret: 'cs-hs-bo-SECRET-1' }], expiresIn: 3600 },
        objects: { contacts: [{ id: '701', properties: { email: 'x@y.test', firstname: 'Ann' } }] } } });
      const first = await postForm(`${fake.url}/oauth/v1/token`,
        'grant_type=authorization_code&code=abc&redirect_uri=http%3A%2F%2Flocalhost&client_id=cid-hs-bo&client_secret=cs-hs-bo-SECRET-1');
      assert.equal(first.status, 200, JSON.stringify(first.body));
      const connect = async (cs) => addIntegration(gate, ['--workspace', 'acme', '--crm', 'hubspot', '--type', 'oauth', '--client-id', 'cid-hs-bo'],
        { access_token: first.body.access_token, refresh_token: first.body.refresh_token, client_secret: cs, expires_in: expiresIn });
      await connect(secret);
      const k = newKey(gate, ['--workspace', 'acme', '--kind', 'workflow']);
      const auth = { Authorization: `Bearer ${k.key}` };
      const url = `${gate.url}/hubspot/crm/v3/objects/contacts/701`;
      const hs = new Client({ accessToken: k.key, basePath: `${gate.url}/hubspot` });
      return {
        key: k.key,
        path: '/hubspot/crm/v3/objects/contacts/701',
        secrets: [first.body.access_token, first.body.refresh_token, 'cs-hs-bo-SECRET-1', k.key],
        oldToken: first.body.access_token,
        reconnect: () => connect(CRMS.hubspot.secret),
        read: () => harness.requestJson(url, { headers: auth }),
        write: () => harness.requestJson(url, { method: 'PATCH', headers: auth, body: { properties: { firstname: 'Bea' } } }),
        record: '701',
        /* the SDK sees crmgate's answer as it would the CRM's: an error with the status */
        sdkRead: () => hs.crm.contacts.basicApi.getById('701', ['email']),
        sdkStatus: (e) => e.code,
        errorCode: (body) => body.category,
      };
    },
  },
  salesforce: {
    tokenPath: '^/services/oauth2/token',
    secret: 'cs-sf-bo-SECRET-2',
    outage: 429, /* a rate limit at the token endpoint is about the moment, not the credentials */
    refusal: /invalid_client/,
    async setup({ fake, gate }, secret, expiresIn = 60) {
      await fake.seed({ salesforce: { oauth: { clients: [{ clientId: 'cid-sf-bo', clientSecret: 'cs-sf-bo-SECRET-2' }] },
        objects: { Account: [{ Name: 'Initech' }] } } });
      const acc = (await fake.state()).salesforce.objects.Account.find((a) => a.Name === 'Initech').Id;
      const first = await postForm(`${fake.url}/services/oauth2/token`,
        'grant_type=refresh_token&refresh_token=RT-sf-bo-initial-9&client_id=cid-sf-bo&client_secret=cs-sf-bo-SECRET-2');
      assert.equal(first.status, 200, JSON.stringify(first.body));
      /* through the admin API: due now (60 s), while a refreshed session lasts 2 hours
       * (lifetime_s: Salesforce's answer does not say) */
      const connect = async (cs) => {
        const r = await gate.admin('PUT', '/v1/integrations', { workspace: 'acme', crm: 'salesforce', type: 'oauth', client_id: 'cid-sf-bo',
          instance_url: fake.url, expires_in: expiresIn, lifetime_s: 7200, access_token: first.body.access_token, refresh_token: 'RT-sf-bo-initial-9', client_secret: cs });
        assert.equal(r.status, 201, JSON.stringify(r.body));
      };
      await connect(secret);
      const k = newKey(gate, ['--workspace', 'acme', '--kind', 'workflow']);
      const auth = { Authorization: `Bearer ${k.key}` };
      const url = `${gate.url}/salesforce/services/data/v${VERSION}/sobjects/Account/${acc}`;
      const conn = new jsforce.Connection({ instanceUrl: `${gate.url}/salesforce`, accessToken: k.key, version: VERSION });
      return {
        key: k.key,
        path: `/salesforce/services/data/v${VERSION}/sobjects/Account/${acc}`,
        secrets: [first.body.access_token, 'RT-sf-bo-initial-9', 'cs-sf-bo-SECRET-2', k.key],
        oldToken: first.body.access_token,
        reconnect: () => connect(CRMS.salesforce.secret),
        read: () => harness.requestJson(url, { headers: auth }),
        write: () => harness.requestJson(url, { method: 'PATCH', headers: auth, body: { Name: 'Initrode' } }),
        record: acc,
        /* jsforce retries a 503 by itself (5 times, from 0.5 s doubling): here once is enough;
         * its retries would reach crmgate, never the token endpoint, within the wait */
        sdkRead: () => conn.request({ method: 'GET', url: `/services/data/v${VERSION}/sobjects/Account/${acc}` }, { retry: { maxRetries: 0 } }),
        sdkStatus: (e) => e.errorCode,
        errorCode: (body) => body[0].errorCode,
      };
    },
  },
};

async function tokenCalls(fake, tokenPath) {
  const re = new RegExp(tokenPath);
  return (await fake.requests()).filter((r) => re.test(r.path));
}

async function dataCalls(fake) {
  return (await fake.requests()).filter((r) => !/oauth/.test(r.path));
}

function integrationOf(gate, crm) {
  const found = integrations(gate).find((i) => i.crm === crm);
  assert.ok(found, `no ${crm} integration listed`);
  return found;
}

/* Call until crmgate stops answering 503 (the back-off); every 503 meanwhile is the back-off's. */
async function untilBackoffEnds(c, deadlineMs) {
  for (;;) {
    const r = await c.read();
    if (r.status !== 503) return r;
    assert.equal(r.headers['x-crmgate-error'], 'integration_refresh_backoff', JSON.stringify(r.body));
    assert.ok(Date.now() < deadlineMs, 'the back-off did not end in time');
    await sleep(100);
  }
}

function metric(text, name, labels) {
  const m = new RegExp(`^${name}\\{${labels.replace(/[{}]/g, '\\$&')}\\} (\\d+)$`, 'm').exec(text);
  assert.ok(m, `${name}{${labels}} missing from /metrics`);
  return Number(m[1]);
}

for (const crm of Object.keys(CRMS)) {
  const spec = CRMS[crm];

  test(`custody backoff (${crm}): a failed refresh (${spec.outage} at the token endpoint) backs off: 503 with Retry-After and no token request during the wait, a retry after it, and the first success clears it`, { skip: GATE }, async () => {
    const s = await start();
    try {
      const { fake, gate } = s;
      const c = await spec.setup(s, spec.secret);
      await fake.fault({ action: 'status', status: spec.outage, match: { path: spec.tokenPath }, count: -1,
        body: { error: 'temporarily_unavailable', error_description: 'try later' } });
      await fake.clearRequests();
      const t0 = Date.now();

      /* the call that tried: 502, with when to come back */
      let r = await c.read();
      assert.equal(r.status, 502, JSON.stringify(r.body));
      assert.equal(r.headers['x-crmgate-error'], 'integration_refresh_failed');
      assert.match(JSON.stringify(r.body), new RegExp(`failed the refresh .*\\(status ${spec.outage}, temporarily_unavailable\\); crmgate tries again in \\d+ s \\(failure 1 in a row\\)`));
      const firstRetry = Number(r.headers['retry-after']);
      assert.ok(firstRetry >= 1 && firstRetry <= Math.ceil(BACKOFF_MS / 1000), `Retry-After ${r.headers['retry-after']}`);
      assert.equal((await tokenCalls(fake, spec.tokenPath)).length, 1);
      let integ = integrationOf(gate, crm);
      assert.equal(integ.refresh.state, 'backoff', JSON.stringify(integ));
      assert.equal(integ.refresh.consecutive_failures, 1);
      assert.ok(integ.refresh.next_attempt_ms >= t0 + BACKOFF_MS / 2 - 50 && integ.refresh.next_attempt_ms <= Date.now() + BACKOFF_MS,
        `next attempt ${integ.refresh.next_attempt_ms - t0} ms after the first call`);
      assert.equal(integ.needs_attention, false, 'a failure that may pass needs no admin');
      assert.match(ok(cli(gate, ['integration', 'list']), 'list').stdout, /REFRESH[\s\S]*backoff to 20\d\d-\d\d-\d\dT/);
      const nextAt = integ.refresh.next_attempt_ms;

      /* the wait: every call is answered at once, and the token endpoint hears nothing */
      let made = 0;
      while (made < CALLS && Date.now() < nextAt - 500) {
        r = await c.read();
        assert.equal(r.status, 503, JSON.stringify(r.body));
        assert.equal(r.headers['x-crmgate-error'], 'integration_refresh_backoff');
        assert.equal(c.errorCode(r.body), 'SERVER_UNAVAILABLE', JSON.stringify(r.body));
        const retry = Number(r.headers['retry-after']);
        assert.ok(retry >= 1 && retry <= firstRetry, `Retry-After ${r.headers['retry-after']}`);
        assert.match(JSON.stringify(r.body), /failed the last 1 refresh of the workspace integration of workspace acme; crmgate waits/);
        made++;
      }
      assert.ok(made >= 1, 'no call fitted in the back-off window: the machine is too slow for BACKOFF_MS');
      let w = null;
      let sdkErr = null;
      if (Date.now() < nextAt - 500) {
        w = await c.write();
        await c.sdkRead().then(() => assert.fail('the SDK call succeeded during the back-off'), (e) => { sdkErr = e; });
      }
      assert.equal((await tokenCalls(fake, spec.tokenPath)).length, 1, `${made} calls during the back-off reached the token endpoint`);
      assert.equal((await dataCalls(fake)).length, 0, 'no data call without a token');
      if (w !== null) {
        assert.equal(w.status, 503, JSON.stringify(w.body));
        assert.equal(String(c.sdkStatus(sdkErr)), crm === 'hubspot' ? '503' : 'SERVER_UNAVAILABLE', String(sdkErr));
        /* every write stays auditable: the refused one has its record */
        const rec = harness.readAuditRaw(gate.stateDir).filter((a) => a.record === c.record);
        assert.equal(rec.length, 1, JSON.stringify(rec));
        assert.equal(rec[0].outcome, 'upstream_error');
        assert.equal(rec[0].error, 'integration_refresh_backoff');
      }
      /* one audit record per refresh attempt, not per call */
      assert.equal(harness.readAuditRaw(gate.stateDir).filter((a) => a.verb === 'oauth_refresh').length, 1);
      let m = metrics(gate);
      assert.ok(metric(m, 'crmgate_oauth_refresh_backoff_total', `crm="${crm}",reason="backoff"`) >= made);
      assert.equal(metric(m, 'crmgate_integration_refresh_failures', `workspace="acme",crm="${crm}",integration="workspace"`), 1);

      /* after the wait, still failing: 10 calls at once share one more try (502 for those that
       * waited for it, 503 for any that came after it failed), and the wait grows */
      await sleep(Math.max(0, nextAt - Date.now() + 50));
      const burst = await Promise.all(Array.from({ length: 10 }, () => c.read()));
      assert.deepEqual([...new Set(burst.map((b) => b.status))].filter((st) => st !== 502 && st !== 503), [], JSON.stringify(burst.map((b) => b.body)));
      assert.ok(burst.some((b) => b.status === 502), 'one of them tried');
      assert.equal((await tokenCalls(fake, spec.tokenPath)).length, 2, 'one refresh in flight for the burst');
      integ = integrationOf(gate, crm);
      assert.equal(integ.refresh.consecutive_failures, 2, JSON.stringify(integ));
      assert.equal(integ.refresh.state, 'backoff');
      assert.equal(harness.readAuditRaw(gate.stateDir).filter((a) => a.verb === 'oauth_refresh').length, 2);

      /* the endpoint recovers: the first call after the wait refreshes, and that clears it */
      await fake.clearFaults();
      r = await untilBackoffEnds(c, integ.refresh.next_attempt_ms + 10 * BACKOFF_MS);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal((await tokenCalls(fake, spec.tokenPath)).length, 3);
      const data = await dataCalls(fake);
      assert.equal(data.length, 1);
      assert.notEqual(data[0].headers.authorization, `Bearer ${c.oldToken}`, 'the refreshed token');
      integ = integrationOf(gate, crm);
      assert.deepEqual(integ.refresh, { state: 'ok', consecutive_failures: 0, next_attempt_ms: null });
      m = metrics(gate);
      assert.equal(metric(m, 'crmgate_integration_refresh_failures', `workspace="acme",crm="${crm}",integration="workspace"`), 0);
      r = await c.read();
      assert.equal(r.status, 200);
      assert.equal((await tokenCalls(fake, spec.tokenPath)).length, 3, 'fresh now: no refresh');
      assertNoSecrets(gate, [...c.secrets, data[0].headers.authorization.slice(7)]);
    } finally {
      await s.stop();
    }
  });

  test(`custody backoff (${crm}): through the token endpoint's outage (${spec.outage}), a token still valid for minutes keeps serving: 200 for the call whose refresh failed and during the wait, the token endpoint asked once per wait`, { skip: GATE }, async () => {
    const s = await start();
    try {
      const { fake, gate } = s;
      /* due (within the 300 s margin) but valid for 4 minutes: more than the minute of slack */
      const c = await spec.setup(s, spec.secret, 240);
      await fake.fault({ action: 'status', status: spec.outage, match: { path: spec.tokenPath }, count: -1,
        body: { error: 'temporarily_unavailable', error_description: 'try later' } });
      await fake.clearRequests();

      let r = await c.read();
      assert.equal(r.status, 200, `the call whose refresh failed is served with the token it has: ${JSON.stringify(r.body)}`);
      assert.equal((await tokenCalls(fake, spec.tokenPath)).length, 1);
      let integ = integrationOf(gate, crm);
      assert.equal(integ.refresh.state, 'backoff', JSON.stringify(integ));
      assert.equal(integ.refresh.consecutive_failures, 1);
      const nextAt = integ.refresh.next_attempt_ms;

      let made = 0;
      while (made < CALLS && Date.now() < nextAt - 500) {
        r = await c.read();
        assert.equal(r.status, 200, JSON.stringify(r.body));
        made++;
      }
      assert.ok(made >= 1, 'no call fitted in the back-off window: the machine is too slow for BACKOFF_MS');
      const w = await c.write();
      assert.ok(w.status === 200 || w.status === 204, `a write during the wait: ${w.status} ${JSON.stringify(w.body)}`);
      await c.sdkRead();
      const data = await dataCalls(fake);
      assert.ok(data.length >= made + 3, `every call reached the CRM: ${data.map((d) => `${d.method} ${d.path}`).join(', ')}`);
      assert.ok(data.every((d) => d.headers.authorization === `Bearer ${c.oldToken}`), 'all with the token crmgate held');
      if (Date.now() < nextAt - 200) {
        assert.equal((await tokenCalls(fake, spec.tokenPath)).length, 1, 'the token endpoint hears nothing during the wait');
      }
      const rec = harness.readAuditRaw(gate.stateDir).filter((a) => a.record === c.record && a.verb !== 'oauth_refresh');
      assert.equal(rec.length, 1, JSON.stringify(rec));
      assert.equal(rec[0].outcome, 'allowed');

      /* after the wait, the endpoint back: the next call refreshes, and the new token serves */
      await fake.clearFaults();
      await sleep(Math.max(0, nextAt - Date.now() + 50));
      await fake.clearRequests();
      r = await c.read();
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal((await tokenCalls(fake, spec.tokenPath)).length, 1, 'refreshed after the wait');
      const after = await dataCalls(fake);
      assert.notEqual(after[after.length - 1].headers.authorization, `Bearer ${c.oldToken}`, 'the refreshed token');
      integ = integrationOf(gate, crm);
      assert.deepEqual(integ.refresh, { state: 'ok', consecutive_failures: 0, next_attempt_ms: null });
      assertNoSecrets(gate, [...c.secrets, after[after.length - 1].headers.authorization.slice(7)]);
    } finally {
      await s.stop();
    }
  });

  test(`custody backoff (${crm}): a refused refresh (wrong client secret) is never retried, not even after a restart, until an admin stores the integration again: 403 at once, no token request, needs attention`, { skip: GATE }, async () => {
    const s = await start();
    try {
      const { fake } = s;
      let { gate } = s;
      const c = await spec.setup(s, 'a-wrong-client-secret-77');
      await fake.clearRequests();

      let r = await c.read();
      assert.equal(r.status, 403, JSON.stringify(r.body));
      assert.equal(r.headers['x-crmgate-error'], 'integration_refresh_refused');
      assert.match(JSON.stringify(r.body), /refused the refresh/);
      assert.match(JSON.stringify(r.body), spec.refusal, 'the endpoint\'s error code is named');
      assert.equal(r.headers['retry-after'], undefined, 'waiting does not help: no Retry-After');
      assert.equal((await tokenCalls(fake, spec.tokenPath)).length, 1);
      const integ = integrationOf(gate, crm);
      assert.equal(integ.needs_attention, true);
      assert.match(integ.attention, /refused the refresh/);
      assert.deepEqual(integ.refresh, { state: 'refused', consecutive_failures: 1, next_attempt_ms: null });
      assert.match(ok(cli(gate, ['integration', 'list']), 'list').stdout, /oauth .* refused +the \w+ token endpoint refused the refresh/);

      for (let i = 0; i < CALLS; i++) {
        r = await c.read();
        assert.equal(r.status, 403, JSON.stringify(r.body));
        assert.equal(r.headers['x-crmgate-error'], 'integration_refresh_refused');
        assert.match(JSON.stringify(r.body), /crmgate no longer refreshes the \w+ token of the workspace integration of workspace acme: .*An admin must reconnect it/);
      }
      await assert.rejects(c.sdkRead(), (e) => {
        assert.equal(String(c.sdkStatus(e)), crm === 'hubspot' ? '403' : 'INSUFFICIENT_ACCESS', String(e));
        return true;
      });
      const w = await c.write();
      assert.equal(w.status, 403);
      const rec = harness.readAuditRaw(gate.stateDir).filter((a) => a.record === c.record);
      assert.equal(rec.length, 1);
      assert.equal(rec[0].outcome, 'denied');
      assert.equal(rec[0].error, 'integration_refresh_refused');
      /* longer than any back-off would have lasted: still nothing sent */
      await sleep(BACKOFF_MS + 500);
      r = await c.read();
      assert.equal(r.status, 403);
      assert.equal((await tokenCalls(fake, spec.tokenPath)).length, 1, 'a refused refresh is never retried by itself');
      assert.equal((await dataCalls(fake)).length, 0);
      assert.equal(harness.readAuditRaw(gate.stateDir).filter((a) => a.verb === 'oauth_refresh').length, 1, 'one record for the one attempt');
      const m = metrics(gate);
      assert.ok(metric(m, 'crmgate_oauth_refresh_backoff_total', `crm="${crm}",reason="refused"`) >= CALLS + 2);
      assert.equal(metric(m, 'crmgate_integration_needs_attention', `workspace="acme",crm="${crm}",integration="workspace"`), 1);

      /* the refusal is in the integration's record: a restart does not retry it either */
      await gate.stop();
      s.gate = await harness.startCrmgate({ stateDir: gate.stateDir, upstreams: { hubspot: fake.url, salesforce: fake.url },
        config: JSON.parse(fs.readFileSync(path.join(gate.stateDir, 'config.json'), 'utf8')) });
      r = await harness.requestJson(`${s.gate.url}${c.path}`, { headers: { Authorization: `Bearer ${c.key}` } });
      assert.equal(r.status, 403, JSON.stringify(r.body));
      assert.equal(r.headers['x-crmgate-error'], 'integration_refresh_refused');
      assert.equal((await tokenCalls(fake, spec.tokenPath)).length, 1, 'not retried after a restart');

      /* the admin stores it again with the right secret: one refresh, and it works */
      gate = s.gate;
      await c.reconnect(); /* the same admin socket: the same state directory */
      await fake.clearRequests();
      r = await harness.requestJson(`${gate.url}${c.path}`, { headers: { Authorization: `Bearer ${c.key}` } });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal((await tokenCalls(fake, spec.tokenPath)).length, 1);
      const after = integrationOf(gate, crm);
      assert.equal(after.needs_attention, false);
      assert.deepEqual(after.refresh, { state: 'ok', consecutive_failures: 0, next_attempt_ms: null });
      assertNoSecrets(gate, c.secrets);
    } finally {
      await s.stop();
    }
  });
}

test('custody backoff (salesforce): instance URLs only on Salesforce hosts: an admin\'s other host is a 400, a token endpoint\'s other instance_url fails the refresh for good and its token is dropped', { skip: GATE }, async () => {
  const s = await start();
  try {
    const { fake, gate } = s;
    const add = (url, opt = '--instance-url') => cli(gate, ['integration', 'add', '--workspace', 'acme', '--crm', 'salesforce', '--type', 'private-app', opt, url], '00DHs0000000001!AQsf-instance-check');
    for (const url of ['https://evil.example', 'https://acme.my.salesforce.com.evil.example', 'https://evilsalesforce.com',
      'https://127.0.0.1:8443', 'https://acme.my.salesforce.com@evil.example', 'https://evil%2eexample.salesforce.com']) {
      const r = add(url);
      assert.equal(r.status, 2, `${url}: ${r.stderr}`);
      assert.match(r.stderr, /must be on a Salesforce host, under salesforce\.com, force\.com \(vault\.salesforce_domains\)|https:\/\/ URLs/, url);
    }
    const tokenUrl = add('https://evil.example/services/oauth2/token', '--token-url');
    assert.equal(tokenUrl.status, 2, 'the token URL gets the refresh token and client secret: the same rule');
    assert.equal(integrations(gate).length, 0, 'nothing was stored');
    ok(add('https://acme.my.salesforce.com'), 'a My Domain URL');
    ok(add('https://acme--dev.sandbox.my.salesforce.com'), 'a sandbox URL');
    ok(cli(gate, ['integration', 'remove', '--workspace', 'acme', '--crm', 'salesforce']), 'remove');

    /* the token endpoint names another host: the refresh fails for good, its token goes nowhere */
    const c = await CRMS.salesforce.setup(s, CRMS.salesforce.secret);
    const evilToken = '00DHs0000000001!AQevil-instance-new-token-4711';
    await fake.fault({ action: 'status', status: 200, match: { path: '^/services/oauth2/token' }, count: 1,
      body: { access_token: evilToken, instance_url: 'https://sf.evil.example', token_type: 'Bearer', issued_at: String(Date.now()) } });
    await fake.clearRequests();
    let r = await c.read();
    assert.equal(r.status, 403, JSON.stringify(r.body));
    assert.equal(r.headers['x-crmgate-error'], 'integration_refresh_refused');
    assert.match(r.body[0].message, /instance_url outside the Salesforce domains/);
    assert.equal((await dataCalls(fake)).length, 0);
    const integ = integrationOf(gate, 'salesforce');
    assert.equal(integ.needs_attention, true);
    assert.equal(integ.refresh.state, 'refused');
    r = await c.read();
    assert.equal(r.status, 403);
    assert.equal((await tokenCalls(fake, '^/services/oauth2/token')).length, 1, 'not retried');
    assert.match(gate.stderr(), /instance_url outside the Salesforce domains/);
    assertNoSecrets(gate, [evilToken, ...c.secrets]);
  } finally {
    await s.stop();
  }
});

/* s's crmgate stopped and started again on its store and vault key, with more vault settings. */
async function restartNarrowed(s, crm, vault) {
  const stateDir = s.gate.stateDir;
  await s.gate.stop();
  return harness.startCrmgate({ stateDir, upstreams: { [crm]: s.fake.url },
    config: { rules_dir: path.join(stateDir, 'rules'), callers: [], vault: { key_file: s.keyFile, ...vault } } });
}

test('custody backoff (salesforce): a stored instance URL that vault.salesforce_domains no longer covers is refused at use, and nothing is sent', { skip: GATE }, async () => {
  const s = await startCustody({ rules: RULES, vault: { salesforce_domains: ['salesforce.com', 'crmgate-test.invalid'] } });
  let gate2;
  try {
    addIntegration(s.gate, ['--workspace', 'acme', '--crm', 'salesforce', '--type', 'private-app', '--instance-url', 'https://acme.crmgate-test.invalid'],
      '00DHs0000000001!AQsf-domain-narrowed');
    const k = newKey(s.gate, ['--workspace', 'acme', '--kind', 'workflow']);
    /* the same store and key, the domains narrowed: the stored URL is no longer a Salesforce host */
    gate2 = await restartNarrowed(s, 'salesforce', { salesforce_domains: ['salesforce.com'] });
    await s.fake.clearRequests();
    const conn = new jsforce.Connection({ instanceUrl: `${gate2.url}/salesforce`, accessToken: k.key, version: VERSION });
    await assert.rejects(conn.query('SELECT Id FROM Account'), (e) => {
      assert.equal(e.errorCode, 'INSUFFICIENT_ACCESS', String(e));
      assert.match(String(e.message), /not on a Salesforce host/);
      return true;
    });
    assert.deepEqual(await s.fake.requests(), [], 'nothing sent, not even to the configured upstream');
    assert.ok(!gate2.stderr().includes('AQsf-domain-narrowed'));
  } finally {
    if (gate2) await gate2.stop();
    await s.fake.stop();
  }
});

test('custody backoff (hubspot): token URLs only on HubSpot hosts (vault.hubspot_domains): an admin\'s other host is a 400, and a stored one the domains no longer cover is refused at use, nothing sent', { skip: GATE }, async () => {
  const s = await startCustody({ rules: RULES, vault: { hubspot_domains: ['api.hubapi.com', 'crmgate-test.invalid'] } });
  let gate2;
  try {
    const base = { workspace: 'acme', crm: 'hubspot', type: 'oauth', client_id: 'cid-hs-dom', client_secret: 'cs-hs-dom-SECRET-5',
      access_token: 'hs-access-dom-1', refresh_token: 'hs-refresh-dom-1', expires_in: 60 };
    for (const tokenUrl of ['https://evil.example/oauth/v1/token', 'https://login.salesforce.com/services/oauth2/token',
      'https://api.hubapi.com.evil.example/oauth/v1/token']) {
      const r = await s.gate.admin('PUT', '/v1/integrations', { ...base, token_url: tokenUrl });
      assert.equal(r.status, 400, `${tokenUrl}: ${JSON.stringify(r.body)}`);
      assert.match(r.body.error.message, /HubSpot integration's "token_url" must be on a HubSpot host, under api\.hubapi\.com, crmgate-test\.invalid \(vault\.hubspot_domains\)/);
    }
    assert.deepEqual(integrations(s.gate), [], 'nothing stored');
    const ok201 = await s.gate.admin('PUT', '/v1/integrations', { ...base, token_url: 'https://auth.crmgate-test.invalid/oauth/v1/token' });
    assert.equal(ok201.status, 201, JSON.stringify(ok201.body));
    const k = newKey(s.gate, ['--workspace', 'acme', '--kind', 'workflow']);
    /* the same store and key, the domains narrowed: the stored token URL is no longer a HubSpot host */
    gate2 = await restartNarrowed(s, 'hubspot', { hubspot_domains: ['api.hubapi.com'] });
    await s.fake.clearRequests();
    const r = await harness.requestJson(`${gate2.url}/hubspot/crm/v3/objects/contacts/701`, { headers: { Authorization: `Bearer ${k.key}` } });
    assert.equal(r.status, 403, JSON.stringify(r.body));
    assert.equal(r.headers['x-crmgate-error'], 'integration_instance_refused');
    assert.match(r.body.message, /token URL of the hubspot workspace integration of workspace acme is not on a HubSpot host \(vault\.hubspot_domains\)/);
    assert.deepEqual(await s.fake.requests(), [], 'nothing sent: no token request, no data call');
    for (const secret of ['cs-hs-dom-SECRET-5', 'hs-refresh-dom-1', 'hs-access-dom-1']) {
      assert.ok(!gate2.stderr().includes(secret), `${secret} in the log`);
      assert.ok(!JSON.stringify(r.body).includes(secret), `${secret} in the answer`);
    }
  } finally {
    if (gate2) await gate2.stop();
    await s.fake.stop();
  }
});

test('custody backoff (hubspot): a stored wait longer than vault.refresh_backoff_max_ms allows from now (the maximum lowered, or the wall clock set back) ends at once: the back-off never outlasts its configured maximum', { skip: GATE }, async () => {
  /* the first failure waits 30 to 60 s */
  const s = await startCustody({ rules: RULES, vault: { refresh_backoff_min_ms: 60000, refresh_backoff_max_ms: 60000 } });
  try {
    const { fake, gate } = s;
    const c = await CRMS.hubspot.setup(s, CRMS.hubspot.secret);
    await fake.fault({ action: 'status', status: 503, match: { path: CRMS.hubspot.tokenPath }, count: -1 });
    let r = await c.read();
    assert.equal(r.status, 502, JSON.stringify(r.body));
    let integ = integrationOf(gate, 'hubspot');
    assert.equal(integ.refresh.state, 'backoff');
    assert.ok(integ.refresh.next_attempt_ms > Date.now() + 20000, JSON.stringify(integ));
    r = await c.read();
    assert.equal(r.status, 503);
    assert.ok(Number(r.headers['retry-after']) > 20, r.headers['retry-after']);

    /* the operator lowers the maximum to 1 s: the 30-60 s wait stored under the old one is
     * longer than any wait crmgate would now set, so it is over */
    await gate.stop();
    const config = JSON.parse(fs.readFileSync(path.join(gate.stateDir, 'config.json'), 'utf8'));
    config.vault.refresh_backoff_min_ms = 1000;
    config.vault.refresh_backoff_max_ms = 1000;
    s.gate = await harness.startCrmgate({ stateDir: gate.stateDir, upstreams: { hubspot: fake.url, salesforce: fake.url }, config });
    await fake.clearFaults();
    await fake.clearRequests();
    integ = integrationOf(s.gate, 'hubspot');
    assert.equal(integ.refresh.state, 'ok', `no wait beyond the configured maximum is shown: ${JSON.stringify(integ)}`);
    const deadline = Date.now() + 10000;
    for (;;) {
      r = await harness.requestJson(`${s.gate.url}${c.path}`, { headers: { Authorization: `Bearer ${c.key}` } });
      if (r.status !== 503 || Date.now() > deadline) break;
      await sleep(100);
    }
    assert.equal(r.status, 200, `still held ${r.headers['retry-after']} s after the maximum was lowered to 1 s: ${JSON.stringify(r.body)}`);
    assert.equal((await tokenCalls(fake, CRMS.hubspot.tokenPath)).length, 1);
    assert.deepEqual(integrationOf(s.gate, 'hubspot').refresh, { state: 'ok', consecutive_failures: 0, next_attempt_ms: null });
  } finally {
    await s.gate.stop();
    await s.fake.stop();
  }
});

test('custody backoff (hubspot): a token endpoint\'s error code that echoes a secret crmgate sent (client secret, refresh token) is not quoted: not to the agent, the log, or the record\'s clear part', { skip: GATE }, async () => {
  const s = await start();
  try {
    const { fake, gate } = s;
    const c = await CRMS.hubspot.setup(s, CRMS.hubspot.secret);
    const rt = c.secrets[1];
    for (const echoed of [CRMS.hubspot.secret, rt]) {
      assert.match(echoed, /^[A-Za-z0-9_.-]{1,64}$/, 'a secret shaped like an error code');
      await c.reconnect();
      await fake.clearFaults();
      await fake.fault({ action: 'status', status: 400, match: { path: CRMS.hubspot.tokenPath }, count: 1,
        body: { status: echoed, message: 'no' } });
      const r = await c.read();
      assert.equal(r.status, 403, JSON.stringify(r.body));
      assert.equal(r.headers['x-crmgate-error'], 'integration_refresh_refused');
      assert.ok(!JSON.stringify(r.body).includes(echoed), `the agent got a secret: ${JSON.stringify(r.body)}`);
      assert.ok(!JSON.stringify(integrationOf(gate, 'hubspot')).includes(echoed), 'the admin API shows a secret');
      const again = await c.read();
      assert.ok(!JSON.stringify(again.body).includes(echoed), `the agent got a secret: ${JSON.stringify(again.body)}`);
    }
    /* and a real error code is still named */
    await c.reconnect();
    await fake.fault({ action: 'status', status: 400, match: { path: CRMS.hubspot.tokenPath }, count: 1,
      body: { status: 'BAD_REFRESH_TOKEN', message: 'missing or unknown refresh token' } });
    const r = await c.read();
    assert.equal(r.status, 403);
    assert.match(JSON.stringify(r.body), /status 400, BAD_REFRESH_TOKEN/);
    assertNoSecrets(gate, c.secrets);
  } finally {
    await s.stop();
  }
});

test('custody backoff (hubspot): a refresh whose connection is reset before an answer is sent once, not again on a new connection (a refresh token may be single-use), and fails as an outage', { skip: GATE }, async () => {
  /* one worker, so the refresh finds the connection the read before it left idle */
  const s = await startCustody({ rules: RULES, workers: 1, vault: { refresh_backoff_min_ms: BACKOFF_MS } });
  try {
    const { fake, gate } = s;
    const c = await CRMS.hubspot.setup(s, CRMS.hubspot.secret, 3600);
    assert.equal((await c.read()).status, 200, 'a token valid for an hour: no refresh yet');
    /* the same tokens, now due: the next call refreshes, on the pooled connection */
    addIntegration(gate, ['--workspace', 'acme', '--crm', 'hubspot', '--type', 'oauth', '--client-id', 'cid-hs-bo'],
      { access_token: c.secrets[0], refresh_token: c.secrets[1], client_secret: CRMS.hubspot.secret, expires_in: 60 });
    await fake.fault({ action: 'reset', match: { path: CRMS.hubspot.tokenPath }, count: 1 });
    await fake.clearRequests();
    const r = await c.read();
    assert.equal(r.status, 502, JSON.stringify(r.body));
    assert.equal(r.headers['x-crmgate-error'], 'integration_refresh_failed');
    /* on a fresh connection curl says "Connection reset by peer"; on a reused one its resend
     * is refused (the body cannot be rewound) and crmgate says why */
    assert.match(r.body.message, /(Connection reset by peer|crmgate does not send the request again \(the other side may have acted on it\)); crmgate tries again in \d+ s/);
    assert.equal((await tokenCalls(fake, CRMS.hubspot.tokenPath)).length, 1, 'the refresh was sent once');
    const integ = integrationOf(gate, 'hubspot');
    assert.equal(integ.refresh.state, 'backoff', JSON.stringify(integ));
    assert.equal(integ.needs_attention, false, 'a reset is an outage, not a refusal');
  } finally {
    await s.stop();
  }
});

test('custody backoff (hubspot): an integration removed while its refresh hangs is not used by the calls that waited for it, though its token would still be valid', { skip: GATE }, async () => {
  /* the token request times out after 3 s: a failure for now, after which a token valid for
   * minutes would serve (main's grace), but the admin removed the integration meanwhile */
  const s = await startCustody({ rules: RULES, vault: { refresh_backoff_min_ms: BACKOFF_MS }, config: { upstream_timeout_ms: 3000 } });
  try {
    const { fake, gate } = s;
    const c = await CRMS.hubspot.setup(s, CRMS.hubspot.secret, 240);
    await fake.fault({ action: 'latency', ms: 8000, match: { path: CRMS.hubspot.tokenPath }, count: 1 });
    await fake.clearRequests();
    const pending = c.read();
    const deadline = Date.now() + 10000;
    while ((await tokenCalls(fake, CRMS.hubspot.tokenPath)).length === 0) {
      assert.ok(Date.now() < deadline, 'the refresh never reached the token endpoint');
      await sleep(50);
    }
    ok(cli(gate, ['integration', 'remove', '--workspace', 'acme', '--crm', 'hubspot']), 'remove');
    const r = await pending;
    assert.equal(r.status, 403, `the removed integration's token was used: ${r.status} ${JSON.stringify(r.body)}`);
    assert.equal(r.headers['x-crmgate-error'], 'no_integration');
    assert.deepEqual((await dataCalls(fake)).map((d) => `${d.method} ${d.path}`), [], 'no call with the removed integration\'s token');

    /* replaced rather than removed (a private app's token, which never expires): the waiting
     * call goes with the new one, never the old */
    await c.reconnect();
    await fake.fault({ action: 'latency', ms: 8000, match: { path: CRMS.hubspot.tokenPath }, count: 1 });
    await fake.clearRequests();
    const pending2 = c.read();
    while ((await tokenCalls(fake, CRMS.hubspot.tokenPath)).length === 0) {
      assert.ok(Date.now() < deadline + 10000, 'the refresh never reached the token endpoint');
      await sleep(50);
    }
    addIntegration(gate, ['--workspace', 'acme', '--crm', 'hubspot', '--type', 'private-app'], 'pat-na1-replaced-TOKEN-0001');
    const r2 = await pending2;
    assert.equal(r2.status, 200, `the replaced integration: ${r2.status} ${JSON.stringify(r2.body)}`);
    assert.deepEqual((await dataCalls(fake)).map((d) => d.headers.authorization), ['Bearer pat-na1-replaced-TOKEN-0001']);
  } finally {
    await s.stop();
  }
});
