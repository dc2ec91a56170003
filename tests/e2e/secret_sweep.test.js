'use strict';
/*
 * The secret sweep (secret_sweep.js, run by the harness for every crmgate) and the leaks it and
 * its probes found:
 *   - the sweep itself: a secret in LMDB (a record field), in the log (a path segment), one the
 *     fake CRM saw, a crmgate key by its shape, and one left running at exit (the test file
 *     fails) are all caught, named by kind and fingerprint, never printed; one only in a query
 *     string (never logged) is not a hit; the CLI and admin answer checks;
 *   - HubSpot token-info paths spelt /OAuth/, /%6Fauth/, /OAUTH/ logged their token (the log
 *     cut only "/oauth/");
 *   - a before-state read whose answer holds the credential it was made with (the
 *     integration's token, or an agent's own) put it in the audit record in clear;
 *   - JSON errors quoted the text they could not parse ("invalid token near '<token>'"), and
 *     unknown member names were quoted back: in admin API answers, `integration add`'s
 *     messages and config errors; `integration add` quoted a token given on its command line.
 */
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const net = require('node:net');
const http = require('node:http');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const harness = require('./harness.js');
const util = require('./custody_util.js');

const GATE = harness.crmgateAvailable() ? false : 'crmgate binary not built (make)';
const BIN = harness.crmgateBinary();
const TOKEN = harness.OPEN_TOKENS[0];
const SF_TOKEN = harness.OPEN_TOKENS[2];

/* One raw request on its own connection; resolves the whole answer as text. */
function raw(port, text) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let out = '';
    s.on('data', (d) => { out += d; });
    s.on('close', () => resolve(out));
    s.on('error', reject);
    s.end(text);
  });
}

/* An admin API call with a raw body (gate.admin sends only valid JSON). */
function adminRaw(gate, method, p, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: gate.adminSocket, path: p, method, headers: { 'content-type': 'application/json' } }, (res) => {
      let t = '';
      res.on('data', (d) => { t += d; });
      res.on('end', () => resolve({ status: res.statusCode, text: t }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/* gate.stop() must fail with a sweep report naming kind, and never the secret itself. */
async function assertSweepFails(gate, kind, secret) {
  await assert.rejects(gate.stop(), (e) => {
    assert.match(e.message, /^secret sweep: /);
    assert.ok(e.message.includes(kind), e.message);
    assert.ok(e.message.includes(`"${secret.slice(0, 6)}..." (${secret.length} chars)`), e.message);
    assert.ok(!e.message.includes(secret), 'the report never prints the secret');
    return true;
  });
}

/* ---------------- the sweep catches what it must ---------------- */

test('sweep: a known secret in a record field is found in LMDB; a crmgate key by its shape; reported by kind and fingerprint only', { skip: GATE }, async () => {
  for (const [kind, secret, register] of [
    ['canary secret', 'SWEEP-CANARY-lmdb-0123456789', true],
    ['crmgate key (cgk_)', `cgk_${'Zq9'.repeat(14)}x`, false],
  ]) {
    const stack = await harness.startStack();
    try {
      if (register) harness.noteSecret(kind, secret);
      await stack.fake.seed({ hubspot: { objects: { contacts: [{ id: '9101', properties: { email: 'a@b.test', firstname: 'A' } }] } } });
      const r = await harness.requestJson(`${stack.hubspotBase}/crm/v3/objects/contacts/9101`,
        { method: 'PATCH', body: { properties: { firstname: secret } }, headers: { Authorization: `Bearer ${TOKEN}` } });
      assert.equal(r.status, 200);
      await assertSweepFails(stack.gate, kind, secret);
    } finally {
      await stack.fake.stop();
    }
  }
});

test('sweep: a secret in a logged path segment is found in the log; one only in a query string is not (never logged)', { skip: GATE }, async () => {
  const inPath = 'SWEEP-CANARY-path-0123456789';
  const inQuery = 'SWEEP-CANARY-query-0123456789';
  harness.noteSecret('canary secret', inPath);
  harness.noteSecret('canary secret', inQuery);
  let stack = await harness.startStack();
  try {
    await harness.requestJson(`${stack.hubspotBase}/crm/v3/objects/contacts/1?properties=${inQuery}`, { headers: { Authorization: `Bearer ${TOKEN}` } });
    assert.ok(!stack.gate.stderr().includes(inQuery));
    await stack.gate.stop(); /* clean: resolves */
  } finally {
    await stack.fake.stop();
  }
  stack = await harness.startStack();
  try {
    await harness.requestJson(`${stack.hubspotBase}/crm/v3/objects/contacts/${inPath}`, { headers: { Authorization: `Bearer ${TOKEN}` } });
    assert.ok(stack.gate.stderr().includes(inPath), 'crmgate logs the path: the control case');
    await assertSweepFails(stack.gate, 'canary secret', inPath);
  } finally {
    await stack.fake.stop();
  }
});

test('sweep: a credential the fake CRM received is known to the sweep without the test naming it', { skip: GATE }, async () => {
  const stack = await harness.startStack();
  try {
    const seen = 'SWEEP-CANARY-seen-by-fake-01234';
    /* straight to the fake, as a client's own OAuth dance would: crmgate never sees it */
    const f = await util.postForm(`${stack.fake.url}/oauth/v1/token`, `grant_type=refresh_token&client_id=c&client_secret=s1234567&refresh_token=${seen}`);
    assert.equal(f.status, 200, JSON.stringify(f.body));
    await stack.fake.seed({ hubspot: { objects: { contacts: [{ id: '9102', properties: { email: 'a@b.test' } }] } } });
    await harness.requestJson(`${stack.hubspotBase}/crm/v3/objects/contacts/9102`,
      { method: 'PATCH', body: { properties: { firstname: seen } }, headers: { Authorization: `Bearer ${TOKEN}` } });
    await assertSweepFails(stack.gate, 'credential the fake CRM saw (parameter refresh_token)', seen);
  } finally {
    await stack.fake.stop();
  }
});

test('sweep: a crmgate no test stopped is swept at exit, and a hit fails the test file', { skip: GATE }, () => {
  const script = `
    const harness = require(${JSON.stringify(path.join(__dirname, 'harness.js'))});
    (async () => {
      const stack = await harness.startStack();
      harness.noteSecret('canary secret', 'SWEEP-CANARY-exit-0123456789');
      await stack.fake.seed({ hubspot: { objects: { contacts: [{ id: '9103', properties: { email: 'a@b.test' } }] } } });
      const r = await harness.requestJson(stack.hubspotBase + '/crm/v3/objects/contacts/9103',
        { method: 'PATCH', body: { properties: { firstname: 'SWEEP-CANARY-exit-0123456789' } }, headers: { Authorization: 'Bearer ${TOKEN}' } });
      process.stdout.write('written ' + r.status + '\\n');
    })();`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30000, env: { ...process.env, CRMGATE_BIN: BIN } });
  assert.match(r.stdout, /written 200/, r.stderr);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /secret sweep: 1 secret\(s\) where none may be .*\n.*canary secret "SWEEP-..." \(28 chars\) in .*data\.mdb/);
  assert.ok(!r.stderr.includes('SWEEP-CANARY-exit'));
});

test('sweep: the CLI and admin answer checks: a secret on a CLI\'s output or in an admin answer throws; key create\'s key and POST /v1/keys\' "key" do not', () => {
  const tok = 'pat-na1-sweep-cli-canary-000111';
  assert.throws(() => harness.noteCliSecrets(['integration', 'add', '--workspace', 'w'], tok, { stdout: '', stderr: `bad token ${tok}` }),
    /integration access_token "pat-na\.\.\." \(31 chars\) on the stderr of crmgate integration add/);
  const key = `cgk_${'K7'.repeat(21)}a`;
  harness.noteCliSecrets(['key', 'create', '--workspace', 'w'], '', { stdout: `${key}\n`, stderr: 'key 0123456789abcdef created' });
  assert.throws(() => harness.noteCliSecrets(['key', 'list'], '', { stdout: key, stderr: '' }), /crmgate key \(cgk_\)/);
});

/* ---------------- leaks found ---------------- */

test('`integration add` does not quote a token given on its command line', { skip: GATE }, async () => {
  const s = await util.startCustody({ rules: { 'acme.json': { workspace: 'acme', hubspot: { objects: {} } } } });
  try {
    const tok = 'abcdefSWEEPargvTOKEN0123';
    const r = spawnSync(BIN, ['integration', 'add', '--workspace', 'acme', '--crm', 'hubspot', '--type', 'private-app', tok, '--state-dir', s.gate.stateDir], { encoding: 'utf8' });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /unexpected argument \(24 characters, not shown: secrets are read from stdin/);
    assert.ok(!(r.stderr + r.stdout).includes(tok), r.stderr);
  } finally {
    await s.stop();
  }
});

test('log: a HubSpot token-info path keeps its token out of the log however "oauth" is spelt (case, percent-encoding, empty segments), allowed or denied', { skip: GATE }, async () => {
  const secret = 'SWEEP-oauth-path-token-4567';
  harness.noteSecret('refresh token in an OAuth path', secret);
  const NOAUTH = { workspace: 'noauth', allow_passthrough: true, hubspot: { objects: {} } };
  const stack = await harness.startStack({ gate: {
    rules: { ...{ 'e2e-open.json': { workspace: 'e2e-open', hubspot: harness.OPEN_CRM, salesforce: harness.OPEN_CRM } }, 'noauth.json': NOAUTH },
    callers: [{ token: TOKEN, workspace: 'e2e-open' }, { token: 'pat-na1-sweep-noauth-000000000', workspace: 'noauth' }],
  } });
  try {
    const paths = ['/hubspot/OAuth/v1/refresh-tokens/', '/hubspot/%6Fauth/v1/access-tokens/', '/hubspot/OAUTH/v1/access-tokens/',
      '/hubspot/%6f%41uth/v1/refresh-tokens/', '/hubspot//oAuth//v1//access-tokens//', '/hubspot/oauth/v1/refresh-tokens/',
      /* paths the classifier refuses log no further than their known segments either: a token
       * to revoke or look up, sent without the version or the resource, stays out of the log */
      '/hubspot/oauth/refresh-tokens/', '/hubspot/oauth/access-tokens/', '/hubspot/oauth/v1/', '/hubspot/oauth/',
      '/hubspot/oauth/v3/token/revoke/', '/hubspot/oauth/2026-03/token/'];
    for (const p of paths) {
      for (const tok of [TOKEN, 'pat-na1-sweep-noauth-000000000']) {
        for (const method of ['GET', 'DELETE']) {
          const r = await raw(stack.gate.port, `${method} ${p}${secret} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tok}\r\nConnection: close\r\n\r\n`);
          assert.match(r, /^HTTP\/1\.1 (200|204|403|404) /, `${method} ${p}: ${r.slice(0, 200)}`);
        }
      }
    }
    const log = stack.gate.stderr();
    assert.ok(!log.includes(secret), 'the token is never logged');
    assert.match(log, /"GET \/hubspot\/OAuth\/v1\/refresh-tokens" 200/);
    assert.match(log, /"GET \/hubspot\/%6Fauth\/v1\/access-tokens" 403/);
    assert.match(log, /"DELETE \/hubspot\/oauth" 403/);
    assert.match(log, /"DELETE \/hubspot\/oauth\/v3\/token\/revoke" 403/);
  } finally {
    await stack.stop();
  }
});

test('audit: a before-state answer that holds the credential of its read (an agent\'s own token, HubSpot and Salesforce) records it redacted', { skip: GATE }, async () => {
  const stack = await harness.startStack();
  try {
    const { fake, gate } = stack;
    await fake.seed({
      hubspot: { objects: { contacts: [{ id: '9201', properties: { email: 'x@y.test', firstname: `token ${TOKEN} here` } }] } },
      salesforce: { objects: { Account: [{ Name: 'Echo', Description: SF_TOKEN }] } },
    });
    const acc = (await fake.state()).salesforce.objects.Account.find((a) => a.Name === 'Echo').Id;
    let r = await harness.requestJson(`${stack.hubspotBase}/crm/v3/objects/contacts/9201`,
      { method: 'PATCH', body: { properties: { firstname: 'Ada' } }, headers: { Authorization: `Bearer ${TOKEN}` } });
    assert.equal(r.status, 200);
    r = await harness.requestJson(`${stack.salesforceBase}/services/data/v62.0/sobjects/Account/${acc}`,
      { method: 'PATCH', body: { Description: 'plain' }, headers: { Authorization: `Bearer ${SF_TOKEN}` } });
    assert.equal(r.status, 204);
    const recs = harness.readAuditRaw(gate.stateDir);
    assert.deepEqual(recs.map((x) => harness.fieldMap(x)), [
      { firstname: ['token [redacted by crmgate] here', 'Ada'] },
      { Description: ['[redacted by crmgate]', 'plain'] },
    ]);
  } finally {
    await stack.stop(); /* the sweep: no token in LMDB */
  }
});

test('audit: a before-state answer that holds the integration\'s injected token records it redacted (custody, HubSpot)', { skip: GATE }, async () => {
  const OPEN = { objects: { '*': { read: '*', write: '*', actions: { update: true } } } };
  const s = await util.startCustody({ rules: { 'acme.json': { workspace: 'acme', hubspot: OPEN } } });
  try {
    const { fake, gate } = s;
    const tok = 'pat-na1-sweep-integration-echo-1';
    await fake.seed({ hubspot: { objects: { contacts: [{ id: '9301', properties: { email: 'x@y.test', lastname: tok } }] } } });
    util.addIntegration(gate, ['--workspace', 'acme', '--crm', 'hubspot', '--type', 'private-app'], tok);
    const k = util.newKey(gate, ['--workspace', 'acme', '--kind', 'workflow']);
    const r = await harness.requestJson(`${gate.url}/hubspot/crm/v3/objects/contacts/9301`,
      { method: 'PATCH', body: { properties: { lastname: 'Lovelace' } }, headers: { Authorization: `Bearer ${k.key}` } });
    assert.equal(r.status, 200);
    const [rec] = harness.readAuditRaw(gate.stateDir);
    assert.deepEqual(harness.fieldMap(rec), { lastname: ['[redacted by crmgate]', 'Lovelace'] });
  } finally {
    await s.stop();
  }
});

test('admin API and `integration add`: a malformed secret is not quoted back (JSON errors, unknown member names)', { skip: GATE }, async () => {
  const s = await util.startCustody({ rules: { 'acme.json': { workspace: 'acme', hubspot: { objects: {} } } } });
  try {
    const { gate } = s;
    const tok = 'abcdefSWEEPunquotedTOKEN';
    harness.noteSecret('access token sent malformed', tok);
    const put = (rest) => adminRaw(gate, 'PUT', '/v1/integrations', `{"workspace":"acme","crm":"hubspot","type":"private_app",${rest}`);
    for (const [body, want] of [
      [`"access_token":${tok}}`, /not valid JSON: invalid token \(line 1\)/],
      [`"access_token":"${tok}\t"}`, /not valid JSON: control character 0x9 \(line 1\)/],
      [`"access_token":"${tok}"}`.replace('"access_token"', `"${tok}"`), /an unknown member \(24 characters, not shown\)/],
      ['"access_token":"x","acess_tokn":1}', /unknown member \\"acess_tokn\\"/],
      [`"access_token":"${tok}","access_token":"x"}`, /duplicate object key near '\\"access_token\\"'/],
    ]) {
      const r = await put(body);
      assert.equal(r.status, 400, r.text);
      assert.match(r.text, want);
      assert.ok(!r.text.includes(tok), r.text);
    }
    const cli = (args, input) => {
      const r = spawnSync(BIN, ['integration', 'add', '--workspace', 'acme', '--crm', 'hubspot', '--type', 'private-app', ...args, '--state-dir', gate.stateDir], { input, encoding: 'utf8' });
      assert.equal(r.status, 2, r.stderr);
      assert.ok(!(r.stderr + r.stdout).includes(tok), r.stderr);
      return r.stderr;
    };
    assert.match(cli([], `{"access_token": ${tok}}`), /not a JSON object \(line 1: invalid token\)/);
    assert.match(cli([], `{"access_token": "${tok}`), /not a JSON object \(line 1: premature end of input\)/);
    assert.match(cli([], `{"${tok}": "x"}`), /unknown secret \(a name not shown\)/);
    assert.match(cli([], '{"acess_token": "x"}'), /unknown secret "acess_token"/);
  } finally {
    await s.stop();
  }
});

test('config: an error near the admin token does not quote it (unquoted value, unknown key), at start-up and for the CLI that reads it', { skip: GATE }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'crmgate-e2e-sweepcfg-'));
  try {
    const tok = 'SWEEPadminTOKENabcdefghijklmnop';
    const file = path.join(dir, 'c.json');
    for (const [text, want] of [
      [`{"admin": {"token": ${tok}}}`, /c\.json:1:\d+: invalid JSON: invalid token$/m],
      [`{"admin": {"${tok}": "x"}}`, /c\.json: \/admin: an unknown key \(31 characters, not shown\)/],
      ['{"admin": {"tokn": "x"}}', /c\.json: \/admin\/tokn: unknown key/],
    ]) {
      fs.writeFileSync(file, text);
      const r = spawnSync(BIN, ['serve', '--check', '-c', file, '--state-dir', dir], { encoding: 'utf8' });
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, want);
      assert.ok(!(r.stderr + r.stdout).includes(tok), r.stderr);
    }
    fs.writeFileSync(file, `{"admin": {"token": ${tok}}}`);
    const r = spawnSync(BIN, ['key', 'list', '-c', file], { encoding: 'utf8' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /c\.json: invalid token \(line 1\)/);
    assert.ok(!r.stderr.includes(tok), r.stderr);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
