#!/usr/bin/env node
'use strict';
/*
 * The scripted agent of `make demo`: the official SDKs, unmodified, pointed at crmgate, make a
 * few CRM updates the way an AI agent would (with a workflow id and a stated reason), first in
 * enforce mode and then in dry-run, and say what they saw. Usage:
 *
 *   node tests/demo/agent.js GATE_URL FAKE_URL CRMGATE_BIN ADMIN_SOCKET
 *
 * The fake CRM at FAKE_URL is seeded here; crmgate at GATE_URL must front it.
 */
const { execFileSync } = require('node:child_process');
const { Client } = require('@hubspot/api-client');
const jsforce = require('jsforce');
const { idChecksum } = require('../fakecrm/salesforce.js');

const [gate, fake, bin, socket] = process.argv.slice(2);
const HS_TOKEN = 'pat-na1-demo0000-0000-0000-0000-000000000001';
const SF_TOKEN = '00DDemo000000001!AQdemotoken';
const OPP = (() => { const id15 = '006DemoOpp000001'.slice(0, 15); return id15 + idChecksum(id15); })();

async function control(path, body) {
  const r = await fetch(`${fake}${path}`, { method: body ? 'POST' : 'GET', headers: { 'content-type': 'application/json' }, body: body ? JSON.stringify(body) : undefined });
  if (!r.ok) throw new Error(`fake ${path}: ${r.status}`);
  return r.json();
}

function say(line) { process.stdout.write(`  ${line}\n`); }

async function step(title, fn) {
  try {
    say(`${title}: ${await fn()}`);
  } catch (e) {
    const body = e.body || e.response || {};
    say(`${title}: refused ${e.code || e.errorCode || ''} ${(body.message || e.message || '').slice(0, 140)}`);
  }
}

(async () => {
  await control('/_fake/seed', {
    hubspot: { objects: {
      deals: [{ id: '123', properties: { dealname: 'Acme renewal', amount: '12000', dealstage: 'appointmentscheduled' } }],
      contacts: [{ id: '501', properties: { email: 'ana@acme.example', firstname: 'Ana', phone: '+1 555 0100' } }],
    } },
    salesforce: { objects: { Opportunity: [{ Id: OPP, Name: 'Globex expansion', StageName: 'Prospecting', Amount: 50000, CloseDate: '2027-01-31' }] } },
  });
  const ctx = { 'X-Crmgate-Workflow': 'renewal-bot', 'X-Crmgate-Reason': 'customer confirmed the annual plan on the call' };
  const hs = new Client({ accessToken: HS_TOKEN, basePath: `${gate}/hubspot`, defaultHeaders: ctx });
  /* @hubspot/api-client 13 applies its configured middleware (which sends defaultHeaders) only
   * when a call passes options with a middleware list; 'append' keeps the configured one. */
  const hsOpts = { middleware: [], middlewareMergeStrategy: 'append' };
  const sf = new jsforce.Connection({ instanceUrl: `${gate}/salesforce`, accessToken: SF_TOKEN, version: '62.0' });
  const sfOpts = { headers: ctx };

  console.log('enforce mode: writes go to the CRM, each one audited');
  await step('HubSpot  deal 123 amount 12000 -> 120000', async () => {
    const d = await hs.crm.deals.basicApi.update('123', { properties: { amount: '120000' } }, undefined, hsOpts);
    return `ok, CRM says amount=${d.properties.amount}`;
  });
  await step('HubSpot  contact 501 phone (not writable by policy)', async () => {
    await hs.crm.contacts.basicApi.update('501', { properties: { phone: '+1 555 9999' } }, undefined, hsOpts);
    return 'ok';
  });
  await step('Salesforce Opportunity stage -> Negotiation', async () => {
    await sf.sobject('Opportunity').update({ Id: OPP, StageName: 'Negotiation/Review' }, sfOpts);
    const o = await sf.sobject('Opportunity').retrieve(OPP, { fields: ['StageName'] });
    return `ok, CRM says StageName=${o.StageName}`;
  });

  execFileSync(bin, ['dry-run', 'on', '--workspace', 'demo', '--socket', socket], { stdio: 'inherit' });
  console.log('dry-run: the SDKs get normal answers, nothing reaches the CRM');
  await step('HubSpot  deal 123 dealstage -> closedwon', async () => {
    const d = await hs.crm.deals.basicApi.update('123', { properties: { dealstage: 'closedwon' } }, undefined, hsOpts);
    const back = await hs.crm.deals.basicApi.getById('123', ['dealstage']);
    return `ok, answer says ${d.properties.dealstage}; read back ${back.properties.dealstage}`;
  });
  await step('Salesforce new Opportunity', async () => {
    const r = await sf.sobject('Opportunity').create({ Name: 'Initech pilot', StageName: 'Prospecting', CloseDate: '2027-03-31' }, sfOpts);
    return `ok, id ${r.id} (synthetic)`;
  });
  await step('Salesforce Opportunity amount 50000 -> 65000', async () => {
    await sf.sobject('Opportunity').update({ Id: OPP, Amount: 65000 }, sfOpts);
    const o = await sf.sobject('Opportunity').retrieve(OPP, { fields: ['Amount'] });
    return `ok; read back Amount=${o.Amount}`;
  });
  const state = await control('/_fake/state');
  const deal = state.hubspot.objects.deals.find((d) => d.id === '123');
  const opp = state.salesforce.objects.Opportunity.find((o) => o.Id === OPP);
  say(`the CRM itself still has deal 123 dealstage=${deal.properties.dealstage}, Opportunity Amount=${opp.Amount}, ${state.salesforce.objects.Opportunity.length} Opportunity`);
  execFileSync(bin, ['dry-run', 'off', '--workspace', 'demo', '--socket', socket], { stdio: 'inherit' });
})().catch((e) => { console.error(e); process.exit(1); });
