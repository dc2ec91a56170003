'use strict';
/*
 * The soak's records (tests/soak/soak.js seeds them, agent.js writes them): each agent loop
 * owns PER_LOOP HubSpot contacts and PER_LOOP Salesforce Accounts, numbered from its kind's
 * base, and writes them in turn, so loops never race each other and the final state of every
 * record is known. Turns keep each record's property history (which the fake, like HubSpot,
 * returns in full to crmgate's before-reads) PER_LOOP times shorter: PER_LOOP grows with the
 * soak's length (SOAK_SECONDS / 20, from 32 to 512), so a longer soak does not turn into a
 * test of ever longer histories.
 */

const { idChecksum } = require('../fakecrm/salesforce.js');

const PER_LOOP = Math.min(512, Math.max(32, Math.ceil(Number(process.env.SOAK_SECONDS || 600) / 20)));
const ID_STRIDE = 1000; /* loop i's records start at base + i * ID_STRIDE: room for 512 */

const ids = {
  hubspot: { open: 100000, dry: 200000, flip: 300000, limited: 400000, fwd: 500000 },
  salesforce: { open: 100000, dry: 200000, flip: 300000, limited: 400000, fwd: 500000 },
};

/* An 18-character Account id (key prefix 001) for record number n, with its case checksum. */
function sfId(n) {
  const id15 = `001Soak${String(n).padStart(8, '0')}`;
  return id15 + idChecksum(id15);
}

/* Record number j (0..PER_LOOP-1) of loop i of a kind, for a CRM. */
function recordNumber(crm, kind, i, j) {
  return ids[crm][kind] + i * ID_STRIDE + j;
}

/* The fake's seed for loops 0..loops-1 of every kind. */
function seed(loops) {
  const contacts = [];
  const accounts = [];
  for (const kind of Object.keys(ids.hubspot)) {
    for (let i = 0; i < loops; i++) {
      for (let j = 0; j < PER_LOOP; j++) {
        const hn = recordNumber('hubspot', kind, i, j);
        contacts.push({ id: String(hn), properties: { email: `soak-${hn}@example.com`, firstname: 'seed', lastname: 'Soak' } });
        accounts.push({ Id: sfId(recordNumber('salesforce', kind, i, j)), Name: 'seed', Industry: 'Soak' });
      }
    }
  }
  return { hubspot: { objects: { contacts } }, salesforce: { objects: { Account: accounts } } };
}

module.exports = { PER_LOOP, ID_STRIDE, ids, sfId, recordNumber, seed };
