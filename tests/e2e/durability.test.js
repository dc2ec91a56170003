'use strict';
/*
 * Durability of the audit log (issue 4), for HubSpot and Salesforce alike (parity):
 *
 * - SIGKILL under write load at random moments, twelve times per CRM, restarting on the same
 *   state directory. Afterwards every write the fake CRM received has an audit record carrying
 *   its value, no record is corrupt (each is JSON whose id matches its key, read raw with
 *   mdb_dump), a write whose answer reached its client is "allowed", and records of writes in
 *   flight at a kill are "unknown", never missing. Salesforce's load (jsforce) mixes sObject
 *   updates, collections and composites, so calls of several records are covered too: the
 *   records of one call share one outcome.
 * - The map full: writes are refused with 503 in the CRM's error shape and a clear reason,
 *   reads keep working, and the fake receives no write crmgate could not record.
 * - A client reset while its write is at the CRM: the record gets the CRM's outcome.
 */

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const jsforce = require('jsforce');
const harness = require('./harness.js');

const TOKEN = harness.OPEN_TOKENS[0];
const SF_TOKEN = harness.OPEN_TOKENS[2];
const VERSION = '62.0';
const GATE = harness.crmgateAvailable() ? false : `crmgate binary not built (${harness.crmgateBinary()})`;
const KILLS = 12;
const WRITERS = 8;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/* valgrind (CRMGATE_SLOW) runs crmgate 20-50x slower: the windows grow with it */
const SLOW = Boolean(process.env.CRMGATE_SLOW);
const LOAD_WAIT_MS = SLOW ? 60000 : 10000;
const KILL_AFTER_MS = SLOW ? 5000 : 500;
const WAIT_MS = SLOW ? 60000 : 10000;
const KILL_TIMEOUT_MS = SLOW ? 900000 : 180000;
const TEST_TIMEOUT_MS = SLOW ? 300000 : 60000;
/* a map that can grow only from 128 to 256 KiB: a few hundred audited writes fill it */
const TINY_STORE = { store: { map_bytes: 131072, max_map_bytes: 262144 } };
const FILL_MAX = 2000;

const sfConn = (gate) => new jsforce.Connection({ instanceUrl: `${gate.url}/salesforce`, accessToken: SF_TOKEN, version: VERSION });
const sfPatch = (id, Name, referenceId) => ({ method: 'PATCH', url: `/services/data/v${VERSION}/sobjects/Account/${id}`, referenceId, body: { Name } });

/* ---------------- SIGKILL under write load ---------------- */

/* What a kill does to a call in flight or about to start: a reset, a refused connection, a
 * body cut short (node-fetch, under jsforce, calls every such failure a FetchError). */
function cutByKill(e) {
  return ['ECONNRESET', 'ECONNREFUSED', 'EPIPE'].includes(e.code) || e.name === 'FetchError';
}

/*
 * KILLS rounds on one state directory: crmgate started, WRITERS loops calling their writer
 * (makeWriter(gate, round, w) -> async () => the values the CRM confirmed) until the kill,
 * SIGKILL at a random moment once a write has been answered; then a clean start and stop (the
 * store opens after the kills, stale readers cleared). A call that fails otherwise than cut by
 * the kill fails the test. Resolves the set of values whose answer reached their writer.
 */
async function killUnderLoad({ stateDir, upstreams, makeWriter }) {
  const answered = new Set();
  const failed = [];
  for (let round = 0; round < KILLS; round++) {
    const gate = await harness.startCrmgate({ stateDir, upstreams });
    let stop = false;
    let first;
    const firstAnswer = new Promise((resolve) => { first = resolve; });
    const loop = async (w) => {
      const write = makeWriter(gate, round, w);
      while (!stop) {
        try {
          for (const v of await write()) answered.add(v);
          first();
        } catch (e) {
          if (!cutByKill(e)) failed.push(`round ${round}, writer ${w}: ${e.stack || e}`);
          return;
        }
      }
    };
    const loops = Array.from({ length: WRITERS }, (_, w) => loop(w));
    /* the load is on once a write has been answered (under valgrind that alone takes
     * seconds); the kill comes at a random moment after it */
    let timer;
    const loadDeadline = new Promise((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`round ${round}: no write answered within ${LOAD_WAIT_MS} ms\n${failed.join('\n')}`)), LOAD_WAIT_MS);
    });
    await Promise.race([firstAnswer, loadDeadline]).finally(() => clearTimeout(timer));
    await sleep(KILL_AFTER_MS * (0.3 + 0.7 * Math.random()));
    gate.proc.kill('SIGKILL');
    await gate.waitExit();
    stop = true;
    await Promise.all(loops);
    assert.deepEqual(failed, [], 'calls that failed otherwise than cut by the kill');
  }
  const gate = await harness.startCrmgate({ stateDir, upstreams });
  await gate.stop();
  return answered;
}

/*
 * The audit log after the kills (readAuditRaw throws on a corrupt record) against the values
 * the fake received, each {record, value, call} (call: the request that carried it). Each
 * value has a record of its CRM record carrying it as `field`'s new value: "allowed" when its
 * answer reached the writer (an answer leaves only once the outcome is durable), else
 * "allowed" or "unknown" (in flight at a kill); the records of one call share one outcome;
 * every answered value reached the CRM; ids only grow. Returns the counts.
 */
function checkAfterKills({ stateDir, field, received, answered, maxUnknown }) {
  const records = harness.readAuditRaw(stateDir);
  const byValue = new Map();
  for (const r of records) {
    const f = r.fields.find((x) => x.name === field);
    if (f) byValue.set(f.after, r);
  }
  const callOutcome = new Map();
  for (const { record, value, call } of received) {
    const rec = byValue.get(value);
    assert.ok(rec, `the CRM received ${value} but the audit log has no record of it`);
    assert.equal(rec.record, record, `${value}: ${JSON.stringify(rec)}`);
    assert.ok(['allowed', 'unknown'].includes(rec.outcome), `${value}: outcome ${rec.outcome}`);
    if (answered.has(value)) assert.equal(rec.outcome, 'allowed', `${value} was answered to its writer, yet its record is ${rec.outcome}`);
    if (!callOutcome.has(call)) callOutcome.set(call, rec.outcome);
    assert.equal(rec.outcome, callOutcome.get(call), `the records of request ${call} disagree on their outcome`);
  }
  const reached = new Set(received.map((r) => r.value));
  for (const v of answered) assert.ok(reached.has(v), `${v} was answered as written but never reached the CRM`);
  const ids = records.map((r) => BigInt(r.id));
  for (let i = 1; i < ids.length; i++) assert.ok(ids[i] > ids[i - 1], 'ids only grow');
  const unknown = records.filter((r) => r.outcome === 'unknown').length;
  /* an unknown record is a write whose answer the kill interrupted: a few per writer and kill */
  assert.ok(unknown <= maxUnknown, `${unknown} unknown outcomes`);
  return { writes: reached.size, records: records.length, unknown };
}

test('HubSpot: SIGKILL under write load, twelve times: every write the CRM got is in the audit log, none corrupt', { skip: GATE, timeout: KILL_TIMEOUT_MS }, async () => {
  const fake = await harness.startFake();
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'crmgate-e2e-kill-'));
  try {
    await fake.seed({ hubspot: { objects: { contacts: Array.from({ length: WRITERS }, (_, i) => ({ id: String(8100 + i), properties: { firstname: 'start' } })) } } });
    let n = 0;
    const answered = await killUnderLoad({
      stateDir,
      upstreams: { hubspot: fake.url },
      makeWriter: (gate, round, w) => async () => {
        const value = `r${round}-w${w}-${n++}`;
        const r = await harness.requestJson(`${gate.url}/hubspot/crm/v3/objects/contacts/${8100 + w}`, {
          method: 'PATCH', headers: { authorization: `Bearer ${TOKEN}` }, body: { properties: { firstname: value } },
        });
        if (r.status !== 200) throw new Error(`${value}: ${r.status} ${JSON.stringify(r.body)}`);
        return [value];
      },
    });
    const received = harness.fakeWrites(await fake.requests()).map((w) => ({
      record: w.path.split('/').pop(), value: JSON.parse(w.body).properties.firstname, call: w.seq,
    }));
    assert.ok(received.length >= KILLS * 5, `only ${received.length} writes reached the fake`);
    const c = checkAfterKills({ stateDir, field: 'firstname', received, answered, maxUnknown: KILLS * WRITERS });
    process.stdout.write(`HubSpot: ${c.writes} writes reached the fake, ${c.records} records, ${c.unknown} unknown\n`);
  } finally {
    await fake.stop();
    fs.rmSync(stateDir, { recursive: true, force: true });
  }
});

/*
 * The values of Salesforce Account Names the fake received, each {record, value, call, kind}:
 * sObject updates, collection updates and composites of updates (the only writes the load
 * makes; anything else fails).
 */
function sfNamesReceived(requests) {
  return harness.fakeWrites(requests).flatMap((w) => {
    const body = JSON.parse(w.body);
    let kind;
    let ops;
    if (w.method === 'PATCH' && /\/sobjects\/Account\/\w+$/.test(w.path)) {
      kind = 'sobject';
      ops = [{ Id: w.path.split('/').pop(), Name: body.Name }];
    } else if (w.method === 'PATCH' && /\/composite\/sobjects$/.test(w.path)) {
      kind = 'collection';
      ops = body.records.map((r) => ({ Id: r.id || r.Id, Name: r.Name })); /* jsforce sends "id" */
    } else if (w.method === 'POST' && /\/composite$/.test(w.path)) {
      kind = 'composite';
      ops = body.compositeRequest.map((s) => ({ Id: s.url.split('/').pop(), Name: s.body.Name }));
    } else {
      assert.fail(`unexpected write ${w.method} ${w.path}`);
    }
    return ops.map((o) => ({ record: o.Id, value: o.Name, call: w.seq, kind }));
  });
}

test('Salesforce: SIGKILL under jsforce write load (sObject, collection, composite), twelve times: every write the CRM got is in the audit log, none corrupt', { skip: GATE, timeout: KILL_TIMEOUT_MS }, async () => {
  const fake = await harness.startFake();
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'crmgate-e2e-kill-'));
  /* two Accounts per writer: a collection or a composite writes both */
  const accounts = Array.from({ length: 2 * WRITERS }, (_, i) => harness.sfId('001', 'Kill', i));
  try {
    await fake.seed({ salesforce: { objects: { Account: accounts.map((Id) => ({ Id, Name: 'start' })) } } });
    let n = 0;
    const answered = await killUnderLoad({
      stateDir,
      upstreams: { salesforce: fake.url },
      makeWriter: (gate, round, w) => {
        const conn = sfConn(gate);
        const [a, b] = [accounts[2 * w], accounts[2 * w + 1]];
        let k = w; /* the writers start on different kinds, each then takes them in turn */
        return async () => {
          const v = `r${round}-w${w}-${n++}`;
          const two = [`${v}a`, `${v}b`];
          switch (k++ % 3) {
            case 0: {
              const r = await conn.sobject('Account').update({ Id: a, Name: v });
              if (!r.success) throw new Error(`${v}: ${JSON.stringify(r)}`);
              return [v];
            }
            case 1: {
              const rs = await conn.sobject('Account').update([{ Id: a, Name: two[0] }, { Id: b, Name: two[1] }], { allOrNone: true });
              if (!rs.every((r) => r.success)) throw new Error(`${v}: ${JSON.stringify(rs)}`);
              return two;
            }
            default: {
              const r = await conn.requestPost(`/services/data/v${VERSION}/composite`, {
                allOrNone: true, compositeRequest: [sfPatch(a, two[0], 'a'), sfPatch(b, two[1], 'b')],
              });
              if (!r.compositeResponse.every((s) => s.httpStatusCode === 204)) throw new Error(`${v}: ${JSON.stringify(r)}`);
              return two;
            }
          }
        };
      },
    });
    const received = sfNamesReceived(await fake.requests());
    const calls = (kind) => new Set(received.filter((r) => r.kind === kind).map((r) => r.call)).size;
    for (const kind of ['sobject', 'collection', 'composite']) {
      assert.ok(calls(kind) >= KILLS, `only ${calls(kind)} ${kind} writes reached the fake`);
    }
    const c = checkAfterKills({ stateDir, field: 'Name', received, answered, maxUnknown: 2 * KILLS * WRITERS });
    process.stdout.write(`Salesforce: ${calls('sobject')} sObject, ${calls('collection')} collection and ${calls('composite')} composite writes (${c.writes} values) reached the fake, ${c.records} records, ${c.unknown} unknown\n`);
  } finally {
    await fake.stop();
    fs.rmSync(stateDir, { recursive: true, force: true });
  }
});

/* ---------------- the map full ---------------- */

/*
 * Writes through write(i) (a new value of 200 bytes or more for each i) until one is
 * refused: write resolves null when the write went through, else the refusal, which this
 * resolves once the log shows the map grew to its limit first.
 */
async function fillStore(gate, write) {
  for (let i = 0; i < FILL_MAX; i++) {
    const refused = await write(i);
    if (refused) {
      assert.match(gate.stderr(), /map grown from 131072 to 262144/);
      return refused;
    }
  }
  return assert.fail(`the tiny map never filled in ${FILL_MAX} writes`);
}

/* The end of a map-full test: the fake received no write, and no record was left "unknown"
 * (a write whose intent fitted but whose outcome did not). */
async function assertNothingUnaudited(gate, fake) {
  assert.deepEqual(harness.fakeWrites(await fake.requests()), [], 'no write reached the CRM once the store was full');
  const open = await gate.admin('GET', '/v1/audit?outcome=unknown');
  assert.equal(open.status, 200, JSON.stringify(open.body));
  assert.deepEqual(open.body.records, [], 'records left without their outcome');
}

/* The reason a write refused with the store full gives, whatever the CRM's shape around it. */
function assertFullReason(message) {
  assert.match(message, /audit store is full/);
  assert.match(message, /not sent to the CRM/);
}

test('HubSpot: map full: writes get 503 with a clear reason, reads still work, nothing unaudited is forwarded', { skip: GATE, timeout: TEST_TIMEOUT_MS }, async () => {
  const fake = await harness.startFake();
  const gate = await harness.startCrmgate({ upstreams: { hubspot: fake.url }, config: TINY_STORE });
  try {
    await fake.seed({ hubspot: { objects: { contacts: [{ id: '8200', properties: { firstname: 'x' } }] } } });
    const auth = { authorization: `Bearer ${TOKEN}` };
    const patch = (firstname) => harness.requestJson(`${gate.url}/hubspot/crm/v3/objects/contacts/8200`, {
      method: 'PATCH', headers: auth, body: { properties: { firstname } },
    });
    const refused = await fillStore(gate, async (i) => {
      const r = await patch(`v${i}-${'x'.repeat(200)}`);
      if (r.status === 503) return r;
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return null;
    });
    assert.equal(refused.headers['x-crmgate-error'], 'audit_store_full');
    assertFullReason(refused.body.message);
    assert.equal(refused.body.category, 'SERVER_UNAVAILABLE');
    assert.equal(refused.body.subCategory, 'crmgate.audit_store_full');
    await fake.clearRequests();
    /* more writes, updates and creates (a small record): all refused, none forwarded; reads
     * still answered */
    for (let k = 0; k < 3; k++) {
      assert.equal((await patch(`late${k}`)).status, 503);
      const made = await harness.requestJson(`${gate.url}/hubspot/crm/v3/objects/contacts`, {
        method: 'POST', headers: auth, body: { properties: { firstname: `new${k}` } },
      });
      assert.equal(made.status, 503, JSON.stringify(made.body));
      assert.equal(made.body.subCategory, 'crmgate.audit_store_full');
      const r = await harness.requestJson(`${gate.url}/hubspot/crm/v3/objects/contacts/8200?properties=firstname`, { headers: auth });
      assert.equal(r.status, 200);
      assert.equal(r.body.properties.firstname.slice(0, 1), 'v');
    }
    await assertNothingUnaudited(gate, fake);
  } finally {
    await gate.stop();
    await fake.stop();
  }
});

/*
 * Parity: the store filled by jsforce updates; then every kind of jsforce write (an sObject
 * update and create, collections, a composite) is refused with 503 in Salesforce's error shape
 * naming crmgate's reason (jsforce does not retry a PATCH or a POST), while jsforce's reads,
 * a retrieve and a SOQL query, are still answered.
 */
test('Salesforce: map full: jsforce writes get 503 in Salesforce\'s error shape with a clear reason, reads still work, nothing unaudited is forwarded', { skip: GATE, timeout: TEST_TIMEOUT_MS }, async () => {
  const fake = await harness.startFake();
  const gate = await harness.startCrmgate({ upstreams: { salesforce: fake.url }, config: TINY_STORE });
  const acc = harness.sfId('001', 'Full', 1);
  const acc2 = harness.sfId('001', 'Full', 2);
  try {
    await fake.seed({ salesforce: { objects: { Account: [{ Id: acc, Name: 'Full Co' }, { Id: acc2, Name: 'Other Co' }] } } });
    const conn = sfConn(gate);
    const isFull = (e) => {
      assert.equal(e.errorCode, 'SERVER_UNAVAILABLE', String(e.stack || e));
      /* jsforce's data is the body's one error, exactly as Salesforce shapes it */
      assert.deepEqual(Object.keys(e.data).sort(), ['crmgateError', 'errorCode', 'fields', 'message']);
      assert.equal(e.data.crmgateError, 'audit_store_full');
      assert.deepEqual(e.data.fields, []);
      assertFullReason(e.message);
      return true;
    };
    const refused = await fillStore(gate, async (i) => {
      try {
        const r = await conn.sobject('Account').update({ Id: acc, Name: `v${i}-${'x'.repeat(200)}` });
        assert.equal(r.success, true, JSON.stringify(r));
        return null;
      } catch (e) {
        if (e.errorCode !== 'SERVER_UNAVAILABLE') throw e;
        return e;
      }
    });
    isFull(refused);
    await fake.clearRequests();

    const writes = {
      'sObject update': () => conn.sobject('Account').update({ Id: acc, Name: 'late' }),
      'sObject create': () => conn.sobject('Account').create({ Name: 'Late Co' }),
      'collection update': () => conn.sobject('Account').update([{ Id: acc, Name: 'late1' }, { Id: acc2, Name: 'late2' }], { allOrNone: true }),
      'collection create': () => conn.sobject('Account').create([{ Name: 'Late 1' }, { Name: 'Late 2' }], { allOrNone: true }),
      composite: () => conn.requestPost(`/services/data/v${VERSION}/composite`, { compositeRequest: [sfPatch(acc, 'late3', 'a'), sfPatch(acc2, 'late4', 'b')] }),
    };
    for (const [what, write] of Object.entries(writes)) {
      await assert.rejects(write(), isFull, `${what} with the store full`);
      const got = await conn.sobject('Account').retrieve(acc, { fields: ['Name'] });
      assert.match(got.Name, /^v\d+-x/, `a read after the refused ${what}`);
    }
    const q = await conn.query(`SELECT Id, Name FROM Account WHERE Id = '${acc2}'`);
    assert.deepEqual(q.records.map((r) => r.Name), ['Other Co']);

    /* the raw answer: the whole body, and crmgate's header */
    const raw = await harness.requestJson(`${gate.url}/salesforce/services/data/v${VERSION}/sobjects/Account/${acc}`, {
      method: 'PATCH', headers: { authorization: `Bearer ${SF_TOKEN}` }, body: { Name: 'late' },
    });
    assert.equal(raw.status, 503);
    assert.equal(raw.headers['x-crmgate-error'], 'audit_store_full');
    assert.ok(Array.isArray(raw.body) && raw.body.length === 1, JSON.stringify(raw.body));
    assert.equal(raw.body[0].errorCode, 'SERVER_UNAVAILABLE');
    assert.equal(raw.body[0].crmgateError, 'audit_store_full');
    assertFullReason(raw.body[0].message);

    await assertNothingUnaudited(gate, fake);
  } finally {
    await gate.stop();
    await fake.stop();
  }
});

/* ---------------- a client reset during a forwarded write ---------------- */

/*
 * Sends one write with node's http (an SDK has no way to reset its connection) and resets the
 * connection once the write has reached the fake, which holds it for a second (a latency
 * fault matching `match`) before applying and answering it.
 */
async function resetDuring(gate, fake, { method, url, token, body, match }) {
  const http = require('node:http');
  await fake.fault({ action: 'latency', ms: 1000, match, count: 1 });
  const n0 = (await fake.requests()).length;
  const payload = JSON.stringify(body);
  const req = http.request(`${gate.url}${url}`, {
    method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': payload.length },
  });
  req.on('error', () => {});
  req.end(payload);
  for (const deadline = Date.now() + WAIT_MS; Date.now() < deadline;) {
    if ((await fake.requests()).slice(n0).some((r) => r.method === method)) break;
    await sleep(20);
  }
  req.socket.resetAndDestroy();
}

/* The outcome and upstream status of the record whose `field` was set to value, if any. */
function outcomeOf(records, field, value) {
  const r = records.find((x) => x.fields.some((f) => f.name === field && f.after === value));
  return r && { outcome: r.outcome, status: r.upstream_status };
}

/* The outcomes of the records setting `field` to each of values, once none is "unknown"
 * (through the admin API, polled), or as they are at the deadline. */
async function settledOutcomes(gate, field, values) {
  let seen;
  for (const deadline = Date.now() + WAIT_MS; Date.now() < deadline;) {
    const a = await gate.admin('GET', '/v1/audit?workspace=e2e-open');
    seen = values.map((v) => outcomeOf(a.body.records, field, v));
    if (seen.every((s) => s && s.outcome !== 'unknown')) break;
    await sleep(50);
  }
  return seen;
}

/*
 * A client that goes away while its write is at the CRM (a reset, or any close on a TLS
 * listener) must not leave the record "unknown" while the CRM applied the write: crmgate lets
 * the forwarded write finish and records the CRM's answer. A drain (SIGTERM) right after waits
 * for that write too, so the outcome is on disk when crmgate exits.
 */
test('HubSpot: a client reset during a forwarded write: the record gets the CRM\'s outcome, also across a drain', { skip: GATE, timeout: TEST_TIMEOUT_MS }, async () => {
  const fake = await harness.startFake();
  const gate = await harness.startCrmgate({ upstreams: { hubspot: fake.url } });
  let stopped = false;
  try {
    await fake.seed({ hubspot: { objects: { contacts: [{ id: '8300', properties: { firstname: 'before' } }, { id: '8301', properties: { firstname: 'before' } }] } } });
    const write = (id, firstname) => ({
      method: 'PATCH', url: `/hubspot/crm/v3/objects/contacts/${id}`, token: TOKEN, body: { properties: { firstname } }, match: { method: 'PATCH' },
    });

    await resetDuring(gate, fake, write('8300', 'reset-live'));
    const seen = await settledOutcomes(gate, 'firstname', ['reset-live']);
    const st = await fake.state();
    assert.equal(st.hubspot.objects.contacts.find((c) => c.id === '8300').properties.firstname, 'reset-live', 'the CRM applied the write');
    assert.deepEqual(seen, [{ outcome: 'allowed', status: 200 }], 'the record says what the CRM did');

    await resetDuring(gate, fake, write('8301', 'reset-drain'));
    await gate.stop(); /* SIGTERM: the drain waits for the write the client left */
    stopped = true;
    assert.deepEqual(outcomeOf(harness.readAuditRaw(gate.stateDir), 'firstname', 'reset-drain'), { outcome: 'allowed', status: 200 });
  } finally {
    if (!stopped) await gate.stop();
    await fake.stop();
  }
});

/*
 * Parity: an sObject update, a composite the CRM answers in part (each record takes its own
 * subrequest's outcome) and, across a drain, a collection update.
 */
test('Salesforce: a client reset during a forwarded write (sObject, composite, collection): the records get the CRM\'s outcome, also across a drain', { skip: GATE, timeout: TEST_TIMEOUT_MS }, async () => {
  const fake = await harness.startFake();
  const gate = await harness.startCrmgate({ upstreams: { salesforce: fake.url } });
  const [a, b, c] = [1, 2, 3].map((i) => harness.sfId('001', 'Rset', i));
  const missing = harness.sfId('001', 'Rset', 9);
  const base = `/salesforce/services/data/v${VERSION}`;
  let stopped = false;
  try {
    await fake.seed({ salesforce: { objects: { Account: [a, b, c].map((Id) => ({ Id, Name: 'before' })) } } });
    const names = async () => Object.fromEntries((await fake.state()).salesforce.objects.Account.map((r) => [r.Id, r.Name]));

    await resetDuring(gate, fake, {
      method: 'PATCH', url: `${base}/sobjects/Account/${a}`, token: SF_TOKEN, body: { Name: 'reset-live' }, match: { method: 'PATCH' },
    });
    assert.deepEqual(await settledOutcomes(gate, 'Name', ['reset-live']), [{ outcome: 'allowed', status: 204 }], 'the record says what the CRM did');
    assert.equal((await names())[a], 'reset-live', 'the CRM applied the write');

    await resetDuring(gate, fake, {
      method: 'POST', url: `${base}/composite`, token: SF_TOKEN, match: { method: 'POST', path: '/composite$' },
      body: { allOrNone: false, compositeRequest: [sfPatch(b, 'reset-comp', 'b'), sfPatch(missing, 'reset-gone', 'm')] },
    });
    assert.deepEqual(await settledOutcomes(gate, 'Name', ['reset-comp', 'reset-gone']),
      [{ outcome: 'allowed', status: 200 }, { outcome: 'upstream_error', status: 200 }], 'each record says what the CRM did with its subrequest');
    assert.equal((await names())[b], 'reset-comp');

    await resetDuring(gate, fake, {
      method: 'PATCH', url: `${base}/composite/sobjects`, token: SF_TOKEN, match: { method: 'PATCH' },
      body: { allOrNone: true, records: [{ attributes: { type: 'Account' }, Id: a, Name: 'drain-a' }, { attributes: { type: 'Account' }, Id: c, Name: 'drain-c' }] },
    });
    await gate.stop(); /* SIGTERM: the drain waits for the write the client left */
    stopped = true;
    const recs = harness.readAuditRaw(gate.stateDir);
    assert.deepEqual(['drain-a', 'drain-c'].map((v) => outcomeOf(recs, 'Name', v)), [{ outcome: 'allowed', status: 200 }, { outcome: 'allowed', status: 200 }]);
    assert.deepEqual([(await names())[a], (await names())[c]], ['drain-a', 'drain-c']);
  } finally {
    if (!stopped) await gate.stop();
    await fake.stop();
  }
});
