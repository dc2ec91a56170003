'use strict';
/*
 * The admin CLI (issue 4) through the real binary: `crmgate dry-run on|off|reset|status`,
 * `crmgate diffs` (table, --json, filters, paging, --db with the daemon stopped) and
 * `crmgate stats`, over the unix socket (--socket, --state-dir) and over TCP (--url with
 * $CRMGATE_ADMIN_TOKEN); bad usage exits 2, a refusal or an unreachable daemon exits 1, each
 * with a clear message. `make demo`'s script runs too. Writes come from the official SDKs.
 */

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { Client } = require('@hubspot/api-client');
const jsforce = require('jsforce');
const harness = require('./harness.js');
const { idChecksum } = require('../fakecrm/salesforce.js');

const GATE = harness.crmgateAvailable() ? false : `crmgate binary not built (${harness.crmgateBinary()})`;
const BIN = harness.crmgateBinary();
const HS = 'pat-na1-cli00000-0000-0000-0000-00000000000a';
const SF = '00DCli000000001!AQclitoken';
const TOKEN = 'cli-admin-token-0123456789-abcdef';
const OPP = (() => { const id15 = '006CliOpp000001'; return id15 + idChecksum(id15); })();
const HS_OPTS = { middleware: [], middlewareMergeStrategy: 'append' };

const OBJECTS = {
  hubspot: { objects: { deals: { read: ['dealname', 'amount', 'dealstage', 'hs_object_id'], write: { amount: {}, dealstage: {}, dealname: {} } } } },
  salesforce: { objects: { Opportunity: { read: ['Id', 'Name', 'StageName', 'Amount'], write: { StageName: {}, Amount: {} } } } },
};
const RULES = {
  'alpha.json': { workspace: 'alpha', mode: 'enforce', ...OBJECTS },
  'beta.json': { workspace: 'beta', mode: 'dry_run', ...OBJECTS },
};
const CALLERS = [{ token: HS, workspace: 'alpha', user: 'ana' }, { token: SF, workspace: 'alpha', user: 'ana' }];

let fake;
let gate;
let stateDir;

/* Run the CLI; resolves {code, stdout, stderr} (never rejects on a non-zero exit). */
function cli(args, { env = {}, timeoutMs = 30000 } = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CRMGATE_ADMIN_URL: '', CRMGATE_ADMIN_TOKEN: '', ...env } });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`crmgate ${args.join(' ')} timed out`)); }, timeoutMs);
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    p.on('error', reject);
    p.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

before(async () => {
  if (GATE) return;
  fake = await harness.startFake();
  await fake.seed({
    hubspot: { objects: { deals: [1, 2, 3, 4].map((i) => ({ id: String(200 + i), properties: { dealname: `D${i}`, amount: String(100 * i), dealstage: 'appointmentscheduled' } })) } },
    salesforce: { objects: { Opportunity: [{ Id: OPP, Name: 'Globex', StageName: 'Prospecting', Amount: 50000, CloseDate: '2027-01-31' }] } },
  });
  stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'crmgate-cli-'));
  gate = await harness.startCrmgate({
    stateDir, rules: RULES, callers: CALLERS, upstreams: { hubspot: fake.url, salesforce: fake.url },
    config: { admin: { listen: '127.0.0.1:0', token: TOKEN } },
  });
});

after(async () => {
  if (gate) await gate.stop();
  if (fake) await fake.stop();
  if (stateDir) fs.rmSync(stateDir, { recursive: true, force: true });
});

test('--help of each command, and bad usage exits 2 with a message', { skip: GATE }, async () => {
  for (const cmd of ['dry-run', 'diffs', 'stats']) {
    const r = await cli([cmd, '--help']);
    assert.equal(r.code, 0, cmd);
    assert.match(r.stdout, new RegExp(`^Usage: crmgate ${cmd}`), cmd);
    assert.match(r.stdout, /--socket PATH/);
  }
  const top = await cli(['--help']);
  assert.match(top.stdout, /crmgate dry-run on\|off\|reset\|clear\|status/);
  assert.match(top.stdout, /crmgate diffs/);
  assert.match(top.stdout, /crmgate stats/);
  const cases = [
    [['dry-run'], /Usage: crmgate dry-run/],
    [['dry-run', 'on'], /--workspace W is required/],
    [['dry-run', 'maybe', '--workspace', 'alpha'], /unknown action "maybe"/],
    [['dry-run', 'on', '--workspace', 'alpha', '--db', stateDir], /--db is for reading/],
    [['diffs', '--bogus'], /bad option --bogus/],
    [['diffs', 'extra'], /unexpected argument "extra"/],
    [['diffs', '--limit', '5', '--limit', '6'], /--limit is given twice/],
    [['stats', '--outcome', 'allowed'], /--outcome is not an option of this command/],
    [['diffs', '--db', stateDir, '--limit', '0'], /limit "0"/],
    [['diffs', '--db', stateDir, '--since', 'yesterday'], /since: "yesterday" is not a time/],
  ];
  for (const [args, re] of cases) {
    const r = await cli(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re, args.join(' '));
  }
});

/*
 * The README's CLI synopsis against the binary: every command it lists answers --help (and -h) on
 * stdout with exit 0, that help names every flag the README gives the command, and the top-level
 * help's one-line summaries of dry-run, diffs and stats name theirs too.
 */
test('README CLI synopsis: every command\'s --help exits 0 and names each flag the README gives it', { skip: GATE }, async () => {
  const readme = fs.readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8');
  const block = readme.split('\n## CLI\n')[1].split('```')[1];
  const flags = new Map();
  let cmd = null;
  for (const line of block.split('\n')) {
    const m = /^crmgate ([a-z-]+)/.exec(line);
    if (m) cmd = m[1];
    else if (!/^\s/.test(line)) cmd = null;
    if (cmd === null || cmd === 'version') continue;
    if (!flags.has(cmd)) flags.set(cmd, new Set());
    for (const f of line.match(/--[a-z][a-z-]*/g) || []) flags.get(cmd).add(f);
  }
  for (const c of ['serve', 'key', 'integration', 'vault', 'policy', 'token', 'ca', 'dry-run', 'diffs', 'stats']) assert.ok(flags.has(c), `README CLI block lists crmgate ${c}`);
  const top = await cli(['--help']);
  assert.equal(top.code, 0);
  for (const [c, want] of flags) {
    if (c === '--help') continue;
    for (const h of ['--help', '-h']) {
      const r = await cli(c === 'serve' ? ['serve', h] : [c, h]);
      assert.equal(r.code, 0, `crmgate ${c} ${h}: ${r.stderr}`);
      assert.equal(r.stderr, '', `crmgate ${c} ${h} prints its help on stdout`);
      for (const f of want) assert.ok(r.stdout.includes(f), `crmgate ${c} ${h} names ${f}`);
    }
  }
  const summary = (c) => top.stdout.split('\n  crmgate ').find((part) => part.startsWith(`${c} `));
  for (const c of ['dry-run', 'diffs', 'stats']) {
    for (const f of flags.get(c)) assert.ok(summary(c).includes(f), `crmgate --help's line for ${c} names ${f}`);
  }
  const fp = await cli(['token', 'fingerprint', '--help']);
  assert.equal(fp.code, 0);
  assert.match(fp.stdout, /^Usage: crmgate token fingerprint/);
  const bad = await cli(['token', 'print']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^Usage: crmgate token fingerprint/);
});

test('dry-run on|off|reset|status through the socket and --state-dir; refusals exit 1', { skip: GATE }, async () => {
  const sock = ['--socket', gate.adminSocket];
  let r = await cli(['dry-run', 'status', ...sock]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^alpha: dry-run off \(from the rules: mode enforce\)$/m);
  assert.match(r.stdout, /^beta: dry-run on \(from the rules: mode dry_run\)$/m);

  r = await cli(['dry-run', 'on', '--workspace', 'alpha', '--state-dir', stateDir]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'alpha: dry-run on (runtime switch; the rules say mode enforce)\n');
  assert.equal((await gate.admin('GET', '/v1/workspaces/alpha')).body.dry_run_switch, true);
  /* an SDK write is now answered in dry-run */
  await fake.clearRequests();
  const hs = new Client({ accessToken: HS, basePath: `${gate.url}/hubspot`, numberOfApiCallRetries: 0 });
  await hs.crm.deals.basicApi.update('201', { properties: { amount: '111' } }, undefined, HS_OPTS);
  assert.equal((await fake.requests()).filter((q) => q.method === 'PATCH').length, 0);

  r = await cli(['dry-run', 'status', '--workspace', 'alpha', '--json', ...sock]);
  assert.equal(r.code, 0);
  assert.deepEqual(JSON.parse(r.stdout), { workspace: 'alpha', mode: 'enforce', rules_file: 'alpha.json', dry_run: true, dry_run_switch: true, dry_run_source: 'switch' });
  r = await cli(['dry-run', 'off', '--workspace', 'beta', ...sock]);
  assert.equal(r.stdout, 'beta: dry-run off (runtime switch; the rules say mode dry_run)\n');
  r = await cli(['dry-run', 'reset', '--workspace', 'beta', ...sock]);
  assert.equal(r.stdout, 'beta: dry-run on (from the rules: mode dry_run)\n');
  r = await cli(['dry-run', 'off', '--workspace', 'alpha', ...sock]);
  assert.equal(r.code, 0);

  r = await cli(['dry-run', 'on', '--workspace', 'nosuch', ...sock]);
  assert.equal(r.code, 2, 'an unknown workspace is a wrong command, as an unknown key id is');
  assert.match(r.stderr, /crmgate answered 404: unknown_workspace: no workspace "nosuch"/);
  r = await cli(['dry-run', 'on', '--workspace', 'a/b', ...sock]);
  assert.equal(r.code, 2, 'a name with a slash is one (unknown) workspace, escaped');
  assert.match(r.stderr, /no workspace "a\/b"/);
  /* -c FILE: serve's config names the socket (admin.socket, else state_dir) */
  const cfgs = path.join(stateDir, 'cli-configs');
  fs.mkdirSync(cfgs, { recursive: true });
  fs.writeFileSync(path.join(cfgs, 'sd.json'), JSON.stringify({ state_dir: stateDir }));
  fs.writeFileSync(path.join(cfgs, 'sock.json'), JSON.stringify({ state_dir: '/nonexistent', admin: { socket: gate.adminSocket } }));
  fs.writeFileSync(path.join(cfgs, 'none.json'), JSON.stringify({ listen: '127.0.0.1:1' }));
  for (const f of ['sd.json', 'sock.json']) {
    r = await cli(['dry-run', 'status', '--workspace', 'alpha', '-c', path.join(cfgs, f)]);
    assert.equal(r.code, 0, `${f}: ${r.stderr}`);
    assert.match(r.stdout, /^alpha: dry-run off/);
  }
  r = await cli(['dry-run', 'status', '--config', path.join(cfgs, 'none.json')]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /sets neither admin\.socket nor state_dir/);
  r = await cli(['dry-run', 'status', '-c', path.join(cfgs, 'missing.json')]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unable to open .*missing\.json: No such file/);
  assert.doesNotMatch(r.stderr, /line -1/);

  r = await cli(['dry-run', 'status', '--socket', path.join(stateDir, 'nope.sock')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot reach crmgate at .*nope\.sock: is it running\?/);
});

test('--url over TCP with $CRMGATE_ADMIN_TOKEN; without or with a wrong token it is refused', { skip: GATE }, async () => {
  let r = await cli(['dry-run', 'status', '--workspace', 'alpha', '--url', gate.adminUrl], { env: { CRMGATE_ADMIN_TOKEN: TOKEN } });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^alpha: dry-run off/);
  r = await cli(['stats'], { env: { CRMGATE_ADMIN_URL: gate.adminUrl, CRMGATE_ADMIN_TOKEN: TOKEN } });
  assert.equal(r.code, 0, r.stderr);
  r = await cli(['dry-run', 'status', '--url', gate.adminUrl]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /CRMGATE_ADMIN_TOKEN/);
  r = await cli(['dry-run', 'on', '--workspace', 'alpha', '--url', gate.adminUrl], { env: { CRMGATE_ADMIN_TOKEN: 'wrong-token' } });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /401: unauthorized/);
  assert.equal((await gate.admin('GET', '/v1/workspaces/alpha')).body.dry_run, false);
});

/* The admin token never goes to a proxy the shell names (libcurl reads http_proxy by default). */
test('--url over TCP ignores http_proxy and ALL_PROXY: the admin token goes to crmgate only', { skip: GATE }, async () => {
  const seen = [];
  const trip = require('node:net').createServer((c) => { c.on('data', (d) => seen.push(d.toString('latin1').split('\r\n')[0])); c.on('error', () => {}); setTimeout(() => c.destroy(), 100); });
  await new Promise((r) => trip.listen(0, '127.0.0.1', r));
  const proxy = `http://127.0.0.1:${trip.address().port}`;
  try {
    const r = await cli(['stats', '--url', gate.adminUrl], { env: { CRMGATE_ADMIN_TOKEN: TOKEN, http_proxy: proxy, HTTP_PROXY: proxy, ALL_PROXY: proxy, all_proxy: proxy, NO_PROXY: '', no_proxy: '' } });
    assert.deepEqual(seen, [], 'nothing may reach the proxy named by the environment');
    assert.equal(r.code, 0, r.stderr);
  } finally {
    trip.close();
  }
});

/*
 * What agents send ends up in the tables a human reads: a field name (recorded even when the
 * write is denied) must not carry an escape sequence or a carriage return to the terminal,
 * where it could recolour, retitle or overwrite the lines RevOps is reviewing. --json keeps
 * the exact name (JSON escapes it).
 */
test('diffs and stats tables print no control character an agent sent; --json keeps them exact', { skip: GATE }, async () => {
  const evil = 'x\u001b]0;PWNED\u0007\u001b[2K\rdealname\u009b31m';
  const hs = new Client({ accessToken: HS, basePath: `${gate.url}/hubspot`, defaultHeaders: { 'X-Crmgate-Workflow': 'esc-flow' }, numberOfApiCallRetries: 0 });
  await assert.rejects(hs.crm.deals.basicApi.update('204', { properties: { [evil]: 'v\u001b[31m' } }, undefined, HS_OPTS), (e) => e.code === 403);
  const clean = (text, what) => {
    assert.doesNotMatch(text, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/, `${what}: ${JSON.stringify(text)}`);
  };
  const table = await cli(['diffs', '--socket', gate.adminSocket, '--workflow', 'esc-flow', '--workspace', 'alpha']);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /denied/);
  clean(table.stdout, 'diffs');
  const stats = await cli(['stats', '--socket', gate.adminSocket, '--workspace', 'alpha']);
  assert.equal(stats.code, 0, stats.stderr);
  clean(stats.stdout, 'stats');
  const json = await cli(['diffs', '--socket', gate.adminSocket, '--workflow', 'esc-flow', '--workspace', 'alpha', '--json']);
  assert.equal(JSON.parse(json.stdout).records[0].fields[0].name, evil);
});

test('diffs: the table, --json, filters and paging; stats; then --db with the daemon stopped', { skip: GATE }, async () => {
  const t0 = Date.now();
  const hs = new Client({ accessToken: HS, basePath: `${gate.url}/hubspot`, defaultHeaders: { 'X-Crmgate-Workflow': 'cli-flow' }, numberOfApiCallRetries: 0 });
  await hs.crm.deals.basicApi.update('202', { properties: { amount: '2500', dealname: 'A very long deal name that goes on and on well past the column' } }, undefined, HS_OPTS);
  await hs.crm.deals.basicApi.update('203', { properties: { dealstage: 'closedwon' } }, undefined, HS_OPTS);
  const sf = new jsforce.Connection({ instanceUrl: `${gate.url}/salesforce`, accessToken: SF, version: '62.0' });
  await sf.sobject('Opportunity').update({ Id: OPP, StageName: 'Closed Won' }, { headers: { 'X-Crmgate-Workflow': 'cli-flow', 'X-Crmgate-Call': 'call-9' } });
  const sock = ['--socket', gate.adminSocket];
  const since = ['--since', String(t0)];

  let r = await cli(['diffs', ...sock, ...since]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.match(lines[0], /^TIME \(UTC\)\s+WORKSPACE\s+WORKFLOW\s+OBJECT\/RECORD\s+FIELD\s+BEFORE -> AFTER\s+OUTCOME$/);
  assert.equal(lines.length, 1 + 4, 'one line per field');
  assert.match(lines[1], /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+alpha\s+cli-flow\s+Opportunity\/006CliOpp\S+\s+StageName\s+Prospecting -> Closed Won\s+allowed$/);
  assert.match(lines[2], /alpha\s+cli-flow\s+deals\/203\s+dealstage\s+appointmentscheduled -> closedwon\s+allowed$/);
  assert.ok(lines.some((l) => /deals\/202\s+amount\s+200 -> 2500\s+allowed$/.test(l)), r.stdout);
  assert.ok(lines.some((l) => /deals\/202\s+dealname\s+D2 -> A very long deal name tha\.\.\.\s+allowed$/.test(l)), r.stdout);
  assert.equal(r.stderr, '');

  r = await cli(['diffs', ...sock, ...since, '--json']);
  const j = JSON.parse(r.stdout);
  assert.equal(j.records.length, 3);
  assert.equal(j.next, null);
  const api = (await gate.admin('GET', `/v1/audit?since=${t0}`)).body;
  assert.deepEqual(j, api, 'the CLI prints what the API answers');

  r = await cli(['diffs', ...sock, ...since, '--crm', 'salesforce', '--json']);
  assert.deepEqual(JSON.parse(r.stdout).records.map((x) => x.record), [OPP]);
  r = await cli(['diffs', ...sock, ...since, '--workspace', 'alpha', '--call', 'call-9', '--json']);
  assert.equal(JSON.parse(r.stdout).records.length, 1);
  r = await cli(['diffs', ...sock, ...since, '--object', 'deals', '--record', '202', '--crm', 'hubspot']);
  assert.equal(r.stdout.trim().split('\n').length, 1 + 2);
  r = await cli(['diffs', ...sock, ...since, '--outcome', 'denied']);
  assert.equal(r.stdout, 'no audited changes match\n');

  /* paging: --limit 1 says how to go on */
  r = await cli(['diffs', ...sock, ...since, '--limit', '1']);
  const m = r.stderr.match(/^\(more: add --cursor (\d+)\)$/m);
  assert.ok(m, r.stderr);
  r = await cli(['diffs', ...sock, ...since, '--limit', '1', '--cursor', m[1], '--json']);
  assert.equal(JSON.parse(r.stdout).records[0].record, '203');

  /* a filter the daemon refuses: exit 2, the parameter named */
  r = await cli(['diffs', ...sock, '--outcome', 'nope']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /crmgate answered 400: bad_filter: outcome "nope"/);

  r = await cli(['stats', ...sock]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^audited field changes: \d+$/m);
  assert.match(r.stdout, /^by workflow:\n(  .*\n)*  cli-flow\s+4$/m);
  assert.match(r.stdout, /^  hubspot\/deals\.amount\s+\d+$/m);
  const statsJson = JSON.parse((await cli(['stats', '--workspace', 'alpha', '--json', ...sock])).stdout);
  assert.equal(statsJson.workspace, 'alpha');
  assert.equal(statsJson.by_workflow['cli-flow'], 4);

  /* --db beside the running daemon (LMDB readers do not block its writer) */
  r = await cli(['diffs', '--db', stateDir, ...since, '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), api);

  /* the daemon stopped: the socket is gone, --db still reads the store */
  await gate.stop();
  gate = null;
  r = await cli(['diffs', ...sock]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot reach crmgate at .*admin\.sock: is it running\?/);
  for (const db of [stateDir, path.join(stateDir, 'db')]) {
    r = await cli(['diffs', '--db', db, ...since, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), api, `--db ${db}`);
  }
  r = await cli(['diffs', '--db', stateDir, ...since]);
  assert.equal(r.stdout.trim().split('\n').length, 1 + 4);
  r = await cli(['stats', '--db', stateDir, '--workspace', 'alpha', '--json']);
  assert.deepEqual(JSON.parse(r.stdout), statsJson);
  r = await cli(['diffs', '--db', path.join(stateDir, 'nope')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /nope/);
});

test('make demo\'s script: both SDKs, enforce then dry-run, diffs printed, everything cleaned up', { skip: GATE, timeout: 120000 }, async () => {
  const r = await new Promise((resolve, reject) => {
    const p = spawn('bash', [path.join(harness.REPO, 'tests', 'demo', 'run.sh')], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CRMGATE_BIN: BIN } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const out = r.stdout;
  assert.match(out, /HubSpot  deal 123 amount 12000 -> 120000: ok, CRM says amount=120000/);
  assert.match(out, /contact 501 phone \(not writable by policy\): refused 403 crmgate denied/);
  assert.match(out, /Salesforce Opportunity stage -> Negotiation: ok, CRM says StageName=Negotiation\/Review/);
  assert.match(out, /demo: dry-run on \(runtime switch/);
  assert.match(out, /deal 123 dealstage -> closedwon: ok, answer says closedwon; read back closedwon/);
  assert.match(out, /the CRM itself still has deal 123 dealstage=appointmentscheduled, Opportunity Amount=50000, 1 Opportunity/);
  assert.match(out, /\$ crmgate diffs\nTIME \(UTC\)/);
  assert.match(out, /demo\s+renewal-bot\s+deals\/123\s+amount\s+12000 -> 120000\s+allowed/);
  assert.match(out, /demo\s+renewal-bot\s+deals\/123\s+dealstage\s+appointmentscheduled -> closedwon\s+dry_run/);
  assert.match(out, /demo\s+renewal-bot\s+contacts\/501\s+phone\s+\(not read\) -> \+1 555 9999\s+denied/);
  assert.match(out, /\$ crmgate stats\naudited field changes: 8/);
  const dir = out.match(/admin socket (\S+)\/state\/admin\.sock/)[1];
  assert.equal(fs.existsSync(dir), false, 'the demo removed its temporary directory');
});

