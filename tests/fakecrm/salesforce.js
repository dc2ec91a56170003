'use strict';
/*
 * Fake Salesforce REST API for crmgate's tests: stateful, strict where the real API is strict.
 *
 * Loaded by server.js through the module contract documented at the top of server.js.
 * Behaviour follows /work/shared/reference/salesforce-api.md (sections referred to as §N).
 * What it covers: OAuth token/revoke, discovery, describe (from the beta OAS sample schemas,
 * embedded below), sObject rows (ids, external ids, conditional headers), SOQL query/queryAll
 * with queryMore, SOSL search, composite, composite/batch, composite/tree, composite/graph, sObject collections,
 * limits, updated/deleted. Anything it does not implement answers with a Salesforce-shaped
 * error that says so, never with a made-up success.
 */

const crypto = require('node:crypto');
const { parseQuery } = require('@jetstreamapp/soql-parser-js');

const API_MIN_VERSION = 20;
const API_MAX_VERSION = 67;          /* latest GA per reference §0 (Summer '26) */
const DAILY_API_MAX = 15000;
const QUERY_BATCH_DEFAULT = 2000;    /* §6.1: 200..2000 via Sforce-Query-Options */
const QUERY_BATCH_MIN = 200;
const LOCATOR_IDLE_MS = 15 * 60 * 1000;
const COMPOSITE_MAX = 25;
const COLLECTION_MAX = 200;
const TREE_MAX = 200;

/* ------------------------------------------------------------------------------------------
 * Record ids (§9): 15 case-sensitive base-62 chars + 3-char case checksum.
 * ------------------------------------------------------------------------------------------ */

const CHECKSUM_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ012345';
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

function idChecksum(id15) {
  let out = '';
  for (let c = 0; c < 3; c++) {
    let v = 0;
    for (let i = 0; i < 5; i++) {
      const ch = id15[c * 5 + i];
      if (ch >= 'A' && ch <= 'Z') v |= 1 << i;
    }
    out += CHECKSUM_CHARS[v];
  }
  return out;
}

/*
 * Returns the canonical 18-char id for a 15- or 18-char input, or null when it is not an id.
 * 18-char ids are case-insensitive: the checksum says which letters are upper case, so the
 * case is restored from it and an inconsistent suffix (a digit flagged upper case) is refused.
 */
function canonicalId(s) {
  if (typeof s !== 'string') return null;
  if (/^[a-zA-Z0-9]{15}$/.test(s)) return s + idChecksum(s);
  if (!/^[a-zA-Z0-9]{18}$/.test(s)) return null;
  const suffix = s.slice(15).toUpperCase();
  const chars = s.slice(0, 15).split('');
  for (let c = 0; c < 3; c++) {
    const v = CHECKSUM_CHARS.indexOf(suffix[c]);
    if (v < 0) return null;
    for (let i = 0; i < 5; i++) {
      const k = c * 5 + i;
      const upper = (v >> i) & 1;
      if (/[0-9]/.test(chars[k])) { if (upper) return null; continue; }
      chars[k] = upper ? chars[k].toUpperCase() : chars[k].toLowerCase();
    }
  }
  const id15 = chars.join('');
  return id15 + idChecksum(id15);
}

function base62(n, width) {
  let s = '';
  do { s = BASE62[n % 62] + s; n = Math.floor(n / 62); } while (n > 0);
  return s.padStart(width, '0');
}

/* prefix (3) + pod 'Hs' + '0' + 9-char counter = 15, plus checksum. Deterministic per reset. */
function makeId(prefix, counter) {
  const id15 = prefix + 'Hs0' + base62(counter, 9);
  return id15 + idChecksum(id15);
}

/* ------------------------------------------------------------------------------------------
 * Schemas. Field names and JSON types are from the beta OAS sample (reference §14,
 * specs/salesforce/openapi-beta-v59, MIT, tonyxiao/openSDKs), compacted: name[:code] with
 * code s(string, default) b(boolean) n(number) i(integer) o(compound object) d(date)
 * dt(date-time). Describe metadata the OAS lacks (Salesforce types, createable/updateable,
 * references, required) is added by the tables after it.
 * ------------------------------------------------------------------------------------------ */

const OAS_FIELDS = {
  Account:
    'Id IsDeleted:b MasterRecordId Name Type ParentId BillingStreet BillingCity BillingState ' +
    'BillingPostalCode BillingCountry BillingLatitude:n BillingLongitude:n BillingGeocodeAccuracy ' +
    'BillingAddress:o ShippingStreet ShippingCity ShippingState ShippingPostalCode ShippingCountry ' +
    'ShippingLatitude:n ShippingLongitude:n ShippingGeocodeAccuracy ShippingAddress:o Phone Fax ' +
    'AccountNumber Website PhotoUrl Sic Industry AnnualRevenue:n NumberOfEmployees:i Ownership ' +
    'TickerSymbol Description Rating Site OwnerId CreatedDate:dt CreatedById LastModifiedDate:dt ' +
    'LastModifiedById SystemModstamp:dt LastActivityDate:d LastViewedDate:dt LastReferencedDate:dt Jigsaw ' +
    'JigsawCompanyId CleanStatus AccountSource DunsNumber Tradestyle NaicsCode NaicsDesc YearStarted ' +
    'SicDesc DandbCompanyId OperatingHoursId CustomerPriority__c SLA__c Active__c NumberofLocations__c:n ' +
    'UpsellOpportunity__c SLASerialNumber__c SLAExpirationDate__c:d',
  Contact:
    'Id IsDeleted:b MasterRecordId AccountId LastName FirstName Salutation Name OtherStreet OtherCity ' +
    'OtherState OtherPostalCode OtherCountry OtherLatitude:n OtherLongitude:n OtherGeocodeAccuracy ' +
    'OtherAddress:o MailingStreet MailingCity MailingState MailingPostalCode MailingCountry ' +
    'MailingLatitude:n MailingLongitude:n MailingGeocodeAccuracy MailingAddress:o Phone Fax MobilePhone ' +
    'HomePhone OtherPhone AssistantPhone ReportsToId Email Title Department AssistantName LeadSource ' +
    'Birthdate:d Description OwnerId CreatedDate:dt CreatedById LastModifiedDate:dt LastModifiedById ' +
    'SystemModstamp:dt LastActivityDate:d LastCURequestDate:dt LastCUUpdateDate:dt LastViewedDate:dt ' +
    'LastReferencedDate:dt EmailBouncedReason EmailBouncedDate:dt IsEmailBounced:b PhotoUrl Jigsaw ' +
    'JigsawContactId CleanStatus IndividualId IsPriorityRecord:b Level__c Languages__c',
  Lead:
    'Id IsDeleted:b MasterRecordId LastName FirstName Salutation Name Title Company Street City State ' +
    'PostalCode Country Latitude:n Longitude:n GeocodeAccuracy Address:o Phone MobilePhone Fax Email ' +
    'Website PhotoUrl Description LeadSource Status Industry Rating AnnualRevenue:n NumberOfEmployees:i ' +
    'OwnerId IsConverted:b ConvertedDate:d ConvertedAccountId ConvertedContactId ConvertedOpportunityId ' +
    'IsUnreadByOwner:b CreatedDate:dt CreatedById LastModifiedDate:dt LastModifiedById SystemModstamp:dt ' +
    'LastActivityDate:d LastViewedDate:dt LastReferencedDate:dt Jigsaw JigsawContactId CleanStatus ' +
    'CompanyDunsNumber DandbCompanyId EmailBouncedReason EmailBouncedDate:dt IndividualId ' +
    'IsPriorityRecord:b SICCode__c ProductInterest__c Primary__c CurrentGenerators__c ' +
    'NumberofLocations__c:n',
  Opportunity:
    'Id IsDeleted:b AccountId IsPrivate:b Name Description StageName Amount:n Probability:n ' +
    'ExpectedRevenue:n TotalOpportunityQuantity:n CloseDate:d Type NextStep LeadSource IsClosed:b IsWon:b ' +
    'ForecastCategory ForecastCategoryName CampaignId HasOpportunityLineItem:b Pricebook2Id OwnerId ' +
    'CreatedDate:dt CreatedById LastModifiedDate:dt LastModifiedById SystemModstamp:dt LastActivityDate:d ' +
    'PushCount:i LastStageChangeDate:dt FiscalQuarter:i FiscalYear:i Fiscal ContactId LastViewedDate:dt ' +
    'LastReferencedDate:dt HasOpenActivity:b HasOverdueTask:b LastAmountChangedHistoryId ' +
    'LastCloseDateChangedHistoryId DeliveryInstallationStatus__c TrackingNumber__c OrderNumber__c ' +
    'CurrentGenerators__c MainCompetitors__c',
  Case:
    'Id IsDeleted:b MasterRecordId CaseNumber ContactId AccountId AssetId SourceId ParentId SuppliedName ' +
    'SuppliedEmail SuppliedPhone SuppliedCompany Type Status Reason Origin Subject Priority Description ' +
    'IsClosed:b ClosedDate:dt IsEscalated:b OwnerId CreatedDate:dt CreatedById LastModifiedDate:dt ' +
    'LastModifiedById SystemModstamp:dt ContactPhone ContactMobile ContactEmail ContactFax Comments ' +
    'LastViewedDate:dt LastReferencedDate:dt EngineeringReqNumber__c SLAViolation__c Product__c ' +
    'PotentialLiability__c',
  Task:
    'Id WhoId WhatId Subject ActivityDate:d Status Priority IsHighPriority:b OwnerId Description ' +
    'IsDeleted:b AccountId IsClosed:b CreatedDate:dt CreatedById LastModifiedDate:dt LastModifiedById ' +
    'SystemModstamp:dt IsArchived:b CallDurationInSeconds:i CallType CallDisposition CallObject ' +
    'ReminderDateTime:dt IsReminderSet:b RecurrenceActivityId IsRecurrence:b RecurrenceStartDateOnly:d ' +
    'RecurrenceEndDateOnly:d RecurrenceTimeZoneSidKey RecurrenceType RecurrenceInterval:i ' +
    'RecurrenceDayOfWeekMask:i RecurrenceDayOfMonth:i RecurrenceInstance RecurrenceMonthOfYear ' +
    'RecurrenceRegeneratedType TaskSubtype CompletedDateTime:dt',
  Event:
    'Id WhoId WhatId Subject Location IsAllDayEvent:b ActivityDateTime:dt ActivityDate:d ' +
    'DurationInMinutes:i StartDateTime:dt EndDateTime:dt EndDate:d Description AccountId OwnerId ' +
    'IsPrivate:b ShowAs IsDeleted:b IsChild:b IsGroupEvent:b GroupEventType CreatedDate:dt CreatedById ' +
    'LastModifiedDate:dt LastModifiedById SystemModstamp:dt IsArchived:b RecurrenceActivityId ' +
    'IsRecurrence:b RecurrenceStartDateTime:dt RecurrenceEndDateOnly:d RecurrenceTimeZoneSidKey ' +
    'RecurrenceType RecurrenceInterval:i RecurrenceDayOfWeekMask:i RecurrenceDayOfMonth:i ' +
    'RecurrenceInstance RecurrenceMonthOfYear ReminderDateTime:dt IsReminderSet:b EventSubtype ' +
    'IsRecurrence2Exclusion:b Recurrence2PatternText Recurrence2PatternVersion IsRecurrence2:b ' +
    'IsRecurrence2Exception:b Recurrence2PatternStartDate:dt Recurrence2PatternTimeZone ' +
    'ServiceAppointmentId',
  OpportunityContactRole:
    'Id OpportunityId ContactId Role IsPrimary:b CreatedDate:dt CreatedById LastModifiedDate:dt ' +
    'LastModifiedById SystemModstamp:dt IsDeleted:b',
  OpportunityLineItem:
    'Id OpportunityId SortOrder:i PricebookEntryId Product2Id ProductCode Name Quantity:n TotalPrice:n ' +
    'UnitPrice:n ListPrice:n ServiceDate:d Description CreatedDate:dt CreatedById LastModifiedDate:dt ' +
    'LastModifiedById SystemModstamp:dt IsDeleted:b LastViewedDate:dt LastReferencedDate:dt',
  User:
    'Id Username LastName FirstName Name CompanyName Division Department Title Street City State ' +
    'PostalCode Country Latitude:n Longitude:n GeocodeAccuracy Address:o Email EmailPreferencesAutoBcc:b ' +
    'EmailPreferencesAutoBccStayInTouch:b EmailPreferencesStayInTouchReminder:b SenderEmail SenderName ' +
    'Signature StayInTouchSubject StayInTouchSignature StayInTouchNote Phone Fax MobilePhone Alias ' +
    'CommunityNickname BadgeText IsActive:b TimeZoneSidKey UserRoleId LocaleSidKey ReceivesInfoEmails:b ' +
    'ReceivesAdminInfoEmails:b EmailEncodingKey ProfileId UserType LanguageLocaleKey EmployeeNumber ' +
    'DelegatedApproverId ManagerId LastLoginDate:dt LastPasswordChangeDate:dt CreatedDate:dt CreatedById ' +
    'LastModifiedDate:dt LastModifiedById SystemModstamp:dt NumberOfFailedLogins:i ' +
    'OfflineTrialExpirationDate:dt OfflinePdaTrialExpirationDate:dt UserPermissionsMarketingUser:b ' +
    'UserPermissionsOfflineUser:b UserPermissionsCallCenterAutoLogin:b UserPermissionsSFContentUser:b ' +
    'UserPermissionsKnowledgeUser:b UserPermissionsInteractionUser:b UserPermissionsSupportUser:b ' +
    'UserPermissionsJigsawProspectingUser:b UserPermissionsSiteforceContributorUser:b ' +
    'UserPermissionsSiteforcePublisherUser:b UserPermissionsWorkDotComUserFeature:b ForecastEnabled:b ' +
    'UserPreferencesActivityRemindersPopup:b UserPreferencesEventRemindersCheckboxDefault:b ' +
    'UserPreferencesTaskRemindersCheckboxDefault:b UserPreferencesReminderSoundOff:b ' +
    'UserPreferencesDisableAllFeedsEmail:b UserPreferencesDisableFollowersEmail:b ' +
    'UserPreferencesDisableProfilePostEmail:b UserPreferencesDisableChangeCommentEmail:b ' +
    'UserPreferencesDisableLaterCommentEmail:b UserPreferencesDisProfPostCommentEmail:b ' +
    'UserPreferencesContentNoEmail:b UserPreferencesContentEmailAsAndWhen:b ' +
    'UserPreferencesApexPagesDeveloperMode:b UserPreferencesReceiveNoNotificationsAsApprover:b ' +
    'UserPreferencesReceiveNotificationsAsDelegatedApprover:b ' +
    'UserPreferencesHideCSNGetChatterMobileTask:b UserPreferencesDisableMentionsPostEmail:b ' +
    'UserPreferencesDisMentionsCommentEmail:b UserPreferencesHideCSNDesktopTask:b ' +
    'UserPreferencesHideChatterOnboardingSplash:b UserPreferencesHideSecondChatterOnboardingSplash:b ' +
    'UserPreferencesDisCommentAfterLikeEmail:b UserPreferencesDisableLikeEmail:b ' +
    'UserPreferencesSortFeedByComment:b UserPreferencesDisableMessageEmail:b ' +
    'UserPreferencesJigsawListUser:b UserPreferencesDisableBookmarkEmail:b ' +
    'UserPreferencesDisableSharePostEmail:b UserPreferencesEnableAutoSubForFeeds:b ' +
    'UserPreferencesDisableFileShareNotificationsForApi:b UserPreferencesShowTitleToExternalUsers:b ' +
    'UserPreferencesShowManagerToExternalUsers:b UserPreferencesShowEmailToExternalUsers:b ' +
    'UserPreferencesShowWorkPhoneToExternalUsers:b UserPreferencesShowMobilePhoneToExternalUsers:b ' +
    'UserPreferencesShowFaxToExternalUsers:b UserPreferencesShowStreetAddressToExternalUsers:b ' +
    'UserPreferencesShowCityToExternalUsers:b UserPreferencesShowStateToExternalUsers:b ' +
    'UserPreferencesShowPostalCodeToExternalUsers:b UserPreferencesShowCountryToExternalUsers:b ' +
    'UserPreferencesShowProfilePicToGuestUsers:b UserPreferencesShowTitleToGuestUsers:b ' +
    'UserPreferencesShowCityToGuestUsers:b UserPreferencesShowStateToGuestUsers:b ' +
    'UserPreferencesShowPostalCodeToGuestUsers:b UserPreferencesShowCountryToGuestUsers:b ' +
    'UserPreferencesShowForecastingChangeSignals:b UserPreferencesLiveAgentMiawSetupDeflection:b ' +
    'UserPreferencesHideS1BrowserUI:b UserPreferencesDisableEndorsementEmail:b ' +
    'UserPreferencesPathAssistantCollapsed:b UserPreferencesCacheDiagnostics:b ' +
    'UserPreferencesShowEmailToGuestUsers:b UserPreferencesShowManagerToGuestUsers:b ' +
    'UserPreferencesShowWorkPhoneToGuestUsers:b UserPreferencesShowMobilePhoneToGuestUsers:b ' +
    'UserPreferencesShowFaxToGuestUsers:b UserPreferencesShowStreetAddressToGuestUsers:b ' +
    'UserPreferencesLightningExperiencePreferred:b UserPreferencesPreviewLightning:b ' +
    'UserPreferencesHideEndUserOnboardingAssistantModal:b UserPreferencesHideLightningMigrationModal:b ' +
    'UserPreferencesHideSfxWelcomeMat:b UserPreferencesHideBiggerPhotoCallout:b ' +
    'UserPreferencesGlobalNavBarWTShown:b UserPreferencesGlobalNavGridMenuWTShown:b ' +
    'UserPreferencesCreateLEXAppsWTShown:b UserPreferencesFavoritesWTShown:b ' +
    'UserPreferencesRecordHomeSectionCollapseWTShown:b UserPreferencesRecordHomeReservedWTShown:b ' +
    'UserPreferencesFavoritesShowTopFavorites:b UserPreferencesExcludeMailAppAttachments:b ' +
    'UserPreferencesSuppressTaskSFXReminders:b UserPreferencesSuppressEventSFXReminders:b ' +
    'UserPreferencesPreviewCustomTheme:b UserPreferencesHasCelebrationBadge:b ' +
    'UserPreferencesUserDebugModePref:b UserPreferencesSRHOverrideActivities:b ' +
    'UserPreferencesNewLightningReportRunPageEnabled:b UserPreferencesReverseOpenActivitiesView:b ' +
    'UserPreferencesShowTerritoryTimeZoneShifts:b UserPreferencesHasSentWarningEmail:b ' +
    'UserPreferencesHasSentWarningEmail238:b UserPreferencesHasSentWarningEmail240:b ' +
    'UserPreferencesNativeEmailClient:b UserPreferencesShowForecastingRoundedAmounts:b ContactId ' +
    'AccountId CallCenterId Extension FederationIdentifier AboutMe FullPhotoUrl SmallPhotoUrl ' +
    'IsExtIndicatorVisible:b OutOfOfficeMessage MediumPhotoUrl DigestFrequency ' +
    'DefaultGroupNotificationFrequency JigsawImportLimitOverride:i WorkspaceId LastViewedDate:dt ' +
    'LastReferencedDate:dt BannerPhotoUrl SmallBannerPhotoUrl MediumBannerPhotoUrl IsProfilePhotoActive:b ' +
    'IndividualId',

};

/* Per-object facts: key prefixes (§9), labels, the name field, required fields, and the
 * references / read-only fields of each object. */
const OBJECT_INFO = {
  Account: {
    keyPrefix: '001', label: 'Account', labelPlural: 'Accounts', nameField: 'Name',
    required: ['Name'],
    refs: { ParentId: ['Account'], OperatingHoursId: ['OperatingHours'], DandbCompanyId: ['DandBCompany'] },
    readOnly: ['PhotoUrl', 'CleanStatus'],
  },
  Contact: {
    keyPrefix: '003', label: 'Contact', labelPlural: 'Contacts', nameField: 'Name',
    required: ['LastName'],
    refs: { AccountId: ['Account'], ReportsToId: ['Contact'], IndividualId: ['Individual'] },
    readOnly: ['Name', 'PhotoUrl', 'LastCURequestDate', 'LastCUUpdateDate', 'IsEmailBounced', 'CleanStatus'],
  },
  Lead: {
    keyPrefix: '00Q', label: 'Lead', labelPlural: 'Leads', nameField: 'Name',
    required: ['LastName', 'Company'],
    refs: {
      ConvertedAccountId: ['Account'], ConvertedContactId: ['Contact'], ConvertedOpportunityId: ['Opportunity'],
      IndividualId: ['Individual'], DandbCompanyId: ['DandBCompany'],
    },
    ownerTypes: ['Group', 'User'],
    readOnly: ['Name', 'PhotoUrl', 'IsConverted', 'ConvertedDate', 'ConvertedAccountId', 'ConvertedContactId',
      'ConvertedOpportunityId', 'CleanStatus'],
  },
  Opportunity: {
    keyPrefix: '006', label: 'Opportunity', labelPlural: 'Opportunities', nameField: 'Name',
    required: ['Name', 'StageName', 'CloseDate'],
    refs: {
      AccountId: ['Account'], CampaignId: ['Campaign'], Pricebook2Id: ['Pricebook2'], ContactId: ['Contact'],
      LastAmountChangedHistoryId: ['OpportunityHistory'], LastCloseDateChangedHistoryId: ['OpportunityHistory'],
    },
    readOnly: ['IsClosed', 'IsWon', 'ExpectedRevenue', 'HasOpportunityLineItem', 'LastStageChangeDate', 'PushCount',
      'FiscalQuarter', 'FiscalYear', 'Fiscal', 'HasOpenActivity', 'HasOverdueTask', 'LastAmountChangedHistoryId',
      'LastCloseDateChangedHistoryId'],
    createOnly: ['ContactId'],
  },
  Case: {
    keyPrefix: '500', label: 'Case', labelPlural: 'Cases', nameField: 'CaseNumber',
    required: [],
    refs: { ContactId: ['Contact'], AccountId: ['Account'], AssetId: ['Asset'], ParentId: ['Case'], SourceId: ['EmailMessage'] },
    ownerTypes: ['Group', 'User'],
    readOnly: ['CaseNumber', 'IsClosed', 'ClosedDate', 'ContactPhone', 'ContactMobile', 'ContactEmail', 'ContactFax'],
  },
  Task: {
    keyPrefix: '00T', label: 'Task', labelPlural: 'Tasks', nameField: 'Subject',
    required: [],
    refs: { WhoId: ['Contact', 'Lead'], WhatId: ['Account', 'Opportunity', 'Case'], AccountId: ['Account'], RecurrenceActivityId: ['Task'] },
    ownerTypes: ['Group', 'User'],
    readOnly: ['AccountId', 'IsClosed', 'IsArchived', 'IsHighPriority', 'RecurrenceActivityId', 'IsRecurrence', 'CompletedDateTime'],
  },
  Event: {
    keyPrefix: '00U', label: 'Event', labelPlural: 'Events', nameField: 'Subject',
    required: [],
    refs: {
      WhoId: ['Contact', 'Lead'], WhatId: ['Account', 'Opportunity', 'Case'], AccountId: ['Account'],
      RecurrenceActivityId: ['Event'], ServiceAppointmentId: ['ServiceAppointment'],
    },
    ownerTypes: ['Group', 'User'],
    readOnly: ['AccountId', 'IsChild', 'IsGroupEvent', 'GroupEventType', 'IsArchived', 'EndDate', 'RecurrenceActivityId',
      'IsRecurrence', 'IsRecurrence2Exclusion', 'Recurrence2PatternText', 'Recurrence2PatternVersion', 'IsRecurrence2',
      'IsRecurrence2Exception', 'Recurrence2PatternStartDate'],
  },
  OpportunityContactRole: {
    keyPrefix: '00K', label: 'Opportunity Contact Role', labelPlural: 'Opportunity Contact Role', nameField: null,
    required: ['OpportunityId', 'ContactId'],
    refs: { OpportunityId: ['Opportunity'], ContactId: ['Contact'] },
    readOnly: [],
    createOnly: ['OpportunityId'],
    noOwner: true,
  },
  OpportunityLineItem: {
    keyPrefix: '00k', label: 'Opportunity Product', labelPlural: 'Opportunity Product', nameField: 'Name',
    required: ['OpportunityId', 'PricebookEntryId', 'Quantity'],
    refs: { OpportunityId: ['Opportunity'], PricebookEntryId: ['PricebookEntry'], Product2Id: ['Product2'] },
    readOnly: ['Product2Id', 'ProductCode', 'Name', 'ListPrice'],
    createOnly: ['OpportunityId', 'PricebookEntryId'],
    noOwner: true,
  },
  User: {
    keyPrefix: '005', label: 'User', labelPlural: 'Users', nameField: 'Name',
    required: ['Username', 'LastName', 'Email', 'Alias', 'TimeZoneSidKey', 'LocaleSidKey', 'EmailEncodingKey',
      'ProfileId', 'LanguageLocaleKey'],
    refs: {
      UserRoleId: ['UserRole'], ProfileId: ['Profile'], DelegatedApproverId: ['Group', 'User'], ManagerId: ['User'],
      ContactId: ['Contact'], AccountId: ['Account'], CallCenterId: ['CallCenter'], IndividualId: ['Individual'],
    },
    readOnly: ['Name', 'UserType', 'LastLoginDate', 'LastPasswordChangeDate', 'NumberOfFailedLogins',
      'OfflineTrialExpirationDate', 'OfflinePdaTrialExpirationDate', 'FullPhotoUrl', 'SmallPhotoUrl', 'MediumPhotoUrl',
      'BannerPhotoUrl', 'SmallBannerPhotoUrl', 'MediumBannerPhotoUrl', 'IsProfilePhotoActive', 'IsExtIndicatorVisible',
      'OutOfOfficeMessage'],
    createOnly: ['ContactId'],
    notDeletable: true,
  },
};

/* Key prefixes of objects the fake does not store, so lookups can still be typed by prefix. */
const FOREIGN_PREFIXES = {
  Group: '00G', Profile: '00e', UserRole: '00E', Campaign: '701', Pricebook2: '01s', PricebookEntry: '01u',
  Product2: '01t', Asset: '02i', Individual: '0PK', OperatingHours: '0OH', DandBCompany: '06E',
  OpportunityHistory: '008', EmailMessage: '02s', ServiceAppointment: '08p', CallCenter: '04v',
};

/* Child relationships (describe childRelationships[]): parent -> [name, child object, field]. */
const CHILD_RELATIONSHIPS = {
  Account: [['ChildAccounts', 'Account', 'ParentId'], ['Contacts', 'Contact', 'AccountId'],
    ['Opportunities', 'Opportunity', 'AccountId'], ['Cases', 'Case', 'AccountId'],
    ['Tasks', 'Task', 'WhatId'], ['Events', 'Event', 'WhatId']],
  Contact: [['Cases', 'Case', 'ContactId'], ['OpportunityContactRoles', 'OpportunityContactRole', 'ContactId'],
    ['Tasks', 'Task', 'WhoId'], ['Events', 'Event', 'WhoId'], ['ReportsTo', 'Contact', 'ReportsToId']],
  Lead: [['Tasks', 'Task', 'WhoId'], ['Events', 'Event', 'WhoId']],
  Opportunity: [['OpportunityContactRoles', 'OpportunityContactRole', 'OpportunityId'],
    ['OpportunityLineItems', 'OpportunityLineItem', 'OpportunityId'], ['Tasks', 'Task', 'WhatId'],
    ['Events', 'Event', 'WhatId']],
  Case: [['Cases', 'Case', 'ParentId'], ['Tasks', 'Task', 'WhatId'], ['Events', 'Event', 'WhatId']],
  User: [],
  Task: [],
  Event: [],
  OpportunityContactRole: [],
  OpportunityLineItem: [],
};

/* Audit and bookkeeping fields: never writable through the API (§11). */
const SYSTEM_READONLY = new Set(['Id', 'IsDeleted', 'MasterRecordId', 'CreatedDate', 'CreatedById',
  'LastModifiedDate', 'LastModifiedById', 'SystemModstamp', 'LastActivityDate', 'LastViewedDate',
  'LastReferencedDate']);

const PICKLIST_FIELDS = new Set(['Type', 'Industry', 'Rating', 'Ownership', 'AccountSource', 'LeadSource',
  'StageName', 'ForecastCategory', 'ForecastCategoryName', 'Status', 'Priority', 'Origin', 'Reason',
  'Salutation', 'CleanStatus', 'Role', 'CallType', 'TaskSubtype', 'EventSubtype', 'ShowAs', 'TimeZoneSidKey',
  'LocaleSidKey', 'EmailEncodingKey', 'LanguageLocaleKey', 'UserType', 'RecurrenceType', 'RecurrenceInstance',
  'RecurrenceMonthOfYear', 'RecurrenceTimeZoneSidKey', 'RecurrenceRegeneratedType', 'DigestFrequency',
  'DefaultGroupNotificationFrequency', 'BillingGeocodeAccuracy', 'ShippingGeocodeAccuracy',
  'MailingGeocodeAccuracy', 'OtherGeocodeAccuracy', 'GeocodeAccuracy', 'CustomerPriority__c', 'SLA__c',
  'Active__c', 'UpsellOpportunity__c', 'Level__c', 'ProductInterest__c', 'Primary__c',
  'DeliveryInstallationStatus__c', 'SLAViolation__c', 'Product__c', 'PotentialLiability__c']);
const CURRENCY_FIELDS = new Set(['AnnualRevenue', 'Amount', 'ExpectedRevenue', 'UnitPrice', 'ListPrice', 'TotalPrice']);
const PERCENT_FIELDS = new Set(['Probability']);

/* Opportunity stages drive IsClosed/IsWon/Probability/ForecastCategory, as in a default org. */
const OPPORTUNITY_STAGES = [
  ['Prospecting', 10, 'Pipeline', false, false], ['Qualification', 10, 'Pipeline', false, false],
  ['Needs Analysis', 20, 'Pipeline', false, false], ['Value Proposition', 50, 'Pipeline', false, false],
  ['Id. Decision Makers', 60, 'Pipeline', false, false], ['Perception Analysis', 70, 'Pipeline', false, false],
  ['Proposal/Price Quote', 75, 'Pipeline', false, false], ['Negotiation/Review', 90, 'Pipeline', false, false],
  ['Closed Won', 100, 'Closed', true, true], ['Closed Lost', 0, 'Omitted', true, false],
];
const FORECAST_NAMES = { Pipeline: 'Pipeline', Closed: 'Closed', Omitted: 'Omitted' };

const PICKLIST_VALUES = {
  'Opportunity.StageName': OPPORTUNITY_STAGES.map((s) => s[0]),
  'Lead.Status': ['Open - Not Contacted', 'Working - Contacted', 'Closed - Converted', 'Closed - Not Converted'],
  'Case.Status': ['New', 'Working', 'Escalated', 'Closed'],
  'Case.Priority': ['High', 'Medium', 'Low'],
  'Case.Origin': ['Phone', 'Email', 'Web'],
  'Task.Status': ['Not Started', 'In Progress', 'Completed', 'Waiting on someone else', 'Deferred'],
  'Task.Priority': ['High', 'Normal', 'Low'],
  'Account.Type': ['Prospect', 'Customer - Direct', 'Customer - Channel', 'Channel Partner / Reseller',
    'Installation Partner', 'Technology Partner', 'Other'],
  'Account.Rating': ['Hot', 'Warm', 'Cold'],
};

/* Values filled in on create when the body leaves them out (defaultedOnCreate). */
const CREATE_DEFAULTS = {
  Lead: { Status: 'Open - Not Contacted' },
  Case: { Status: 'New', Priority: 'Medium' },
  Task: { Status: 'Not Started', Priority: 'Normal' },
  User: { IsActive: true, UserType: 'Standard' },
};

/* Salesforce field type from the OAS JSON type plus naming conventions of the standard objects. */
function sfType(obj, name, code, info) {
  if (name === 'Id') return 'id';
  if (info.refs[name] || ['OwnerId', 'CreatedById', 'LastModifiedById', 'MasterRecordId'].includes(name)) return 'reference';
  switch (code) {
    case 'b': return 'boolean';
    case 'i': return 'int';
    case 'd': return 'date';
    case 'dt': return 'datetime';
    case 'o': return 'address';
    case 'n':
      if (CURRENCY_FIELDS.has(name)) return 'currency';
      if (PERCENT_FIELDS.has(name)) return 'percent';
      return 'double';
    default: break;
  }
  if (PICKLIST_FIELDS.has(name)) return 'picklist';
  if (/(^|[a-z])Email$/.test(name)) return 'email';
  if (/(Phone|Fax|Mobile)$/.test(name)) return 'phone';
  if (/(Website|Url)$/.test(name)) return 'url';
  if (/(Description|Comments|Street|Signature|AboutMe)$/.test(name)) return 'textarea';
  return 'string';
}

function fieldLength(name, type) {
  if (type === 'id' || type === 'reference') return 18;
  if (type === 'textarea') return /Street$/.test(name) ? 255 : 32000;
  if (!['string', 'picklist', 'email', 'phone', 'url', 'combobox'].includes(type)) return 0;
  if (type === 'phone') return 40;
  if (type === 'email') return 80;
  if (name === 'FirstName' || name === 'Salutation') return 40;
  if (name === 'LastName') return 80;
  if (/(City)$/.test(name)) return 40;
  if (/(PostalCode)$/.test(name)) return 20;
  if (/(State|Country)$/.test(name)) return 80;
  if (name === 'CaseNumber') return 30;
  return 255;
}

function referenceTargets(obj, name, info) {
  if (info.refs[name]) return info.refs[name];
  if (name === 'OwnerId') return info.ownerTypes || ['User'];
  if (name === 'CreatedById' || name === 'LastModifiedById') return ['User'];
  if (name === 'MasterRecordId') return [obj];
  return [];
}

/* One describe field built from the OAS entry and the tables above. */
function buildField(obj, name, code, info) {
  const type = sfType(obj, name, code, info);
  const readOnly = SYSTEM_READONLY.has(name) || info.readOnly.includes(name) || type === 'address' ||
    (info.noOwner && name === 'OwnerId');
  const createOnly = (info.createOnly || []).includes(name);
  const required = info.required.includes(name);
  const defaulted = type === 'boolean' || name === 'OwnerId' || SYSTEM_READONLY.has(name) ||
    Boolean(CREATE_DEFAULTS[obj] && CREATE_DEFAULTS[obj][name] !== undefined) ||
    (obj === 'Opportunity' && ['Probability', 'ForecastCategory', 'ForecastCategoryName'].includes(name));
  const refTo = type === 'reference' ? referenceTargets(obj, name, info) : [];
  const nameField = name === info.nameField;
  return {
    name,
    label: labelOf(name),
    type,
    soapType: soapTypeOf(type),
    length: fieldLength(name, type),
    precision: ['currency', 'double', 'percent'].includes(type) ? 18 : 0,
    scale: ['currency', 'percent'].includes(type) ? 2 : (type === 'double' ? (/(Latitude|Longitude)$/.test(name) ? 15 : 2) : 0),
    digits: type === 'int' ? 9 : 0,
    byteLength: fieldLength(name, type) * 3,
    nillable: !(type === 'boolean' || type === 'id' || required || nameField || name === 'OwnerId' ||
      ['CreatedDate', 'CreatedById', 'LastModifiedDate', 'LastModifiedById', 'SystemModstamp'].includes(name)),
    createable: !readOnly,
    updateable: !readOnly && !createOnly,
    defaultedOnCreate: defaulted,
    calculated: ['ExpectedRevenue', 'ContactPhone', 'ContactMobile', 'ContactEmail', 'ContactFax', 'Name'].includes(name) &&
      readOnly && type !== 'address',
    autoNumber: name === 'CaseNumber',
    externalId: false,
    idLookup: name === 'Id' || nameField || name === 'Email' || name === 'Username' || name === 'CaseNumber',
    unique: name === 'Id' || name === 'Username',
    caseSensitive: false,
    custom: /__c$/.test(name),
    referenceTo: refTo,
    relationshipName: type === 'reference' ? relationshipNameOf(name) : null,
    polymorphicForeignKey: refTo.length > 1,
    namePointing: refTo.length > 1,
    compoundFieldName: compoundOf(obj, name),
    picklistValues: (PICKLIST_VALUES[`${obj}.${name}`] || []).map((v, i) => ({
      active: true, defaultValue: i === 0 && Boolean(CREATE_DEFAULTS[obj] && CREATE_DEFAULTS[obj][name] === v),
      label: v, validFor: null, value: v,
    })),
    restrictedPicklist: false,
    filterable: type !== 'textarea' || /Street$/.test(name),
    sortable: type !== 'textarea' && type !== 'address',
    groupable: !['textarea', 'address', 'double', 'currency', 'percent', 'datetime'].includes(type),
    aggregatable: type !== 'textarea' && type !== 'address',
  };
}

function labelOf(name) {
  const base = name.replace(/__c$/, '').replace(/Id$/, name === 'Id' ? 'Id' : ' ID');
  return base.replace(/([a-z])([A-Z])/g, '$1 $2').replace(/_/g, ' ').trim();
}

function soapTypeOf(type) {
  return {
    id: 'tns:ID', reference: 'tns:ID', boolean: 'xsd:boolean', int: 'xsd:int', double: 'xsd:double',
    currency: 'xsd:double', percent: 'xsd:double', date: 'xsd:date', datetime: 'xsd:dateTime', address: 'urn:address',
  }[type] || 'xsd:string';
}

/* Lookup field -> relationship name: AccountId -> Account, Foo__c -> Foo__r. */
function relationshipNameOf(name) {
  if (/__c$/.test(name)) return name.replace(/__c$/, '__r');
  return name.replace(/Id$/, '');
}

/* Components of compound address fields point at their compound (BillingCity -> BillingAddress). */
function compoundOf(obj, name) {
  const m = /^(Billing|Shipping|Mailing|Other)?(Street|City|State|PostalCode|Country|Latitude|Longitude|GeocodeAccuracy)$/.exec(name);
  if (!m) return null;
  const compound = (m[1] || '') + 'Address';
  return OAS_FIELDS[obj].split(/\s+/).some((f) => f.split(':')[0] === compound) ? compound : null;
}

const ADDRESS_PARTS = [['street', 'Street'], ['city', 'City'], ['state', 'State'], ['postalCode', 'PostalCode'],
  ['country', 'Country'], ['latitude', 'Latitude'], ['longitude', 'Longitude'], ['geocodeAccuracy', 'GeocodeAccuracy']];

/* Custom fields seeded by tests: {name:'Ext__c', type:'string', externalId:true, unique, length, referenceTo, relationshipName, childRelationshipName}. */
const CUSTOM_TYPES = {
  string: 'string', text: 'string', textarea: 'textarea', number: 'double', double: 'double', int: 'int',
  integer: 'int', currency: 'currency', percent: 'percent', boolean: 'boolean', checkbox: 'boolean', date: 'date',
  datetime: 'datetime', email: 'email', phone: 'phone', url: 'url', picklist: 'picklist', multipicklist: 'multipicklist',
  reference: 'reference', lookup: 'reference',
};

function buildCustomField(obj, spec) {
  if (!spec || typeof spec.name !== 'string' || !/^[A-Za-z][A-Za-z0-9_]*__c$/.test(spec.name)) {
    throw new Error(`salesforce seed: custom field on ${obj} needs a name ending in __c, got ${JSON.stringify(spec && spec.name)}`);
  }
  const type = CUSTOM_TYPES[String(spec.type || 'string').toLowerCase()];
  if (!type) throw new Error(`salesforce seed: unknown custom field type ${spec.type} for ${obj}.${spec.name}`);
  const base = buildField(obj, spec.name, 's', { refs: {}, readOnly: [], required: [], nameField: null });
  const refTo = type === 'reference' ? [].concat(spec.referenceTo || []) : [];
  if (type === 'reference' && !refTo.length) throw new Error(`salesforce seed: ${obj}.${spec.name} needs referenceTo`);
  return {
    ...base,
    label: spec.label || base.label,
    type,
    soapType: soapTypeOf(type),
    length: spec.length || fieldLength(spec.name, type === 'multipicklist' ? 'string' : type) || (type === 'multipicklist' ? 4099 : 0),
    externalId: Boolean(spec.externalId),
    idLookup: Boolean(spec.externalId),
    unique: Boolean(spec.unique),
    caseSensitive: Boolean(spec.caseSensitive),
    nillable: !spec.required && type !== 'boolean',
    defaultedOnCreate: type === 'boolean',
    custom: true,
    referenceTo: refTo,
    relationshipName: type === 'reference' ? (spec.relationshipName || relationshipNameOf(spec.name)) : null,
    childRelationshipName: spec.childRelationshipName || null,
    polymorphicForeignKey: false,
    picklistValues: (spec.picklistValues || []).map((v) => ({ active: true, defaultValue: false, label: v, validFor: null, value: v })),
    requiredOnCreate: Boolean(spec.required),
  };
}

/* ------------------------------------------------------------------------------------------
 * Schema registry: describe data per object, case-insensitive lookups (Salesforce resolves
 * object and field names case-insensitively in URLs, bodies and SOQL).
 * ------------------------------------------------------------------------------------------ */

function createSchema() {
  const objects = new Map();       /* lower-case name -> meta */
  for (const [name, info] of Object.entries(OBJECT_INFO)) {
    const fields = OAS_FIELDS[name].split(/\s+/).filter(Boolean).map((tok) => {
      const [fname, code] = tok.split(':');
      return buildField(name, fname, code || 's', info);
    });
    objects.set(name.toLowerCase(), makeMeta(name, info, fields));
  }
  return {
    objects,
    get(name) { return typeof name === 'string' ? objects.get(name.toLowerCase()) || null : null; },
    byPrefix(id) { for (const m of objects.values()) if (id.startsWith(m.keyPrefix)) return m; return null; },
    addCustomField(objName, spec) {
      const meta = this.get(objName);
      if (!meta) throw new Error(`salesforce seed: customFields for unknown object ${objName}`);
      const f = buildCustomField(meta.name, spec);
      if (meta.fieldMap.has(f.name.toLowerCase())) meta.fields = meta.fields.filter((x) => x.name.toLowerCase() !== f.name.toLowerCase());
      meta.fields.push(f);
      meta.fieldMap.set(f.name.toLowerCase(), f);
      if (f.requiredOnCreate) meta.required.push(f.name);
    },
    /* Child relationships from the static table plus custom lookups with childRelationshipName. */
    childRelationships(parentName) {
      const out = (CHILD_RELATIONSHIPS[parentName] || []).map(([rel, child, field]) => ({ rel, child, field, cascadeDelete: false }));
      for (const meta of objects.values()) {
        for (const f of meta.fields) {
          if (f.custom && f.type === 'reference' && f.referenceTo.includes(parentName)) {
            out.push({ rel: f.childRelationshipName || `${meta.name}s__r`, child: meta.name, field: f.name, cascadeDelete: false });
          }
        }
      }
      return out;
    },
  };
}

function makeMeta(name, info, fields) {
  return {
    name,
    keyPrefix: info.keyPrefix,
    label: info.label,
    labelPlural: info.labelPlural,
    nameField: info.nameField,
    required: [...info.required],
    notDeletable: Boolean(info.notDeletable),
    fields,
    fieldMap: new Map(fields.map((f) => [f.name.toLowerCase(), f])),
    field(n) { return typeof n === 'string' ? this.fieldMap.get(n.toLowerCase()) || null : null; },
  };
}

/* ------------------------------------------------------------------------------------------
 * Errors. One internal shape; single-record answers render [{message,errorCode,fields}],
 * collections render {statusCode,message,fields} (§7.4, §10).
 * ------------------------------------------------------------------------------------------ */

class SfError extends Error {
  constructor(status, errorCode, message, fields) {
    super(message);
    this.status = status;
    this.errorCode = errorCode;
    this.fields = fields;             /* undefined: the real API omits "fields" for this error */
  }
  toBody() {
    const e = { message: this.message, errorCode: this.errorCode };
    if (this.fields !== undefined) e.fields = this.fields;
    return [e];
  }
  toCollectionError() {
    return { statusCode: this.errorCode, message: this.message, fields: this.fields || [] };
  }
}

const notFound = () => new SfError(404, 'NOT_FOUND', 'The requested resource does not exist');

/* ------------------------------------------------------------------------------------------
 * Values: what a write may carry and how it is stored (§4 "Values").
 * Dates 'YYYY-MM-DD'; datetimes '2024-05-14T10:03:11.000+0000'; numbers as numbers.
 * ------------------------------------------------------------------------------------------ */

function formatDateTime(ms) {
  return new Date(ms).toISOString().replace('Z', '+0000');
}

function httpDate(ms) {
  return new Date(ms).toUTCString();
}

/* Parses an ISO datetime as Salesforce accepts it ('Z', '+0000', '+00:00', optional millis). */
function parseDateTime(s) {
  if (typeof s !== 'string') return NaN;
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?)(Z|[+-]\d{2}:?\d{2})?$/.exec(s);
  if (!m) return NaN;
  let zone = m[3] || 'Z';
  if (/^[+-]\d{4}$/.test(zone)) zone = `${zone.slice(0, 3)}:${zone.slice(3)}`;
  return Date.parse(`${m[1]}T${m[2]}${zone}`);
}

function parseDateOnly(s) {
  if (typeof s !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(s)) return NaN;
  const ms = Date.parse(`${s}T00:00:00Z`);
  return Number.isNaN(ms) || new Date(ms).toISOString().slice(0, 10) !== s ? NaN : ms;
}

function jsonParserError(type, value) {
  const kind = typeof value === 'number' ? 'VALUE_NUMBER_INT' : typeof value === 'boolean' ? `VALUE_${String(value).toUpperCase()}`
    : Array.isArray(value) ? 'START_ARRAY' : value && typeof value === 'object' ? 'START_OBJECT' : 'VALUE_STRING';
  const shown = typeof value === 'object' ? '' : ` value ${value}`;
  return new SfError(400, 'JSON_PARSER_ERROR',
    `Cannot deserialize instance of ${type} from ${kind}${shown} or request may be missing a required field`, undefined);
}

/*
 * Converts one written value to its stored form, or throws the error Salesforce gives.
 * schema is needed to check that lookups carry ids of the right object type.
 */
function coerceValue(schema, meta, f, value) {
  if (value === null) return null;
  switch (f.type) {
    case 'boolean':
      if (typeof value === 'boolean') return value;
      if (value === 'true' || value === 'false') return value === 'true';
      throw jsonParserError('boolean', value);
    case 'int':
    case 'double':
    case 'currency':
    case 'percent': {
      const n = typeof value === 'number' ? value : (typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN);
      if (!Number.isFinite(n)) throw jsonParserError(f.type === 'int' ? 'int' : 'double', value);
      if (f.type === 'int' && !Number.isInteger(n)) throw jsonParserError('int', value);
      return n;
    }
    case 'date': {
      if (typeof value !== 'string') throw jsonParserError('date', value);
      if (!Number.isNaN(parseDateOnly(value))) return value;
      const ms = parseDateTime(value);
      if (Number.isNaN(ms)) throw jsonParserError('date', value);
      return new Date(ms).toISOString().slice(0, 10);
    }
    case 'datetime': {
      if (typeof value !== 'string') throw jsonParserError('datetime', value);
      let ms = parseDateTime(value);
      if (Number.isNaN(ms)) ms = parseDateOnly(value);
      if (Number.isNaN(ms)) throw jsonParserError('datetime', value);
      return formatDateTime(ms);
    }
    case 'reference':
    case 'id':
      return coerceReference(schema, meta, f, value);
    default:
      break;
  }
  if (typeof value === 'number' || typeof value === 'boolean') value = String(value);
  if (typeof value !== 'string') throw jsonParserError('String', value);
  if (value === '') return null;           /* Salesforce stores empty text as null */
  if (f.length && value.length > f.length) {
    throw new SfError(400, 'STRING_TOO_LONG', `${f.label}: data value too large: ${value} (max length=${f.length})`, [f.name]);
  }
  if (f.type === 'email' && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(value)) {
    throw new SfError(400, 'INVALID_EMAIL_ADDRESS', `${f.label}: invalid email address: ${value}`, [f.name]);
  }
  return value;
}

/* A lookup must hold an id of one of its target types (§9, §10 MALFORMED_ID). */
function coerceReference(schema, meta, f, value) {
  if (typeof value !== 'string') throw jsonParserError('String', value);
  if (value === '') return null;
  const id = canonicalId(value);
  const targets = f.referenceTo.map((t) => (schema.get(t) ? schema.get(t).keyPrefix : FOREIGN_PREFIXES[t])).filter(Boolean);
  if (!id || (targets.length && !targets.some((p) => id.startsWith(p)))) {
    throw new SfError(400, 'MALFORMED_ID', `${f.label}: id value of incorrect type: ${value}`, [f.name]);
  }
  return id;
}

/* ------------------------------------------------------------------------------------------
 * Store: live records per object, the recycle bin, id counters. Everything a rollback must
 * undo lives in `data`, so allOrNone can snapshot and restore it whole.
 * ------------------------------------------------------------------------------------------ */

function emptyData() {
  return {
    live: {},          /* object name -> { id -> record }; ids are non-numeric keys, so insertion order is kept */
    bin: {},           /* object name -> { id -> { record, deletedDate } } */
    counters: {},      /* key prefix -> last counter */
    caseNumber: 1000,
  };
}

function createStore(fake, schema) {
  const store = {
    data: emptyData(),
    apiUsage: 0,
    cursors: new Map(),
    cursorSeq: 0,
    currentUserId: null,
    schemaChangedAt: fake.now(),

    live(obj) { return this.data.live[obj] || (this.data.live[obj] = {}); },
    bin(obj) { return this.data.bin[obj] || (this.data.bin[obj] = {}); },
    nextId(meta) {
      const n = (this.data.counters[meta.keyPrefix] || 0) + 1;
      this.data.counters[meta.keyPrefix] = n;
      return makeId(meta.keyPrefix, n);
    },
    /* Live record by canonical id, any object (typed by key prefix). */
    find(id) {
      const meta = schema.byPrefix(id);
      if (!meta) return null;
      const rec = this.live(meta.name)[id];
      return rec ? { meta, rec } : null;
    },
    snapshot() { return structuredClone(this.data); },
    restore(snap) { this.data = snap; },
  };
  return store;
}

/* ------------------------------------------------------------------------------------------
 * DML: create, update, delete, upsert. All validation errors are SfErrors; nothing is
 * written unless the whole record is valid.
 * ------------------------------------------------------------------------------------------ */

function createDml(fake, schema, store) {
  /* Resolves body keys to fields and converts values; checks writability (§4, §10). */
  function normalizeBody(meta, body, mode, opts) {
    if (!body || typeof body !== 'object' || Array.isArray(body)) {
      throw jsonParserError(meta.name, body === null ? 'null' : body);
    }
    const values = {};
    const unknown = [];
    const notWritable = [];
    for (const [key, value] of Object.entries(body)) {
      if (key === 'attributes') continue;
      const f = meta.field(key);
      if (!f) { unknown.push(key); continue; }
      if (f.name === 'Id') {
        if (mode === 'create') throw new SfError(400, 'INVALID_FIELD', opts.collection ? 'cannot specify Id in an insert call' : 'The Id field should not be specified in the sobject data.', opts.collection ? ['Id'] : undefined);
        if (canonicalId(String(value)) === opts.id) continue;   /* matching Id in an update body is harmless */
        notWritable.push(f.name);
        continue;
      }
      const writable = opts.seed || (mode === 'create' ? f.createable : f.updateable);
      if (!writable) { notWritable.push(f.name); continue; }
      values[f.name] = value;
    }
    if (unknown.length) {
      throw new SfError(400, 'INVALID_FIELD', `No such column '${unknown[0]}' on sobject of type ${meta.name}`, undefined);
    }
    if (notWritable.length) {
      throw new SfError(400, 'INVALID_FIELD_FOR_INSERT_UPDATE',
        `Unable to create/update fields: ${notWritable.join(', ')}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.`,
        notWritable);
    }
    for (const name of Object.keys(values)) {
      values[name] = coerceValue(schema, meta, meta.field(name), values[name]);
    }
    if (!opts.seed) checkReferencesExist(meta, values);
    return values;
  }

  /* A lookup to an object the fake stores must point at a live record. */
  function checkReferencesExist(meta, values) {
    for (const [name, v] of Object.entries(values)) {
      const f = meta.field(name);
      if (f.type !== 'reference' || v === null) continue;
      const target = schema.byPrefix(v);
      if (target && !store.live(target.name)[v]) {
        throw new SfError(400, 'INVALID_CROSS_REFERENCE_KEY', `invalid cross reference id`, [f.name]);
      }
    }
  }

  function checkRequired(meta, rec) {
    const missing = meta.required.filter((n) => rec[n] === null || rec[n] === undefined);
    if (missing.length) {
      throw new SfError(400, 'REQUIRED_FIELD_MISSING', `Required fields are missing: [${missing.join(', ')}]`, missing);
    }
  }

  /* Unique custom fields (external ids marked unique) refuse a second record with the value. */
  function checkUnique(meta, rec) {
    for (const f of meta.fields) {
      if (!f.unique || f.name === 'Id' || rec[f.name] === null || rec[f.name] === undefined) continue;
      const clash = Object.values(store.live(meta.name)).find((r) => r.Id !== rec.Id && sameText(r[f.name], rec[f.name], f));
      if (clash) {
        throw new SfError(400, 'DUPLICATE_VALUE', `duplicate value found: ${f.name} duplicates value on record with id: ${clash.Id}`, [f.name]);
      }
    }
  }

  /* Fields Salesforce computes itself: names, Opportunity stage effects, closed flags. */
  function applyDerived(meta, rec, values, mode) {
    if (['Contact', 'Lead', 'User'].includes(meta.name)) {
      rec.Name = [rec.FirstName, rec.LastName].filter((x) => x).join(' ') || null;
    }
    if (meta.name === 'Opportunity') {
      const stage = OPPORTUNITY_STAGES.find((s) => s[0] === rec.StageName);
      if (stage && ('StageName' in values || mode === 'create')) {
        if (!('Probability' in values)) rec.Probability = stage[1];
        if (!('ForecastCategoryName' in values)) rec.ForecastCategoryName = FORECAST_NAMES[stage[2]];
        if (!('ForecastCategory' in values)) rec.ForecastCategory = stage[2];
        rec.IsClosed = stage[3];
        rec.IsWon = stage[4];
        rec.LastStageChangeDate = rec.SystemModstamp;
      } else if (!stage && mode === 'create') {
        rec.IsClosed = false;
        rec.IsWon = false;
      }
      rec.ExpectedRevenue = typeof rec.Amount === 'number' && typeof rec.Probability === 'number'
        ? Math.round(rec.Amount * rec.Probability) / 100 : null;
      if (rec.CloseDate) {
        const d = new Date(`${rec.CloseDate}T00:00:00Z`);
        rec.FiscalYear = d.getUTCFullYear();
        rec.FiscalQuarter = Math.floor(d.getUTCMonth() / 3) + 1;
        rec.Fiscal = `${rec.FiscalYear} ${rec.FiscalQuarter}`;
      }
    }
    if (meta.name === 'Case') {
      const closed = rec.Status === 'Closed';
      if (closed && !rec.IsClosed) rec.ClosedDate = rec.SystemModstamp;
      if (!closed) rec.ClosedDate = null;
      rec.IsClosed = closed;
      if (mode === 'create' && !rec.CaseNumber) rec.CaseNumber = String(++store.data.caseNumber).padStart(8, '0');
      const contact = rec.ContactId && store.live('Contact')[rec.ContactId];
      rec.ContactEmail = contact ? contact.Email || null : null;
      rec.ContactPhone = contact ? contact.Phone || null : null;
    }
    if (meta.name === 'Task') {
      rec.IsClosed = rec.Status === 'Completed';
      if (rec.IsClosed && !rec.CompletedDateTime) rec.CompletedDateTime = rec.SystemModstamp;
    }
    if (meta.name === 'Task' || meta.name === 'Event') {
      rec.AccountId = activityAccount(rec);
    }
  }

  /* Task/Event.AccountId follows WhatId (an Account) or the WhoId contact's account. */
  function activityAccount(rec) {
    if (rec.WhatId && rec.WhatId.startsWith('001')) return rec.WhatId;
    if (rec.WhatId) {
      const what = store.find(rec.WhatId);
      if (what && what.rec.AccountId) return what.rec.AccountId;
    }
    if (rec.WhoId && rec.WhoId.startsWith('003')) {
      const who = store.live('Contact')[rec.WhoId];
      if (who && who.AccountId) return who.AccountId;
    }
    return null;
  }

  function stamp(rec, now, created) {
    const ts = formatDateTime(now);
    if (created) {
      if (!rec.CreatedDate) rec.CreatedDate = ts;
      if (!rec.CreatedById) rec.CreatedById = store.currentUserId;
    }
    if (!created || !rec.LastModifiedDate) rec.LastModifiedDate = ts;
    if (!created || !rec.LastModifiedById) rec.LastModifiedById = store.currentUserId;
    if (!created || !rec.SystemModstamp) rec.SystemModstamp = ts;
  }

  /* Creates a record; opts.seed allows system fields and a given Id. Returns the new id. */
  function create(meta, body, opts = {}) {
    const given = opts.seed && body && (body.Id || body.id);
    const copy = opts.seed && body ? Object.fromEntries(Object.entries(body).filter(([k]) => k.toLowerCase() !== 'id')) : body;
    const values = normalizeBody(meta, copy, 'create', opts);
    let id;
    if (given) {
      id = canonicalId(String(given));
      if (!id || !id.startsWith(meta.keyPrefix)) throw new Error(`salesforce seed: bad ${meta.name} Id ${given}`);
      if (store.live(meta.name)[id]) throw new Error(`salesforce seed: duplicate ${meta.name} Id ${given}`);
    } else {
      id = store.nextId(meta);
    }
    const rec = { Id: id };
    for (const f of meta.fields) if (f.type !== 'address' && f.name !== 'Id') rec[f.name] = null;
    for (const f of meta.fields) if (f.type === 'boolean') rec[f.name] = false;
    Object.assign(rec, CREATE_DEFAULTS[meta.name] || {});
    if (meta.field('OwnerId') && meta.field('OwnerId').createable) rec.OwnerId = store.currentUserId;
    Object.assign(rec, values);
    rec.IsDeleted = false;
    stamp(rec, fake.now(), true);
    applyDerived(meta, rec, values, 'create');
    if (!opts.seed) {
      checkRequired(meta, rec);
      checkUnique(meta, rec);
    }
    store.live(meta.name)[id] = rec;
    return id;
  }

  /* Live record or the 404 Salesforce gives for deleted / unknown ids (§4). */
  function getLive(meta, id) {
    const rec = store.live(meta.name)[id];
    if (rec) return rec;
    if (store.bin(meta.name)[id]) throw new SfError(404, 'ENTITY_IS_DELETED', 'entity is deleted', []);
    throw notFound();
  }

  function update(meta, id, body, opts = {}) {
    const rec = getLive(meta, id);
    const values = normalizeBody(meta, body, 'update', { ...opts, id });
    const next = { ...rec, ...values };
    stamp(next, fake.now(), false);
    applyDerived(meta, next, values, 'update');
    checkRequired(meta, next);
    checkUnique(meta, next);
    store.live(meta.name)[id] = next;
  }

  function destroy(meta, id) {
    if (meta.notDeletable) {
      throw new SfError(405, 'METHOD_NOT_ALLOWED', "HTTP Method 'DELETE' not allowed. Allowed are HEAD,GET,PATCH");
    }
    const rec = getLive(meta, id);
    delete store.live(meta.name)[id];
    const now = fake.now();
    const gone = { ...rec, IsDeleted: true, SystemModstamp: formatDateTime(now) };
    store.bin(meta.name)[id] = { record: gone, deletedDate: formatDateTime(now) };
  }

  /* Records whose external-id field equals value (text compares case-insensitively). */
  function findByExternal(meta, f, value) {
    if (f.name === 'Id') {
      const id = canonicalId(value);
      return id && store.live(meta.name)[id] ? [store.live(meta.name)[id]] : [];
    }
    return Object.values(store.live(meta.name)).filter((r) => r[f.name] !== null && r[f.name] !== undefined &&
      sameText(r[f.name], value, f));
  }

  /*
   * Upsert by external id (§4): 0 matches -> create (created:true), 1 -> update, >1 -> 300.
   * The body may repeat the external id only with the same value.
   */
  function upsert(meta, f, value, body, opts = {}) {
    if (body && typeof body === 'object' && !Array.isArray(body)) {
      const key = Object.keys(body).find((k) => k.toLowerCase() === f.name.toLowerCase());
      if (key !== undefined && f.name !== 'Id' && !sameText(body[key], value, f)) {
        throw new SfError(400, 'INVALID_FIELD', `The value of the external ID field (${f.name}) in the body does not match the value in the URL`, [f.name]);
      }
    }
    const matches = findByExternal(meta, f, value);
    if (matches.length > 1) {
      const err = new SfError(300, 'MULTIPLE_CHOICES', 'Multiple records found');
      err.matches = matches.map((r) => r.Id);
      throw err;
    }
    if (matches.length === 1) {
      const clean = { ...body };
      for (const k of Object.keys(clean)) if (k.toLowerCase() === 'id' || k.toLowerCase() === f.name.toLowerCase()) delete clean[k];
      update(meta, matches[0].Id, clean, opts);
      return { id: matches[0].Id, created: false };
    }
    if (opts.updateOnly) throw notFound();
    const withKey = { ...body };
    for (const k of Object.keys(withKey)) if (k.toLowerCase() === 'id') delete withKey[k];
    if (f.name !== 'Id') withKey[f.name] = value;
    else if (value !== null && value !== '') throw notFound();
    return { id: create(meta, withKey, opts), created: true };
  }

  return { create, update, destroy, upsert, getLive, findByExternal };
}

function sameText(a, b, f) {
  if (f && ['double', 'int', 'currency', 'percent'].includes(f.type)) return Number(a) === Number(b);
  if (f && f.caseSensitive) return String(a) === String(b);
  return String(a).toLowerCase() === String(b).toLowerCase();
}

/* ------------------------------------------------------------------------------------------
 * Rendering records as the API returns them.
 * ------------------------------------------------------------------------------------------ */

function recordUrl(ver, obj, id) {
  return `/services/data/v${ver}/sobjects/${obj}/${id}`;
}

function attributesOf(ver, obj, id) {
  return { type: obj, url: recordUrl(ver, obj, id) };
}

/* Compound address: an object of its components, or null when every component is null. */
function addressOf(rec, compound) {
  const prefix = compound.replace(/Address$/, '');
  const out = {};
  let any = false;
  for (const [key, suffix] of ADDRESS_PARTS) {
    const v = rec[prefix + suffix];
    out[key] = v === undefined ? null : v;
    if (out[key] !== null) any = true;
  }
  return any ? out : null;
}

function fieldValue(rec, f) {
  if (f.type === 'address') return addressOf(rec, f.name);
  return rec[f.name] === undefined ? null : rec[f.name];
}

/* ------------------------------------------------------------------------------------------
 * SOQL (§6.1, §12): parsed with @jetstreamapp/soql-parser-js, resolved against describe,
 * evaluated over the store. Unsupported constructs are refused with MALFORMED_QUERY that
 * names the fake as the limitation, so a test never passes on a silently wrong answer.
 * ------------------------------------------------------------------------------------------ */

const DAY_MS = 86400000;

/* Column (1-based) of the first whole-word occurrence of token in q, for error messages. */
function columnOf(q, token) {
  if (!token) return q.length + 1;
  const re = new RegExp(`(^|[^A-Za-z0-9_.])(${String(token).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')})(?![A-Za-z0-9_])`, 'i');
  const m = re.exec(q);
  return m ? m.index + m[1].length + 1 : 1;
}

function queryError(code, q, token, text) {
  const col = columnOf(q, token);
  return new SfError(400, code, `\n${q}\n${' '.repeat(col - 1)}^\nERROR at Row:1:Column:${col}\n${text}`);
}

function noSuchColumn(q, token, obj) {
  return queryError('INVALID_FIELD', q, token,
    `No such column '${token}' on entity '${obj}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.`);
}

function unsupported(q, token, what) {
  return queryError('MALFORMED_QUERY', q, token, `fakecrm does not implement ${what}`);
}

function parseSoqlText(q) {
  try {
    return parseQuery(q);
  } catch (e) {
    const m = /found:?\s*-*>?\s*'([^']*)'/.exec(e.message || '');
    const tok = m ? m[1] : '';
    return { error: queryError('MALFORMED_QUERY', q, tok || null, tok ? `unexpected token: '${tok}'` : 'unexpected token: <EOF>') };
  }
}

/* Start of the unit containing t, and t moved by k units (UTC; weeks start on Sunday). */
function unitStart(unit, t) {
  const d = new Date(t);
  const y = d.getUTCFullYear(); const m = d.getUTCMonth();
  switch (unit) {
    case 'DAY': return Date.UTC(y, m, d.getUTCDate());
    case 'WEEK': return Date.UTC(y, m, d.getUTCDate()) - d.getUTCDay() * DAY_MS;
    case 'MONTH': return Date.UTC(y, m, 1);
    case 'QUARTER': return Date.UTC(y, m - (m % 3), 1);
    default: return Date.UTC(y, 0, 1);
  }
}

function unitAdd(unit, t, k) {
  const d = new Date(t);
  switch (unit) {
    case 'DAY': return t + k * DAY_MS;
    case 'WEEK': return t + k * 7 * DAY_MS;
    case 'MONTH': return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + k, 1);
    case 'QUARTER': return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 3 * k, 1);
    default: return Date.UTC(d.getUTCFullYear() + k, 0, 1);
  }
}

/* Date literal (TODAY, LAST_N_DAYS:30, THIS_QUARTER ...) -> [start, end) in ms. Fiscal = calendar. */
function dateLiteralRange(lit, now) {
  const [name, nStr] = lit.toUpperCase().split(':');
  const n = nStr === undefined ? null : Number(nStr);
  const plain = name.replace('_FISCAL', '');
  const span = (unit, from, count) => {
    const s = unitAdd(unit, unitStart(unit, now), from);
    return [s, unitAdd(unit, s, count)];
  };
  const fixed = { TODAY: ['DAY', 0], YESTERDAY: ['DAY', -1], TOMORROW: ['DAY', 1] };
  if (fixed[plain]) return span(fixed[plain][0], fixed[plain][1], 1);
  if (plain === 'LAST_90_DAYS') return [unitStart('DAY', now) - 90 * DAY_MS, unitStart('DAY', now) + DAY_MS];
  if (plain === 'NEXT_90_DAYS') return span('DAY', 1, 90);
  let m = /^(THIS|LAST|NEXT)_(WEEK|MONTH|QUARTER|YEAR)$/.exec(plain);
  if (m) return span(m[2], { THIS: 0, LAST: -1, NEXT: 1 }[m[1]], 1);
  m = /^(LAST|NEXT)_N_(DAY|WEEK|MONTH|QUARTER|YEAR)S$/.exec(plain);
  if (m && Number.isInteger(n)) {
    if (m[2] === 'DAY' && m[1] === 'LAST') return [unitStart('DAY', now) - n * DAY_MS, unitStart('DAY', now) + DAY_MS];
    return m[1] === 'LAST' ? span(m[2], -n, n) : span(m[2], 1, n);
  }
  m = /^N_(DAY|WEEK|MONTH|QUARTER|YEAR)S_AGO$/.exec(plain);
  if (m && Number.isInteger(n)) return span(m[1], -n, 1);
  return null;
}

/* A literal from the parser's raw text -> {kind, value}. */
function literalOf(raw, now) {
  const s = String(raw);
  if (/^'/.test(s)) return { kind: 'string', value: unquoteSoql(s) };
  if (/^null$/i.test(s)) return { kind: 'null', value: null };
  if (/^(true|false)$/i.test(s)) return { kind: 'boolean', value: /^true$/i.test(s) };
  if (/^\d{4}-\d{2}-\d{2}$/.test(s)) return { kind: 'date', value: parseDateOnly(s) };
  if (/^\d{4}-\d{2}-\d{2}T/.test(s)) return { kind: 'datetime', value: parseDateTime(s) };
  if (/^[A-Z]{3}-?\d/.test(s)) return { kind: 'number', value: Number(s.slice(3)) };
  if (/^[+-]?(\d+\.?\d*|\.\d+)$/.test(s)) return { kind: 'number', value: Number(s) };
  const range = dateLiteralRange(s, now);
  if (range) return { kind: 'range', value: range };
  return { kind: 'unknown', value: s };
}

function unquoteSoql(s) {
  const body = s.slice(1, -1);
  const map = { n: '\n', r: '\r', t: '\t', b: '\b', f: '\f', '"': '"', "'": "'", '\\': '\\' };
  return body.replace(/\\(u[0-9a-fA-F]{4}|.)/g, (m, c) => {
    if (c[0] === 'u' && c.length === 5) return String.fromCharCode(parseInt(c.slice(1), 16));
    if (c === '%' || c === '_') return `\\${c}`;     /* kept escaped for LIKE */
    return map[c] !== undefined ? map[c] : c;
  });
}

const STRINGISH = new Set(['string', 'picklist', 'multipicklist', 'email', 'phone', 'url', 'textarea', 'combobox', 'encryptedstring']);
const NUMERIC = new Set(['int', 'double', 'currency', 'percent']);

/* Field value normalised for comparison: dates -> ms, ids -> canonical lower case, text -> lower case. */
function comparable(f, v) {
  if (v === null || v === undefined) return null;
  if (f.type === 'date') return parseDateOnly(v);
  if (f.type === 'datetime') return parseDateTime(v);
  if (f.type === 'id' || f.type === 'reference') return String(v).toLowerCase();
  if (STRINGISH.has(f.type)) return String(v).toLowerCase();
  return v;
}

function compareValues(a, b) {
  if (a === b) return 0;
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  if (typeof a === 'boolean') return (a ? 1 : 0) - (b ? 1 : 0);
  return a < b ? -1 : a > b ? 1 : 0;
}

function likeRegex(pattern) {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\' && i + 1 < pattern.length) { re += pattern[++i].replace(/[.*+?^${}()|[\]\\]/g, '\\$&'); continue; }
    if (c === '%') re += '.*';
    else if (c === '_') re += '.';
    else re += c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 'is');
}

/* WHERE chains from the parser (parens as counts) -> token list -> proper tree. */
function flattenWhere(node, out) {
  while (node) {
    const left = node.left;
    if (left) {
      for (let i = 0; i < (left.openParen || 0); i++) out.push('(');
      if (left.field !== undefined || left.fn !== undefined) out.push({ cond: left });
      for (let i = 0; i < (left.closeParen || 0); i++) out.push(')');
    }
    if (node.operator) out.push(String(node.operator).toUpperCase());
    node = node.right;
  }
  return out;
}

function buildWhereTree(tokens, q) {
  let i = 0;
  const fail = () => queryError('MALFORMED_QUERY', q, null, 'unexpected token in WHERE clause');
  function primary() {
    const t = tokens[i];
    if (t === 'NOT') { i++; return { op: 'not', arg: primary() }; }
    if (t === '(') {
      i++;
      const e = orExpr();
      if (tokens[i] !== ')') throw fail();
      i++;
      return e;
    }
    if (t && typeof t === 'object') { i++; return t; }
    throw fail();
  }
  function andExpr() {
    let e = primary();
    while (tokens[i] === 'AND') { i++; e = { op: 'and', args: [e, primary()] }; }
    return e;
  }
  function orExpr() {
    let e = andExpr();
    while (tokens[i] === 'OR') { i++; e = { op: 'or', args: [e, andExpr()] }; }
    return e;
  }
  const tree = orExpr();
  if (i !== tokens.length) throw fail();
  return tree;
}

function createSoql(fake, schema, store) {
  /*
   * Resolves 'Account.Owner.Name' relative to meta: hops through lookups by relationship
   * name, then the leaf field. Polymorphic lookups resolve the leaf against every target.
   */
  function resolvePath(meta, dotted, q) {
    const parts = dotted.split('.');
    let metas = [meta];
    const hops = [];
    for (let i = 0; i < parts.length - 1; i++) {
      const p = parts[i].toLowerCase();
      let f = null;
      for (const m of metas) {
        f = m.fields.find((x) => x.relationshipName && x.relationshipName.toLowerCase() === p);
        if (f) break;
      }
      if (!f && i === 0 && p === meta.name.toLowerCase() && parts.length > 1) continue;   /* 'Account.Name' FROM Account */
      if (!f) {
        throw queryError('INVALID_FIELD', q, parts[i],
          `Didn't understand relationship '${parts[i]}' in field path. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names.`);
      }
      const targets = f.referenceTo.map((t) => schema.get(t)).filter(Boolean);
      if (!targets.length) throw unsupported(q, parts[i], `relationship '${f.relationshipName}' to ${f.referenceTo.join(', ')} (objects it does not store)`);
      hops.push({ field: f.name, rel: f.relationshipName });
      metas = targets;
    }
    const leafName = parts[parts.length - 1];
    const leaf = metas.map((m) => m.field(leafName)).find(Boolean);
    if (!leaf) throw noSuchColumn(q, dotted, metas[0].name);
    return { hops, leafName: leaf.name, metas, type: leaf.type, dotted };
  }

  /* Follows the hops from rec; returns {rec, meta} of the last record or null. */
  function walk(meta, rec, hops) {
    let cur = { rec, meta };
    for (const h of hops) {
      const id = cur.rec[h.field];
      if (!id) return null;
      cur = store.find(id);
      if (!cur) return null;
    }
    return cur;
  }

  function pathValue(meta, rec, path) {
    const end = walk(meta, rec, path.hops);
    if (!end) return { f: null, v: null };
    const f = end.meta.field(path.leafName);
    return f ? { f, v: fieldValue(end.rec, f) } : { f: null, v: null };
  }

  /* ---- WHERE ---- */

  function compileWhere(meta, where, q, now) {
    if (!where) return () => true;
    return compileNode(meta, buildWhereTree(flattenWhere(where, []), q), q, now);
  }

  function compileNode(meta, node, q, now) {
    if (node.op === 'not') { const a = compileNode(meta, node.arg, q, now); return (r) => !a(r); }
    if (node.op === 'and') { const [a, b] = node.args.map((x) => compileNode(meta, x, q, now)); return (r) => a(r) && b(r); }
    if (node.op === 'or') { const [a, b] = node.args.map((x) => compileNode(meta, x, q, now)); return (r) => a(r) || b(r); }
    return compileCondition(meta, node.cond, q, now);
  }

  function compileCondition(meta, c, q, now) {
    if (c.fn || c.field === undefined) throw unsupported(q, c.fn && c.fn.functionName, 'functions in WHERE');
    const path = resolvePath(meta, c.field, q);
    const op = String(c.operator).toUpperCase();
    const fType = path.type;
    if (c.valueQuery) {
      const sub = compileQuery(c.valueQuery, q, now, { semiJoin: true });
      let cache = null;     /* the sub-select runs once per query, not once per row */
      const wanted = () => cache || (cache = new Set(sub.execute(false).map((row) => row.value)));
      return (r) => {
        const { f, v } = pathValue(meta, r, path);
        const has = v !== null && wanted().has(comparable(f, v));
        return op === 'NOT IN' ? !has : has;
      };
    }
    const raw = Array.isArray(c.value) ? c.value : [c.value];
    const lits = raw.map((x) => checkLiteral(literalOf(x, now), fType, c.field, q));
    const litValues = lits.map((l) => literalComparable(l, fType));
    switch (op) {
      case '=': case '!=': case '<>': {
        const eq = (r) => matchesEq(meta, r, path, lits[0], litValues[0]);
        return op === '=' ? eq : (r) => !eq(r);
      }
      case '<': case '<=': case '>': case '>=':
        return (r) => {
          const { f, v } = pathValue(meta, r, path);
          if (v === null || lits[0].kind === 'null') return false;
          const a = comparable(f, v);
          if (lits[0].kind === 'range') {
            const [s, e] = lits[0].value;
            return { '<': a < s, '<=': a < e, '>': a >= e, '>=': a >= s }[op];
          }
          const cmp = compareValues(a, litValues[0]);
          return { '<': cmp < 0, '<=': cmp <= 0, '>': cmp > 0, '>=': cmp >= 0 }[op];
        };
      case 'LIKE': {
        if (!STRINGISH.has(fType) && fType !== 'id' && fType !== 'reference') {
          throw queryError('INVALID_FIELD', q, c.field, `invalid operator on ${fType} field: LIKE`);
        }
        const re = likeRegex(lits[0].value === null ? '' : String(lits[0].value));
        return (r) => { const { v } = pathValue(meta, r, path); return v !== null && re.test(String(v)); };
      }
      case 'IN': case 'NOT IN': {
        const test = (r) => lits.some((l, i) => matchesEq(meta, r, path, l, litValues[i]));
        return op === 'IN' ? test : (r) => !test(r);
      }
      case 'INCLUDES': case 'EXCLUDES': {
        const sets = lits.map((l) => String(l.value).toLowerCase().split(';').map((s) => s.trim()));
        const test = (r) => {
          const { v } = pathValue(meta, r, path);
          if (v === null) return false;
          const have = new Set(String(v).toLowerCase().split(';').map((s) => s.trim()));
          return sets.some((need) => need.every((x) => have.has(x)));
        };
        return op === 'INCLUDES' ? test : (r) => !test(r);
      }
      default:
        throw unsupported(q, op, `operator ${op}`);
    }
  }

  function matchesEq(meta, r, path, lit, litValue) {
    const { f, v } = pathValue(meta, r, path);
    if (lit.kind === 'null') return v === null;
    if (v === null) return false;
    const a = comparable(f, v);
    if (lit.kind === 'range') return a >= lit.value[0] && a < lit.value[1];
    return compareValues(a, litValue) === 0;
  }

  /* Refuses literal/field type mismatches the way Salesforce does. */
  function checkLiteral(lit, fType, field, q) {
    if (lit.kind === 'null') return lit;
    const dateish = fType === 'date' || fType === 'datetime';
    if (dateish && lit.kind === 'string') {
      throw queryError('MALFORMED_QUERY', q, field, `value of filter criterion for field '${field}' must be of type ${fType === 'date' ? 'date' : 'dateTime'} and should not be enclosed in quotes`);
    }
    if (!dateish && (lit.kind === 'range' || lit.kind === 'date' || lit.kind === 'datetime')) {
      throw queryError('MALFORMED_QUERY', q, field, `value of filter criterion for field '${field}' must be of type ${fType} and should be enclosed in quotes`);
    }
    if (NUMERIC.has(fType) && lit.kind !== 'number') {
      throw queryError('MALFORMED_QUERY', q, field, `value of filter criterion for field '${field}' must be of type double and should not be enclosed in quotes`);
    }
    if ((STRINGISH.has(fType) || fType === 'id' || fType === 'reference') && lit.kind !== 'string') {
      throw queryError('MALFORMED_QUERY', q, field, `value of filter criterion for field '${field}' must be of type string and should be enclosed in quotes`);
    }
    if ((fType === 'id' || fType === 'reference') && !canonicalId(lit.value)) {
      throw new SfError(400, 'INVALID_QUERY_FILTER_OPERATOR', `\n${q}\n^\nERROR at Row:1:Column:${columnOf(q, field)}\ninvalid ID field: ${lit.value}`);
    }
    if (lit.kind === 'unknown') throw unsupported(q, lit.value, `the literal ${lit.value}`);
    return lit;
  }

  function literalComparable(lit, fType) {
    if (lit.kind === 'string' && (fType === 'id' || fType === 'reference')) return canonicalId(lit.value).toLowerCase();
    if (lit.kind === 'string') return String(lit.value).replace(/\\([%_])/g, '$1').toLowerCase();
    return lit.value;
  }

  /* ---- SELECT ---- */

  /*
   * Compiles one (sub)query AST into {meta, execute(all, parentFilter)}. execute returns
   * projected rows; for semi-joins (one selected field) rows are {value}.
   */
  function compileQuery(ast, q, now, opts = {}) {
    const meta = opts.childMeta || schema.get(ast.sObject);
    if (!meta) {
      throw queryError('INVALID_TYPE', q, ast.sObject,
        `sObject type '${ast.sObject}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.`);
    }
    for (const k of ['having', 'withDataCategory', 'usingScope']) if (ast[k]) throw unsupported(q, k, k.toUpperCase());
    if (ast.sObjectAlias || ast.sObjectPrefix) throw unsupported(q, ast.sObjectAlias, 'FROM aliases');
    if (typeof ast.offset === 'number' && ast.offset > 2000) {
      throw new SfError(400, 'NUMBER_OUTSIDE_VALID_RANGE', `Maximum SOQL offset allowed is 2000`);
    }
    const where = compileWhere(meta, ast.where, q, now);
    const order = compileOrder(meta, ast.orderBy, q);
    const fields = expandFields(meta, ast, q);
    const aggregate = Boolean(ast.groupBy) || fields.some((f) => f.type === 'FieldFunctionExpression' && f.isAggregateFn);

    if (opts.semiJoin) {
      if (fields.length !== 1 || fields[0].type !== 'Field') throw queryError('MALFORMED_QUERY', q, null, 'semi join sub-selects can only select one field');
      const path = resolvePath(meta, fields[0].field, q);
      return {
        meta,
        execute: () => candidates(meta, false).filter(where).map((r) => {
          const { f, v } = pathValue(meta, r, path);
          return { value: v === null ? null : comparable(f, v) };
        }),
      };
    }
    if (aggregate) return compileAggregate(meta, ast, fields, where, q);

    const projectors = fields.map((f) => compileProjector(meta, f, q, now));
    return {
      meta,
      countOnly: false,
      execute(all, parentFilter, ver) {
        let rows = candidates(meta, all).filter((r) => (!parentFilter || parentFilter(r)) && where(r));
        rows = sortRows(meta, rows, order);
        rows = rows.slice(ast.offset || 0);
        if (typeof ast.limit === 'number') rows = rows.slice(0, ast.limit);
        return rows.map((r) => {
          const out = { attributes: attributesOf(ver, meta.name, r.Id) };
          for (const p of projectors) p(r, out, ver, all);
          return out;
        });
      },
    };
  }

  /* FIELDS(ALL|STANDARD|CUSTOM) expands to describe fields; ALL/CUSTOM need LIMIT <= 200. */
  function expandFields(meta, ast, q) {
    const out = [];
    for (const f of ast.fields || []) {
      if (f.type === 'FieldFunctionExpression' && /^fields$/i.test(f.functionName)) {
        const kind = String(f.parameters[0]).toUpperCase();
        if (kind !== 'STANDARD' && !(typeof ast.limit === 'number' && ast.limit <= 200)) {
          throw queryError('MALFORMED_QUERY', q, 'FIELDS', 'The SOQL FIELDS function must have a LIMIT of at most 200');
        }
        for (const x of meta.fields) {
          if (kind === 'ALL' || (kind === 'CUSTOM' && x.custom) || (kind === 'STANDARD' && !x.custom)) out.push({ type: 'Field', field: x.name });
        }
        continue;
      }
      out.push(f);
    }
    if (!out.length) throw queryError('MALFORMED_QUERY', q, 'FROM', "unexpected token: 'FROM'");
    return out;
  }

  function compileProjector(meta, f, q, now) {
    switch (f.type) {
      case 'Field':
      case 'FieldRelationship': {
        /* the parser reads 'SELECT Id Name' as an alias; SOQL allows aliases on aggregates only */
        if (f.alias) throw queryError('MALFORMED_QUERY', q, f.alias, `unexpected token: '${f.alias}'`);
        const path = resolvePath(meta, f.type === 'Field' ? f.field : f.rawValue, q);
        return (r, out, ver) => project(meta, r, path, out, ver, f.alias);
      }
      case 'FieldFunctionExpression': {
        if (!/^(tolabel|format|convertcurrency)$/i.test(f.functionName) || f.parameters.length !== 1) {
          throw unsupported(q, f.functionName, `the function ${f.functionName}() in SELECT`);
        }
        const path = resolvePath(meta, String(f.parameters[0]), q);
        return (r, out, ver) => project(meta, r, path, out, ver, f.alias);
      }
      case 'FieldSubquery':
        return compileChild(meta, f.subquery, q, now);
      case 'FieldTypeof':
        throw unsupported(q, 'TYPEOF', 'TYPEOF');
      default:
        throw unsupported(q, null, `select item ${f.type}`);
    }
  }

  /* Writes one path into out, nesting parent records as {attributes, ...} or null. */
  function project(meta, r, path, out, ver, alias) {
    let cur = { rec: r, meta };
    let target = out;
    for (const h of path.hops) {
      const id = cur.rec[h.field];
      const next = id ? store.find(id) : null;
      if (!next) { if (target[h.rel] === undefined) target[h.rel] = null; return; }
      if (!target[h.rel]) target[h.rel] = { attributes: attributesOf(ver, next.meta.name, next.rec.Id) };
      target = target[h.rel];
      cur = next;
    }
    const f = cur.meta.field(path.leafName);
    if (!f) return;
    target[alias && !path.hops.length ? alias : f.name] = fieldValue(cur.rec, f);
  }

  /* (SELECT ... FROM Contacts): child relationship of meta; null when there are no children. */
  function compileChild(meta, sub, q, now) {
    const relName = sub.relationshipName || sub.sObject;
    const rel = schema.childRelationships(meta.name).find((x) => x.rel.toLowerCase() === String(relName).toLowerCase());
    if (!rel) {
      throw queryError('INVALID_TYPE', q, relName,
        `Didn't understand relationship '${relName}' in FROM part of query call. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names.`);
    }
    const child = compileQuery(sub, q, now, { childMeta: schema.get(rel.child) });
    return (r, out, ver, all) => {
      const rows = child.execute(all, (c) => c[rel.field] === r.Id, ver);
      out[rel.rel] = rows.length ? { totalSize: rows.length, done: true, records: rows } : null;
    };
  }

  function compileOrder(meta, orderBy, q) {
    return (orderBy || []).map((o) => {
      if (o.fn) throw unsupported(q, o.fn.functionName, 'functions in ORDER BY');
      const desc = String(o.order || 'ASC').toUpperCase() === 'DESC';
      const nullsFirst = o.nulls ? String(o.nulls).toUpperCase() === 'FIRST' : !desc;
      return { path: resolvePath(meta, o.field, q), desc, nullsFirst };
    });
  }

  function sortRows(meta, rows, order) {
    if (!order.length) return rows;
    const keyed = rows.map((r, i) => ({ r, i, keys: order.map((o) => { const { f, v } = pathValue(meta, r, o.path); return v === null ? null : comparable(f, v); }) }));
    keyed.sort((a, b) => {
      for (let k = 0; k < order.length; k++) {
        const x = a.keys[k]; const y = b.keys[k]; const o = order[k];
        if (x === null && y === null) continue;
        if (x === null) return o.nullsFirst ? -1 : 1;
        if (y === null) return o.nullsFirst ? 1 : -1;
        const c = compareValues(x, y);
        if (c) return o.desc ? -c : c;
      }
      return a.i - b.i;
    });
    return keyed.map((k) => k.r);
  }

  function candidates(meta, all) {
    const rows = Object.values(store.live(meta.name));
    if (!all) return rows;
    return rows.concat(Object.values(store.bin(meta.name)).map((b) => b.record));
  }

  /* ---- aggregates: COUNT(), COUNT(f), COUNT_DISTINCT, SUM, AVG, MIN, MAX with GROUP BY ---- */

  function compileAggregate(meta, ast, fields, where, q) {
    const countOnly = fields.length === 1 && fields[0].type === 'FieldFunctionExpression' &&
      /^count$/i.test(fields[0].functionName) && !fields[0].parameters.length;
    const groupPaths = [].concat(ast.groupBy || []).map((g) => {
      if (g.fn || !g.field) throw unsupported(q, 'GROUP BY', 'GROUP BY on functions, ROLLUP or CUBE');
      return resolvePath(meta, g.field, q);
    });
    let exprN = 0;
    const cols = fields.map((f) => {
      if (f.type === 'Field' || f.type === 'FieldRelationship') {
        const path = resolvePath(meta, f.type === 'Field' ? f.field : f.rawValue, q);
        if (!groupPaths.some((g) => g.dotted.toLowerCase() === path.dotted.toLowerCase())) {
          throw queryError('MALFORMED_QUERY', q, path.dotted, `Field must be grouped or aggregated: ${path.leafName}`);
        }
        return { key: f.alias || path.leafName, group: path };
      }
      if (f.type !== 'FieldFunctionExpression' || !/^(count|count_distinct|sum|avg|min|max)$/i.test(f.functionName)) {
        throw unsupported(q, f.functionName || f.type, 'this aggregate select item');
      }
      const fn = f.functionName.toUpperCase();
      const path = f.parameters.length ? resolvePath(meta, String(f.parameters[0]), q) : null;
      return { key: f.alias || `expr${exprN++}`, fn, path };
    });
    return {
      meta,
      countOnly,
      execute(all) {
        const rows = candidates(meta, all).filter(where);
        if (countOnly) return rows;
        const groups = new Map();
        for (const r of rows) {
          const keyVals = groupPaths.map((g) => pathValue(meta, r, g).v);
          const k = JSON.stringify(keyVals.map((v) => (typeof v === 'string' ? v.toLowerCase() : v)));
          if (!groups.has(k)) groups.set(k, { keyVals, rows: [] });
          groups.get(k).rows.push(r);
        }
        if (!groupPaths.length && !groups.size) groups.set('[]', { keyVals: [], rows: [] });
        let out = [...groups.values()].map((g) => {
          const rec = { attributes: { type: 'AggregateResult' } };
          for (const c of cols) {
            if (c.group) rec[c.key] = g.keyVals[groupPaths.indexOf(groupPaths.find((p) => p.dotted.toLowerCase() === c.group.dotted.toLowerCase()))];
            else rec[c.key] = aggregateOf(c, g.rows, meta);
          }
          return rec;
        });
        out = out.slice(ast.offset || 0);
        if (typeof ast.limit === 'number') out = out.slice(0, ast.limit);
        return out;
      },
    };
  }

  function aggregateOf(c, rows, meta) {
    const vals = c.path ? rows.map((r) => pathValue(meta, r, c.path).v).filter((v) => v !== null) : rows;
    switch (c.fn) {
      case 'COUNT': return vals.length;
      case 'COUNT_DISTINCT': return new Set(vals.map((v) => (typeof v === 'string' ? v.toLowerCase() : v))).size;
      case 'SUM': return vals.length ? vals.reduce((a, b) => a + Number(b), 0) : null;
      case 'AVG': return vals.length ? vals.reduce((a, b) => a + Number(b), 0) / vals.length : null;
      case 'MIN': return vals.length ? vals.reduce((a, b) => (compareValues(b, a) < 0 ? b : a)) : null;
      default: return vals.length ? vals.reduce((a, b) => (compareValues(b, a) > 0 ? b : a)) : null;
    }
  }

  /*
   * Runs a SOQL string. Returns {totalSize, records}; COUNT() returns no records.
   * `all` includes recycle-bin rows (queryAll).
   */
  function run(q, all, ver) {
    if (typeof q !== 'string' || !q.trim()) throw new SfError(400, 'MALFORMED_QUERY', 'A query string has to be specified');
    const ast = parseSoqlText(q);
    if (ast.error) throw ast.error;
    const now = fake.now();
    const compiled = compileQuery(ast, q, now);
    const rows = compiled.execute(all, null, ver);
    if (compiled.countOnly) {
      let n = rows.length - (ast.offset || 0);
      if (typeof ast.limit === 'number') n = Math.min(n, ast.limit);
      return { totalSize: Math.max(0, n), records: [] };
    }
    return { totalSize: rows.length, records: rows };
  }

  /* Ids of meta's live records that satisfy a SOQL WHERE/ORDER BY/LIMIT tail (used by SOSL). */
  function runForSearch(meta, selectList, tail, ids, ver) {
    const q = `SELECT ${selectList} FROM ${meta.name}${tail ? ` ${tail}` : ''}`;
    const ast = parseSoqlText(q);
    if (ast.error) throw new SfError(400, 'MALFORMED_SEARCH', ast.error.message);
    const compiled = compileQuery(ast, q, fake.now());
    return compiled.execute(false, (r) => ids.has(r.Id), ver);
  }

  return { run, runForSearch };
}

/* ------------------------------------------------------------------------------------------
 * Describe output (§5).
 * ------------------------------------------------------------------------------------------ */

function objectUrls(ver, name) {
  const base = `/services/data/v${ver}/sobjects/${name}`;
  return { sobject: base, describe: `${base}/describe`, rowTemplate: `${base}/{ID}` };
}

function objectSummary(ver, meta) {
  return {
    activateable: false, associateEntityType: null, associateParentEntity: null,
    createable: true, custom: false, customSetting: false, deepCloneable: false,
    deletable: !meta.notDeletable, deprecatedAndHidden: false, feedEnabled: true, hasSubtypes: false,
    isInterface: false, isSubtype: false, keyPrefix: meta.keyPrefix, label: meta.label, labelPlural: meta.labelPlural,
    layoutable: true, mergeable: ['Account', 'Contact', 'Lead', 'Case'].includes(meta.name), mruEnabled: true,
    name: meta.name, queryable: true, replicateable: true, retrieveable: true, searchable: true, triggerable: true,
    undeletable: !meta.notDeletable, updateable: true, urls: objectUrls(ver, meta.name),
  };
}

function describeField(f) {
  const { childRelationshipName, requiredOnCreate, ...out } = f;  /* internal-only keys */
  return out;
}

function describeObject(ver, meta, schema) {
  return {
    ...objectSummary(ver, meta),
    actionOverrides: [],
    childRelationships: schema.childRelationships(meta.name).map((c) => ({
      cascadeDelete: c.cascadeDelete, childSObject: c.child, deprecatedAndHidden: false, field: c.field,
      junctionIdListNames: [], junctionReferenceTo: [], relationshipName: c.rel, restrictedDelete: false,
    })),
    compactLayoutable: true,
    defaultImplementation: null,
    extendedBy: null,
    extendsInterfaces: null,
    fields: meta.fields.map(describeField),
    implementedBy: null,
    implementsInterfaces: null,
    namedLayoutInfos: [],
    networkScopeFieldName: null,
    recordTypeInfos: [{
      active: true, available: true, defaultRecordTypeMapping: true, developerName: 'Master', master: true,
      name: 'Master', recordTypeId: '012000000000000AAA',
      urls: { layout: `/services/data/v${ver}/sobjects/${meta.name}/describe/layouts/012000000000000AAA` },
    }],
    searchLayoutable: true,
    sobjectDescribeOption: 'FULL',
    supportedScopes: [{ label: 'All ' + meta.labelPlural.toLowerCase(), name: 'everything' }],
    urls: {
      ...objectUrls(ver, meta.name),
      compactLayouts: `/services/data/v${ver}/sobjects/${meta.name}/describe/compactLayouts`,
      layouts: `/services/data/v${ver}/sobjects/${meta.name}/describe/layouts`,
      quickActions: `/services/data/v${ver}/sobjects/${meta.name}/quickActions`,
    },
  };
}

/* Release label of an API version: v62.0 = Winter '25, one release per version. */
function releaseLabel(v) {
  const k = v - 62;
  const season = ['Winter', 'Spring', 'Summer'][((k % 3) + 3) % 3];
  const year = 25 + Math.floor(k / 3);
  return `${season} '${String(year).padStart(2, '0')}`;
}

function versionList() {
  const out = [];
  for (let v = API_MIN_VERSION; v <= API_MAX_VERSION; v++) {
    out.push({ label: releaseLabel(v), url: `/services/data/v${v}.0`, version: `${v}.0` });
  }
  return out;
}

function resourceList(ver) {
  const b = `/services/data/v${ver}`;
  const names = ['tooling', 'metadata', 'eclair', 'folders', 'prechatForms', 'contact-tracing', 'domino', 'event',
    'jsonxform', 'chatter', 'payments', 'tabs', 'appMenu', 'quickActions', 'queryAll', 'commerce', 'wave',
    'iot', 'analytics', 'search', 'identity', 'composite', 'parameterizedSearch', 'fingerprint', 'theme',
    'nouns', 'recent', 'connect', 'licensing', 'limits', 'process', 'async-queries', 'query', 'match',
    'emailConnect', 'compactLayouts', 'knowledgeManagement', 'sobjects', 'actions', 'support'];
  const out = {};
  for (const n of names) out[n] = `${b}/${n}`;
  out.identity = 'https://login.salesforce.com/id/00DHs0000000001AAA/005Hs000000000001AAA';
  return out;
}

/* ------------------------------------------------------------------------------------------
 * The module.
 * ------------------------------------------------------------------------------------------ */

module.exports = function create(fake) {
  let schema = createSchema();
  let store = createStore(fake, schema);
  let dml = createDml(fake, schema, store);
  let soql = createSoql(fake, schema, store);

  const DEFAULT_USER = {
    Username: 'integration@crmgate.test', FirstName: 'Crmgate', LastName: 'Integration',
    Email: 'integration@crmgate.test', Alias: 'cgint', TimeZoneSidKey: 'GMT', LocaleSidKey: 'en_US',
    EmailEncodingKey: 'UTF-8', ProfileId: makeId('00e', 1), LanguageLocaleKey: 'en_US',
  };

  /*
   * OAuth sessions (seed {oauth: {sessionSeconds: N, clients: [{clientId, clientSecret}]}}): the
   * access tokens the token endpoint issues expire after sessionSeconds, and a call with an
   * expired one gets 401 INVALID_SESSION_ID as Salesforce answers it (reference §8). Tokens
   * the fake did not issue never expire. With clients set, a refresh must name one of them.
   */
  let oauth = { sessionSeconds: 0, clients: [], issued: new Map() };

  /* Fresh schema and store; the API user the fake acts as exists from the start. */
  function reset() {
    oauth = { sessionSeconds: 0, clients: [], issued: new Map() };
    schema = createSchema();
    store = createStore(fake, schema);
    dml = createDml(fake, schema, store);
    soql = createSoql(fake, schema, store);
    store.currentUserId = makeId('005', 1);
    store.data.counters['005'] = 1;
    dml.create(schema.get('User'), { Id: store.currentUserId, ...DEFAULT_USER }, { seed: true });
    store.live('User')[store.currentUserId].CreatedById = store.currentUserId;
    store.live('User')[store.currentUserId].LastModifiedById = store.currentUserId;
  }
  reset();

  /* ---------------- helpers shared by routes ---------------- */

  const result = (status, body, headers) => ({ status, body: body === undefined ? null : body, headers: headers || {} });
  const saveResult = (id) => ({ id, success: true, errors: [] });

  function objectOr404(name) {
    const meta = schema.get(name);
    if (!meta) throw notFound();
    return meta;
  }

  /* Body of a write: invalid JSON and a missing body answer as Salesforce's JSON parser does. */
  function requireJson(r) {
    if (r.jsonError) throw new SfError(400, 'JSON_PARSER_ERROR', `Unexpected character: ${r.jsonError}`);
    if (r.json === undefined) throw new SfError(400, 'JSON_PARSER_ERROR', 'No content to map due to end-of-input');
    return r.json;
  }

  function lastModifiedMs(rec) {
    return parseDateTime(rec.LastModifiedDate);
  }

  /* ETag of an Account row; only Account supports If-Match / If-None-Match (§11). */
  function etagOf(rec) {
    return '"' + crypto.createHash('sha1').update(`${rec.Id}/${rec.SystemModstamp}`).digest('base64') + '"';
  }

  function sameEtag(header, rec) {
    const want = etagOf(rec).replace(/"/g, '');
    return String(header).split(',').some((t) => t.trim().replace(/^W\//, '').replace(/"/g, '').replace(/-+gzip$/, '') === want || t.trim() === '*');
  }

  function parseHttpDate(value) {
    const ms = Date.parse(value);
    if (Number.isNaN(ms)) throw new SfError(400, 'INVALID_HEADER_TYPE', `Invalid date format in header: ${value}`);
    return ms;
  }

  /*
   * Conditional headers on sObject rows (§11). Returns a 304 result, throws 412, or null to go on.
   * Second granularity: a record modified in the same second as the header date passes.
   */
  function checkConditions(r, meta, rec, isRead) {
    const h = r.headers;
    const lm = Math.floor(lastModifiedMs(rec) / 1000) * 1000;
    const failed = () => new SfError(412, 'PRECONDITION_FAILED',
      'The requested resource has been modified since the If-Unmodified-Since or If-Match conditions were specified');
    if (h['if-unmodified-since'] !== undefined && lm > parseHttpDate(h['if-unmodified-since'])) throw failed();
    if (meta.name === 'Account' && h['if-match'] !== undefined && !sameEtag(h['if-match'], rec)) throw failed();
    if (meta.name === 'Account' && h['if-none-match'] !== undefined && sameEtag(h['if-none-match'], rec)) {
      if (isRead) return result(304, null, rowHeaders(meta, rec));
      throw failed();
    }
    if (isRead && h['if-modified-since'] !== undefined && lm <= parseHttpDate(h['if-modified-since'])) {
      return result(304, null, rowHeaders(meta, rec));
    }
    return null;
  }

  function rowHeaders(meta, rec) {
    const h = { 'Last-Modified': httpDate(lastModifiedMs(rec)) };
    if (meta.name === 'Account') h.ETag = etagOf(rec);
    return h;
  }

  /* Field list of ?fields= / collections retrieve: every name must exist on the object. */
  function resolveFieldList(meta, names) {
    return names.map((n) => {
      const f = meta.field(n.trim());
      if (!f) throw new SfError(400, 'INVALID_FIELD', `No such column '${n.trim()}' on sobject of type ${meta.name}`);
      return f;
    });
  }

  /* Row as GET returns it: all fields, or the named ones followed by Id (§4). */
  function renderRow(ver, meta, rec, fields) {
    const out = { attributes: attributesOf(ver, meta.name, rec.Id) };
    if (!fields) {
      for (const f of meta.fields) out[f.name] = fieldValue(rec, f);
      return out;
    }
    for (const f of fields) out[f.name] = fieldValue(rec, f);
    if (!('Id' in out)) out.Id = rec.Id;
    return out;
  }

  /*
   * A path segment after /sobjects/{S}/ that is an id (15/18 chars, valid case checksum).
   * Returns the canonical id, or throws MALFORMED_ID when it has another object's prefix.
   */
  function rowId(meta, seg) {
    const id = canonicalId(seg);
    if (!id) return null;
    if (!id.startsWith(meta.keyPrefix)) {
      throw new SfError(400, 'MALFORMED_ID', `${meta.label} ID: id value of incorrect type: ${seg}`, ['Id']);
    }
    return id;
  }

  function isIdShaped(meta, seg) {
    return /^[a-zA-Z0-9]{15}([a-zA-Z0-9]{3})?$/.test(seg) && !meta.field(seg);
  }

  function externalField(meta, name) {
    const f = meta.field(name);
    if (!f || !(f.externalId || f.name === 'Id')) {
      throw new SfError(404, 'NOT_FOUND', `Provided external ID field does not exist or is not accessible: ${name}`);
    }
    return f;
  }

  function multipleChoices(ver, meta, ids) {
    return result(300, ids.map((id) => recordUrl(ver, meta.name, id)));
  }

  /* ---------------- sObject routes ---------------- */

  function sobjectsRoute(r, segs) {
    const ver = r.ver;
    if (segs.length === 1) {
      if (r.method !== 'GET') throw methodNotAllowed(r.method, 'GET,HEAD');
      const ims = r.headers['if-modified-since'];
      if (ims !== undefined && store.schemaChangedAt <= parseHttpDate(ims) + 999) return result(304, null);
      return result(200, {
        encoding: 'UTF-8', maxBatchSize: 200,
        sobjects: [...schema.objects.values()].map((m) => objectSummary(ver, m)),
      });
    }
    const meta = objectOr404(segs[1]);
    if (segs.length === 2) return sobjectRoot(r, meta);
    const seg = segs[2];
    if (segs.length === 3) {
      if (seg === 'describe') {
        if (r.method !== 'GET') throw methodNotAllowed(r.method, 'GET,HEAD');
        const ims = r.headers['if-modified-since'];
        if (ims !== undefined && store.schemaChangedAt <= parseHttpDate(ims) + 999) return result(304, null);
        return result(200, describeObject(ver, meta, schema));
      }
      if (seg === 'updated' || seg === 'deleted') return changedRecords(r, meta, seg);
      if (seg === 'Id' && r.method === 'POST') return createRow(r, meta);
      if (isIdShaped(meta, seg)) return rowRoute(r, meta, rowId(meta, seg));
      throw new SfError(404, 'NOT_FOUND', `Provided external ID field does not exist or is not accessible: ${seg}`);
    }
    if (segs.length === 4) {
      if (isIdShaped(meta, seg)) return relatedRoute(r, meta, rowId(meta, seg), segs[3]);
      return externalRoute(r, meta, externalField(meta, seg), segs[3]);
    }
    throw notFound();
  }

  function sobjectRoot(r, meta) {
    if (r.method === 'POST') return createRow(r, meta);
    if (r.method !== 'GET') throw methodNotAllowed(r.method, 'GET,HEAD,POST');
    const recent = Object.values(store.live(meta.name))
      .sort((a, b) => compareValues(b.LastModifiedDate, a.LastModifiedDate)).slice(0, 5)
      .map((rec) => {
        const item = { attributes: attributesOf(r.ver, meta.name, rec.Id), Id: rec.Id };
        if (meta.nameField) item[meta.nameField] = rec[meta.nameField];
        return item;
      });
    return result(200, { objectDescribe: objectSummary(r.ver, meta), recentItems: recent });
  }

  function createRow(r, meta) {
    const body = requireJson(r);
    const id = dml.create(meta, body);
    return result(201, saveResult(id), { Location: recordUrl(r.ver, meta.name, id) });
  }

  function rowRoute(r, meta, id) {
    switch (r.method) {
      case 'GET': {
        const rec = dml.getLive(meta, id);
        const notModified = checkConditions(r, meta, rec, true);
        if (notModified) return notModified;
        const fieldsParam = r.query.get('fields');
        const fields = fieldsParam ? resolveFieldList(meta, fieldsParam.split(',').filter((x) => x.trim())) : null;
        return result(200, renderRow(r.ver, meta, rec, fields), rowHeaders(meta, rec));
      }
      case 'PATCH': {
        const body = requireJson(r);
        const rec = dml.getLive(meta, id);
        checkConditions(r, meta, rec, false);
        dml.update(meta, id, body);
        return result(204, null);
      }
      case 'DELETE':
        dml.destroy(meta, id);
        return result(204, null);
      default:
        throw methodNotAllowed(r.method, meta.notDeletable ? 'GET,HEAD,PATCH' : 'GET,HEAD,PATCH,DELETE');
    }
  }

  /* GET /sobjects/{S}/{id}/{relationship}: the parent record, or the children as a query result. */
  function relatedRoute(r, meta, id, relName) {
    if (r.method !== 'GET') throw methodNotAllowed(r.method, 'GET,HEAD');
    const rec = dml.getLive(meta, id);
    const lookup = meta.fields.find((f) => f.relationshipName && f.relationshipName.toLowerCase() === relName.toLowerCase());
    if (lookup) {
      const parent = rec[lookup.name] ? store.find(rec[lookup.name]) : null;
      if (!parent) throw notFound();
      return result(200, renderRow(r.ver, parent.meta, parent.rec, null), rowHeaders(parent.meta, parent.rec));
    }
    const child = schema.childRelationships(meta.name).find((c) => c.rel.toLowerCase() === relName.toLowerCase());
    if (!child) throw notFound();
    const cmeta = schema.get(child.child);
    const rows = Object.values(store.live(cmeta.name)).filter((c) => c[child.field] === id)
      .map((c) => renderRow(r.ver, cmeta, c, null));
    return result(200, { totalSize: rows.length, done: true, records: rows });
  }

  /* GET / PATCH (upsert) / DELETE by external id (§4). */
  function externalRoute(r, meta, f, value) {
    if (r.method === 'PATCH') {
      const body = requireJson(r);
      let out;
      try {
        out = dml.upsert(meta, f, value, body, { updateOnly: r.query.get('updateOnly') === 'true' });
      } catch (e) {
        if (e instanceof SfError && e.status === 300) return multipleChoices(r.ver, meta, e.matches);
        throw e;
      }
      if (r.verNum < 46) return out.created ? result(201, saveResult(out.id)) : result(204, null);
      return result(out.created ? 201 : 200, { id: out.id, success: true, errors: [], created: out.created });
    }
    if (r.method !== 'GET' && r.method !== 'DELETE') throw methodNotAllowed(r.method, 'GET,HEAD,PATCH,DELETE');
    const matches = dml.findByExternal(meta, f, value);
    if (matches.length > 1) return multipleChoices(r.ver, meta, matches.map((m) => m.Id));
    if (!matches.length) throw notFound();
    return rowRoute(r, meta, matches[0].Id);
  }

  /* /sobjects/{S}/updated|deleted?start=&end= (replication API). */
  function changedRecords(r, meta, kind) {
    if (r.method !== 'GET') throw methodNotAllowed(r.method, 'GET,HEAD');
    const start = parseDateTime(r.query.get('start') || '');
    const end = parseDateTime(r.query.get('end') || '');
    if (Number.isNaN(start) || Number.isNaN(end)) {
      throw new SfError(400, 'INVALID_REPLICATION_DATE', 'start and end must be ISO 8601 datetimes');
    }
    /* the replication API works in whole minutes */
    const s = Math.floor(start / 60000) * 60000;
    const e = Math.floor(end / 60000) * 60000;
    if (kind === 'updated') {
      const ids = Object.values(store.live(meta.name))
        .filter((rec) => { const t = parseDateTime(rec.SystemModstamp); return t >= s && t < e; }).map((rec) => rec.Id);
      return result(200, { ids, latestDateCovered: formatDateTime(e) });
    }
    const deletedRecords = Object.values(store.bin(meta.name))
      .filter((b) => { const t = parseDateTime(b.deletedDate); return t >= s && t < e; })
      .map((b) => ({ deletedDate: b.deletedDate, id: b.record.Id }));
    return result(200, { deletedRecords, earliestDateAvailable: formatDateTime(store.schemaChangedAt), latestDateCovered: formatDateTime(e) });
  }

  function methodNotAllowed(method, allowed) {
    return new SfError(405, 'METHOD_NOT_ALLOWED', `HTTP Method '${method}' not allowed. Allowed are ${allowed}`);
  }

  /* ---------------- query / queryMore (§6.1) ---------------- */

  function batchSizeOf(r) {
    const m = /batchSize\s*=\s*(\d+)/i.exec(r.headers['sforce-query-options'] || '');
    if (!m) return QUERY_BATCH_DEFAULT;
    return Math.min(QUERY_BATCH_DEFAULT, Math.max(QUERY_BATCH_MIN, Number(m[1])));
  }

  function queryRoute(r, segs, all) {
    if (r.method !== 'GET') throw methodNotAllowed(r.method, 'GET,HEAD');
    if (segs.length === 2) return queryMore(r, segs[1]);
    if (segs.length !== 1) throw notFound();
    if (r.query.has('explain')) throw new SfError(400, 'MALFORMED_QUERY', 'fakecrm does not implement query plans (explain)');
    const q = r.query.get('q');
    const res = soql.run(q === null ? '' : q, all, r.ver);
    const aggregate = res.records.length && res.records[0].attributes.type === 'AggregateResult';
    const batch = batchSizeOf(r);
    if (aggregate && res.records.length > QUERY_BATCH_DEFAULT) {
      throw new SfError(400, 'MALFORMED_QUERY', 'Aggregate query does not support queryMore(), use LIMIT to restrict the results to a single batch');
    }
    return result(200, page(r.ver, res.records, res.totalSize, 0, batch, null));
  }

  /* One page of a result; remembers the rest under a locator (`<queryId>-<offset>`). */
  function page(ver, records, totalSize, offset, batch, locator) {
    const slice = records.slice(offset, offset + batch);
    const done = offset + batch >= records.length;
    const out = { totalSize, done };
    if (!done) {
      if (!locator) {
        locator = makeId('01g', ++store.cursorSeq);
        store.cursors.set(locator, { records, totalSize, batch, touched: fake.now() });
      }
      out.nextRecordsUrl = `/services/data/v${ver}/query/${locator}-${offset + batch}`;
    }
    out.records = slice;
    return out;
  }

  function queryMore(r, token) {
    const m = /^([a-zA-Z0-9]{15,18})-(\d+)$/.exec(token);
    const cursor = m && store.cursors.get(m[1]);
    if (!cursor || fake.now() - cursor.touched > LOCATOR_IDLE_MS) {
      if (m) store.cursors.delete(m[1]);
      throw new SfError(400, 'INVALID_QUERY_LOCATOR', 'invalid query locator');
    }
    cursor.touched = fake.now();
    const offset = Number(m[2]);
    if (offset > cursor.records.length) throw new SfError(400, 'INVALID_QUERY_LOCATOR', 'invalid query locator');
    return result(200, page(r.ver, cursor.records, cursor.totalSize, offset, cursor.batch, m[1]));
  }

  /* ---------------- SOSL search (§6.2) ---------------- */

  const SEARCHABLE_DEFAULT = ['Account', 'Contact', 'Lead', 'Opportunity', 'Case', 'User'];

  function searchRoute(r) {
    if (r.method !== 'GET') throw methodNotAllowed(r.method, 'GET,HEAD');
    const q = r.query.get('q');
    if (!q) throw new SfError(400, 'MALFORMED_SEARCH', 'No search term found. The search term must be enclosed in braces.');
    const parsed = parseSosl(q);
    const matcher = termMatcher(parsed.term);
    const out = [];
    for (const spec of parsed.returning) {
      const meta = schema.get(spec.object);
      if (!meta) {
        throw new SfError(400, 'INVALID_TYPE', `sObject type '${spec.object}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.`);
      }
      const scope = searchFields(meta, parsed.scope);
      const ids = new Set(Object.values(store.live(meta.name))
        .filter((rec) => matcher(scope.map((f) => rec[f.name]).filter((v) => v !== null && v !== undefined).map(String)))
        .map((rec) => rec.Id));
      const rows = soql.runForSearch(meta, spec.fields || 'Id', spec.tail, ids, r.ver);
      out.push(...rows);
    }
    return result(200, { searchRecords: out.slice(0, parsed.limit) });
  }

  /* FIND {term} [IN x FIELDS] [RETURNING Obj[(fields [WHERE..] [ORDER BY..] [LIMIT n])], ...] [LIMIT n] */
  function parseSosl(q) {
    const m = /^\s*FIND\s+\{((?:[^}\\]|\\.)*)\}\s*/i.exec(q);
    if (!m) throw new SfError(400, 'MALFORMED_SEARCH', 'No search term found. The search term must be enclosed in braces.');
    const term = m[1].replace(/\\(.)/g, '$1');
    let rest = q.slice(m[0].length);
    let scope = 'ALL';
    const scopeM = /^IN\s+(ALL|NAME|EMAIL|PHONE|SIDEBAR)\s+FIELDS\s*/i.exec(rest);
    if (scopeM) { scope = scopeM[1].toUpperCase(); rest = rest.slice(scopeM[0].length); }
    let returning = null;
    let limit = 2000;
    const retM = /^RETURNING\s+/i.exec(rest);
    if (retM) {
      rest = rest.slice(retM[0].length);
      const { specs, remainder } = splitReturning(rest);
      returning = specs;
      rest = remainder;
    }
    const limM = /^LIMIT\s+(\d+)\s*/i.exec(rest);
    if (limM) { limit = Number(limM[1]); rest = rest.slice(limM[0].length); }
    if (rest.trim()) throw new SfError(400, 'MALFORMED_SEARCH', `fakecrm does not implement this SOSL clause: ${rest.trim()}`);
    if (!returning) returning = SEARCHABLE_DEFAULT.map((o) => ({ object: o, fields: null, tail: '' }));
    return { term, scope, returning, limit };
  }

  /* Splits 'Account(Id, Name WHERE ...), Contact LIMIT 5' into specs and what follows them. */
  function splitReturning(text) {
    const specs = [];
    let i = 0;
    for (;;) {
      const nm = /^\s*([A-Za-z][A-Za-z0-9_]*)\s*/.exec(text.slice(i));
      if (!nm) throw new SfError(400, 'MALFORMED_SEARCH', 'RETURNING needs an object name');
      i += nm[0].length;
      const spec = { object: nm[1], fields: null, tail: '' };
      if (text[i] === '(') {
        let depth = 0; let j = i;
        for (; j < text.length; j++) {
          if (text[j] === "'") { j++; while (j < text.length && text[j] !== "'") { if (text[j] === '\\') j++; j++; } continue; }
          if (text[j] === '(') depth++;
          else if (text[j] === ')' && --depth === 0) break;
        }
        if (depth !== 0) throw new SfError(400, 'MALFORMED_SEARCH', 'unbalanced parentheses in RETURNING');
        const inner = text.slice(i + 1, j);
        const kw = /\s(WHERE|ORDER\s+BY|LIMIT|OFFSET)\s/i.exec(` ${inner} `);
        spec.fields = (kw ? inner.slice(0, Math.max(0, kw.index - 1)) : inner).trim();
        spec.tail = kw ? inner.slice(kw.index).trim() : '';
        i = j + 1;
      }
      specs.push(spec);
      const sep = /^\s*,\s*/.exec(text.slice(i));
      if (!sep) break;
      i += sep[0].length;
    }
    return { specs, remainder: text.slice(i).trim() };
  }

  function searchFields(meta, scope) {
    return meta.fields.filter((f) => {
      if (scope === 'EMAIL') return f.type === 'email';
      if (scope === 'PHONE') return f.type === 'phone';
      if (scope === 'NAME') return f.name === meta.nameField || ['FirstName', 'LastName', 'Company', 'Name'].includes(f.name);
      return STRINGISH.has(f.type);
    });
  }

  /*
   * Term semantics kept small: words (with * and ? wildcards) must all match whole words of
   * some field (AND), "OR" separates alternatives, "AND NOT w" excludes, quotes make phrases.
   */
  function termMatcher(term) {
    const bare = term.replace(/[*?"]/g, '').trim();
    if (bare.length < 2) {
      throw new SfError(400, 'INVALID_SEARCH', `search term must be longer than one character: ${term}`);
    }
    const alternatives = term.split(/\s+OR\s+/).map((alt) => {
      const words = alt.match(/"[^"]*"|\S+/g) || [];
      const need = []; const not = [];
      for (let k = 0; k < words.length; k++) {
        const w = words[k];
        if (w === 'AND') continue;                 /* AND is implicit; "AND NOT x" leaves NOT x */
        if (w === 'NOT') { if (words[k + 1]) not.push(wordRe(words[++k])); continue; }
        need.push(wordRe(w));
      }
      return { need, not };
    });
    return (values) => alternatives.some(({ need, not }) =>
      need.every((re) => values.some((v) => re.test(v))) && !not.some((re) => values.some((v) => re.test(v))));
  }

  function wordRe(w) {
    const text = w.replace(/^"|"$/g, '');
    const body = text.split('').map((c) => (c === '*' ? '[^\\s]*' : c === '?' ? '[^\\s]' : c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('');
    return new RegExp(`(^|[^A-Za-z0-9])${body}($|[^A-Za-z0-9])`, 'i');
  }

  /* ---------------- composite (§7.1) ---------------- */

  const HALTED_TX = 'The transaction was rolled back since another operation in the same transaction failed.';

  function haltedEntry(referenceId, message) {
    return { body: [{ errorCode: 'PROCESSING_HALTED', message: message || HALTED_TX }], httpHeaders: {}, httpStatusCode: 400, referenceId };
  }

  /* Value at 'id' / 'records[0].Id' / 'Account.Name' inside a subresponse body. */
  function lookupReference(results, ref) {
    const m = /^([A-Za-z0-9_]+)((?:\.[A-Za-z0-9_]+|\[\d+\])*)$/.exec(ref);
    if (!m || !results.has(m[1])) return { ok: false, ref, id: m ? m[1] : ref };
    let cur = results.get(m[1]);
    for (const step of m[2].match(/\.[A-Za-z0-9_]+|\[\d+\]/g) || []) {
      const key = step[0] === '.' ? step.slice(1) : Number(step.slice(1, -1));
      if (cur === null || typeof cur !== 'object' || !(key in cur)) return { ok: false, ref, id: m[1] };
      cur = cur[key];
    }
    if (cur === null || typeof cur === 'object') return { ok: false, ref, id: m[1] };
    return { ok: true, value: cur };
  }

  /* Replaces @{ref.path} in strings, recursively; a whole-string reference keeps its JSON type. */
  function substitute(value, results) {
    if (typeof value === 'string') {
      const whole = /^@\{([^}]+)\}$/.exec(value);
      if (whole) {
        const hit = lookupReference(results, whole[1]);
        if (!hit.ok) throw hit;
        return hit.value;
      }
      return value.replace(/@\{([^}]+)\}/g, (all, ref) => {
        const hit = lookupReference(results, ref);
        if (!hit.ok) throw hit;
        return String(hit.value);
      });
    }
    if (Array.isArray(value)) return value.map((v) => substitute(v, results));
    if (value && typeof value === 'object') {
      const out = {};
      for (const [k, v] of Object.entries(value)) out[k] = substitute(v, results);
      return out;
    }
    return value;
  }

  function invalidReference(miss) {
    return `Invalid reference specified. No value for ${miss.ref} found in ${miss.id}. Provided referenceId ('${miss.id}') must start with a letter or a number, and it can contain only letters, numbers and underscores ('_').`;
  }

  function compositeRoute(r) {
    if (r.method !== 'POST') throw methodNotAllowed(r.method, 'POST');
    const body = requireJson(r);
    return result(200, { compositeResponse: runComposite(r, body && body.compositeRequest, body.allOrNone === true).out });
  }

  /*
   * composite/graph (§7.5): each graph is a composite run all-or-nothing; the answer is 200 with
   * one entry per graph, isSuccessful false when it was rolled back.
   */
  function graphRoute(r) {
    if (r.method !== 'POST') throw methodNotAllowed(r.method, 'POST');
    const body = requireJson(r);
    const graphs = body && body.graphs;
    if (!Array.isArray(graphs) || !graphs.length) throw new SfError(400, 'INVALID_INPUT', 'graphs must be a non-empty array');
    const out = graphs.map((g) => {
      if (!g || typeof g.graphId !== 'string' || !g.graphId) throw new SfError(400, 'INVALID_INPUT', 'every graph needs a graphId');
      const run = runComposite(r, g.compositeRequest, true);
      return { graphId: g.graphId, graphResponse: { compositeResponse: run.out }, isSuccessful: run.failedAt < 0 };
    });
    return result(200, { graphs: out });
  }

  /* The subrequests of a composite (or of one graph), run in order: {out, failedAt}. */
  function runComposite(r, subs, allOrNone) {
    if (!Array.isArray(subs) || !subs.length) {
      throw new SfError(400, 'INVALID_INPUT', 'compositeRequest must be a non-empty array', undefined);
    }
    if (subs.length > COMPOSITE_MAX) {
      throw new SfError(400, 'INVALID_INPUT', `compositeRequest may contain at most ${COMPOSITE_MAX} subrequests`);
    }
    const seen = new Set();
    for (const s of subs) {
      if (!s || typeof s.referenceId !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_]*$/.test(s.referenceId)) {
        throw new SfError(400, 'INVALID_INPUT', `Invalid referenceId: ${s && s.referenceId}`);
      }
      if (seen.has(s.referenceId)) throw new SfError(400, 'INVALID_INPUT', `Duplicate referenceId provided in the request: ${s.referenceId}`);
      seen.add(s.referenceId);
    }
    const snap = allOrNone ? store.snapshot() : null;
    const results = new Map();
    const out = [];
    let failedAt = -1;
    for (let i = 0; i < subs.length; i++) {
      const s = subs[i];
      if (failedAt >= 0 && allOrNone) { out.push(haltedEntry(s.referenceId)); continue; }
      let url; let sbody;
      try {
        url = substitute(String(s.url || ''), results);
        sbody = s.body === undefined ? undefined : substitute(s.body, results);
      } catch (miss) {
        if (miss instanceof Error) throw miss;
        out.push(haltedEntry(s.referenceId, invalidReference(miss)));
        if (failedAt < 0) failedAt = i;
        continue;
      }
      const res = dispatchSub(r, String(s.method || '').toUpperCase(), url, sbody, s.httpHeaders, /^\/services\/data\/v(\d+\.\d)\/(.*)$/);
      out.push({ body: res.body, httpHeaders: res.headers, httpStatusCode: res.status, referenceId: s.referenceId });
      if (res.status >= 400) { if (failedAt < 0) failedAt = i; } else results.set(s.referenceId, res.body);
    }
    if (allOrNone && failedAt >= 0) {
      store.restore(snap);
      for (let i = 0; i < out.length; i++) if (i !== failedAt && out[i].httpStatusCode < 400) out[i] = haltedEntry(out[i].referenceId);
    }
    return { out, failedAt };
  }

  /* Runs one subrequest of composite or batch through the same routes as a direct call. */
  function dispatchSub(parent, method, url, body, headers, shape) {
    const q = url.indexOf('?');
    const rawPath = q < 0 ? url : url.slice(0, q);
    const m = shape.exec(rawPath);
    if (!m || !method) return errorResult(notFound());
    const segs = m[2].split('/').filter((x, i, a) => x !== '' || i < a.length - 1).map(safeDecode);
    if (segs[0] === 'composite' && segs[1] !== 'sobjects') return errorResult(notFound());
    const lower = {};
    for (const [k, v] of Object.entries(headers || {})) lower[k.toLowerCase()] = String(v);
    const sub = {
      method, ver: m[1], verNum: Number(m[1]), segs,
      query: new URLSearchParams(q < 0 ? '' : url.slice(q + 1)),
      headers: { ...parent.headers, ...lower }, json: body, jsonError: undefined,
    };
    const res = route(sub);
    return { ...res, headers: res.headers || {} };
  }

  /* ---------------- composite/batch (§7.2) ---------------- */

  function batchRoute(r) {
    if (r.method !== 'POST') throw methodNotAllowed(r.method, 'POST');
    const body = requireJson(r);
    const subs = body && body.batchRequests;
    if (!Array.isArray(subs) || !subs.length) throw new SfError(400, 'INVALID_INPUT', 'batchRequests must be a non-empty array');
    if (subs.length > COMPOSITE_MAX) throw new SfError(400, 'INVALID_INPUT', `batchRequests may contain at most ${COMPOSITE_MAX} subrequests`);
    store.apiUsage += subs.length;                 /* each subrequest counts (§7.2) */
    let halted = false;
    let hasErrors = false;
    const results = subs.map((s) => {
      if (halted) return { statusCode: 412, result: [{ errorCode: 'BATCH_PROCESSING_HALTED', message: 'Batch processing halted per the request' }] };
      const url = String((s && s.url) || '').replace(/^\//, '');
      const res = dispatchSub(r, String((s && s.method) || '').toUpperCase(), url, s ? s.richInput : undefined, {}, /^v(\d+\.\d)\/(.*)$/);
      if (res.status >= 400) {
        hasErrors = true;
        if (body.haltOnError === true) halted = true;
      }
      return { statusCode: res.status, result: res.body };
    });
    return result(200, { hasErrors, results });
  }

  /* ---------------- sObject collections (§7.4) ---------------- */

  function collectionRecords(body) {
    const recs = body && body.records;
    if (!Array.isArray(recs)) throw new SfError(400, 'INVALID_INPUT', 'records must be an array');
    if (recs.length > COLLECTION_MAX) throw new SfError(400, 'EXCEEDED_ID_LIMIT', `record limit reached. cannot submit more than ${COLLECTION_MAX} records into this call`);
    return recs;
  }

  function typeOfRecord(rec) {
    const type = rec && rec.attributes && rec.attributes.type;
    const meta = schema.get(type);
    if (!meta) throw new SfError(400, 'INVALID_TYPE', type ? `sObject type '${type}' is not supported.` : 'When using the sObject Collections API, you must specify an sObject type for each record in the attributes property', []);
    return meta;
  }

  /*
   * Runs op on each record. allOrNone: stop at the first failure, restore the store, and mark
   * every other record ALL_OR_NONE_OPERATION_ROLLED_BACK (creates lose their id).
   */
  function runCollection(items, allOrNone, op, keepIdOnRollback) {
    const snap = allOrNone ? store.snapshot() : null;
    const out = [];
    let failed = false;
    for (const item of items) {
      if (failed && allOrNone) { out.push(null); continue; }
      try {
        out.push({ ok: true, ...op(item) });
      } catch (e) {
        if (!(e instanceof SfError)) throw e;
        out.push({ ok: false, id: e.recordId, errors: [e.toCollectionError()] });
        failed = true;
      }
    }
    if (allOrNone && failed) {
      store.restore(snap);
      const rolled = { statusCode: 'ALL_OR_NONE_OPERATION_ROLLED_BACK', message: 'Record rolled back because not all records were valid and the request was using AllOrNone header', fields: [] };
      return out.map((o, i) => {
        if (o && !o.ok) return failure(o);
        const id = o && keepIdOnRollback ? o.id : (keepIdOnRollback ? keepIdOnRollback(items[i]) : undefined);
        return id ? { id, success: false, errors: [rolled] } : { success: false, errors: [rolled] };
      });
    }
    return out.map((o) => (o.ok ? { id: o.id, success: true, errors: [], ...(o.created !== undefined ? { created: o.created } : {}) } : failure(o)));
  }

  function failure(o) {
    return o.id ? { id: o.id, success: false, errors: o.errors } : { success: false, errors: o.errors };
  }

  function collectionsRoute(r, segs) {
    if (segs.length === 2) {
      if (r.method === 'POST') {
        const body = requireJson(r);
        const recs = collectionRecords(body);
        return result(200, runCollection(recs, body.allOrNone === true, (rec) => {
          const meta = typeOfRecord(rec);
          return { id: dml.create(meta, rec, { collection: true }) };
        }, null));
      }
      if (r.method === 'PATCH') {
        const body = requireJson(r);
        const recs = collectionRecords(body);
        const idOf = (rec) => canonicalId(String(rec && (rec.id || rec.Id) || '')) || undefined;
        return result(200, runCollection(recs, body.allOrNone === true, (rec) => {
          const meta = typeOfRecord(rec);
          const raw = rec.id || rec.Id;
          if (!raw) throw new SfError(400, 'MISSING_ARGUMENT', 'Id not specified in an update call', []);
          const id = canonicalId(String(raw));
          if (!id || !id.startsWith(meta.keyPrefix)) {
            throw Object.assign(new SfError(400, 'MALFORMED_ID', `${meta.label} ID: id value of incorrect type: ${raw}`, ['Id']), { recordId: id || undefined });
          }
          const fields = { ...rec };
          delete fields.id; delete fields.Id;
          try { dml.update(meta, id, fields, { collection: true }); } catch (e) { if (e instanceof SfError) e.recordId = id; throw e; }
          return { id };
        }, idOf));
      }
      if (r.method === 'DELETE') {
        const ids = (r.query.get('ids') || '').split(',').map((s) => s.trim()).filter(Boolean);
        if (!ids.length) throw new SfError(400, 'MISSING_ARGUMENT', 'ids parameter is required');
        if (ids.length > COLLECTION_MAX) throw new SfError(400, 'EXCEEDED_ID_LIMIT', `record limit reached. cannot submit more than ${COLLECTION_MAX} records into this call`);
        return result(200, runCollection(ids, r.query.get('allOrNone') === 'true', (raw) => {
          const id = canonicalId(raw);
          const meta = id && schema.byPrefix(id);
          if (!meta) throw new SfError(400, 'MALFORMED_ID', `malformed id ${raw}`, []);
          try {
            dml.destroy(meta, id);
          } catch (e) {
            if (!(e instanceof SfError)) throw e;
            const err = e.errorCode === 'NOT_FOUND' ? new SfError(404, 'INVALID_CROSS_REFERENCE_KEY', 'invalid cross reference id', []) : e;
            err.recordId = id;
            throw err;
          }
          return { id };
        }, (raw) => canonicalId(raw) || undefined));
      }
      throw methodNotAllowed(r.method, 'POST,PATCH,DELETE');
    }
    const meta = objectOr404(segs[2]);
    if (segs.length === 3) return collectionRetrieve(r, meta);
    if (segs.length === 4) {
      if (r.method !== 'PATCH') throw methodNotAllowed(r.method, 'PATCH');
      const f = externalField(meta, segs[3]);
      const body = requireJson(r);
      const recs = collectionRecords(body);
      return result(200, runCollection(recs, body.allOrNone === true, (rec) => {
        const rmeta = typeOfRecord(rec);
        if (rmeta !== meta) throw new SfError(400, 'INVALID_TYPE', `record type ${rmeta.name} does not match ${meta.name}`, []);
        const key = Object.keys(rec).find((k) => k.toLowerCase() === f.name.toLowerCase());
        if (key === undefined || rec[key] === null || rec[key] === '') {
          throw new SfError(400, 'MISSING_ARGUMENT', `${f.name} not specified`, [f.name]);
        }
        try {
          return dml.upsert(meta, f, String(rec[key]), rec, { collection: true });
        } catch (e) {
          if (e instanceof SfError && e.status === 300) {
            throw new SfError(300, 'DUPLICATE_EXTERNAL_ID', `${f.name}: more than one record found for external id field: [${e.matches.join(', ')}]`, [f.name]);
          }
          throw e;
        }
      }, null));
    }
    throw notFound();
  }

  /* GET ?ids=&fields= or POST {ids, fields}: records in order, null for unknown ids. */
  function collectionRetrieve(r, meta) {
    let ids; let names;
    if (r.method === 'GET') {
      ids = (r.query.get('ids') || '').split(',').filter(Boolean);
      names = (r.query.get('fields') || '').split(',').filter(Boolean);
    } else if (r.method === 'POST') {
      const body = requireJson(r);
      ids = Array.isArray(body.ids) ? body.ids : [];
      names = Array.isArray(body.fields) ? body.fields : [];
    } else {
      throw methodNotAllowed(r.method, 'GET,POST');
    }
    if (!ids.length) throw new SfError(400, 'MISSING_ARGUMENT', 'ids parameter is required');
    if (!names.length) throw new SfError(400, 'MISSING_ARGUMENT', 'fields parameter is required');
    if (ids.length > 2000) throw new SfError(400, 'EXCEEDED_ID_LIMIT', 'Retrieve is limited to 2000 ids');
    const fields = resolveFieldList(meta, names);
    return result(200, ids.map((raw) => {
      const id = canonicalId(String(raw));
      const rec = id && store.live(meta.name)[id];
      if (!rec) return null;
      const out = { attributes: attributesOf(r.ver, meta.name, rec.Id) };
      for (const f of fields) out[f.name] = fieldValue(rec, f);
      return out;
    }));
  }

  /* ---------------- composite/tree (§7.3): all or none ---------------- */

  function treeRoute(r, segs) {
    if (r.method !== 'POST') throw methodNotAllowed(r.method, 'POST');
    const meta = objectOr404(segs[2]);
    const body = requireJson(r);
    if (!body || !Array.isArray(body.records)) throw new SfError(400, 'INVALID_INPUT', 'records must be an array');
    const snap = store.snapshot();
    const results = [];
    let count = 0;
    const errors = [];
    const insert = (m, rec, parentField, parentId) => {
      if (++count > TREE_MAX) throw new SfError(400, 'INVALID_INPUT', `Too many records in the tree: at most ${TREE_MAX}`);
      const refId = rec && rec.attributes && rec.attributes.referenceId;
      const type = rec && rec.attributes && rec.attributes.type;
      if (!refId || !type || !schema.get(type) || schema.get(type) !== m) {
        errors.push({ referenceId: refId || null, errors: [{ statusCode: 'INVALID_INPUT', message: 'Every record needs attributes.type and attributes.referenceId', fields: [] }] });
        return;
      }
      const fields = {}; const children = [];
      for (const [k, v] of Object.entries(rec)) {
        if (k === 'attributes') continue;
        const rel = schema.childRelationships(m.name).find((c) => c.rel.toLowerCase() === k.toLowerCase());
        if (rel && v && typeof v === 'object' && Array.isArray(v.records)) children.push([rel, v.records]);
        else fields[k] = v;
      }
      if (parentField) fields[parentField] = parentId;
      let id;
      try { id = dml.create(m, fields); } catch (e) {
        if (!(e instanceof SfError)) throw e;
        errors.push({ referenceId: refId, errors: [e.toCollectionError()] });
        return;
      }
      results.push({ referenceId: refId, id });
      for (const [rel, recs] of children) for (const c of recs) insert(schema.get(rel.child), c, rel.field, id);
    };
    for (const rec of body.records) insert(meta, rec, null, null);
    if (errors.length) {
      store.restore(snap);
      return result(400, { hasErrors: true, results: errors });
    }
    return result(201, { hasErrors: false, results });
  }

  /* ---------------- limits, OAuth ---------------- */

  function limitsBody() {
    const lim = (max, used) => ({ Max: max, Remaining: Math.max(0, max - used) });
    return {
      ConcurrentAsyncGetReportInstances: lim(200, 0), ConcurrentSyncReportRuns: lim(20, 0),
      DailyApiRequests: lim(DAILY_API_MAX, store.apiUsage), DailyAsyncApexExecutions: lim(250000, 0),
      DailyBulkApiBatches: lim(15000, 0), DailyBulkV2QueryJobs: lim(10000, 0), DailyBulkV2QueryFileStorageMB: lim(976562, 0),
      DailyStreamingApiEvents: lim(10000, 0), DataStorageMB: lim(5, 0), FileStorageMB: lim(20, 0),
      HourlyODataCallout: lim(10000, 0), HourlyTimeBasedWorkflow: lim(50, 0), MassEmail: lim(10, 0),
      SingleEmail: lim(15, 0), StreamingApiConcurrentClients: lim(20, 0),
    };
  }

  function oauthToken(ctx) {
    if (ctx.method !== 'POST') return ctx.send(405, { error: 'invalid_request', error_description: 'must use HTTP POST' });
    const p = new URLSearchParams(ctx.body.toString('utf8'));
    const grant = p.get('grant_type');
    const fail = (error, description) => ctx.send(400, { error, error_description: description });
    if (grant === 'refresh_token' && !p.get('refresh_token')) return fail('invalid_grant', 'expired access/refresh token');
    if (grant === 'password' && !(p.get('username') && p.get('password'))) return fail('invalid_grant', 'authentication failure');
    if (grant === 'client_credentials' && !(p.get('client_id') && p.get('client_secret'))) return fail('invalid_client', 'invalid client credentials');
    if (!['refresh_token', 'password', 'client_credentials'].includes(grant)) return fail('unsupported_grant_type', 'grant type not supported');
    if (oauth.clients.length) {
      const c = oauth.clients.find((x) => x.clientId === p.get('client_id'));
      if (!c || c.clientSecret !== p.get('client_secret')) return fail('invalid_client', 'invalid client credentials');
    }
    const now = fake.now();
    const token = `00DHs0000000001!AQ${crypto.randomBytes(24).toString('base64url')}`;
    if (oauth.sessionSeconds > 0) oauth.issued.set(token, now + oauth.sessionSeconds * 1000);
    const body = {
      access_token: token,
      signature: crypto.createHmac('sha256', 'fakecrm').update(`${store.currentUserId}${now}`).digest('base64'),
      scope: 'api refresh_token',
      instance_url: fake.baseUrl(),
      id: `${fake.baseUrl()}/id/00DHs0000000001AAA/${store.currentUserId}`,
      token_type: 'Bearer',
      issued_at: String(now),
    };
    return ctx.send(200, body);
  }

  function oauthRevoke(ctx) {
    const p = new URLSearchParams(ctx.body.toString('utf8'));
    const token = p.get('token') || ctx.query.get('token');
    if (!token) return ctx.send(400, { error: 'unsupported_token_type', error_description: 'this token type is not supported' });
    if (fake.revokeToken) fake.revokeToken(token);
    return ctx.send(200, null);
  }

  /* ---------------- routing ---------------- */

  function errorResult(e) {
    if (!(e instanceof SfError)) throw e;
    return result(e.status, e.toBody());
  }

  /* Versioned resource: r = {method, ver, verNum, segs, query, headers, json, jsonError}. */
  function route(r) {
    try {
      if (r.method === 'HEAD') r = { ...r, method: 'GET' };
      if (r.method === 'POST' && r.query.get('_HttpMethod')) {
        const m = r.query.get('_HttpMethod').toUpperCase();
        if (m !== 'PATCH' && m !== 'DELETE') throw methodNotAllowed(`POST?_HttpMethod=${m}`, 'PATCH,DELETE');
        r = { ...r, method: m };
      }
      if (!/^\d+\.0$/.test(r.ver) || r.verNum < API_MIN_VERSION || r.verNum > API_MAX_VERSION) throw notFound();
      const s = r.segs;
      if (!s.length) {
        if (r.method !== 'GET') throw methodNotAllowed(r.method, 'GET,HEAD');
        return result(200, resourceList(r.ver));
      }
      switch (s[0]) {
        case 'sobjects': return sobjectsRoute(r, s);
        case 'query': return queryRoute(r, s, false);
        case 'queryAll': return queryRoute(r, s, true);
        case 'search':
          if (s.length !== 1) throw notFound();
          return searchRoute(r);
        case 'limits':
          if (s.length !== 1) throw notFound();
          if (r.method !== 'GET') throw methodNotAllowed(r.method, 'GET,HEAD');
          return result(200, limitsBody());
        case 'composite':
          if (s.length === 1) return compositeRoute(r);
          if (s[1] === 'batch' && s.length === 2) return batchRoute(r);
          if (s[1] === 'sobjects' && s.length <= 4) return collectionsRoute(r, s);
          if (s[1] === 'tree' && s.length === 3) return treeRoute(r, s);
          if (s[1] === 'graph' && s.length === 2) return graphRoute(r);
          throw notFound();
        default:
          throw notFound();
      }
    } catch (e) {
      return errorResult(e);
    }
  }

  function safeDecode(seg) {
    try { return decodeURIComponent(seg); } catch { return seg; }
  }

  /* Path segments after /services/data/, decoded one by one so an encoded '/' stays in its segment. */
  function segmentsOf(rawPath) {
    const segs = rawPath.split('/').slice(3).map(safeDecode);
    if (segs.length && segs[segs.length - 1] === '') segs.pop();
    return segs;
  }

  async function handle(ctx) {
    const p = ctx.path;
    if (p === '/services/oauth2/token') return oauthToken(ctx);
    if (ctx.token && oauth.issued.has(ctx.token) && oauth.issued.get(ctx.token) <= fake.now()) {
      return ctx.send(401, [{ message: 'Session expired or invalid', errorCode: 'INVALID_SESSION_ID' }]);
    }
    if (p === '/services/oauth2/revoke') return oauthRevoke(ctx);
    if (!/^\/services\/data(\/|$)/.test(p)) return ctx.send(404, notFound().toBody());
    const segs = segmentsOf(ctx.rawPath);
    if (!segs.length) {
      if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return ctx.send(405, methodNotAllowed(ctx.method, 'GET,HEAD').toBody());
      return ctx.send(200, versionList());
    }
    const vm = /^v(\d+\.\d+)$/.exec(segs[0]);
    if (!vm) return ctx.send(404, notFound().toBody());
    const rest = segs.slice(1);
    if (!(rest[0] === 'composite' && rest[1] === 'batch')) store.apiUsage += 1;
    const res = route({
      method: ctx.method, ver: vm[1], verNum: Number(vm[1]), segs: rest, query: ctx.query,
      headers: ctx.headers, json: ctx.json, jsonError: ctx.jsonError,
    });
    return ctx.send(res.status, res.status === 204 ? null : res.body, res.headers);
  }

  /* ---------------- seed / state ---------------- */

  /*
   * seed({customFields:{Account:[{name,type,externalId}]}, objects:{Account:[{Id?, Name, ...}]},
   *       oauth:{sessionSeconds, clients}})
   * Records may carry system fields (CreatedDate, LastModifiedDate ...) and IsDeleted:true
   * (they go to the recycle bin). Mistakes throw: a bad seed must fail the test loudly.
   */
  function seed(data) {
    if (!data || typeof data !== 'object') throw new Error('salesforce seed: expected an object');
    if (data.oauth) {
      if (data.oauth.sessionSeconds !== undefined) oauth.sessionSeconds = Number(data.oauth.sessionSeconds);
      if (Array.isArray(data.oauth.clients)) oauth.clients = data.oauth.clients;
    }
    for (const [obj, specs] of Object.entries(data.customFields || {})) {
      for (const spec of specs) schema.addCustomField(obj, spec);
      store.schemaChangedAt = fake.now();
      /* existing records get the new field as null */
      const meta = schema.get(obj);
      for (const rec of Object.values(store.live(meta.name))) for (const spec of specs) if (rec[spec.name] === undefined) rec[spec.name] = null;
    }
    const created = {};
    for (const [obj, recs] of Object.entries(data.objects || {})) {
      const meta = schema.get(obj);
      if (!meta) throw new Error(`salesforce seed: unknown object ${obj}`);
      if (!Array.isArray(recs)) throw new Error(`salesforce seed: objects.${obj} must be an array`);
      created[meta.name] = created[meta.name] || [];
      for (const rec of recs) {
        const deleted = rec && rec.IsDeleted === true;
        const body = { ...rec };
        delete body.IsDeleted;
        let id;
        try {
          id = dml.create(meta, body, { seed: true });
        } catch (e) {
          if (e instanceof SfError) throw new Error(`salesforce seed: ${meta.name}: ${e.errorCode}: ${e.message}`);
          throw e;
        }
        if (deleted) dml.destroy(meta, id);
        created[meta.name].push(id);
      }
    }
    return created;
  }

  function state() {
    const objects = {};
    const deleted = {};
    for (const [obj, recs] of Object.entries(store.data.live)) {
      const list = Object.values(recs);
      if (list.length) objects[obj] = structuredClone(list);
    }
    for (const [obj, recs] of Object.entries(store.data.bin)) {
      const list = Object.values(recs).map((b) => ({ ...structuredClone(b.record), deletedDate: b.deletedDate }));
      if (list.length) deleted[obj] = list;
    }
    return { objects, deleted, apiUsage: store.apiUsage };
  }

  return {
    name: 'salesforce',
    match: (p) => p.startsWith('/services/'),
    handle,
    reset,
    seed,
    state,
    isPublic: (method, p) => p.startsWith('/services/oauth2/') || /^\/services\/data\/?$/.test(p),
    unauthorized: (ctx) => ctx.send(401, [{ message: 'Session expired or invalid', errorCode: 'INVALID_SESSION_ID' }]),
    responseHeaders: (ctx) => (/^\/services\/data\/v/.test(ctx.path) ? { 'Sforce-Limit-Info': `api-usage=${store.apiUsage}/${DAILY_API_MAX}` } : {}),
    faultBody: (kind) => (kind === 'ratelimit'
      ? { status: 403, body: [{ message: 'TotalRequests Limit exceeded.', errorCode: 'REQUEST_LIMIT_EXCEEDED' }] }
      : { status: 503, body: [{ errorCode: 'SERVER_UNAVAILABLE', message: 'Server temporarily unavailable.' }] }),
  };
};

/* Exposed for the fake's own unit tests. */
module.exports.canonicalId = canonicalId;
module.exports.idChecksum = idChecksum;
