#!/usr/bin/env python3
# The bench upstream's answers (tests/bench/run.sh, write_profile.sh): from DIR/contact.json
# (the canned contact, GET 1), contact 2 for writes (GET and PATCH alike, nginx `return`) and a
# Salesforce Contact SF_ID for the handshake runs; writes DIR/contact2.json, DIR/sf-contact.json
# and DIR/upstream-locations.conf (included by nginx-upstream.conf.in).
# usage: upstream_answers.py DIR SF_ID
import json, sys
d, sf_id = sys.argv[1], sys.argv[2]
c = json.load(open(f"{d}/contact.json"))
c["id"] = c["properties"]["hs_object_id"] = "2"
c["url"] = c["url"].replace("/record/0-1/1", "/record/0-1/2")
c2 = json.dumps(c, separators=(",", ":"))
sf = json.dumps({"attributes": {"type": "Contact", "url": f"/services/data/v62.0/sobjects/Contact/{sf_id}"},
                 "LastName": "Lovelace", "Email": "ada@example.com", "Id": sf_id}, separators=(",", ":"))
for body in (c2, sf):
    assert not any(ch in body for ch in "'\\$"), "body must fit in an nginx '...' string"
open(f"{d}/contact2.json", "w").write(c2)
open(f"{d}/sf-contact.json", "w").write(sf)
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
        location / {{
            return 404;
        }}
""")
