'use strict';
/*
 * crmgate_requests_total counts what crmgate refused on its own under decision "refused", never
 * "allow": a bad context header (400, both SDKs), a write dry-run cannot answer (403
 * dry_run_unsupported), a method crmgate does not serve (405) and a path with no route (404,
 * crm "none"). Policy denials stay "deny", and a served request "allow".
 */
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { Client } = require('@hubspot/api-client');
const jsforce = require('jsforce');
const harness = require('./harness.js');

const GATE = harness.crmgateAvailable() ? false : `crmgate binary not built (${harness.crmgateBinary()})`;
const VERSION = '62.0';
const HS = harness.OPEN_TOKENS[1];
const SF = harness.OPEN_TOKENS[3];
const ACC = harness.sfId('001', 'Seed', 1);
const HS_OPTS = { middleware: [], middlewareMergeStrategy: 'append' };

let stack;

before(async () => {
  if (GATE) return;
  stack = await harness.startStack();
  await stack.fake.reset();
  await stack.fake.seed({
    hubspot: { objects: { contacts: [{ id: '701', properties: { email: 'm@example.com', firstname: 'M' } }] } },
    salesforce: { objects: { Account: [{ Id: ACC, Name: 'Metrics Inc' }] } },
  });
});

after(async () => {
  if (stack) await stack.stop();
});

function sample(text, name, labels) {
  for (const line of text.split('\n')) {
    const m = line.match(/^([a-z_:]+)\{(.*)\} (\S+)$/);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...m[2].matchAll(/([a-z_]+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3]);
  }
  return 0;
}

function raw(method, p) {
  return new Promise((resolve, reject) => {
    const req = http.request(`${stack.gate.url}${p}`, { method, headers: { Authorization: `Bearer ${HS}` } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    req.end();
  });
}

test('refusals outside policy count as decision "refused", not "allow"', { skip: GATE }, async () => {
  const scrape = async () => (await stack.gate.admin('GET', '/metrics')).body;
  const m0 = await scrape();
  const delta = (m1, labels) => sample(m1, 'crmgate_requests_total', labels) - sample(m0, 'crmgate_requests_total', labels);

  /* a bad context header, with both SDKs: 400, nothing forwarded */
  await stack.fake.clearRequests();
  const sf = new jsforce.Connection({ instanceUrl: stack.salesforceBase, accessToken: SF, version: VERSION });
  await assert.rejects(sf.sobject('Account').update({ Id: ACC, Name: 'x' }, { headers: { 'X-Crmgate-Dry-Run': 'yes' } }), /X-Crmgate-Dry-Run/);
  const hsBad = new Client({ accessToken: HS, basePath: stack.hubspotBase, defaultHeaders: { 'X-Crmgate-Dry-Run': 'maybe' }, numberOfApiCallRetries: 0 });
  await assert.rejects(hsBad.crm.contacts.basicApi.update('701', { properties: { firstname: 'x' } }, undefined, HS_OPTS), (e) => e.code === 400);
  assert.deepEqual(await stack.fake.requests(), []);
  /* dry-run cannot answer a composite graph: 403 dry_run_unsupported */
  await assert.rejects(sf.request({
    method: 'POST',
    url: `/services/data/v${VERSION}/composite/graph`,
    body: JSON.stringify({ graphs: [{ graphId: 'g', compositeRequest: [{ method: 'PATCH', url: `/services/data/v${VERSION}/sobjects/Account/${ACC}`, referenceId: 'r', body: { Name: 'g' } }] }] }),
    headers: { 'Content-Type': 'application/json', 'X-Crmgate-Dry-Run': '1' },
  }), /dry-run|dry_run/i);
  /* no route, and a method crmgate does not serve */
  assert.equal(await raw('GET', '/nowhere/at/all'), 404);
  assert.equal(await raw('TRACE', '/hubspot/crm/v3/objects/contacts/701'), 405);
  /* controls: a served read, and a policy denial (an unknown endpoint) */
  const hs = new Client({ accessToken: HS, basePath: stack.hubspotBase, numberOfApiCallRetries: 0 });
  assert.equal((await hs.crm.contacts.basicApi.getById('701', ['firstname'])).properties.firstname, 'M');
  assert.equal(await raw('GET', '/hubspot/no/such/endpoint'), 403);

  const m1 = await scrape();
  /* the bad header and the graph (its first operation is an update) */
  assert.equal(delta(m1, { crm: 'salesforce', verb: 'update', decision: 'refused' }), 2);
  assert.equal(delta(m1, { crm: 'hubspot', verb: 'update', decision: 'refused' }), 1);
  assert.equal(delta(m1, { crm: 'none', verb: 'unknown', decision: 'refused' }), 1);
  assert.equal(delta(m1, { crm: 'hubspot', verb: 'unknown', decision: 'refused' }), 1, 'the TRACE');
  assert.equal(delta(m1, { crm: 'hubspot', verb: 'read', decision: 'allow' }), 1);
  assert.equal(delta(m1, { crm: 'hubspot', verb: 'unknown', decision: 'deny' }), 1);
  for (const crm of ['hubspot', 'salesforce']) {
    assert.equal(delta(m1, { crm, verb: 'update', decision: 'allow' }), 0, `${crm}: no refusal counted as allow`);
  }
});
