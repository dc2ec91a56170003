'use strict';
/*
 * Regressions for what the code reviews of crmgate found: each case is one way the edge or the
 * policy could have been got around, and what crmgate does instead.
 *
 *   node --test tests/e2e/hardening.test.js
 */

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const harness = require('./harness.js');

const TOKEN = 'pat-na1-11111111-2222-3333-4444-555555555555';
const SF_TOKEN = '00DHs0000000001!AQsdktesttoken';
const GATE = harness.crmgateAvailable() ? false : 'crmgate binary not built';

/* A workspace that reads little, so that leaks show. */
const RULES = {
  'acme.json': {
    workspace: 'acme',
    hubspot: { objects: { contacts: { read: ['email', 'firstname'], write: ['firstname'] } } },
    salesforce: { objects: { Lead: { read: ['LastName', 'Company'], write: ['LastName', 'Company'], actions: { create: true } },
      Account: { read: ['Name'] } } },
  },
};
const CALLERS = [{ token: TOKEN, workspace: 'acme' }, { token: SF_TOKEN, workspace: 'acme' }];

let stack;
before(async () => {
  if (GATE) return;
  stack = await harness.startStack({ gate: { rules: RULES, callers: CALLERS } });
  await stack.fake.seed({ hubspot: { objects: { contacts: [{ id: '101', properties: { email: 'ada@example.com', firstname: 'Ada', phone: '555-0100' } }] } } });
});
after(async () => { if (stack) await stack.stop(); });

/* Send raw bytes in the given pieces (with a pause between), return everything read until close or timeout. */
function raw(pieces, { pauseMs = 150, waitMs = 1500 } = {}) {
  return new Promise((resolve, reject) => {
    const s = net.connect(stack.gate.port, '127.0.0.1');
    let out = '';
    s.on('data', (d) => { out += d.toString('latin1'); });
    s.on('error', reject);
    s.on('close', () => resolve(out));
    s.on('connect', async () => {
      for (const p of pieces) {
        s.write(Buffer.from(p, 'latin1'));
        await new Promise((r) => setTimeout(r, pauseMs));
      }
      setTimeout(() => s.destroy(), waitMs);
    });
  });
}

const statusOf = (text) => Number((/^HTTP\/1\.1 (\d{3})/.exec(text) || [])[1]);
const head = (path, extra = '') => `GET ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\n${extra}`;

async function fakeSaw(fn) {
  await stack.fake.clearRequests();
  const r = await fn();
  return { r, log: await stack.fake.requests() };
}

test('a lone CR, then LF and an obs-folded head, cannot skip the pre-scan', { skip: GATE }, async () => {
  const { r, log } = await fakeSaw(() => raw(['\r', `\n${head('/hubspot/crm/v3/objects/contacts/101?properties=email')}X-A: 1\r\n folded\r\n\r\n`]));
  assert.equal(statusOf(r), 400, r);
  assert.equal(log.length, 0, 'nothing reaches the CRM');
});

test('a CRLF split across segments before a good request is still skipped', { skip: GATE }, async () => {
  const { r, log } = await fakeSaw(() => raw(['\r', `\n${head('/hubspot/crm/v3/objects/contacts/101?properties=email')}Connection: close\r\n\r\n`]));
  assert.equal(statusOf(r), 200, r);
  assert.equal(log.length, 1);
});

for (const [name, extra] of [
  ['two Content-Type headers', 'Content-Type: application/json\r\nContent-Type: text/plain\r\n'],
  ['two X-HTTP-Method-Override headers', 'X-HTTP-Method-Override: GET\r\nX-HTTP-Method-Override: DELETE\r\n'],
  ['two Authorization headers', `Authorization: Bearer ${TOKEN}\r\n`],
  ['an X-HTTP-Method header', 'X-HTTP-Method: DELETE\r\n'],
  ['an X-Method-Override header', 'X-Method-Override: DELETE\r\n'],
]) {
  test(`${name}: 400, nothing forwarded`, { skip: GATE }, async () => {
    const { r, log } = await fakeSaw(() => raw([`${head('/hubspot/crm/v3/objects/contacts/101?properties=email', extra)}\r\n`]));
    assert.equal(statusOf(r), 400, r);
    assert.equal(log.length, 0);
  });
}

test('chunked trailers are refused, not forwarded as headers', { skip: GATE }, async () => {
  const body = '0\r\nX-Method-Override: DELETE\r\nCookie: sid=abc\r\n\r\n';
  const { r, log } = await fakeSaw(() => raw([`${head('/hubspot/crm/v3/objects/contacts/101?properties=email', 'Transfer-Encoding: chunked\r\n')}\r\n${body}`]));
  assert.equal(statusOf(r), 400, r);
  assert.match(r, /trailers are not accepted/);
  assert.equal(log.length, 0);
});

test('tokens in OAuth paths never reach the log', { skip: GATE }, async () => {
  const secret = 'SECRET-REFRESH-TOKEN-4567';
  await raw([`DELETE /hubspot/oauth/v1/refresh-tokens/${secret} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`]);
  await raw([`GET /hubspot/oauth/v1/access-tokens/${secret}?x=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`]);
  await new Promise((r) => setTimeout(r, 200));
  assert.ok(!stack.gate.stderr().includes(secret), 'the token is not logged');
  assert.match(stack.gate.stderr(), /\/hubspot\/oauth\/v1\/refresh-tokens"/);
});

test('a newline smuggled into a denial reason cannot forge a log record', { skip: GATE }, async () => {
  const forged = 'email\n2026-01-01T00:00:00.000Z crmgate[1] error: FORGED';
  const body = JSON.stringify({ properties: [forged], limit: 1 });
  await raw([`POST /hubspot/crm/v3/objects/contacts/search HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`]);
  await new Promise((r) => setTimeout(r, 200));
  const lines = stack.gate.stderr().split('\n');
  assert.ok(!lines.some((l) => l.startsWith('2026-01-01T00:00:00.000Z crmgate[1] error: FORGED')), 'no forged record');
});

test('looking a record up by an unreadable idProperty is denied', { skip: GATE }, async () => {
  const { r, log } = await fakeSaw(() => raw([`${head('/hubspot/crm/v3/objects/contacts/555-0100?idProperty=phone&properties=email', 'Connection: close\r\n')}\r\n`]));
  assert.equal(statusOf(r), 403, r);
  assert.match(r, /phone/);
  assert.equal(log.length, 0);
});

test('a JSON error answer is filtered too (Salesforce DUPLICATES_DETECTED with matching records)', { skip: GATE }, async () => {
  const dup = [{
    message: 'Use one of these records?', errorCode: 'DUPLICATES_DETECTED', fields: [],
    duplicateResult: { matchResults: [{ matchRecords: [{ record: { attributes: { type: 'Lead' }, Id: '00QHs0000000001AAA', LastName: 'Lovelace', Email: 'secret@example.com', Phone: '555' } }] }] },
  }];
  await stack.fake.fault({ match: { method: 'POST', path: '/sobjects/Lead$' }, action: 'status', status: 400, body: dup });
  const payload = JSON.stringify({ LastName: 'Lovelace', Company: 'X' });
  const r = await raw([`POST /salesforce/services/data/v62.0/sobjects/Lead HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${SF_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: ${payload.length}\r\nConnection: close\r\n\r\n${payload}`]);
  await stack.fake.clearFaults();
  assert.equal(statusOf(r), 400, r);
  const json = JSON.parse(r.slice(r.indexOf('\r\n\r\n') + 4));
  const rec = json[0].duplicateResult.matchResults[0].matchRecords[0].record;
  assert.deepEqual(rec, { attributes: { type: 'Lead' }, Id: '00QHs0000000001AAA', LastName: 'Lovelace' });
});

test('past limits.connections a worker refuses new connections, and serves again once one closes', { skip: GATE }, async () => {
  const capped = await harness.startCrmgate({
    upstreams: { hubspot: stack.fake.url }, workers: 1, rules: RULES, callers: CALLERS,
    config: { limits: { connections: 2 } },
  });
  try {
    const open = () => new Promise((resolve) => {
      const s = net.connect(capped.port, '127.0.0.1', () => resolve(s));
    });
    const a = await open();
    const b = await open();
    const c = await open();
    const closed = await new Promise((resolve) => {
      c.on('close', () => resolve(true));
      setTimeout(() => resolve(false), 1500);
    });
    assert.ok(closed, 'the third connection is closed at once');
    a.destroy();
    await new Promise((r) => setTimeout(r, 200));
    const d = await open();
    const answer = await new Promise((resolve) => {
      let out = '';
      d.on('data', (x) => { out += x; });
      d.on('close', () => resolve(out));
      d.write(`GET /hubspot/crm/v3/objects/contacts/101?properties=email HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nConnection: close\r\n\r\n`);
    });
    assert.equal(statusOf(answer), 200, answer);
    b.destroy();
    assert.match(capped.stderr(), /limits\.connections/);
  } finally {
    await capped.stop();
  }
});

/*
 * Not an open proxy, reverse mode: the upstream comes from the path prefix and the config only.
 * A spoofed Host (pointing at a listener that must stay untouched), an absolute-form target or a
 * CONNECT on the reverse listener can never send a request anywhere else.
 */
test('reverse mode: a spoofed Host, an absolute-form target or CONNECT never chooses the upstream', { skip: GATE }, async () => {
  let tripped = 0;
  const trip = net.createServer((c) => { tripped++; c.destroy(); });
  await new Promise((r) => trip.listen(0, '127.0.0.1', r));
  const tp = trip.address().port;
  const fakeHost = new URL(stack.fake.url).host;
  try {
    const path = '/hubspot/crm/v3/objects/contacts/101?properties=email';
    for (const host of [`127.0.0.1:${tp}`, 'evil.example.com', 'api.hubapi.com']) {
      const { r, log } = await fakeSaw(() => raw([`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${TOKEN}\r\nConnection: close\r\n\r\n`]));
      assert.equal(statusOf(r), 200, r);
      assert.match(r, /"email":"ada@example.com"/);
      assert.equal(log.length, 1, `Host: ${host} reaches the configured upstream, once`);
      assert.equal(log[0].headers.host, fakeHost, 'the upstream sees its own Host, not the spoofed one');
    }
    for (const [req, status] of [
      [`GET http://127.0.0.1:${tp}${path} HTTP/1.1\r\nHost: 127.0.0.1:${tp}\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`, 400],
      [`GET https://api.hubapi.com/crm/v3/objects/contacts/101 HTTP/1.1\r\nHost: api.hubapi.com\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`, 400],
      [`CONNECT 127.0.0.1:${tp} HTTP/1.1\r\nHost: 127.0.0.1:${tp}\r\n\r\n`, 405],
      [`CONNECT api.hubapi.com:443 HTTP/1.1\r\nHost: api.hubapi.com:443\r\n\r\n`, 405],
    ]) {
      const { r, log } = await fakeSaw(() => raw([req]));
      assert.equal(statusOf(r), status, `${req.split('\r\n')[0]} -> ${r}`);
      assert.match(r, /"status":"error"/, 'a HubSpot-shaped error');
      assert.equal(log.length, 0, 'nothing reaches the CRM');
    }
    assert.equal(tripped, 0, 'the tripwire listener was never connected to');
  } finally {
    trip.close();
  }
});

/*
 * crmgate's own outbound calls never follow proxy variables it inherited: libcurl reads
 * http_proxy, HTTPS_PROXY and ALL_PROXY by default, and a crmgate started where agents get
 * HTTPS_PROXY=<its own forward listener> looped through itself, while an http_proxy was handed
 * every request, the CRM token in Authorization included, in clear. The upstream comes from the
 * config alone: the tripwire "proxy" must see nothing and the fake CRM must answer.
 */
test('proxy variables in crmgate\'s environment are ignored: the CRM token goes to the configured upstream only', { skip: GATE }, async () => {
  const seen = [];
  const trip = net.createServer((c) => { c.on('data', (d) => seen.push(d.toString('latin1').split('\r\n')[0])); c.on('error', () => {}); setTimeout(() => c.destroy(), 100); });
  await new Promise((r) => trip.listen(0, '127.0.0.1', r));
  const proxy = `http://127.0.0.1:${trip.address().port}`;
  const env = { http_proxy: proxy, HTTP_PROXY: proxy, https_proxy: proxy, HTTPS_PROXY: proxy, ALL_PROXY: proxy, all_proxy: proxy, NO_PROXY: '', no_proxy: '' };
  const g = await harness.startCrmgate({ upstreams: { hubspot: stack.fake.url, salesforce: stack.fake.url }, rules: RULES, callers: CALLERS, env });
  try {
    const { r, log } = await fakeSaw(() => new Promise((resolve, reject) => {
      const s = net.connect(g.port, '127.0.0.1');
      let out = '';
      s.on('data', (d) => { out += d.toString('latin1'); });
      s.on('error', reject);
      s.on('close', () => resolve(out));
      s.write(`GET /hubspot/crm/v3/objects/contacts/101?properties=email HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nConnection: close\r\n\r\n`);
    }));
    assert.deepEqual(seen, [], 'nothing may reach the proxy named by the environment');
    assert.equal(statusOf(r), 200, r);
    assert.equal(log.length, 1, 'the configured upstream answered');
  } finally {
    await g.stop();
    trip.close();
  }
});

/*
 * An upstream that leads back to crmgate (an upstream URL naming crmgate's own listener, or
 * in transparent mode a REDIRECT rule that also catches crmgate's own calls) must not spiral
 * until the connection limit: every upstream request carries "Via: 1.1 crmgate-<random>",
 * and a request arriving with this process's own pseudonym is refused at once with 508
 * loop_detected, in the CRM's error shape. The SDKs get a plain 508; one hop each, no more.
 */
test('an upstream leading back to crmgate: the second hop answers 508 loop_detected to both SDKs, never a spiral', { skip: GATE }, async () => {
  const { Client } = require('@hubspot/api-client');
  const jsforce = require('jsforce');
  const port = await new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
  const self = `http://127.0.0.1:${port}`;
  const g = await harness.startCrmgate({ upstreams: { hubspot: `${self}/hubspot`, salesforce: `${self}/salesforce` }, rules: RULES, callers: CALLERS, args: ['--listen', `127.0.0.1:${port}`] });
  try {
    assert.equal(g.port, port, 'crmgate listens where its upstream points');
    const hs = new Client({ accessToken: TOKEN, basePath: `${self}/hubspot`, numberOfApiCallRetries: 0 });
    const e1 = await hs.crm.contacts.basicApi.getById('101', ['email']).then(() => null, (e) => e);
    assert.ok(e1, 'the HubSpot SDK call fails');
    assert.equal(e1.code, 508, String(e1));
    const b1 = typeof e1.body === 'string' ? JSON.parse(e1.body) : e1.body;
    assert.equal(b1.category, 'LOOP_DETECTED');
    assert.equal(b1.subCategory, 'crmgate.loop_detected');
    assert.match(b1.message, /already passed through this crmgate/);

    const sf = new jsforce.Connection({ instanceUrl: `${self}/salesforce`, accessToken: SF_TOKEN, version: '62.0' });
    const e2 = await sf.sobject('Lead').retrieve('00Q000000000001EAA').then(() => null, (e) => e);
    assert.ok(e2, 'the jsforce call fails');
    assert.equal(e2.errorCode, 'LOOP_DETECTED', String(e2));
    assert.match(e2.message, /already passed through this crmgate/);

    /* each call made two hops, the second refused: the log holds two lines per path (they
     * may reach us after the answers: poll for them) */
    const hops = (re) => g.stderr().split('\n').filter((l) => re.test(l) && / 508 /.test(l)).length;
    for (const t0 = Date.now(); Date.now() - t0 < 3000; await new Promise((r) => setTimeout(r, 20))) {
      if (hops(/"GET \/hubspot\//) >= 2 && hops(/"GET \/salesforce\//) >= 2) break;
    }
    assert.equal(hops(/"GET \/hubspot\/crm\/v3\/objects\/contacts\/101/), 2, g.stderr());
    assert.equal(hops(/"GET \/salesforce\/services\/data\/v62\.0\/sobjects\/Lead\/00Q000000000001EAA/), 2, g.stderr());
  } finally {
    await g.stop();
  }
});

/* Another proxy's Via is no loop: the call goes through, and the CRM sees it with crmgate's hop after it. */
test('a Via naming other proxies passes; the CRM sees it, then crmgate\'s own hop', { skip: GATE }, async () => {
  const { r, log } = await fakeSaw(() => new Promise((resolve, reject) => {
    const s = net.connect(stack.gate.port, '127.0.0.1');
    let out = '';
    s.on('data', (d) => { out += d.toString('latin1'); });
    s.on('error', reject);
    s.on('close', () => resolve(out));
    s.write(`GET /hubspot/crm/v3/objects/contacts/101?properties=email HTTP/1.1\r\nHost: x\r\nVia: 1.1 corp-proxy, 1.1 crmgate-0000000000000000\r\nAuthorization: Bearer ${TOKEN}\r\nConnection: close\r\n\r\n`);
  }));
  assert.equal(statusOf(r), 200, r);
  assert.equal(log.length, 1);
  assert.match(log[0].headers.via, /^1\.1 corp-proxy, 1\.1 crmgate-0000000000000000, 1\.1 crmgate-[0-9a-f]{16}$/);
});
