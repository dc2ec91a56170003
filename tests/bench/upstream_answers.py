#!/usr/bin/env python3
# The bench upstream's answers (tests/bench/run.sh, write_profile.sh): from DIR/contact.json
# (the canned contact, GET 1), contact 2 for writes (GET and PATCH alike, nginx `return`) and a
# Salesforce Contact SF_ID for the handshake runs; writes DIR/contact2.json, DIR/sf-contact.json
# and DIR/upstream-locations.conf (included by nginx-upstream.conf.in). The spread write rows
# (write_profile.sh): contacts 1000..1063 answer GET and PATCH as themselves, and batch/read
# answers all 64 whatever it is asked (crmgate picks the ones it asked for: parsing 64 records
# a read is more than a real answer, never less).
# (batch-read.json is served as a file.)
# usage: upstream_answers.py DIR SF_ID
import json, sys
SPREAD = int(sys.argv[3]) if len(sys.argv) > 3 else 64
d, sf_id = sys.argv[1], sys.argv[2]
c = json.load(open(f"{d}/contact.json"))
c["id"] = c["properties"]["hs_object_id"] = "2"
c["url"] = c["url"].replace("/record/0-1/1", "/record/0-1/2")
c2 = json.dumps(c, separators=(",", ":"))
sf = json.dumps({"attributes": {"type": "Contact", "url": f"/services/data/v62.0/sobjects/Contact/{sf_id}"},
                 "LastName": "Lovelace", "Email": "ada@example.com", "Id": sf_id}, separators=(",", ":"))
spread = []
for i in range(1000, 1000 + SPREAD):
    r = dict(c, id=str(i), properties=dict(c["properties"], hs_object_id=str(i)))
    del r["url"]
    spread.append(r)
batch = json.dumps({"status": "COMPLETE", "results": spread, "startedAt": "2026-08-21T10:00:00.123Z",
                    "completedAt": "2026-08-21T10:00:00.130Z"}, separators=(",", ":"))
one = dict(c, id="ID", properties=dict(c["properties"], hs_object_id="ID"))
one["url"] = one["url"].replace("/record/0-1/2", "/record/0-1/ID")
one = json.dumps(one, separators=(",", ":"))
for body in (c2, sf, one):
    assert not any(ch in body for ch in "'\\$"), "body must fit in an nginx '...' string"
one = one.replace('"ID"', '"$1"').replace("/ID", "/$1")
open(f"{d}/contact2.json", "w").write(c2)
open(f"{d}/sf-contact.json", "w").write(sf)
open(f"{d}/batch-read.json", "w").write(batch)
open(f"{d}/upstream-locations.conf", "w").write(f"""
        location = /crm/v3/objects/contacts/1 {{
            types {{ }}
            default_type "application/json;charset=utf-8";
            alias {d}/contact.json;
        }}
        location = /crm/v3/objects/contacts/2 {{
            default_type "application/json;charset=utf-8";
            return 200 '{c2}';
        }}
        location = /services/data/v62.0/sobjects/Contact/{sf_id} {{
            default_type "application/json;charset=UTF-8";
            return 200 '{sf}';
        }}
        location ~ ^/crm/v3/objects/contacts/(1[0-9][0-9][0-9])$ {{
            default_type "application/json;charset=utf-8";
            return 200 '{one}';
        }}
        location = /crm/v3/objects/contacts/batch/read {{
            # a static file (too long for `return`), which nginx serves to a POST through the
            # 405 it answers first
            types {{ }}
            default_type "application/json;charset=utf-8";
            alias {d}/batch-read.json;
            error_page 405 =200 $uri;
        }}
        location / {{
            return 404;
        }}
""")
