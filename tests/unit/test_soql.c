/*
 * test_soql.c - the SOQL parser, table-driven: accepted queries with the
 * exact tree they yield, rejected ones with the construct the error names.
 *
 * A tree is written compactly, refs in the order the parser reports them:
 *
 *   FROM[*][#][ Ln][ On] [C:path>field ...] {sub} {sub}
 *
 * '*' marks a child subquery, '#' COUNT(), Ln/On LIMIT and OFFSET; C is the
 * clause (S SELECT, W WHERE, G GROUP BY, H HAVING, O ORDER BY); "path>" is
 * absent when the field has no relationship path.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "soql.h"

struct tbuf {
    char s[4096];
    size_t n;
};

static void tbuf_put(struct tbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void tbuf_put(struct tbuf *b, const char *fmt, ...)
{
    va_list ap;
    int k;

    va_start(ap, fmt);
    k = vsnprintf(b->s + b->n, sizeof(b->s) - b->n, fmt, ap);
    va_end(ap);
    assert_true(k >= 0 && (size_t)k < sizeof(b->s) - b->n);
    b->n += (size_t)k;
}

static void tree_str(struct tbuf *b, const struct soql_query *q)
{
    static const char clause[] = {'S', 'W', 'G', 'H', 'O'};

    tbuf_put(b, "%s%s%s", q->from, q->is_child ? "*" : "", q->count_only ? "#" : "");
    if (q->limit >= 0)
        tbuf_put(b, " L%ld", q->limit);
    if (q->offset >= 0)
        tbuf_put(b, " O%ld", q->offset);
    tbuf_put(b, " [");
    for (size_t i = 0; i < q->nrefs; i++) {
        const struct soql_ref *r = &q->refs[i];

        tbuf_put(b, "%s%c:%s%s%s", i ? " " : "", clause[r->clause], r->path ? r->path : "",
                 r->path ? ">" : "", r->field);
    }
    tbuf_put(b, "]");
    for (size_t i = 0; i < q->nsubs; i++) {
        tbuf_put(b, " {");
        tree_str(b, q->subs[i]);
        tbuf_put(b, "}");
    }
}

static void test_soql_accept(void **state)
{
    static const struct {
        const char *soql, *tree;
    } cases[] = {
        /* fields, case, spacing, keyword-named objects */
        {"SELECT Id FROM Account", "Account [S:Id]"},
        {"SELECT Id, Name, Foo__c, ns__Bar__c FROM Account",
         "Account [S:Id S:Name S:Foo__c S:ns__Bar__c]"},
        {"select id, name from account where name = 'x'", "account [S:id S:name W:name]"},
        {"SELECT\tId,\nName\r\nFROM  Account", "Account [S:Id S:Name]"},
        {"SELECT Id FROM Order ORDER BY OrderNumber", "Order [S:Id O:OrderNumber]"},
        {"SELECT Id, Name FROM Group WHERE Type = 'Queue'", "Group [S:Id S:Name W:Type]"},
        {"SELECT Id, Name FROM Account WHERE Name = 'x'", "Account [S:Id S:Name W:Name]"},
        {"SELECT Id, Id FROM Account", "Account [S:Id S:Id]"},
        /* relationship paths */
        {"SELECT Account.Owner.Email FROM Contact", "Contact [S:Account.Owner>Email]"},
        {"SELECT Id, Account.Name FROM Contact", "Contact [S:Id S:Account>Name]"},
        {"SELECT Project__r.Owner.Name FROM Timesheet__c",
         "Timesheet__c [S:Project__r.Owner>Name]"},
        {"SELECT Id FROM Contact WHERE Account.Industry = 'x' ORDER BY Account.Name",
         "Contact [S:Id W:Account>Industry O:Account>Name]"},
        {"SELECT Id FROM Task WHERE What.Type IN ('Account', 'Opportunity')",
         "Task [S:Id W:What>Type]"},
        {"SELECT Contact.Account.Owner.Manager.Email FROM Case",
         "Case [S:Contact.Account.Owner.Manager>Email]"},
        /* operators and literals */
        {"SELECT Id FROM Opportunity WHERE Amount > 10 AND Amount >= 1.5 AND Amount < -3 AND "
         "Amount <= +4 AND Amount != 0 AND Amount <> 1 AND Amount = 2",
         "Opportunity [S:Id W:Amount W:Amount W:Amount W:Amount W:Amount W:Amount W:Amount]"},
        {"SELECT Id FROM Account WHERE Name LIKE 'Acme\\_%'", "Account [S:Id W:Name]"},
        {"SELECT Id FROM Account WHERE Name = 'O\\'Reilly \\\\ \\\" \\n \\r \\t \\b \\f \\u00e9'",
         "Account [S:Id W:Name]"},
        {"SELECT Id FROM Account WHERE Name = 'Caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80'",
         "Account [S:Id W:Name]"},
        {"SELECT Id FROM Account WHERE Name = ''", "Account [S:Id W:Name]"},
        {"SELECT Id FROM Account WHERE Name = 'a--b /* c */ ; :x [y] {z}'",
         "Account [S:Id W:Name]"},
        {"SELECT Id FROM Account WHERE Name = 'x' OR Id IN (SELECT AccountId FROM Case)",
         "Account [S:Id W:Name W:Id] {Case [S:AccountId]}"},
        {"SELECT Id FROM Contact WHERE Email = null AND Foo__c = TRUE AND Bar__c = false",
         "Contact [S:Id W:Email W:Foo__c W:Bar__c]"},
        {"SELECT Id FROM Opportunity WHERE Amount > USD100 AND Amount < eur5000.50",
         "Opportunity [S:Id W:Amount W:Amount]"},
        {"SELECT Id FROM Opportunity WHERE CloseDate = 2024-02-29",
         "Opportunity [S:Id W:CloseDate]"},
        {"SELECT Id FROM Account WHERE CreatedDate > 2024-01-01T00:00:00Z AND CreatedDate < "
         "2024-01-01T00:00:00.123+05:30 AND LastModifiedDate > 2024-01-01T08:00:00-08:00",
         "Account [S:Id W:CreatedDate W:CreatedDate W:LastModifiedDate]"},
        {"SELECT Id FROM Opportunity WHERE CloseDate = TODAY OR CloseDate = last_90_days OR "
         "CloseDate = THIS_FISCAL_YEAR",
         "Opportunity [S:Id W:CloseDate W:CloseDate W:CloseDate]"},
        {"SELECT Id FROM Opportunity WHERE CreatedDate = LAST_N_DAYS:30 AND CloseDate = "
         "n_fiscal_years_ago:2",
         "Opportunity [S:Id W:CreatedDate W:CloseDate]"},
        /* AND / OR / NOT */
        {"SELECT Id FROM Lead WHERE (Status = 'a' OR Rating = 'b') AND NOT IsConverted = true",
         "Lead [S:Id W:Status W:Rating W:IsConverted]"},
        {"SELECT Id FROM Lead WHERE NOT (A__c = 1 OR (B__c = 2 AND NOT C__c = 3))",
         "Lead [S:Id W:A__c W:B__c W:C__c]"},
        {"SELECT Id FROM Account WHERE NOT Name LIKE 'T%'", "Account [S:Id W:Name]"},
        /* IN lists, INCLUDES / EXCLUDES */
        {"SELECT Id FROM Lead WHERE Status IN ('a', 'b') AND Rating NOT IN ('c')",
         "Lead [S:Id W:Status W:Rating]"},
        {"SELECT Id FROM Opportunity WHERE Amount IN (1, 2.5, USD3) AND CloseDate IN "
         "(2024-01-01, TODAY, LAST_N_DAYS:3)",
         "Opportunity [S:Id W:Amount W:CloseDate]"},
        {"SELECT Id FROM Account WHERE Regions__c INCLUDES ('a;b', 'c') AND R2__c EXCLUDES ('d')",
         "Account [S:Id W:Regions__c W:R2__c]"},
        /* semi-joins and anti-joins */
        {"SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Opportunity WHERE StageName "
         "= 'Won')",
         "Account [S:Id W:Id] {Opportunity [S:AccountId W:StageName]}"},
        {"SELECT Id FROM Account WHERE Id NOT IN (SELECT AccountId FROM Contact)",
         "Account [S:Id W:Id] {Contact [S:AccountId]}"},
        {"SELECT Id FROM Contact WHERE AccountId IN (SELECT Id FROM Account WHERE Owner.Name = "
         "'x') AND Id NOT IN (SELECT WhoId FROM Task)",
         "Contact [S:Id W:AccountId W:Id] {Account [S:Id W:Owner>Name]} {Task [S:WhoId]}"},
        {"SELECT Id FROM Lead WHERE OwnerId IN (SELECT Manager.Id FROM User)",
         "Lead [S:Id W:OwnerId] {User [S:Manager>Id]}"},
        /* child subqueries */
        {"SELECT Id, (SELECT LastName FROM Contacts) FROM Account",
         "Account [S:Id] {Contacts* [S:LastName]}"},
        {"SELECT Name, (SELECT Id, Email FROM Contacts WHERE Email != null ORDER BY LastName "
         "LIMIT 5 OFFSET 2) FROM Account",
         "Account [S:Name] {Contacts* L5 O2 [S:Id S:Email W:Email O:LastName]}"},
        {"SELECT (SELECT Id FROM Cases), (SELECT Id FROM Opportunities), Id FROM Account",
         "Account [S:Id] {Cases* [S:Id]} {Opportunities* [S:Id]}"},
        {"SELECT Id, (SELECT Contact.Email FROM OpportunityContactRoles) FROM Opportunity",
         "Opportunity [S:Id] {OpportunityContactRoles* [S:Contact>Email]}"},
        {"SELECT Id, (SELECT Id, (SELECT Subject FROM Tasks) FROM Contacts) FROM Account",
         "Account [S:Id] {Contacts* [S:Id] {Tasks* [S:Subject]}}"},
        {"SELECT Id, (SELECT Id FROM Opportunities WHERE AccountId IN (SELECT Id FROM Account "
         "WHERE Rating = 'Hot')) FROM Account WHERE Id IN (SELECT AccountId FROM Case)",
         "Account [S:Id W:Id] {Opportunities* [S:Id W:AccountId] {Account [S:Id W:Rating]}} "
         "{Case [S:AccountId]}"},
        {"SELECT Id, (SELECT COUNT() FROM Contacts) FROM Account",
         "Account [S:Id] {Contacts*# []}"},
        /* functions */
        {"SELECT COUNT() FROM Contact", "Contact# []"},
        {"SELECT count() FROM Lead WHERE Status = 'x' LIMIT 1", "Lead# L1 [W:Status]"},
        {"SELECT COUNT(Id), COUNT_DISTINCT(AccountId) FROM Contact", "Contact [S:Id S:AccountId]"},
        {"SELECT SUM(Amount), AVG(Amount), MIN(CloseDate), MAX(CloseDate) FROM Opportunity",
         "Opportunity [S:Amount S:Amount S:CloseDate S:CloseDate]"},
        {"SELECT toLabel(StageName), FORMAT(Amount), convertCurrency(Amount) FROM Opportunity",
         "Opportunity [S:StageName S:Amount S:Amount]"},
        {"SELECT FORMAT(convertCurrency(Amount)) FROM Opportunity", "Opportunity [S:Amount]"},
        {"SELECT HOUR_IN_DAY(convertTimezone(CreatedDate)), COUNT(Id) FROM Case GROUP BY "
         "HOUR_IN_DAY(convertTimezone(CreatedDate))",
         "Case [S:CreatedDate S:Id G:CreatedDate]"},
        {"SELECT Id FROM Case WHERE CALENDAR_YEAR(CreatedDate) = 2024 AND DAY_ONLY(ClosedDate) "
         "= TODAY AND DAY_IN_WEEK(CreatedDate) = 2",
         "Case [S:Id W:CreatedDate W:ClosedDate W:CreatedDate]"},
        {"SELECT CALENDAR_MONTH(CloseDate), CALENDAR_QUARTER(CloseDate), FISCAL_MONTH(CloseDate), "
         "FISCAL_QUARTER(CloseDate), FISCAL_YEAR(CloseDate), DAY_IN_MONTH(CloseDate), "
         "DAY_IN_YEAR(CloseDate), WEEK_IN_MONTH(CloseDate), WEEK_IN_YEAR(CloseDate) FROM "
         "Opportunity",
         "Opportunity [S:CloseDate S:CloseDate S:CloseDate S:CloseDate S:CloseDate S:CloseDate "
         "S:CloseDate S:CloseDate S:CloseDate]"},
        {"SELECT Account.Industry, SUM(Amount) FROM Opportunity GROUP BY Account.Industry",
         "Opportunity [S:Account>Industry S:Amount G:Account>Industry]"},
        {"SELECT LeadSource, GROUPING(LeadSource) FROM Lead GROUP BY LeadSource",
         "Lead [S:LeadSource S:LeadSource G:LeadSource]"},
        {"SELECT MAX(Account.AnnualRevenue) FROM Opportunity",
         "Opportunity [S:Account>AnnualRevenue]"},
        /* GROUP BY / HAVING / ORDER BY / LIMIT / OFFSET / WITH / FOR / UPDATE */
        {"SELECT StageName, COUNT(Id) FROM Opportunity WHERE IsClosed = false GROUP BY StageName "
         "HAVING COUNT(Id) > 5 AND StageName != null ORDER BY COUNT(Id) DESC NULLS LAST LIMIT 3",
         "Opportunity L3 [S:StageName S:Id W:IsClosed G:StageName H:Id H:StageName O:Id]"},
        {"SELECT OwnerId FROM Case GROUP BY OwnerId, Status HAVING Status IN ('New')",
         "Case [S:OwnerId G:OwnerId G:Status H:Status]"},
        {"SELECT Id FROM Account ORDER BY Name ASC NULLS FIRST, CreatedDate DESC, Id",
         "Account [S:Id O:Name O:CreatedDate O:Id]"},
        {"SELECT Id FROM Account ORDER BY MAX(CreatedDate)", "Account [S:Id O:CreatedDate]"},
        {"SELECT Id FROM Account LIMIT 0", "Account L0 [S:Id]"},
        {"SELECT Id FROM Account OFFSET 2000", "Account O2000 [S:Id]"},
        {"SELECT Id FROM Account LIMIT 2000000000", "Account L2000000000 [S:Id]"},
        {"SELECT Id FROM Account WHERE Name = 'x' WITH SECURITY_ENFORCED ORDER BY Name",
         "Account [S:Id W:Name O:Name]"},
        {"SELECT Id FROM Account WITH user_mode", "Account [S:Id]"},
        {"SELECT Id FROM Contact LIMIT 1 FOR VIEW", "Contact L1 [S:Id]"},
        {"SELECT Id FROM Contact FOR REFERENCE", "Contact [S:Id]"},
        {"SELECT Id FROM KnowledgeArticleVersion WHERE PublishStatus = 'Online' UPDATE TRACKING",
         "KnowledgeArticleVersion [S:Id W:PublishStatus]"},
        {"SELECT Id FROM KnowledgeArticleVersion UPDATE VIEWSTAT",
         "KnowledgeArticleVersion [S:Id]"},
        {"SELECT Id FROM Account WHERE Name = 'x' GROUP BY Id ORDER BY Id LIMIT 1 OFFSET 1 FOR "
         "VIEW",
         "Account L1 O1 [S:Id W:Name G:Id O:Id]"},
    };
    char err[256];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct soql_query *q = soql_parse(cases[i].soql, strlen(cases[i].soql), err, sizeof(err));
        struct tbuf b = {.n = 0};

        if (q == NULL)
            fail_msg("%s: rejected: %s", cases[i].soql, err);
        tree_str(&b, q);
        if (strcmp(b.s, cases[i].tree) != 0)
            fail_msg("%s:\n  got  %s\n  want %s", cases[i].soql, b.s, cases[i].tree);
        soql_free(q);
    }
}

static void test_soql_reject(void **state)
{
    static const struct {
        const char *soql, *err; /* err: a substring of the message */
    } cases[] = {
        {"SELECT FIELDS(ALL) FROM Account LIMIT 200", "construct not allowed: FIELDS(ALL)"},
        {"SELECT FIELDS(standard) FROM Account", "construct not allowed: FIELDS(standard)"},
        {"SELECT Id, FIELDS(CUSTOM) FROM Account", "construct not allowed: FIELDS(CUSTOM)"},
        {"SELECT Id, (SELECT FIELDS(ALL) FROM Contacts) FROM Account",
         "construct not allowed: FIELDS(ALL)"},
        {"SELECT TYPEOF What WHEN Account THEN Phone END FROM Event",
         "construct not allowed: TYPEOF"},
        {"SELECT Id, typeof Owner WHEN User THEN Email END FROM Case",
         "construct not allowed: TYPEOF"},
        {"SELECT Id FROM Account WHERE Name = :name", "construct not allowed: bind variable"},
        {"SELECT Id FROM Account WHERE Id IN :ids", "construct not allowed: bind variable"},
        {"SELECT Id FROM Account WHERE Id IN:ids",
         "construct not allowed: bind variable at offset 34"},
        {"SELECT Id FROM Account /* x */", "construct not allowed: comment ('/*')"},
        {"SELECT Id FROM Account -- x", "construct not allowed: comment ('--')"},
        {"SELECT Id FROM Account WHERE Amount = --1", "construct not allowed: comment ('--')"},
        {"SELECT Id FROM Account; SELECT Id FROM Contact", "construct not allowed: ';'"},
        {"SELECT Id, Name n FROM Account", "construct not allowed: column alias 'n' at offset 16"},
        {"SELECT COUNT(Id) total FROM Contact", "construct not allowed: column alias 'total'"},
        {"SELECT Id, (SELECT Id x FROM Contacts) FROM Account",
         "construct not allowed: column alias 'x'"},
        {"SELECT Id FROM Contact c", "construct not allowed: FROM alias 'c'"},
        {"SELECT Id, (SELECT Id FROM Contacts c) FROM Account",
         "construct not allowed: FROM alias 'c'"},
        {"SELECT Id FROM Contact, Account", "construct not allowed: more than one object in FROM"},
        {"SELECT Id FROM Account.Contacts", "construct not allowed: relationship path in FROM"},
        {"SELECT Id FROM Opportunity USING SCOPE mine", "construct not allowed: USING SCOPE"},
        {"SELECT Id FROM KnowledgeArticleVersion WITH DATA CATEGORY Geo__c AT Eu__c",
         "construct not allowed: WITH DATA CATEGORY"},
        {"SELECT Id FROM Account WITH SYSTEM_MODE", "construct not allowed: WITH SYSTEM_MODE"},
        {"SELECT LeadSource, COUNT(Id) FROM Lead GROUP BY ROLLUP(LeadSource)",
         "construct not allowed: GROUP BY ROLLUP"},
        {"SELECT Type, COUNT(Id) FROM Account GROUP BY CUBE(Type)",
         "construct not allowed: GROUP BY CUBE"},
        {"SELECT Id FROM Account WHERE DISTANCE(Loc__c, GEOLOCATION(1, 2), 'mi') < 5",
         "construct not allowed: DISTANCE/GEOLOCATION"},
        {"SELECT Id, DISTANCE(Loc__c, GEOLOCATION(1, 2), 'mi') FROM Account",
         "construct not allowed: DISTANCE/GEOLOCATION"},
        {"SELECT Id FROM Account ORDER BY DISTANCE(Loc__c, GEOLOCATION(1, 2), 'mi')",
         "construct not allowed: DISTANCE/GEOLOCATION"},
        {"SELECT Id FROM Account LIMIT 1 FOR UPDATE", "construct not allowed: FOR UPDATE"},
        {"SELECT Id FROM Account ALL ROWS", "construct not allowed: ALL ROWS"},
        {"SELECT UPPER(Name) FROM Account", "construct not allowed: function UPPER()"},
        {"SELECT Id FROM Account WHERE LOWER(Name) = 'a'",
         "construct not allowed: function LOWER()"},
        {"SELECT Id FROM Account GROUP BY Foo(Name)", "construct not allowed: function Foo()"},
        {"SELECT Id FROM Account WHERE Id IN (SELECT Id FROM Contact WHERE Name = 'x' AND Id IN "
         "(SELECT Id FROM Lead)) HAVING COUNT(Id) IN (SELECT Id FROM Lead)",
         "unexpected 'HAVING'"},
        {"SELECT Name FROM Account GROUP BY Name HAVING Name IN (SELECT Name FROM Lead)",
         "construct not allowed: semi-join in HAVING"},
        /* malformed: the message says what and where */
        {"SELECT Id, FROM Account", "unexpected 'FROM' at offset 11"},
        {"SELECT FROM Account", "unexpected 'FROM' at offset 7"},
        {"SELECT Id FROM", "unexpected end of query at offset 14 (expected an object name)"},
        {"SELECT Id FROM WHERE", "unexpected 'WHERE' at offset 15"},
        {"SELECT Id FROM Account WHERE", "unexpected end of query"},
        {"SELECT Id FROM Account WHERE Name", "expected a comparison operator"},
        {"SELECT Id FROM Account WHERE Name = Industry", "cannot compare a field with a field"},
        {"SELECT Id FROM Account WHERE Name LIKE Industry", "expected a string after LIKE"},
        {"SELECT Id FROM Account WHERE Name NOT LIKE 'x'", "unexpected 'NOT'"},
        {"SELECT Id FROM Account WHERE Name == 'x'", "unexpected '=' at offset 35"},
        {"SELECT Id FROM Account WHERE Name = \"x\"", "strings are single-quoted"},
        {"SELECT Id FROM Account WHERE Name = 'x", "unterminated string"},
        {"SELECT Id FROM Account WHERE Name = 'x\\'", "unterminated string"},
        {"SELECT Id FROM Account WHERE Name = 'a\\qb'", "invalid escape sequence at offset 38"},
        {"SELECT Id FROM Account WHERE Name = '\\u00g1'", "malformed \\u escape"},
        {"SELECT Id FROM Account WHERE (Name = 'x'", "unexpected end of query"},
        {"SELECT Id FROM Account WHERE Name = 'x')", "unbalanced ')'"},
        {"SELECT Id FROM Account WHERE Name IN ()", "unexpected ')'"},
        {"SELECT Id FROM Account WHERE Name IN ('a',)", "unexpected ')'"},
        {"SELECT Id FROM Account WHERE Name INCLUDES 'x'", "expected '('"},
        {"SELECT Id FROM Account trailing garbage", "FROM alias 'trailing'"},
        {"SELECT Id FROM Account WHERE Name = 'x' garbage", "unexpected 'garbage'"},
        {"SELECT Id FROM Account LIMIT 5 5", "unexpected '5'"},
        {"SELECT Id FROM Account LIMIT -1", "expected a non-negative integer"},
        {"SELECT Id FROM Account LIMIT 1.5", "expected a non-negative integer"},
        {"SELECT Id FROM Account LIMIT 99999999999999999999", "LIMIT at offset 29 is out of range"},
        {"SELECT Id FROM Account OFFSET 2000000001", "OFFSET at offset 30 is out of range"},
        {"SELECT Id FROM Account ORDER BY Name NULLS", "expected FIRST or LAST"},
        {"SELECT Id FROM Account WHERE D = 2024-13-01", "malformed date"},
        {"SELECT Id FROM Account WHERE D = 2024-01-01T24:00:00Z", "malformed date"},
        {"SELECT Id FROM Account WHERE D = 2024-01-01T10:00:00", "malformed date"},
        {"SELECT Id FROM Account WHERE D = 2024-01-01X", "malformed date"},
        {"SELECT Id FROM Account WHERE D = LAST_N_DAYS", "LAST_N_DAYS needs ':n'"},
        {"SELECT Id FROM Account WHERE D = LAST_N_DAYS:", "LAST_N_DAYS needs ':n'"},
        {"SELECT Id FROM Account WHERE D = LAST_N_DAYS:x", "LAST_N_DAYS needs ':n'"},
        {"SELECT Id FROM Account WHERE D = TODAY:3", "unexpected ':'"},
        {"SELECT Id FROM Account WHERE A = 5abc", "malformed number"},
        {"SELECT Id FROM Account WHERE A = 1.", "malformed number"},
        {"SELECT Id FROM Account WHERE A = USD1.5x", "malformed currency literal"},
        {"SELECT Id, Account.FROM FROM Contact", "expected a field name after '.'"},
        {"SELECT Id, Account. FROM Contact", "space around '.' in a field path at offset 18"},
        {"SELECT Id, Account. Name FROM Contact", "space around '.' in a field path at offset 18"},
        {"SELECT Id, Account .Name FROM Contact", "space around '.' in a field path at offset 19"},
        {"SELECT Id, Account.", "unexpected end of query at offset 19"},
        {"SELECT Id FROM Account ORDER BY toLabel(Type)",
         "construct not allowed: toLabel() in ORDER BY at offset 32"},
        {"SELECT Id FROM Account ORDER BY convertCurrency(AnnualRevenue)",
         "construct not allowed: convertCurrency() in ORDER BY"},
        {"SELECT Type FROM Account GROUP BY FORMAT(Type)",
         "construct not allowed: FORMAT() in GROUP BY"},
        {"SELECT Type FROM Account GROUP BY SUM(AnnualRevenue)",
         "construct not allowed: SUM() in GROUP BY"},
        {"SELECT Type FROM Account GROUP BY convertTimezone(CreatedDate)",
         "construct not allowed: convertTimezone() in GROUP BY"},
        {"SELECT Type, COUNT(Id) FROM Account GROUP BY CUBE, Type",
         "construct not allowed: GROUP BY CUBE"},
        {"SELECT Id, [Name] FROM Account", "unexpected '['"},
        {"SELECT Id FROM Account WHERE A = {x}", "unexpected '{'"},
        {"SELECT Id FROM Account WHERE A = @x", "unexpected '@'"},
        {"SELECT Id FROM Acc\xc3\xa9unt", "unexpected non-ASCII character at offset 18"},
        {"DELETE FROM Account", "unexpected 'DELETE' at offset 0 (expected SELECT)"},
        {"", "unexpected end of query at offset 0 (expected SELECT)"},
        {"   ", "expected SELECT"},
        {"SELECT COUNT(), Id FROM Contact", "COUNT() at offset 7 must be the only item"},
        {"SELECT COUNT(*) FROM Contact", "unexpected '*'"},
        {"SELECT SUM() FROM Opportunity", "unexpected ')'"},
        {"SELECT SUM(Amount, Id) FROM Opportunity", "unexpected ','"},
        {"SELECT Id FROM Account WHERE Id IN (SELECT AccountId, Id FROM Contact)",
         "must select exactly one field"},
        {"SELECT Id FROM Account WHERE Id IN (SELECT MAX(AccountId) FROM Contact)",
         "must select one field"},
        {"SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Contact LIMIT 5)",
         "unexpected 'LIMIT'"},
        {"SELECT Id, (SELECT Id FROM Contacts GROUP BY Id) FROM Account", "unexpected 'GROUP'"},
        {"SELECT Id, (Id) FROM Account", "expected SELECT to start a subquery"},
        {"SELECT Id FROM Account WITH", "expected SECURITY_ENFORCED or USER_MODE"},
        {"SELECT COUNT(Id) FROM Account HAVING COUNT(Id) > 1",
         "unexpected 'HAVING' at offset 30 (expected end of query)"},
        {"SELECT Id WHERE Name = 'x'", "unexpected 'WHERE' at offset 10 (expected FROM)"},
        {"SELECT Id FROM Account Name", "construct not allowed: FROM alias 'Name'"},
        {"SELECT Id FROM Account GROUP Id", "unexpected 'GROUP' at offset 23"},
        {"SELECT Id FROM Account FOR", "expected VIEW or REFERENCE"},
        {"SELECT Id FROM Account UPDATE", "expected TRACKING or VIEWSTAT"},
        {"SELECT Id FROM Account WHERE Id IN (SELECT Id FROM Account WHERE Id IN (SELECT Id FROM "
         "Account WHERE Name = Foo))",
         "unexpected 'Foo' at offset 108"},
    };
    char err[256];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct soql_query *q = soql_parse(cases[i].soql, strlen(cases[i].soql), err, sizeof(err));

        if (q != NULL) {
            struct tbuf b = {.n = 0};

            tree_str(&b, q);
            soql_free(q);
            fail_msg("%s: accepted as %s", cases[i].soql, b.s);
        }
        if (strstr(err, cases[i].err) == NULL)
            fail_msg("%s:\n  got  %s\n  want %s", cases[i].soql, err, cases[i].err);
    }
}

/* Bytes a C string literal table cannot hold: NUL, control chars, bad UTF-8, length. */
static void test_soql_bytes(void **state)
{
    static const struct {
        const char *soql;
        size_t len;
        const char *err;
    } cases[] = {
        {"SELECT Id FROM Account\0 WHERE Name = 'x'", 40, "control character 0x00 at offset 22"},
        {"SELECT Id FROM Account WHERE Name = 'a\0b'", 41, "control character 0x00 at offset 38"},
        {"SELECT Id\x01 FROM Account", 24, "control character 0x01 at offset 9"},
        {"SELECT Id FROM Account\x7f", 23, "control character 0x7f"},
        {"SELECT Id FROM Account WHERE Name = '\x1b[31m'", 44, "control character 0x1b"},
        {"SELECT Id FROM Account WHERE Name = '\xc0\xaf'", 40, "invalid UTF-8 at offset 37"},
        {"SELECT Id FROM Account WHERE Name = '\xed\xa0\x80'", 41, "invalid UTF-8"},
        {"SELECT Id FROM Account WHERE Name = '\xf4\x90\x80\x80'", 42, "invalid UTF-8"},
        {"SELECT Id FROM Account WHERE Name = '\xe2\x82'", 40, "invalid UTF-8"},
        {"SELECT Id FROM Account WHERE Name = '\xff'", 39, "invalid UTF-8"},
        {"SELECT Id FROM Account WHERE Name = '\x80'", 39, "invalid UTF-8"},
        {"SELECT Id FROM Account WHERE Name = '\xe0\x80\xaf'", 41, "invalid UTF-8"},
    };
    char err[256];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct soql_query *q = soql_parse(cases[i].soql, cases[i].len, err, sizeof(err));

        if (q != NULL) {
            soql_free(q);
            fail_msg("case %zu accepted", i);
        }
        if (strstr(err, cases[i].err) == NULL)
            fail_msg("case %zu:\n  got  %s\n  want %s", i, err, cases[i].err);
    }
}

/* len is honoured: the text need not be NUL-terminated and nothing past len is read. */
static void test_soql_len(void **state)
{
    const char *s = "SELECT Id FROM Account WHERE Name = 'x' garbage";
    char err[64];
    struct soql_query *q = soql_parse(s, 39, err, sizeof(err));

    (void)state;
    assert_non_null(q);
    assert_string_equal(q->from, "Account");
    assert_int_equal(q->nrefs, 2);
    soql_free(q);
    assert_null(soql_parse(s, 41, err, sizeof(err)));
    assert_string_equal(err, "unexpected 'g' at offset 40 (expected end of query)");
    assert_null(soql_parse(NULL, 0, err, sizeof(err)));
    assert_string_equal(err, "no query");
    soql_free(NULL);
}

static char *repeat_query(const char *head, const char *unit, size_t n, const char *mid,
                          const char *tail_unit, const char *tail)
{
    size_t len =
        strlen(head) + n * (strlen(unit) + strlen(tail_unit)) + strlen(mid) + strlen(tail) + 1;
    char *s = malloc(len);
    size_t at = 0;

    assert_non_null(s);
    at += (size_t)snprintf(s + at, len - at, "%s", head);
    for (size_t i = 0; i < n; i++)
        at += (size_t)snprintf(s + at, len - at, "%s", unit);
    at += (size_t)snprintf(s + at, len - at, "%s", mid);
    for (size_t i = 0; i < n; i++)
        at += (size_t)snprintf(s + at, len - at, "%s", tail_unit);
    snprintf(s + at, len - at, "%s", tail);
    return s;
}

/* SOQL_MAX_DEPTH levels of each nesting construct parse; one more is refused. */
static void test_soql_depth(void **state)
{
    static const struct {
        const char *head, *unit, *mid, *tail_unit, *tail;
        size_t base; /* levels the head and mid already use */
    } cases[] = {
        {"SELECT Id FROM Account WHERE ", "(", "Name = 'x'", ")", "", 1},
        {"SELECT Id FROM Account WHERE ", "NOT ", "Name = 'x'", "", "", 1},
        {"SELECT ", "FORMAT(", "Amount", ")", " FROM Opportunity", 0},
        {"SELECT Id, ", "(SELECT Id, ", "Name", " FROM Contacts)", " FROM Account", 0},
    };
    char err[256];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t ok = SOQL_MAX_DEPTH - cases[i].base;
        char *s = repeat_query(cases[i].head, cases[i].unit, ok, cases[i].mid, cases[i].tail_unit,
                               cases[i].tail);
        struct soql_query *q = soql_parse(s, strlen(s), err, sizeof(err));

        if (q == NULL)
            fail_msg("depth %zu refused: %s: %s", ok, err, s);
        soql_free(q);
        free(s);
        s = repeat_query(cases[i].head, cases[i].unit, ok + 1, cases[i].mid, cases[i].tail_unit,
                         cases[i].tail);
        q = soql_parse(s, strlen(s), err, sizeof(err));
        if (q != NULL)
            fail_msg("depth %zu accepted: %s", ok + 1, s);
        assert_non_null(strstr(err, "nested deeper than 16 levels"));
        free(s);
    }
}

/* SOQL_MAX_LEN characters parse; one more is refused before anything else. */
static void test_soql_max_len(void **state)
{
    const char *head = "SELECT Id FROM Account WHERE Name = '";
    size_t n = SOQL_MAX_LEN + 1;
    char *s = malloc(n + 1);
    char err[128];
    struct soql_query *q;

    (void)state;
    assert_non_null(s);
    memset(s, 'a', n);
    memcpy(s, head, strlen(head));
    s[SOQL_MAX_LEN - 1] = '\'';
    q = soql_parse(s, SOQL_MAX_LEN, err, sizeof(err));
    if (q == NULL)
        fail_msg("%s", err);
    soql_free(q);
    s[SOQL_MAX_LEN - 1] = 'a';
    s[SOQL_MAX_LEN] = '\'';
    assert_null(soql_parse(s, n, err, sizeof(err)));
    assert_string_equal(err, "query longer than 100000 characters");
    free(s);
}

/* A short or zero-length err buffer is truncated, never overrun; the token shown is capped. */
static void test_soql_err_buffer(void **state)
{
    const char *s =
        "SELECT Id FROM Account WHERE Name = Aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    char err[256], small[8] = "xxxxxxx";

    (void)state;
    assert_null(soql_parse(s, strlen(s), small, 5));
    assert_string_equal(small, "unex");
    assert_null(soql_parse(s, strlen(s), NULL, 0));
    assert_null(soql_parse(s, strlen(s), err, sizeof(err)));
    assert_non_null(
        strstr(err, "unexpected 'Aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...' at offset 36"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_soql_accept),     cmocka_unit_test(test_soql_reject),
        cmocka_unit_test(test_soql_bytes),      cmocka_unit_test(test_soql_len),
        cmocka_unit_test(test_soql_depth),      cmocka_unit_test(test_soql_max_len),
        cmocka_unit_test(test_soql_err_buffer),
    };
    return cmocka_run_group_tests_name("soql", tests, NULL, NULL);
}
