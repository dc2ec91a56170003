#!/usr/bin/env node
/*
 * soql_crosscheck.js - cross-checks crmgate's SOQL parser (policy/soql.c, via
 * tests/unit/soql_dump.c) against @jetstreamapp/soql-parser-js on a corpus.
 *
 *   node tests/unit/soql_crosscheck.js build/tests/unit/soql_dump tests/unit/cases/soql_corpus.txt
 *
 * For every query crmgate accepts, soql-parser-js must accept it too and both
 * must report the same tree: FROM object / child relationship, child flag,
 * COUNT(), LIMIT, OFFSET, the set of {path, field, clause} refs and the subqueries
 * in text order. For every query crmgate rejects:
 *   - if soql-parser-js rejects it too, fine;
 *   - if crmgate named a construct ("construct not allowed: ..."), it is a
 *     deliberate rejection: listed, not a failure;
 *   - if the query is in STRICTER below (Salesforce rejects it too;
 *     soql-parser-js is lenient), listed, not a failure;
 *   - otherwise a failure: crmgate rejects a query it should understand.
 * Prints every failure, the list of deliberate rejections, and a last line
 * "N passed, N failed". Exits 1 on any failure.
 */
'use strict';

const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const { parseQuery } = require('@jetstreamapp/soql-parser-js');

/*
 * Queries Salesforce itself rejects but soql-parser-js accepts, with why. Exact
 * text, so that any other rejection crmgate does not name as a construct fails.
 */
const STRICTER = new Map([
  ['SELECT Id FROM Account WHERE CreatedDate > 2024-13-01', 'month 13'],
  ['SELECT Id FROM Account WHERE CreatedDate > 2024-01-01T25:00:00Z', 'hour 25'],
  ['SELECT Id, (SELECT Id FROM Contacts GROUP BY Id) FROM Account', 'no GROUP BY in a child subquery'],
  ['SELECT Id FROM Account WHERE Id IN (SELECT AccountId, Name FROM Contact)', 'a semi-join selects one field'],
  ['SELECT Id FROM Account WHERE Id IN (SELECT COUNT(Id) FROM Contact)', 'a semi-join selects a plain field'],
  ['SELECT COUNT(), Id FROM Contact', 'COUNT() stands alone'],
  ["SELECT Id FROM Account WHERE Name = 'bad \\q escape'", 'not a SOQL escape'],
  ["SELECT Id FROM Account WHERE Name INCLUDES 'x'", 'INCLUDES takes a parenthesised list'],
  ['SELECT Id. Name FROM Account', 'soql-parser-js reads path "Id" with an empty field'],
  ['SELECT Id, Account. Name FROM Contact', 'soql-parser-js reads path "Account" with an empty field'],
  ["SELECT Id FROM Account WHERE Name = 'x' AN = 0", 'trailing garbage'],
  ['SELECT Id FROM Contact ALL', 'trailing garbage'],
  ['SELECT Id FROM Account OFFSET', 'OFFSET without a number'],
  ["SELECT Id FROM Account WHERE Name INCLUDES ''", 'INCLUDES takes a parenthesised list'],
]);

function splitPath(raw) {
  const i = raw.lastIndexOf('.');
  return i < 0 ? { path: null, field: raw } : { path: raw.slice(0, i), field: raw.slice(i + 1) };
}

class Collector {
  constructor() {
    this.refs = [];
    this.subs = [];
  }
  add(raw, clause) {
    const r = splitPath(raw);
    this.refs.push({ path: r.path, field: r.field, clause });
  }
  fn(f, clause) {
    for (const p of f.parameters || []) {
      if (typeof p === 'string') this.add(p, clause);
      else if (p && p.type === 'FieldFunctionExpression') this.fn(p, clause);
      else throw new Error(`unsupported function parameter ${JSON.stringify(p)}`);
    }
  }
  /* A WHERE/HAVING tree: {left: condition|null, operator, right: tree}. */
  cond(node, clause) {
    for (; node; node = node.right) {
      const c = node.left;
      if (!c) continue;
      if (c.field) this.add(c.field, clause);
      if (c.fn) this.fn(c.fn, clause);
      if (c.valueQuery) this.subs.push(canon(c.valueQuery, false));
    }
  }
}

function canon(q, child) {
  const c = new Collector();
  let countOnly = false;
  for (const f of q.fields || []) {
    switch (f.type) {
      case 'Field':
        c.add(f.field, 'SELECT');
        break;
      case 'FieldRelationship':
        c.refs.push({ path: f.relationships.join('.'), field: f.field, clause: 'SELECT' });
        break;
      case 'FieldFunctionExpression':
        if (/^count$/i.test(f.functionName) && (f.parameters || []).length === 0) countOnly = true;
        c.fn(f, 'SELECT');
        break;
      case 'FieldSubquery':
        c.subs.push(canon(f.subquery, true));
        break;
      default:
        throw new Error(`unsupported SELECT item ${f.type}`);
    }
  }
  c.cond(q.where, 'WHERE');
  for (const g of [].concat(q.groupBy || [])) {
    if (g.field) c.add(g.field, 'GROUP BY');
    if (g.fn) c.fn(g.fn, 'GROUP BY');
  }
  c.cond(q.having, 'HAVING');
  for (const o of q.orderBy || []) {
    if (o.field) c.add(o.field, 'ORDER BY');
    if (o.fn) c.fn(o.fn, 'ORDER BY');
  }
  return {
    from: child ? q.relationshipName : q.sObject,
    child,
    count_only: countOnly,
    limit: q.limit === undefined ? -1 : q.limit,
    offset: q.offset === undefined ? -1 : q.offset,
    refs: sortRefs(c.refs),
    subs: c.subs,
  };
}

function refKey(r) {
  return `${r.path === null ? '' : r.path}\u0000${r.field}\u0000${r.clause}`;
}

/* Same order as soql_dump.c: by path, field, clause (byte order), duplicates dropped. */
function sortRefs(refs) {
  const seen = new Map();
  for (const r of refs) seen.set(refKey(r), r);
  return [...seen.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))).map((k) => seen.get(k));
}

/* The C side, re-sorted with the same comparator so that only content matters. */
function normC(q) {
  return { ...q, refs: sortRefs(q.refs), subs: q.subs.map(normC) };
}

function main() {
  const [bin, corpus] = process.argv.slice(2);
  if (!bin || !corpus) {
    console.error('usage: soql_crosscheck.js SOQL_DUMP CORPUS');
    process.exit(2);
  }
  const lines = fs.readFileSync(corpus, 'utf8').split('\n');
  const out = execFileSync(bin, [corpus], { encoding: 'utf8' }).split('\n').filter(Boolean).map((l) => JSON.parse(l));
  let passed = 0;
  let failed = 0;
  const deliberate = [];
  const fail = (n, q, why) => {
    failed++;
    console.log(`FAIL line ${n}: ${why}\n  ${q}`);
  };

  const expected = lines.map((l, i) => [i + 1, l.replace(/\r$/, '')]).filter(([, l]) => l !== '' && !l.startsWith('#'));
  if (expected.length !== out.length) {
    console.log(`FAIL soql_dump printed ${out.length} results for ${expected.length} queries`);
    console.log(`0 passed, 1 failed`);
    process.exit(1);
  }
  for (let i = 0; i < out.length; i++) {
    const [n, q] = expected[i];
    const c = out[i];
    if (c.line !== n) {
      fail(n, q, `soql_dump result is for line ${c.line}`);
      continue;
    }
    let js;
    let jsErr = null;
    try {
      js = canon(parseQuery(q), false);
    } catch (e) {
      jsErr = e.message.split('\n')[0];
    }
    if (c.error === undefined) {
      if (jsErr !== null) {
        fail(n, q, `crmgate accepts, soql-parser-js rejects: ${jsErr}`);
        continue;
      }
      const a = JSON.stringify(normC(c.query));
      const b = JSON.stringify(js);
      if (a !== b) {
        fail(n, q, `trees differ\n  crmgate:         ${a}\n  soql-parser-js:  ${b}`);
        continue;
      }
      passed++;
      continue;
    }
    if (jsErr !== null) {
      passed++;
      continue;
    }
    if (c.error.startsWith('construct not allowed:') || STRICTER.has(q)) {
      deliberate.push(`line ${n}: ${q}\n    crmgate: ${c.error}${STRICTER.has(q) ? ` (${STRICTER.get(q)})` : ''}`);
      passed++;
      continue;
    }
    fail(n, q, `crmgate rejects (${c.error}), soql-parser-js accepts`);
  }
  if (deliberate.length > 0) {
    console.log(`Rejected by crmgate, accepted by soql-parser-js (${deliberate.length}, deliberate):`);
    for (const d of deliberate) console.log(`  ${d}`);
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed > 0 ? 1 : 0);
}

main();
