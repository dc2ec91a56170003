'use strict';
/*
 * OAuth token revocations through crmgate (issue 4: "RevOps must see every change an agent
 * makes"): HubSpot DELETE /oauth/v1/refresh-tokens/{token} and POST /oauth/v3/token/revoke,
 * Salesforce POST /services/oauth2/revoke. A revocation can cut off a whole integration, so it
 * is audited as a write, the same way for both CRMs:
 *   - allowed (rules "auth": true): the intent is committed before it is forwarded (seen in
 *     LMDB while the fake holds the request), the outcome with the CRM's status after, and the
 *     answer waits for it; a CRM error is recorded as upstream_error with its status;
 *   - denied (rules without auth, an unknown caller, a request that cannot say which one token
 *     it revokes): recorded as denied, never forwarded;
 *   - dry-run: HubSpot's v1 DELETE is answered 204 as the reference says, the others are
 *     refused (the references give no answer to return), nothing is forwarded;
 *   - a full audit store: 503 in the OAuth error shape, nothing forwarded.
 * A record names the token only as its kind and the first 8 hex digits of its SHA-256
 * ("refresh_token:1a2b3c4d"), never the token: every token used here is checked against the raw
 * LMDB file and crmgate's log, beside the secret sweep (which runs at each stop).
 * The HubSpot SDK sends no Authorization to its OAuth APIs unless told to (defaultHeaders with
 * per-call options): an agent going through crmgate must identify itself, as here; jsforce's
 * revokeToken cannot, so through crmgate it is refused as an unknown caller (and recorded).
 */

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { Client } = require('@hubspot/api-client');
const jsforce = require('jsforce');
const harness = require('./harness.js');

const GATE = harness.crmgateAvailable() ? false : `crmgate binary not built (${harness.crmgateBinary()})`;
const HS_TOKEN = harness.OPEN_TOKENS[1];
const SF_TOKEN = harness.OPEN_TOKENS[3];
const NOAUTH_HS = 'pat-na1-noauth00-0000-0000-0000-000000000042';
const NOAUTH_SF = '00DHs0000000001!AQnoauthtoken42';
const DRY_HS = 'pat-na1-dryrun00-0000-0000-0000-000000000043';
const DRY_SF = '00DHs0000000001!AQdryruntoken43';
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
/* the SDK sends defaultHeaders only with per-call options carrying middleware (13.x) */
const HS_OPTS = { middleware: [], middlewareMergeStrategy: 'append' };
const DEADLINE_MS = process.env.CRMGATE_SLOW ? 60000 : 10000;
const HOLD_MS = process.env.CRMGATE_SLOW ? 20000 : 6000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const NOAUTH_CRM = { schema_read: true, objects: { contacts: { read: '*' }, Account: { read: '*' } } };
const RULES = {
  'e2e-open.json': { workspace: 'e2e-open', hubspot: harness.OPEN_CRM, salesforce: harness.OPEN_CRM },
  'noauth.json': { workspace: 'noauth', hubspot: NOAUTH_CRM, salesforce: NOAUTH_CRM },
  'dry.json': { workspace: 'dry', mode: 'dry_run', hubspot: harness.OPEN_CRM, salesforce: harness.OPEN_CRM },
};
const CALLERS = [
  { token: HS_TOKEN, workspace: 'e2e-open', user: 'ana', kind: 'chat' },
  { token: SF_TOKEN, workspace: 'e2e-open', user: 'ana', kind: 'chat' },
  { token: NOAUTH_HS, workspace: 'noauth' },
  { token: NOAUTH_SF, workspace: 'noauth' },
  { token: DRY_HS, workspace: 'dry' },
  { token: DRY_SF, workspace: 'dry' },
];

let stack;
const tokens = [];

before(async () => {
  if (GATE) return;
  stack = await harness.startStack({ gate: { rules: RULES, callers: CALLERS } });
});

after(async () => {
  if (!stack) return;
  const dir = stack.gate.stateDir;
  await stack.stop(); /* the secret sweep runs here too */
  assertNowhere(dir, '');
});

/* A fresh token in the fake's shape (so the sweep's shapes know it too), remembered as a secret. */
function newToken(kind) {
  const t = `fake-oauth-${kind === 'refresh_token' ? 'rt' : 'at'}-${crypto.randomBytes(20).toString('hex')}`;
  harness.noteSecret(`revoked ${kind}`, t);
  tokens.push(t);
  return t;
}

/* What a revocation's record names: the kind and the first 8 hex digits of the token's SHA-256. */
const fp = (kind, t) => `${kind}:${harness.sha256(t).slice(0, 8)}`;

/* No token used so far (nor its percent-encoding) in LMDB's raw bytes or crmgate's log. */
function assertNowhere(stateDir, log) {
  const db = fs.readFileSync(path.join(stateDir, 'db', 'data.mdb'));
  for (const t of tokens) {
    for (const form of [t, encodeURIComponent(t)]) {
      assert.equal(db.indexOf(form), -1, `a revoked token is in LMDB (${t.slice(0, 16)}...)`);
      assert.ok(!log.includes(form), `a revoked token is in crmgate's log (${t.slice(0, 16)}...)`);
    }
  }
}

const gateReq = (method, p, opts) => harness.rawRequest(stack.gate.port, method, p, opts);
const hsDelete = (t, caller, headers = {}) => gateReq('DELETE', `/hubspot/oauth/v1/refresh-tokens/${encodeURIComponent(t)}`, { token: caller, headers });
const hsRevoke = (t, caller, headers = {}) => gateReq('POST', '/hubspot/oauth/v3/token/revoke', { token: caller, body: `token=${encodeURIComponent(t)}&token_type_hint=refresh_token`, headers: { ...FORM, ...headers } });
const sfRevoke = (t, caller, headers = {}) => gateReq('POST', '/salesforce/services/oauth2/revoke', { token: caller, body: `token=${encodeURIComponent(t)}`, headers: { ...FORM, ...headers } });

/* Every record with this id, read raw (its latest version). */
function recordById(id) {
  return harness.readAuditRaw(stack.gate.stateDir).find((r) => r.id === String(id));
}

/* The records naming this revocation (object "oauth", verb "revoke", record fp). */
function revocations(record) {
  return harness.readAuditRaw(stack.gate.stateDir).filter((r) => r.verb === 'revoke' && r.record === record);
}

/* What the fake received on its OAuth endpoints since the last clear. */
async function oauthCalls() {
  return (await stack.fake.requests()).filter((r) => /oauth/i.test(r.path));
}

function expectRecord(r, want) {
  for (const [k, v] of Object.entries(want)) {
    if (v instanceof RegExp) assert.match(String(r[k]), v, `${k}: ${JSON.stringify(r)}`);
    else assert.deepEqual(r[k], v, `${k}: ${JSON.stringify(r)}`);
  }
}

test('HubSpot SDK revokes a refresh token: the intent is in LMDB before the CRM sees it, the outcome (204) after; the record names no token', { skip: GATE, timeout: 120000 }, async () => {
  const t = newToken('refresh_token');
  await stack.fake.clearRequests();
  /* the fake holds the request this long: time enough to look into LMDB on a loaded machine */
  await stack.fake.fault({ action: 'latency', ms: HOLD_MS, match: { path: '^/oauth/v1/refresh-tokens' }, count: 1 });
  const client = new Client({ accessToken: HS_TOKEN, basePath: stack.hubspotBase, numberOfApiCallRetries: 0,
    defaultHeaders: { Authorization: `Bearer ${HS_TOKEN}`, 'X-Crmgate-Reason': 'offboarding the old integration' } });
  let done = false;
  const revoke = client.oauth.refreshTokensApi.archive(t, HS_OPTS).finally(() => { done = true; });

  /* while the fake holds the request, the intent is already committed */
  const until = Date.now() + DEADLINE_MS;
  while ((await oauthCalls()).length === 0) {
    assert.ok(Date.now() < until, 'the revocation never reached the fake');
    await sleep(20);
  }
  const intent = revocations(fp('refresh_token', t));
  assert.equal(done, false, 'the answer came before the fake answered');
  assert.equal(intent.length, 1, JSON.stringify(intent));
  expectRecord(intent[0], { outcome: 'unknown', upstream_status: null, decision: 'allow' });

  await revoke;
  const calls = await oauthCalls();
  assert.deepEqual(calls.map((c) => [c.method, c.path, c.response && c.response.status]), [['DELETE', `/oauth/v1/refresh-tokens/${t}`, 204]]);
  assert.equal(calls[0].headers['x-crmgate-reason'], undefined, 'context headers are not forwarded');
  const rec = recordById(intent[0].id);
  expectRecord(rec, {
    crm: 'hubspot', object: 'oauth', verb: 'revoke', record: fp('refresh_token', t), fields: [],
    outcome: 'allowed', upstream_status: 204, decision: 'allow', workspace: 'e2e-open', user: 'ana',
    kind: 'chat', reason: 'offboarding the old integration', synthetic: false, rule: /#\/hubspot\/auth$/,
  });
  assert.match(rec.record, /^refresh_token:[0-9a-f]{8}$/);
  /* HubSpot forgot the token: its info is gone */
  const info = await harness.requestJson(`${stack.fake.url}/oauth/v1/refresh-tokens/${t}`);
  assert.equal(info.status, 404);

  /* crmgate diffs reads it plainly: oauth/<kind>:<fingerprint>, [revoke] */
  const args = ['diffs', '--db', stack.gate.stateDir, '--object', 'oauth'];
  const out = spawnSync(harness.crmgateBinary(), args, { encoding: 'utf8', env: { ...process.env, CRMGATE_ADMIN_URL: '', CRMGATE_ADMIN_TOKEN: '' } });
  harness.noteCliSecrets(args, '', out);
  assert.equal(out.status, 0, out.stderr);
  assert.match(out.stdout, new RegExp(`oauth/${fp('refresh_token', t)}\\s+-\\s+\\[revoke\\]\\s+allowed`));
  assertNowhere(stack.gate.stateDir, stack.gate.stderr());
});

test('HubSpot v3 revoke and a second revocation of one token: 200 allowed, then HubSpot\'s 404 recorded as upstream_error; answers wait for the outcome', { skip: GATE }, async () => {
  const t = newToken('token');
  await stack.fake.clearRequests();
  const r = await hsRevoke(t, HS_TOKEN);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers['x-crmgate-decision'], 'allow');
  /* the answer left after the outcome was committed: the record it names is final */
  const rec = recordById(r.headers['x-crmgate-audit-id']);
  expectRecord(rec, { crm: 'hubspot', object: 'oauth', verb: 'revoke', record: fp('token', t), outcome: 'allowed', upstream_status: 200, fields: [] });
  const calls = await oauthCalls();
  assert.equal(calls.length, 1);
  assert.equal(new URLSearchParams(calls[0].body).get('token'), t, 'the form went upstream as sent');

  const rt = newToken('refresh_token');
  const first = await hsDelete(rt, HS_TOKEN);
  assert.equal(first.status, 204, first.text);
  const again = await hsDelete(rt, HS_TOKEN);
  assert.equal(again.status, 404, again.text);
  const recs = revocations(fp('refresh_token', rt));
  assert.deepEqual(recs.map((x) => [x.outcome, x.upstream_status]), [['allowed', 204], ['upstream_error', 404]]);
  assert.equal(recordById(again.headers['x-crmgate-audit-id']).outcome, 'upstream_error');
  assertNowhere(stack.gate.stateDir, stack.gate.stderr());
});

test('Salesforce revoke (POST /services/oauth2/revoke, form token=...): allowed with 200, the CRM\'s error recorded as upstream_error', { skip: GATE }, async () => {
  const t = newToken('token');
  await stack.fake.clearRequests();
  const r = await sfRevoke(t, SF_TOKEN, { 'X-Crmgate-Workflow': 'offboard-1' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers['x-crmgate-decision'], 'allow');
  expectRecord(recordById(r.headers['x-crmgate-audit-id']), {
    crm: 'salesforce', object: 'oauth', verb: 'revoke', record: fp('token', t), fields: [], outcome: 'allowed',
    upstream_status: 200, decision: 'allow', workspace: 'e2e-open', workflow: 'offboard-1', rule: /#\/salesforce\/auth$/,
  });
  assert.equal((await oauthCalls()).length, 1);
  /* the token no longer works at the CRM */
  const limits = await harness.requestJson(`${stack.fake.url}/services/data/v62.0/limits`, { headers: { authorization: `Bearer ${t}` } });
  assert.equal(limits.status, 401);

  const bad = newToken('token');
  await stack.fake.fault({ action: 'status', status: 400, match: { path: '^/services/oauth2/revoke' }, count: 1,
    body: { error: 'unsupported_token_type', error_description: 'this token type is not supported' } });
  const e = await sfRevoke(bad, SF_TOKEN);
  assert.equal(e.status, 400);
  assert.equal(e.json.error, 'unsupported_token_type', 'the CRM\'s answer is relayed');
  expectRecord(recordById(e.headers['x-crmgate-audit-id']), { record: fp('token', bad), outcome: 'upstream_error', upstream_status: 400, decision: 'allow' });
  assertNowhere(stack.gate.stateDir, stack.gate.stderr());
});

test('denied revocations (rules without auth, unknown callers, SDKs without identity, ambiguous requests) are recorded and never forwarded', { skip: GATE }, async () => {
  await stack.fake.clearRequests();
  const rt = newToken('refresh_token');
  const at = newToken('token');
  const st = newToken('token');
  const cases = [
    ['hubspot', fp('refresh_token', rt), await hsDelete(rt, NOAUTH_HS)],
    ['hubspot', fp('token', at), await hsRevoke(at, NOAUTH_HS)],
    ['salesforce', fp('token', st), await sfRevoke(st, NOAUTH_SF)],
  ];
  for (const [crm, record, r] of cases) {
    assert.equal(r.status, 403, r.text);
    assert.equal(r.headers['x-crmgate-decision'], 'deny');
    assert.equal(r.json.error, 'access_denied', 'the OAuth error shape');
    assert.match(r.json.error_description, /does not allow .* auth calls such as this token revocation \(set auth: true\)/);
    const rec = recordById(r.headers['x-crmgate-audit-id']);
    expectRecord(rec, { crm, object: 'oauth', verb: 'revoke', record, decision: 'deny', outcome: 'denied', workspace: 'noauth',
      upstream_status: null, rule: new RegExp(`#/${crm}/auth$`), denial: /set auth: true/ });
  }

  /* the SDKs' own calls, which carry no identity: refused as unknown callers, recorded */
  const sdkRt = newToken('refresh_token');
  const plain = new Client({ basePath: stack.hubspotBase, numberOfApiCallRetries: 0 });
  await assert.rejects(plain.oauth.refreshTokensApi.archive(sdkRt), (err) => err.code === 403);
  const [hsRec] = revocations(fp('refresh_token', sdkRt));
  expectRecord(hsRec, { outcome: 'denied', decision: 'deny', rule: 'builtin:unknown-caller', workspace: null });
  const sfTok = newToken('token');
  const oauth2 = new jsforce.OAuth2({ loginUrl: stack.salesforceBase, clientId: 'cid-revoke' });
  await assert.rejects(oauth2.revokeToken(sfTok), (err) => err.name === 'ERROR_HTTP_403' && /unknown|not registered|Authorization/i.test(err.message));
  const [sfRec] = revocations(fp('token', sfTok));
  expectRecord(sfRec, { crm: 'salesforce', outcome: 'denied', decision: 'deny', rule: 'builtin:unknown-caller', workspace: null });

  /* requests that cannot say which one token they revoke: denied as not understood (in the
   * CRM's own error shape, as any call crmgate does not understand), recorded without any
   * token; Salesforce's GET form is not in the reference: not classified */
  const two = newToken('token');
  const amb = await gateReq('POST', '/hubspot/oauth/v3/token/revoke', { token: HS_TOKEN, body: `token=${two}&token=${two}x`, headers: FORM });
  assert.equal(amb.status, 403);
  assert.match(amb.json.message, /exactly one token/);
  expectRecord(recordById(amb.headers['x-crmgate-audit-id']), { verb: 'unknown', outcome: 'denied', record: null, workspace: 'e2e-open' });
  const json = await gateReq('POST', '/salesforce/services/oauth2/revoke', { token: SF_TOKEN, body: { token: two } });
  assert.equal(json.status, 403);
  assert.match(json.json[0].message, /form body/);
  assert.equal(recordById(json.headers['x-crmgate-audit-id']).outcome, 'denied');
  const get = await gateReq('GET', `/salesforce/services/oauth2/revoke?token=${two}`, { token: SF_TOKEN });
  assert.equal(get.status, 403);
  assert.match(get.text, /oauth2 endpoint not classified/);

  assert.deepEqual(await oauthCalls(), [], 'no denied revocation reached the CRM');
  assertNowhere(stack.gate.stateDir, stack.gate.stderr());
});

test('dry-run: HubSpot\'s v1 DELETE answered 204 without forwarding; v3 and Salesforce revocations refused (no answer in the references), recorded', { skip: GATE }, async () => {
  await stack.fake.clearRequests();
  const rt = newToken('refresh_token');
  const r = await hsDelete(rt, DRY_HS);
  assert.equal(r.status, 204, r.text);
  assert.equal(r.text, '');
  assert.equal(r.headers['x-crmgate-decision'], 'dry_run');
  expectRecord(recordById(r.headers['x-crmgate-audit-id']), {
    crm: 'hubspot', object: 'oauth', verb: 'revoke', record: fp('refresh_token', rt), decision: 'dry_run',
    outcome: 'dry_run', synthetic: true, upstream_status: null, workspace: 'dry',
  });
  /* X-Crmgate-Dry-Run on the enforcing workspace: the same */
  const rt2 = newToken('refresh_token');
  const h = await hsDelete(rt2, HS_TOKEN, { 'X-Crmgate-Dry-Run': '1' });
  assert.equal(h.status, 204, h.text);
  expectRecord(recordById(h.headers['x-crmgate-audit-id']), { outcome: 'dry_run', decision: 'dry_run', synthetic: true, workspace: 'e2e-open' });

  const at = newToken('token');
  const st = newToken('token');
  for (const [crm, record, res] of [['hubspot', fp('token', at), await hsRevoke(at, DRY_HS)], ['salesforce', fp('token', st), await sfRevoke(st, DRY_SF)]]) {
    assert.equal(res.status, 403, res.text);
    assert.equal(res.headers['x-crmgate-error'], 'dry_run_unsupported');
    assert.equal(res.json.error, 'access_denied');
    assert.match(res.json.error_description, /cannot answer this write in dry-run.*reference gives no answer to a token revocation/);
    expectRecord(recordById(res.headers['x-crmgate-audit-id']), { crm, record, decision: 'dry_run', outcome: 'denied', error: 'dry_run_unsupported', synthetic: false });
  }
  assert.deepEqual(await oauthCalls(), [], 'nothing reached the CRM in dry-run');
  /* the refresh tokens still work at HubSpot */
  assert.equal((await harness.requestJson(`${stack.fake.url}/oauth/v1/refresh-tokens/${rt}`)).status, 200);
  assertNowhere(stack.gate.stateDir, stack.gate.stderr());
});

test('a full audit store: revocations get 503 in the OAuth error shape and are not forwarded', { skip: GATE, timeout: 120000 }, async () => {
  const fake = await harness.startFake();
  const gate = await harness.startCrmgate({
    upstreams: { hubspot: fake.url, salesforce: fake.url },
    rules: { 'e2e-open.json': RULES['e2e-open.json'] },
    callers: CALLERS.slice(0, 2),
    config: { store: { map_bytes: 131072, max_map_bytes: 262144 } },
  });
  try {
    await fake.seed({ hubspot: { objects: { contacts: [{ id: '8300', properties: { firstname: 'x' } }] } } });
    let full = false;
    for (let i = 0; i < 2000 && !full; i++) {
      const w = await harness.rawRequest(gate.port, 'PATCH', '/hubspot/crm/v3/objects/contacts/8300', { token: HS_TOKEN, body: { properties: { firstname: `v${i}-${'x'.repeat(200)}` } } });
      if (w.status === 503) full = true;
      else assert.equal(w.status, 200, w.text);
    }
    assert.ok(full, 'the tiny map never filled');
    await fake.clearRequests();
    const rt = newToken('refresh_token');
    const at = newToken('token');
    const st = newToken('token');
    const answers = [
      await harness.rawRequest(gate.port, 'DELETE', `/hubspot/oauth/v1/refresh-tokens/${rt}`, { token: HS_TOKEN }),
      await harness.rawRequest(gate.port, 'POST', '/hubspot/oauth/v3/token/revoke', { token: HS_TOKEN, body: `token=${at}`, headers: FORM }),
      await harness.rawRequest(gate.port, 'POST', '/salesforce/services/oauth2/revoke', { token: SF_TOKEN, body: `token=${st}`, headers: FORM }),
    ];
    for (const r of answers) {
      assert.equal(r.status, 503, r.text);
      assert.equal(r.headers['x-crmgate-error'], 'audit_store_full');
      assert.equal(r.json.error, 'temporarily_unavailable');
      assert.match(r.json.error_description, /audit store is full.*not sent to the CRM/);
    }
    assert.deepEqual((await fake.requests()).filter((x) => /oauth/.test(x.path)), [], 'no revocation crmgate could not record reached the CRM');
    assert.equal((await harness.requestJson(`${fake.url}/oauth/v1/refresh-tokens/${rt}`)).status, 200, 'the refresh token still works');
  } finally {
    await gate.stop();
    await fake.stop();
  }
  assertNowhere(gate.stateDir, gate.stderr());
});
