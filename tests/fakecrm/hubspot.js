'use strict';
/*
 * Fake HubSpot CRM API for crmgate's tests, following /work/shared/reference/hubspot-api.md.
 * Stateful: records, property definitions, associations, owners, merges and OAuth tokens live in
 * memory until reset(). Module contract: see the comment at the top of server.js.
 *
 * Seed format (POST /_fake/seed {hubspot: {...}}; every key optional, seeds add to the state):
 *   objects:      {contacts: [{id?, properties:{...}, createdAt?, updatedAt?, archived?,
 *                               history?: {prop: [{value, timestamp, sourceType, sourceId, ...}]}}], ...}
 *   associations: [{from:{type,id}, to:{type,id}, types?:[{associationCategory, associationTypeId}]}]
 *   owners:       [{id, email, firstName, lastName, userId, teams, ...}]
 *   properties:   {contacts: [PropertyCreate-like definitions]}
 *   objectTypes:  [{name, id ('2-123'), singular?, fullyQualifiedName?}]      custom objects
 *   associationLabels: [{from, to, typeId, label, reverseTypeId?, reverseLabel?}]  USER_DEFINED
 *   tokens:       {"<bearer token>": {sourceType, sourceId, sourceLabel?, updatedByUserId?}}
 *                 how writes made with that token appear in propertiesWithHistory (e.g. CRM_UI,
 *                 to simulate a human editing in the HubSpot UI); default: API.
 *   limits:       {tenSecondly: 190, daily: 500000, enforce: false}  enforce → real 429s
 *   oauth:        {clients: [{clientId, clientSecret}], expiresIn: 1800}
 *   searchLagMs:  records written less than this long ago are not yet visible to search.
 * Seeded properties that no definition knows are auto-defined as strings.
 */

const crypto = require('node:crypto');

/* ---------------- static model: object types, properties, association types ---------------- */

const STANDARD_TYPES = [
  ['contacts', '0-1', 'contact'], ['companies', '0-2', 'company'], ['deals', '0-3', 'deal'],
  ['tickets', '0-5', 'ticket'], ['products', '0-7', 'product'], ['line_items', '0-8', 'line_item'],
  ['quotes', '0-14', 'quote'], ['communications', '0-18', 'communication'], ['tasks', '0-27', 'task'],
  ['notes', '0-46', 'note'], ['meetings', '0-47', 'meeting'], ['calls', '0-48', 'call'], ['emails', '0-49', 'email'],
  ['marketing_events', '0-54', 'marketing_event'], ['subscriptions', '0-69', 'subscription'], ['users', '0-115', 'user'],
  ['postal_mail', '0-116', 'postal_mail'], ['orders', '0-123', 'order'], ['leads', '0-136', 'lead'],
  ['carts', '0-142', 'cart'], ['services', '0-162', 'service'], ['courses', '0-410', 'course'],
  ['listings', '0-420', 'listing'], ['appointments', '0-421', 'appointment'],
];

/* §2.1: which property holds created/last-modified per type. */
const ENGAGEMENT_TYPES = new Set(['quotes', 'communications', 'tasks', 'notes', 'meetings', 'calls', 'emails']);
const HS_CREATEDATE_TYPES = ENGAGEMENT_TYPES;

/* §3.1 default property sets (system properties are always added on top). */
const DEFAULT_PROPS = {
  contacts: ['createdate', 'email', 'firstname', 'hs_object_id', 'lastmodifieddate', 'lastname'],
  companies: ['createdate', 'domain', 'hs_lastmodifieddate', 'hs_object_id', 'name'],
  deals: ['amount', 'closedate', 'createdate', 'dealname', 'dealstage', 'hs_lastmodifieddate', 'hs_object_id', 'pipeline'],
  tickets: ['content', 'createdate', 'hs_lastmodifieddate', 'hs_object_id', 'hs_pipeline', 'hs_pipeline_stage', 'hs_ticket_category', 'hs_ticket_priority', 'subject'],
};

/* Properties the free-text `query` of search looks at. */
const SEARCHABLE = {
  contacts: ['firstname', 'lastname', 'email', 'phone', 'company', 'hs_additional_emails'],
  companies: ['name', 'domain', 'website', 'phone'],
  deals: ['dealname'],
  tickets: ['subject', 'content'],
  notes: ['hs_note_body'],
  tasks: ['hs_task_subject', 'hs_task_body'],
};

function opts(...values) {
  return values.map((v, i) => ({ label: v.replace(/_/g, ' ').toLowerCase().replace(/\b\w/g, (c) => c.toUpperCase()), value: v, displayOrder: i, hidden: false }));
}

/* Built-in property definitions: [name, type, fieldType, extra]. */
const P_STR = (name, extra) => [name, 'string', 'text', extra];
const P_NUM = (name, extra) => [name, 'number', 'number', extra];
const P_DT = (name, extra) => [name, 'datetime', 'date', extra];
const P_ENUM = (name, options, extra) => [name, 'enumeration', 'select', { options, ...extra }];
const RO = { readOnly: true };
const CALC = { readOnly: true, calculated: true };
const EXTERNAL = { externalOptions: true };
const LIFECYCLE = opts('subscriber', 'lead', 'marketingqualifiedlead', 'salesqualifiedlead', 'opportunity', 'customer', 'evangelist', 'other');

const BUILTIN_PROPS = {
  contacts: [
    P_STR('email', { unique: true, group: 'contactinformation' }), P_STR('firstname'), P_STR('lastname'), P_STR('phone'),
    P_STR('mobilephone'), P_STR('company'), P_STR('website'), P_STR('jobtitle'), P_STR('address'), P_STR('city'),
    P_STR('state'), P_STR('zip'), P_STR('country'), P_STR('hs_additional_emails', RO),
    P_ENUM('lifecyclestage', LIFECYCLE),
    P_ENUM('hs_lead_status', opts('NEW', 'OPEN', 'IN_PROGRESS', 'OPEN_DEAL', 'UNQUALIFIED', 'ATTEMPTED_TO_CONTACT', 'CONNECTED', 'BAD_TIMING')),
    P_NUM('associatedcompanyid'), P_NUM('num_associated_deals', CALC), P_DT('notes_last_updated', CALC),
    P_DT('lastmodifieddate', RO), P_DT('createdate', RO),
  ],
  companies: [
    P_STR('name'), P_STR('domain'), P_STR('website'), P_STR('phone'), P_STR('industry'), P_STR('city'), P_STR('state'),
    P_STR('country'), P_STR('description', { fieldType: 'textarea' }), P_NUM('numberofemployees'), P_NUM('annualrevenue'),
    P_ENUM('lifecyclestage', LIFECYCLE), P_ENUM('type', opts('PROSPECT', 'PARTNER', 'RESELLER', 'VENDOR', 'OTHER')),
    P_NUM('num_associated_contacts', CALC), P_DT('hs_lastmodifieddate', RO), P_DT('createdate', RO),
  ],
  deals: [
    P_STR('dealname'), P_NUM('amount'), P_ENUM('dealstage', [], EXTERNAL), P_ENUM('pipeline', [], EXTERNAL),
    P_DT('closedate'), P_ENUM('dealtype', opts('newbusiness', 'existingbusiness')), P_STR('description', { fieldType: 'textarea' }),
    P_ENUM('hs_priority', opts('low', 'medium', 'high')), ['hs_is_closed', 'bool', 'booleancheckbox', CALC],
    P_NUM('hs_deal_stage_probability', CALC), P_DT('hs_lastmodifieddate', RO), P_DT('createdate', RO),
  ],
  tickets: [
    P_STR('subject'), P_STR('content', { fieldType: 'textarea' }), P_ENUM('hs_pipeline', [], EXTERNAL),
    P_ENUM('hs_pipeline_stage', [], EXTERNAL), P_ENUM('hs_ticket_priority', opts('LOW', 'MEDIUM', 'HIGH', 'URGENT')),
    P_ENUM('hs_ticket_category', opts('PRODUCT_ISSUE', 'BILLING_ISSUE', 'FEATURE_REQUEST', 'GENERAL_INQUIRY')),
    P_ENUM('source_type', opts('EMAIL', 'PHONE', 'CHAT', 'FORM')), P_DT('hs_lastmodifieddate', RO), P_DT('createdate', RO),
  ],
  notes: [P_STR('hs_note_body', { fieldType: 'html' }), P_DT('hs_timestamp'), P_STR('hs_attachment_ids')],
  tasks: [
    P_STR('hs_task_subject'), P_STR('hs_task_body', { fieldType: 'html' }), P_DT('hs_timestamp'),
    P_ENUM('hs_task_status', opts('NOT_STARTED', 'IN_PROGRESS', 'WAITING', 'COMPLETED', 'DEFERRED')),
    P_ENUM('hs_task_priority', opts('NONE', 'LOW', 'MEDIUM', 'HIGH')), P_ENUM('hs_task_type', opts('EMAIL', 'CALL', 'TODO')),
  ],
  calls: [P_STR('hs_call_title'), P_STR('hs_call_body', { fieldType: 'html' }), P_NUM('hs_call_duration'), P_DT('hs_timestamp')],
  emails: [P_STR('hs_email_subject'), P_STR('hs_email_text', { fieldType: 'textarea' }), P_DT('hs_timestamp')],
  meetings: [P_STR('hs_meeting_title'), P_STR('hs_meeting_body', { fieldType: 'html' }), P_DT('hs_timestamp')],
  products: [P_STR('name'), P_NUM('price'), P_STR('description', { fieldType: 'textarea' }), P_STR('hs_sku')],
  line_items: [P_STR('name'), P_NUM('price'), P_NUM('quantity'), P_STR('hs_product_id')],
};

/* HubSpot-defined association types (§5): [from, to, typeId, reverseTypeId, label (null = the pair's default)]. */
const HS_ASSOC = [
  ['contacts', 'companies', 1, 2, 'Primary'], ['contacts', 'companies', 279, 280, null],
  ['deals', 'contacts', 3, 4, null], ['deals', 'companies', 5, 6, 'Primary'], ['deals', 'companies', 341, 342, null],
  ['contacts', 'tickets', 15, 16, null], ['companies', 'tickets', 25, 26, 'Primary'], ['tickets', 'companies', 339, 340, null],
  ['deals', 'tickets', 27, 28, null], ['deals', 'line_items', 19, 20, null],
  ['companies', 'companies', 13, 14, 'Child Company'],
  ['contacts', 'notes', 201, 202, null], ['companies', 'notes', 189, 190, null], ['deals', 'notes', 213, 214, null],
  ['tickets', 'notes', 227, 228, null], ['contacts', 'tasks', 203, 204, null], ['companies', 'tasks', 191, 192, null],
  ['deals', 'tasks', 215, 216, null], ['tickets', 'tasks', 229, 230, null],
  ['contacts', 'calls', 193, 194, null], ['contacts', 'emails', 197, 198, null], ['contacts', 'meetings', 199, 200, null],
  ['companies', 'calls', 181, 182, null], ['companies', 'emails', 185, 186, null], ['companies', 'meetings', 187, 188, null],
  ['deals', 'calls', 205, 206, null], ['deals', 'emails', 209, 210, null], ['deals', 'meetings', 211, 212, null],
  ['contacts', 'contacts', 449, 449, null], ['companies', 'companies', 450, 450, null],
  ['deals', 'deals', 451, 451, null], ['tickets', 'tickets', 452, 452, null],
];
const REVERSE_LABEL = { 'Child Company': 'Parent Company' };

const FIRST_ID = 51234567001; /* above 2^31: catches int32 truncation of ids (php#261, nodejs#393) */
const BATCH_MAX = 100;
/* a batch/read asking for property histories takes 50 inputs: HubSpot answers more 400 "The maximum
 * number of inputs supported in a batch request for property histories is 50" (PipedreamHQ/pipedream#8462) */
const HISTORY_BATCH_MAX = 50;
const SEARCH_MAX_LIMIT = 200;
const SEARCH_WINDOW = 10000;
const LIST_MAX_LIMIT = 100;
const PORTAL_ID = 12345678;

/* ---------------- small helpers ---------------- */

const iso = (ms) => new Date(ms).toISOString();
const uuid = () => crypto.randomUUID();
const numericCmp = (a, b) => (BigInt(a) < BigInt(b) ? -1 : BigInt(a) > BigInt(b) ? 1 : 0);
const isNumericId = (s) => /^[0-9]{1,18}$/.test(String(s));

/* Splits repeated and comma-separated query values (§3.1). */
function multiParam(query, name) {
  const out = [];
  for (const v of query.getAll(name)) for (const part of v.split(',')) if (part.trim()) out.push(part.trim());
  return out;
}

function toPropString(v) {
  if (v === null || v === undefined) return '';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (Array.isArray(v)) return v.map(toPropString).join(';');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function parseTimeMs(v) {
  if (v === null || v === undefined || v === '') return null;
  if (typeof v === 'number') return v;
  if (/^-?\d+$/.test(String(v))) return Number(v);
  const t = Date.parse(v);
  return Number.isNaN(t) ? null : t;
}

class HsError extends Error {
  constructor(status, category, message, extra) {
    super(message);
    this.status = status;
    this.category = category;
    this.extra = extra || {};
  }
}

/* ---------------- the module ---------------- */

module.exports = function create(fake) {
  let st; /* all mutable state, rebuilt by reset() */
  let lastTick = 0;

  /* Strictly increasing wall-clock ms, so two writes never share an updatedAt. */
  function tick() {
    lastTick = Math.max(fake.now(), lastTick + 1);
    return lastTick;
  }

  function reset() {
    st = {
      nextId: FIRST_ID,
      types: new Map(),      /* canonical name -> type */
      aliases: new Map(),    /* lower-case spelling -> canonical name */
      props: new Map(),      /* type name -> Map(prop name -> definition) */
      records: new Map(),    /* type name -> Map(id -> record) */
      merged: new Map(),     /* `${type}:${id}` -> primary id */
      edges: new Map(),      /* `${fromType}|${fromId}|${toType}|${toId}` -> Map(typeId -> category) */
      assocTypes: new Map(), /* typeId -> {from, to, typeId, reverse, label, category} */
      nextLabelTypeId: 1000,
      owners: [],
      tokenSources: new Map(),
      limits: { tenSecondly: 190, daily: 500000, enforce: false },
      window: [],
      dailyUsed: 0,
      oauth: { clients: [], expiresIn: 1800, issued: new Map(), refresh: new Map(), revokedRefresh: new Set() },
      searchLagMs: 0,
    };
    for (const [name, id, singular] of STANDARD_TYPES) addType({ name, id, singular });
    for (const [from, to, typeId, reverse, label] of HS_ASSOC) addAssocType(from, to, typeId, reverse, label, 'HUBSPOT_DEFINED');
  }

  function addType({ name, id, singular, fullyQualifiedName }) {
    const lower = name.toLowerCase();
    const type = {
      name: lower, id, singular: (singular || lower.replace(/s$/, '')).toLowerCase(),
      created: HS_CREATEDATE_TYPES.has(lower) ? 'hs_createdate' : 'createdate',
      lastmod: lower === 'contacts' ? 'lastmodifieddate' : 'hs_lastmodifieddate',
      upper: (singular || lower.replace(/s$/, '')).toUpperCase(),
    };
    if (id.startsWith('2-') && !singular) type.singular = lower;
    st.types.set(lower, type);
    for (const a of [lower, type.singular, id, fullyQualifiedName].filter(Boolean)) st.aliases.set(a.toLowerCase(), lower);
    st.records.set(lower, new Map());
    st.props.set(lower, new Map());
    definePropsFromTable(type);
    return type;
  }

  function definePropsFromTable(type) {
    const now = Date.UTC(2020, 0, 1);
    const defs = st.props.get(type.name);
    const table = [
      P_NUM('hs_object_id', RO), P_DT(type.created, RO), P_DT(type.lastmod, RO),
      P_ENUM('hubspot_owner_id', [], { ...EXTERNAL, label: 'Contact owner' }),
      P_STR('hs_merged_object_ids', CALC), ...(BUILTIN_PROPS[type.name] || []),
    ];
    for (const [name, ptype, fieldType, extra = {}] of table) {
      defs.set(name, propertyDefinition(type, { name, type: ptype, fieldType: extra.fieldType || fieldType, ...extra }, true, now));
    }
  }

  /* A full Property object (§6) from a PropertyCreate-like input. */
  function propertyDefinition(type, p, hubspotDefined, nowMs) {
    const readOnly = Boolean(p.readOnly || p.calculated || (p.modificationMetadata && p.modificationMetadata.readOnlyValue));
    return {
      name: p.name,
      label: p.label || p.name.replace(/_/g, ' ').replace(/\b\w/g, (c) => c.toUpperCase()),
      type: p.type || 'string',
      fieldType: p.fieldType || 'text',
      groupName: p.groupName || p.group || `${type.singular}information`,
      description: p.description || '',
      options: (p.options || []).map((o, i) => ({ label: o.label, value: o.value, displayOrder: o.displayOrder ?? i, hidden: Boolean(o.hidden), ...(o.description ? { description: o.description } : {}) })),
      displayOrder: p.displayOrder ?? -1,
      calculated: Boolean(p.calculated),
      externalOptions: Boolean(p.externalOptions),
      hasUniqueValue: Boolean(p.unique || p.hasUniqueValue),
      hidden: Boolean(p.hidden),
      hubspotDefined,
      formField: p.formField ?? !readOnly,
      dataSensitivity: p.dataSensitivity || 'non_sensitive',
      modificationMetadata: {
        archivable: !hubspotDefined, readOnlyDefinition: hubspotDefined, readOnlyOptions: false, readOnlyValue: readOnly,
      },
      createdAt: iso(nowMs), updatedAt: iso(nowMs), archived: false,
    };
  }

  function addAssocType(from, to, typeId, reverse, label, category) {
    st.assocTypes.set(typeId, { from, to, typeId, reverse, label, category });
    if (reverse !== typeId) {
      st.assocTypes.set(reverse, { from: to, to: from, typeId: reverse, reverse: typeId, label: label && (REVERSE_LABEL[label] || label), category });
    }
  }

  reset();

  /* ---------------- errors and answers ---------------- */

  function correlationId(ctx) {
    if (!ctx.correlationId) ctx.correlationId = uuid();
    return ctx.correlationId;
  }

  function sendError(ctx, e) {
    const body = { status: 'error', message: e.message, correlationId: correlationId(ctx), category: e.category, ...e.extra };
    ctx.send(e.status, body);
  }

  const notFound = (msg) => new HsError(404, 'OBJECT_NOT_FOUND', msg || 'resource not found');
  const invalid = (msg, extra) => new HsError(400, 'VALIDATION_ERROR', msg, extra);

  /* §7: "Property values were not valid: [...]" with one entry per bad property. */
  function propertyErrors(problems) {
    const list = problems.map((p) => ({ isValid: false, message: p.message, error: p.error, name: p.name, localizedErrorMessage: p.message }));
    return invalid(`Property values were not valid: ${JSON.stringify(list)}`, {
      errors: problems.map((p) => ({ message: p.message, code: p.error, in: p.name, context: { propertyName: [p.name] } })),
      context: { propertyName: problems.map((p) => p.name) },
    });
  }

  /* ---------------- types, records, ids ---------------- */

  function resolveType(seg) {
    const name = st.aliases.get(String(seg).toLowerCase());
    if (!name) throw notFound(`Unable to infer object type from: ${seg}`);
    return st.types.get(name);
  }

  function newId() {
    return String(st.nextId++);
  }

  function followMerges(type, id) {
    let cur = String(id);
    for (let i = 0; i < 100 && st.merged.has(`${type.name}:${cur}`); i++) cur = st.merged.get(`${type.name}:${cur}`);
    return cur;
  }

  /* Finds a record by id or by a unique property (idProperty); archived selects the recycle bin. */
  function findRecord(type, id, { idProperty, archived = false } = {}) {
    const recs = st.records.get(type.name);
    if (idProperty && idProperty !== 'hs_object_id') {
      const def = st.props.get(type.name).get(idProperty);
      if (!def || !def.hasUniqueValue) throw invalid(`${idProperty} is not a unique property of ${type.name}`);
      const want = String(id).toLowerCase();
      for (const r of recs.values()) {
        if (r.archived === archived && (r.props[idProperty] || '').toLowerCase() === want) return r;
      }
      return null;
    }
    const r = recs.get(followMerges(type, id));
    return r && r.archived === archived ? r : null;
  }

  function mustFind(type, id, o) {
    const r = findRecord(type, id, o);
    if (!r) throw notFound(`Object not found.  objectId are usually numeric.`);
    return r;
  }

  function sourceFor(ctx) {
    const s = ctx && ctx.token && st.tokenSources.get(ctx.token);
    if (s) return { sourceType: s.sourceType || 'API', sourceId: s.sourceId ?? null, sourceLabel: s.sourceLabel ?? null, ...(s.updatedByUserId !== undefined ? { updatedByUserId: s.updatedByUserId } : {}) };
    const app = ctx && ctx.token ? crypto.createHash('sha256').update(ctx.token).digest('hex').slice(0, 8) : 'unknown';
    return { sourceType: 'API', sourceId: `private-app:${app}`, sourceLabel: null };
  }

  /* Sets one property value and prepends its history entry (history is newest first, §3.2). */
  function setProp(rec, name, value, source, ms) {
    rec.props[name] = value;
    if (!rec.history[name]) rec.history[name] = [];
    rec.history[name].unshift({ value, timestamp: iso(ms), ...source });
  }

  function touch(type, rec, source, ms) {
    rec.updatedAt = ms;
    setProp(rec, type.lastmod, iso(ms), { sourceType: 'CALCULATED', sourceId: null, sourceLabel: null }, ms);
    rec.searchableAt = ms + st.searchLagMs;
  }

  function newRecord(type, id, ms, source) {
    const rec = { id, type: type.name, props: {}, history: {}, createdAt: ms, updatedAt: ms, archived: false, archivedAt: null, searchableAt: ms + st.searchLagMs };
    setProp(rec, 'hs_object_id', id, { sourceType: 'CALCULATED', sourceId: null, sourceLabel: null }, ms);
    setProp(rec, type.created, iso(ms), source, ms);
    setProp(rec, type.lastmod, iso(ms), { sourceType: 'CALCULATED', sourceId: null, sourceLabel: null }, ms);
    st.records.get(type.name).set(id, rec);
    return rec;
  }

  /*
   * Validates written properties against definitions (unknown, read-only, options, dates,
   * numbers) and returns them as normalised strings; throws one 400 naming every bad one.
   */
  function validateProps(type, props) {
    if (props === undefined || props === null) return {};
    if (typeof props !== 'object' || Array.isArray(props)) throw invalid('Invalid input JSON: properties must be an object');
    const defs = st.props.get(type.name);
    const problems = [];
    const out = {};
    for (const [name, raw] of Object.entries(props)) {
      const def = defs.get(name);
      const value = toPropString(raw);
      if (!def || def.archived) {
        problems.push({ name, error: 'PROPERTY_DOESNT_EXIST', message: `Property "${name}" does not exist` });
        continue;
      }
      if (def.modificationMetadata.readOnlyValue || def.calculated) {
        problems.push({ name, error: 'READ_ONLY_VALUE', message: `"${name}" is a read only property; its value cannot be set.` });
        continue;
      }
      const bad = checkValue(def, value);
      if (bad) problems.push({ name, ...bad });
      else out[name] = normaliseValue(def, value);
    }
    if (problems.length) throw propertyErrors(problems);
    return out;
  }

  function checkValue(def, value) {
    if (value === '') return null; /* empty string clears (§3.4) */
    if (def.type === 'enumeration' && def.options.length && !def.externalOptions) {
      const allowed = def.options.map((o) => o.value);
      for (const v of value.split(';')) {
        if (!allowed.includes(v)) return { error: 'INVALID_OPTION', message: `${v} was not one of the allowed options: [${allowed.join(', ')}]` };
      }
    }
    if ((def.type === 'datetime' || def.type === 'date') && parseTimeMs(value) === null) {
      return { error: 'INVALID_DATE', message: `${value} is not a valid date or datetime` };
    }
    if (def.type === 'number' && !/^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(value.trim())) {
      return { error: 'INVALID_INTEGER', message: `${value} is not a valid number` };
    }
    if (def.type === 'bool' && !/^(true|false)$/i.test(value)) {
      return { error: 'INVALID_BOOLEAN', message: `${value} is not a valid boolean` };
    }
    if (def.name === 'email' && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(value)) {
      return { error: 'INVALID_EMAIL', message: `Email address ${value} is invalid` };
    }
    return null;
  }

  /* Dates come back as ISO strings whatever form was written (epoch ms or ISO). */
  function normaliseValue(def, value) {
    if (value === '') return value;
    if (def.type === 'datetime') return iso(parseTimeMs(value));
    if (def.type === 'date') return iso(parseTimeMs(value)).slice(0, 10);
    if (def.type === 'bool') return value.toLowerCase();
    if (def.name === 'email') return value.toLowerCase();
    return value;
  }

  /* §3.3: a contact's email is unique (case-insensitive) among live contacts. */
  function checkUniqueEmail(type, props, selfId) {
    if (type.name !== 'contacts' || !props.email) return;
    const want = props.email.toLowerCase();
    for (const r of st.records.get('contacts').values()) {
      if (!r.archived && r.id !== selfId && (r.props.email || '').toLowerCase() === want) {
        throw new HsError(409, 'CONFLICT', `Contact already exists. Existing ID: ${r.id}`);
      }
    }
  }

  function applyWrite(type, rec, props, source, ms) {
    for (const [k, v] of Object.entries(props)) setProp(rec, k, v, source, ms);
    touch(type, rec, source, ms);
  }

  /* ---------------- presenting records ---------------- */

  function systemProps(type) {
    return ['hs_object_id', type.created, type.lastmod];
  }

  /*
   * The SimplePublicObject(WithAssociations) of a record. `want` is the list of requested
   * properties (null = the type's default set); unknown names are ignored, known but unset
   * ones come back null.
   */
  function present(type, rec, { want = null, history = [], assocs = [], onlyWritten = null } = {}) {
    const defs = st.props.get(type.name);
    const names = new Set(systemProps(type));
    if (onlyWritten) for (const n of onlyWritten) names.add(n);
    else if (want && want.length) for (const n of want) { if (defs.has(n)) names.add(n); }
    else if (want === null) for (const n of DEFAULT_PROPS[type.name] || []) names.add(n);
    const properties = {};
    for (const n of [...names].sort()) properties[n] = rec.props[n] === undefined ? null : rec.props[n];
    const out = { id: rec.id, properties, createdAt: iso(rec.createdAt), updatedAt: iso(rec.updatedAt), archived: rec.archived };
    if (rec.archived) out.archivedAt = iso(rec.archivedAt);
    const hist = history.filter((n) => defs.has(n));
    if (hist.length) {
      out.propertiesWithHistory = {};
      for (const n of hist) out.propertiesWithHistory[n] = (rec.history[n] || []).map((h) => ({ ...h }));
    }
    if (assocs.length) {
      const a = {};
      for (const toSeg of assocs) {
        let toType;
        try { toType = resolveType(toSeg); } catch { continue; }
        const results = v3AssocResults(type, rec.id, toType);
        if (results.length) a[toType.name] = { results };
      }
      if (Object.keys(a).length) out.associations = a;
    }
    return out;
  }

  /* Everything that is set, for create answers and state dumps. */
  function setPropNames(rec) {
    return Object.keys(rec.props).filter((k) => rec.props[k] !== undefined && rec.props[k] !== null);
  }

  /* ---------------- associations ---------------- */

  const edgeKey = (ft, fid, tt, tid) => `${ft}|${fid}|${tt}|${tid}`;

  function defaultAssocType(from, to) {
    for (const t of st.assocTypes.values()) if (t.from === from.name && t.to === to.name && t.label === null && t.category === 'HUBSPOT_DEFINED') return t;
    return null;
  }

  function labelOf(t) {
    return t ? t.label : null;
  }

  /* Validates an association spec for the (from, to) pair; throws the nodejs#646 400 when wrong. */
  function checkSpec(from, fromId, to, spec) {
    const typeId = Number(spec && spec.associationTypeId);
    const category = (spec && spec.associationCategory) || 'HUBSPOT_DEFINED';
    const t = st.assocTypes.get(typeId);
    if (!Number.isInteger(typeId) || !t || t.category !== category) {
      throw invalid('One or more associations are invalid', { context: { INVALID_ASSOCIATION_TYPE: [`${category}:${spec && spec.associationTypeId}`] } });
    }
    if (t.from !== from.name || t.to !== to.name) {
      /* HubSpot reads the from object as the type the typeId belongs to (nodejs#646). */
      const claimed = st.types.get(t.from);
      throw invalid('One or more associations are invalid', { context: { INVALID_OBJECT_IDS: [`${claimed.upper}=${fromId} is not valid`] } });
    }
    return t;
  }

  function addEdgeType(from, fromId, to, toId, t) {
    const k = edgeKey(from.name, fromId, to.name, toId);
    if (!st.edges.has(k)) st.edges.set(k, new Map());
    st.edges.get(k).set(t.typeId, t.category);
  }

  /* Adds a typed association both ways; a labelled one brings the pair's default type with it. */
  function associate(from, fromId, to, toId, t) {
    if (t.label === 'Primary') {
      /* Only one primary per record and target type: a new primary replaces the old one. */
      for (const [k, types] of st.edges) {
        const [ft, fid, tt, tid] = k.split('|');
        if (ft === from.name && fid === fromId && tt === to.name && tid !== toId && types.has(t.typeId)) {
          types.delete(t.typeId);
          const back = st.edges.get(edgeKey(tt, tid, ft, fid));
          if (back) back.delete(t.reverse);
        }
      }
    }
    addEdgeType(from, fromId, to, toId, t);
    addEdgeType(to, toId, from, fromId, st.assocTypes.get(t.reverse) || t);
    const def = defaultAssocType(from, to);
    if (def && def.typeId !== t.typeId) {
      addEdgeType(from, fromId, to, toId, def);
      addEdgeType(to, toId, from, fromId, st.assocTypes.get(def.reverse));
    }
  }

  function dissociateAll(from, fromId, to, toId) {
    st.edges.delete(edgeKey(from.name, fromId, to.name, toId));
    st.edges.delete(edgeKey(to.name, toId, from.name, fromId));
  }

  /* Removes given types; removing the default (unlabelled) one removes all (§5 labels/archive). */
  function dissociateTypes(from, fromId, to, toId, types) {
    const fwd = st.edges.get(edgeKey(from.name, fromId, to.name, toId));
    if (!fwd) return;
    for (const t of types) {
      if (t.label === null) return dissociateAll(from, fromId, to, toId);
      fwd.delete(t.typeId);
      const back = st.edges.get(edgeKey(to.name, toId, from.name, fromId));
      if (back) back.delete(t.reverse);
    }
  }

  /* Associated ids of one record towards a type, with their type ids, in id order. */
  function associationsOf(from, fromId, to) {
    const out = [];
    const prefix = `${from.name}|${fromId}|${to.name}|`;
    for (const [k, types] of st.edges) {
      if (!k.startsWith(prefix) || types.size === 0) continue;
      const toId = k.slice(prefix.length);
      const target = st.records.get(to.name).get(toId);
      if (!target || target.archived) continue;
      out.push({ toId, types: [...types.entries()].map(([typeId, category]) => ({ typeId, category })) });
    }
    return out.sort((a, b) => numericCmp(a.toId, b.toId));
  }

  function v4Types(types) {
    return types.map(({ typeId, category }) => ({ category, typeId, label: labelOf(st.assocTypes.get(typeId)) }));
  }

  /* v3 type names: contact_to_company (labelled primary) / contact_to_company_unlabeled (default). */
  function v3TypeName(typeId) {
    const t = st.assocTypes.get(typeId);
    if (!t) return String(typeId);
    const base = `${st.types.get(t.from).singular}_to_${st.types.get(t.to).singular}`;
    if (t.category !== 'HUBSPOT_DEFINED') return t.label || String(typeId);
    if (t.label === null) return t.from === t.to ? base : (hasPrimaryFor(t.from, t.to) ? `${base}_unlabeled` : base);
    if (t.label === 'Primary') return base;
    if (t.label === 'Child Company') return 'parent_to_child_company';
    if (t.label === 'Parent Company') return 'child_to_parent_company';
    return base;
  }

  function hasPrimaryFor(from, to) {
    for (const t of st.assocTypes.values()) if (t.from === from && t.to === to && t.label === 'Primary') return true;
    return false;
  }

  function v3AssocResults(from, fromId, to) {
    const out = [];
    for (const a of associationsOf(from, fromId, to)) for (const t of a.types) out.push({ id: a.toId, type: v3TypeName(t.typeId) });
    return out;
  }

  function v3TypeFromName(from, to, name) {
    if (/^\d+$/.test(String(name))) return st.assocTypes.get(Number(name)) || null;
    for (const t of st.assocTypes.values()) if (t.from === from.name && t.to === to.name && v3TypeName(t.typeId) === name) return t;
    return null;
  }

  function labelsBetween(from, fromId, to, toId) {
    const types = st.edges.get(edgeKey(from.name, fromId, to.name, toId)) || new Map();
    const labels = [...types.keys()].map((id) => labelOf(st.assocTypes.get(id))).filter((l) => l !== null);
    return { fromObjectTypeId: from.id, fromObjectId: Number(fromId), toObjectTypeId: to.id, toObjectId: Number(toId), labels };
  }

  /* ---------------- rate limit headers (§7) ---------------- */

  function countRequest(ms) {
    st.window = st.window.filter((t) => t > ms - 10000);
    st.window.push(ms);
    st.dailyUsed += 1;
  }

  function responseHeaders(ctx) {
    const ms = fake.now();
    if (!ctx.counted) { countRequest(ms); ctx.counted = true; }
    const secondly = Math.max(1, Math.floor(st.limits.tenSecondly / 10));
    const inLastSecond = st.window.filter((t) => t > ms - 1000).length;
    const h = {
      'x-hubspot-correlation-id': correlationId(ctx),
      'X-HubSpot-RateLimit-Interval-Milliseconds': '10000',
      'X-HubSpot-RateLimit-Max': String(st.limits.tenSecondly),
      'X-HubSpot-RateLimit-Remaining': String(Math.max(0, st.limits.tenSecondly - st.window.length)),
      'X-HubSpot-RateLimit-Secondly': String(secondly),
      'X-HubSpot-RateLimit-Secondly-Remaining': String(Math.max(0, secondly - inLastSecond)),
    };
    /* The daily pair is not sent on OAuth-authenticated calls (§7); private-app tokens get it. */
    if (!ctx.token || ctx.token.startsWith('pat-')) {
      h['X-HubSpot-RateLimit-Daily'] = String(st.limits.daily);
      h['X-HubSpot-RateLimit-Daily-Remaining'] = String(Math.max(0, st.limits.daily - st.dailyUsed));
    }
    return h;
  }

  function tenSecondlyBody(ctx) {
    return {
      status: 'error', message: 'You have reached your ten_secondly_rolling limit.', errorType: 'RATE_LIMIT',
      correlationId: correlationId(ctx), policyName: 'TEN_SECONDLY_ROLLING',
      groupName: `publicapi:private-app-api-calls-ten-secondly:${PORTAL_ID}`,
    };
  }

  /* ---------------- body helpers ---------------- */

  function body(ctx) {
    if (ctx.jsonError) throw invalid(`Invalid input JSON on line 1: ${ctx.jsonError}`);
    return ctx.json;
  }

  function inputsOf(ctx) {
    const b = body(ctx);
    if (!b || !Array.isArray(b.inputs)) throw invalid('Invalid input JSON: "inputs" must be an array');
    if (b.inputs.length > BATCH_MAX) throw invalid(`Batch input must contain at most ${BATCH_MAX} inputs (got ${b.inputs.length})`);
    return b;
  }

  function batchAnswer(ctx, okStatus, results, errors, startedMs) {
    if (fake.batchOrder && fake.batchOrder() === 'reversed') results = results.slice().reverse();
    const out = { status: 'COMPLETE', results, startedAt: iso(startedMs), completedAt: iso(fake.now()) };
    if (errors.length) {
      out.numErrors = errors.length;
      out.errors = errors;
      return ctx.send(207, out);
    }
    return ctx.send(okStatus, out);
  }

  function batchError(category, message, context) {
    return { status: 'error', category, message, context, errors: [], links: {} };
  }

  /* ---------------- objects: single records ---------------- */

  function getObject(ctx, type, id) {
    const q = ctx.query;
    const rec = mustFind(type, id, { idProperty: q.get('idProperty'), archived: q.get('archived') === 'true' });
    const want = q.has('properties') ? multiParam(q, 'properties') : null;
    ctx.send(200, present(type, rec, { want, history: multiParam(q, 'propertiesWithHistory'), assocs: multiParam(q, 'associations') }));
  }

  function listObjects(ctx, type) {
    const q = ctx.query;
    let limit = q.has('limit') ? Number(q.get('limit')) : 10;
    if (!Number.isInteger(limit) || limit < 1) throw invalid(`limit must be a positive integer`);
    limit = Math.min(limit, LIST_MAX_LIMIT);
    const archived = q.get('archived') === 'true';
    const after = q.get('after');
    if (after && !isNumericId(after)) throw invalid(`Invalid after cursor: ${after}`);
    const all = [...st.records.get(type.name).values()].filter((r) => r.archived === archived).sort((a, b) => numericCmp(a.id, b.id));
    const start = after ? all.filter((r) => numericCmp(r.id, after) >= 0) : all;
    const page = start.slice(0, limit);
    const want = q.has('properties') ? multiParam(q, 'properties') : null;
    const opt = { want, history: multiParam(q, 'propertiesWithHistory'), assocs: multiParam(q, 'associations') };
    const out = { results: page.map((r) => present(type, r, opt)) };
    if (start.length > limit) {
      const next = start[limit].id;
      out.paging = { next: { after: next, link: `${fake.baseUrl()}/crm/v3/objects/${type.name}?after=${next}` } };
    }
    ctx.send(200, out);
  }

  /* Creates one record from a SimplePublicObjectInputForCreate; returns it. Throws on any problem. */
  function createOne(ctx, type, input, ms, source) {
    if (!input || typeof input !== 'object') throw invalid('Invalid input JSON: expected an object');
    const props = validateProps(type, input.properties || {});
    checkUniqueEmail(type, props, null);
    const assocs = Array.isArray(input.associations) ? input.associations : [];
    const planned = assocs.map((a) => planCreateAssociation(type, a));
    const rec = newRecord(type, newId(), ms, source);
    for (const [k, v] of Object.entries(props)) setProp(rec, k, v, source, ms);
    for (const { to, toId, specs } of planned) for (const t of specs) associate(type, rec.id, to, toId, t);
    return rec;
  }

  /* v3 create-with-associations: the target type comes from the association type id. */
  function planCreateAssociation(type, a) {
    const toId = a && a.to && a.to.id !== undefined ? String(a.to.id) : null;
    const types = a && Array.isArray(a.types) ? a.types : [];
    if (!toId || !types.length) throw invalid('One or more associations are invalid', { context: { INVALID_ASSOCIATION: [JSON.stringify(a)] } });
    const specs = types.map((s) => {
      const t = st.assocTypes.get(Number(s.associationTypeId));
      if (!t || t.from !== type.name) throw invalid('One or more associations are invalid', { context: { INVALID_ASSOCIATION_TYPE: [String(s.associationTypeId)] } });
      return t;
    });
    const to = st.types.get(specs[0].to);
    if (!findRecord(to, toId)) throw invalid('One or more associations are invalid', { context: { INVALID_OBJECT_IDS: [`${to.upper}=${toId} is not valid`] } });
    return { to, toId, specs };
  }

  function createObject(ctx, type) {
    const ms = tick();
    const rec = createOne(ctx, type, body(ctx), ms, sourceFor(ctx));
    ctx.send(201, present(type, rec, { onlyWritten: setPropNames(rec) }));
  }

  function updateObject(ctx, type, id) {
    const b = body(ctx) || {};
    const rec = mustFind(type, id, { idProperty: ctx.query.get('idProperty') });
    const props = validateProps(type, b.properties);
    checkUniqueEmail(type, props, rec.id);
    applyWrite(type, rec, props, sourceFor(ctx), tick());
    ctx.send(200, present(type, rec, { onlyWritten: Object.keys(props) }));
  }

  function archive(type, rec, ms) {
    rec.archived = true;
    rec.archivedAt = ms;
    rec.updatedAt = ms;
  }

  function deleteObject(ctx, type, id) {
    const rec = mustFind(type, id);
    archive(type, rec, tick());
    ctx.send(204, null);
  }

  /* ---------------- objects: batch (§4.1) ---------------- */

  function batchRead(ctx, type) {
    const b = inputsOf(ctx);
    const started = fake.now();
    const archived = ctx.query.get('archived') === 'true';
    const ids = b.inputs.map((i) => String(i && i.id));
    const dup = ids.filter((x, i) => ids.indexOf(x) !== i);
    if (dup.length) throw invalid(`Duplicate IDs found in batch input: [${[...new Set(dup)].join(', ')}]. IDs must be unique`);
    const want = Array.isArray(b.properties) && b.properties.length ? b.properties : null;
    const history = Array.isArray(b.propertiesWithHistory) ? b.propertiesWithHistory : [];
    if (history.length && ids.length > HISTORY_BATCH_MAX) {
      throw invalid(`The maximum number of inputs supported in a batch request for property histories is ${HISTORY_BATCH_MAX}. Please reduce the number of items and try again.`);
    }
    const results = [];
    const missing = [];
    for (const id of ids) {
      const rec = findRecord(type, id, { idProperty: b.idProperty, archived });
      if (rec) results.push(present(type, rec, { want, history }));
      else missing.push(id);
    }
    const errors = missing.length
      ? [batchError('OBJECT_NOT_FOUND', `Could not get some ${type.upper} objects, they may be deleted or not exist. Check that ids are valid.`, { ids: missing })]
      : [];
    batchAnswer(ctx, 200, results, errors, started);
  }

  /*
   * Batch create: 201, or 207 when every input carries an objectWriteTraceId (then bad inputs
   * are reported one by one); otherwise one bad input fails the whole batch (§4.1).
   */
  function batchCreate(ctx, type) {
    const b = inputsOf(ctx);
    const started = fake.now();
    const traced = b.inputs.length > 0 && b.inputs.every((i) => i && i.objectWriteTraceId);
    const source = sourceFor(ctx);
    const good = [];
    const errors = [];
    const emails = new Map();
    for (const input of b.inputs) {
      try {
        const props = validateProps(type, (input && input.properties) || {});
        checkUniqueEmail(type, props, null);
        if (type.name === 'contacts' && props.email) {
          if (emails.has(props.email)) throw new HsError(409, 'CONFLICT', `Duplicate email in batch input: ${props.email}`);
          emails.set(props.email, true);
        }
        (input.associations || []).forEach((a) => planCreateAssociation(type, a));
        good.push(input);
      } catch (e) {
        if (!(e instanceof HsError) || !traced) throw e;
        const context = { ...(e.extra.context || {}), objectWriteTraceId: [String(input.objectWriteTraceId)] };
        errors.push({ ...batchError(e.category, e.message, context), errors: e.extra.errors || [], objectWriteTraceId: String(input.objectWriteTraceId) });
      }
    }
    const ms = tick();
    const results = good.map((input) => {
      const rec = createOne(ctx, type, input, ms, source);
      const out = present(type, rec, { onlyWritten: setPropNames(rec) });
      if (input.objectWriteTraceId) out.objectWriteTraceId = String(input.objectWriteTraceId);
      return out;
    });
    batchAnswer(ctx, 201, results, errors, started);
  }

  function batchUpdate(ctx, type) {
    const b = inputsOf(ctx);
    const started = fake.now();
    const plans = [];
    const missing = [];
    for (const input of b.inputs) {
      const rec = findRecord(type, input && input.id, { idProperty: input && input.idProperty });
      if (!rec) { missing.push(String(input && input.id)); continue; }
      const props = validateProps(type, input.properties);
      checkUniqueEmail(type, props, rec.id);
      plans.push({ rec, props, input });
    }
    const ms = tick();
    const source = sourceFor(ctx);
    const results = plans.map(({ rec, props, input }) => {
      applyWrite(type, rec, props, source, ms);
      const out = present(type, rec, { onlyWritten: Object.keys(props) });
      if (input.objectWriteTraceId) out.objectWriteTraceId = String(input.objectWriteTraceId);
      return out;
    });
    const errors = missing.length
      ? [batchError('OBJECT_NOT_FOUND', `Could not get some ${type.upper} objects, they may be deleted or not exist. Check that ids are valid.`, { ids: missing })]
      : [];
    batchAnswer(ctx, 200, results, errors, started);
  }

  /* Batch upsert by a unique property: updates matches, creates the rest ("new": true). */
  function batchUpsert(ctx, type) {
    const b = inputsOf(ctx);
    const started = fake.now();
    const plans = [];
    for (const input of b.inputs) {
      if (!input || input.id === undefined || input.id === null || input.id === '') throw invalid('Each upsert input needs an id');
      const idProperty = input.idProperty || b.idProperty || 'hs_object_id';
      const def = st.props.get(type.name).get(idProperty);
      if (idProperty !== 'hs_object_id' && (!def || !def.hasUniqueValue)) {
        throw invalid(`${idProperty} is not a unique property of ${type.name}; upsert needs a property with hasUniqueValue`);
      }
      const rec = findRecord(type, input.id, { idProperty });
      if (!rec && idProperty === 'hs_object_id') throw notFound(`No ${type.upper} with id ${input.id}; upsert by hs_object_id cannot create`);
      const props = validateProps(type, input.properties);
      if (!rec) props[idProperty] = normaliseValue(def, String(input.id));
      checkUniqueEmail(type, props, rec ? rec.id : null);
      plans.push({ rec, props, input });
    }
    const ms = tick();
    const source = sourceFor(ctx);
    const results = plans.map(({ rec, props, input }) => {
      let isNew = false;
      if (rec) applyWrite(type, rec, props, source, ms);
      else {
        isNew = true;
        rec = createOne(ctx, type, { properties: {} }, ms, source);
        for (const [k, v] of Object.entries(props)) setProp(rec, k, v, source, ms);
      }
      const out = { ...present(type, rec, { onlyWritten: isNew ? setPropNames(rec) : Object.keys(props) }), new: isNew };
      if (input.objectWriteTraceId) out.objectWriteTraceId = String(input.objectWriteTraceId);
      return out;
    });
    batchAnswer(ctx, 200, results, [], started);
  }

  function batchArchive(ctx, type) {
    const b = inputsOf(ctx);
    const ms = tick();
    for (const input of b.inputs) {
      const rec = findRecord(type, input && input.id);
      if (rec) archive(type, rec, ms);
    }
    ctx.send(204, null);
  }

  /* ---------------- merge and GDPR ---------------- */

  function mergeObjects(ctx, type) {
    const b = body(ctx) || {};
    const primary = mustFind(type, b.primaryObjectId);
    const loser = mustFind(type, b.objectIdToMerge);
    if (primary.id === loser.id) throw invalid('Cannot merge an object with itself');
    const ms = tick();
    const source = sourceFor(ctx);
    /* The primary's values win; empty ones are filled from the merged record. */
    const fill = {};
    for (const [k, v] of Object.entries(loser.props)) {
      if (systemProps(type).includes(k) || k === 'hs_merged_object_ids') continue;
      if ((primary.props[k] === undefined || primary.props[k] === '') && v !== '') fill[k] = v;
    }
    /* A contact's email must stay unique: the loser gives it up as it is archived. */
    const mergedIds = (primary.props.hs_merged_object_ids || '').split(';').filter(Boolean);
    mergedIds.push(loser.id);
    for (const [k, v] of Object.entries(fill)) setProp(primary, k, v, source, ms);
    setProp(primary, 'hs_merged_object_ids', mergedIds.join(';'), { sourceType: 'CALCULATED', sourceId: null, sourceLabel: null }, ms);
    moveAssociations(type, loser.id, primary.id);
    st.records.get(type.name).delete(loser.id);
    st.merged.set(`${type.name}:${loser.id}`, primary.id);
    touch(type, primary, source, ms);
    ctx.send(200, present(type, primary, { onlyWritten: setPropNames(primary) }));
  }

  function moveAssociations(type, fromId, toId) {
    for (const [k, types] of [...st.edges]) {
      const [ft, fid, tt, tid] = k.split('|');
      if (ft === type.name && fid === fromId) {
        st.edges.delete(k);
        const back = st.edges.get(edgeKey(tt, tid, ft, fid));
        st.edges.delete(edgeKey(tt, tid, ft, fid));
        if (tt === type.name && tid === toId) continue; /* no self-association after merge */
        const mergedKey = edgeKey(ft, toId, tt, tid);
        st.edges.set(mergedKey, new Map([...(st.edges.get(mergedKey) || []), ...types]));
        if (back) {
          const backKey = edgeKey(tt, tid, ft, toId);
          st.edges.set(backKey, new Map([...(st.edges.get(backKey) || []), ...back]));
        }
      }
    }
  }

  function gdprDelete(ctx, type) {
    const b = body(ctx) || {};
    const rec = findRecord(type, b.objectId, { idProperty: b.idProperty }) || findRecord(type, b.objectId, { idProperty: b.idProperty, archived: true });
    if (!rec) throw notFound('Object not found.');
    removeAllEdgesOf(type, rec.id);
    st.records.get(type.name).delete(rec.id);
    ctx.send(204, null);
  }

  function removeAllEdgesOf(type, id) {
    for (const k of [...st.edges.keys()]) {
      const [ft, fid, tt, tid] = k.split('|');
      if ((ft === type.name && fid === id) || (tt === type.name && tid === id)) st.edges.delete(k);
    }
  }

  /* ---------------- search (§4.2) ---------------- */

  function searchObjects(ctx, type) {
    const b = body(ctx) || {};
    const groups = Array.isArray(b.filterGroups) ? b.filterGroups : [];
    checkSearchLimits(groups);
    let limit = b.limit === undefined ? 10 : Number(b.limit);
    if (!Number.isInteger(limit) || limit < 0 || limit > SEARCH_MAX_LIMIT) throw invalid(`limit must be between 0 and ${SEARCH_MAX_LIMIT}`);
    const offset = b.after === undefined || b.after === null || b.after === '' ? 0 : Number(b.after);
    if (!Number.isInteger(offset) || offset < 0) throw invalid(`Invalid after: ${b.after}`);
    if (offset + limit > SEARCH_WINDOW) {
      throw invalid(`The search API cannot page past ${SEARCH_WINDOW} results (after=${offset}, limit=${limit}). Sort by hs_object_id and filter with GT instead.`);
    }
    if (b.query !== undefined && String(b.query).length > 3000) throw invalid('query is longer than 3000 characters');
    const now = fake.now();
    let recs = [...st.records.get(type.name).values()].filter((r) => !r.archived && r.searchableAt <= now);
    if (groups.length) recs = recs.filter((r) => groups.some((g) => (g.filters || []).every((f) => matchFilter(type, r, f))));
    if (b.query) recs = recs.filter((r) => matchQuery(type, r, String(b.query)));
    recs.sort(sorter(type, b.sorts));
    const page = recs.slice(offset, offset + limit);
    const want = Array.isArray(b.properties) && b.properties.length ? b.properties : null;
    const out = { total: recs.length, results: page.map((r) => present(type, r, { want })) };
    if (offset + limit < recs.length) out.paging = { next: { after: String(offset + limit), link: `?after=${offset + limit}` } };
    ctx.send(200, out);
  }

  /* Since 2024-08: 5 groups, 10 filters per group, 25 filters in total (§4.2). */
  function checkSearchLimits(groups) {
    if (groups.length > 5) throw invalid(`Too many filter groups (${groups.length}); the maximum is 5`);
    let total = 0;
    for (const g of groups) {
      const n = Array.isArray(g && g.filters) ? g.filters.length : 0;
      if (n > 10) throw invalid(`Too many filters in a group (${n}); the maximum is 10`);
      total += n;
    }
    if (total > 25) throw invalid(`Too many filters (${total}); the maximum is 25 in total`);
    for (const g of groups) for (const f of g.filters || []) validateFilter(f);
  }

  const OPERATORS = ['EQ', 'NEQ', 'LT', 'LTE', 'GT', 'GTE', 'BETWEEN', 'IN', 'NOT_IN', 'HAS_PROPERTY', 'NOT_HAS_PROPERTY', 'CONTAINS_TOKEN', 'NOT_CONTAINS_TOKEN'];

  function validateFilter(f) {
    if (!f || typeof f.propertyName !== 'string') throw invalid('Each filter needs a propertyName');
    if (!OPERATORS.includes(f.operator)) throw invalid(`Unknown filter operator ${f.operator}; expected one of ${OPERATORS.join(', ')}`);
    if ((f.operator === 'IN' || f.operator === 'NOT_IN') && !Array.isArray(f.values)) throw invalid(`${f.operator} needs "values"`);
    if (f.operator === 'BETWEEN' && (f.value === undefined || f.highValue === undefined)) throw invalid('BETWEEN needs "value" and "highValue"');
    if (['HAS_PROPERTY', 'NOT_HAS_PROPERTY'].includes(f.operator) && f.value !== undefined) {
      throw invalid(`${f.operator} must be sent without a value`); /* appsmith#39865 */
    }
  }

  /* A comparable form of a value for the property's type: ms for dates, numbers, lower-case text. */
  function comparable(def, v) {
    if (v === null || v === undefined || v === '') return null;
    const t = def ? def.type : 'string';
    if (t === 'datetime' || t === 'date') return parseTimeMs(v);
    if (t === 'number') { const n = Number(v); return Number.isNaN(n) ? null : n; }
    return String(v).toLowerCase();
  }

  function tokens(v) {
    return String(v).toLowerCase().split(/[\s,;:()\[\]"'!?]+/).filter(Boolean);
  }

  function tokenMatch(v, token) {
    const want = String(token).toLowerCase();
    const re = want.includes('*') ? new RegExp(`^${want.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`) : null;
    const parts = [String(v).toLowerCase(), ...tokens(v), ...String(v).toLowerCase().split(/[@.\-_/]+/)];
    return parts.some((p) => (re ? re.test(p) : p === want));
  }

  function matchFilter(type, rec, f) {
    const name = f.propertyName;
    if (/^associations\./i.test(name)) return matchAssociationFilter(type, rec, f);
    const def = st.props.get(type.name).get(name);
    const raw = rec.props[name];
    const has = raw !== undefined && raw !== null && raw !== '';
    const val = comparable(def, raw);
    const cmp = (x) => comparable(def, x);
    switch (f.operator) {
      case 'HAS_PROPERTY': return has;
      case 'NOT_HAS_PROPERTY': return !has;
      case 'EQ': return has && val === cmp(f.value);
      case 'NEQ': return !has || val !== cmp(f.value);
      case 'LT': return has && val < cmp(f.value);
      case 'LTE': return has && val <= cmp(f.value);
      case 'GT': return has && val > cmp(f.value);
      case 'GTE': return has && val >= cmp(f.value);
      case 'BETWEEN': return has && val >= cmp(f.value) && val <= cmp(f.highValue);
      case 'IN': return has && f.values.some((x) => multiValues(def, raw).includes(cmp(x)));
      case 'NOT_IN': return !has || !f.values.some((x) => multiValues(def, raw).includes(cmp(x)));
      case 'CONTAINS_TOKEN': return has && tokenMatch(raw, f.value);
      case 'NOT_CONTAINS_TOKEN': return !has || !tokenMatch(raw, f.value);
      default: return false;
    }
  }

  /* Multi-checkbox values are ';'-joined; IN matches any of them. */
  function multiValues(def, raw) {
    if (def && def.type === 'enumeration') return String(raw).split(';').map((x) => comparable(def, x));
    return [comparable(def, raw)];
  }

  function matchAssociationFilter(type, rec, f) {
    const toSeg = f.propertyName.split('.')[1];
    let to;
    try { to = resolveType(toSeg); } catch { return false; }
    const ids = associationsOf(type, rec.id, to).map((a) => a.toId);
    switch (f.operator) {
      case 'EQ': return ids.includes(String(f.value));
      case 'NEQ': return !ids.includes(String(f.value));
      case 'IN': return f.values.some((v) => ids.includes(String(v)));
      case 'NOT_IN': return !f.values.some((v) => ids.includes(String(v)));
      case 'HAS_PROPERTY': return ids.length > 0;
      case 'NOT_HAS_PROPERTY': return ids.length === 0;
      default: return false;
    }
  }

  /* Full-text `query`: every term must prefix-match a token of a searchable property. */
  function matchQuery(type, rec, query) {
    const fields = SEARCHABLE[type.name] || [...st.props.get(type.name).values()].filter((d) => d.type === 'string').map((d) => d.name);
    const words = fields.flatMap((n) => (rec.props[n] ? [...tokens(rec.props[n]), ...String(rec.props[n]).toLowerCase().split(/[@.\-_/\s]+/), String(rec.props[n]).toLowerCase()] : []));
    return tokens(query).every((term) => words.some((w) => w.startsWith(term)));
  }

  /* Sorts may be strings ("-createdate") or {propertyName, direction}; default: by id. */
  function sorter(type, sorts) {
    const keys = (Array.isArray(sorts) ? sorts : []).map((s) => {
      if (typeof s === 'string') return s.startsWith('-') ? { name: s.slice(1), desc: true } : { name: s, desc: false };
      return { name: s && s.propertyName, desc: s && String(s.direction).toUpperCase() === 'DESCENDING' };
    }).filter((k) => k.name);
    const defs = st.props.get(type.name);
    return (a, b) => {
      for (const k of keys) {
        const def = k.name === 'hs_object_id' ? { type: 'number' } : defs.get(k.name);
        const x = comparable(def, a.props[k.name]);
        const y = comparable(def, b.props[k.name]);
        if (x === y) continue;
        /* Unset values sort last ascending, first descending. */
        const c = x === null ? 1 : y === null ? -1 : x < y ? -1 : 1;
        return k.desc ? -c : c;
      }
      return numericCmp(a.id, b.id);
    };
  }

  /* ---------------- associations: v4 ---------------- */

  function v4List(ctx, from, fromId, to) {
    const rec = mustFind(from, fromId);
    const limit = Math.min(Number(ctx.query.get('limit') || 500), 500);
    const after = Number(ctx.query.get('after') || 0);
    const all = associationsOf(from, rec.id, to);
    const page = all.slice(after, after + limit).map((a) => ({ toObjectId: Number(a.toId), associationTypes: v4Types(a.types) }));
    const out = { results: page };
    if (after + limit < all.length) out.paging = { next: { after: String(after + limit), link: `?after=${after + limit}` } };
    ctx.send(200, out);
  }

  function v4PutLabels(ctx, from, fromId, to, toId) {
    const specs = body(ctx);
    if (!Array.isArray(specs) || !specs.length) throw invalid('Body must be a non-empty array of association specs');
    const a = mustFind(from, fromId);
    const b = findRecord(to, toId);
    if (!b) throw invalid('One or more associations are invalid', { context: { INVALID_OBJECT_IDS: [`${to.upper}=${toId} is not valid`] } });
    const types = specs.map((s) => checkSpec(from, fromId, to, s));
    for (const t of types) associate(from, a.id, to, b.id, t);
    ctx.send(201, labelsBetween(from, a.id, to, b.id), { Location: `${fake.baseUrl()}/crm/v4/objects/${from.id}/${a.id}/associations/${to.id}/${b.id}` });
  }

  function defaultResult(from, fromId, to, toId) {
    const t = defaultAssocType(from, to);
    if (!t) throw invalid(`No default association type between ${from.name} and ${to.name}`);
    associate(from, fromId, to, toId, t);
    return { from: { id: fromId }, to: { id: toId }, associationSpec: { associationCategory: t.category, associationTypeId: t.typeId } };
  }

  function v4PutDefault(ctx, from, fromId, to, toId) {
    const started = fake.now();
    const a = mustFind(from, fromId);
    const b = mustFind(to, toId);
    batchAnswer(ctx, 200, [defaultResult(from, a.id, to, b.id)], [], started);
  }

  function v4Delete(ctx, from, fromId, to, toId) {
    const a = mustFind(from, fromId);
    dissociateAll(from, a.id, to, followMerges(to, toId));
    ctx.send(204, null);
  }

  const idOf = (x) => (x && x.id !== undefined && x.id !== null ? String(x.id) : null);

  function v4BatchCreate(ctx, from, to) {
    const b = inputsOf(ctx);
    const started = fake.now();
    const results = [];
    const errors = [];
    for (const input of b.inputs) {
      try {
        const fromId = idOf(input.from);
        const toId = idOf(input.to);
        if (!fromId || !findRecord(from, fromId)) throw invalid('One or more associations are invalid', { context: { INVALID_OBJECT_IDS: [`${from.upper}=${fromId} is not valid`] } });
        if (!toId || !findRecord(to, toId)) throw invalid('One or more associations are invalid', { context: { INVALID_OBJECT_IDS: [`${to.upper}=${toId} is not valid`] } });
        const types = (input.types || []).map((s) => checkSpec(from, fromId, to, s));
        if (!types.length) throw invalid('Each input needs at least one association type');
        const fid = findRecord(from, fromId).id;
        const tid = findRecord(to, toId).id;
        for (const t of types) associate(from, fid, to, tid, t);
        results.push(labelsBetween(from, fid, to, tid));
      } catch (e) {
        if (!(e instanceof HsError)) throw e;
        errors.push({ ...batchError(e.category, e.message, e.extra.context || {}) });
      }
    }
    batchAnswer(ctx, 201, results, errors, started);
  }

  function v4BatchRead(ctx, from, to) {
    const b = inputsOf(ctx);
    const started = fake.now();
    const results = [];
    const errors = [];
    for (const input of b.inputs) {
      const rec = findRecord(from, idOf(input));
      const list = rec ? associationsOf(from, rec.id, to) : [];
      if (!list.length) {
        errors.push({
          ...batchError('OBJECT_NOT_FOUND', `No ${to.singular} is associated with ${from.singular} ${idOf(input)}.`, { fromObjectId: [String(idOf(input))] }),
          subCategory: 'crm.associations.NO_ASSOCIATIONS_FOUND',
        });
        continue;
      }
      results.push({ from: { id: rec.id }, to: list.map((a) => ({ toObjectId: Number(a.toId), associationTypes: v4Types(a.types) })) });
    }
    batchAnswer(ctx, 200, results, errors, started);
  }

  function v4BatchArchive(ctx, from, to) {
    const b = inputsOf(ctx);
    for (const input of b.inputs) {
      const rec = findRecord(from, idOf(input.from));
      if (!rec) continue;
      for (const t of Array.isArray(input.to) ? input.to : [input.to]) {
        if (idOf(t)) dissociateAll(from, rec.id, to, followMerges(to, idOf(t)));
      }
    }
    ctx.send(204, null);
  }

  function v4BatchLabelsArchive(ctx, from, to) {
    const b = inputsOf(ctx);
    for (const input of b.inputs) {
      const fromId = idOf(input.from);
      const toId = idOf(input.to);
      const types = (input.types || []).map((s) => checkSpec(from, fromId, to, s));
      const rec = findRecord(from, fromId);
      if (rec && toId) dissociateTypes(from, rec.id, to, followMerges(to, toId), types);
    }
    ctx.send(204, null);
  }

  function v4BatchDefault(ctx, from, to) {
    const b = inputsOf(ctx);
    const started = fake.now();
    const results = [];
    const errors = [];
    for (const input of b.inputs) {
      const a = findRecord(from, idOf(input.from));
      const c = findRecord(to, idOf(input.to));
      if (!a || !c) {
        errors.push(batchError('VALIDATION_ERROR', 'One or more associations are invalid', { INVALID_OBJECT_IDS: [`${!a ? from.upper : to.upper}=${!a ? idOf(input.from) : idOf(input.to)} is not valid`] }));
        continue;
      }
      results.push(defaultResult(from, a.id, to, c.id));
    }
    batchAnswer(ctx, 200, results, errors, started);
  }

  function labelsList(ctx, from, to) {
    const results = [...st.assocTypes.values()].filter((t) => t.from === from.name && t.to === to.name)
      .sort((a, b) => a.typeId - b.typeId).map((t) => ({ category: t.category, typeId: t.typeId, label: t.label }));
    ctx.send(200, { results });
  }

  function labelsCreate(ctx, from, to) {
    const b = body(ctx) || {};
    if (!b.label || !b.name) throw invalid('A label definition needs "label" and "name"');
    const results = [defineLabel(from.name, to.name, b.label, b.inverseLabel)];
    ctx.send(200, { results: results.map((t) => ({ category: t.category, typeId: t.typeId, label: t.label })) });
  }

  function defineLabel(from, to, label, reverseLabel, typeId, reverseTypeId) {
    const id = typeId || st.nextLabelTypeId++;
    const rid = reverseTypeId || (from === to && !reverseLabel ? id : st.nextLabelTypeId++);
    st.assocTypes.set(id, { from, to, typeId: id, reverse: rid, label, category: 'USER_DEFINED' });
    if (rid !== id) st.assocTypes.set(rid, { from: to, to: from, typeId: rid, reverse: id, label: reverseLabel || label, category: 'USER_DEFINED' });
    return st.assocTypes.get(id);
  }

  /* ---------------- associations: v3 (older routes) ---------------- */

  function v3ListAssoc(ctx, from, fromId, to) {
    const rec = mustFind(from, fromId);
    ctx.send(200, { results: v3AssocResults(from, rec.id, to) });
  }

  function v3PutAssoc(ctx, from, fromId, to, toId, typeName) {
    const a = mustFind(from, fromId);
    const b = mustFind(to, toId);
    const t = v3TypeFromName(from, to, typeName);
    if (!t || t.from !== from.name || t.to !== to.name) throw invalid(`${typeName} is not a valid association type between ${from.name} and ${to.name}`);
    associate(from, a.id, to, b.id, t);
    ctx.send(200, present(from, a, { assocs: [to.name] }));
  }

  function v3DeleteAssoc(ctx, from, fromId, to, toId, typeName) {
    const a = mustFind(from, fromId);
    const t = v3TypeFromName(from, to, typeName);
    if (!t) throw invalid(`${typeName} is not a valid association type between ${from.name} and ${to.name}`);
    dissociateTypes(from, a.id, to, followMerges(to, toId), [t]);
    ctx.send(204, null);
  }

  function v3BatchAssoc(ctx, from, to, op) {
    const b = inputsOf(ctx);
    const started = fake.now();
    const results = [];
    const errors = [];
    for (const input of b.inputs) {
      if (op === 'read') {
        const rec = findRecord(from, idOf(input));
        if (!rec) { errors.push(batchError('OBJECT_NOT_FOUND', `${from.upper} ${idOf(input)} not found`, { ids: [String(idOf(input))] })); continue; }
        results.push({ from: { id: rec.id }, to: v3AssocResults(from, rec.id, to) });
        continue;
      }
      const a = findRecord(from, idOf(input.from));
      const c = findRecord(to, idOf(input.to));
      const t = v3TypeFromName(from, to, input.type);
      if (!a || !c || !t) {
        if (op === 'archive') continue;
        errors.push(batchError('VALIDATION_ERROR', 'One or more associations are invalid', { input: [JSON.stringify(input)] }));
        continue;
      }
      if (op === 'create') {
        associate(from, a.id, to, c.id, t);
        results.push({ from: { id: a.id }, to: { id: c.id }, type: v3TypeName(t.typeId) });
      } else {
        dissociateTypes(from, a.id, to, c.id, [t]);
      }
    }
    if (op === 'archive') return ctx.send(204, null);
    batchAnswer(ctx, op === 'create' ? 201 : 200, results, errors, started);
  }

  /* ---------------- properties API (§6) ---------------- */

  function propertiesList(ctx, type) {
    const archived = ctx.query.get('archived') === 'true';
    const only = multiParam(ctx.query, 'properties');
    const results = [...st.props.get(type.name).values()]
      .filter((d) => d.archived === archived && (!only.length || only.includes(d.name)));
    ctx.send(200, { results });
  }

  function propertyGet(ctx, type, name) {
    const def = st.props.get(type.name).get(name);
    if (!def || def.archived !== (ctx.query.get('archived') === 'true')) throw notFound(`Unable to find property ${name} for object type ${type.id}`);
    ctx.send(200, def);
  }

  function createPropertyDef(type, p) {
    if (!p || typeof p !== 'object') throw invalid('Invalid input JSON');
    for (const f of ['name', 'label', 'type', 'fieldType', 'groupName']) if (!p[f]) throw invalid(`Property definition needs "${f}"`);
    if (!/^[a-z][a-z0-9_]*$/.test(p.name)) throw invalid(`Property name ${p.name} must be lower-case letters, digits and underscores`);
    const existing = st.props.get(type.name).get(p.name);
    if (existing && !existing.archived) throw new HsError(409, 'OBJECT_ALREADY_EXISTS', `A property named '${p.name}' already exists.`);
    const def = propertyDefinition(type, p, false, fake.now());
    st.props.get(type.name).set(p.name, def);
    return def;
  }

  function propertyCreate(ctx, type) {
    ctx.send(201, createPropertyDef(type, body(ctx)));
  }

  function propertyUpdate(ctx, type, name) {
    const def = st.props.get(type.name).get(name);
    if (!def || def.archived) throw notFound(`Unable to find property ${name} for object type ${type.id}`);
    if (def.hubspotDefined) throw invalid(`Property ${name} is HubSpot-defined; its definition is read-only`);
    const b = body(ctx) || {};
    for (const k of ['label', 'description', 'groupName', 'fieldType', 'type', 'displayOrder', 'hidden', 'formField']) if (b[k] !== undefined) def[k] = b[k];
    if (Array.isArray(b.options)) def.options = b.options.map((o, i) => ({ label: o.label, value: o.value, displayOrder: o.displayOrder ?? i, hidden: Boolean(o.hidden) }));
    def.updatedAt = iso(fake.now());
    ctx.send(200, def);
  }

  function propertyArchive(ctx, type, name) {
    const def = st.props.get(type.name).get(name);
    if (!def || def.archived) throw notFound(`Unable to find property ${name} for object type ${type.id}`);
    if (def.hubspotDefined) throw invalid(`Property ${name} is HubSpot-defined and cannot be archived`);
    def.archived = true;
    def.archivedAt = iso(fake.now());
    ctx.send(204, null);
  }

  function propertiesBatch(ctx, type, op) {
    const b = inputsOf(ctx);
    const started = fake.now();
    if (op === 'read') {
      const results = [];
      const missing = [];
      for (const i of b.inputs) {
        const d = st.props.get(type.name).get(i && i.name);
        if (d && d.archived === Boolean(b.archived)) results.push(d); else missing.push(String(i && i.name));
      }
      const errors = missing.length ? [batchError('OBJECT_NOT_FOUND', `Unable to find properties ${missing.join(', ')}`, { names: missing })] : [];
      return batchAnswer(ctx, 200, results, errors, started);
    }
    if (op === 'create') return batchAnswer(ctx, 201, b.inputs.map((p) => createPropertyDef(type, p)), [], started);
    for (const i of b.inputs) {
      const d = st.props.get(type.name).get(i && i.name);
      if (d && !d.hubspotDefined) { d.archived = true; d.archivedAt = iso(fake.now()); }
    }
    ctx.send(204, null);
  }

  function propertyGroups(ctx, type) {
    const groups = [...new Set([...st.props.get(type.name).values()].map((d) => d.groupName))].sort();
    ctx.send(200, { results: groups.map((name, i) => ({ name, label: name.replace(/information$/, ' information').replace(/^\w/, (c) => c.toUpperCase()), displayOrder: i, archived: false })) });
  }

  /* ---------------- owners (§6) ---------------- */

  function ownerShape(o, i) {
    const ms = Date.UTC(2024, 0, 1);
    return {
      id: String(o.id ?? 1000 + i), email: o.email ?? null, firstName: o.firstName ?? '', lastName: o.lastName ?? '',
      type: o.type || 'PERSON', userId: o.userId ?? null, userIdIncludingInactive: o.userIdIncludingInactive ?? o.userId ?? null,
      teams: o.teams || [], createdAt: o.createdAt || iso(ms), updatedAt: o.updatedAt || iso(ms), archived: Boolean(o.archived),
    };
  }

  function ownersList(ctx) {
    const q = ctx.query;
    const archived = q.get('archived') === 'true';
    const limit = Math.min(Number(q.get('limit') || 100), 500);
    const after = Number(q.get('after') || 0);
    let all = st.owners.filter((o) => o.archived === archived);
    if (q.get('email')) all = all.filter((o) => (o.email || '').toLowerCase() === q.get('email').toLowerCase());
    const out = { results: all.slice(after, after + limit) };
    if (after + limit < all.length) out.paging = { next: { after: String(after + limit), link: `${fake.baseUrl()}/crm/v3/owners/?after=${after + limit}` } };
    ctx.send(200, out);
  }

  function ownerGet(ctx, id) {
    const byUser = ctx.query.get('idProperty') === 'userId';
    const archived = ctx.query.get('archived') === 'true';
    const o = st.owners.find((x) => String(byUser ? x.userId : x.id) === String(id) && x.archived === archived);
    if (!o) throw notFound(`Owner ${id} not found`);
    ctx.send(200, o);
  }

  /* ---------------- OAuth (§8) ---------------- */

  function form(ctx) {
    return new URLSearchParams(ctx.body.toString('utf8'));
  }

  function oauthError(ctx, status, code, message) {
    ctx.send(status, { status: code, message, correlationId: correlationId(ctx) });
  }

  function issueTokens(refresh, scopes) {
    const access = `fake-oauth-at-${crypto.randomBytes(24).toString('hex')}`;
    st.oauth.issued.set(access, { expiresAt: fake.now() + st.oauth.expiresIn * 1000, refresh, scopes });
    return { token_type: 'bearer', refresh_token: refresh, access_token: access, expires_in: st.oauth.expiresIn };
  }

  function oauthToken(ctx) {
    const f = form(ctx);
    const grant = f.get('grant_type');
    const clientId = f.get('client_id');
    const secret = f.get('client_secret');
    if (!['authorization_code', 'refresh_token', 'client_credentials'].includes(grant)) return oauthError(ctx, 400, 'BAD_GRANT_TYPE', 'missing or invalid grant_type');
    if (!clientId) return oauthError(ctx, 400, 'BAD_CLIENT_ID', 'missing or invalid client_id');
    if (st.oauth.clients.length) {
      const c = st.oauth.clients.find((x) => x.clientId === clientId);
      if (!c) return oauthError(ctx, 400, 'BAD_CLIENT_ID', 'missing or invalid client_id');
      if (c.clientSecret !== secret) return oauthError(ctx, 400, 'BAD_CLIENT_SECRET', 'missing or invalid client_secret');
    } else if (!secret) return oauthError(ctx, 400, 'BAD_CLIENT_SECRET', 'missing or invalid client_secret');
    let refresh;
    if (grant === 'refresh_token') {
      refresh = f.get('refresh_token');
      if (!refresh || st.oauth.revokedRefresh.has(refresh) || fake.isRevoked(refresh)) return oauthError(ctx, 400, 'BAD_REFRESH_TOKEN', 'missing or unknown refresh token');
    } else if (grant === 'authorization_code') {
      if (!f.get('code')) return oauthError(ctx, 400, 'BAD_AUTH_CODE', 'missing or invalid auth code');
      refresh = `fake-oauth-rt-${crypto.randomBytes(16).toString('hex')}`;
    } else refresh = undefined;
    st.oauth.refresh.set(refresh, { clientId });
    const out = issueTokens(refresh, (f.get('scope') || 'crm.objects.contacts.read crm.objects.contacts.write').split(/[ ,]+/));
    if (!refresh) delete out.refresh_token;
    ctx.send(200, out);
  }

  function tokenInfo(ctx, token) {
    const info = st.oauth.issued.get(token);
    const expiresIn = info ? Math.floor((info.expiresAt - fake.now()) / 1000) : 1800;
    if (info && expiresIn <= 0) return oauthError(ctx, 404, 'error', 'The access token has expired or is unknown');
    ctx.send(200, {
      token, user: 'fake-user@example.com', hub_domain: 'fake-portal.hubspot.com', hub_id: PORTAL_ID, app_id: 4242,
      expires_in: expiresIn, user_id: 4243, token_type: 'access', is_private_distribution: false,
      scopes: info ? info.scopes : ['crm.objects.contacts.read', 'crm.objects.contacts.write'],
    });
  }

  function refreshTokenInfo(ctx, token) {
    if (st.oauth.revokedRefresh.has(token)) return oauthError(ctx, 404, 'error', 'refresh token not found');
    if (ctx.method === 'DELETE') { st.oauth.revokedRefresh.add(token); return ctx.send(204, null); }
    ctx.send(200, { token, user: 'fake-user@example.com', hub_domain: 'fake-portal.hubspot.com', hub_id: PORTAL_ID, client_id: (st.oauth.refresh.get(token) || {}).clientId || 'unknown', user_id: 4243, token_type: 'refresh', scopes: ['crm.objects.contacts.read', 'crm.objects.contacts.write'] });
  }

  function introspect(ctx) {
    const token = form(ctx).get('token');
    const info = st.oauth.issued.get(token);
    const active = Boolean(info && info.expiresAt > fake.now());
    ctx.send(200, active ? { active, token_type: 'access', hub_id: PORTAL_ID, scope: info.scopes.join(' '), exp: Math.floor(info.expiresAt / 1000) } : { active: false });
  }

  function revokeV3(ctx) {
    const token = form(ctx).get('token');
    if (token) { st.oauth.revokedRefresh.add(token); st.oauth.issued.delete(token); fake.revokeToken(token); }
    ctx.send(200, {});
  }

  /* An access token this fake issued that has expired is refused like HubSpot does (§7). */
  function expiredToken(ctx) {
    const info = ctx.token && st.oauth.issued.get(ctx.token);
    if (!info || info.expiresAt > fake.now()) return false;
    const ago = Math.max(1, Math.floor((fake.now() - info.expiresAt) / 1000));
    ctx.send(401, {
      status: 'error', message: `The OAuth token used to make this call expired ${ago} second(s) ago.`,
      correlationId: correlationId(ctx), category: 'EXPIRED_AUTHENTICATION', context: { 'expire time': [iso(info.expiresAt)] },
    });
    return true;
  }

  /* ---------------- legacy v1/v2 (§10) ---------------- */

  function legacyProps(ctx, b) {
    const list = b && Array.isArray(b.properties) ? b.properties : Array.isArray(b) ? b : null;
    if (!list) throw invalid('Invalid input JSON: properties must be an array of {property, value}');
    const out = {};
    for (const p of list) out[p.property ?? p.name] = p.value;
    return out;
  }

  function legacyError(status, message) {
    return new HsError(status, undefined, message);
  }

  function contactProfile(rec) {
    const properties = {};
    for (const [k, hist] of Object.entries(rec.history)) {
      if (rec.props[k] === undefined) continue;
      properties[k] = {
        value: rec.props[k],
        versions: hist.map((h) => ({ value: h.value, 'source-type': h.sourceType, 'source-id': h.sourceId, 'source-label': h.sourceLabel ?? null, timestamp: Date.parse(h.timestamp), selected: false })),
      };
    }
    return {
      vid: Number(rec.id), 'canonical-vid': Number(rec.id), 'merged-vids': (rec.props.hs_merged_object_ids || '').split(';').filter(Boolean).map(Number),
      'portal-id': PORTAL_ID, 'is-contact': true, properties,
      'identity-profiles': [{ vid: Number(rec.id), identities: rec.props.email ? [{ type: 'EMAIL', value: rec.props.email, timestamp: rec.createdAt }] : [] }],
    };
  }

  function legacyContact(ctx, by, key) {
    const contacts = st.types.get('contacts');
    const rec = by === 'vid' ? findRecord(contacts, key) : findRecord(contacts, key, { idProperty: 'email' });
    if (!rec) throw legacyError(404, 'contact does not exist');
    return rec;
  }

  function legacyWrite(ctx, type, rec, props) {
    const clean = validateProps(type, props);
    checkUniqueEmail(type, clean, rec ? rec.id : null);
    const ms = tick();
    const source = sourceFor(ctx);
    if (!rec) {
      rec = newRecord(type, newId(), ms, source);
      for (const [k, v] of Object.entries(clean)) setProp(rec, k, v, source, ms);
      return rec;
    }
    applyWrite(type, rec, clean, source, ms);
    return rec;
  }

  function legacyObject(type, rec, idField) {
    const properties = {};
    for (const [k, hist] of Object.entries(rec.history)) {
      const h = hist[0];
      properties[k] = { value: rec.props[k], timestamp: Date.parse(h.timestamp), source: h.sourceType, sourceId: h.sourceId, versions: hist.map((x) => ({ name: k, value: x.value, timestamp: Date.parse(x.timestamp), source: x.sourceType, sourceId: x.sourceId })) };
    }
    return { portalId: PORTAL_ID, [idField]: Number(rec.id), isDeleted: false, properties };
  }

  /* ---------------- routing ---------------- */

  /* Date-based versions (§2) map onto v3/v4 routes; types are resolved later. */
  function normalisePath(p) {
    let m;
    if ((m = /^\/crm\/objects\/\d{4}-\d{2}\/([^/]+\/[^/]+\/associations(\/.*)?)$/i.exec(p))) return `/crm/v4/objects/${m[1]}`;
    if ((m = /^\/crm\/objects\/\d{4}-\d{2}(\/.*)?$/i.exec(p))) return `/crm/v3/objects${m[1] || ''}`;
    if ((m = /^\/crm\/associations\/\d{4}-\d{2}(\/.*)?$/i.exec(p))) return `/crm/v4/associations${m[1] || ''}`;
    if ((m = /^\/crm\/properties\/\d{4}-\d{2}(\/.*)?$/i.exec(p))) return `/crm/v3/properties${m[1] || ''}`;
    if ((m = /^\/crm\/owners\/\d{4}-\d{2}(\/.*)?$/i.exec(p))) return `/crm/v3/owners${m[1] || ''}`;
    if ((m = /^\/oauth\/\d{4}-\d{2}(\/.*)?$/i.exec(p))) return `/oauth/v3${m[1] || ''}`;
    if ((m = /^\/crm\/associations\/v4\/([^/]+)\/([^/]+)\/labels(\/.*)?$/i.exec(p))) return `/crm/v4/associations/${m[1]}/${m[2]}/labels${m[3] || ''}`;
    return p.length > 1 ? p.replace(/\/$/, '') : p;
  }

  const T = (seg) => resolveType(seg);
  const O = '/crm/v3/objects/([^/]+)';
  const V4O = '/crm/v4/objects/([^/]+)/([^/]+)/associations';
  const V4B = '/crm/v4/associations/([^/]+)/([^/]+)';

  /* [method, path regex (anchored, case-insensitive), handler(ctx, ...captures)] */
  const ROUTES = [
    ['GET', `${O}`, (c, t) => listObjects(c, T(t))],
    ['POST', `${O}`, (c, t) => createObject(c, T(t))],
    ['POST', `${O}/search`, (c, t) => searchObjects(c, T(t))],
    ['POST', `${O}/batch/read`, (c, t) => batchRead(c, T(t))],
    ['POST', `${O}/batch/create`, (c, t) => batchCreate(c, T(t))],
    ['POST', `${O}/batch/update`, (c, t) => batchUpdate(c, T(t))],
    ['POST', `${O}/batch/upsert`, (c, t) => batchUpsert(c, T(t))],
    ['POST', `${O}/batch/archive`, (c, t) => batchArchive(c, T(t))],
    ['POST', `${O}/merge`, (c, t) => mergeObjects(c, T(t))],
    ['POST', `${O}/gdpr-delete`, (c, t) => gdprDelete(c, T(t))],
    ['GET', `${O}/([^/]+)`, (c, t, id) => getObject(c, T(t), id)],
    ['PATCH', `${O}/([^/]+)`, (c, t, id) => updateObject(c, T(t), id)],
    ['DELETE', `${O}/([^/]+)`, (c, t, id) => deleteObject(c, T(t), id)],
    ['GET', `${O}/([^/]+)/associations/([^/]+)`, (c, t, id, to) => v3ListAssoc(c, T(t), id, T(to))],
    ['PUT', `${O}/([^/]+)/associations/([^/]+)/([^/]+)/([^/]+)`, (c, t, id, to, toId, ty) => v3PutAssoc(c, T(t), id, T(to), toId, ty)],
    ['DELETE', `${O}/([^/]+)/associations/([^/]+)/([^/]+)/([^/]+)`, (c, t, id, to, toId, ty) => v3DeleteAssoc(c, T(t), id, T(to), toId, ty)],
    ['POST', '/crm/v3/associations/([^/]+)/([^/]+)/batch/(create|read|archive)', (c, f, t, op) => v3BatchAssoc(c, T(f), T(t), op.toLowerCase())],
    ['PUT', `${V4O}/default/([^/]+)/([^/]+)`, (c, t, id, to, toId) => v4PutDefault(c, T(t), id, T(to), toId)],
    ['GET', `${V4O}/([^/]+)`, (c, t, id, to) => v4List(c, T(t), id, T(to))],
    ['PUT', `${V4O}/([^/]+)/([^/]+)`, (c, t, id, to, toId) => v4PutLabels(c, T(t), id, T(to), toId)],
    ['DELETE', `${V4O}/([^/]+)/([^/]+)`, (c, t, id, to, toId) => v4Delete(c, T(t), id, T(to), toId)],
    ['POST', `${V4B}/batch/create`, (c, f, t) => v4BatchCreate(c, T(f), T(t))],
    ['POST', `${V4B}/batch/read`, (c, f, t) => v4BatchRead(c, T(f), T(t))],
    ['POST', `${V4B}/batch/archive`, (c, f, t) => v4BatchArchive(c, T(f), T(t))],
    ['POST', `${V4B}/batch/labels/archive`, (c, f, t) => v4BatchLabelsArchive(c, T(f), T(t))],
    ['POST', `${V4B}/batch/associate/default`, (c, f, t) => v4BatchDefault(c, T(f), T(t))],
    ['GET', `${V4B}/labels`, (c, f, t) => labelsList(c, T(f), T(t))],
    ['POST', `${V4B}/labels`, (c, f, t) => labelsCreate(c, T(f), T(t))],
    ['GET', '/crm/v3/properties/([^/]+)', (c, t) => propertiesList(c, T(t))],
    ['POST', '/crm/v3/properties/([^/]+)', (c, t) => propertyCreate(c, T(t))],
    ['GET', '/crm/v3/properties/([^/]+)/groups', (c, t) => propertyGroups(c, T(t))],
    ['POST', '/crm/v3/properties/([^/]+)/batch/(read|create|archive)', (c, t, op) => propertiesBatch(c, T(t), op.toLowerCase())],
    ['GET', '/crm/v3/properties/([^/]+)/([^/]+)', (c, t, n) => propertyGet(c, T(t), n)],
    ['PATCH', '/crm/v3/properties/([^/]+)/([^/]+)', (c, t, n) => propertyUpdate(c, T(t), n)],
    ['DELETE', '/crm/v3/properties/([^/]+)/([^/]+)', (c, t, n) => propertyArchive(c, T(t), n)],
    ['GET', '/crm/v3/owners', (c) => ownersList(c)],
    ['GET', '/crm/v3/owners/([^/]+)', (c, id) => ownerGet(c, id)],
    ['GET', '/crm-object-schemas/v3/schemas', (c) => schemasList(c)],
    ['GET', '/crm/v3/schemas', (c) => schemasList(c)],
    ['POST', '/oauth/(?:v1|v3)/token', (c) => oauthToken(c)],
    ['GET', '/oauth/v1/access-tokens/([^/]+)', (c, t) => tokenInfo(c, t)],
    ['GET', '/oauth/v1/refresh-tokens/([^/]+)', (c, t) => refreshTokenInfo(c, t)],
    ['DELETE', '/oauth/v1/refresh-tokens/([^/]+)', (c, t) => refreshTokenInfo(c, t)],
    ['POST', '/oauth/v3/token/introspect', (c) => introspect(c)],
    ['POST', '/oauth/v3/token/revoke', (c) => revokeV3(c)],
    ['GET', '/contacts/v1/contact/(vid|email)/([^/]+)/profile', (c, by, key) => c.send(200, contactProfile(legacyContact(c, by, key)))],
    ['POST', '/contacts/v1/contact', (c) => legacyCreateContact(c)],
    ['POST', '/contacts/v1/contact/(vid|email)/([^/]+)/profile', (c, by, key) => {
      const rec = legacyContact(c, by, key);
      legacyWrite(c, st.types.get('contacts'), rec, legacyProps(c, body(c)));
      c.send(204, null);
    }],
    ['POST', '/contacts/v1/contact/createOrUpdate/email/([^/]+)', (c, email) => {
      const contacts = st.types.get('contacts');
      const existing = findRecord(contacts, email, { idProperty: 'email' });
      const props = { ...legacyProps(c, body(c)), email };
      const rec = legacyWrite(c, contacts, existing, props);
      c.send(200, { vid: Number(rec.id), isNew: !existing });
    }],
    ['POST', '/contacts/v1/contact/batch', (c) => legacyBatch(c)],
    ['DELETE', '/contacts/v1/contact/vid/([^/]+)', (c, vid) => {
      const rec = legacyContact(c, 'vid', vid);
      archive(st.types.get('contacts'), rec, tick());
      c.send(200, { vid: Number(rec.id), deleted: true, reason: 'OK' });
    }],
    ['PUT', '/companies/v2/companies/([^/]+)', (c, id) => legacyPut(c, 'companies', id, 'companyId')],
    ['PUT', '/deals/v1/deal/([^/]+)', (c, id) => legacyPut(c, 'deals', id, 'dealId')],
  ].map(([method, re, fn]) => ({ method, re: new RegExp(`^${re}$`, 'i'), fn }));

  function legacyCreateContact(ctx) {
    const contacts = st.types.get('contacts');
    const props = legacyProps(ctx, body(ctx));
    const existing = props.email && findRecord(contacts, props.email, { idProperty: 'email' });
    if (existing) {
      return ctx.send(409, { status: 'error', message: 'Contact already exists', correlationId: correlationId(ctx), error: 'CONTACT_EXISTS', identityProfile: { vid: Number(existing.id), identity: [{ value: existing.props.email, type: 'EMAIL', timestamp: existing.createdAt, isPrimary: true }] } });
    }
    const rec = legacyWrite(ctx, contacts, null, props);
    ctx.send(200, contactProfile(rec));
  }

  /* Legacy batch is asynchronous upstream (202); here it is applied at once, all or nothing. */
  function legacyBatch(ctx) {
    const b = body(ctx);
    if (!Array.isArray(b)) throw invalid('Invalid input JSON: expected an array');
    const contacts = st.types.get('contacts');
    const plans = b.map((item) => {
      const props = legacyProps(ctx, item);
      const rec = item.vid ? findRecord(contacts, item.vid) : item.email ? findRecord(contacts, item.email, { idProperty: 'email' }) : null;
      if (item.vid && !rec) throw legacyError(400, `contact vid ${item.vid} does not exist`);
      if (!rec && item.email) props.email = item.email;
      validateProps(contacts, props);
      return { rec, props };
    });
    for (const { rec, props } of plans) legacyWrite(ctx, contacts, rec, props);
    ctx.send(202, null);
  }

  function legacyPut(ctx, typeName, id, idField) {
    const type = st.types.get(typeName);
    const rec = findRecord(type, id);
    if (!rec) throw legacyError(404, `${type.singular} does not exist`);
    legacyWrite(ctx, type, rec, legacyProps(ctx, body(ctx)));
    ctx.send(200, legacyObject(type, rec, idField));
  }

  function schemasList(ctx) {
    const results = [...st.types.values()].filter((t) => t.id.startsWith('2-')).map((t) => ({
      id: t.id.slice(2), name: t.name, objectTypeId: t.id, fullyQualifiedName: t.fullyQualifiedName || `p${PORTAL_ID}_${t.name}`,
      labels: { singular: t.singular, plural: t.name }, properties: [...st.props.get(t.name).values()], archived: false,
    }));
    ctx.send(200, { results });
  }

  async function handle(ctx) {
    try {
      if (!isPublic(ctx.method, ctx.path) && expiredToken(ctx)) return;
      if (st.limits.enforce) {
        const ms = fake.now();
        const used = st.window.filter((t) => t > ms - 10000).length;
        if (used >= st.limits.tenSecondly) return ctx.send(429, tenSecondlyBody(ctx));
      }
      const p = normalisePath(ctx.path);
      const candidates = ROUTES.filter((r) => r.re.test(p));
      if (!candidates.length) throw notFound(`fakecrm: unknown HubSpot endpoint ${ctx.method} ${ctx.path}`);
      const route = candidates.find((r) => r.method === ctx.method);
      if (!route) throw new HsError(405, 'METHOD_NOT_ALLOWED', `HTTP method ${ctx.method} is not supported by this resource`);
      await route.fn(ctx, ...route.re.exec(p).slice(1));
    } catch (e) {
      if (!(e instanceof HsError)) throw e;
      if (e.category === undefined) {
        return ctx.send(e.status, { status: 'error', message: e.message, correlationId: correlationId(ctx), requestId: correlationId(ctx) });
      }
      sendError(ctx, e);
    }
  }

  function isPublic(method, path) {
    return /^\/oauth\/(v1|v3|\d{4}-\d{2})\/(token|access-tokens|refresh-tokens)(\/|$)/i.test(path);
  }

  function unauthorized(ctx) {
    ctx.send(401, {
      status: 'error',
      message: 'Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview',
      correlationId: correlationId(ctx), category: 'INVALID_AUTHENTICATION',
    });
  }

  function faultBody(kind) {
    const ctx = {};
    if (kind === 'ratelimit') return { status: 429, body: tenSecondlyBody(ctx) };
    return { status: 500, body: { status: 'error', message: 'internal error', correlationId: uuid(), category: 'INTERNAL_ERROR' } };
  }

  /* ---------------- seed and state ---------------- */

  function seed(data) {
    if (!data || typeof data !== 'object') throw new Error('hubspot seed must be an object');
    for (const t of data.objectTypes || []) addType({ name: t.name, id: t.id || t.objectTypeId, singular: t.singular, fullyQualifiedName: t.fullyQualifiedName });
    for (const [typeSeg, defs] of Object.entries(data.properties || {})) {
      const type = resolveType(typeSeg);
      for (const p of defs) st.props.get(type.name).set(p.name, propertyDefinition(type, { type: 'string', fieldType: 'text', groupName: `${type.singular}information`, label: p.name, ...p }, Boolean(p.hubspotDefined), fake.now()));
    }
    for (const l of data.associationLabels || []) defineLabel(resolveType(l.from).name, resolveType(l.to).name, l.label, l.reverseLabel, l.typeId, l.reverseTypeId);
    for (const [typeSeg, recs] of Object.entries(data.objects || {})) {
      const type = resolveType(typeSeg);
      for (const r of recs) seedRecord(type, r);
    }
    for (const a of data.associations || []) seedAssociation(a);
    (data.owners || []).forEach((o) => st.owners.push(ownerShape(o, st.owners.length)));
    for (const [token, src] of Object.entries(data.tokens || {})) st.tokenSources.set(token, src);
    if (data.limits) Object.assign(st.limits, data.limits);
    if (data.oauth) {
      if (data.oauth.clients) st.oauth.clients = data.oauth.clients;
      if (data.oauth.expiresIn !== undefined) st.oauth.expiresIn = data.oauth.expiresIn;
    }
    if (data.searchLagMs !== undefined) st.searchLagMs = Number(data.searchLagMs);
  }

  function seedRecord(type, r) {
    const id = r.id !== undefined ? String(r.id) : newId();
    if (!isNumericId(id)) throw new Error(`seed id ${id} is not numeric`);
    if (BigInt(id) >= BigInt(st.nextId)) st.nextId = Number(BigInt(id) + 1n);
    const props = r.properties || {};
    const created = parseTimeMs(r.createdAt ?? props[type.created]) ?? fake.now();
    const updated = parseTimeMs(r.updatedAt ?? props[type.lastmod]) ?? created;
    const source = r.source || { sourceType: 'IMPORT', sourceId: 'fakecrm-seed', sourceLabel: null };
    const rec = newRecord(type, id, created, source);
    const defs = st.props.get(type.name);
    for (const [k, raw] of Object.entries(props)) {
      if (systemProps(type).includes(k)) continue; /* derived from id, createdAt, updatedAt */
      if (!defs.has(k)) defs.set(k, propertyDefinition(type, { name: k, type: 'string', fieldType: 'text' }, false, fake.now()));
      const v = toPropString(raw);
      setProp(rec, k, checkValue(defs.get(k), v) ? v : normaliseValue(defs.get(k), v), source, updated);
    }
    for (const [k, hist] of Object.entries(r.history || {})) {
      rec.history[k] = hist.map((h) => ({ value: toPropString(h.value), timestamp: iso(parseTimeMs(h.timestamp) ?? updated), sourceType: h.sourceType || 'API', sourceId: h.sourceId ?? null, sourceLabel: h.sourceLabel ?? null, ...(h.updatedByUserId !== undefined ? { updatedByUserId: h.updatedByUserId } : {}) }));
      if (r.properties === undefined || r.properties[k] === undefined) rec.props[k] = rec.history[k][0] ? rec.history[k][0].value : undefined;
    }
    rec.updatedAt = updated;
    rec.props[type.lastmod] = iso(updated);
    rec.history[type.lastmod][0].timestamp = iso(updated);
    rec.history[type.lastmod][0].value = iso(updated);
    rec.searchableAt = 0;
    if (r.archived) archive(type, rec, parseTimeMs(r.archivedAt) ?? updated);
  }

  function seedAssociation(a) {
    const from = resolveType(a.from.type);
    const to = resolveType(a.to.type);
    const fromId = String(a.from.id);
    const toId = String(a.to.id);
    if (!st.records.get(from.name).has(fromId) || !st.records.get(to.name).has(toId)) throw new Error(`seed association ${JSON.stringify(a)}: unknown record`);
    const types = a.types && a.types.length ? a.types.map((s) => checkSpec(from, fromId, to, s)) : [defaultAssocType(from, to)];
    if (!types[0]) throw new Error(`seed association ${from.name}->${to.name}: no default type, give types`);
    for (const t of types) associate(from, fromId, to, toId, t);
  }

  function state() {
    const objects = {};
    for (const [name, recs] of st.records) {
      if (!recs.size) continue;
      const type = st.types.get(name);
      objects[name] = [...recs.values()].sort((a, b) => numericCmp(a.id, b.id)).map((r) => ({
        ...present(type, r, { onlyWritten: setPropNames(r) }),
        propertiesWithHistory: Object.fromEntries(Object.entries(r.history).map(([k, h]) => [k, h.map((x) => ({ ...x }))])),
      }));
    }
    const associations = [];
    for (const [k, types] of st.edges) {
      if (!types.size) continue;
      const [from, fromId, to, toId] = k.split('|');
      associations.push({ from: { type: from, id: fromId }, to: { type: to, id: toId }, types: v4Types([...types.entries()].map(([typeId, category]) => ({ typeId, category }))) });
    }
    associations.sort((a, b) => (a.from.type + a.from.id + a.to.type + a.to.id < b.from.type + b.from.id + b.to.type + b.to.id ? -1 : 1));
    const customProperties = {};
    for (const [name, defs] of st.props) {
      const custom = [...defs.values()].filter((d) => !d.hubspotDefined);
      if (custom.length) customProperties[name] = custom;
    }
    return { objects, associations, merged: Object.fromEntries(st.merged), owners: st.owners, customProperties };
  }

  return {
    name: 'hubspot',
    match: (p) => /^\/(crm|crm-object-schemas|oauth|properties|owners|contacts|companies|deals|engagements)(\/|$)/i.test(p),
    handle, reset, seed, state, isPublic, unauthorized, responseHeaders, faultBody,
  };
};
