'use strict';
/*
 * A soak agent (tests/soak/soak.js starts two): loops of real SDK calls through crmgate until a
 * deadline, each loop on records of its own, checking every answer. Prints one JSON summary on
 * stdout at the end; exit 0 even when calls failed (the summary says which: soak.js decides).
 *
 *   SOAK_MODE=reverse  @hubspot/api-client and jsforce against crmgate's HTTPS reverse listener
 *                      (SOAK_BASE, trusted through NODE_EXTRA_CA_CERTS)
 *   SOAK_MODE=forward  jsforce with HTTPS_PROXY (read by jsforce at module load) and HubSpot
 *                      calls from Node's https through https-proxy-agent (@hubspot/api-client
 *                      ignores HTTPS_PROXY), both to the CRMs' real host names
 *
 * Environment: SOAK_DEADLINE_MS (epoch ms), SOAK_LOOPS (loops per kind), SOAK_TOKENS (JSON
 * {kind: token}), SOAK_VERSION (Salesforce API version), SOAK_BASE or SOAK_PROXY.
 */

const https = require('node:https');
const { Client } = require('@hubspot/api-client');
const jsforce = require('jsforce');
const { PER_LOOP, sfId, recordNumber } = require('./records.js');

const MODE = process.env.SOAK_MODE;
const DEADLINE = Number(process.env.SOAK_DEADLINE_MS);
const LOOPS = Number(process.env.SOAK_LOOPS);
const TOKENS = JSON.parse(process.env.SOAK_TOKENS || '{}');
const VERSION = process.env.SOAK_VERSION;
const START = Date.now();
const MAX_ERRORS_KEPT = 20;

const summary = {
  mode: MODE,
  ops: {},          /* name -> {ok, fail} */
  writes: { allowed: 0, dry_run: 0, flip: 0, denied: 0 },
  last: { hubspot: {}, salesforce: {} }, /* record id -> the value its loop wrote last */
  latency: {},      /* name -> {early: [ms...], late: [ms...]}, reduced to p50/p99 at the end */
  errors: [],
};

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

/* The first and last thirds of the run, to compare latencies early and late. */
function phase(t) {
  const third = (DEADLINE - START) / 3;
  if (t < START + third) return 'early';
  if (t >= DEADLINE - third) return 'late';
  return null;
}

/* Run one call; counts it, times it, keeps its error. write: what a success adds to the tally. */
async function op(name, fn, write) {
  const t0 = Date.now();
  const o = summary.ops[name] || (summary.ops[name] = { ok: 0, fail: 0 });
  try {
    await fn();
    o.ok++;
    if (write) for (const [k, v] of Object.entries(write)) summary.writes[k] += v;
    const p = phase(t0);
    if (p) {
      const l = summary.latency[name] || (summary.latency[name] = { early: [], late: [] });
      l[p].push(Date.now() - t0);
    }
  } catch (e) {
    o.fail++;
    if (summary.errors.length < MAX_ERRORS_KEPT) {
      summary.errors.push({ op: name, at_s: Math.round((t0 - START) / 1000), message: String(e.message).slice(0, 500),
        code: e.code, errorCode: e.errorCode, body: typeof e.body === 'string' ? e.body.slice(0, 500) : e.body });
    }
  }
}

/* A call crmgate must deny: the SDK throws a 403 (HubSpot code, Salesforce errorCode). */
async function denied(fn, crm) {
  let err = null;
  try { await fn(); } catch (e) { err = e; }
  check(err !== null, 'the denied write succeeded');
  if (crm === 'hubspot') check(err.code === 403, `HubSpot denial is 403, got ${err.code}: ${err.message}`);
  else check(err.errorCode === 'INSUFFICIENT_ACCESS_OR_READONLY', `Salesforce denial errorCode, got ${err.errorCode}: ${err.message}`);
}

const running = () => Date.now() < DEADLINE;

/* ---------------- reverse: the SDKs against the HTTPS reverse listener ---------------- */

function hs(token) {
  return new Client({ accessToken: token, basePath: `${process.env.SOAK_BASE}/hubspot`, numberOfApiCallRetries: 0 });
}

function sf(token) {
  return new jsforce.Connection({ instanceUrl: `${process.env.SOAK_BASE}/salesforce`, accessToken: token, version: VERSION });
}

/* kind: open (enforce), dry (dry_run workspace), flip (dry-run toggled by soak.js), limited */
async function hubspotLoop(kind, i) {
  const c = hs(TOKENS[`hs_${kind}`]);
  const contacts = c.crm.contacts;
  for (let n = 0; running(); n++) {
    const id = String(recordNumber('hubspot', kind, i, n % PER_LOOP));
    const v = `${kind}-${i}-${n}`;
    const tally = kind === 'open' || kind === 'limited' ? { allowed: 1 } : kind === 'dry' ? { dry_run: 1 } : { flip: 1 };
    await op(`hubspot.${kind}.update`, async () => {
      const r = await contacts.basicApi.update(id, { properties: { firstname: v } });
      check(r.id === id && r.properties.firstname === v, `update answer ${JSON.stringify(r.properties)}`);
      if (kind !== 'flip') summary.last.hubspot[id] = v;
    }, tally);
    if (kind !== 'flip') {
      await op(`hubspot.${kind}.read`, async () => {
        const r = await contacts.basicApi.getById(id, ['firstname', 'lastname']);
        check(r.properties.firstname === v, `read back ${r.properties.firstname}, wrote ${v}`);
      });
    }
    if (kind === 'limited' && n % 5 === 2) {
      await op('hubspot.limited.denied', () => denied(() => contacts.basicApi.update(id, { properties: { lastname: v } }), 'hubspot'), { denied: 1 });
    }
    if (kind === 'open' && n % 10 === 5) {
      await op('hubspot.open.batch_read', async () => {
        const r = await contacts.batchApi.read({ inputs: [{ id }], properties: ['firstname'], propertiesWithHistory: [] });
        check(r.results.length === 1 && r.results[0].properties.firstname === v, 'batch read');
      });
    }
    if ((kind === 'open' || kind === 'dry') && n % 25 === 12) {
      let made = null;
      await op(`hubspot.${kind}.create`, async () => {
        made = await contacts.basicApi.create({ properties: { email: `soak-${kind}-${i}-${n}@example.com`, firstname: v }, associations: [] });
        check(/^\d+$/.test(made.id), `created id ${made.id}`);
      }, kind === 'open' ? { allowed: 1 } : { dry_run: 1 });
      if (made) {
        await op(`hubspot.${kind}.archive`, () => contacts.basicApi.archive(made.id), kind === 'open' ? { allowed: 1 } : { dry_run: 1 });
      }
    }
  }
}

async function salesforceLoop(kind, i) {
  const conn = sf(TOKENS[`sf_${kind}`]);
  for (let n = 0; running(); n++) {
    const id = sfId(recordNumber('salesforce', kind, i, n % PER_LOOP));
    const v = `${kind}-${i}-${n}`;
    const tally = kind === 'open' || kind === 'limited' ? { allowed: 1 } : kind === 'dry' ? { dry_run: 1 } : { flip: 1 };
    await op(`salesforce.${kind}.update`, async () => {
      const r = await conn.sobject('Account').update({ Id: id, Name: v });
      check(r.success === true && r.id === id, `update answer ${JSON.stringify(r)}`);
      if (kind !== 'flip') summary.last.salesforce[id] = v;
    }, tally);
    if (kind !== 'flip') {
      await op(`salesforce.${kind}.read`, async () => {
        const r = await conn.sobject('Account').retrieve(id);
        check(r.Name === v, `read back ${r.Name}, wrote ${v}`);
      });
    }
    if (kind === 'limited' && n % 5 === 2) {
      await op('salesforce.limited.denied', () => denied(() => conn.sobject('Account').update({ Id: id, Industry: v }), 'salesforce'), { denied: 1 });
    }
    if (kind === 'open' && n % 10 === 5) {
      await op('salesforce.open.query', async () => {
        const r = await conn.query(`SELECT Id, Name FROM Account WHERE Id = '${id}'`);
        check(r.records.length === 1 && r.records[0].Name === v, `query ${JSON.stringify(r.records)}`);
      });
    }
    if ((kind === 'open' || kind === 'dry') && n % 25 === 12) {
      let made = null;
      await op(`salesforce.${kind}.create`, async () => {
        made = await conn.sobject('Contact').create({ LastName: v, AccountId: id });
        check(made.success === true && /^003/.test(made.id), `create answer ${JSON.stringify(made)}`);
      }, kind === 'open' ? { allowed: 1 } : { dry_run: 1 });
      if (made && made.success) {
        await op(`salesforce.${kind}.destroy`, async () => {
          const r = await conn.sobject('Contact').destroy(made.id);
          check(r.success === true, `destroy answer ${JSON.stringify(r)}`);
        }, kind === 'open' ? { allowed: 1 } : { dry_run: 1 });
      }
    }
  }
}

/* ---------------- forward: HTTPS_PROXY ---------------- */

/* One HubSpot call to api.hubapi.com through the proxy (CONNECT, then TLS with crmgate's leaf). */
function hubspotViaProxy(agent, method, path, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? null : Buffer.from(JSON.stringify(body));
    const req = https.request({
      host: 'api.hubapi.com', port: 443, method, path, agent,
      headers: { Authorization: `Bearer ${TOKENS.hs_fwd}`, ...(data ? { 'Content-Type': 'application/json', 'Content-Length': data.length } : {}) },
    }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode !== 200) return reject(Object.assign(new Error(`${method} ${path}: ${res.statusCode} ${text.slice(0, 300)}`), { code: res.statusCode }));
        try { resolve(JSON.parse(text)); } catch (e) { reject(e); }
      });
    });
    req.setTimeout(30000, () => req.destroy(new Error(`${method} ${path}: timed out`)));
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

async function forwardHubspotLoop(i) {
  const { HttpsProxyAgent } = require('https-proxy-agent');
  /* keep-alive tunnels, re-made every 50 calls so CONNECTs and handshakes keep happening */
  let agent = null;
  for (let n = 0; running(); n++) {
    const id = String(recordNumber('hubspot', 'fwd', i, n % PER_LOOP));
    if (n % 50 === 0) {
      if (agent) agent.destroy();
      agent = new HttpsProxyAgent(process.env.SOAK_PROXY, { keepAlive: true });
    }
    const v = `fwd-${i}-${n}`;
    await op('forward.hubspot.update', async () => {
      const r = await hubspotViaProxy(agent, 'PATCH', `/crm/v3/objects/contacts/${id}`, { properties: { firstname: v } });
      check(r.properties.firstname === v, `update answer ${JSON.stringify(r.properties)}`);
      summary.last.hubspot[id] = v;
    }, { allowed: 1 });
    await op('forward.hubspot.read', async () => {
      const r = await hubspotViaProxy(agent, 'GET', `/crm/v3/objects/contacts/${id}?properties=firstname`);
      check(r.properties.firstname === v, `read back ${r.properties.firstname}, wrote ${v}`);
    });
  }
  if (agent) agent.destroy();
}

async function forwardSalesforceLoop(i) {
  /* jsforce 3 makes one CONNECT per request through HTTPS_PROXY: every call is a new tunnel */
  const conn = new jsforce.Connection({ instanceUrl: 'https://acme.my.salesforce.com', accessToken: TOKENS.sf_fwd, version: VERSION });
  for (let n = 0; running(); n++) {
    const id = sfId(recordNumber('salesforce', 'fwd', i, n % PER_LOOP));
    const v = `fwd-${i}-${n}`;
    await op('forward.salesforce.update', async () => {
      const r = await conn.sobject('Account').update({ Id: id, Name: v });
      check(r.success === true, `update answer ${JSON.stringify(r)}`);
      summary.last.salesforce[id] = v;
    }, { allowed: 1 });
    await op('forward.salesforce.read', async () => {
      const r = await conn.sobject('Account').retrieve(id);
      check(r.Name === v, `read back ${r.Name}, wrote ${v}`);
    });
  }
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

(async () => {
  const loops = [];
  for (let i = 0; i < LOOPS; i++) {
    if (MODE === 'reverse') {
      for (const kind of ['open', 'dry', 'flip', 'limited']) {
        loops.push(hubspotLoop(kind, i), salesforceLoop(kind, i));
      }
    } else {
      loops.push(forwardHubspotLoop(i), forwardSalesforceLoop(i));
    }
  }
  await Promise.all(loops);
  for (const [name, l] of Object.entries(summary.latency)) {
    const stats = {};
    for (const ph of ['early', 'late']) {
      const s = l[ph].sort((a, b) => a - b);
      stats[ph] = { n: s.length, p50_ms: percentile(s, 0.5), p99_ms: percentile(s, 0.99) };
    }
    summary.latency[name] = stats;
  }
  process.stdout.write(`${JSON.stringify(summary)}\n`);
})().catch((e) => {
  process.stderr.write(`soak agent: ${e.stack}\n`);
  process.exit(1);
});
