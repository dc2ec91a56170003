'use strict';
/*
 * crmgate's HTTP edge, byte by byte: raw sockets (node:net) against a real crmgate in front of
 * the fake CRM, checking what the client gets back and what reaches the upstream (the fake's
 * request log). Cases follow the documented behaviour: limits (431/413/408), strict parsing
 * (400 + close, nothing forwarded), hop-by-hop handling, upstream failures (502/504), routes
 * (404), signals (SIGTERM drains, SIGHUP keeps serving).
 *
 *   node --test tests/e2e/http_edge.test.js        (needs ./crmgate built; see harness.js)
 *
 * The fake's control API (/_fake/...) is used directly: it is the contract server.js documents.
 * Responses the fake gives on purpose are armed as 'status' faults with a unique body per test,
 * so a test knows an answer came from the upstream and not from crmgate.
 */

const { test, before, after, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const zlib = require('node:zlib');
const { setTimeout: sleep } = require('node:timers/promises');
const harness = require('./harness.js');

const TOKEN = 'pat-na1-11111111-2222-3333-4444-555555555555';
const CONTACTS = '/crm/v3/objects/contacts';
/* Tight limits for the timeout cases; everything else runs against the defaults. */
const TIGHT = {
  limits: { header_timeout_ms: 500, body_timeout_ms: 500, idle_timeout_ms: 800 },
  upstream_timeout_ms: 1000,
};
const DEFAULT_BODY_LIMIT = 1024 * 1024;

let stack; /* startStack(): fake + crmgate with the default config */
let tight; /* a second crmgate on the same fake with TIGHT */

before(async () => {
  stack = await harness.startStack();
  tight = await harness.startCrmgate({ upstreams: { hubspot: stack.fake.url }, config: TIGHT });
});

after(async () => {
  if (tight) await tight.stop();
  if (stack) await stack.stop();
});

beforeEach(async () => {
  await control('POST', '/_fake/reset');
});

/* ------------------------------------------------------------------------------------------ */
/* fake CRM control API                                                                        */

async function control(method, path, body) {
  const res = await fetch(stack.fake.url + path, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`fake control ${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/* Requests that reached the fake since the last reset (control calls are not logged). */
async function upstreamLog() {
  return control('GET', '/_fake/requests');
}

/* The fake answers the next request to CONTACTS/<name> with 200 and a body naming it. */
async function armAnswer(name, extra = {}, count = 1) {
  const body = { id: name, properties: { firstname: 'Ada', note: `answer for ${name}` }, ...extra };
  await control('POST', '/_fake/faults', {
    action: 'status', status: 200, body, match: { path: `^${CONTACTS}/${name}$` }, count,
  });
  return body;
}

async function armFault(spec) {
  await control('POST', '/_fake/faults', spec);
}

/* Nothing may have reached the upstream; waits a little so a late forward is caught too. */
async function assertNothingForwarded(what) {
  await sleep(300);
  const log = await upstreamLog();
  assert.equal(log.length, 0,
    `${what}: the upstream must see nothing, but got ${JSON.stringify(log.map((r) => `${r.method} ${r.path} ${JSON.stringify(r.body)}`))}`);
}

/* ------------------------------------------------------------------------------------------ */
/* raw HTTP/1.1 client                                                                         */

function show(bytes) {
  const s = Buffer.isBuffer(bytes) ? bytes.toString('latin1') : String(bytes);
  const cut = s.length > 600 ? `${s.slice(0, 600)}…(${s.length} bytes)` : s;
  return JSON.stringify(cut);
}

/*
 * Parses one response from buf. Returns null if incomplete, else {res, used}. ended: the peer
 * closed, which completes a close-delimited body.
 */
function parseResponse(buf, ended) {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const head = buf.subarray(0, end).toString('latin1');
  const lines = head.split('\r\n');
  const m = /^HTTP\/(\d\.\d) (\d{3})(?: (.*))?$/.exec(lines[0]);
  if (!m) throw new Error(`not an HTTP response: ${show(buf)}`);
  const headers = {};
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':');
    if (i <= 0) throw new Error(`bad response header line ${show(line)}`);
    const k = line.slice(0, i).toLowerCase();
    const v = line.slice(i + 1).trim();
    headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
  }
  const status = Number(m[2]);
  const start = end + 4;
  let body;
  let used;
  if (status < 200 || status === 204 || status === 304) {
    body = Buffer.alloc(0);
    used = start;
  } else if (/\bchunked\b/i.test(headers['transfer-encoding'] || '')) {
    const parts = [];
    let p = start;
    for (;;) {
      const eol = buf.indexOf('\r\n', p);
      if (eol < 0) return null;
      const size = parseInt(buf.subarray(p, eol).toString('latin1').split(';')[0], 16);
      if (Number.isNaN(size)) throw new Error(`bad chunk size in ${show(buf.subarray(p))}`);
      if (size === 0) {
        const trailerEnd = buf.indexOf('\r\n\r\n', eol);
        if (trailerEnd === eol) { used = eol + 4; break; }
        if (buf.length < eol + 4) return null;
        if (buf.subarray(eol, eol + 4).toString() === '\r\n\r\n') { used = eol + 4; break; }
        if (trailerEnd < 0) return null;
        used = trailerEnd + 4;
        break;
      }
      if (buf.length < eol + 2 + size + 2) return null;
      parts.push(buf.subarray(eol + 2, eol + 2 + size));
      p = eol + 2 + size + 2;
    }
    body = Buffer.concat(parts);
  } else if (headers['content-length'] !== undefined) {
    const n = Number(headers['content-length']);
    if (buf.length < start + n) return null;
    body = buf.subarray(start, start + n);
    used = start + n;
  } else {
    if (!ended) return null;
    body = buf.subarray(start);
    used = buf.length;
  }
  return { res: { version: m[1], status, reason: m[3] || '', headers, body, head }, used };
}

class RawConn {
  static open(port) {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host: '127.0.0.1', port });
      sock.once('connect', () => resolve(new RawConn(sock)));
      sock.once('error', reject);
    });
  }

  constructor(sock) {
    this.sock = sock;
    this.buf = Buffer.alloc(0);
    this.ended = false;
    this.closed = false;
    this.error = null;
    this.closedAt = 0;
    this.waiters = new Set();
    sock.on('data', (d) => { this.buf = Buffer.concat([this.buf, d]); this.wake(); });
    sock.on('end', () => { this.ended = true; this.wake(); });
    sock.on('error', (e) => { this.error = e; this.wake(); });
    sock.on('close', () => { this.closed = true; this.ended = true; this.closedAt = Date.now(); this.wake(); });
  }

  wake() {
    for (const w of this.waiters) w();
  }

  /* Resolves when pred() holds, or with false after ms. */
  until(pred, ms) {
    return new Promise((resolve) => {
      if (pred()) return resolve(true);
      const done = (v) => { clearTimeout(t); this.waiters.delete(check); resolve(v); };
      const check = () => { if (pred()) done(true); };
      const t = setTimeout(() => done(false), ms);
      this.waiters.add(check);
    });
  }

  write(bytes) {
    if (this.closed || this.sock.destroyed) return false;
    try { return this.sock.write(bytes); } catch (e) { this.error = e; return false; }
  }

  tryParse() {
    const r = parseResponse(this.buf, this.ended);
    if (!r) return null;
    this.buf = this.buf.subarray(r.used);
    return r.res;
  }

  /* Next complete response, or throws saying exactly what arrived instead. */
  async response(ms = 5000, what = 'request') {
    let res = null;
    await this.until(() => (res = this.tryParse()) !== null || this.ended, ms);
    if (!res) res = this.tryParse();
    if (res) return res;
    throw new Error(`${what}: no complete response within ${ms} ms; got ${show(this.buf)}; ` +
      `closed=${this.closed} ended=${this.ended} error=${this.error ? this.error.code || this.error.message : 'none'}`);
  }

  /* Waits for the peer to close (FIN or RST); true if it did within ms. */
  async waitClosed(ms = 3000) {
    return this.until(() => this.ended || this.closed, ms);
  }

  destroy() {
    this.sock.destroy();
  }
}

/* Builds a request with CRLF line endings. headers: array of [name, value] or raw lines. */
function request(method, path, { headers = [], body = '', host = true, version = 'HTTP/1.1', port } = {}) {
  const lines = [`${method} ${path} ${version}`];
  if (host) lines.push(`Host: 127.0.0.1:${port}`);
  for (const h of headers) lines.push(Array.isArray(h) ? `${h[0]}: ${h[1]}` : h);
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

function get(port, name, headers = []) {
  return request('GET', `/hubspot${CONTACTS}/${name}`, {
    port, headers: [['Authorization', `Bearer ${TOKEN}`], ...headers],
  });
}

/* Sends bytes on a new connection and returns {conn, res}. */
async function exchange(port, bytes, what, ms = 5000) {
  const conn = await RawConn.open(port);
  conn.write(bytes);
  const res = await conn.response(ms, `${what}, request ${show(bytes)}`);
  return { conn, res };
}

function jsonBody(res, what) {
  const text = res.body.toString('utf8');
  try {
    return JSON.parse(text);
  } catch (e) {
    assert.fail(`${what}: body is not JSON: ${show(text)} (headers ${JSON.stringify(res.headers)})`);
  }
}

/* crmgate's own errors on HubSpot routes (and on unknown ones) have HubSpot's error shape. */
function assertHubSpotError(res, status, what) {
  const ctx = `${what}: got ${res.status} ${JSON.stringify(res.headers)} ${show(res.body)}`;
  assert.equal(res.status, status, ctx);
  assert.match(res.headers['content-type'] || '', /^application\/json/i, ctx);
  const b = jsonBody(res, what);
  assert.equal(b.status, 'error', ctx);
  assert.equal(typeof b.message, 'string', ctx);
  assert.ok(b.message.length > 0, ctx);
  assert.equal(typeof b.correlationId, 'string', ctx);
  assert.ok(b.correlationId.length > 0, ctx);
  assert.equal(typeof b.category, 'string', ctx);
  assert.ok(b.category.length > 0, ctx);
  return b;
}

/* A refused request: the status, a HubSpot-shaped body, the connection closed, nothing forwarded. */
async function assertRejected(port, bytes, status, what) {
  const { conn, res } = await exchange(port, bytes, what);
  try {
    assertHubSpotError(res, status, `${what}, request ${show(bytes)}`);
    assert.ok(await conn.waitClosed(3000),
      `${what}: the connection must be closed after ${status}; request ${show(bytes)}`);
  } finally {
    conn.destroy();
  }
  await assertNothingForwarded(`${what}, request ${show(bytes)}`);
}

function closedPort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

/* The crmgate child process behind a harness handle, for signal tests. */
function processOf(gate) {
  const proc = gate.proc || gate.child || gate.process;
  assert.ok(proc && typeof proc.pid === 'number' && typeof proc.once === 'function',
    `harness: the crmgate handle must expose its ChildProcess (proc); keys: ${Object.keys(gate)}`);
  return proc;
}

function exitOf(proc, ms) {
  if (proc.exitCode !== null || proc.signalCode !== null) {
    return Promise.resolve({ code: proc.exitCode, signal: proc.signalCode });
  }
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(null), ms);
    proc.once('exit', (code, signal) => { clearTimeout(t); resolve({ code, signal }); });
  });
}

/* ------------------------------------------------------------------------------------------ */
/* connection handling                                                                         */

test('keep-alive: two requests on one connection are both forwarded and answered', async () => {
  const port = stack.gate.port;
  const a = await armAnswer('ka1');
  const b = await armAnswer('ka2');
  const conn = await RawConn.open(port);
  try {
    const r1bytes = get(port, 'ka1');
    conn.write(r1bytes);
    const r1 = await conn.response(5000, `first request ${show(r1bytes)}`);
    assert.equal(r1.status, 200, `first: ${r1.head} ${show(r1.body)}`);
    assert.deepEqual(jsonBody(r1, 'first'), a);
    assert.doesNotMatch(r1.headers.connection || '', /close/i, 'first response must keep the connection');
    assert.equal(conn.closed, false, 'connection closed after the first response');

    const r2bytes = get(port, 'ka2');
    conn.write(r2bytes);
    const r2 = await conn.response(5000, `second request on the same connection ${show(r2bytes)}`);
    assert.equal(r2.status, 200, `second: ${r2.head} ${show(r2.body)}`);
    assert.deepEqual(jsonBody(r2, 'second'), b);
  } finally {
    conn.destroy();
  }
  const log = await upstreamLog();
  assert.deepEqual(log.map((r) => r.path), [`${CONTACTS}/ka1`, `${CONTACTS}/ka2`]);
});

test('pipelining: three GETs in one write are answered in order, each forwarded once', async () => {
  const port = stack.gate.port;
  const names = ['pipe1', 'pipe2', 'pipe3'];
  const want = [];
  for (const n of names) want.push(await armAnswer(n));
  const bytes = names.map((n) => get(port, n)).join('');
  const conn = await RawConn.open(port);
  try {
    conn.write(bytes);
    for (let i = 0; i < names.length; i++) {
      const r = await conn.response(5000, `pipelined response ${i + 1} of 3 to ${show(bytes)}`);
      assert.equal(r.status, 200, `response ${i + 1}: ${r.head} ${show(r.body)}`);
      assert.deepEqual(jsonBody(r, `response ${i + 1}`), want[i], `response ${i + 1} out of order`);
    }
  } finally {
    conn.destroy();
  }
  const log = await upstreamLog();
  assert.deepEqual(log.map((r) => `${r.method} ${r.path}`), names.map((n) => `GET ${CONTACTS}/${n}`));
});

test('chunked request body: a chunked PATCH is forwarded with the whole body', async () => {
  const port = stack.gate.port;
  /* twice: crmgate first reads the record's before-state for the audit, then writes */
  const want = await armAnswer('chunked1', {}, 2);
  const json = '{"properties":{"firstname":"Ada","lastname":"Lovelace"}}';
  const chunks = [json.slice(0, 14), json.slice(14, 40), json.slice(40)];
  const body = chunks.map((c) => `${c.length.toString(16)}\r\n${c}\r\n`).join('') + '0\r\n\r\n';
  const bytes = request('PATCH', `/hubspot${CONTACTS}/chunked1`, {
    port,
    headers: [['Authorization', `Bearer ${TOKEN}`], ['Content-Type', 'application/json'],
      ['Transfer-Encoding', 'chunked']],
    body,
  });
  const { conn, res } = await exchange(port, bytes, 'chunked PATCH');
  conn.destroy();
  assert.equal(res.status, 200, `${res.head} ${show(res.body)}`);
  assert.deepEqual(jsonBody(res, 'chunked PATCH'), want);
  const log = await upstreamLog();
  assert.deepEqual(log.map((r) => r.method), ['GET', 'PATCH'], 'the before-state read, then the write');
  assert.equal(log[1].path, `${CONTACTS}/chunked1`);
  assert.equal(log[1].body, json, 'the upstream must get the de-chunked body exactly');
});

/* ------------------------------------------------------------------------------------------ */
/* limits                                                                                      */

test('oversized header block (> 64 KiB) → 431, nothing forwarded', async () => {
  const port = stack.gate.port;
  const headers = [['Authorization', `Bearer ${TOKEN}`]];
  for (let i = 0; i < 70; i++) headers.push([`X-Big-${i}`, 'a'.repeat(1000)]); /* ~71 KB, 72 fields */
  const bytes = request('GET', `/hubspot${CONTACTS}/big`, { port, headers });
  await assertRejected(port, bytes, 431, 'header block of 71 KB');
});

test('too many header fields (> 100) → 431, nothing forwarded', async () => {
  const port = stack.gate.port;
  const headers = [['Authorization', `Bearer ${TOKEN}`]];
  for (let i = 0; i < 101; i++) headers.push([`X-H-${i}`, 'v']);
  const bytes = request('GET', `/hubspot${CONTACTS}/many`, { port, headers });
  await assertRejected(port, bytes, 431, '103 header fields');
});

test('oversized body by Content-Length (> 1 MiB) → 413, nothing forwarded', async () => {
  const port = stack.gate.port;
  const n = DEFAULT_BODY_LIMIT + 1;
  const head = request('POST', `/hubspot${CONTACTS}`, {
    port,
    headers: [['Authorization', `Bearer ${TOKEN}`], ['Content-Type', 'application/json'],
      ['Content-Length', String(n)]],
  });
  const conn = await RawConn.open(port);
  try {
    conn.write(head);
    /* A proxy may answer on the headers alone; otherwise send the body. */
    if (!(await conn.until(() => conn.buf.length > 0 || conn.ended, 500))) {
      conn.write(Buffer.alloc(n, 0x20));
    }
    const res = await conn.response(5000, `POST with Content-Length ${n}`);
    assertHubSpotError(res, 413, `Content-Length ${n}`);
    assert.ok(await conn.waitClosed(3000), 'connection must close after 413');
  } finally {
    conn.destroy();
  }
  await assertNothingForwarded(`POST with Content-Length ${n}`);
});

test('oversized chunked body (> 1 MiB) → 413, nothing forwarded', async () => {
  const port = stack.gate.port;
  const head = request('POST', `/hubspot${CONTACTS}`, {
    port,
    headers: [['Authorization', `Bearer ${TOKEN}`], ['Content-Type', 'application/json'],
      ['Transfer-Encoding', 'chunked']],
  });
  const chunk = `10000\r\n${' '.repeat(0x10000)}\r\n`;
  const conn = await RawConn.open(port);
  let sent = 0;
  try {
    conn.write(head);
    while (sent <= DEFAULT_BODY_LIMIT + 2 * 0x10000 && conn.buf.length === 0 && !conn.ended) {
      conn.write(chunk);
      sent += 0x10000;
      await sleep(5);
    }
    if (conn.buf.length === 0 && !conn.ended) conn.write('0\r\n\r\n');
    const res = await conn.response(5000, `chunked POST after ${sent} body bytes`);
    assertHubSpotError(res, 413, `chunked body of ${sent} bytes`);
    assert.ok(await conn.waitClosed(3000), 'connection must close after 413');
  } finally {
    conn.destroy();
  }
  await assertNothingForwarded(`chunked POST of ${sent} bytes`);
});

/* ------------------------------------------------------------------------------------------ */
/* timeouts (the TIGHT crmgate)                                                                */

test('slow client: headers not finished within header_timeout_ms → 408, nothing forwarded', async () => {
  const port = tight.port;
  const partial = `GET /hubspot${CONTACTS}/slow HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n`;
  const conn = await RawConn.open(port);
  const t0 = Date.now();
  try {
    conn.write(partial);
    const res = await conn.response(4000, `partial headers ${show(partial)}`);
    const dt = Date.now() - t0;
    assertHubSpotError(res, 408, `header timeout (500 ms), partial ${show(partial)}`);
    assert.ok(dt >= 400, `408 after ${dt} ms, before the 500 ms header timeout`);
    assert.ok(await conn.waitClosed(3000), 'connection must close after 408');
  } finally {
    conn.destroy();
  }
  await assertNothingForwarded('partial headers');
});

test('slow client: body not finished within body_timeout_ms → 408, nothing forwarded', async () => {
  const port = tight.port;
  const bytes = request('POST', `/hubspot${CONTACTS}`, {
    port,
    headers: [['Authorization', `Bearer ${TOKEN}`], ['Content-Type', 'application/json'],
      ['Content-Length', '40']],
    body: '{"properties":',
  });
  const conn = await RawConn.open(port);
  const t0 = Date.now();
  try {
    conn.write(bytes);
    const res = await conn.response(4000, `14 of 40 body bytes ${show(bytes)}`);
    const dt = Date.now() - t0;
    assertHubSpotError(res, 408, 'body timeout (500 ms)');
    assert.ok(dt >= 400, `408 after ${dt} ms, before the 500 ms body timeout`);
    assert.ok(await conn.waitClosed(3000), 'connection must close after 408');
  } finally {
    conn.destroy();
  }
  await assertNothingForwarded('unfinished body');
});

test('idle keep-alive connection is closed after idle_timeout_ms', async () => {
  const port = tight.port;
  await armAnswer('idle1');
  const conn = await RawConn.open(port);
  try {
    const bytes = get(port, 'idle1');
    conn.write(bytes);
    const res = await conn.response(5000, `request ${show(bytes)}`);
    assert.equal(res.status, 200, `${res.head} ${show(res.body)}`);
    const t0 = Date.now();
    assert.ok(await conn.waitClosed(4000), 'idle connection still open 4 s after the response (idle_timeout_ms 800)');
    const dt = Date.now() - t0;
    assert.ok(dt >= 600, `closed ${dt} ms after the response, before idle_timeout_ms 800`);
    /* Closing silently is usual; an unsolicited 408 is tolerated, anything else is not. */
    if (conn.buf.length > 0) {
      const extra = conn.tryParse();
      assert.ok(extra && extra.status === 408, `unexpected bytes on idle close: ${show(conn.buf)}`);
    }
  } finally {
    conn.destroy();
  }
});

/* ------------------------------------------------------------------------------------------ */
/* malformed requests                                                                          */

test('malformed request line → 400 with a clear body, nothing forwarded', async () => {
  const port = stack.gate.port;
  const bytes = `GET /hubspot${CONTACTS}/1 HTTX/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`;
  await assertRejected(port, bytes, 400, 'request line with version HTTX/1.1');
});

test('unknown method → 501 or 400, nothing forwarded', async () => {
  const port = stack.gate.port;
  const bytes = get(port, '1').replace(/^GET /, 'FOO ');
  const { conn, res } = await exchange(port, bytes, 'method FOO');
  conn.destroy();
  assert.ok(res.status === 501 || res.status === 400, `method FOO: got ${res.status} ${show(res.body)}`);
  assertHubSpotError(res, res.status, 'method FOO');
  await assertNothingForwarded('method FOO');
});

/*
 * Request smuggling and desync vectors: each must be refused with 400 and a close, and neither
 * the request nor anything hidden behind it may reach the upstream.
 */
const SMUGGLING = [
  ['Content-Length together with Transfer-Encoding: chunked', (p) =>
    `POST /hubspot${CONTACTS} HTTP/1.1\r\nHost: 127.0.0.1:${p}\r\nContent-Type: application/json\r\n` +
    'Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n' +
    `GET /hubspot${CONTACTS}/smuggled HTTP/1.1\r\nHost: 127.0.0.1:${p}\r\n\r\n`],
  ['duplicate Content-Length (equal values)', (p) =>
    `POST /hubspot${CONTACTS} HTTP/1.1\r\nHost: 127.0.0.1:${p}\r\nContent-Type: application/json\r\n` +
    'Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}'],
  ['bare CR inside a header value', (p) =>
    `GET /hubspot${CONTACTS}/1 HTTP/1.1\r\nHost: 127.0.0.1:${p}\r\nX-Test: a\rb\r\n\r\n`],
  ['bare CR ending the header block (CVE-2023-30589)', (p) =>
    `GET /hubspot${CONTACTS}/1 HTTP/1.1\r\nHost: 127.0.0.1:${p}\r\n\r` +
    `GET /hubspot${CONTACTS}/smuggled HTTP/1.1\r\nHost: 127.0.0.1:${p}\r\n\r\n`],
  ['obs-fold (header line continued with a space)', (p) =>
    `GET /hubspot${CONTACTS}/1 HTTP/1.1\r\nHost: 127.0.0.1:${p}\r\nX-Test: a\r\n  Content-Length: 3\r\n\r\n`],
  ['space before the colon in a header name', (p) =>
    `GET /hubspot${CONTACTS}/1 HTTP/1.1\r\nHost: 127.0.0.1:${p}\r\nX-Test : 1\r\n\r\n`],
  ['bare LF line endings', (p) =>
    `GET /hubspot${CONTACTS}/1 HTTP/1.1\nHost: 127.0.0.1:${p}\nX-Test: 1\n\n`],
  ['Transfer-Encoding: chunked, gzip (chunked not last)', (p) =>
    `POST /hubspot${CONTACTS} HTTP/1.1\r\nHost: 127.0.0.1:${p}\r\nContent-Type: application/json\r\n` +
    'Transfer-Encoding: chunked, gzip\r\n\r\n2\r\n{}\r\n0\r\n\r\n'],
  ['Content-Length: +3', (p) =>
    `POST /hubspot${CONTACTS} HTTP/1.1\r\nHost: 127.0.0.1:${p}\r\nContent-Type: application/json\r\n` +
    'Content-Length: +3\r\n\r\n{} '],
  ['invalid chunk size (0x2)', (p) =>
    `POST /hubspot${CONTACTS} HTTP/1.1\r\nHost: 127.0.0.1:${p}\r\nContent-Type: application/json\r\n` +
    'Transfer-Encoding: chunked\r\n\r\n0x2\r\n{}\r\n0\r\n\r\n'],
  ['HTTP/1.0 with Transfer-Encoding: chunked', (p) =>
    `POST /hubspot${CONTACTS} HTTP/1.0\r\nHost: 127.0.0.1:${p}\r\nContent-Type: application/json\r\n` +
    'Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n'],
];

for (const [name, build] of SMUGGLING) {
  test(`smuggling: ${name} → 400, close, nothing reaches the upstream`, async () => {
    const port = stack.gate.port;
    await assertRejected(port, build(port), 400, name);
  });
}

/* ------------------------------------------------------------------------------------------ */
/* what the upstream gets                                                                      */

test('forwarding: hop-by-hop headers removed, Host rewritten, X-Forwarded-For added', async () => {
  const port = stack.gate.port;
  await armAnswer('hop1');
  const bytes = get(port, 'hop1', [
    ['Connection', 'keep-alive, X-Hop-Custom'],
    ['Keep-Alive', 'timeout=5'],
    ['X-Hop-Custom', 'drop-me'],
    ['TE', 'trailers'],
    ['Proxy-Authorization', 'Basic cHJveHk6c2VjcmV0'],
    ['X-Crmgate-Reason', 'e2e hop-by-hop test'],
    ['X-End-To-End', 'keep-me'],
  ]);
  const { conn, res } = await exchange(port, bytes, 'hop-by-hop request');
  conn.destroy();
  assert.equal(res.status, 200, `${res.head} ${show(res.body)}`);
  const log = await upstreamLog();
  assert.equal(log.length, 1, `forwarded ${log.length} requests`);
  const h = log[0].headers;
  const seen = JSON.stringify(h);
  for (const gone of ['keep-alive', 'x-hop-custom', 'te', 'proxy-authorization', 'x-crmgate-reason']) {
    assert.equal(h[gone], undefined, `${gone} must not be forwarded; upstream saw ${seen}`);
  }
  assert.doesNotMatch(h.connection || '', /x-hop-custom/i, `Connection forwarded as is: ${seen}`);
  assert.equal(h.host, new URL(stack.fake.url).host, `Host must name the upstream; upstream saw ${seen}`);
  assert.equal(h['x-forwarded-for'], '127.0.0.1', `X-Forwarded-For; upstream saw ${seen}`);
  assert.equal(h['x-end-to-end'], 'keep-me', `end-to-end header lost; upstream saw ${seen}`);
  assert.equal(h.authorization, `Bearer ${TOKEN}`, `Authorization must be forwarded; upstream saw ${seen}`);
});

test('gzip: Accept-Encoding: gzip from the client and a gzipped upstream answer give a valid body', async () => {
  const port = stack.gate.port;
  /* large enough to be worth compressing; in a property, as a record's data is (the filter
   * cuts a record's members that records do not have) */
  const want = await armAnswer('gzip1', { properties: { firstname: 'Ada', note: 'lorem ipsum '.repeat(200) } });
  const bytes = get(port, 'gzip1', [['Accept-Encoding', 'gzip']]);
  const { conn, res } = await exchange(port, bytes, 'gzip request');
  conn.destroy();
  assert.equal(res.status, 200, `${res.head} ${show(res.body)}`);
  const enc = (res.headers['content-encoding'] || 'identity').toLowerCase();
  let body;
  if (enc === 'gzip') {
    try { body = zlib.gunzipSync(res.body); } catch (e) {
      assert.fail(`Content-Encoding: gzip but the body does not gunzip (${e.message}): ${show(res.body)}`);
    }
  } else {
    assert.equal(enc, 'identity', `unexpected Content-Encoding ${enc}`);
    body = res.body;
  }
  assert.deepEqual(JSON.parse(body.toString('utf8')), want);
  const log = await upstreamLog();
  assert.equal(log.length, 1);
});

/* ------------------------------------------------------------------------------------------ */
/* upstream failures                                                                           */

test('upstream refused (nothing listening) → 502 HubSpot-shaped', async () => {
  const port = await closedPort();
  const gate = await harness.startCrmgate({ upstreams: { hubspot: `http://127.0.0.1:${port}` } });
  try {
    const bytes = get(gate.port, 'refused');
    const { conn, res } = await exchange(gate.port, bytes, 'upstream refused', 15000);
    conn.destroy();
    assertHubSpotError(res, 502, `upstream 127.0.0.1:${port} refused`);
  } finally {
    await gate.stop();
  }
});

test('upstream slower than upstream_timeout_ms → 504 HubSpot-shaped', async () => {
  const port = tight.port;
  await armFault({ action: 'latency', ms: 3000, match: { path: `^${CONTACTS}/late$` }, count: 1 });
  const bytes = get(port, 'late');
  const t0 = Date.now();
  const { conn, res } = await exchange(port, bytes, 'upstream latency 3000 ms', 6000);
  const dt = Date.now() - t0;
  conn.destroy();
  assertHubSpotError(res, 504, 'upstream latency 3000 ms, upstream_timeout_ms 1000');
  assert.ok(dt >= 900 && dt < 2900, `504 after ${dt} ms, want about 1000 ms`);
});

test('upstream resets the connection → 502 HubSpot-shaped', async () => {
  const port = stack.gate.port;
  await armFault({ action: 'reset', match: { path: `^${CONTACTS}/reset$` }, count: -1 });
  const { conn, res } = await exchange(port, get(port, 'reset'), 'upstream reset', 15000);
  conn.destroy();
  assertHubSpotError(res, 502, 'upstream reset');
});

test('upstream answers garbage → 502 HubSpot-shaped', async () => {
  const port = stack.gate.port;
  await armFault({ action: 'garbage', match: { path: `^${CONTACTS}/garbage$` }, count: -1 });
  const { conn, res } = await exchange(port, get(port, 'garbage'), 'upstream garbage', 15000);
  conn.destroy();
  assertHubSpotError(res, 502, 'upstream garbage');
});

test('upstream truncates its body (Content-Length not met) → 502, never a short 200', async () => {
  const port = stack.gate.port;
  await armFault({ action: 'close', match: { path: `^${CONTACTS}/trunc$` }, count: -1 });
  const conn = await RawConn.open(port);
  try {
    const bytes = get(port, 'trunc');
    conn.write(bytes);
    let res = null;
    try { res = await conn.response(15000, 'upstream truncated'); } catch { res = null; }
    /* Headers may already be on the way if crmgate streams; then only a close is honest. */
    if (res) assertHubSpotError(res, 502, `upstream truncated; request ${show(bytes)}`);
    else assert.ok(conn.ended, `no response and no close: ${show(conn.buf)}`);
  } finally {
    conn.destroy();
  }
});

/* ------------------------------------------------------------------------------------------ */
/* routes                                                                                      */

test('unknown prefix /foo → 404 with a clear body, nothing forwarded', async () => {
  const port = stack.gate.port;
  const bytes = request('GET', '/foo/crm/v3/objects/contacts/1', { port });
  const { conn, res } = await exchange(port, bytes, 'unknown prefix');
  conn.destroy();
  const b = assertHubSpotError(res, 404, 'GET /foo/...');
  assert.match(b.message, /route|prefix|unknown|not found|\/foo/i, `404 message not clear: ${b.message}`);
  await assertNothingForwarded('GET /foo/...');
});

/*
 * Dot segments: policy classifies the path crmgate sees; an upstream (or anything in front of
 * it) that resolves "." and ".." would serve a different endpoint. crmgate may refuse such a
 * path or resolve it itself, but must never forward a dot segment, raw or percent-encoded.
 */
const DOT_SEGMENTS = [
  ['raw ../', `/hubspot${CONTACTS}/1/../../../../crm/v3/objects/deals/1`],
  ['percent-encoded %2e%2e/', `/hubspot${CONTACTS}/1/%2e%2e/%2E%2E/%2e%2e/%2e%2e/crm/v3/objects/deals/1`],
  ['raw ./', `/hubspot/crm/v3/objects/./contacts/1`],
];

for (const [name, path] of DOT_SEGMENTS) {
  test(`path with dot segments (${name}) is never forwarded as is`, async () => {
    const port = stack.gate.port;
    const bytes = request('GET', path, { port, headers: [['Authorization', `Bearer ${TOKEN}`]] });
    const { conn } = await exchange(port, bytes, `dot segments ${name}`);
    conn.destroy();
    const log = await upstreamLog();
    for (const r of log) {
      assert.doesNotMatch(r.path, /(^|\/)(\.|%2e){1,2}(\/|$)/i,
        `request ${show(bytes)} reached the upstream as ${r.method} ${r.path}`);
    }
  });
}

/* ------------------------------------------------------------------------------------------ */
/* signals                                                                                     */

test('SIGTERM with a slow request in flight: the request completes, then crmgate exits 0', async () => {
  const gate = await harness.startCrmgate({ upstreams: { hubspot: stack.fake.url } });
  const proc = processOf(gate);
  try {
    /* What the fake itself answers for this request, to compare the drained answer with. */
    const direct = await fetch(`${stack.fake.url}${CONTACTS}/drain1`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const directBody = await direct.json();
    await control('POST', '/_fake/reset');
    await armFault({ action: 'latency', ms: 1500, match: { path: `^${CONTACTS}/drain1$` }, count: 1 });
    const conn = await RawConn.open(gate.port);
    const bytes = get(gate.port, 'drain1');
    conn.write(bytes);
    /* Poll (valgrind makes the first request slow to arrive); the fake holds it for 1.5 s from arrival. */
    let seen = 0;
    for (const until = Date.now() + 5000; seen === 0 && Date.now() < until; await sleep(50)) seen = (await upstreamLog()).length;
    assert.equal(seen, 1, 'the slow request must be at the upstream before SIGTERM');
    proc.kill('SIGTERM');
    const res = await conn.response(10000, `in-flight request during SIGTERM ${show(bytes)}`);
    conn.destroy();
    assert.equal(res.status, direct.status,
      `in-flight request: want the upstream's ${direct.status}, got ${res.head} ${show(res.body)}`);
    const got = jsonBody(res, 'in-flight');
    if (directBody && typeof directBody.message === 'string') assert.equal(got.message, directBody.message);
    const exit = await exitOf(proc, 10000);
    assert.ok(exit, 'crmgate still running 10 s after SIGTERM with nothing in flight');
    assert.deepEqual(exit, { code: 0, signal: null }, `crmgate exit after SIGTERM: ${JSON.stringify(exit)}`);
  } finally {
    await gate.stop().catch(() => {});
  }
});

test('SIGHUP: crmgate reloads and keeps serving, old and new connections', async () => {
  const gate = await harness.startCrmgate({ upstreams: { hubspot: stack.fake.url } });
  const proc = processOf(gate);
  try {
    const a = await armAnswer('hup1');
    const b = await armAnswer('hup2');
    const c = await armAnswer('hup3');
    const old = await RawConn.open(gate.port);
    old.write(get(gate.port, 'hup1'));
    const r1 = await old.response(5000, 'before SIGHUP');
    assert.equal(r1.status, 200, `before SIGHUP: ${r1.head} ${show(r1.body)}`);
    assert.deepEqual(jsonBody(r1, 'before SIGHUP'), a);

    proc.kill('SIGHUP');
    await sleep(500);
    assert.equal(proc.exitCode, null, `crmgate exited on SIGHUP (code ${proc.exitCode}, signal ${proc.signalCode})`);
    assert.equal(proc.signalCode, null, `crmgate killed by SIGHUP (${proc.signalCode})`);

    const { conn, res } = await exchange(gate.port, get(gate.port, 'hup2'), 'new connection after SIGHUP');
    conn.destroy();
    assert.equal(res.status, 200, `new connection after SIGHUP: ${res.head} ${show(res.body)}`);
    assert.deepEqual(jsonBody(res, 'after SIGHUP'), b);

    if (!old.ended) {
      old.write(get(gate.port, 'hup3'));
      const r3 = await old.response(5000, 'kept-alive connection after SIGHUP');
      assert.equal(r3.status, 200, `old connection after SIGHUP: ${r3.head} ${show(r3.body)}`);
      assert.deepEqual(jsonBody(r3, 'old connection after SIGHUP'), c);
    }
    old.destroy();
  } finally {
    await gate.stop().catch(() => {});
  }
});
