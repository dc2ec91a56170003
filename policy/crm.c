/*
 * crm.c - CRM names and CRM-shaped error bodies.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "crm.h"

const char *crm_name(enum crm crm)
{
    switch (crm) {
    case CRM_HUBSPOT:
        return "hubspot";
    case CRM_SALESFORCE:
        return "salesforce";
    case CRM_NONE:
        break;
    }
    return "none";
}

const char *crm_status_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 207:
        return "Multi-Status";
    case 300:
        return "Multiple Choices";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 417:
        return "Expectation Failed";
    case 421:
        return "Misdirected Request";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        break;
    }
    return "Unknown";
}

/*
 * The category (HubSpot) or errorCode (Salesforce) for a status crmgate
 * emits. Where the CRM has an established name it is used, so agents that
 * switch on it behave; otherwise the HTTP meaning in upper snake case.
 */
static const char *crm_error_category(enum crm crm, int status)
{
    switch (status) {
    case 400:
        return crm == CRM_SALESFORCE ? "JSON_PARSER_ERROR" : "VALIDATION_ERROR";
    case 403:
        return crm == CRM_SALESFORCE ? "INSUFFICIENT_ACCESS" : "MISSING_SCOPES";
    case 404:
        return crm == CRM_SALESFORCE ? "NOT_FOUND" : "OBJECT_NOT_FOUND";
    case 408:
        return "REQUEST_TIMEOUT";
    case 413:
        return "REQUEST_TOO_LARGE";
    case 431:
        return "REQUEST_HEADER_FIELDS_TOO_LARGE";
    case 501:
        return "NOT_IMPLEMENTED";
    case 502:
        return "BAD_GATEWAY";
    case 503:
        return "SERVER_UNAVAILABLE";
    case 504:
        return "GATEWAY_TIMEOUT";
    default:
        break;
    }
    return status >= 500 ? "INTERNAL_ERROR" : "BAD_REQUEST";
}

char *crm_error_body(enum crm crm, int status, const char *code, const char *message,
                     const char *correlation_id)
{
    const char *category = crm_error_category(crm, status);
    json_t *body;
    char sub[128];
    char *out;

    if (crm == CRM_SALESFORCE) {
        body = json_pack("[{s:s, s:s, s:[]}]", "message", message, "errorCode", category, "fields");
    } else {
        snprintf(sub, sizeof(sub), "crmgate.%s", code);
        body = json_pack("{s:s, s:s, s:s?, s:s, s:s}", "status", "error", "message", message,
                         "correlationId", correlation_id, "category", category, "subCategory", sub);
    }
    if (body == NULL)
        return NULL;
    out = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    return out;
}
