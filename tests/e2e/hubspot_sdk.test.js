'use strict';
/*
 * The unmodified official @hubspot/api-client 13.5.0 against the fake HubSpot, directly and
 * through crmgate (basePath = http://127.0.0.1:GATE/hubspot). The same scenario runs on a freshly
 * reset and seeded fake each time; the SDK must see the same results both ways (timestamps and
 * correlation ids aside) and the fake must end in the same state.
 *
 *   node --test tests/e2e/hubspot_sdk.test.js          (gate tests are skipped until ./crmgate exists)
 */

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const zlib = require('node:zlib');
const { Client } = require('@hubspot/api-client');
const harness = require('./harness.js');

const TOKEN = 'pat-na1-11111111-2222-3333-4444-555555555555';
const GATE = harness.crmgateAvailable() ? false : `crmgate binary not built (${harness.crmgateBinary()})`;

const SEED = {
  hubspot: {
    owners: [
      { id: '61', email: 'owner.one@example.com', firstName: 'Owner', lastName: 'One', userId: 7001 },
      { id: '62', email: 'owner.two@example.com', firstName: 'Owner', lastName: 'Two', userId: 7002 },
    ],
    objects: {
      contacts: [{ id: '8001', properties: { email: 'seeded@example.com', firstname: 'Seed', lifecyclestage: 'customer' } }],
      companies: [{ id: '9001', properties: { name: 'Acme', domain: 'acme.example' } }],
      deals: [{ id: '7001', properties: { dealname: 'Acme renewal', amount: '1200', dealstage: 'appointmentscheduled' } }],
    },
  },
};

let fake;  /* one fake for every run; reset and reseeded before each scenario */
let stack; /* crmgate in front of the same fake, when built */

before(async () => {
  fake = await harness.startFake();
  if (!GATE) stack = { gate: await harness.startCrmgate({ upstreams: { hubspot: fake.url, salesforce: fake.url } }) };
});

after(async () => {
  if (stack) await stack.gate.stop();
  if (fake) await fake.stop();
});

function client(basePath) {
  return new Client({ accessToken: TOKEN, basePath });
}

const gateBase = () => `${stack.gate.url}/hubspot`;

/* ---------------- the scenario ---------------- */

/*
 * Runs every SDK call the suite covers and returns a transcript {step: {ok} | {error}}.
 * Calls that must fail record {code, body}; calls that must succeed but throw record the same,
 * and the checks below then fail with the body in the message.
 */
async function scenario(hs) {
  const t = {};
  const step = async (name, fn) => {
    try { t[name] = { ok: await fn() }; }
    catch (e) { t[name] = { error: e.code !== undefined ? { code: e.code, body: e.body } : { message: String(e && e.message) } }; }
    return t[name].ok;
  };
  const contacts = hs.crm.contacts;
  const companies = hs.crm.companies;
  const assoc = hs.crm.associations.v4;

  await step('owners', () => hs.crm.owners.ownersApi.getPage());
  await step('owner', () => hs.crm.owners.ownersApi.getById(62));
  await step('properties', async () => (await hs.crm.properties.coreApi.getAll('contacts')).results.map((p) => [p.name, p.type, p.modificationMetadata.readOnlyValue]));
  await step('property', () => hs.crm.properties.coreApi.getByName('contacts', 'email'));

  const ada = await step('create', () => contacts.basicApi.create({
    properties: { email: 'ada@example.com', firstname: 'Ada', lifecyclestage: 'lead' },
    associations: [{ to: { id: '9001' }, types: [{ associationCategory: 'HUBSPOT_DEFINED', associationTypeId: 279 }] }],
  }));
  const adaId = ada ? ada.id : 'missing';
  await step('create2', () => contacts.basicApi.create({ properties: { email: 'grace@example.com', firstname: 'Grace' }, associations: [] }));
  const linus = await step('create3', () => contacts.basicApi.create({ properties: { email: 'linus@example.com', firstname: 'Linus', lifecyclestage: 'lead' }, associations: [] }));
  await step('get', () => contacts.basicApi.getById(adaId, ['email', 'firstname', 'phone'], ['lifecyclestage'], ['companies']));
  await step('listPages', async () => {
    const pages = [];
    let after;
    do {
      const page = await contacts.basicApi.getPage(2, after, ['email']);
      pages.push(page.results.map((r) => r.properties.email));
      after = page.paging && page.paging.next ? page.paging.next.after : undefined;
    } while (after && pages.length < 10);
    return pages;
  });
  await step('update', () => contacts.basicApi.update(adaId, { properties: { lifecyclestage: 'opportunity', phone: '+1 555 0100' } }));
  await step('getAfterUpdate', () => contacts.basicApi.getById(adaId, ['lifecyclestage', 'phone'], ['lifecyclestage']));
  await step('search', () => contacts.searchApi.doSearch({
    filterGroups: [{ filters: [{ propertyName: 'lifecyclestage', operator: 'IN', values: ['lead', 'opportunity'] }] }],
    sorts: ['-createdate'], properties: ['email', 'lifecyclestage'], limit: 1, after: '0',
  }));
  await step('searchPage2', () => contacts.searchApi.doSearch({
    filterGroups: [{ filters: [{ propertyName: 'lifecyclestage', operator: 'IN', values: ['lead', 'opportunity'] }] }],
    sorts: [{ propertyName: 'createdate', direction: 'DESCENDING' }], properties: ['email'], limit: 1, after: '1',
  }));
  await step('searchQuery', () => contacts.searchApi.doSearch({ query: 'grace', properties: ['email'], limit: 10 }));

  await step('batchRead', () => contacts.batchApi.read({ inputs: [{ id: adaId }, { id: '8001' }], properties: ['email'], propertiesWithHistory: [] }));
  await step('batchRead207', () => contacts.batchApi.read({ inputs: [{ id: adaId }, { id: '404404' }], properties: ['email'], propertiesWithHistory: [] }));
  const made = await step('batchCreate', () => companies.batchApi.create({ inputs: [
    { properties: { name: 'Globex', domain: 'globex.example' }, associations: [] },
    { properties: { name: 'Initech' }, associations: [] }] }));
  const madeIds = made ? made.results.map((r) => r.id).sort() : ['x', 'y'];
  await step('batchUpdate', () => companies.batchApi.update({ inputs: [{ id: madeIds[0], properties: { industry: 'Manufacturing' } }, { id: '9001', properties: { phone: '555' } }] }));
  await step('batchUpdate207', () => companies.batchApi.update({ inputs: [{ id: madeIds[1], properties: { phone: '556' } }, { id: '404404', properties: { phone: '557' } }] }));
  await step('batchUpsert', () => contacts.batchApi.upsert({ inputs: [
    { id: 'grace@example.com', idProperty: 'email', properties: { lastname: 'Hopper' } },
    { id: 'new@example.com', idProperty: 'email', properties: { firstname: 'New' } }] }));
  await step('batchArchive', () => companies.batchApi.archive({ inputs: [{ id: madeIds[1] }] }));

  await step('assocCreate', () => assoc.basicApi.create('contacts', adaId, 'companies', '9001', [{ associationCategory: 'HUBSPOT_DEFINED', associationTypeId: 1 }]));
  await step('assocDefault', () => assoc.basicApi.createDefault('deals', '7001', 'contacts', adaId));
  await step('assocList', () => assoc.basicApi.getPage('contacts', adaId, 'companies'));
  await step('assocBatchCreate', () => assoc.batchApi.create('contacts', 'companies', { inputs: [
    /* The generated models name it _from (serialised as "from"); a plain `from` is dropped. */
    { _from: { id: '8001' }, to: { id: '9001' }, types: [{ associationCategory: 'HUBSPOT_DEFINED', associationTypeId: 279 }] }] }));
  await step('assocBatchRead', () => assoc.batchApi.getPage('contacts', 'companies', { inputs: [{ id: adaId }, { id: '8001' }] }));
  await step('assocBatchArchive', () => assoc.batchApi.archive('contacts', 'companies', { inputs: [{ _from: { id: '8001' }, to: [{ id: '9001' }] }] }));
  await step('assocDelete', () => assoc.basicApi.archive('deals', '7001', 'contacts', adaId));

  await step('archive', () => contacts.basicApi.archive(linus ? linus.id : 'missing'));
  await step('err404', () => contacts.basicApi.getById('404404'));
  await step('err400', () => contacts.basicApi.update(adaId, { properties: { no_such_property: 'x' } }));
  await step('err409', () => contacts.basicApi.create({ properties: { email: 'ADA@example.com' }, associations: [] }));
  await step('errAssoc', () => assoc.basicApi.create('deals', '7001', 'companies', '9001', [{ associationCategory: 'HUBSPOT_DEFINED', associationTypeId: 1 }]));
  return t;
}

/* Semantic checks of one transcript; the same for the direct and the gate run. */
/* gated: the run went through crmgate, whose policy denies what HubSpot itself would reject. */
function checkTranscript(t, gated = false) {
  const ok = (name) => {
    assert.ok(t[name], `step ${name} ran`);
    assert.ok('ok' in t[name], `${name} failed: ${JSON.stringify(t[name].error)}`);
    return t[name].ok;
  };
  const err = (name, code, category) => {
    assert.ok(t[name] && t[name].error, `${name} should have failed, got ${JSON.stringify(t[name])}`);
    assert.equal(t[name].error.code, code, `${name}: ${JSON.stringify(t[name].error)}`);
    assert.equal(t[name].error.body.category, category);
    assert.equal(typeof t[name].error.body.correlationId, 'string');
  };

  assert.deepEqual(ok('owners').results.map((o) => o.email), ['owner.one@example.com', 'owner.two@example.com']);
  assert.equal(ok('owner').userId, 7002);
  assert.ok(ok('properties').some(([n, type, ro]) => n === 'createdate' && type === 'datetime' && ro === true));
  assert.equal(ok('property').hasUniqueValue, true);

  const ada = ok('create');
  assert.match(ada.id, /^\d+$/);
  assert.ok(ada.createdAt instanceof Date && !Number.isNaN(ada.createdAt.getTime()));
  assert.equal(ada.properties.email, 'ada@example.com');
  const got = ok('get');
  assert.equal(got.properties.phone, null);
  assert.equal(got.propertiesWithHistory.lifecyclestage[0].value, 'lead');
  assert.deepEqual(got.associations.companies.results.map((r) => [r.id, r.type]), [['9001', 'contact_to_company_unlabeled']]);
  assert.deepEqual(ok('listPages'), [['seeded@example.com', 'ada@example.com'], ['grace@example.com', 'linus@example.com']]);
  assert.equal(ok('update').properties.lifecyclestage, 'opportunity');
  const after = ok('getAfterUpdate');
  assert.deepEqual(after.propertiesWithHistory.lifecyclestage.map((h) => [h.value, h.sourceType]), [['opportunity', 'API'], ['lead', 'API']]);
  assert.ok(after.updatedAt > after.createdAt);

  const s1 = ok('search');
  assert.equal(s1.total, 2);
  assert.equal(s1.results[0].properties.email, 'linus@example.com');
  assert.equal(s1.paging.next.after, '1');
  const s2 = ok('searchPage2');
  assert.equal(s2.results[0].properties.email, 'ada@example.com');
  assert.equal(s2.paging, undefined);
  assert.deepEqual(ok('searchQuery').results.map((r) => r.properties.email), ['grace@example.com']);

  assert.equal(ok('batchRead').results.length, 2);
  assert.equal(ok('batchRead').errors, undefined);
  const r207 = ok('batchRead207');
  assert.equal(r207.numErrors, 1);
  assert.deepEqual(r207.errors[0].context, { ids: ['404404'] });
  assert.equal(ok('batchCreate').results.length, 2);
  assert.equal(ok('batchUpdate').results.length, 2);
  assert.equal(ok('batchUpdate207').numErrors, 1);
  assert.deepEqual(ok('batchUpsert').results.map((r) => r._new ?? r['new']).sort(), [false, true]);
  assert.equal(ok('batchArchive'), undefined);

  assert.deepEqual(ok('assocCreate').labels, ['Primary']);
  assert.equal(ok('assocDefault').results[0].associationSpec.associationTypeId, 3);
  assert.deepEqual(ok('assocList').results[0].associationTypes.map((a) => a.typeId).sort((a, b) => a - b), [1, 279]);
  assert.equal(ok('assocBatchCreate').results.length, 1);
  assert.equal(ok('assocBatchRead').results.length, 2);
  ok('assocBatchArchive');
  ok('assocDelete');
  ok('archive');

  err('err404', 404, 'OBJECT_NOT_FOUND');
  err('err400', 400, 'VALIDATION_ERROR');
  assert.equal(t.err400.error.body.errors[0].code, 'PROPERTY_DOESNT_EXIST');
  err('err409', 409, 'CONFLICT');
  assert.equal(t.err409.error.body.message, `Contact already exists. Existing ID: ${ada.id}`);
  if (gated) {
    /* A HUBSPOT_DEFINED type id that does not start at deals: crmgate cannot tell which objects
     * HubSpot would link, so it denies the call (fail closed) instead of forwarding it. */
    err('errAssoc', 403, 'MISSING_SCOPES');
    assert.match(t.errAssoc.error.body.message, /association type id 1 does not start at deals/);
    assert.equal(t.errAssoc.error.body.subCategory, 'crmgate.policy_denied');
  } else {
    err('errAssoc', 400, 'VALIDATION_ERROR');
  }
}

/* The fake's final state after the scenario, checked field by field. */
function checkState(st) {
  const hs = st.hubspot;
  const byEmail = Object.fromEntries(hs.objects.contacts.map((c) => [c.properties.email, c]));
  assert.deepEqual(Object.keys(byEmail).sort(), ['ada@example.com', 'grace@example.com', 'linus@example.com', 'new@example.com', 'seeded@example.com']);
  assert.equal(byEmail['linus@example.com'].archived, true);
  assert.equal(byEmail['ada@example.com'].properties.lifecyclestage, 'opportunity');
  assert.equal(byEmail['ada@example.com'].properties.phone, '+1 555 0100');
  assert.equal(byEmail['ada@example.com'].properties.no_such_property, undefined);
  assert.equal(byEmail['grace@example.com'].properties.lastname, 'Hopper');
  const lc = byEmail['ada@example.com'].propertiesWithHistory.lifecyclestage;
  assert.deepEqual(lc.map((h) => h.value), ['opportunity', 'lead']);
  const names = hs.objects.companies.map((c) => [c.properties.name, c.archived]).sort();
  assert.deepEqual(names, [['Acme', false], ['Globex', false], ['Initech', true]]);
  assert.equal(hs.objects.companies.find((c) => c.properties.name === 'Globex').properties.industry, 'Manufacturing');
  const edges = hs.associations.map((a) => `${a.from.type}:${a.from.id}->${a.to.type}:${a.to.id}=${a.types.map((x) => x.typeId).join(',')}`).sort();
  const ada = byEmail['ada@example.com'].id;
  assert.deepEqual(edges, [`companies:9001->contacts:${ada}=280,2`, `contacts:${ada}->companies:9001=279,1`].sort());
}

/* Timestamps and correlation ids legitimately differ between runs; everything else must not. */
function normalise(x) {
  return JSON.parse(JSON.stringify(x), (k, v) => {
    if (k === 'correlationId' || k === 'requestedAt' || k === 'startedAt' || k === 'completedAt') return '<varies>';
    if (typeof v === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(v)) return '<ts>';
    return v;
  });
}

async function runOn(basePath) {
  await fake.reset();
  await fake.seed(SEED);
  const t = await scenario(client(basePath));
  return { t, state: { hubspot: (await fake.state()).hubspot }, log: await fake.requests() };
}

let direct; /* transcript of the direct run, shared with the gate comparison */

test('SDK against the fake directly: every call behaves as HubSpot does', async () => {
  direct = await runOn(fake.url);
  checkTranscript(direct.t);
  checkState(direct.state);
  /* The SDK asked for gzip on every call and the fake compressed every non-empty answer. */
  const withBody = direct.log.filter((r) => r.response && r.response.status !== 204);
  assert.ok(withBody.length > 20);
  for (const r of withBody) {
    assert.match(r.headers['accept-encoding'], /gzip/);
    assert.equal(r.response.gzip, true, `${r.method} ${r.path} not gzipped`);
  }
});

test('SDK through crmgate sees exactly what it sees directly', { skip: GATE }, async () => {
  if (!direct) direct = await runOn(fake.url);
  const via = await runOn(gateBase());
  checkTranscript(via.t, true);
  checkState(via.state);
  /* Identical, but for the one call crmgate's policy denies (checked above)... */
  const { errAssoc: deniedVia, ...restVia } = via.t;
  const { errAssoc: deniedDirect, ...restDirect } = direct.t;
  assert.ok(deniedVia && deniedDirect);
  assert.deepEqual(normalise(restVia), normalise(restDirect));
  assert.deepEqual(normalise(via.state), normalise(direct.state));
  /* ...which never reached the CRM. */
  const assocPut = (r) => r.method === 'PUT' && r.path === '/crm/v4/objects/deals/7001/associations/companies/9001';
  assert.ok(direct.log.some(assocPut), 'the direct run sent the association call');
  assert.ok(!via.log.some(assocPut), 'a denied call must not reach the CRM');
});

test('through crmgate: ApiException code and body intact for 404 and 400', { skip: GATE }, async () => {
  await fake.reset();
  await fake.seed(SEED);
  const hs = client(gateBase());
  await assert.rejects(hs.crm.contacts.basicApi.getById('404404'), (e) => {
    assert.equal(e.code, 404);
    assert.equal(e.body.status, 'error');
    assert.equal(e.body.category, 'OBJECT_NOT_FOUND');
    assert.equal(e.body.message, 'Object not found.  objectId are usually numeric.');
    assert.equal(e.headers['x-hubspot-correlation-id'], e.body.correlationId);
    return true;
  });
  await assert.rejects(hs.crm.contacts.basicApi.update('8001', { properties: { nope: '1', firstname: 'x' } }), (e) => {
    assert.equal(e.code, 400);
    assert.equal(e.body.category, 'VALIDATION_ERROR');
    assert.deepEqual(e.body.context, { propertyName: ['nope'] });
    assert.equal(e.body.errors[0].code, 'PROPERTY_DOESNT_EXIST');
    assert.match(e.body.message, /Property \\"nope\\" does not exist/);
    return true;
  });
  const st = await fake.state();
  assert.equal(st.hubspot.objects.contacts[0].properties.firstname, 'Seed', 'the rejected update wrote nothing');
});

test('through crmgate: gzip from the fake reaches clients intact', { skip: GATE }, async () => {
  await fake.reset();
  await fake.seed(SEED);
  await fake.clearRequests();
  const hs = client(gateBase());
  const page = await hs.crm.contacts.basicApi.getPage(10, undefined, ['email', 'firstname']);
  assert.deepEqual(page.results.map((r) => [r.id, r.properties.email, r.properties.firstname]), [['8001', 'seeded@example.com', 'Seed']]);

  /* A raw client asking for gzip gets either gzip or identity, but always the same JSON. */
  const raw = await rawGet(`${gateBase()}/crm/v3/objects/contacts/8001?properties=email`, { 'accept-encoding': 'gzip' });
  assert.equal(raw.status, 200);
  const text = raw.headers['content-encoding'] === 'gzip' ? zlib.gunzipSync(raw.body) : raw.body;
  assert.equal(JSON.parse(text).properties.email, 'seeded@example.com');

  /* Whatever crmgate asked upstream, the fake followed it: gzip exactly when gzip was asked. */
  const log = await fake.requests();
  const crmCalls = log.filter((r) => r.path.startsWith('/crm/v3/objects/contacts'));
  assert.ok(crmCalls.length >= 2);
  for (const r of crmCalls) {
    assert.equal(r.response.gzip, /gzip/.test(r.headers['accept-encoding'] || ''), `${r.path} ${r.headers['accept-encoding']}`);
  }
});

test('through crmgate: an upstream that gzips unasked still reaches the SDK intact', { skip: GATE }, async () => {
  await fake.reset();
  await fake.seed(SEED);
  await fake.options({ gzip: 'always' });
  try {
    const hs = client(gateBase());
    const got = await hs.crm.contacts.basicApi.getById('8001', ['email']);
    assert.equal(got.properties.email, 'seeded@example.com');
    const upd = await hs.crm.contacts.basicApi.update('8001', { properties: { firstname: 'Zipped' } });
    assert.equal(upd.properties.firstname, 'Zipped');
    const log = await fake.requests();
    assert.ok(log.length >= 2 && log.every((r) => r.response && r.response.gzip), 'the fake compressed every answer');
  } finally {
    await fake.options({ gzip: 'auto' });
  }
});

test('through crmgate: rate-limit headers and the 429 body reach the SDK', { skip: GATE }, async () => {
  await fake.reset();
  await fake.fault({ match: { path: '^/crm/v3/objects/contacts$' }, action: 'ratelimit' });
  const hs = client(gateBase());
  await assert.rejects(hs.crm.contacts.basicApi.getPage(), (e) => {
    assert.equal(e.code, 429);
    assert.equal(e.body.policyName, 'TEN_SECONDLY_ROLLING');
    assert.equal(e.body.message, 'You have reached your ten_secondly_rolling limit.');
    assert.ok(e.headers['x-hubspot-ratelimit-max']);
    return true;
  });
});

function rawGet(url, headers) {
  return new Promise((resolve, reject) => {
    http.get(url, { headers: { authorization: `Bearer ${TOKEN}`, ...headers } }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    }).on('error', reject);
  });
}
