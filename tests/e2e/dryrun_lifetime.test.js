'use strict';
/*
 * How long dry-run values live (the read-your-writes overlay), end to end with both SDKs
 * through crmgate against the fake CRMs:
 * - leaving dry-run through the switch (`crmgate dry-run off`, a reset to rules that do not say
 *   dry_run, PUT {"dry_run": false|null}) discards the workspace's dry-run values in the same
 *   commit and says how many; turned on again, reads show what the CRM holds by then;
 * - `crmgate dry-run clear` (DELETE /v1/workspaces/{ws}/overlay) discards them and stays in
 *   dry-run; a reset to rules that say dry_run keeps them;
 * - a rules file going from dry_run to enforce (SIGHUP, or a restart) discards them: at start
 *   and at each reload, the values of every workspace not in dry-run go, so header-only dry-run
 *   values in an enforce workspace last until the next reload or restart;
 * - audit records are never deleted by any of this.
 */

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { Client } = require('@hubspot/api-client');
const jsforce = require('jsforce');
const harness = require('./harness.js');

const GATE = harness.crmgateAvailable() ? false : `crmgate binary not built (${harness.crmgateBinary()})`;
const VERSION = '62.0';
const HS_LT = 'pat-na1-11110000-0000-0000-0000-00000000aaaa';
const SF_LT = '00DHs0000000001!AQlifetimetoken';
const HS_DR = 'pat-na1-22220000-0000-0000-0000-00000000bbbb';
const SF_DR = '00DHs0000000001!AQrulesdrytoken';
const ACME = harness.sfId('001', 'Seed', 1);

const SEED = {
  hubspot: { objects: { contacts: [{ id: '8101', properties: { email: 'ana@example.com', firstname: 'Ana' } }] } },
  salesforce: { objects: { Account: [{ Id: ACME, Name: 'Acme Rockets', Industry: 'Aerospace' }] } },
};
const { rules: RULES, callers: CALLERS } = harness.enforceAndDry({
  enf: ['lt', HS_LT, SF_LT, 'ana'], dry: ['dr', HS_DR, SF_DR, 'eng'] });

let fake;
let gate;
let stateDir;

const hs = (token, base = `${gate.url}/hubspot`) => new Client({ accessToken: token, basePath: base, numberOfApiCallRetries: 0 });
const sf = (token, base = `${gate.url}/salesforce`) => new jsforce.Connection({ instanceUrl: base, accessToken: token, version: VERSION });
/* the CRM itself, as a human in its UI would change it */
const crmHs = () => hs(harness.OPEN_TOKENS[1], fake.url);
const crmSf = () => sf(harness.OPEN_TOKENS[3], fake.url);

function cli(...args) {
  return new Promise((resolve) => {
    execFile(harness.crmgateBinary(), [...args, '--socket', gate.adminSocket], (err, stdout, stderr) => {
      resolve({ code: err ? err.code : 0, stdout, stderr });
    });
  });
}

function startGate() {
  return harness.startCrmgate({ stateDir, rules: RULES, callers: CALLERS, upstreams: { hubspot: fake.url, salesforce: fake.url } });
}

const hsName = async (token) => (await hs(token).crm.contacts.basicApi.getById('8101', ['firstname'])).properties.firstname;
const sfName = async (token, headers) => (await sf(token).sobject('Account').retrieve(ACME, headers ? { headers } : {})).Name;

async function auditCount(ws) {
  const r = await gate.admin('GET', `/v1/audit?workspace=${ws}&outcome=dry_run&limit=1000`);
  assert.equal(r.status, 200);
  return r.body.records.length;
}

async function until(what, fn, ms = 15000) {
  const end = Date.now() + ms;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

before(async () => {
  if (GATE) return;
  fake = await harness.startFake();
  await fake.reset();
  await fake.seed(SEED);
  stateDir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'crmgate-e2e-lifetime-'));
  gate = await startGate();
});

after(async () => {
  if (gate) await gate.stop();
  if (fake) await fake.stop();
});

test('dry-run off discards the dry-run values: on again, reads show what the CRM holds by then', { skip: GATE }, async () => {
  let r = await cli('dry-run', 'on', '--workspace', 'lt');
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stdout, /discarded/, 'on discards nothing');
  await hs(HS_LT).crm.contacts.basicApi.update('8101', { properties: { firstname: 'DryAna' } });
  await sf(SF_LT).sobject('Account').update({ Id: ACME, Name: 'Dry Rockets' });
  assert.equal(await hsName(HS_LT), 'DryAna', 'read-your-writes in dry-run');
  assert.equal(await sfName(SF_LT), 'Dry Rockets');
  const audited = await auditCount('lt');
  assert.equal(audited, 2);

  r = await cli('dry-run', 'off', '--workspace', 'lt');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /lt: dry-run off/);
  assert.match(r.stdout, /lt: 2 dry-run records discarded/);
  assert.equal(await hsName(HS_LT), 'Ana', 'off: the CRM value');

  /* the CRM changes meanwhile */
  await crmHs().crm.contacts.basicApi.update('8101', { properties: { firstname: 'Anna' } });
  await crmSf().sobject('Account').update({ Id: ACME, Name: 'Acme Rockets Inc' });
  r = await cli('dry-run', 'on', '--workspace', 'lt', '--json');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).overlay_discarded, 0);
  assert.equal(await hsName(HS_LT), 'Anna', 'on again: the CRM value, not the old dry-run one');
  assert.equal(await sfName(SF_LT), 'Acme Rockets Inc');
  assert.equal(await auditCount('lt'), audited, 'audit records stay');

  /* the same through the API: a reset to rules that say enforce discards, and says so */
  await hs(HS_LT).crm.contacts.basicApi.update('8101', { properties: { firstname: 'Dry2' } });
  assert.equal(await hsName(HS_LT), 'Dry2');
  const put = await gate.admin('PUT', '/v1/workspaces/lt', { dry_run: null });
  assert.equal(put.status, 200);
  assert.deepEqual({ d: put.body.dry_run, n: put.body.overlay_discarded }, { d: false, n: 1 });
  assert.equal((await gate.admin('PUT', '/v1/workspaces/lt', { dry_run: true })).body.overlay_discarded, 0);
  assert.equal(await hsName(HS_LT), 'Anna');
  assert.equal(await auditCount('lt'), audited + 1);
  assert.equal((await gate.admin('PUT', '/v1/workspaces/lt', { dry_run: null })).status, 200);
});

test('dry-run clear discards the values and stays in dry-run; a reset to dry_run rules keeps them', { skip: GATE }, async () => {
  await hs(HS_DR).crm.contacts.basicApi.update('8101', { properties: { firstname: 'DrAna' } });
  await sf(SF_DR).sobject('Account').update({ Id: ACME, Name: 'Dr Rockets' });
  assert.equal(await hsName(HS_DR), 'DrAna');
  /* the switch on, then reset: the rules say dry_run, so the values stay */
  assert.equal((await gate.admin('PUT', '/v1/workspaces/dr', { dry_run: true })).body.overlay_discarded, 0);
  let r = await cli('dry-run', 'reset', '--workspace', 'dr');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /dr: dry-run on \(from the rules: mode dry_run\)/);
  assert.doesNotMatch(r.stdout, /discarded/, 'a reset to dry_run rules discards nothing');
  assert.equal(await sfName(SF_DR), 'Dr Rockets');

  r = await cli('dry-run', 'clear', '--workspace', 'dr');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /dr: 2 dry-run records discarded/);
  assert.equal(await hsName(HS_DR), 'Anna', 'the CRM value');
  assert.equal(await sfName(SF_DR), 'Acme Rockets Inc');
  const st = await gate.admin('GET', '/v1/workspaces/dr');
  assert.equal(st.body.dry_run, true, 'still in dry-run');
  await fake.clearRequests();
  await hs(HS_DR).crm.contacts.basicApi.update('8101', { properties: { firstname: 'DrAgain' } });
  assert.equal((await fake.requests()).filter((q) => q.method === 'PATCH').length, 0, 'writes still not forwarded');
  assert.equal(await hsName(HS_DR), 'DrAgain');
  assert.equal(await auditCount('dr'), 3, 'audit records stay');

  /* bad input: 404 unknown workspace, 405 without /overlay, usage error without --workspace */
  assert.equal((await gate.admin('DELETE', '/v1/workspaces/nope/overlay')).status, 404);
  assert.equal((await gate.admin('DELETE', '/v1/workspaces/dr')).status, 405);
  assert.equal((await gate.admin('DELETE', '/v1/workspaces/overlay')).status, 405);
  r = await cli('dry-run', 'clear');
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--workspace W is required/);
  assert.equal(await hsName(HS_DR), 'DrAgain', 'bad calls changed nothing');
  r = await cli('dry-run', 'clear', '--workspace', 'dr', '--json');
  assert.deepEqual(JSON.parse(r.stdout), { workspace: 'dr', overlay_discarded: 1 });
});

test('a rules file going from dry_run to enforce (SIGHUP) discards; header-only values last until a reload or restart', { skip: GATE }, async () => {
  await hs(HS_DR).crm.contacts.basicApi.update('8101', { properties: { firstname: 'Reload' } });
  assert.equal(await hsName(HS_DR), 'Reload');
  const file = path.join(stateDir, 'rules', 'dr.json');
  const rules = JSON.parse(fs.readFileSync(file, 'utf8'));
  fs.writeFileSync(file, JSON.stringify({ ...rules, mode: 'enforce' }));
  const mark = gate.stderr().length;
  gate.proc.kill('SIGHUP');
  await until('the reload sweep', () => /1 dry-run record\(s\) of workspaces not in dry-run discarded/.test(gate.stderr().slice(mark)));
  fs.writeFileSync(file, JSON.stringify(rules));
  gate.proc.kill('SIGHUP');
  await until('dr back in dry-run', async () => (await gate.admin('GET', '/v1/workspaces/dr')).body.dry_run === true);
  assert.equal(await hsName(HS_DR), 'Anna', 'back in dry-run: the CRM value');

  /* header-only dry-run in the enforce workspace: kept for reads with the header ... */
  await fake.clearRequests();
  const h = { 'X-Crmgate-Dry-Run': '1' };
  await sf(SF_LT).sobject('Account').update({ Id: ACME, Name: 'Header Rockets' }, { headers: h });
  assert.equal((await fake.requests()).filter((q) => q.method === 'PATCH').length, 0);
  assert.equal(await sfName(SF_LT, h), 'Header Rockets');
  assert.equal(await sfName(SF_LT), 'Acme Rockets Inc', 'without the header: the CRM');
  const audited = await auditCount('lt');
  /* ... until a reload ... */
  const mark2 = gate.stderr().length;
  gate.proc.kill('SIGHUP');
  await until('the reload sweep', () => /1 dry-run record\(s\) of workspaces not in dry-run discarded/.test(gate.stderr().slice(mark2)));
  assert.equal(await sfName(SF_LT, h), 'Acme Rockets Inc');
  /* ... or a restart */
  await sf(SF_LT).sobject('Account').update({ Id: ACME, Name: 'Header Rockets 2' }, { headers: h });
  assert.equal(await sfName(SF_LT, h), 'Header Rockets 2');
  await gate.stop();
  gate = await startGate();
  assert.match(gate.stderr(), /1 dry-run record\(s\) of workspaces not in dry-run discarded/);
  assert.equal(await sfName(SF_LT, h), 'Acme Rockets Inc');
  assert.equal(await auditCount('lt'), audited + 1, 'audit records stay');
  /* dr is in dry-run by its rules: its values survive the restart */
  assert.equal(await hsName(HS_DR), 'Anna');
  await hs(HS_DR).crm.contacts.basicApi.update('8101', { properties: { firstname: 'Kept' } });
  await gate.stop();
  gate = await startGate();
  assert.equal(await hsName(HS_DR), 'Kept');
});
