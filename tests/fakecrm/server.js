#!/usr/bin/env node
'use strict';
/*
 * fakecrm: one process that plays both HubSpot and Salesforce, statefully, for crmgate's tests.
 *
 *   node tests/fakecrm/server.js --port PORT [--host 127.0.0.1] [--tls --cert C --key K] [--no-gzip]
 *
 * Prints exactly one line when ready: "fakecrm listening on http(s)://HOST:PORT".
 * Loopback only: --host must be a loopback address.
 *
 * ---------------------------------------------------------------------------------------------
 * Module contract (hubspot.js and salesforce.js both follow it; keep it stable):
 *
 * module.exports = function create(fake) { return { name, match(path) -> bool, async handle(ctx), reset(), seed(data), state() } }
 * fake: { now() -> ms epoch (wall clock), baseUrl() -> 'http://127.0.0.1:PORT', log(...),
 *         isRevoked(token) -> bool, revokeToken(token) }
 * ctx: { req, res, method (as received), path (decoded-once, '//' collapsed, no query),
 *        rawPath ('//' collapsed, still percent-encoded), query (URLSearchParams),
 *        headers (lower-case object), body (Buffer, gzip/deflate request bodies already inflated),
 *        json (parsed body or undefined; invalid JSON -> ctx.jsonError set),
 *        token (Bearer token string or null),
 *        send(status, bodyObjOrNullOrString, extraHeaders) }
 * send() always sets Content-Type: application/json;charset=utf-8 for bodies (extraHeaders may
 * override it); 204 has no body and no content-type.
 *
 * Optional module members (server.js uses them when present):
 *   isPublic(method, path) -> bool      the route needs no Bearer token (OAuth token endpoints,
 *                                       discovery); server.js then skips its 401 check.
 *   unauthorized(ctx)                   answer a missing/revoked token in the CRM's own shape.
 *   responseHeaders(ctx) -> object      headers added to every answer routed to this module,
 *                                       including 401s and injected faults (rate-limit headers).
 *   faultBody(kind) -> {status, body}   the CRM's default body for an injected 'status' or
 *                                       'ratelimit' fault (kind is 'status' or 'ratelimit').
 * ---------------------------------------------------------------------------------------------
 *
 * Control API (JSON, no auth, never logged): POST /_fake/reset, POST /_fake/seed,
 * GET|DELETE /_fake/requests (GET ?since=N, DELETE ?through=N drops entries up to seq N; entries
 * {seq, method, path, query, headers, body, response: {status, gzip} | null}), GET /_fake/state,
 * POST|DELETE /_fake/faults (a 'status' fault may carry "headers": {name: value} to answer with),
 * POST /_fake/tokens/revoke {token}, POST /_fake/options {gzip: 'auto'|'always'|'off',
 * batch_order: 'input'|'reversed' (HubSpot batch results)} (reset restores the command-line
 * setting and input order).
 *
 * FAKECRM_CREDENTIALS_FILE=PATH (the e2e harness sets it): every credential the fake receives or
 * issues is appended there, one JSON line {kind, value} the first time it is seen, so the
 * harness can look for them where none may be (crmgate's log and store; tests/e2e/secret_sweep.js):
 * Authorization and Proxy-Authorization values (a Basic one's password too), the secrets of
 * form bodies and queries (refresh_token, client_secret, password, code, token, ...), a token in
 * a HubSpot token-info path, and the access_token / refresh_token of its own answers. It
 * survives /_fake/reset: it is a record of what was seen, not state.
 */

const http = require('node:http');
const https = require('node:https');
const fs = require('node:fs');
const path = require('node:path');
const zlib = require('node:zlib');
const crypto = require('node:crypto');

const MAX_BODY_BYTES = 32 * 1024 * 1024; /* generous: bench and fuzz tests send big batches */

function parseArgs(argv) {
  const opts = { port: 0, host: '127.0.0.1', tls: false, cert: null, key: null, gzip: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--port') opts.port = Number(next());
    else if (a === '--host') opts.host = next();
    else if (a === '--tls') opts.tls = true;
    else if (a === '--cert') opts.cert = next();
    else if (a === '--key') opts.key = next();
    else if (a === '--no-gzip') opts.gzip = false;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) throw new Error('bad --port');
  /* Tests must never expose the fake beyond this machine. */
  if (!/^(127\.\d+\.\d+\.\d+|::1|localhost)$/.test(opts.host)) throw new Error('--host must be loopback');
  if (opts.tls && (!opts.cert || !opts.key)) throw new Error('--tls needs --cert and --key');
  return opts;
}

/* Loads a CRM module if its file exists, so each half can be developed on its own. */
function loadModule(file, fake) {
  const full = path.join(__dirname, file);
  if (!fs.existsSync(full)) return null;
  return require(full)(fake);
}

function createFake(opts) {
  let baseUrl = '';
  const revoked = new Set();
  let batchOrder = 'input';
  const fake = {
    now: () => Date.now(),
    /* 'reversed': HubSpot batch results come last input first (HubSpot does not document
     * their order), so a client that pairs them by position is caught */
    batchOrder: () => batchOrder,
    setBatchOrder: (o) => { batchOrder = o; },
    baseUrl: () => baseUrl,
    log: (...args) => { if (process.env.FAKECRM_DEBUG) console.error('[fakecrm]', ...args); },
    isRevoked: (t) => revoked.has(t),
    revokeToken: (t) => revoked.add(t),
    setBaseUrl: (u) => { baseUrl = u; },
    clearRevoked: () => revoked.clear(),
  };
  const modules = [loadModule('hubspot.js', fake), loadModule('salesforce.js', fake)].filter(Boolean);
  /* gzip: 'auto' = when the client asks (real CRMs), 'always' = even when it does not (robustness), 'off'. */
  return { fake, modules, opts, requests: [], requestSeq: 0, faults: [], gzipMode: opts.gzip ? 'auto' : 'off',
    noteCredential: credentialRecorder(process.env.FAKECRM_CREDENTIALS_FILE) };
}

/* ---------------- credentials seen (FAKECRM_CREDENTIALS_FILE) ---------------- */

const CREDENTIAL_PARAMS = ['refresh_token', 'client_secret', 'access_token', 'password', 'code', 'token',
  'client_assertion', 'assertion', 'hapikey'];

function credentialRecorder(file) {
  const seen = new Set();
  return (kind, value) => {
    if (!file || typeof value !== 'string' || value === '' || seen.has(value)) return;
    seen.add(value);
    fs.appendFileSync(file, `${JSON.stringify({ kind, value })}\n`);
  };
}

function noteRequestCredentials(state, req, rawPath, rawQuery, body) {
  const note = state.noteCredential;
  for (const h of ['authorization', 'proxy-authorization']) {
    const v = req.headers[h];
    if (typeof v !== 'string' || !v.trim()) continue;
    const m = /^(\S+)\s+(.*)$/.exec(v.trim());
    const cred = m ? m[2].trim() : v.trim();
    note(h, cred);
    if (m && /^basic$/i.test(m[1])) {
      const plain = Buffer.from(cred, 'base64').toString('utf8');
      if (plain.includes(':')) note(`${h} (Basic password)`, plain.slice(plain.indexOf(':') + 1));
    }
  }
  const params = [new URLSearchParams(rawQuery)];
  if (/application\/x-www-form-urlencoded/i.test(req.headers['content-type'] || '')) params.push(new URLSearchParams(body.toString('utf8')));
  for (const p of params) for (const name of CREDENTIAL_PARAMS) for (const v of p.getAll(name)) note(`parameter ${name}`, v);
  const t = /\/oauth\/v1\/(access|refresh)-tokens\/([^/?]+)/i.exec(rawPath);
  if (t) { try { note(`${t[1]} token in a path`, decodeURIComponent(t[2])); } catch { note(`${t[1]} token in a path`, t[2]); } }
}

function noteIssuedCredentials(state, payload) {
  if (!payload || typeof payload !== 'object' || Array.isArray(payload)) return;
  for (const k of ['access_token', 'refresh_token']) if (typeof payload[k] === 'string') state.noteCredential(`issued ${k}`, payload[k]);
}

/* '//' collapses to '/', so SDK base URLs with a trailing slash still work (reference §11.2). */
function splitTarget(url) {
  const q = url.indexOf('?');
  const rawPath = (q < 0 ? url : url.slice(0, q)).replace(/\/{2,}/g, '/');
  const rawQuery = q < 0 ? '' : url.slice(q + 1);
  return { rawPath, rawQuery };
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) { reject(new Error('body too large')); req.destroy(); return; }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function inflateRequestBody(buf, encoding) {
  const enc = String(encoding || '').trim().toLowerCase();
  if (!buf.length || !enc || enc === 'identity') return buf;
  if (enc === 'gzip') return zlib.gunzipSync(buf);
  if (enc === 'deflate') return zlib.inflateSync(buf);
  throw new Error(`unsupported Content-Encoding ${enc}`);
}

function bearerToken(headers) {
  const h = headers.authorization;
  if (!h) return null;
  const m = /^Bearer\s+(.*)$/i.exec(h);
  if (!m) return null;
  const t = m[1].trim();
  return t.length ? t : null;
}

/* Writes one answer: JSON body (or none for 204), gzip when the client asked and it is allowed. */
function writeAnswer(state, req, res, status, body, headers) {
  if (req.logEntry) req.logEntry.response = { status, gzip: false };
  const out = { ...headers };
  let payload = null;
  if (status !== 204 && status !== 304 && body !== null && body !== undefined) {
    payload = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body), 'utf8');
    if (!hasHeader(out, 'content-type')) out['Content-Type'] = 'application/json;charset=utf-8';
  }
  const asked = /\bgzip\b/i.test(req.headers['accept-encoding'] || '');
  if (payload && payload.length > 0 && (state.gzipMode === 'always' ? asked || req.logEntry : state.gzipMode === 'auto' && asked)) {
    payload = zlib.gzipSync(payload);
    out['Content-Encoding'] = 'gzip';
    if (req.logEntry) req.logEntry.response.gzip = true;
    out['Vary'] = 'Accept-Encoding';
  }
  if (payload) out['Content-Length'] = String(payload.length);
  else if (status !== 204 && status !== 304) out['Content-Length'] = '0';
  res.writeHead(status, out);
  res.end(payload || undefined);
}

function hasHeader(obj, name) {
  return Object.keys(obj).some((k) => k.toLowerCase() === name);
}

/* ---------------- control API ---------------- */

function controlAnswer(state, req, res, status, body) {
  writeAnswer(state, req, res, status, body, {});
}

async function handleControl(state, req, res, rawPath, query, body) {
  let json;
  if (body.length) {
    try { json = JSON.parse(body.toString('utf8')); }
    catch (e) { return controlAnswer(state, req, res, 400, { error: `invalid JSON: ${e.message}` }); }
  }
  const route = `${req.method} ${rawPath.replace(/\/$/, '')}`;
  switch (route) {
    case 'POST /_fake/reset':
      for (const m of state.modules) m.reset();
      state.requests = [];
      state.requestSeq = 0;
      state.faults = [];
      state.fake.clearRevoked();
      state.gzipMode = state.opts.gzip ? 'auto' : 'off';
      state.fake.setBatchOrder('input');
      return controlAnswer(state, req, res, 200, { ok: true });
    case 'POST /_fake/seed': {
      const data = json || {};
      for (const m of state.modules) if (data[m.name] !== undefined) m.seed(data[m.name]);
      const unknown = Object.keys(data).filter((k) => !state.modules.some((m) => m.name === k));
      if (unknown.length) return controlAnswer(state, req, res, 400, { error: `no module for ${unknown.join(', ')}` });
      return controlAnswer(state, req, res, 200, { ok: true });
    }
    case 'GET /_fake/requests': {
      const since = Number(query.get('since') || 0);
      return controlAnswer(state, req, res, 200, state.requests.filter((r) => r.seq > since));
    }
    case 'DELETE /_fake/requests': {
      /* ?through=N drops only entries up to seq N (a reader that has counted them); else all */
      const through = query.get('through');
      if (through !== null && !/^\d+$/.test(through)) return controlAnswer(state, req, res, 400, { error: 'through must be a sequence number' });
      state.requests = through === null ? [] : state.requests.filter((r) => r.seq > Number(through));
      return controlAnswer(state, req, res, 200, { ok: true });
    }
    case 'GET /_fake/state': {
      const out = {};
      for (const m of state.modules) out[m.name] = m.state();
      return controlAnswer(state, req, res, 200, out);
    }
    case 'POST /_fake/faults': {
      const err = validateFault(json);
      if (err) return controlAnswer(state, req, res, 400, { error: err });
      const f = { ...json, match: json.match || {}, remaining: json.count === undefined ? 1 : json.count };
      f.re = f.match.path ? new RegExp(f.match.path) : null;
      state.faults.push(f);
      return controlAnswer(state, req, res, 200, { ok: true, faults: state.faults.length });
    }
    case 'POST /_fake/options':
      if (!json || (json.gzip === undefined && json.batch_order === undefined) ||
          (json.gzip !== undefined && !['auto', 'always', 'off'].includes(json.gzip)) ||
          (json.batch_order !== undefined && !['input', 'reversed'].includes(json.batch_order))) {
        return controlAnswer(state, req, res, 400, { error: 'body must be {gzip?: "auto"|"always"|"off", batch_order?: "input"|"reversed"}' });
      }
      if (json.gzip !== undefined) state.gzipMode = json.gzip;
      if (json.batch_order !== undefined) state.fake.setBatchOrder(json.batch_order);
      return controlAnswer(state, req, res, 200, { ok: true, gzip: state.gzipMode, batch_order: state.fake.batchOrder() });
    case 'GET /_fake/faults':
      return controlAnswer(state, req, res, 200, state.faults.map(({ re, ...f }) => f));
    case 'DELETE /_fake/faults':
      state.faults = [];
      return controlAnswer(state, req, res, 200, { ok: true });
    case 'POST /_fake/tokens/revoke':
      if (!json || typeof json.token !== 'string' || !json.token) {
        return controlAnswer(state, req, res, 400, { error: 'body must be {token}' });
      }
      state.fake.revokeToken(json.token);
      return controlAnswer(state, req, res, 200, { ok: true });
    default:
      return controlAnswer(state, req, res, 404, { error: `no control route ${route}` });
  }
}

const FAULT_ACTIONS = ['latency', 'status', 'ratelimit', 'reset', 'close', 'garbage'];

function validateFault(f) {
  if (!f || typeof f !== 'object') return 'body must be a fault object';
  if (!FAULT_ACTIONS.includes(f.action)) return `action must be one of ${FAULT_ACTIONS.join(', ')}`;
  if (f.match !== undefined && (typeof f.match !== 'object' || f.match === null)) return 'match must be an object';
  if (f.match && f.match.path !== undefined) {
    try { new RegExp(f.match.path); } catch (e) { return `bad match.path regex: ${e.message}`; }
  }
  if (f.action === 'latency' && !(Number(f.ms) >= 0)) return 'latency needs ms';
  if (f.action === 'status' && f.status !== undefined && !(Number.isInteger(f.status) && f.status >= 100 && f.status <= 599)) {
    return 'status must be an HTTP status code';
  }
  if (f.count !== undefined && !(Number.isInteger(f.count) && (f.count > 0 || f.count === -1))) {
    return 'count must be a positive integer or -1';
  }
  return null;
}

/* Returns the first armed fault matching this request and consumes one use of it. */
function takeFault(state, method, rawPath) {
  for (let i = 0; i < state.faults.length; i++) {
    const f = state.faults[i];
    if (f.match.method && f.match.method.toUpperCase() !== method) continue;
    if (f.re && !f.re.test(rawPath)) continue;
    if (f.remaining !== -1) {
      f.remaining -= 1;
      if (f.remaining <= 0) state.faults.splice(i, 1);
    }
    return f;
  }
  return null;
}

/* ---------------- CRM requests ---------------- */

function makeCtx(state, req, res, mod, rawPath, rawQuery, body) {
  const headers = {};
  for (const [k, v] of Object.entries(req.headers)) headers[k.toLowerCase()] = v;
  const ctx = {
    req, res, method: req.method, rawPath,
    path: decodeURIComponent(rawPath),
    query: new URLSearchParams(rawQuery),
    headers, body, json: undefined, jsonError: undefined,
    token: bearerToken(headers),
    answered: false,
  };
  if (body.length && /json/i.test(headers['content-type'] || 'application/json')) {
    try { ctx.json = JSON.parse(body.toString('utf8')); }
    catch (e) { ctx.jsonError = e.message; }
  }
  ctx.send = (status, payload, extra) => {
    if (ctx.answered) throw new Error(`double answer for ${req.method} ${rawPath}`);
    ctx.answered = true;
    noteIssuedCredentials(state, payload);
    const moduleHeaders = mod && mod.responseHeaders ? mod.responseHeaders(ctx) : {};
    writeAnswer(state, req, res, status, payload, { ...moduleHeaders, ...(extra || {}) });
  };
  return ctx;
}

function logRequest(state, req, rawPath, rawQuery, body) {
  noteRequestCredentials(state, req, rawPath, rawQuery, body);
  req.logEntry = {
    seq: ++state.requestSeq,
    method: req.method,
    path: rawPath,
    query: rawQuery,
    headers: { ...req.headers },
    body: body.toString('utf8'),
    response: null, /* {status, gzip} once answered; stays null for reset/close/garbage faults */
  };
  state.requests.push(req.logEntry);
}

/* Default bodies when a module has no faultBody(): shapes from the references (§7 / §8). */
function defaultFaultBody(crm, kind) {
  const correlationId = crypto.randomUUID();
  if (crm === 'salesforce') {
    if (kind === 'ratelimit') return { status: 403, body: [{ message: 'TotalRequests Limit exceeded.', errorCode: 'REQUEST_LIMIT_EXCEEDED' }] };
    return { status: 503, body: [{ errorCode: 'SERVER_UNAVAILABLE', message: 'Server temporarily unavailable.' }] };
  }
  if (kind === 'ratelimit') {
    return {
      status: 429,
      body: {
        status: 'error', message: 'You have reached your ten_secondly_rolling limit.', errorType: 'RATE_LIMIT',
        correlationId, policyName: 'TEN_SECONDLY_ROLLING', groupName: 'publicapi:private-app-api-calls-ten-secondly:12345',
      },
    };
  }
  return { status: 500, body: { status: 'error', message: 'internal error', correlationId, category: 'INTERNAL_ERROR' } };
}

function crmOf(mod, rawPath) {
  if (mod) return mod.name;
  return rawPath.startsWith('/services/') ? 'salesforce' : 'hubspot';
}

/* Carries out an injected fault. Returns true when the request is finished (answered or killed). */
async function applyFault(state, f, ctx, mod) {
  const sock = ctx.req.socket;
  switch (f.action) {
    case 'latency':
      await new Promise((r) => setTimeout(r, Number(f.ms)));
      return false;
    case 'status':
    case 'ratelimit': {
      const crm = crmOf(mod, ctx.rawPath);
      const def = (mod && mod.faultBody && mod.faultBody(f.action)) || defaultFaultBody(crm, f.action);
      const status = f.status || def.status;
      const body = f.body !== undefined ? f.body : def.body;
      const extra = {};
      if (crm === 'hubspot' && body && body.correlationId) extra['x-hubspot-correlation-id'] = body.correlationId;
      if (f.headers && typeof f.headers === 'object') Object.assign(extra, f.headers); /* {name: value} answered as given */
      ctx.send(status, status === 204 ? null : body, extra);
      return true;
    }
    case 'reset':
      /* RST instead of FIN: the client sees ECONNRESET. */
      if (typeof sock.resetAndDestroy === 'function') sock.resetAndDestroy();
      else sock.destroy();
      return true;
    case 'close': {
      /* Promise a body, send half of it, then hang up. */
      const body = Buffer.from(JSON.stringify({ status: 'error', message: 'x'.repeat(200) }));
      sock.write(`HTTP/1.1 200 OK\r\nContent-Type: application/json;charset=utf-8\r\nContent-Length: ${body.length}\r\n\r\n`);
      sock.write(body.subarray(0, body.length >> 1));
      sock.destroySoon ? sock.destroySoon() : sock.end();
      setTimeout(() => sock.destroy(), 50);
      return true;
    }
    case 'garbage':
      sock.write(Buffer.from('\x00\x01\x02 this is not HTTP \xff\xfe\r\n\r\n', 'latin1'));
      sock.end();
      setTimeout(() => sock.destroy(), 50);
      return true;
    default:
      return false;
  }
}

async function handleCrm(state, req, res, rawPath, rawQuery, body) {
  logRequest(state, req, rawPath, rawQuery, body);
  let decodedPath;
  try { decodedPath = decodeURIComponent(rawPath); } catch { decodedPath = null; }
  const mod = decodedPath === null ? null : state.modules.find((m) => m.match(decodedPath)) || null;
  if (decodedPath === null) {
    return writeAnswer(state, req, res, 400, { status: 'error', message: 'malformed percent-encoding in path', category: 'VALIDATION_ERROR' }, {});
  }
  const ctx = makeCtx(state, req, res, mod, rawPath, rawQuery, body);

  const f = takeFault(state, req.method, rawPath);
  if (f && (await applyFault(state, f, ctx, mod))) return;

  if (!mod) {
    return ctx.send(404, { status: 'error', message: `fakecrm: no CRM serves ${rawPath}`, correlationId: crypto.randomUUID(), category: 'OBJECT_NOT_FOUND' });
  }
  const isPublic = mod.isPublic ? mod.isPublic(req.method, ctx.path) : false;
  if (!isPublic && (!ctx.token || state.fake.isRevoked(ctx.token))) {
    if (mod.unauthorized) return mod.unauthorized(ctx);
    return ctx.send(401, mod.name === 'salesforce'
      ? [{ message: 'Session expired or invalid', errorCode: 'INVALID_SESSION_ID' }]
      : { status: 'error', message: 'Authentication credentials not found.', correlationId: crypto.randomUUID(), category: 'INVALID_AUTHENTICATION' });
  }
  await mod.handle(ctx);
  if (!ctx.answered) throw new Error(`${mod.name} did not answer ${req.method} ${rawPath}`);
}

function onRequest(state) {
  return async (req, res) => {
    const { rawPath, rawQuery } = splitTarget(req.url);
    try {
      let body = await readBody(req);
      if (rawPath.startsWith('/_fake/')) {
        return await handleControl(state, req, res, rawPath, new URLSearchParams(rawQuery), body);
      }
      try { body = inflateRequestBody(body, req.headers['content-encoding']); }
      catch (e) {
        logRequest(state, req, rawPath, rawQuery, body);
        return writeAnswer(state, req, res, 415, { status: 'error', message: e.message, category: 'VALIDATION_ERROR' }, {});
      }
      await handleCrm(state, req, res, rawPath, rawQuery, body);
    } catch (e) {
      console.error(`fakecrm: ${req.method} ${req.url}: ${e.stack || e}`);
      if (!res.headersSent && !res.destroyed) {
        writeAnswer(state, req, res, 500, { status: 'error', message: `fakecrm bug: ${e.message}`, category: 'INTERNAL_ERROR' }, {});
      }
    }
  };
}

function main() {
  let opts;
  try { opts = parseArgs(process.argv.slice(2)); }
  catch (e) { console.error(`fakecrm: ${e.message}`); process.exit(2); }
  const state = createFake(opts);
  const handler = onRequest(state);
  const server = opts.tls
    ? https.createServer({ cert: fs.readFileSync(opts.cert), key: fs.readFileSync(opts.key) }, handler)
    : http.createServer(handler);
  server.keepAliveTimeout = 30000;
  server.headersTimeout = 35000;
  server.on('clientError', (err, sock) => {
    if (sock.writable) sock.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
  });
  server.listen(opts.port, opts.host, () => {
    const { port } = server.address();
    const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
    const url = `${opts.tls ? 'https' : 'http'}://${host}:${port}`;
    state.fake.setBaseUrl(url);
    process.stdout.write(`fakecrm listening on ${url}\n`);
  });
  /* Spawned by the e2e harness: do not outlive a test process that was SIGKILLed. */
  if (process.env.FAKECRM_EXIT_WITH_PARENT) {
    const parent = process.ppid; /* cached by Node: probe the parent instead of re-reading it */
    setInterval(() => {
      try { process.kill(parent, 0); } catch { process.exit(0); }
    }, 500).unref();
  }
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  /* Sockets kept alive by clients must not hold the process open after a signal. */
  process.on('SIGTERM', () => setTimeout(() => process.exit(0), 500).unref());
}

if (require.main === module) main();
module.exports = { parseArgs, splitTarget };
