'use strict';
/*
 * The secret sweep: no secret ever appears in crmgate's logs, its store (LMDB, where sealed
 * credentials and audit records live), its CLI's output or its admin API's answers.
 *
 * harness.js runs it for every crmgate it starts, once the process has ended: at stop(), and at
 * exit for one a test left running, killed itself or that failed to start. A hit fails the test
 * that stopped it (stop() throws), or the test file (exit code 1) at exit. Messages name the
 * secret's kind and a fingerprint (first 6 characters and length), never the secret itself.
 *
 * What it looks for:
 *   - known secrets: callers' CRM tokens, the admin token, the vault key (hex and raw), the CA and
 *     TLS private keys (PEM body and DER), secrets given to the admin API (PUT /v1/integrations)
 *     or piped to the CLI (noteCliSecrets), keys minted (POST /v1/keys, `key create`), and every
 *     credential a fake CRM received or issued (it appends them to FAKECRM_CREDENTIALS_FILE:
 *     Authorization and Proxy-Authorization values, token endpoint form secrets, issued tokens);
 *     each also percent-encoded;
 *   - shapes, whoever made them: crmgate keys (cgk_ + 43), the fake's OAuth tokens, HubSpot
 *     private-app tokens (pat-na1-...), Salesforce session ids (00D...!...), Bearer/Basic
 *     credentials, and refresh_token / client_secret / access_token / password values in form
 *     or JSON syntax.
 * Where: crmgate's whole stderr and stdout, and the raw bytes of every file under
 * STATE_DIR/db (data.mdb: audit records, sealed credentials, keys' fingerprints; free pages
 * too, so a secret that was ever written in clear is found even after its page was reused).
 *
 * CRMGATE_SWEEP_STATS=1 prints, per crmgate, how many secrets were looked for, the bytes read
 * and the time taken (=kinds adds the secrets' kinds).
 *
 * False positives (kept at zero; each exclusion says why):
 *   - secrets shorter than SWEEP_MIN_LEN characters are not looked for: tests pass 'tok' or 'a'
 *     as malformed secrets, and such strings occur everywhere;
 *   - a CLI's stdout of `key create` prints the key: that is its job (shown once);
 *   - the answer of POST /v1/keys carries the key in "key": likewise.
 */
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');

const SWEEP_MIN_LEN = 8;
/* How many hits one sweep reports (the first few say enough). */
const SWEEP_MAX_REPORT = 8;
/* Context around a hit in a report, masked. */
const SWEEP_CONTEXT = 60;

/* value (string) -> kind; binary secrets (raw keys) separately */
const known = new Map();
const knownBinary = new Map();
const fakeFiles = new Set();

/*
 * Shapes that are secrets wherever crmgate writes them. Each: kind, regex (global) and the
 * group holding the secret (0: the whole match).
 */
const SHAPES = [
  { kind: 'crmgate key (cgk_)', re: /cgk_[A-Za-z0-9_-]{43}/g, group: 0 },
  { kind: 'OAuth token issued by the fake CRM', re: /fake-oauth-(?:at|rt)-[0-9a-f]{16,}/g, group: 0 },
  { kind: 'HubSpot private-app token (pat-...)', re: /\bpat-[a-z]{2}\d-[A-Za-z0-9-]{6,}/g, group: 0 },
  { kind: 'Salesforce session id (00D...!...)', re: /\b00D[A-Za-z0-9]{12,15}![A-Za-z0-9._-]{6,}/g, group: 0 },
  { kind: 'Bearer/Basic credential', re: /\b(?:Bearer|Basic)[ \t]+([A-Za-z0-9._~+/=-]{6,})/g, group: 1 },
  { kind: 'form-encoded secret', re: /\b(?:refresh_token|client_secret|access_token|password|client_assertion)=([^&\s"']{6,})/g, group: 1 },
  { kind: 'JSON secret member', re: /"(?:refresh_token|client_secret|access_token|password)"[ \t]*:[ \t]*"([^"]{6,})"/g, group: 1 },
];

function fingerprint(value) {
  if (Buffer.isBuffer(value)) {
    return `${value.length} bytes, sha256 ${crypto.createHash('sha256').update(value).digest('hex').slice(0, 8)}`;
  }
  return `"${value.slice(0, 6)}..." (${value.length} chars)`;
}

/* Remembers a secret (a string, or a Buffer for raw key bytes). Short ones are ignored. */
function noteSecret(kind, value) {
  if (Buffer.isBuffer(value)) {
    if (value.length >= 16) knownBinary.set(value.toString('hex'), { kind, value });
    return;
  }
  if (typeof value !== 'string') return;
  const v = value.trim();
  if (v.length < SWEEP_MIN_LEN || known.has(v)) return;
  known.set(v, kind);
}

/* A PEM private key file: its base64 body's first line and its DER bytes. */
function notePrivateKeyFile(kind, file) {
  let pem;
  try { pem = fs.readFileSync(file, 'utf8'); } catch { return; }
  const m = /-----BEGIN [A-Z ]*PRIVATE KEY-----\r?\n([\s\S]*?)-----END/.exec(pem);
  if (!m) return;
  const lines = m[1].split(/\r?\n/).filter((l) => /^[A-Za-z0-9+/=]+$/.test(l));
  if (lines.length) noteSecret(`${kind} (PEM)`, lines[0]);
  noteSecret(`${kind} (DER)`, Buffer.from(lines.join(''), 'base64'));
}

/* A vault key file: 64 hex digits, the key itself, also as raw bytes. */
function noteVaultKeyFile(file) {
  let text;
  try { text = fs.readFileSync(file, 'utf8').trim(); } catch { return; }
  noteSecret('vault key', text);
  if (/^[0-9a-fA-F]{64}$/.test(text)) {
    noteSecret('vault key', text.toLowerCase());
    noteSecret('vault key (raw)', Buffer.from(text, 'hex'));
  }
}

function noteFakeCredentialsFile(file) {
  fakeFiles.add(file);
}

/* Reads every credential the fakes recorded so far. */
function loadFakeCredentials() {
  for (const f of fakeFiles) {
    let text;
    try { text = fs.readFileSync(f, 'utf8'); } catch { continue; }
    for (const line of text.split('\n')) {
      if (!line) continue;
      try {
        const { kind, value } = JSON.parse(line);
        noteSecret(`credential the fake CRM saw (${kind})`, value);
      } catch { /* a line cut by a kill: the rest still counts */ }
    }
  }
}

/* The secrets in a secrets object or text as `integration add` takes them (stdin or file). */
function noteIntegrationSecrets(text) {
  if (typeof text !== 'string' || !text.trim()) return;
  let obj = null;
  try { obj = JSON.parse(text); } catch { /* a bare token */ }
  if (obj && typeof obj === 'object') {
    for (const k of ['access_token', 'refresh_token', 'client_secret']) noteSecret(`integration ${k}`, obj[k]);
  } else {
    noteSecret('integration access_token', text);
  }
}

function optValue(args, name) {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : undefined;
}

/* Every place a text may hold a secret: [{kind, at, len}]. */
function findInText(text, skip) {
  const hits = [];
  for (const [value, kind] of known) {
    for (const form of forms(value)) {
      const at = text.indexOf(form);
      if (at >= 0 && !(skip && skip(form, at))) { hits.push({ kind, fp: fingerprint(value), at, len: form.length }); break; }
    }
  }
  for (const s of SHAPES) {
    s.re.lastIndex = 0;
    let m;
    while ((m = s.re.exec(text)) !== null) {
      const secret = m[s.group];
      const at = m.index + m[0].indexOf(secret);
      if (secret.length < SWEEP_MIN_LEN || (skip && skip(secret, at))) continue;
      if (hits.some((h) => h.at === at)) continue;
      hits.push({ kind: s.kind, fp: fingerprint(secret), at, len: secret.length });
    }
  }
  return hits;
}

const formsCache = new Map();
function forms(value) {
  let f = formsCache.get(value);
  if (!f) {
    f = [value];
    const enc = encodeURIComponent(value);
    if (enc !== value) f.push(enc);
    formsCache.set(value, f);
  }
  return f;
}

/* A hit's surroundings with every secret masked, on one printable line. */
function context(text, hit) {
  const from = Math.max(0, hit.at - SWEEP_CONTEXT);
  const to = Math.min(text.length, hit.at + hit.len + SWEEP_CONTEXT);
  let s = `${text.slice(from, hit.at)}<${hit.kind}>${text.slice(hit.at + hit.len, to)}`;
  for (const value of known.keys()) for (const form of forms(value)) s = s.split(form).join('<secret>');
  for (const sh of SHAPES) s = s.replace(sh.re, (m0, g1) => (sh.group ? m0.replace(g1, '<secret>') : '<secret>'));
  return s.replace(/[^\x20-\x7e]/g, '.');
}

/*
 * Sweeps one crmgate: what: a name for messages; text: its stderr and stdout; stateDir: its
 * state directory (the files under db/ are read raw). Returns the hits as message lines (empty:
 * clean).
 */
function sweep({ what, text, stateDir }) {
  const t0 = process.hrtime.bigint();
  let scanned = text.length;
  loadFakeCredentials();
  const out = [];
  for (const h of findInText(text)) out.push(`${h.kind} ${h.fp} in ${what}'s log: ...${context(text, h)}...`);
  const dbDir = stateDir ? path.join(stateDir, 'db') : null;
  let files = [];
  try { files = fs.readdirSync(dbDir).map((f) => path.join(dbDir, f)); } catch { /* no store */ }
  for (const f of files) {
    let buf;
    try { buf = fs.readFileSync(f); } catch { continue; }
    scanned += buf.length;
    const bin = buf.toString('latin1');
    for (const h of findInText(bin)) out.push(`${h.kind} ${h.fp} in ${f} at byte ${h.at}: ...${context(bin, h)}...`);
    for (const { kind, value } of knownBinary.values()) {
      const at = buf.indexOf(value);
      if (at >= 0) out.push(`${kind} (${fingerprint(value)}) in ${f} at byte ${at}`);
    }
  }
  if (process.env.CRMGATE_SWEEP_STATS) {
    process.stderr.write(`secret sweep: ${what}: ${known.size} secrets + ${knownBinary.size} binary, ${scanned} bytes, ` +
      `${Number(process.hrtime.bigint() - t0) / 1e6} ms, ${out.length} hit(s)\n`);
    if (process.env.CRMGATE_SWEEP_STATS === 'kinds') {
      const kinds = {};
      for (const k of known.values()) kinds[k] = (kinds[k] || 0) + 1;
      process.stderr.write(`secret sweep: kinds ${JSON.stringify(kinds)}\n`);
    }
  }
  return out.slice(0, SWEEP_MAX_REPORT).concat(out.length > SWEEP_MAX_REPORT ? [`... and ${out.length - SWEEP_MAX_REPORT} more`] : []);
}

function failure(what, hits) {
  return new Error(`secret sweep: ${hits.length} secret(s) where none may be (${what}):\n  ${hits.join('\n  ')}`);
}

/*
 * A CLI run of crmgate: remembers the secrets it was given (integration add: stdin or
 * --secrets-file) and the key it minted (key create), and throws when its output shows a secret
 * it should not (any, but the key `key create` prints on stdout).
 */
function noteCliSecrets(args, input, result) {
  const isKeyCreate = args[0] === 'key' && args[1] === 'create';
  if (args[0] === 'integration' && args[1] === 'add') {
    const file = optValue(args, '--secrets-file');
    if (file) { try { noteIntegrationSecrets(fs.readFileSync(file, 'utf8')); } catch { /* the CLI says so */ } }
    noteIntegrationSecrets(typeof input === 'string' ? input : input ? String(input) : '');
  }
  if (isKeyCreate && result && result.stdout) {
    for (const m of String(result.stdout).matchAll(/cgk_[A-Za-z0-9_-]{43}/g)) noteSecret('crmgate key (cgk_)', m[0]);
  }
  if (!result) return;
  loadFakeCredentials();
  const hits = [];
  const err = String(result.stderr || '');
  for (const h of findInText(err)) hits.push(`${h.kind} ${h.fp} on the stderr of crmgate ${args.slice(0, 2).join(' ')}: ...${context(err, h)}...`);
  if (!isKeyCreate) {
    const so = String(result.stdout || '');
    for (const h of findInText(so)) hits.push(`${h.kind} ${h.fp} on the stdout of crmgate ${args.slice(0, 2).join(' ')}: ...${context(so, h)}...`);
  }
  if (hits.length) throw failure(`crmgate ${args.join(' ')}`, hits);
}

/*
 * An admin API call: remembers the secrets sent (PUT /v1/integrations) and the key minted
 * (POST /v1/keys), and throws when the answer shows a secret (but that key in "key").
 */
function noteAdminCall(method, p, body, answer) {
  const route = `${method} ${String(p).split('?')[0]}`;
  if (route === 'PUT /v1/integrations' && body && typeof body === 'object') {
    for (const k of ['access_token', 'refresh_token', 'client_secret']) noteSecret(`integration ${k}`, body[k]);
  }
  let minted = null;
  if (route === 'POST /v1/keys' && answer && answer.body && typeof answer.body.key === 'string') {
    minted = answer.body.key;
    noteSecret('crmgate key (cgk_)', minted);
  }
  if (!answer) return;
  loadFakeCredentials();
  const text = typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body);
  if (typeof text !== 'string') return;
  const skip = minted ? (s, at) => s === minted && text.slice(Math.max(0, at - 7), at) === '"key":"' : null;
  const hits = findInText(text, skip).map((h) => `${h.kind} ${h.fp} in the answer to ${route}: ...${context(text, h)}...`);
  if (hits.length) throw failure(`admin API ${route}`, hits);
}

/*
 * What a crmgate start brings: its callers' tokens (callerTokens), its config's admin token,
 * vault key and TLS key, and its CAs' keys. opts as startCrmgate's; config: the config it wrote;
 * args: its command line.
 */
function noteStartSecrets(opts, config, args, callerTokens) {
  for (const t of callerTokens) noteSecret('CRM token of a caller', t);
  if (config.admin && config.admin.token) noteSecret('admin token', config.admin.token);
  const vaultFile = optValue(args, '--vault-key') || (config.vault && config.vault.key_file) ||
    (opts.env && opts.env.CREDENTIALS_DIRECTORY && path.join(opts.env.CREDENTIALS_DIRECTORY, 'vault.key'));
  if (vaultFile) noteVaultKeyFile(vaultFile);
  const tlsKey = optValue(args, '--tls-key') || (config.tls && config.tls.key);
  if (tlsKey) notePrivateKeyFile('TLS listener key', tlsKey);
  for (const dir of [optValue(args, '--ca-dir'), config.tls && config.tls.ca_dir, config.forward && config.forward.ca_dir,
    config.transparent && config.transparent.ca_dir]) {
    if (dir) notePrivateKeyFile('CA key', path.join(dir, 'ca.key'));
  }
}

module.exports = { noteSecret, noteCliSecrets, noteAdminCall, noteStartSecrets, noteFakeCredentialsFile, sweep, failure, SWEEP_MIN_LEN };
