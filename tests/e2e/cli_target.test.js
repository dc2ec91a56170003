'use strict';
/*
 * Every CLI command that talks to the daemon finds it the same way (proxy/admin_client.c):
 * `-c/--config FILE` (serve's config: its admin.socket, else its state_dir/admin.sock) works for
 * `key` and `integration` as for `dry-run`; a key made that way works with the HubSpot SDK and
 * gets the integration's token injected. A config file that cannot be read or names no socket
 * is refused with a clear message, and nothing is created.
 */
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { Client } = require('@hubspot/api-client');
const harness = require('./harness.js');

const GATE = harness.crmgateAvailable() ? false : 'crmgate binary not built (make)';
const BIN = harness.crmgateBinary();
const OPEN = { objects: { '*': { read: '*', write: '*', actions: { update: true } } } };

let fake;
let gate;
let dir;

function cli(args, input) {
  const r = spawnSync(BIN, args, { input: input || '', encoding: 'utf8', timeout: 15000, env: { ...process.env, STATE_DIRECTORY: '', CRMGATE_ADMIN_URL: '' } });
  harness.noteCliSecrets(args, input, r);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

before(async () => {
  if (GATE) return;
  fake = await harness.startFake();
  await fake.seed({ hubspot: { objects: { contacts: [{ id: '601', properties: { email: 'ada@acme.test' } }] } } });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'crmgate-e2e-target-'));
  const stateDir = path.join(dir, 'state');
  fs.mkdirSync(stateDir);
  const keyFile = path.join(dir, 'vault.key');
  assert.equal(spawnSync(BIN, ['vault', 'keygen', '--out', keyFile]).status, 0);
  const rulesDir = path.join(dir, 'rules');
  fs.mkdirSync(rulesDir);
  fs.writeFileSync(path.join(rulesDir, 'acme.json'), JSON.stringify({ workspace: 'acme', hubspot: OPEN }));
  gate = await harness.startCrmgate({
    stateDir,
    config: { rules_dir: rulesDir, vault: { key_file: keyFile }, admin: { socket: path.join(dir, 'admin.sock') } },
    upstreams: { hubspot: fake.url },
  });
});

after(async () => {
  if (gate) await gate.stop();
  if (fake) await fake.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('key and integration take -c/--config like dry-run: admin.socket, else state_dir', { skip: GATE }, async () => {
  /* serve's own config names admin.socket (outside the state dir): --state-dir would miss it */
  const serveConfig = path.join(gate.stateDir, 'config.json');
  const byStateDir = path.join(dir, 'by-state-dir.json');
  fs.writeFileSync(byStateDir, JSON.stringify({ state_dir: path.join(dir, 'elsewhere') }));
  assert.equal(cli(['key', 'list', '--state-dir', gate.stateDir]).status, 1, 'no socket under the state dir');

  let r = cli(['integration', 'add', '-c', serveConfig, '--workspace', 'acme', '--crm', 'hubspot', '--type', 'private-app'], 'pat-na1-acme-by-config\n');
  assert.equal(r.status, 0, r.stderr);
  r = cli(['key', 'create', '--config', serveConfig, '--workspace', 'acme', '--kind', 'workflow']);
  assert.equal(r.status, 0, r.stderr);
  const key = r.stdout.trim();
  assert.match(key, /^cgk_/);
  const id = /key ([0-9a-f]{16})/.exec(r.stderr)[1];

  r = cli(['key', 'list', '-c', serveConfig, '--json']);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout).keys.map((k) => [k.id, k.state]), [[id, 'active']]);
  r = cli(['integration', 'list', '--config', serveConfig, '--json']);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout).integrations.map((i) => [i.workspace, i.crm, i.scope]), [['acme', 'hubspot', 'workspace']]);
  assert.equal(cli(['dry-run', 'status', '-c', serveConfig, '--workspace', 'acme']).status, 0);

  /* the key works: the SDK's call reaches the CRM with the integration's token */
  await fake.clearRequests();
  const c = await new Client({ accessToken: key, basePath: `${gate.url}/hubspot` }).crm.contacts.basicApi.getById('601', ['email']);
  assert.equal(c.properties.email, 'ada@acme.test');
  const calls = await fake.requests();
  assert.equal(calls.length, 1);
  assert.equal(calls[0].headers.authorization, 'Bearer pat-na1-acme-by-config');

  /* --socket wins over -c; a config naming only a state_dir points there (nothing listens) */
  r = cli(['key', 'list', '-c', byStateDir, '--socket', path.join(dir, 'admin.sock')]);
  assert.equal(r.status, 0, r.stderr);
  r = cli(['key', 'list', '-c', byStateDir]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, new RegExp(`cannot reach crmgate at ${path.join(dir, 'elsewhere', 'admin.sock')}`));

  /* bad config files: a clear message, nothing created */
  const empty = path.join(dir, 'empty.json');
  fs.writeFileSync(empty, '{}');
  const broken = path.join(dir, 'broken.json');
  fs.writeFileSync(broken, '{"state_dir": ');
  for (const [file, re] of [[empty, /sets neither admin.socket nor state_dir/], [broken, /broken.json: .*line 1/], [path.join(dir, 'absent.json'), /absent.json/]]) {
    r = cli(['key', 'create', '-c', file, '--workspace', 'acme', '--kind', 'workflow']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, re);
    assert.equal(r.stdout, '');
    r = cli(['integration', 'remove', '-c', file, '--workspace', 'acme', '--crm', 'hubspot']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, re);
  }
  r = cli(['key', 'revoke', id, '-c', serveConfig]);
  assert.equal(r.status, 0, r.stderr);
  r = cli(['key', 'list', '-c', serveConfig, '--json']);
  assert.deepEqual(JSON.parse(r.stdout).keys.map((k) => k.state), ['revoked'], 'only the revoke changed anything');
  r = cli(['integration', 'remove', '-c', serveConfig, '--workspace', 'acme', '--crm', 'hubspot']);
  assert.equal(r.status, 0, r.stderr);
  r = cli(['key', '--help']);
  assert.match(r.stdout, /-c, --config FILE/);
});
