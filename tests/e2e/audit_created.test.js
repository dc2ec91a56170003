'use strict';
/*
 * The audit records of multi-record creates carry the ids the CRM gave, so GET /v1/audit?record=ID
 * finds each creation: HubSpot batch create with @hubspot/api-client (its results matched by
 * objectWriteTraceId, else by the written values: the fake answers them in reverse order here,
 * as HubSpot does not promise input order; an input a 207 refuses is upstream_error, without an
 * id), Salesforce collections create with jsforce, composite and composite batch creates through
 * jsforce's request().
 */
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Client } = require('@hubspot/api-client');
const jsforce = require('jsforce');
const harness = require('./harness.js');

const GATE = harness.crmgateAvailable() ? false : `crmgate binary not built (${harness.crmgateBinary()})`;
const VERSION = '62.0';
const HS = harness.OPEN_TOKENS[1];
const SF = harness.OPEN_TOKENS[3];

let stack;
const hs = () => new Client({ accessToken: HS, basePath: stack.hubspotBase, numberOfApiCallRetries: 0 });
const sf = () => new jsforce.Connection({ instanceUrl: stack.salesforceBase, accessToken: SF, version: VERSION });

before(async () => {
  if (GATE) return;
  stack = await harness.startStack();
  await stack.fake.reset();
  await stack.fake.seed({ hubspot: { objects: { contacts: [{ id: '9901', properties: { email: 'taken@example.com' } }] } } });
});

after(async () => {
  if (stack) await stack.stop();
});

/* The creation records of id: exactly one, a create of object with these written values. */
async function expectCreation(crm, object, id, fields) {
  const r = await stack.gate.admin('GET', `/v1/audit?record=${encodeURIComponent(id)}`);
  assert.equal(r.status, 200);
  const recs = r.body.records.filter((x) => x.verb === 'create');
  assert.equal(recs.length, 1, `one creation of ${id}: ${JSON.stringify(r.body.records)}`);
  assert.deepEqual({ crm: recs[0].crm, object: recs[0].object, outcome: recs[0].outcome, record: recs[0].record },
    { crm, object, outcome: 'allowed', record: id });
  const after = Object.fromEntries(recs[0].fields.map((f) => [f.name, f.after]));
  for (const [k, v] of Object.entries(fields)) assert.equal(after[k], v, `${id}.${k}`);
}

test('HubSpot batch create: ids matched by the written values when the results come in another order', { skip: GATE }, async () => {
  await stack.fake.options({ batch_order: 'reversed' });
  const inputs = [
    { properties: { email: 'c1@example.com', firstname: 'One' }, associations: [] },
    { properties: { email: 'c2@example.com', firstname: 'Two' }, associations: [] },
    { properties: { email: 'C3@Example.com', firstname: 'Three' }, associations: [] },
  ];
  const res = await hs().crm.contacts.batchApi.create({ inputs });
  assert.equal(res.results.length, 3);
  assert.equal(res.results[0].properties.firstname, 'Three', 'the fake answered in reverse order');
  const st = (await stack.fake.state()).hubspot.objects.contacts;
  for (const input of inputs) {
    const made = st.find((c) => c.properties.firstname === input.properties.firstname);
    assert.ok(made);
    await expectCreation('hubspot', 'contacts', made.id, { firstname: input.properties.firstname });
  }
  await stack.fake.options({ batch_order: 'input' });
});

test('HubSpot batch create with objectWriteTraceId: matched by it; the input a 207 refuses has no id and is upstream_error', { skip: GATE }, async () => {
  await stack.fake.options({ batch_order: 'reversed' });
  /* the same values twice (only the trace id tells them apart) and one taken email */
  const inputs = [
    { objectWriteTraceId: 't-a', properties: { firstname: 'Twin', lastname: 'A', email: 'twin-a@example.com' }, associations: [] },
    { objectWriteTraceId: 't-bad', properties: { firstname: 'Dup', email: 'taken@example.com' }, associations: [] },
    { objectWriteTraceId: 't-b', properties: { firstname: 'Twin', lastname: 'B', email: 'twin-b@example.com' }, associations: [] },
  ];
  const res = await hs().crm.contacts.batchApi.create({ inputs });
  assert.equal(res.results.length, 2);
  assert.equal(res.errors.length, 1, '207 with the refused input');
  const byTrace = Object.fromEntries(res.results.map((r) => [r.objectWriteTraceId, r.id]));
  await expectCreation('hubspot', 'contacts', byTrace['t-a'], { lastname: 'A' });
  await expectCreation('hubspot', 'contacts', byTrace['t-b'], { lastname: 'B' });
  const recs = harness.readAuditRaw(stack.gate.stateDir).filter((r) => r.verb === 'create' && r.crm === 'hubspot');
  const refused = recs.filter((r) => r.fields.some((f) => f.name === 'email' && f.after === 'taken@example.com'));
  assert.equal(refused.length, 1);
  assert.deepEqual({ outcome: refused[0].outcome, record: refused[0].record }, { outcome: 'upstream_error', record: null });
  await stack.fake.options({ batch_order: 'input' });
});

test('Salesforce collections, composite and composite batch creates: every record gets its id', { skip: GATE }, async () => {
  /* collections (jsforce sends an array as one POST composite/sobjects) */
  const made = await sf().sobject('Account').create([{ Name: 'Coll One' }, { Name: 'Coll Two' }, { Name: 'Coll Three' }]);
  assert.equal(made.length, 3);
  for (const [i, m] of made.entries()) {
    assert.ok(m.success);
    await expectCreation('salesforce', 'Account', m.id, { Name: ['Coll One', 'Coll Two', 'Coll Three'][i] });
  }

  /* composite: two creates around an update of the first collection record */
  const base = `/services/data/v${VERSION}`;
  const comp = await sf().request({
    method: 'POST',
    url: `${base}/composite`,
    body: JSON.stringify({
      allOrNone: false,
      compositeRequest: [
        { method: 'POST', url: `${base}/sobjects/Account`, referenceId: 'acc', body: { Name: 'Comp Acc' } },
        { method: 'PATCH', url: `${base}/sobjects/Account/${made[0].id}`, referenceId: 'upd', body: { Name: 'Coll One Renamed' } },
        { method: 'POST', url: `${base}/sobjects/Contact`, referenceId: 'con', body: { LastName: 'Comp Con' } },
      ],
    }),
    headers: { 'Content-Type': 'application/json' },
  });
  const ref = Object.fromEntries(comp.compositeResponse.map((r) => [r.referenceId, r]));
  assert.equal(ref.acc.httpStatusCode, 201);
  await expectCreation('salesforce', 'Account', ref.acc.body.id, { Name: 'Comp Acc' });
  await expectCreation('salesforce', 'Contact', ref.con.body.id, { LastName: 'Comp Con' });

  /* composite batch */
  const batch = await sf().request({
    method: 'POST',
    url: `${base}/composite/batch`,
    body: JSON.stringify({
      batchRequests: [
        { method: 'POST', url: `v${VERSION}/sobjects/Account`, richInput: { Name: 'Batch Acc' } },
        { method: 'POST', url: `v${VERSION}/sobjects/Contact`, richInput: { LastName: 'Batch Con' } },
      ],
    }),
    headers: { 'Content-Type': 'application/json' },
  });
  assert.equal(batch.hasErrors, false);
  await expectCreation('salesforce', 'Account', batch.results[0].result.id, { Name: 'Batch Acc' });
  await expectCreation('salesforce', 'Contact', batch.results[1].result.id, { LastName: 'Batch Con' });
});
