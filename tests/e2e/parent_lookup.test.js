'use strict';
/*
 * A Salesforce write can set a lookup by the parent's external id: `"Account": {"Ext__c": "A1"}`
 * makes Salesforce find the Account whose Ext__c is A1. Whether the write succeeds tells the
 * agent whether such an Account exists: a read of Account.Ext__c. crmgate decides it as one, on
 * top of the write of the relationship: denied when Account.Ext__c is not readable, and the CRM
 * receives nothing. jsforce is the client.
 *
 *   node --test tests/e2e/parent_lookup.test.js
 */

const { test, before, after, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const jsforce = require('jsforce');
const harness = require('./harness.js');

const VERSION = '62.0';
const TOKEN = '00DHs0000000001!AQparentlookuptoken';
const GATE = harness.crmgateAvailable() ? false : `crmgate binary not built (${harness.crmgateBinary()})`;
const CON = harness.sfId('003', 'Lku0', 1);

const RULES = {
  workspace: 'lookups',
  salesforce: {
    objects: {
      /* the relationship is writable; of the Account, Name and Pub__c may be read, not Secret__c */
      Contact: { read: ['LastName'], write: ['LastName', 'Account'], actions: { create: true } },
      Account: { read: ['Name', 'Pub__c'] },
    },
  },
};

/* every Contact field writable: the system fields still are not, whichever way they are set */
const STAMPS_TOKEN = '00DHs0000000001!AQauditstampstoken';
const STAMPS = {
  workspace: 'stamps',
  salesforce: { objects: { Contact: { read: '*', write: '*', actions: { create: true, update: true } }, User: { read: '*' } } },
};

let stack;

before(async () => {
  if (GATE) return;
  stack = await harness.startStack({
    gate: {
      rules: { 'lookups.json': RULES, 'stamps.json': STAMPS },
      callers: [{ token: TOKEN, workspace: 'lookups', user: 'agent@lookups', kind: 'workflow' },
        { token: STAMPS_TOKEN, workspace: 'stamps', user: 'agent@stamps', kind: 'workflow' }],
    },
  });
});

after(async () => {
  if (stack) await stack.stop();
});

beforeEach(async () => {
  if (!stack) return;
  await stack.fake.reset();
  await stack.fake.seed({
    salesforce: {
      customFields: { Account: [{ name: 'Secret__c', type: 'string', externalId: true }, { name: 'Pub__c', type: 'string', externalId: true }] },
      objects: { Account: [{ Name: 'Acme', Secret__c: 'S-1', Pub__c: 'P-1' }], Contact: [{ Id: CON, LastName: 'Seeded' }] },
    },
  });
  await stack.fake.clearRequests();
});

const connect = () => new jsforce.Connection({ instanceUrl: stack.salesforceBase, accessToken: TOKEN, version: VERSION });

async function writesReceived() {
  return (await stack.fake.requests()).filter((r) => r.method !== 'GET');
}

async function expectLookupDenied(call, field) {
  let caught;
  await assert.rejects(call(), (e) => { caught = e; return true; });
  assert.equal(caught.errorCode, 'INSUFFICIENT_ACCESS_OR_READONLY', caught.message);
  assert.match(caught.message, new RegExp(`does not allow reading Account\\.${field}, which this write finds its Account parent by`));
  assert.equal(caught.data.crmgateError, 'policy_denied');
  assert.deepEqual(caught.data.fields, [field]);
  assert.deepEqual(await writesReceived(), [], 'a refused write must not reach the CRM');
}

test('a parent found by a field the agent may not read is refused: update, create, collection, composite', { skip: GATE }, async () => {
  const conn = connect();
  await expectLookupDenied(() => conn.sobject('Contact').update({ Id: CON, Account: { Secret__c: 'S-1' } }), 'Secret__c');
  await expectLookupDenied(() => conn.sobject('Contact').create({ LastName: 'New', Account: { attributes: { type: 'Account' }, Secret__c: 'S-1' } }), 'Secret__c');
  /* jsforce sends several records as a collection */
  await expectLookupDenied(() => conn.sobject('Contact').create([{ LastName: 'A' }, { LastName: 'B', Account: { Secret__c: 'S-1' } }]), 'Secret__c');
  await expectLookupDenied(() => conn.requestPost(`/services/data/v${VERSION}/composite`, {
    compositeRequest: [{ method: 'PATCH', url: `/services/data/v${VERSION}/sobjects/Contact/${CON}`, referenceId: 'c', body: { Account: { Secret__c: 'S-1' } } }],
  }), 'Secret__c');
  /* the denial is audited with the fields the write tried */
  const res = await stack.gate.admin('GET', '/v1/audit?workspace=lookups&outcome=denied&limit=1');
  assert.equal(res.status, 200);
  assert.match(res.body.records[0].rule, /objects\/Account\/read$/);
});

test('a parent found by a readable field goes to Salesforce', { skip: GATE }, async () => {
  const conn = connect();
  let outcome;
  try {
    outcome = await conn.sobject('Contact').update({ Id: CON, Account: { Pub__c: 'P-1' } });
  } catch (e) {
    /* Salesforce (here the fake) decides whether Name can find the parent; crmgate did not refuse */
    assert.equal(e.data && e.data.crmgateError, undefined, `not crmgate's refusal: ${e.message}`);
  }
  const sent = await writesReceived();
  assert.equal(sent.length, 1, `forwarded once: ${JSON.stringify(outcome)}`);
  assert.equal(sent[0].method, 'PATCH');
  assert.deepEqual(JSON.parse(sent[0].body).Account, { Pub__c: 'P-1' });
});

test('a lookup crmgate cannot read as one external-id field is refused', { skip: GATE }, async () => {
  const conn = connect();
  for (const [Account, re] of [
    [{ Pub__c: 'P-1', Secret__c: 'S-1' }, /a lookup names exactly one external-id field/],
    [{ attributes: { type: 'Lead' }, Pub__c: 'P-1' }, /attributes\.type is not Account/],
  ]) {
    let caught;
    await assert.rejects(conn.sobject('Contact').update({ Id: CON, Account }), (e) => { caught = e; return true; });
    assert.match(caught.message, re);
  }
  let caught;
  await assert.rejects(conn.sobject('Contact').update({ Id: CON, Boss__r: { Ext__c: 'B' } }), (e) => { caught = e; return true; });
  assert.match(caught.message, /unknown relationship Boss__r on Contact in the body/);
  assert.deepEqual(await writesReceived(), []);
});

test('a read-only system field set through its relationship (CreatedBy, LastModifiedBy, MasterRecord) is refused as the field itself is', { skip: GATE }, async () => {
  const conn = new jsforce.Connection({ instanceUrl: stack.salesforceBase, accessToken: STAMPS_TOKEN, version: VERSION });
  const user = harness.sfId('005', 'Usr0', 1);
  for (const [call, field] of [
    [() => conn.sobject('Contact').create({ LastName: 'Forged', CreatedById: user }), 'CreatedById'],
    [() => conn.sobject('Contact').create({ LastName: 'Forged', CreatedBy: { Id: user } }), 'CreatedById'],
    [() => conn.sobject('Contact').update({ Id: CON, LastModifiedBy: { Ext__c: 'u-1' } }), 'LastModifiedById'],
    [() => conn.sobject('Contact').create({ LastName: 'Forged', MasterRecord: { Id: CON } }), 'MasterRecordId'],
  ]) {
    let caught;
    await assert.rejects(call(), (e) => { caught = e; return true; });
    assert.equal(caught.data && caught.data.crmgateError, 'policy_denied', caught.message);
    assert.match(caught.message, new RegExp(`Contact\\.${field} is a read-only system field and can never be written`));
  }
  assert.deepEqual(await writesReceived(), [], 'no forged system field reached the CRM');
  /* the owner, set by external id the same way, is an ordinary field */
  await conn.sobject('Contact').create({ LastName: 'Owned', Owner: { Id: user } }).catch((e) => {
    assert.equal(e.data && e.data.crmgateError, undefined, `not crmgate's refusal: ${e.message}`);
  });
  assert.equal((await writesReceived()).length, 1);
});
