'use strict';
/*
 * crmgate soak (`make soak`, through tests/soak/run.sh): hours-long behaviour in minutes' form.
 *
 * One crmgate (HTTPS reverse listener and forward HTTPS_PROXY listener, 2 workers, store on
 * disk) in front of the fake CRMs, driven for SOAK_SECONDS by two agent processes
 * (tests/soak/agent.js): @hubspot/api-client and jsforce against the reverse listener in four
 * workspaces (enforce, dry_run, one whose dry-run switch flips every few seconds, and one whose
 * rules deny some writes), and jsforce with HTTPS_PROXY plus Node https through
 * https-proxy-agent against the forward listener. Every answer is checked as it comes. Beside
 * them, every SOAK_CHURN_SECONDS: the flip workspace's switch through the admin API, a SIGHUP
 * every third time, and /metrics, /v1/stats and /v1/audit read.
 *
 * Every SOAK_SAMPLE_SECONDS it samples crmgate (anonymous RSS, open descriptors, threads); every
 * churn tick and sample it counts the writes the fake received, then drops them from the fake's
 * log (which keeps every request).
 * At the end crmgate is stopped with SIGTERM and the soak fails (exit 1) unless:
 *   - every agent call succeeded and crmgate never exited (and exited 0 on SIGTERM);
 *   - every churn call answered 200;
 *   - the audit log (read raw with mdb_dump) has no unknown or upstream_error outcome, one
 *     non-synthetic "allowed" record per write the fake received, one "allowed" or "dry_run"
 *     record per write the agents made, one "denied" record per write they were refused;
 *   - every record ends with the value its loop wrote last (dry-run ones still hold the seed);
 *   - from the first sample after a third of the run to the end: anonymous RSS grows by at most
 *     max(8 MiB, 20%), descriptors by at most 16, threads not at all.
 * Latencies (p50/p99 in the first and last thirds of the run) are reported, not judged: on a
 * shared machine they move with the neighbours.
 *
 * Environment: SOAK_SECONDS (600), SOAK_LOOPS (2 per kind), SOAK_SAMPLE_SECONDS (10),
 * SOAK_CHURN_SECONDS (5), CRMGATE_BIN (./crmgate). Loopback only (run.sh adds a namespace).
 */

const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const harness = require('../e2e/harness.js');
const records = require('./records.js');

function envInt(name, dflt, min, max) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return dflt;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    console.error(`soak: ${name} must be an integer from ${min} to ${max}, not ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return Number(raw);
}

const SECONDS = envInt('SOAK_SECONDS', 600, 20, 24 * 3600);
const LOOPS = envInt('SOAK_LOOPS', 2, 1, 16);
const SAMPLE_S = envInt('SOAK_SAMPLE_SECONDS', 10, 2, 600);
const CHURN_S = envInt('SOAK_CHURN_SECONDS', 5, 1, 600);
const VERSION = '62.0';
const RSS_SLACK_KIB = 8 * 1024;
const RSS_SLACK_RATIO = 0.2;
const FD_SLACK = 16;
const AGENT_GRACE_MS = 120000; /* after the deadline: a call in flight finishes, or the agent is killed */

const TOKENS = {
  hs_open: 'pat-na1-50a50a50-0000-0000-0000-000000000001',
  hs_dry: 'pat-na1-50a50a50-0000-0000-0000-000000000002',
  hs_flip: 'pat-na1-50a50a50-0000-0000-0000-000000000003',
  hs_limited: 'pat-na1-50a50a50-0000-0000-0000-000000000004',
  hs_fwd: 'pat-na1-50a50a50-0000-0000-0000-000000000005',
  sf_open: '00DHs0000000001!AQsoakopen',
  sf_dry: '00DHs0000000001!AQsoakdry',
  sf_flip: '00DHs0000000001!AQsoakflip',
  sf_limited: '00DHs0000000001!AQsoaklimited',
  sf_fwd: '00DHs0000000001!AQsoakfwd',
};
const WORKSPACE = { open: 'soak', dry: 'soakdry', flip: 'flip', limited: 'limited', fwd: 'soakfwd' };
const LIMITED = {
  hubspot: { objects: { contacts: { read: '*', write: { firstname: {} } } } },
  salesforce: { objects: { Account: { read: '*', write: ['Name'] } } },
};
const RULES = {
  'soak.json': { workspace: 'soak', hubspot: harness.OPEN_CRM, salesforce: harness.OPEN_CRM },
  'soakdry.json': { workspace: 'soakdry', mode: 'dry_run', hubspot: harness.OPEN_CRM, salesforce: harness.OPEN_CRM },
  'flip.json': { workspace: 'flip', hubspot: harness.OPEN_CRM, salesforce: harness.OPEN_CRM },
  'limited.json': { workspace: 'limited', ...LIMITED },
  'soakfwd.json': { workspace: 'soakfwd', hubspot: harness.OPEN_CRM, salesforce: harness.OPEN_CRM },
};
const CALLERS = Object.entries(TOKENS).map(([k, token]) => ({ token, workspace: WORKSPACE[k.slice(3)], user: 'soak', kind: 'workflow' }));

const failures = [];
function fail(msg) {
  failures.push(msg);
  console.error(`soak: FAIL: ${msg}`);
}

/* /proc facts of a live process: anonymous RSS (KiB), open descriptors, threads. */
function procSample(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name) => Number((status.match(new RegExp(`^${name}:\\s+(\\d+)`, 'm')) || [])[1]);
  return { rssAnonKiB: field('RssAnon'), threads: field('Threads'), fds: fs.readdirSync(`/proc/${pid}/fd`).length };
}

/* Agents still running when the soak ends early (an exception) must not outlive it. */
const liveAgents = new Set();
process.on('exit', () => { for (const c of liveAgents) c.kill('SIGKILL'); });

function startAgent(mode, env) {
  const clean = { ...process.env };
  for (const k of ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'NO_PROXY', 'no_proxy', 'NODE_EXTRA_CA_CERTS']) delete clean[k];
  const child = spawn(process.execPath, [path.join(__dirname, 'agent.js')], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...clean, SOAK_MODE: mode, SOAK_LOOPS: String(LOOPS), SOAK_TOKENS: JSON.stringify(TOKENS), SOAK_VERSION: VERSION, ...env },
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  liveAgents.add(child);
  const done = new Promise((resolve) => child.on('exit', (code, signal) => { liveAgents.delete(child); resolve({ code, signal }); }));
  return { child, done, output: () => out, errors: () => err };
}

async function main() {
  const t0 = Date.now();
  console.log(`soak: ${SECONDS}s, ${LOOPS} loop(s) per kind, samples every ${SAMPLE_S}s, churn every ${CHURN_S}s`);
  const certs = harness.makeTestCerts();
  const fake = await harness.startFake();
  await fake.seed(records.seed(LOOPS));
  const gate = await harness.startCrmgate({
    upstreams: { hubspot: fake.url, salesforce: fake.url },
    tls: { cert: certs.cert, key: certs.key },
    forward: true,
    rules: RULES,
    callers: CALLERS,
    workers: 2,
  });
  const pid = gate.proc.pid;
  console.log(`soak: crmgate pid ${pid}, reverse ${gate.url}, forward ${gate.forwardUrl}, state ${gate.stateDir}`);

  const deadline = Date.now() + SECONDS * 1000;
  const agents = [
    startAgent('reverse', { SOAK_DEADLINE_MS: String(deadline), SOAK_BASE: gate.url, NODE_EXTRA_CA_CERTS: certs.ca }),
    startAgent('forward', { SOAK_DEADLINE_MS: String(deadline), SOAK_PROXY: gate.forwardUrl, HTTPS_PROXY: gate.forwardUrl, NODE_EXTRA_CA_CERTS: gate.caCert }),
  ];

  let gateExited = null;
  gate.proc.on('exit', (code, signal) => { if (gateExited === null) gateExited = { code, signal, at_s: Math.round((Date.now() - t0) / 1000) }; });

  /* Writes the fake received, counted and then dropped from its log (it keeps every request). */
  let fakeSeq = 0;
  let fakeWrites = 0;
  async function drainFake() {
    const reqs = await fake.requests(fakeSeq);
    if (reqs.length === 0) return;
    fakeWrites += harness.fakeWrites(reqs).length;
    for (const r of reqs) if (r.seq > fakeSeq) fakeSeq = r.seq; /* no spread: tens of thousands */
    await harness.requestJson(`${fake.url}/_fake/requests?through=${fakeSeq}`, { method: 'DELETE' });
  }

  const samples = [];
  const churn = { ticks: 0, flips: 0, sighups: 0, reads: 0, bad: [] };
  let flipOn = false;
  const stopAt = deadline;
  let nextSample = Date.now();
  let nextChurn = Date.now() + CHURN_S * 1000;
  while (Date.now() < stopAt && gateExited === null) {
    const now = Date.now();
    if (now >= nextSample) {
      nextSample += SAMPLE_S * 1000;
      try {
        const smp = { at_s: (now - t0) / 1000, ...procSample(pid) };
        samples.push(smp);
        await drainFake();
        console.log(`soak: ${smp.at_s.toFixed(0)} s: anon RSS ${(smp.rssAnonKiB / 1024).toFixed(1)} MiB, ${smp.fds} descriptors, ${smp.threads} threads, ${fakeWrites} writes at the fake`);
      } catch (e) {
        fail(`sampling at ${Math.round((now - t0) / 1000)}s: ${e.message}`);
      }
    }
    if (now >= nextChurn) {
      nextChurn += CHURN_S * 1000;
      churn.ticks++;
      try {
        await drainFake(); /* often: the fake holds every request until then */
        flipOn = !flipOn;
        const r = await gate.admin('PUT', '/v1/workspaces/flip', { dry_run: flipOn });
        if (r.status !== 200) churn.bad.push(`PUT /v1/workspaces/flip: ${r.status} ${JSON.stringify(r.body)}`);
        else churn.flips++;
        if (churn.ticks % 3 === 0) {
          process.kill(pid, 'SIGHUP');
          churn.sighups++;
        }
        for (const p of ['/metrics', '/v1/stats?workspace=soak', '/v1/audit?workspace=soak&limit=20', '/healthz']) {
          const a = await gate.admin('GET', p);
          if (a.status !== 200) churn.bad.push(`GET ${p}: ${a.status}`);
          else churn.reads++;
        }
      } catch (e) {
        churn.bad.push(`churn at ${Math.round((now - t0) / 1000)}s: ${e.message}`);
      }
    }
    await new Promise((r) => setTimeout(r, Math.max(10, Math.min(nextSample, nextChurn, stopAt) - Date.now())));
  }

  /* The agents stop at the deadline; a call in flight finishes first. */
  const timer = setTimeout(() => { for (const a of agents) a.child.kill('SIGKILL'); }, AGENT_GRACE_MS);
  const exits = await Promise.all(agents.map((a) => a.done));
  clearTimeout(timer);
  const summaries = [];
  agents.forEach((a, i) => {
    if (exits[i].code !== 0) fail(`agent ${i} exited ${exits[i].code} ${exits[i].signal || ''}: ${a.errors().slice(-2000)}`);
    try { summaries.push(JSON.parse(a.output().trim().split('\n').pop())); } catch (e) { fail(`agent ${i} printed no summary: ${a.output().slice(-500)} ${a.errors().slice(-500)}`); }
  });
  if (gateExited !== null) fail(`crmgate exited during the soak: ${JSON.stringify(gateExited)}; stderr tail:\n${gate.stderr().slice(-3000)}`);
  else samples.push({ at_s: (Date.now() - t0) / 1000, ...procSample(pid) });
  await drainFake();
  const finalState = await fake.state();
  if (gateExited === null) {
    try { await gate.stop(); } catch (e) { fail(e.message); }
  }
  /* the log may be far bigger than a string can hold: counted as mdb_dump streams it */
  const byOutcome = {};
  let allowedReal = 0;
  const auditCount = await harness.forEachAuditRaw(gate.stateDir, (r) => {
    byOutcome[r.outcome] = (byOutcome[r.outcome] || 0) + 1;
    if (r.outcome === 'allowed' && !r.synthetic) allowedReal++;
  });
  await fake.stop();

  /* ---- the checks ---- */
  const ops = {};
  const writes = { allowed: 0, dry_run: 0, flip: 0, denied: 0 };
  const last = { hubspot: {}, salesforce: {} };
  const latency = {};
  for (const s of summaries) {
    for (const [k, v] of Object.entries(s.ops)) {
      ops[k] = ops[k] || { ok: 0, fail: 0 };
      ops[k].ok += v.ok;
      ops[k].fail += v.fail;
    }
    for (const k of Object.keys(writes)) writes[k] += s.writes[k];
    Object.assign(last.hubspot, s.last.hubspot);
    Object.assign(last.salesforce, s.last.salesforce);
    Object.assign(latency, s.latency);
    for (const e of s.errors) fail(`${s.mode} ${e.op} at ${e.at_s}s: ${e.message}${e.code ? ` (code ${e.code})` : ''}${e.errorCode ? ` (${e.errorCode})` : ''}`);
  }
  const failedOps = Object.entries(ops).filter(([, v]) => v.fail > 0);
  if (failedOps.length) fail(`failed calls: ${failedOps.map(([k, v]) => `${k} ${v.fail}/${v.ok + v.fail}`).join(', ')}`);
  for (const b of churn.bad) fail(`churn: ${b}`);
  if (churn.flips === 0) fail('the flip workspace was never switched');

  for (const o of ['unknown', 'upstream_error']) if (byOutcome[o]) fail(`${byOutcome[o]} audit record(s) with outcome ${o}`);
  if (allowedReal !== fakeWrites) fail(`the fake received ${fakeWrites} writes but the audit log has ${allowedReal} non-synthetic allowed records`);
  const madeWrites = writes.allowed + writes.dry_run + writes.flip;
  const recorded = (byOutcome.allowed || 0) + (byOutcome.dry_run || 0);
  if (recorded !== madeWrites) fail(`the agents made ${madeWrites} writes but the audit log has ${recorded} allowed + dry_run records`);
  if ((byOutcome.denied || 0) !== writes.denied) fail(`the agents were refused ${writes.denied} writes but the audit log has ${byOutcome.denied || 0} denied records`);
  if (writes.allowed === 0 || writes.dry_run === 0 || writes.denied === 0) fail(`a write kind never ran: ${JSON.stringify(writes)}`);

  const asList = (x) => (Array.isArray(x) ? x : Object.values(x || {}));
  const contacts = new Map(asList(finalState.hubspot.objects.contacts).map((r) => [r.id, r.properties.firstname]));
  const accounts = new Map(asList(finalState.salesforce.objects.Account).map((r) => [r.Id, r.Name]));
  const isDry = (crm, id) => {
    const n = crm === 'hubspot' ? Number(id) : Number(id.slice(7, 15));
    const base = records.ids[crm].dry;
    return n >= base && n < base + LOOPS * records.ID_STRIDE;
  };
  let checkedRecords = 0;
  for (const [crm, map] of [['hubspot', contacts], ['salesforce', accounts]]) {
    for (const [id, v] of Object.entries(last[crm])) {
      const want = isDry(crm, id) ? 'seed' : v;
      if (map.get(id) !== want) fail(`${crm} record ${id} holds ${JSON.stringify(map.get(id))}, expected ${JSON.stringify(want)}`);
      checkedRecords++;
    }
  }

  const base = samples.find((s) => s.at_s >= SECONDS / 3) || samples[0];
  const late = samples.filter((s) => s.at_s >= (2 * SECONDS) / 3);
  const maxOf = (k) => Math.max(...late.map((s) => s[k]));
  if (base && late.length) {
    const rssLimit = base.rssAnonKiB + Math.max(RSS_SLACK_KIB, base.rssAnonKiB * RSS_SLACK_RATIO);
    if (maxOf('rssAnonKiB') > rssLimit) fail(`anonymous RSS grew from ${base.rssAnonKiB} KiB to ${maxOf('rssAnonKiB')} KiB (limit ${Math.round(rssLimit)})`);
    if (maxOf('fds') > base.fds + FD_SLACK) fail(`open descriptors grew from ${base.fds} to ${maxOf('fds')}`);
    if (maxOf('threads') > base.threads) fail(`threads grew from ${base.threads} to ${maxOf('threads')}`);
  } else {
    fail('too few samples to judge memory and descriptors');
  }

  /* ---- the report ---- */
  const elapsed = (Date.now() - t0) / 1000;
  const calls = Object.values(ops).reduce((a, v) => a + v.ok + v.fail, 0);
  console.log(`\n## crmgate soak: ${SECONDS}s of load (${elapsed.toFixed(0)}s in all), ${calls} SDK calls (${(calls / SECONDS).toFixed(0)}/s)\n`);
  console.log('| call | ok | failed | p50 early | p99 early | p50 late | p99 late |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const [k, v] of Object.entries(ops).sort()) {
    const l = latency[k] || { early: {}, late: {} };
    console.log(`| ${k} | ${v.ok} | ${v.fail} | ${l.early.p50_ms ?? '—'} ms | ${l.early.p99_ms ?? '—'} ms | ${l.late.p50_ms ?? '—'} ms | ${l.late.p99_ms ?? '—'} ms |`);
  }
  console.log(`\nWrites: agents ${JSON.stringify(writes)}; the fake received ${fakeWrites}; audit records ${JSON.stringify(byOutcome)} (${auditCount} in all); ${checkedRecords} records' final values checked.`);
  console.log(`Churn: ${churn.flips} dry-run switches, ${churn.sighups} SIGHUPs, ${churn.reads} admin reads.`);
  console.log('\n| sample at | anon RSS (MiB) | descriptors | threads |');
  console.log('|---:|---:|---:|---:|');
  for (const s of samples) console.log(`| ${s.at_s.toFixed(0)} s | ${(s.rssAnonKiB / 1024).toFixed(1)} | ${s.fds} | ${s.threads} |`);
  console.log(failures.length ? `\nsoak: FAILED (${failures.length} problem(s))` : '\nsoak: passed');
  return failures.length ? 1 : 0;
}

main().then((code) => process.exit(code), (e) => {
  console.error(`soak: ${e.stack}`);
  process.exit(1);
});
