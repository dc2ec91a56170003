'use strict';
/*
 * Credential custody in forward mode: where a crmgate key's Salesforce token goes is the
 * integration's business, never the agent's. An agent opens its tunnel to any
 * <label>.my.salesforce.com it likes (CONNECT), so that host must not decide where crmgate
 * sends the integration's token: the integration's instance URL does, else
 * upstreams.salesforce, else the call is refused and nothing is sent.
 *
 * Everything runs inside a network namespace the suite creates (harness.makeNetns: cgc-<random>,
 * only lo, so nothing can leave it) and removes:
 *   - /etc/netns/NS/hosts maps acme.my.salesforce.com, evil.my.salesforce.com and
 *     login.tokens.example (a token endpoint outside the Salesforce domains) to 127.0.0.1;
 *   - the fake CRM listens there on 443 with TLS (a throw-away CA that crmgate's ca_bundle
 *     trusts), so it receives whatever crmgate sends to either name;
 *   - crmgate (forward listener, vault key, no upstreams.salesforce) and jsforce (HTTPS_PROXY
 *     carrying the key) run in it; the CLI reaches crmgate's admin socket from outside.
 *
 * Needs root and ip; skipped otherwise.
 *
 *   node --test tests/e2e/custody_forward.test.js
 */
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFile, execFileSync, spawnSync } = require('node:child_process');
const harness = require('./harness.js');

const SKIP = !harness.crmgateAvailable() ? `crmgate binary not built (${harness.crmgateBinary()})` : harness.netnsUnavailable();
const BIN = harness.crmgateBinary();
const VERSION = '62.0';
const OPEN_ACTIONS = { create: true, update: true, upsert: true, delete: true, associate: true };
const OPEN_CRM = { schema_read: true, objects: { '*': { read: '*', write: '*', actions: OPEN_ACTIONS } } };

let ns;
let fake;
let gate;
let dir;

function cli(args, input) {
  const r = spawnSync(BIN, [...args, '--state-dir', gate.stateDir], { input: input || '', encoding: 'utf8', timeout: 15000 });
  harness.noteCliSecrets(args, input, r);
  assert.equal(r.status, 0, `${args.join(' ')}: exit ${r.status}\n${r.stderr}${r.stdout}`);
  return r;
}

before(async () => {
  if (SKIP) return;
  ns = harness.makeNetns('cgc', ['127.0.0.1 localhost acme.my.salesforce.com evil.my.salesforce.com login.tokens.example']);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'crmgate-custody-fwd-'));
  const certs = harness.makeTestCerts({ dir: path.join(dir, 'certs'), san: 'DNS:acme.my.salesforce.com,DNS:evil.my.salesforce.com,DNS:login.tokens.example,IP:127.0.0.1' });
  fake = await harness.startFake({ netns: ns.name, tls: true, cert: certs.cert, key: certs.key, port: 443 });
  const keyFile = path.join(dir, 'vault.key');
  execFileSync(BIN, ['vault', 'keygen', '--out', keyFile], { stdio: 'ignore' });
  const rulesDir = path.join(dir, 'rules');
  fs.mkdirSync(rulesDir);
  fs.writeFileSync(path.join(rulesDir, 'acme.json'), JSON.stringify({ workspace: 'acme', hubspot: OPEN_CRM, salesforce: OPEN_CRM }));
  gate = await harness.startCrmgate({
    netns: ns.name,
    config: { rules_dir: rulesDir, callers: [], vault: { key_file: keyFile }, ca_bundle: certs.ca },
    upstreams: { hubspot: fake.url }, /* no upstreams.salesforce */
    forward: true,
  });
});

after(async () => {
  try {
    if (gate && !gate.stopped) await gate.stop();
    if (fake) await fake.stop();
  } finally {
    if (ns) ns.remove();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }
});

/* jsforce inside the namespace, through crmgate's forward listener with the key as proxy credentials. */
function jsforceRetrieve(key, host, id) {
  const script = `
    const jsforce = require('jsforce');
    (async () => {
      const conn = new jsforce.Connection({ instanceUrl: 'https://${host}', accessToken: 'not-a-crm-token', version: '${VERSION}' });
      try { const r = await conn.sobject('Account').retrieve('${id}'); process.stdout.write(JSON.stringify({ ok: r.Name })); }
      catch (e) { process.stdout.write(JSON.stringify({ error: String(e.message), code: e.errorCode })); }
    })();`;
  const env = { PATH: process.env.PATH, HTTPS_PROXY: `http://agent:${key}@127.0.0.1:${gate.forwardPort}`, NODE_EXTRA_CA_CERTS: gate.caCert };
  return new Promise((resolve, reject) => {
    execFile('ip', ['netns', 'exec', ns.name, process.execPath, '-e', script], { cwd: harness.REPO, env, timeout: 20000 }, (err, stdout, stderr) => {
      if (err && err.killed) { reject(new Error(`jsforce timed out: ${stderr}`)); return; }
      try { resolve(JSON.parse(stdout)); } catch { reject(new Error(`jsforce: ${stdout}\n${stderr}`)); }
    });
  });
}

test('custody forward: a key\'s Salesforce token goes to the integration\'s instance URL, never to the host the agent tunnelled to; without an instance URL (and no upstreams.salesforce) the call is refused and nothing is sent', { skip: SKIP }, async () => {
  await fake.seed({ salesforce: { objects: { Account: [{ Name: 'Hooli' }] } } });
  const acc = (await fake.state()).salesforce.objects.Account.find((a) => a.Name === 'Hooli').Id;
  const key = cli(['key', 'create', '--workspace', 'acme', '--kind', 'workflow']).stdout.trim();

  /* an integration without an instance URL: the tunnel's host (the agent's pick) must not get its token */
  const token = '00DHs0000000001!AQsf-no-instance-url';
  cli(['integration', 'add', '--workspace', 'acme', '--crm', 'salesforce', '--type', 'private-app'], token);
  await fake.clearRequests();
  let out = await jsforceRetrieve(key, 'evil.my.salesforce.com', acc);
  assert.ok(out.error, `answered: ${JSON.stringify(out)}`);
  assert.match(out.error, /no Salesforce instance URL/);
  const sent = (await fake.requests()).filter((r) => JSON.stringify(r.headers).includes('AQsf-no-instance-url'));
  assert.deepEqual(sent.map((r) => `${r.headers.host} ${r.method} ${r.path}`), [], 'the token reached the host the agent tunnelled to');
  assert.ok(!gate.stderr().includes(token), 'the token is not logged');

  /* with its instance URL: the call goes there, whatever host the tunnel names */
  cli(['integration', 'add', '--workspace', 'acme', '--crm', 'salesforce', '--type', 'private-app', '--instance-url', 'https://acme.my.salesforce.com'], '00DHs0000000001!AQsf-acme-instance');
  await fake.clearRequests();
  out = await jsforceRetrieve(key, 'evil.my.salesforce.com', acc);
  assert.equal(out.ok, 'Hooli', JSON.stringify(out));
  const calls = (await fake.requests()).filter((r) => !/oauth/.test(r.path));
  assert.equal(calls.length, 1);
  assert.equal(calls[0].headers.authorization, 'Bearer 00DHs0000000001!AQsf-acme-instance');
  assert.equal(calls[0].headers.host, 'acme.my.salesforce.com');
});

/*
 * An Account named name, a workflow key, and the workspace's Salesforce OAuth integration on
 * https://acme.my.salesforce.com due at once (60 s left, margin 300 s; a refreshed session
 * lasts 2 hours), whose next refresh the token endpoint answers with {access_token: newToken,
 * instance_url}. tag makes its secrets (RT-TAG-1, cs-TAG-SECRET-1) unique. {acc, key}.
 */
async function dueIntegration(name, tag, newToken, instanceUrl) {
  await fake.seed({ salesforce: { objects: { Account: [{ Name: name }] } } });
  const acc = (await fake.state()).salesforce.objects.Account.find((a) => a.Name === name).Id;
  const key = cli(['key', 'create', '--workspace', 'acme', '--kind', 'workflow']).stdout.trim();
  const put = await gate.admin('PUT', '/v1/integrations', { workspace: 'acme', crm: 'salesforce', type: 'oauth', client_id: `cid-${tag}`,
    instance_url: 'https://acme.my.salesforce.com', expires_in: 60, lifetime_s: 7200,
    access_token: `00DHs0000000001!AQsf-${tag}-old`, refresh_token: `RT-${tag}-1`, client_secret: `cs-${tag}-SECRET-1` });
  assert.equal(put.status, 201, JSON.stringify(put.body));
  await fake.fault({ action: 'status', status: 200, match: { path: '^/services/oauth2/token' }, count: 1,
    body: { access_token: newToken, instance_url: instanceUrl, token_type: 'Bearer' } });
  await fake.clearRequests();
  return { acc, key };
}

test('custody forward: a refreshed Salesforce session whose instance_url names another Salesforce host moves there, with the new token (hosts outside the Salesforce domains are refused: custody_backoff.test.js)', { skip: SKIP }, async () => {
  const { acc, key } = await dueIntegration('Globex', 'fwd', '00DHs0000000001!AQsf-fwd-new', 'https://evil.my.salesforce.com');
  const out = await jsforceRetrieve(key, 'acme.my.salesforce.com', acc);
  assert.equal(out.ok, 'Globex', JSON.stringify(out));
  const log = await fake.requests();
  assert.deepEqual(log.map((r) => `${r.headers.host} ${r.method} ${r.path.replace(acc, 'ID')}`),
    ['acme.my.salesforce.com POST /services/oauth2/token', `evil.my.salesforce.com GET /services/data/v${VERSION}/sobjects/Account/ID`]);
  assert.equal(log[1].headers.authorization, 'Bearer 00DHs0000000001!AQsf-fwd-new');
  assert.ok(!gate.stderr().includes('AQsf-fwd-new') && !gate.stderr().includes('cs-fwd-SECRET-1'), 'no secret in the log');
});

/* Rewrite the gate's config file's vault.salesforce_domains (undefined: the default) and SIGHUP it. */
function setDomains(domains) {
  const file = path.join(gate.stateDir, 'config.json');
  const cfg = JSON.parse(fs.readFileSync(file, 'utf8'));
  if (domains) cfg.vault.salesforce_domains = domains;
  else delete cfg.vault.salesforce_domains;
  fs.writeFileSync(file, JSON.stringify(cfg, null, 2));
  gate.proc.kill('SIGHUP');
}

/* PUT a probe integration with a token URL under tokens.example until the answer is `want` (the reload landed). */
async function untilProbe(want) {
  const deadline = Date.now() + 15000;
  for (;;) {
    const r = await gate.admin('PUT', '/v1/integrations', { workspace: 'probe', crm: 'salesforce', type: 'private_app',
      access_token: '00DHs0000000001!AQsf-probe', token_url: 'https://login.tokens.example/services/oauth2/token' });
    if (r.status === want) return;
    assert.ok(Date.now() < deadline, `the reload did not land: ${r.status} ${JSON.stringify(r.body)}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

test('custody forward: a stored Salesforce token URL that vault.salesforce_domains no longer covers gets nothing: no refresh token or client secret is posted there, the call is refused', { skip: SKIP }, async () => {
  await fake.seed({ salesforce: { objects: { Account: [{ Name: 'Umbrella' }] } } });
  const acc = (await fake.state()).salesforce.objects.Account.find((a) => a.Name === 'Umbrella').Id;
  const key = cli(['key', 'create', '--workspace', 'acme', '--kind', 'workflow']).stdout.trim();
  try {
    /* the operator allowed tokens.example once: an integration whose token endpoint is there */
    setDomains(['salesforce.com', 'force.com', 'tokens.example']);
    await untilProbe(201);
    const put = await gate.admin('PUT', '/v1/integrations', { workspace: 'acme', crm: 'salesforce', type: 'oauth', client_id: 'cid-narrow',
      instance_url: 'https://acme.my.salesforce.com', token_url: 'https://login.tokens.example/services/oauth2/token',
      expires_in: 60, lifetime_s: 7200, access_token: '00DHs0000000001!AQsf-narrow-old', refresh_token: 'RT-narrow-SECRET-1',
      client_secret: 'cs-narrow-SECRET-1' });
    assert.equal(put.status, 201, JSON.stringify(put.body));
    /* ... and narrowed the domains again: that host is no Salesforce host any more */
    setDomains(undefined);
    await untilProbe(400);
    await fake.clearRequests();
    const out = await jsforceRetrieve(key, 'acme.my.salesforce.com', acc);
    const log = await fake.requests();
    assert.deepEqual(log.filter((r) => r.headers.host === 'login.tokens.example' || /RT-narrow|cs-narrow/.test(r.body))
      .map((r) => `${r.headers.host} ${r.method} ${r.path}`), [], 'the refresh token and client secret went to a host outside the Salesforce domains');
    assert.deepEqual(log, [], 'nothing sent');
    assert.equal(out.code, 'INSUFFICIENT_ACCESS', JSON.stringify(out));
    assert.match(out.error, /token URL .*not on a Salesforce host/);
    assert.ok(!gate.stderr().includes('RT-narrow-SECRET-1') && !gate.stderr().includes('cs-narrow-SECRET-1'), 'no secret in the log');
  } finally {
    setDomains(undefined);
    await gate.admin('DELETE', '/v1/integrations?workspace=probe&crm=salesforce');
  }
});

test('custody forward: a Salesforce token endpoint reached over https cannot move the session to plain http (loopback is for test CRMs an admin connects): the refresh is refused and the new token goes nowhere', { skip: SKIP }, async () => {
  /* a plain-http listener on the namespace's loopback: it must hear nothing */
  const plain = await harness.startFake({ netns: ns.name, port: 8089 });
  try {
    const { acc, key } = await dueIntegration('Stark', 'plain', '00DHs0000000001!AQsf-plain-new', 'http://127.0.0.1:8089');
    const out = await jsforceRetrieve(key, 'acme.my.salesforce.com', acc);
    assert.deepEqual(await plain.requests(), [], 'the new token went over plain http to a loopback port');
    assert.equal(out.code, 'INSUFFICIENT_ACCESS', JSON.stringify(out));
    assert.match(out.error, /instance_url outside the Salesforce domains/);
    const integ = JSON.parse(cli(['integration', 'list', '--json', '--workspace', 'acme']).stdout).integrations.find((i) => i.crm === 'salesforce');
    assert.equal(integ.refresh.state, 'refused', JSON.stringify(integ));
    assert.ok(!gate.stderr().includes('AQsf-plain-new'), 'the dropped token is not logged');
  } finally {
    await plain.stop();
  }
});
