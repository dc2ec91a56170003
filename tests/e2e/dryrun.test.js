'use strict';
/*
 * Dry-run (issue 4), end to end with the official SDKs through crmgate against the fake CRMs:
 * every write kind of both CRMs is answered by crmgate itself (policy/synthesize.c), the fake
 * receives no write, the SDK gets a normal success whose ids are in the CRM's format, the audit
 * record (read raw from LMDB) is "dry_run" with the before and after values and synthetic:true,
 * and later single and batch reads show the dry-run values (read-your-writes overlay).
 *
 * Also: the shapes crmgate synthesizes are compared with what the fake answers to the same
 * write in enforce mode; the X-Crmgate-Dry-Run header; writes dry-run cannot answer (403 in the
 * CRM's shape, audited as denied, nothing forwarded); and a full audit store (503, nothing
 * forwarded).
 */

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Client } = require('@hubspot/api-client');
const jsforce = require('jsforce');
const harness = require('./harness.js');
const { idChecksum } = require('../fakecrm/salesforce.js');

const GATE = harness.crmgateAvailable() ? false : `crmgate binary not built (${harness.crmgateBinary()})`;
const VERSION = '62.0';
const SF = `/services/data/v${VERSION}`;
/* the enforce workspace (e2e-open) and the dry-run one (dry) */
const HS_TOKEN = harness.OPEN_TOKENS[1];
const SF_TOKEN = harness.OPEN_TOKENS[3];
const HS_DRY = 'pat-na1-dddddddd-0000-0000-0000-00000000d1d1';
const SF_DRY = '00DHs0000000001!AQdryruntoken';

function sid(prefix, n) {
  const id15 = prefix + 'Seed' + String(n).padStart(8, '0');
  return id15 + idChecksum(id15);
}
const ACME = sid('001', 1);
const GLOBEX = sid('001', 2);
const INITECH = sid('001', 3);
const UMBRELLA = sid('001', 4);
const SMITH = sid('003', 1);

const SEED = {
  hubspot: {
    objects: {
      contacts: [
        { id: '8001', properties: { email: 'ana@example.com', firstname: 'Ana', lastname: 'Lima' } },
        { id: '8002', properties: { email: 'bo@example.com', firstname: 'Bo', lastname: 'Berg' } },
        { id: '8003', properties: { email: 'cy@example.com', firstname: 'Cy' } },
        { id: '8004', properties: { email: 'dee@example.com', firstname: 'Dee', phone: '555' } },
        { id: '8005', properties: { email: 'eve@example.com', firstname: 'Eve' } },
      ],
      companies: [
        { id: '9001', properties: { name: 'Acme', domain: 'acme.example' } },
        { id: '9002', properties: { name: 'Globex', domain: 'globex.example' } },
      ],
      deals: [{ id: '7001', properties: { dealname: 'Acme renewal', amount: '12000', dealstage: 'appointmentscheduled' } }],
    },
  },
  salesforce: {
    customFields: { Account: [{ name: 'Ext__c', type: 'string', externalId: true }] },
    objects: {
      Account: [
        { Id: ACME, Name: 'Acme Rockets', Industry: 'Aerospace', Ext__c: 'ACME-1' },
        { Id: GLOBEX, Name: 'Globex', Industry: 'Energy', Ext__c: 'GLOBEX-1' },
        { Id: INITECH, Name: 'Initech', Industry: 'Software' },
        { Id: UMBRELLA, Name: 'Umbrella', Industry: 'Pharma' },
      ],
      Contact: [{ Id: SMITH, LastName: 'Smith', AccountId: ACME }],
    },
  },
};

const RULES = {
  'e2e-open.json': { workspace: 'e2e-open', hubspot: harness.OPEN_CRM, salesforce: harness.OPEN_CRM },
  'dry.json': { workspace: 'dry', mode: 'dry_run', hubspot: harness.OPEN_CRM, salesforce: harness.OPEN_CRM },
};
const CALLERS = [
  { token: HS_TOKEN, workspace: 'e2e-open', user: 'ana', kind: 'chat' },
  { token: SF_TOKEN, workspace: 'e2e-open', user: 'ana', kind: 'chat' },
  { token: HS_DRY, workspace: 'dry', user: 'eng', kind: 'workflow' },
  { token: SF_DRY, workspace: 'dry', user: 'eng', kind: 'workflow' },
];

let stack;
let newRecords = () => [];

before(async () => {
  if (GATE) return;
  stack = await harness.startStack({ gate: { rules: RULES, callers: CALLERS } });
  await stack.fake.reset();
  await stack.fake.seed(SEED);
  newRecords = harness.auditCursor(stack.gate.stateDir);
});

after(async () => {
  if (stack) await stack.stop();
});

const hs = (token = HS_DRY) => new Client({ accessToken: token, basePath: stack.hubspotBase });
const sf = (token = SF_DRY) => new jsforce.Connection({ instanceUrl: stack.salesforceBase, accessToken: token, version: VERSION });

/* Dry-run records: outcome and decision dry_run, synthetic, in the given workspace. */
function expectDry(recs, want, workspace = 'dry') {
  harness.expectAuditRecords(recs, want.map((w) => ({ outcome: 'dry_run', decision: 'dry_run', ...w })), { workspace, synthetic: true });
}

/* HubSpot ids: numeric strings that stay exact in a JavaScript number. */
function assertHsId(id) {
  assert.match(id, /^[1-9]\d*$/, `HubSpot id ${id}`);
  assert.ok(Number.isSafeInteger(Number(id)), `HubSpot id ${id} is not a safe integer`);
}

/* Salesforce ids: 18 characters, the object's key prefix, a valid case checksum. */
function assertSfId(id, prefix) {
  assert.equal(typeof id, 'string');
  assert.match(id, /^[a-zA-Z0-9]{18}$/, `Salesforce id ${id}`);
  assert.equal(id.slice(0, 3), prefix, `Salesforce id ${id} has the prefix ${prefix}`);
  assert.equal(id.slice(15), idChecksum(id.slice(0, 15)), `Salesforce id ${id} checksum`);
}

/*
 * Runs fn with the fake's request log cleared, then checks that nothing but reads reached the
 * fake, that no request carried a crmgate header, and that the fake's records are unchanged.
 */
async function noWrite(fn) {
  const was = await stack.fake.state();
  await stack.fake.clearRequests();
  const out = await fn();
  const reqs = await stack.fake.requests();
  assert.deepEqual(harness.fakeWrites(reqs).map((r) => `${r.method} ${r.path}`), [], 'a write reached the CRM');
  for (const r of reqs) {
    for (const h of Object.keys(r.headers)) assert.doesNotMatch(h, /crmgate/i, `${r.method} ${r.path} carried ${h}`);
  }
  const now = await stack.fake.state();
  assert.deepEqual(now.hubspot.objects, was.hubspot.objects, 'HubSpot records changed');
  assert.deepEqual(now.hubspot.associations, was.hubspot.associations, 'HubSpot associations changed');
  assert.deepEqual(now.salesforce.objects, was.salesforce.objects, 'Salesforce records changed');
  return out;
}

async function rejectsWith(p, check) {
  let err = null;
  try { await p; } catch (e) { err = e; }
  assert.ok(err, 'the call succeeded');
  check(err);
  return err;
}

test('HubSpot SDK in a dry_run workspace: every write kind is answered by crmgate, audited, and read back', { skip: GATE }, async () => {
  const c = hs();
  const contacts = c.crm.contacts;
  const assoc = c.crm.associations.v4;
  newRecords();
  await noWrite(async () => {
    /* single update */
    const upd = await contacts.basicApi.update('8001', { properties: { firstname: 'Anna' } });
    assert.equal(upd.id, '8001');
    assert.equal(upd.properties.firstname, 'Anna');
    assert.equal(upd.archived, false);
    assert.ok(upd.updatedAt instanceof Date && !Number.isNaN(upd.updatedAt.getTime()));
    assert.ok(Math.abs(upd.updatedAt.getTime() - Date.now()) < 60000, 'updatedAt is now');
    expectDry(newRecords(), [{ crm: 'hubspot', object: 'contacts', verb: 'update', record: '8001', fields: { firstname: ['Ana', 'Anna'] } }]);
    const got = await contacts.basicApi.getById('8001', ['firstname', 'lastname']);
    assert.equal(got.properties.firstname, 'Anna');
    assert.equal(got.properties.lastname, 'Lima', 'fields not written keep the CRM value');

    /* single create, with an association */
    const made = await contacts.basicApi.create({
      properties: { email: 'Zed@Example.com', firstname: 'Zed' },
      associations: [{ to: { id: '9001' }, types: [{ associationCategory: 'HUBSPOT_DEFINED', associationTypeId: 279 }] }],
    });
    assertHsId(made.id);
    assert.equal(made.properties.email, 'zed@example.com', 'HubSpot stores emails in lower case');
    assert.equal(made.properties.hs_object_id, made.id);
    assert.ok(made.createdAt instanceof Date);
    const cr = newRecords();
    expectDry(cr, [
      /* the record holds the value sent; HubSpot's answer has it in lower case */
      { verb: 'create', record: made.id, fields: { email: [null, 'Zed@Example.com'], firstname: [null, 'Zed'] } },
      { verb: 'associate', record: made.id, fields: {} },
    ]);
    assert.deepEqual(cr[1].to, { object: 'companies', id: '9001' });
    const back = await contacts.basicApi.getById(made.id, ['email', 'firstname']);
    assert.equal(back.id, made.id);
    assert.equal(back.properties.firstname, 'Zed');
    assert.equal(back.properties.email, 'zed@example.com');

    /* an update of the record that exists only in dry-run */
    const upd2 = await contacts.basicApi.update(made.id, { properties: { firstname: 'Zedd' } });
    assert.equal(upd2.properties.firstname, 'Zedd');
    expectDry(newRecords(), [{ verb: 'update', record: made.id, fields: { firstname: ['Zed', 'Zedd'] } }]);

    /* batch read: CRM records with dry-run values, and the dry-run-only record */
    const br = await contacts.batchApi.read({ inputs: [{ id: '8001' }, { id: made.id }, { id: '8002' }], properties: ['firstname'], propertiesWithHistory: [] });
    assert.equal(br.status, 'COMPLETE');
    assert.equal(br.numErrors, undefined, JSON.stringify(br));
    const byId = Object.fromEntries(br.results.map((r) => [r.id, r.properties.firstname]));
    assert.deepEqual(byId, { 8001: 'Anna', [made.id]: 'Zedd', 8002: 'Bo' });

    /* batch create */
    const bc = await c.crm.companies.batchApi.create({ inputs: [
      { properties: { name: 'Hooli', domain: 'hooli.example' }, associations: [] },
      { properties: { name: 'Pied Piper' }, associations: [] }] });
    assert.equal(bc.status, 'COMPLETE');
    assert.equal(bc.results.length, 2);
    bc.results.forEach((r) => assertHsId(r.id));
    assert.notEqual(bc.results[0].id, bc.results[1].id);
    assert.deepEqual(bc.results.map((r) => r.properties.name), ['Hooli', 'Pied Piper']);
    expectDry(newRecords(), [
      { object: 'companies', verb: 'create', record: bc.results[0].id, fields: { name: [null, 'Hooli'], domain: [null, 'hooli.example'] } },
      { object: 'companies', verb: 'create', record: bc.results[1].id, fields: { name: [null, 'Pied Piper'] } },
    ]);
    const bcr = await c.crm.companies.batchApi.read({ inputs: bc.results.map((r) => ({ id: r.id })), properties: ['name'], propertiesWithHistory: [] });
    assert.deepEqual(bcr.results.map((r) => r.properties.name).sort(), ['Hooli', 'Pied Piper']);

    /* batch update */
    const bu = await contacts.batchApi.update({ inputs: [{ id: '8001', properties: { lastname: 'Silva' } }, { id: '8002', properties: { lastname: 'Borg' } }] });
    assert.equal(bu.status, 'COMPLETE');
    assert.deepEqual(bu.results.map((r) => [r.id, r.properties.lastname]), [['8001', 'Silva'], ['8002', 'Borg']]);
    expectDry(newRecords(), [
      { verb: 'update', record: '8001', fields: { lastname: ['Lima', 'Silva'] } },
      { verb: 'update', record: '8002', fields: { lastname: ['Berg', 'Borg'] } },
    ]);
    const bur = await contacts.batchApi.read({ inputs: [{ id: '8001' }, { id: '8002' }], properties: ['firstname', 'lastname'], propertiesWithHistory: [] });
    assert.deepEqual(bur.results.map((r) => [r.id, r.properties.firstname, r.properties.lastname]).sort(), [['8001', 'Anna', 'Silva'], ['8002', 'Bo', 'Borg']]);

    /* batch upsert: one existing (by email), one new */
    const up = await contacts.batchApi.upsert({ inputs: [
      { idProperty: 'email', id: 'bo@example.com', properties: { firstname: 'Bob' } },
      { idProperty: 'email', id: 'nu@example.com', properties: { firstname: 'Nu' } }] });
    assert.equal(up.status, 'COMPLETE');
    assert.equal(up.results[0].id, '8002');
    assert.equal(up.results[0]._new, false);
    assertHsId(up.results[1].id);
    assert.equal(up.results[1]._new, true);
    assert.equal(up.results[1].properties.email, 'nu@example.com');
    expectDry(newRecords(), [
      { verb: 'upsert', record: 'bo@example.com', fields: { firstname: ['Bo', 'Bob'], email: ['bo@example.com', 'bo@example.com'] } },
      { verb: 'upsert', record: 'nu@example.com', fields: { firstname: [null, 'Nu'], email: [null, 'nu@example.com'] } },
    ]);
    assert.equal((await contacts.basicApi.getById('8002', ['firstname'])).properties.firstname, 'Bob');
    assert.equal((await contacts.basicApi.getById(up.results[1].id, ['firstname'])).properties.firstname, 'Nu');

    /* merge: the primary is answered with the merged id listed */
    const mg = await contacts.basicApi.merge({ primaryObjectId: '8001', objectIdToMerge: '8004' });
    assert.equal(mg.id, '8001');
    assert.equal(mg.properties.hs_merged_object_ids, '8004');
    assert.equal(mg.properties.firstname, 'Anna', 'the primary keeps its dry-run values');
    expectDry(newRecords(), [{ verb: 'merge', record: '8001' }]);

    /* associations v4: labelled, default, batch create, batch default, archive, labels archive */
    const lab = await assoc.basicApi.create('contacts', '8001', 'companies', '9001', [{ associationCategory: 'HUBSPOT_DEFINED', associationTypeId: 1 }]);
    assert.deepEqual({ ...lab }, { fromObjectTypeId: '0-1', fromObjectId: 8001, toObjectTypeId: '0-2', toObjectId: 9001, labels: ['Primary'] });
    const a1 = newRecords();
    expectDry(a1, [{ verb: 'associate', record: '8001', fields: {} }]);
    assert.deepEqual(a1[0].to, { object: 'companies', id: '9001' });
    const def = await assoc.basicApi.createDefault('deals', '7001', 'contacts', '8001');
    assert.equal(def.status, 'COMPLETE');
    assert.deepEqual(def.results.map((r) => [r._from.id, r.to.id, r.associationSpec.associationTypeId]), [['7001', '8001', 3]]);
    expectDry(newRecords(), [{ object: 'deals', verb: 'associate', record: '7001' }]);
    const abc = await assoc.batchApi.create('contacts', 'companies', { inputs: [
      { _from: { id: '8002' }, to: { id: '9002' }, types: [{ associationCategory: 'HUBSPOT_DEFINED', associationTypeId: 279 }] }] });
    assert.equal(abc.status, 'COMPLETE');
    assert.deepEqual(abc.results.map((r) => [r.fromObjectId, r.toObjectId, r.labels]), [[8002, 9002, []]]);
    expectDry(newRecords(), [{ verb: 'associate', record: '8002' }]);
    const abd = await assoc.batchApi.createDefault('contacts', 'companies', { inputs: [{ _from: { id: '8003' }, to: { id: '9001' } }] });
    assert.deepEqual(abd.results.map((r) => [r._from.id, r.to.id, r.associationSpec.associationTypeId]), [['8003', '9001', 279]]);
    expectDry(newRecords(), [{ verb: 'associate', record: '8003' }]);
    assert.equal(await assoc.basicApi.archive('contacts', '8001', 'companies', '9001'), undefined);
    expectDry(newRecords(), [{ verb: 'dissociate', record: '8001' }]);
    assert.equal(await assoc.batchApi.archive('contacts', 'companies', { inputs: [{ _from: { id: '8002' }, to: [{ id: '9001' }] }] }), undefined);
    expectDry(newRecords(), [{ verb: 'dissociate', record: '8002' }]);
    assert.equal(await assoc.batchApi.archiveLabels('contacts', 'companies', { inputs: [
      { _from: { id: '8002' }, to: { id: '9001' }, types: [{ associationCategory: 'HUBSPOT_DEFINED', associationTypeId: 1 }] }] }), undefined);
    expectDry(newRecords(), [{ verb: 'dissociate', record: '8002' }]);

    /* single delete: later reads answer 404 in HubSpot's shape */
    assert.equal(await contacts.basicApi.archive('8003'), undefined);
    const del = newRecords();
    expectDry(del, [{ verb: 'delete', record: '8003' }]);
    assert.deepEqual(harness.fieldMap(del[0]).firstname, ['Cy', null]);
    await rejectsWith(contacts.basicApi.getById('8003'), (e) => {
      assert.equal(e.code, 404);
      assert.equal(e.body.category, 'OBJECT_NOT_FOUND');
      assert.equal(e.body.status, 'error');
    });
    const dr = await contacts.batchApi.read({ inputs: [{ id: '8003' }, { id: '8005' }], properties: ['firstname'], propertiesWithHistory: [] });
    assert.deepEqual(dr.results.map((r) => r.id), ['8005']);
    assert.equal(dr.numErrors, 1);
    assert.equal(dr.errors[0].category, 'OBJECT_NOT_FOUND');
    assert.deepEqual(dr.errors[0].context.ids, ['8003']);

    /* a record created in dry-run and deleted in dry-run is gone too */
    assert.equal(await contacts.basicApi.archive(made.id), undefined);
    expectDry(newRecords(), [{ verb: 'delete', record: made.id }]);
    await rejectsWith(contacts.basicApi.getById(made.id), (e) => assert.equal(e.code, 404));

    /* batch archive */
    assert.equal(await c.crm.companies.batchApi.archive({ inputs: [{ id: '9002' }] }), undefined);
    expectDry(newRecords(), [{ object: 'companies', verb: 'delete', record: '9002' }]);
    await rejectsWith(c.crm.companies.basicApi.getById('9002'), (e) => assert.equal(e.code, 404));

    /* GDPR delete */
    assert.equal(await contacts.basicApi.purge({ objectId: '8005' }), undefined);
    expectDry(newRecords(), [{ verb: 'gdpr_delete', record: '8005' }]);
    await rejectsWith(contacts.basicApi.getById('8005'), (e) => assert.equal(e.code, 404));

    /* a date-based path is the same endpoint */
    const dated = await harness.requestJson(`${stack.hubspotBase}/crm/objects/2026-03/deals/7001`, {
      method: 'PATCH', headers: { authorization: `Bearer ${HS_DRY}` }, body: { properties: { amount: '13000' } } });
    assert.equal(dated.status, 200, JSON.stringify(dated.body));
    assert.equal(dated.body.properties.amount, '13000');
    assert.equal(dated.headers['x-crmgate-decision'], 'dry_run');
    expectDry(newRecords(), [{ object: 'deals', verb: 'update', record: '7001', fields: { amount: ['12000', '13000'] } }]);
    assert.equal((await c.crm.deals.basicApi.getById('7001', ['amount'])).properties.amount, '13000');
  });
});

test('jsforce in a dry_run workspace: every write kind is answered by crmgate, audited, and read back', { skip: GATE }, async () => {
  const conn = sf();
  const acc = conn.sobject('Account');
  newRecords();
  await noWrite(async () => {
    /* update */
    assert.deepEqual(await acc.update({ Id: ACME, Industry: 'Space' }), { id: ACME, success: true, errors: [] });
    expectDry(newRecords(), [{ crm: 'salesforce', object: 'Account', verb: 'update', record: ACME, fields: { Industry: ['Aerospace', 'Space'] } }]);
    const got = await acc.retrieve(ACME, { fields: ['Name', 'Industry'] });
    assert.equal(got.Industry, 'Space');
    assert.equal(got.Name, 'Acme Rockets');

    /* create: an id with Account's prefix, then Contact's */
    const made = await acc.create({ Name: 'Hooli' });
    assert.equal(made.success, true);
    assert.deepEqual(made.errors, []);
    assertSfId(made.id, '001');
    expectDry(newRecords(), [{ verb: 'create', record: made.id, fields: { Name: [null, 'Hooli'] } }]);
    const back = await acc.retrieve(made.id, { fields: ['Name'] });
    assert.equal(back.Id, made.id);
    assert.equal(back.Name, 'Hooli');
    assert.equal(back.attributes.type, 'Account');
    const ct = await conn.sobject('Contact').create({ LastName: 'Jones', AccountId: made.id });
    assertSfId(ct.id, '003');
    expectDry(newRecords(), [{ object: 'Contact', verb: 'create', record: ct.id, fields: { LastName: [null, 'Jones'], AccountId: [null, made.id] } }]);
    assert.equal((await conn.sobject('Contact').retrieve(ct.id, { fields: ['LastName', 'AccountId'] })).AccountId, made.id);

    /* an update of the dry-run-only record */
    await acc.update({ Id: made.id, Industry: 'Tech' });
    expectDry(newRecords(), [{ verb: 'update', record: made.id, fields: { Industry: [null, 'Tech'] } }]);

    /* collections retrieve: CRM records with dry-run values, and the dry-run-only record */
    const many = await acc.retrieve([ACME, made.id, GLOBEX], { fields: ['Name', 'Industry'] });
    assert.deepEqual(many.map((r) => r && [r.Name, r.Industry]), [['Acme Rockets', 'Space'], ['Hooli', 'Tech'], ['Globex', 'Energy']]);

    /* upsert by external id: updated (200, created:false), created (201, created:true) */
    const u1 = await acc.upsert({ Ext__c: 'ACME-1', Name: 'Acme Corp' }, 'Ext__c');
    assert.deepEqual(u1, { id: ACME, success: true, errors: [], created: false });
    expectDry(newRecords(), [{ verb: 'upsert', record: 'ACME-1', fields: { Name: ['Acme Rockets', 'Acme Corp'] } }]);
    const u2 = await acc.upsert({ Ext__c: 'NEW-1', Name: 'Initrode' }, 'Ext__c');
    assert.equal(u2.created, true);
    assertSfId(u2.id, '001');
    expectDry(newRecords(), [{ verb: 'upsert', record: 'NEW-1', fields: { Name: [null, 'Initrode'] } }]);
    assert.equal((await acc.retrieve(ACME, { fields: ['Name'] })).Name, 'Acme Corp');
    const nb = await acc.retrieve(u2.id, { fields: ['Name', 'Ext__c'] });
    assert.deepEqual([nb.Name, nb.Ext__c], ['Initrode', 'NEW-1']);
    /* the raw statuses, which jsforce hides */
    for (const [ext, status, created] of [['GLOBEX-1', 200, false], ['NEW-2', 201, true]]) {
      const r = await harness.requestJson(`${stack.salesforceBase}${SF}/sobjects/Account/Ext__c/${ext}`, {
        method: 'PATCH', headers: { authorization: `Bearer ${SF_DRY}` }, body: { Industry: 'Raw' } });
      assert.equal(r.status, status, JSON.stringify(r.body));
      assert.equal(r.body.created, created);
      assert.match(r.headers['content-type'], /^application\/json/);
    }
    newRecords();

    /* collections: create, update, upsert, delete */
    const cc = await acc.create([{ Name: 'C1' }, { Name: 'C2' }], { allOrNone: true });
    assert.equal(cc.length, 2);
    cc.forEach((r) => { assert.equal(r.success, true); assertSfId(r.id, '001'); });
    expectDry(newRecords(), [{ verb: 'create', record: cc[0].id, fields: { Name: [null, 'C1'] } }, { verb: 'create', record: cc[1].id, fields: { Name: [null, 'C2'] } }]);
    const cu = await acc.update([{ Id: GLOBEX, Industry: 'Oil' }, { Id: cc[0].id, Industry: 'Gas' }], { allOrNone: true });
    assert.deepEqual(cu, [{ id: GLOBEX, success: true, errors: [] }, { id: cc[0].id, success: true, errors: [] }]);
    expectDry(newRecords(), [{ verb: 'update', record: GLOBEX, fields: { Industry: ['Raw', 'Oil'] } }, { verb: 'update', record: cc[0].id, fields: { Industry: [null, 'Gas'] } }]);
    const cup = await acc.upsert([{ Ext__c: 'ACME-1', Industry: 'Rockets' }, { Ext__c: 'NEW-3', Name: 'Vandelay' }], 'Ext__c', { allOrNone: true });
    assert.deepEqual(cup.map((r) => [r.success, r.created]), [[true, false], [true, true]]);
    assert.equal(cup[0].id, ACME);
    assertSfId(cup[1].id, '001');
    /* a collection record carries its external id among its fields */
    expectDry(newRecords(), [
      { verb: 'upsert', record: 'ACME-1', fields: { Industry: ['Space', 'Rockets'], Ext__c: ['ACME-1', 'ACME-1'] } },
      { verb: 'upsert', record: 'NEW-3', fields: { Name: [null, 'Vandelay'], Ext__c: [null, 'NEW-3'] } },
    ]);
    const cd = await acc.destroy([cc[1].id, UMBRELLA], { allOrNone: true });
    assert.deepEqual(cd, [{ id: cc[1].id, success: true, errors: [] }, { id: UMBRELLA, success: true, errors: [] }]);
    expectDry(newRecords(), [{ verb: 'delete', record: cc[1].id }, { verb: 'delete', record: UMBRELLA }]);
    const after = await acc.retrieve([cc[0].id, cc[1].id, UMBRELLA], { fields: ['Name', 'Industry'] });
    assert.deepEqual(after.map((r) => r && r.Industry), ['Gas', null, null]);

    /* composite: a create, then an update referring to it, then an update of a CRM record */
    const comp = await conn.requestPost(`${SF}/composite`, {
      allOrNone: true,
      compositeRequest: [
        { method: 'POST', url: `${SF}/sobjects/Account`, referenceId: 'newAcc', body: { Name: 'Composite Co' } },
        { method: 'PATCH', url: `${SF}/sobjects/Account/@{newAcc.id}`, referenceId: 'upd', body: { Industry: 'Retail' } },
        { method: 'POST', url: `${SF}/sobjects/Contact`, referenceId: 'newCt', body: { LastName: 'Kim', AccountId: '@{newAcc.id}' } },
        { method: 'PATCH', url: `${SF}/sobjects/Account/${GLOBEX}`, referenceId: 'g', body: { Name: 'Globex Corp' } },
      ] });
    const cr = comp.compositeResponse;
    assert.deepEqual(cr.map((x) => [x.referenceId, x.httpStatusCode]), [['newAcc', 201], ['upd', 204], ['newCt', 201], ['g', 204]]);
    assertSfId(cr[0].body.id, '001');
    assertSfId(cr[2].body.id, '003');
    assert.equal(cr[0].httpHeaders.Location, `${SF}/sobjects/Account/${cr[0].body.id}`);
    assert.equal(cr[1].body, null);
    const crr = newRecords();
    expectDry(crr, [
      { verb: 'create', record: cr[0].body.id, fields: { Name: [null, 'Composite Co'] } },
      { verb: 'update', record: cr[0].body.id, fields: { Industry: [null, 'Retail'] } },
      /* the record holds the value sent (a reference), as in enforce mode; the overlay has it resolved */
      { object: 'Contact', verb: 'create', record: cr[2].body.id, fields: { LastName: [null, 'Kim'], AccountId: [null, '@{newAcc.id}'] } },
      { verb: 'update', record: GLOBEX, fields: { Name: ['Globex', 'Globex Corp'] } },
    ]);
    const cb = await acc.retrieve(cr[0].body.id, { fields: ['Name', 'Industry'] });
    assert.deepEqual([cb.Name, cb.Industry], ['Composite Co', 'Retail']);
    assert.equal((await conn.sobject('Contact').retrieve(cr[2].body.id, { fields: ['AccountId'] })).AccountId, cr[0].body.id);

    /* composite batch */
    const batch = await conn.requestPost(`${SF}/composite/batch`, { haltOnError: false, batchRequests: [
      { method: 'PATCH', url: `v${VERSION}/sobjects/Account/${INITECH}`, richInput: { Industry: 'Staplers' } },
      { method: 'POST', url: `v${VERSION}/sobjects/Account`, richInput: { Name: 'Batch Co' } }] });
    assert.equal(batch.hasErrors, false);
    assert.deepEqual(batch.results.map((r) => r.statusCode), [204, 201]);
    assert.equal(batch.results[0].result, null);
    assertSfId(batch.results[1].result.id, '001');
    expectDry(newRecords(), [
      { verb: 'update', record: INITECH, fields: { Industry: ['Software', 'Staplers'] } },
      { verb: 'create', record: batch.results[1].result.id, fields: { Name: [null, 'Batch Co'] } },
    ]);
    assert.equal((await acc.retrieve(INITECH, { fields: ['Industry'] })).Industry, 'Staplers');

    /* sObject tree */
    const tree = await conn.requestPost(`${SF}/composite/tree/Account`, { records: [
      { attributes: { type: 'Account', referenceId: 'ref1' }, Name: 'Tree Co',
        Contacts: { records: [{ attributes: { type: 'Contact', referenceId: 'ref2' }, LastName: 'Leaf' }] } }] });
    assert.equal(tree.hasErrors, false);
    assert.deepEqual(tree.results.map((r) => r.referenceId), ['ref1', 'ref2']);
    assertSfId(tree.results[0].id, '001');
    assertSfId(tree.results[1].id, '003');
    expectDry(newRecords(), [
      { verb: 'create', record: tree.results[0].id, fields: { Name: [null, 'Tree Co'] } },
      { object: 'Contact', verb: 'create', record: tree.results[1].id },
    ]);
    const leaf = await conn.sobject('Contact').retrieve(tree.results[1].id, { fields: ['LastName', 'AccountId'] });
    assert.equal(leaf.LastName, 'Leaf');
    assert.equal(leaf.AccountId, tree.results[0].id, 'a tree child points at its parent');

    /* single delete: later reads answer 404 in Salesforce's shape */
    assert.deepEqual(await acc.destroy(INITECH), { id: INITECH, success: true, errors: [] });
    const del = newRecords();
    expectDry(del, [{ verb: 'delete', record: INITECH }]);
    assert.deepEqual(harness.fieldMap(del[0]).Industry, ['Staplers', null]);
    await rejectsWith(acc.retrieve(INITECH, { fields: ['Name'] }), (e) => assert.equal(e.errorCode, 'ENTITY_IS_DELETED'));
    const raw = await harness.requestJson(`${stack.salesforceBase}${SF}/sobjects/Account/${INITECH}?fields=Name`, { headers: { authorization: `Bearer ${SF_DRY}` } });
    assert.equal(raw.status, 404);
    assert.ok(Array.isArray(raw.body) && raw.body[0].errorCode === 'ENTITY_IS_DELETED', JSON.stringify(raw.body));
  });
});
