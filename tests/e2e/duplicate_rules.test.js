'use strict';
/*
 * Salesforce duplicate rules (rules: actions.save_duplicates). A write sent with
 * `Sforce-Duplicate-Rule-Header: allowSave=true` asks Salesforce to save it although the org's
 * duplicate rules flag it as a duplicate: the wrong data the product exists to keep out. crmgate
 * forwards such a write only when the object's rules set `actions.save_duplicates`; otherwise
 * jsforce gets Salesforce's error shape with crmgate's reason, the CRM receives nothing, and the
 * denial is audited. Composite subrequests carry the header in `httpHeaders`, checked the same
 * way; a header crmgate cannot read (allowSave neither true nor false, two copies, spelt with
 * '_') is refused.
 *
 *   node --test tests/e2e/duplicate_rules.test.js
 */

const { test, before, after, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const jsforce = require('jsforce');
const harness = require('./harness.js');

const VERSION = '62.0';
const TOKEN = '00DHs0000000001!AQduplicaterulestoken';
const GATE = harness.crmgateAvailable() ? false : `crmgate binary not built (${harness.crmgateBinary()})`;
const DUP = 'Sforce-Duplicate-Rule-Header';

const RULES = {
  workspace: 'dupes',
  salesforce: {
    objects: {
      /* leads may be saved past duplicate rules; contacts may not */
      Lead: { read: ['LastName', 'Company'], write: ['LastName', 'Company'], actions: { create: true, save_duplicates: true } },
      Contact: { read: ['LastName', 'Email'], write: ['LastName', 'Email'], actions: { create: true } },
    },
  },
};

let stack;

before(async () => {
  if (GATE) return;
  stack = await harness.startStack({
    gate: {
      rules: { 'dupes.json': RULES },
      callers: [{ token: TOKEN, workspace: 'dupes', user: 'agent@dupes', kind: 'workflow' }],
    },
  });
});

after(async () => {
  if (stack) await stack.stop();
});

beforeEach(async () => {
  if (!stack) return;
  await stack.fake.reset();
  await stack.fake.clearRequests();
});

const connect = () => new jsforce.Connection({ instanceUrl: stack.salesforceBase, accessToken: TOKEN, version: VERSION });
const DATA = `/services/data/v${VERSION}`;

async function writesReceived() {
  return (await stack.fake.requests()).filter((r) => r.method !== 'GET');
}

async function lastAudit(filter) {
  const q = new URLSearchParams({ workspace: 'dupes', limit: '1', ...filter });
  const res = await stack.gate.admin('GET', `/v1/audit?${q}`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.records[0];
}

async function expectDuplicateDenied(call, object) {
  let caught;
  await assert.rejects(call(), (e) => { caught = e; return true; });
  assert.equal(caught.errorCode, 'INSUFFICIENT_ACCESS_OR_READONLY', caught.message);
  assert.match(caught.message, /duplicate rules/);
  assert.match(caught.message, /actions\/save_duplicates/);
  assert.equal(caught.data.crmgateError, 'policy_denied');
  assert.deepEqual(await writesReceived(), [], 'a refused write must not reach the CRM');
  const rec = await lastAudit({ outcome: 'denied' });
  assert.equal(rec.object, object);
  assert.match(rec.rule, /actions\/save_duplicates$/);
  assert.equal(rec.save_duplicates, true, 'the record says what the write asked for');
}

test('jsforce create with allowSave=true: forwarded with the header where save_duplicates is set, denied and audited where not', { skip: GATE }, async () => {
  const conn = connect();
  const ok = await conn.sobject('Lead').create({ LastName: 'Dup', Company: 'Acme' }, { headers: { [DUP]: 'allowSave=true' } });
  assert.equal(ok.success, true, JSON.stringify(ok));
  const sent = await writesReceived();
  assert.equal(sent.length, 1);
  assert.equal(sent[0].headers['sforce-duplicate-rule-header'], 'allowSave=true', 'the CRM gets the header as sent');
  const allowed = await lastAudit({ outcome: 'allowed' });
  assert.equal(allowed.record, ok.id);
  assert.equal(allowed.save_duplicates, true, 'RevOps sees the write was saved past duplicate rules');
  /* and so does crmgate diffs (here reading the store directly) */
  const diffs = spawnSync(harness.crmgateBinary(), ['diffs', '--db', stack.gate.stateDir, '--workspace', 'dupes', '--record', ok.id], { encoding: 'utf8', timeout: 10000 });
  assert.equal(diffs.status, 0, diffs.stderr);
  assert.match(diffs.stdout, /Lead\/\S+\s+LastName\s+\(new\) -> Dup\s+allowed \(past duplicate rules\)/);

  await stack.fake.clearRequests();
  await expectDuplicateDenied(() => conn.sobject('Contact').create({ LastName: 'Dup' }, { headers: { [DUP]: 'allowSave=true; includeRecordDetails=true' } }), 'Contact');
  /* in dry-run as well: the rules decide before anything is answered */
  await expectDuplicateDenied(() => conn.sobject('Contact').create({ LastName: 'Dup' }, { headers: { [DUP]: 'allowSave=true', 'X-Crmgate-Dry-Run': '1' } }), 'Contact');
  /* an update past duplicate rules too, spelt loosely */
  await expectDuplicateDenied(() => conn.sobject('Contact').update({ Id: harness.sfId('003', 'Dup0', 1), LastName: 'x' }, { headers: { [DUP]: ' AllowSave = TRUE ' } }), 'Contact');
});

test('allowSave=false, or no allowSave, needs no save_duplicates', { skip: GATE }, async () => {
  const conn = connect();
  for (const value of ['allowSave=false', 'includeRecordDetails=true', 'allowSave=false;runAsCurrentUser=true']) {
    const ok = await conn.sobject('Contact').create({ LastName: `Plain ${value}` }, { headers: { [DUP]: value } });
    assert.equal(ok.success, true, `${value}: ${JSON.stringify(ok)}`);
    assert.equal((await lastAudit({ outcome: 'allowed' })).save_duplicates, undefined, value);
  }
  assert.equal((await writesReceived()).length, 3);
});

test('composite: a subrequest with allowSave=true is checked on its own object', { skip: GATE }, async () => {
  const conn = connect();
  const body = (dupOn) => ({
    allOrNone: true,
    compositeRequest: [
      { method: 'POST', url: `${DATA}/sobjects/Lead`, referenceId: 'l', body: { LastName: 'L', Company: 'C' }, httpHeaders: { [DUP]: 'allowSave=true' } },
      { method: 'POST', url: `${DATA}/sobjects/Contact`, referenceId: 'c', body: { LastName: 'C' }, ...(dupOn ? { httpHeaders: { [DUP]: 'allowSave=true' } } : {}) },
    ],
  });
  const ok = await conn.requestPost(`${DATA}/composite`, body(false));
  assert.deepEqual(ok.compositeResponse.map((r) => r.httpStatusCode), [201, 201]);
  await stack.fake.clearRequests();
  await expectDuplicateDenied(() => conn.requestPost(`${DATA}/composite`, body(true)), 'Contact');
  /* the request's own header covers every write of the composite */
  let caught;
  await assert.rejects(conn.request({ method: 'POST', url: `${DATA}/composite`, body: JSON.stringify(body(false)), headers: { 'content-type': 'application/json', [DUP]: 'allowSave=true' } }), (e) => { caught = e; return true; });
  assert.match(caught.message, /actions\/save_duplicates/);
  assert.deepEqual(await writesReceived(), []);
});

test('a duplicate-rule header crmgate cannot read is refused, never forwarded', { skip: GATE }, async () => {
  const path = `${DATA}/sobjects/Lead`;
  const body = { LastName: 'x', Company: 'y' };
  const cases = [
    [{ [DUP]: 'allowSave=yes' }, 403, /allowSave is neither true nor false/],
    [{ [DUP]: 'allowSave' }, 403, /not key=value/],
    [{ 'Sforce_Duplicate_Rule_Header': 'allowSave=true' }, 400, /spelt with '-'/],
    [{ [DUP]: `includeRecordDetails=true;${' '.repeat(1100)}allowSave=true` }, 403, /allowSave is neither true nor false/],
  ];
  for (const [headers, status, re] of cases) {
    const res = await harness.rawRequest(stack.gate.port, 'POST', `/salesforce${path}`, { token: TOKEN, body, headers });
    assert.equal(res.status, status, `${JSON.stringify(headers).slice(0, 80)}: ${res.status} ${res.text}`);
    assert.match(res.text, re);
    assert.ok(Array.isArray(res.json) && res.json[0].errorCode, `Salesforce's error shape: ${res.text}`);
  }
  /* two copies: crmgate would check one and the CRM might read the other */
  const two = await harness.rawRequest(stack.gate.port, 'POST', `/salesforce${path}`, { token: TOKEN, body, headers: { [DUP]: ['allowSave=false', 'allowSave=true'] } });
  assert.equal(two.status, 400, two.text);
  assert.match(two.text, /more than one sforce-duplicate-rule-header header/);
  assert.deepEqual(await writesReceived(), []);
});

/* One request as raw bytes (node's client refuses control bytes in header values); the answer's status. */
function rawStatus(bytes) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port: stack.gate.port });
    let got = '';
    sock.setTimeout(10000, () => { sock.destroy(); reject(new Error('no answer')); });
    sock.on('data', (d) => { got += d.toString('latin1'); });
    sock.on('end', () => resolve(Number((/^HTTP\/1\.[01] (\d{3})/.exec(got) || [])[1])));
    sock.on('error', reject);
    sock.end(bytes);
  });
}

test('bytes a looser reader could trim or split around allowSave are refused, in the header and in a composite subrequest', { skip: GATE }, async () => {
  /* Java's trim() drops every byte up to ' ': "\vallowSave=true" would be allowSave=true to it */
  const conn = connect();
  for (const value of ['\u000ballowSave=true', 'allowSave\f=true', 'includeRecordDetails=true\nallowSave=true', 'includeRecordDetails=true allowSave=true']) {
    let caught;
    await assert.rejects(conn.requestPost(`${DATA}/composite`, {
      compositeRequest: [{ method: 'POST', url: `${DATA}/sobjects/Contact`, referenceId: 'c', body: { LastName: 'C' }, httpHeaders: { [DUP]: value } }],
    }), (e) => { caught = e; return true; });
    assert.match(caught.message, /Sforce-Duplicate-Rule-Header not classified/, JSON.stringify(value));
    /* the request's own header: HTTP has no room for those bytes, or crmgate refuses them */
    const body = '{"LastName":"x","Company":"y"}';
    const status = await rawStatus(`POST /salesforce${DATA}/sobjects/Lead HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n${DUP}: ${value}\r\nConnection: close\r\n\r\n${body}`);
    assert.ok(status === 400 || status === 403, `${JSON.stringify(value)} in the header: ${status}`);
  }
  /* a header folded onto a second line (obs-fold) */
  const folded = await rawStatus(`POST /salesforce${DATA}/sobjects/Contact HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\n` +
    `Content-Type: application/json\r\nContent-Length: 16\r\n${DUP}: includeRecordDetails=true;\r\n allowSave=true\r\nConnection: close\r\n\r\n{"LastName":"x"}`);
  assert.ok(folded === 400 || folded === 403, `obs-fold: ${folded}`);
  assert.deepEqual(await writesReceived(), [], 'nothing reached the CRM');
});

test('crmgate policy explain shows the write saved past duplicate rules, and denies it', { skip: GATE }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'crmgate-e2e-dupes-'));
  try {
    fs.mkdirSync(path.join(dir, 'rules'));
    fs.writeFileSync(path.join(dir, 'rules', 'dupes.json'), JSON.stringify(RULES));
    fs.writeFileSync(path.join(dir, 'body.json'), '{"LastName":"x"}');
    const explain = (object) => spawnSync(harness.crmgateBinary(), ['policy', 'explain', '--rules-dir', path.join(dir, 'rules'), '--workspace', 'dupes', '--crm', 'salesforce',
      '--body', path.join(dir, 'body.json'), '--header', `${DUP}: allowSave=true`, 'POST', `${DATA}/sobjects/${object}`], { encoding: 'utf8', timeout: 10000 });
    const denied = explain('Contact');
    assert.equal(denied.status, 3, denied.stdout + denied.stderr);
    assert.match(denied.stdout, /"save_duplicates": ?true/);
    assert.match(denied.stdout, /actions\/save_duplicates/);
    const allowed = explain('Lead');
    assert.equal(allowed.status, 0, allowed.stdout + allowed.stderr);
    /* the plain-language summary an agent's prompt can carry says so too */
    const prompt = spawnSync(harness.crmgateBinary(), ['policy', 'prompt', '--rules-dir', path.join(dir, 'rules'), '--workspace', 'dupes'], { encoding: 'utf8', timeout: 10000 });
    assert.equal(prompt.status, 0, prompt.stderr);
    assert.match(prompt.stdout, /- Lead: .*may also create, save past duplicate rules/);
    assert.doesNotMatch(prompt.stdout, /- Contact: .*duplicate/);
    assert.match(prompt.stdout, /allowSave=true is refused unless its object above says/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
