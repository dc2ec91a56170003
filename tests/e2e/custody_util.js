'use strict';
/*
 * Helpers the credential-custody suites share (custody.test.js, custody_backoff.test.js):
 * a fake CRM and a crmgate with a vault key, the CLI against its admin socket, and the
 * secret checks.
 */
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const harness = require('./harness.js');

const BIN = harness.crmgateBinary();

/* Run the CLI against gate's admin socket; returns {status, stdout, stderr}. */
function cli(gate, args, input) {
  const r = spawnSync(BIN, [...args, '--state-dir', gate.stateDir], { input: input || '', encoding: 'utf8', timeout: 15000 });
  harness.noteCliSecrets(args, input, r);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function ok(r, what) {
  assert.equal(r.status, 0, `${what}: exit ${r.status}\n${r.stderr}${r.stdout}`);
  return r;
}

function newKey(gate, args) {
  const r = ok(cli(gate, ['key', 'create', ...args]), `key create ${args.join(' ')}`);
  const key = r.stdout.trim();
  assert.match(key, /^cgk_[A-Za-z0-9_-]{43}$/);
  const id = /key ([0-9a-f]{16})/.exec(r.stderr)[1];
  return { key, id };
}

function addIntegration(gate, args, secrets) {
  ok(cli(gate, ['integration', 'add', ...args], typeof secrets === 'string' ? secrets : JSON.stringify(secrets)),
    `integration add ${args.join(' ')}`);
}

/* `crmgate integration list --json`: the integrations as the admin API shows them. */
function integrations(gate) {
  return JSON.parse(ok(cli(gate, ['integration', 'list', '--json']), 'integration list').stdout).integrations;
}

/* The admin API's /metrics text. */
function metrics(gate) {
  return spawnSync('curl', ['-s', '--unix-socket', path.join(gate.stateDir, 'admin.sock'), 'http://x/metrics'], { encoding: 'utf8' }).stdout;
}

/*
 * A fake CRM and a crmgate with a fresh vault key, both CRMs pointed at the fake.
 * opts: {rules: {file: workspace}, callers, margin (vault.refresh_margin_s, default 300),
 * vault: more vault keys, config: more top-level keys, forward, workers (default 2)}.
 */
async function startCustody(opts = {}) {
  const fake = await harness.startFake();
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'crmgate-custody-'));
  const keyFile = path.join(stateDir, 'vault.key');
  ok(spawnSync(BIN, ['vault', 'keygen', '--out', keyFile], { encoding: 'utf8' }), 'vault keygen');
  assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600, 'the vault key is written 0600');
  const rulesDir = path.join(stateDir, 'rules');
  fs.mkdirSync(rulesDir);
  for (const [f, ws] of Object.entries(opts.rules || {})) fs.writeFileSync(path.join(rulesDir, f), JSON.stringify(ws));
  const config = {
    rules_dir: rulesDir,
    callers: opts.callers || [],
    vault: { key_file: keyFile, refresh_margin_s: opts.margin || 300, ...(opts.vault || {}) },
    log_level: 'debug',
    ...(opts.config || {}),
  };
  const gate = await harness.startCrmgate({ config, stateDir, upstreams: { hubspot: fake.url, salesforce: fake.url }, forward: opts.forward, workers: opts.workers });
  return { fake, gate, keyFile, stop: async () => { await gate.stop(); await fake.stop(); } };
}

/* POST a form to the fake's token endpoint (the test's own OAuth dance, not crmgate's). */
function postForm(url, form) {
  return new Promise((resolve, reject) => {
    const body = Buffer.from(form);
    const req = require('node:http').request(url, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': body.length } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/* No secret in LMDB's files, the log or stdout. */
function assertNoSecrets(gate, secrets) {
  const files = fs.readdirSync(path.join(gate.stateDir, 'db')).map((f) => path.join(gate.stateDir, 'db', f));
  for (const secret of secrets) {
    assert.ok(secret && secret.length > 8, `a real secret to look for: ${secret}`);
    for (const f of files) assert.ok(!fs.readFileSync(f).includes(Buffer.from(secret)), `${secret.slice(0, 6)}... found in ${f}`);
    assert.ok(!gate.stderr().includes(secret), `${secret.slice(0, 6)}... found in the log`);
    assert.ok(!gate.stdout().includes(secret), `${secret.slice(0, 6)}... found on stdout`);
  }
}

module.exports = { BIN, cli, ok, newKey, addIntegration, integrations, metrics, startCustody, postForm, assertNoSecrets };
