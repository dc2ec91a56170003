'use strict';
/*
 * Credential custody end to end: agents hold crmgate keys, crmgate injects the right
 * integration's token, refreshes OAuth tokens once for everyone, and no secret leaks.
 *
 *   - a chat key sends its user's token, a workflow key the workspace's, chat_integration
 *     "workspace" switches chat to the workspace's (HubSpot SDK and jsforce, with the key where
 *     a token goes); audit records name the integration
 *   - a chat call from a user without an integration: 403 telling them to connect, nothing sent
 *   - revoked, expired and unknown keys: 403, nothing sent; revocation holds at once
 *   - a token expiring under 20 concurrent calls: exactly one refresh, every call succeeds
 *     with the new token (both CRMs; the fakes 401 an expired token as the CRMs do)
 *   - a 401 despite a fresh token: 403 to the agent, the integration needs attention (admin API,
 *     metric); a refused refresh: 403, audited, needs attention
 *   - the injected token is scrubbed from answers; the agent's own token (pass-through) only
 *     where the workspace allows it
 *   - forward mode: the key in Proxy-Authorization (jsforce with HTTPS_PROXY)
 *   - no token, refresh token, client secret or key in LMDB's files or the log
 *   - a wrong, missing or malformed vault key: the daemon refuses to start, saying which
 */
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync, execFile } = require('node:child_process');
const { Client } = require('@hubspot/api-client');
const jsforce = require('jsforce');
const harness = require('./harness.js');
const util = require('./custody_util.js');

const { cli, ok, newKey, addIntegration, postForm, assertNoSecrets } = util;

const SLOW = Boolean(process.env.CRMGATE_SLOW);
const GATE = harness.crmgateAvailable() ? false : 'crmgate binary not built (make)';
const BIN = harness.crmgateBinary();
const VERSION = '62.0';

const OPEN_ACTIONS = { create: true, update: true, upsert: true, delete: true, associate: true };
const OPEN_CRM = { schema_read: true, objects: { '*': { read: '*', write: '*', actions: OPEN_ACTIONS } } };
const RULES = {
  'acme.json': { workspace: 'acme', hubspot: OPEN_CRM, salesforce: OPEN_CRM },
  'globex.json': { workspace: 'globex', chat_integration: 'workspace', hubspot: OPEN_CRM, salesforce: OPEN_CRM },
  'legacy.json': { workspace: 'legacy', allow_passthrough: true, hubspot: OPEN_CRM, salesforce: OPEN_CRM },
};
const PASSTHROUGH_TOKEN = 'pat-na1-legacy-own-token-0000000000';
const NO_PASS_TOKEN = 'pat-na1-acme-own-token-111111111111';
const SF_PASSTHROUGH_TOKEN = '00DHs0000000001!AQlegacy-own-sf-token';
const SF_NO_PASS_TOKEN = '00DHs0000000001!AQacme-own-sf-token';

function startCustody(opts = {}) {
  return util.startCustody({
    rules: RULES,
    callers: [
      { token_sha256: harness.sha256(PASSTHROUGH_TOKEN), workspace: 'legacy', kind: 'workflow' },
      { token_sha256: harness.sha256(NO_PASS_TOKEN), workspace: 'acme', kind: 'workflow' },
      { token_sha256: harness.sha256(SF_PASSTHROUGH_TOKEN), workspace: 'legacy', kind: 'workflow' },
      { token_sha256: harness.sha256(SF_NO_PASS_TOKEN), workspace: 'acme', kind: 'workflow' },
    ],
    ...opts,
  });
}

const authOf = (r) => r.headers.authorization;

/* Every data call the fake received (not its OAuth endpoints). */
async function dataCalls(fake) {
  return (await fake.requests()).filter((r) => !/oauth/.test(r.path));
}

test('custody: chat key → its user\'s token, workflow key → the workspace\'s, chat_integration "workspace" overrides; audit names the integration', { skip: GATE }, async () => {
  const s = await startCustody();
  try {
    const { fake, gate } = s;
    const created = await fake.seed({
      hubspot: { objects: { contacts: [{ id: '501', properties: { email: 'ada@acme.test', firstname: 'Ada' } }] } },
      salesforce: { objects: { Account: [{ Name: 'Acme Rockets' }] } },
    });
    const acc = (await fake.state()).salesforce.objects.Account.find((a) => a.Name === 'Acme Rockets').Id;
    assert.ok(created);
    addIntegration(gate, ['--workspace', 'acme', '--crm', 'hubspot', '--type', 'private-app'], 'pat-na1-acme-workspace-token\n');
    addIntegration(gate, ['--workspace', 'acme', '--user', 'ana@acme.test', '--crm', 'hubspot', '--type', 'private-app'], { access_token: 'pat-na1-ana-user-token' });
    addIntegration(gate, ['--workspace', 'acme', '--crm', 'salesforce', '--type', 'private-app', '--instance-url', fake.url], '00DHs0000000001!AQsf-workspace-token');
    addIntegration(gate, ['--workspace', 'acme', '--user', 'ana@acme.test', '--crm', 'salesforce', '--type', 'private-app', '--instance-url', fake.url], '00DHs0000000001!AQsf-ana-token');
    addIntegration(gate, ['--workspace', 'globex', '--crm', 'hubspot', '--type', 'private-app'], 'pat-na1-globex-workspace-token');
    addIntegration(gate, ['--workspace', 'globex', '--crm', 'salesforce', '--type', 'private-app', '--instance-url', fake.url], '00DHs0000000001!AQsf-globex-ws');
    const chat = newKey(gate, ['--workspace', 'acme', '--user', 'ana@acme.test', '--kind', 'chat']);
    const wf = newKey(gate, ['--workspace', 'acme', '--kind', 'workflow', '--workflow', 'renewals']);
    const gchat = newKey(gate, ['--workspace', 'globex', '--user', 'ana@acme.test', '--kind', 'chat']);

    const hs = (key) => new Client({ accessToken: key, basePath: `${gate.url}/hubspot` });
    const sf = (key) => new jsforce.Connection({ instanceUrl: `${gate.url}/salesforce`, accessToken: key, version: VERSION });

    for (const [key, want] of [[chat.key, 'pat-na1-ana-user-token'], [wf.key, 'pat-na1-acme-workspace-token'], [gchat.key, 'pat-na1-globex-workspace-token']]) {
      await fake.clearRequests();
      const c = await hs(key).crm.contacts.basicApi.getById('501', ['email']);
      assert.equal(c.properties.email, 'ada@acme.test');
      const calls = await dataCalls(fake);
      assert.equal(calls.length, 1);
      assert.equal(authOf(calls[0]), `Bearer ${want}`, 'the integration\'s token, never the key');
      assert.ok(!JSON.stringify(calls[0]).includes('cgk_'), 'the key never reaches the CRM');
    }
    for (const [key, want] of [[chat.key, '00DHs0000000001!AQsf-ana-token'], [wf.key, '00DHs0000000001!AQsf-workspace-token'], [gchat.key, '00DHs0000000001!AQsf-globex-ws']]) {
      await fake.clearRequests();
      const a = await sf(key).sobject('Account').retrieve(acc);
      assert.equal(a.Name, 'Acme Rockets');
      const calls = await dataCalls(fake);
      assert.equal(calls.length, 1);
      assert.equal(authOf(calls[0]), `Bearer ${want}`);
    }

    /* A write with the chat key: audited with the user's integration and the key's id; a write
     * with the workflow key carries its workflow. */
    await hs(chat.key).crm.contacts.basicApi.update('501', { properties: { firstname: 'Ada L.' } });
    await sf(wf.key).sobject('Account').update({ Id: acc, Name: 'Acme Rockets Inc' });
    const recs = harness.readAuditRaw(gate.stateDir);
    const hsRec = recs.find((r) => r.crm === 'hubspot' && r.verb === 'update');
    assert.deepEqual(hsRec.integration, { scope: 'user', user: 'ana@acme.test', workspace: 'acme' });
    assert.equal(hsRec.key, chat.id);
    assert.equal(hsRec.user, 'ana@acme.test');
    assert.equal(hsRec.kind, 'chat');
    const sfRec = recs.find((r) => r.crm === 'salesforce' && r.verb === 'update');
    assert.deepEqual(sfRec.integration, { scope: 'workspace', workspace: 'acme' });
    assert.equal(sfRec.workflow, 'renewals');
    assert.equal(sfRec.outcome, 'allowed');

    /* A workflow key with another X-Crmgate-Workflow is refused */
    const r = await harness.requestJson(`${gate.url}/hubspot/crm/v3/objects/contacts/501`, { headers: { Authorization: `Bearer ${wf.key}`, 'X-Crmgate-Workflow': 'other' } });
    assert.equal(r.status, 400);
  } finally {
    await s.stop();
  }
});

test('custody: a chat call from a user without an integration gets 403 telling them to connect; nothing reaches the CRM (both CRMs, no fallback)', { skip: GATE }, async () => {
  const s = await startCustody();
  try {
    const { fake, gate } = s;
    addIntegration(gate, ['--workspace', 'acme', '--crm', 'hubspot', '--type', 'private-app'], 'pat-na1-acme-workspace-token');
    addIntegration(gate, ['--workspace', 'acme', '--crm', 'salesforce', '--type', 'private-app', '--instance-url', fake.url], '00DHs0000000001!AQsf-ws');
    const bob = newKey(gate, ['--workspace', 'acme', '--user', 'bob@acme.test', '--kind', 'chat']);
    await fake.clearRequests();
    await assert.rejects(new Client({ accessToken: bob.key, basePath: `${gate.url}/hubspot` }).crm.contacts.basicApi.getPage(), (e) => {
      assert.equal(e.code, 403, JSON.stringify(e.body));
      assert.match(e.body.message, /user bob@acme\.test has not connected their hubspot account/);
      assert.match(e.body.message, /crmgate integration add --workspace acme --user bob@acme\.test --crm hubspot/);
      return true;
    });
    const conn = new jsforce.Connection({ instanceUrl: `${gate.url}/salesforce`, accessToken: bob.key, version: VERSION });
    await assert.rejects(conn.query('SELECT Id FROM Account'), (e) => {
      assert.match(String(e.message), /has not connected their salesforce account/);
      return true;
    });
    /* a write too: refused, and audited as denied */
    await assert.rejects(new Client({ accessToken: bob.key, basePath: `${gate.url}/hubspot` }).crm.contacts.basicApi.update('1', { properties: { firstname: 'X' } }), (e) => e.code === 403);
    assert.deepEqual(await fake.requests(), [], 'nothing reached the CRM, not even with the workspace token');
    const denied = harness.readAuditRaw(gate.stateDir).filter((r) => r.error === 'no_integration');
    assert.equal(denied.length, 1);
    assert.equal(denied[0].outcome, 'denied');
  } finally {
    await s.stop();
  }
});

test('custody: an instance or token URL that only looks like loopback (plain http to localhost.evil..., 127.0.0.1@evil...) or hides its host behind user info is refused; nothing stored', { skip: GATE }, async () => {
  const s = await startCustody();
  try {
    const { fake, gate } = s;
    for (const url of ['http://localhost.evil.example/', 'http://127.0.0.1.nip.io/', 'http://127.0.0.1@evil.example/', 'https://acme.my.salesforce.com@evil.example']) {
      for (const opt of ['--instance-url', '--token-url']) {
        const r = cli(gate, ['integration', 'add', '--workspace', 'acme', '--crm', 'salesforce', '--type', 'private-app', opt, url], '00DHs0000000001!AQsf-never-stored');
        assert.notEqual(r.status, 0, `${opt} ${url} was accepted`);
        assert.match(r.stderr, /must be https:\/\/ URLs \(http:\/\/ only to loopback/, `${opt} ${url}: ${r.stderr}`);
      }
    }
    assert.match(ok(cli(gate, ['integration', 'list']), 'list').stdout, /^(?![\s\S]*salesforce)/, 'nothing stored');
    addIntegration(gate, ['--workspace', 'acme', '--crm', 'salesforce', '--type', 'private-app', '--instance-url', fake.url], '00DHs0000000001!AQsf-loopback');
  } finally {
    await s.stop();
  }
});

test('custody: revoked, expired and unknown keys get 403 in the CRM\'s shape and nothing is forwarded; a revocation holds at once', { skip: GATE }, async () => {
  const s = await startCustody();
  try {
    const { fake, gate } = s;
    addIntegration(gate, ['--workspace', 'acme', '--crm', 'hubspot', '--type', 'private-app'], 'pat-na1-acme-workspace-token');
    addIntegration(gate, ['--workspace', 'acme', '--crm', 'salesforce', '--type', 'private-app', '--instance-url', fake.url], '00DHs0000000001!AQsf-ws');
    const k = newKey(gate, ['--workspace', 'acme', '--kind', 'workflow']);
    const hs = new Client({ accessToken: k.key, basePath: `${gate.url}/hubspot` });
    /* keep-alive: the same connection before and after the revocation */
    await hs.crm.contacts.basicApi.getPage();
    ok(cli(gate, ['key', 'revoke', k.id]), 'revoke');
    await fake.clearRequests();
    await assert.rejects(hs.crm.contacts.basicApi.getPage(), (e) => {
      assert.equal(e.code, 403);
      assert.equal(e.body.status, 'error');
      assert.match(e.body.message, /has been revoked/);
      return true;
    });
    const conn = new jsforce.Connection({ instanceUrl: `${gate.url}/salesforce`, accessToken: k.key, version: VERSION });
    await assert.rejects(conn.query('SELECT Id FROM Account'), (e) => {
      assert.equal(e.errorCode, 'INSUFFICIENT_ACCESS_OR_READONLY');
      assert.match(String(e.message), /revoked/);
      return true;
    });
    const list = JSON.parse(ok(cli(gate, ['key', 'list', '--json']), 'list').stdout);
    assert.equal(list.keys.find((x) => x.id === k.id).state, 'revoked');
    assert.ok(!JSON.stringify(list).includes('cgk_'), 'list never shows a key');

    /* unknown key (well-formed), expired key */
    const unknown = `cgk_${'A'.repeat(43)}`;
    let r = await harness.requestJson(`${gate.url}/hubspot/crm/v3/objects/contacts`, { headers: { Authorization: `Bearer ${unknown}` } });
    assert.equal(r.status, 403);
    assert.match(r.body.message, /not known/);
    const soon = new Date(Date.now() + (SLOW ? 15000 : 1500)).toISOString().replace(/\.\d+Z$/, 'Z');
    const exp = newKey(gate, ['--workspace', 'acme', '--kind', 'workflow', '--expires', soon]);
    for (const deadline = Date.now() + (SLOW ? 40000 : 10000); ; ) {
      r = await harness.requestJson(`${gate.url}/hubspot/crm/v3/objects/contacts`, { headers: { Authorization: `Bearer ${exp.key}` } });
      if (r.status !== 200 || Date.now() > deadline) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    assert.equal(r.status, 403);
    assert.match(r.body.message, /has expired/);
    assert.equal((await fake.requests()).filter((x) => x.headers.authorization === undefined || /cgk_/.test(x.headers.authorization)).length, 0);

    /* bad input to the CLI: clear errors, nothing created */
    let c = cli(gate, ['key', 'create', '--workspace', 'acme', '--kind', 'chat']);
    assert.equal(c.status, 2);
    assert.match(c.stderr, /needs --user/);
    c = cli(gate, ['key', 'create', '--workspace', 'acme', '--kind', 'robot']);
    assert.equal(c.status, 2);
    c = cli(gate, ['key', 'create', '--workspace', 'acme', '--kind', 'workflow', '--expires', '2020-13-01']);
    assert.equal(c.status, 2);
    assert.match(c.stderr, /--expires/);
    c = cli(gate, ['key', 'create', '--workspace', 'acme', '--kind', 'workflow', '--expires', '2020-01-01']);
    assert.equal(c.status, 2);
    assert.match(c.stderr, /future/);
    /* the epoch itself is a past time too, not "no expiry" */
    for (const when of ['1970-01-01', '1970-01-01T00:00:00Z']) {
      c = cli(gate, ['key', 'create', '--workspace', 'acme', '--kind', 'workflow', '--expires', when]);
      assert.equal(c.status, 2, `--expires ${when} made a key: ${c.stdout}`);
      assert.match(c.stderr, /future/);
    }
    c = cli(gate, ['key', 'revoke', 'nothex']);
    assert.equal(c.status, 2);
    c = cli(gate, ['key', 'revoke', '0123456789abcdef']);
    assert.equal(c.status, 2);
    assert.match(c.stderr, /no key/);
    c = cli(gate, ['integration', 'add', '--workspace', 'acme', '--crm', 'hubspot', '--type', 'private-app', 'pat-na1-on-argv']);
    assert.equal(c.status, 2);
    assert.match(c.stderr, /never from the command line/);
    c = cli(gate, ['integration', 'add', '--workspace', 'acme', '--crm', 'zoho', '--type', 'private-app'], 'tok');
    assert.equal(c.status, 2);
    assert.match(c.stderr, /"crm" must be/);
    c = cli(gate, ['integration', 'add', '--workspace', 'acme', '--crm', 'hubspot', '--type', 'oauth'], '{"access_token":"a"}');
    assert.equal(c.status, 2);
    assert.match(c.stderr, /refresh_token/);
    c = cli(gate, ['integration', 'add', '--workspace', 'acme', '--crm', 'salesforce', '--type', 'private-app', '--instance-url', 'http://evil.example'], 'tok');
    assert.equal(c.status, 2);
    assert.match(c.stderr, /https/);
    c = cli(gate, ['integration', 'remove', '--workspace', 'acme', '--crm', 'hubspot', '--user', 'nobody']);
    assert.equal(c.status, 2);
    assert.match(c.stderr, /no such integration/);
    for (const cmd of [['key', '--help'], ['integration', '--help'], ['vault', '--help']]) {
      c = cli(gate, cmd);
      assert.equal(c.status, 0, cmd.join(' '));
      assert.match(c.stdout, /crmgate key create/);
    }
    const ints = JSON.parse(ok(cli(gate, ['integration', 'list', '--json']), 'list').stdout).integrations;
    assert.equal(ints.length, 2, 'the bad adds changed nothing');
    assert.ok(!JSON.stringify(ints).includes('pat-na1'), 'list never shows a token');
  } finally {
    await s.stop();
  }
});

/* Tokens live LIFE_S at the fakes; crmgate refreshes them from DUE_S on (margin LIFE_S - DUE_S).
 * Under valgrind (CRMGATE_SLOW) set-up alone takes seconds: the windows grow with it. */
const LIFE_S = SLOW ? 60 : 10;
const DUE_S = SLOW ? 30 : 4;
/* past a due time measured from before the integration was added (crmgate's clock starts later) */
const SLACK_MS = SLOW ? 5000 : 300;

/* 20 concurrent SDK calls while the token is due: one refresh, every call with the new token. */
async function refreshRun(fake, call, tokenPath, oldToken) {
  await fake.fault({ action: 'latency', ms: 400, match: { path: tokenPath }, count: 1 });
  await fake.clearRequests();
  const results = await Promise.all(Array.from({ length: 20 }, () => call()));
  assert.equal(results.length, 20);
  const log = await fake.requests();
  const refreshes = log.filter((r) => r.path.startsWith(tokenPath.replace(/[\^$]/g, '')));
  assert.equal(refreshes.length, 1, `exactly one refresh for 20 concurrent calls: ${refreshes.length}`);
  assert.match(refreshes[0].body, /grant_type=refresh_token/);
  const data = log.filter((r) => !/oauth/.test(r.path));
  assert.equal(data.length, 20);
  const tokens = new Set(data.map(authOf));
  assert.equal(tokens.size, 1, `every call used the same token: ${[...tokens]}`);
  assert.notEqual([...tokens][0], `Bearer ${oldToken}`, 'the refreshed token, not the old one');
  for (const r of data) assert.equal(r.response.status, 200);
  return { newToken: [...tokens][0].slice(7), refreshBody: refreshes[0].body };
}

test('custody: HubSpot OAuth token expiring under 20 concurrent calls: exactly one refresh (POST /oauth/v1/token), all succeed', { skip: GATE }, async () => {
  const s = await startCustody({ margin: LIFE_S - DUE_S });
  try {
    const { fake, gate } = s;
    await fake.seed({ hubspot: { oauth: { clients: [{ clientId: 'cid-hs-1', clientSecret: 'cs-hs-SECRET-4242' }], expiresIn: LIFE_S },
      objects: { contacts: [{ id: '701', properties: { email: 'x@y.test' } }] } } });
    const first = await postForm(`${fake.url}/oauth/v1/token`,
      'grant_type=authorization_code&code=abc&redirect_uri=http%3A%2F%2Flocalhost&client_id=cid-hs-1&client_secret=cs-hs-SECRET-4242');
    assert.equal(first.status, 200, JSON.stringify(first.body));
    const t0 = Date.now();
    addIntegration(gate, ['--workspace', 'acme', '--crm', 'hubspot', '--type', 'oauth', '--client-id', 'cid-hs-1'],
      { access_token: first.body.access_token, refresh_token: first.body.refresh_token, client_secret: 'cs-hs-SECRET-4242', expires_in: first.body.expires_in });
    const k = newKey(gate, ['--workspace', 'acme', '--kind', 'workflow']);
    const hs = new Client({ accessToken: k.key, basePath: `${gate.url}/hubspot` });
    const call = async () => (await hs.crm.contacts.basicApi.getById('701', ['email'])).properties.email;
    /* fresh: no refresh */
    await fake.clearRequests();
    assert.deepEqual(await Promise.all(Array.from({ length: 5 }, call)), Array(5).fill('x@y.test'));
    assert.equal((await fake.requests()).filter((r) => /oauth/.test(r.path)).length, 0);
    /* due (DUE_S after it was issued): the next 20 concurrent calls share one refresh */
    while (Date.now() - t0 < DUE_S * 1000 + SLACK_MS) await new Promise((r) => setTimeout(r, 50));
    const { newToken, refreshBody } = await refreshRun(fake, call, '^/oauth/v1/token', first.body.access_token);
    assert.match(refreshBody, /client_id=cid-hs-1/);
    assert.match(refreshBody, new RegExp(`refresh_token=${first.body.refresh_token}`));
    /* the old token has expired at the fake by now: the new one keeps working */
    while (Date.now() - t0 < LIFE_S * 1000 + SLACK_MS) await new Promise((r) => setTimeout(r, 50));
    await fake.clearRequests();
    assert.equal(await call(), 'x@y.test');
    const metrics = util.metrics(gate);
    assert.match(metrics, /crmgate_own_upstream_calls_total\{crm="hubspot",purpose="oauth_refresh"\} [1-9]/);
    /* secrets: nowhere in LMDB's files or the log */
    assertNoSecrets(gate, [first.body.access_token, first.body.refresh_token, newToken, 'cs-hs-SECRET-4242', k.key]);
  } finally {
    await s.stop();
  }
});

test('custody: Salesforce OAuth session expiring under 20 concurrent calls: exactly one refresh (/services/oauth2/token), all succeed', { skip: GATE }, async () => {
  const s = await startCustody({ margin: LIFE_S - DUE_S });
  try {
    const { fake, gate } = s;
    await fake.seed({ salesforce: { oauth: { sessionSeconds: LIFE_S, clients: [{ clientId: 'cid-sf-1', clientSecret: 'cs-sf-SECRET-77' }] },
      objects: { Account: [{ Name: 'Initech' }] } } });
    const acc = (await fake.state()).salesforce.objects.Account.find((a) => a.Name === 'Initech').Id;
    const first = await postForm(`${fake.url}/services/oauth2/token`,
      'grant_type=refresh_token&refresh_token=RT-sf-initial-9&client_id=cid-sf-1&client_secret=cs-sf-SECRET-77');
    assert.equal(first.status, 200, JSON.stringify(first.body));
    const t0 = Date.now();
    addIntegration(gate, ['--workspace', 'acme', '--user', 'ana@acme.test', '--crm', 'salesforce', '--type', 'oauth', '--client-id', 'cid-sf-1',
      '--instance-url', first.body.instance_url, '--expires-in', String(LIFE_S)],
    { access_token: first.body.access_token, refresh_token: 'RT-sf-initial-9', client_secret: 'cs-sf-SECRET-77' });
    const k = newKey(gate, ['--workspace', 'acme', '--user', 'ana@acme.test', '--kind', 'chat']);
    const conn = new jsforce.Connection({ instanceUrl: `${gate.url}/salesforce`, accessToken: k.key, version: VERSION });
    const call = async () => (await conn.sobject('Account').retrieve(acc)).Name;
    await fake.clearRequests();
    assert.equal(await call(), 'Initech');
    assert.equal((await fake.requests()).filter((r) => /oauth/.test(r.path)).length, 0);
    while (Date.now() - t0 < DUE_S * 1000 + SLACK_MS) await new Promise((r) => setTimeout(r, 50));
    const { newToken } = await refreshRun(fake, call, '^/services/oauth2/token', first.body.access_token);
    while (Date.now() - t0 < LIFE_S * 1000 + SLACK_MS) await new Promise((r) => setTimeout(r, 50));
    await fake.clearRequests();
    assert.equal(await call(), 'Initech', 'the refreshed session works after the old one expired');
    assertNoSecrets(gate, [first.body.access_token, newToken, 'RT-sf-initial-9', 'cs-sf-SECRET-77', k.key]);
  } finally {
    await s.stop();
  }
});

test('custody: a refused refresh → 403 (not 401), audited, needs attention; a 401 despite a fresh token → 403 and needs attention (admin API + metric)', { skip: GATE }, async () => {
  const s = await startCustody({ margin: 300 });
  try {
    const { fake, gate } = s;
    await fake.seed({ hubspot: { oauth: { clients: [{ clientId: 'cid-hs-2', clientSecret: 'right-secret-1' }] } } });
    /* expires within the margin at once, and the client secret is wrong: the refresh is refused */
    addIntegration(gate, ['--workspace', 'acme', '--crm', 'hubspot', '--type', 'oauth', '--client-id', 'cid-hs-2'],
      { access_token: 'fake-oauth-at-stale', refresh_token: 'fake-oauth-rt-1', client_secret: 'wrong-secret-2', expires_in: 60 });
    addIntegration(gate, ['--workspace', 'acme', '--crm', 'salesforce', '--type', 'private-app', '--instance-url', fake.url], '00DHs0000000001!AQsf-will-be-revoked');
    const k = newKey(gate, ['--workspace', 'acme', '--kind', 'workflow']);
    const hs = new Client({ accessToken: k.key, basePath: `${gate.url}/hubspot` });
    await fake.clearRequests();
    await assert.rejects(hs.crm.contacts.basicApi.getPage(), (e) => {
      assert.equal(e.code, 403, JSON.stringify(e.body));
      assert.match(e.body.message, /refused the refresh/);
      assert.ok(!JSON.stringify(e.body).includes('wrong-secret-2'));
      return true;
    });
    assert.equal((await fake.requests()).filter((r) => !/oauth/.test(r.path)).length, 0, 'no data call with a stale token');
    const audit = harness.readAuditRaw(gate.stateDir).filter((r) => r.verb === 'oauth_refresh');
    assert.equal(audit.length, 1);
    assert.equal(audit[0].outcome, 'upstream_error');
    assert.equal(audit[0].upstream_status, 400);
    assert.deepEqual(audit[0].integration, { scope: 'workspace', workspace: 'acme' });

    /* Salesforce: the token is revoked at the CRM although crmgate holds it fresh */
    await fake.revokeToken('00DHs0000000001!AQsf-will-be-revoked');
    const conn = new jsforce.Connection({ instanceUrl: `${gate.url}/salesforce`, accessToken: k.key, version: VERSION });
    await assert.rejects(conn.query('SELECT Id FROM Account'), (e) => {
      assert.equal(e.errorCode, 'INSUFFICIENT_ACCESS', JSON.stringify(e));
      assert.match(String(e.message), /refused the credentials/);
      return true;
    });
    const deadline = Date.now() + 5000;
    let ints;
    for (;;) {
      ints = JSON.parse(ok(cli(gate, ['integration', 'list', '--json']), 'list').stdout).integrations;
      if (ints.every((i) => i.needs_attention) || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const i of ints) assert.equal(i.needs_attention, true, JSON.stringify(i));
    const metrics = util.metrics(gate);
    assert.match(metrics, /crmgate_integration_needs_attention\{workspace="acme",crm="salesforce",integration="workspace"\} 1/);
    assert.match(metrics, /crmgate_integration_needs_attention\{workspace="acme",crm="hubspot",integration="workspace"\} 1/);
    /* a write whose before-state read is refused (401) with a token crmgate held fresh: 403,
     * audited with the CRM's 401, nothing written */
    addIntegration(gate, ['--workspace', 'acme', '--crm', 'hubspot', '--type', 'private-app'], 'pat-na1-hs-revoked-soon');
    await fake.seed({ hubspot: { objects: { contacts: [{ id: '77', properties: { firstname: 'Before' } }] } } });
    await fake.revokeToken('pat-na1-hs-revoked-soon');
    await fake.clearRequests();
    await assert.rejects(hs.crm.contacts.basicApi.update('77', { properties: { firstname: 'After' } }), (e) => {
      assert.equal(e.code, 403, JSON.stringify(e.body));
      assert.match(e.body.message, /refused the credentials of the workspace integration/);
      return true;
    });
    assert.deepEqual((await fake.requests()).map((r) => r.method), ['GET'], 'only the before-state read reached the CRM');
    assert.equal((await fake.state()).hubspot.objects.contacts.find((c) => c.id === '77').properties.firstname, 'Before');
    const refused = harness.readAuditRaw(gate.stateDir).filter((r) => r.record === '77');
    assert.equal(refused.length, 1);
    assert.equal(refused[0].outcome, 'upstream_error');
    assert.equal(refused[0].upstream_status, 401);
    /* re-adding the integration clears it */
    addIntegration(gate, ['--workspace', 'acme', '--crm', 'salesforce', '--type', 'private-app', '--instance-url', fake.url], '00DHs0000000001!AQsf-new');
    const again = await conn.query('SELECT Id FROM Account');
    assert.equal(again.totalSize, 0);
    const m2 = util.metrics(gate);
    assert.match(m2, /crmgate_integration_needs_attention\{workspace="acme",crm="salesforce",integration="workspace"\} 0/);
  } finally {
    await s.stop();
  }
});

test('custody: a refresh whose record got a needs-attention mark meanwhile (a slower call\'s 401 with the old token) still stores the new tokens, and the waiting call uses them', { skip: GATE }, async () => {
  const s = await startCustody();
  try {
    const { fake, gate } = s;
    await fake.seed({ hubspot: { oauth: { clients: [{ clientId: 'cid-hs-race', clientSecret: 'cs-hs-race-SECRET' }], expiresIn: 3600 },
      objects: { contacts: [{ id: '801', properties: { email: 'r@y.test' } }] } } });
    const first = await postForm(`${fake.url}/oauth/v1/token`,
      'grant_type=authorization_code&code=abc&redirect_uri=http%3A%2F%2Flocalhost&client_id=cid-hs-race&client_secret=cs-hs-race-SECRET');
    assert.equal(first.status, 200, JSON.stringify(first.body));
    addIntegration(gate, ['--workspace', 'acme', '--crm', 'hubspot', '--type', 'oauth', '--client-id', 'cid-hs-race'],
      { access_token: first.body.access_token, refresh_token: first.body.refresh_token, client_secret: 'cs-hs-race-SECRET', expires_in: 3600 });
    const k = newKey(gate, ['--workspace', 'acme', '--kind', 'workflow']);
    const get = () => harness.requestJson(`${gate.url}/hubspot/crm/v3/objects/contacts/801`, { headers: { Authorization: `Bearer ${k.key}` } });
    /* the CRM drops the token crmgate holds fresh; the slow call's 401 lands while the refresh runs */
    await fake.revokeToken(first.body.access_token);
    await fake.fault({ action: 'latency', ms: 4000, match: { path: '^/crm/v3/objects/contacts/801' }, count: 1 });
    await fake.fault({ action: 'latency', ms: 6000, match: { path: '^/oauth/v1/token' }, count: 1 });
    await fake.clearRequests();
    const slow = get();
    const arrived = async (n) => {
      for (const deadline = Date.now() + 10000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 20))) {
        if ((await fake.requests()).length >= n) return;
      }
      throw new Error(`the fake never saw ${n} requests`);
    };
    await arrived(1);
    const marking = await get(); /* 401 at once: 403 to the agent, the integration marked (refresh on next use) */
    assert.equal(marking.status, 403, JSON.stringify(marking.body));
    for (const deadline = Date.now() + 10000; ; await new Promise((r) => setTimeout(r, 20))) {
      const ints = JSON.parse(ok(cli(gate, ['integration', 'list', '--json']), 'list').stdout).integrations;
      if (ints[0].needs_attention) break;
      assert.ok(Date.now() < deadline, 'the 401 marked the integration');
    }
    const waiting = get(); /* starts the refresh and waits for it; the slow call's mark lands meanwhile */
    assert.equal((await slow).status, 403);
    const w = await waiting;
    assert.equal(w.status, 200, `the call that waited for the refresh: ${JSON.stringify(w.body)}`);
    const log = await fake.requests();
    assert.equal(log.filter((r) => /oauth/.test(r.path)).length, 1, 'one refresh');
    const used = log.filter((r) => !/oauth/.test(r.path)).map(authOf);
    const fresh = used[used.length - 1];
    assert.notEqual(fresh, `Bearer ${first.body.access_token}`);
    /* stored: the next call uses the new token without another refresh, and nothing needs attention */
    await fake.clearRequests();
    assert.equal((await get()).status, 200);
    assert.deepEqual((await fake.requests()).map(authOf), [fresh]);
    const ints = JSON.parse(ok(cli(gate, ['integration', 'list', '--json']), 'list').stdout).integrations;
    assert.equal(ints[0].needs_attention, false, JSON.stringify(ints));
  } finally {
    await s.stop();
  }
});

test('custody: odd token endpoint answers: an access token with CR LF in it fails the refresh (502, audited, backs off) and no header of its making reaches the CRM (the admin API refuses such a token too); an absurd expires_in is capped at 10 years, not wrapped', { skip: GATE }, async () => {
  const s = await startCustody();
  try {
    const { fake, gate } = s;
    await fake.seed({ hubspot: { objects: { contacts: [{ id: '901', properties: { email: 'i@y.test' } }] } } });
    addIntegration(gate, ['--workspace', 'acme', '--crm', 'hubspot', '--type', 'oauth', '--client-id', 'cid-inj', '--expires-in', '1'],
      { access_token: 'pat-na1-inj-old', refresh_token: 'rt-inj', client_secret: 'cs-inj-SECRET' });
    const k = newKey(gate, ['--workspace', 'acme', '--kind', 'workflow']);
    await fake.fault({ action: 'status', status: 200, match: { path: '^/oauth/v1/token' }, count: 1,
      body: { access_token: 'pat-na1-inj-new\r\nX-Injected: yes', refresh_token: 'rt-inj-2', expires_in: 3600 } });
    await fake.clearRequests();
    const r = await harness.requestJson(`${gate.url}/hubspot/crm/v3/objects/contacts/901`, { headers: { Authorization: `Bearer ${k.key}` } });
    assert.equal(r.status, 502, JSON.stringify(r.body));
    assert.match(r.body.message, /without a usable access token/);
    const calls = await fake.requests();
    assert.deepEqual(calls.map((c) => c.path), ['/oauth/v1/token'], 'nothing but the refresh reached the CRM');
    assert.ok(calls.every((c) => c.headers['x-injected'] === undefined));
    assert.ok(harness.readAuditRaw(gate.stateDir).some((a) => a.verb === 'oauth_refresh' && a.outcome === 'upstream_error'), 'audited');
    /* the admin API: a token with a control character in it is refused as one with a space is */
    const bad = cli(gate, ['integration', 'add', '--workspace', 'acme', '--crm', 'hubspot', '--type', 'private-app'], JSON.stringify({ access_token: 'pat-na1-x\u000bX-Injected: yes' }));
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /visible ASCII/);
    /* expires_in far past what a long long of milliseconds holds: 10 years at most, never negative */
    await fake.fault({ action: 'status', status: 200, match: { path: '^/oauth/v1/token' }, count: 1,
      body: { access_token: 'pat-na1-inj-newer', refresh_token: 'rt-inj-3', expires_in: 9300000000000000 } });
    /* the failed refresh backs off (custody_backoff.test.js): calls within the wait get 503 */
    const before = Date.now();
    let ok2;
    for (const deadline = Date.now() + 30000; ; await new Promise((r) => setTimeout(r, 100))) {
      ok2 = await harness.requestJson(`${gate.url}/hubspot/crm/v3/objects/contacts/901`, { headers: { Authorization: `Bearer ${k.key}` } });
      if (ok2.status !== 503 || Date.now() > deadline) break;
      assert.equal(ok2.headers['x-crmgate-error'], 'integration_refresh_backoff');
    }
    assert.equal(ok2.status, 200, JSON.stringify(ok2.body));
    const hs = JSON.parse(ok(cli(gate, ['integration', 'list', '--json']), 'list').stdout).integrations.find((i) => i.crm === 'hubspot');
    const tenYears = 10 * 365 * 86400 * 1000;
    assert.ok(hs.expires_ms >= before + tenYears && hs.expires_ms <= Date.now() + tenYears, `expires_ms ${hs.expires_ms}`);
  } finally {
    await s.stop();
  }
});

test('custody: the injected token never reaches the agent (echoed in a body or a header: redacted); pass-through only where allowed', { skip: GATE }, async () => {
  const s = await startCustody();
  try {
    const { fake, gate } = s;
    addIntegration(gate, ['--workspace', 'acme', '--crm', 'hubspot', '--type', 'private-app'], 'pat-na1-echoed-token-xyz');
    const k = newKey(gate, ['--workspace', 'acme', '--kind', 'workflow']);
    await fake.fault({ action: 'status', status: 400, match: { path: '^/crm/v3/objects/contacts' }, count: 1,
      body: { status: 'error', message: 'bad token pat-na1-echoed-token-xyz in request', category: 'VALIDATION_ERROR' } });
    const r = await harness.requestJson(`${gate.url}/hubspot/crm/v3/objects/contacts`, { headers: { Authorization: `Bearer ${k.key}` } });
    assert.equal(r.status, 400);
    assert.ok(!JSON.stringify(r).includes('pat-na1-echoed-token-xyz'), JSON.stringify(r));
    assert.match(r.body.message, /redacted by crmgate/);
    assert.ok(!gate.stderr().includes('pat-na1-echoed-token-xyz'));
    /* echoed in response headers (a Location with the token in it, a custom echo): dropped */
    await fake.fault({ action: 'status', status: 200, match: { path: '^/crm/v3/objects/contacts' }, count: 1,
      body: { results: [] },
      headers: { Location: 'https://api.hubapi.com/x?access_token=pat-na1-echoed-token-xyz', 'X-Echo': 'Bearer pat-na1-echoed-token-xyz', 'X-Other': 'kept' } });
    const h = await harness.requestJson(`${gate.url}/hubspot/crm/v3/objects/contacts`, { headers: { Authorization: `Bearer ${k.key}` } });
    assert.equal(h.status, 200);
    assert.equal(h.headers['x-other'], 'kept');
    assert.equal(h.headers.location, undefined);
    assert.equal(h.headers['x-echo'], undefined);
    assert.ok(!JSON.stringify(h).includes('pat-na1-echoed-token-xyz'), JSON.stringify(h.headers));

    /* pass-through: a registered own token works in a workspace that allows it, not in one that does not */
    await fake.clearRequests();
    const legacy = new Client({ accessToken: PASSTHROUGH_TOKEN, basePath: `${gate.url}/hubspot` });
    await legacy.crm.contacts.basicApi.getPage();
    assert.equal(authOf((await fake.requests())[0]), `Bearer ${PASSTHROUGH_TOKEN}`);
    await fake.clearRequests();
    await assert.rejects(new Client({ accessToken: NO_PASS_TOKEN, basePath: `${gate.url}/hubspot` }).crm.contacts.basicApi.getPage(), (e) => {
      assert.equal(e.code, 403);
      assert.equal(e.body.subCategory, 'crmgate.passthrough_refused');
      assert.match(e.body.message, /allow_passthrough/);
      return true;
    });
    assert.deepEqual(await fake.requests(), []);
  } finally {
    await s.stop();
  }
});

/* The test above for Salesforce (parity): a session id echoed by the CRM, jsforce as the agent. */
test('custody (Salesforce): the injected session id never reaches the agent (echoed in a body or a header: redacted); pass-through only where allowed', { skip: GATE }, async () => {
  const s = await startCustody();
  const SECRET = '00DHs0000000001!AQsf-echoed-token-xyz';
  try {
    const { fake, gate } = s;
    addIntegration(gate, ['--workspace', 'acme', '--crm', 'salesforce', '--type', 'private-app', '--instance-url', fake.url], SECRET);
    const k = newKey(gate, ['--workspace', 'acme', '--kind', 'workflow']);
    const acc = harness.sfId('001', 'Echo', 1);
    const path_ = `/services/data/v${VERSION}/sobjects/Account/${acc}`;
    const conn = (token) => new jsforce.Connection({ instanceUrl: `${gate.url}/salesforce`, accessToken: token, version: VERSION });
    await fake.fault({ action: 'status', status: 400, match: { path: '^/services/data/v[0-9.]+/sobjects/Account/' }, count: 1,
      body: [{ message: `bad session ${SECRET} in request`, errorCode: 'INVALID_FIELD', fields: [] }] });
    let err = null;
    try {
      await conn(k.key).sobject('Account').retrieve(acc, { fields: ['Name'] });
    } catch (e) {
      err = e;
    }
    assert.ok(err, 'the faulted read succeeded');
    assert.equal(err.errorCode, 'INVALID_FIELD');
    assert.ok(!String(err.message).includes(SECRET), err.message);
    assert.match(err.message, /redacted by crmgate/);
    /* echoed in a record and in answer headers: the value redacted, the headers dropped */
    await fake.fault({ action: 'status', status: 200, match: { path: '^/services/data/v[0-9.]+/sobjects/Account/' }, count: 1,
      body: { attributes: { type: 'Account', url: path_ }, Id: acc, Name: `Echo ${SECRET}` },
      headers: { Location: `https://acme.my.salesforce.com/x?sid=${SECRET}`, 'X-Echo': `Bearer ${SECRET}`, 'X-Other': 'kept' } });
    const h = await harness.requestJson(`${gate.url}/salesforce${path_}?fields=Name`, { headers: { Authorization: `Bearer ${k.key}` } });
    assert.equal(h.status, 200, JSON.stringify(h.body));
    assert.equal(h.headers['x-other'], 'kept');
    assert.equal(h.headers.location, undefined);
    assert.equal(h.headers['x-echo'], undefined);
    assert.match(h.body.Name, /redacted by crmgate/);
    assert.ok(!JSON.stringify(h).includes(SECRET), JSON.stringify(h));
    assert.ok(!gate.stderr().includes(SECRET));

    /* pass-through: an own session id works in a workspace that allows it, not in one that does not */
    await fake.seed({ salesforce: { objects: { Account: [{ Id: acc, Name: 'Echo Co' }] } } });
    await fake.clearRequests();
    assert.equal((await conn(SF_PASSTHROUGH_TOKEN).sobject('Account').retrieve(acc, { fields: ['Name'] })).Name, 'Echo Co');
    assert.equal(authOf((await fake.requests())[0]), `Bearer ${SF_PASSTHROUGH_TOKEN}`);
    await fake.clearRequests();
    await assert.rejects(conn(SF_NO_PASS_TOKEN).sobject('Account').retrieve(acc, { fields: ['Name'] }), (e) => {
      assert.equal(e.errorCode, 'INSUFFICIENT_ACCESS_OR_READONLY');
      assert.equal(e.data.crmgateError, 'passthrough_refused');
      assert.match(e.message, /allow_passthrough/);
      return true;
    });
    assert.deepEqual(await fake.requests(), []);
  } finally {
    await s.stop();
  }
});

test('custody: forward mode: jsforce with HTTPS_PROXY carrying the crmgate key (Proxy-Authorization) gets the integration\'s token injected', { skip: GATE }, async () => {
  const s = await startCustody({ forward: true });
  try {
    const { fake, gate } = s;
    await fake.seed({ salesforce: { objects: { Account: [{ Name: 'Hooli' }] } } });
    const acc = (await fake.state()).salesforce.objects.Account.find((a) => a.Name === 'Hooli').Id;
    addIntegration(gate, ['--workspace', 'acme', '--crm', 'salesforce', '--type', 'private-app', '--instance-url', fake.url], '00DHs0000000001!AQsf-forward-ws');
    const k = newKey(gate, ['--workspace', 'acme', '--kind', 'workflow']);
    const script = `
      const jsforce = require('jsforce');
      (async () => {
        const conn = new jsforce.Connection({ instanceUrl: 'https://acme.my.salesforce.com', accessToken: 'not-a-crm-token', version: '${VERSION}' });
        try { const r = await conn.sobject('Account').retrieve('${acc}'); process.stdout.write(JSON.stringify({ ok: r.Name })); }
        catch (e) { process.stdout.write(JSON.stringify({ error: String(e.message), code: e.errorCode })); }
      })();`;
    const run = (proxy) => new Promise((resolve) => {
      const env = { ...process.env, HTTPS_PROXY: proxy, NODE_EXTRA_CA_CERTS: gate.caCert };
      execFile(process.execPath, ['-e', script], { cwd: harness.REPO, env, timeout: 15000 }, (err, stdout, stderr) => resolve({ stdout, stderr }));
    });
    await fake.clearRequests();
    let out = JSON.parse((await run(`http://agent:${k.key}@127.0.0.1:${gate.forwardPort}`)).stdout);
    assert.equal(out.ok, 'Hooli', JSON.stringify(out));
    const calls = await dataCalls(fake);
    assert.equal(calls.length, 1);
    assert.equal(authOf(calls[0]), 'Bearer 00DHs0000000001!AQsf-forward-ws');
    /* revoked: CONNECT is refused */
    ok(cli(gate, ['key', 'revoke', k.id]), 'revoke');
    await fake.clearRequests();
    out = JSON.parse((await run(`http://agent:${k.key}@127.0.0.1:${gate.forwardPort}`)).stdout);
    assert.ok(out.error, JSON.stringify(out));
    assert.deepEqual(await fake.requests(), []);
  } finally {
    await s.stop();
  }
});

test('custody: no token, client secret or key in LMDB\'s files or the log (private-app, both scopes, both CRMs)', { skip: GATE }, async () => {
  const s = await startCustody();
  try {
    const { fake, gate } = s;
    const secrets = ['pat-na1-secret-ws-token-1', 'pat-na1-secret-user-token-2', '00DHs0000000001!AQsecret-sf-3'];
    addIntegration(gate, ['--workspace', 'acme', '--crm', 'hubspot', '--type', 'private-app'], secrets[0]);
    addIntegration(gate, ['--workspace', 'acme', '--user', 'ana@acme.test', '--crm', 'hubspot', '--type', 'private-app'], secrets[1]);
    addIntegration(gate, ['--workspace', 'acme', '--crm', 'salesforce', '--type', 'oauth', '--client-id', 'cid-x', '--instance-url', fake.url, '--expires-in', '7200'],
      { access_token: secrets[2], refresh_token: 'RT-secret-sf-4', client_secret: 'client-secret-sf-5' });
    const chat = newKey(gate, ['--workspace', 'acme', '--user', 'ana@acme.test', '--kind', 'chat']);
    const wf = newKey(gate, ['--workspace', 'acme', '--kind', 'workflow']);
    await fake.seed({ hubspot: { objects: { contacts: [{ id: '9', properties: { firstname: 'A' } }] } } });
    const hs = new Client({ accessToken: chat.key, basePath: `${gate.url}/hubspot` });
    await hs.crm.contacts.basicApi.update('9', { properties: { firstname: 'B' } });
    await new jsforce.Connection({ instanceUrl: `${gate.url}/salesforce`, accessToken: wf.key, version: VERSION }).query('SELECT Id FROM Account');
    assert.ok(harness.readAuditRaw(gate.stateDir).length >= 1);
    assertNoSecrets(gate, [...secrets, 'RT-secret-sf-4', 'client-secret-sf-5', chat.key, wf.key]);
    /* and no core dump can write them to disk: RLIMIT_CORE is 0 from the start */
    assert.match(fs.readFileSync(`/proc/${gate.proc.pid}/limits`, 'utf8'), /^Max core file size\s+0\s+0\s+bytes/m);
  } finally {
    await s.stop();
  }
});

test('custody: a wrong, missing or malformed vault key: the daemon refuses to start and says which', { skip: GATE }, async () => {
  const s = await startCustody();
  let stateDir;
  try {
    addIntegration(s.gate, ['--workspace', 'acme', '--crm', 'hubspot', '--type', 'private-app'], 'pat-na1-sealed-token');
    stateDir = s.gate.stateDir;
  } finally {
    await s.stop();
  }
  const other = path.join(stateDir, 'other.key');
  ok(spawnSync(BIN, ['vault', 'keygen', '--out', other], { encoding: 'utf8' }), 'keygen');
  assert.equal(spawnSync(BIN, ['vault', 'keygen', '--out', other], { encoding: 'utf8' }).status, 1, 'never overwrites a key');
  const serve = (extra, env) => spawnSync(BIN, ['serve', '--listen', '127.0.0.1:0', '--state-dir', stateDir, '--rules-dir', path.join(stateDir, 'rules'), ...extra],
    { encoding: 'utf8', timeout: 10000, env: { ...process.env, ...(env || {}) } });
  let r = serve(['--vault-key', other]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /vault key wrong/);
  r = serve([]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /vault key missing/);
  fs.writeFileSync(path.join(stateDir, 'bad.key'), 'not-hex\n', { mode: 0o600 });
  r = serve(['--vault-key', path.join(stateDir, 'bad.key')]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /bad format/);
  r = spawnSync(BIN, ['serve', '--check', '--state-dir', stateDir, '--rules-dir', path.join(stateDir, 'rules'), '--vault-key', path.join(stateDir, 'bad.key')], { encoding: 'utf8' });
  assert.equal(r.status, 1, 'serve --check reads the key file too');
  assert.match(r.stderr, /bad format/);
  r = serve(['--vault-key', path.join(stateDir, 'absent.key')]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /missing \(no such file\)/);
  /* the right key, but readable by other users: refused as the CA key is, before it is used */
  const open = path.join(stateDir, 'open.key');
  fs.copyFileSync(s.keyFile, open);
  fs.chmodSync(open, 0o644);
  r = serve(['--vault-key', open]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /vault key .*open\.key: accessible to other users \(mode 0644\); chmod 0600 it/);
  fs.chmodSync(open, 0o640);
  r = spawnSync(BIN, ['serve', '--check', '--state-dir', stateDir, '--rules-dir', path.join(stateDir, 'rules'), '--vault-key', open], { encoding: 'utf8' });
  assert.equal(r.status, 0, `group access is the admin's choice: ${r.stderr}`);
  /* systemd LoadCredential=: the wrong key as $CREDENTIALS_DIRECTORY/vault.key is refused too */
  const creds = fs.mkdtempSync(path.join(os.tmpdir(), 'crmgate-creds-'));
  fs.copyFileSync(other, path.join(creds, 'vault.key'));
  r = serve([], { CREDENTIALS_DIRECTORY: creds });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /vault key wrong.*vault\.key/);
  fs.rmSync(creds, { recursive: true, force: true });
});
