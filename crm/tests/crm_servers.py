"""Local HTTP servers that speak the HubSpot CRM v3 and Salesforce REST shapes we use.

Shapes follow the vendors' published references (HubSpot: ``{"id", "properties",
"createdAt", "updatedAt", "archived"}`` objects, ``{"results", "paging": {"next":
{"after"}}}`` pages, ``{"status": "error", "message", "category"}`` errors; Salesforce:
``{"totalSize", "done", "records", "nextRecordsUrl"}`` queries, ``{"id", "success",
"errors", "created"}`` upserts, ``[{"message", "errorCode"}]`` errors). Each test starts its
own; ``fail_next`` queues scripted answers (a 429 with Retry-After, a 500, a 400),
``write_delay`` holds every write that long before it is applied (a slow CRM), and
``writes`` counts every write carrying a Threadline key, per key.

Our key on deals and contacts is one property/field whose history the servers keep as the
vendors do: HubSpot answers ``propertiesWithHistory=<name>`` with every version of the
property (``{"value", "timestamp", "sourceType", "sourceId"}``, newest first); Salesforce
keeps ``OpportunityFieldHistory`` / ``ContactHistory`` rows (``Field``, ``OldValue``,
``NewValue``, a "created" row for a new record) for the tracked fields, queried with SOQL.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, unquote, urlparse

from tests.loopback import LoopbackServer

TOKEN = "pat-test-token"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class FakeCrm:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.scripted: list[dict] = []  # {"method", "path" (regex), "status", "body", "headers"}
        self.writes: Counter = Counter()  # Threadline key -> writes that reached the server
        self.write_delay = 0.0  # seconds each write waits before it is applied and answered
        self.next_id = 1000
        self.on_request = None  # called with each request before it is answered (tests)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self):
                url = urlparse(self.path)
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                request = {
                    "method": self.command,
                    "path": url.path,
                    "query": parse_qs(url.query),
                    "body": body,
                    "auth": self.headers.get("Authorization"),
                    "at": time.monotonic(),
                }
                if server.on_request is not None:
                    server.on_request(request)
                if server.write_delay and self.command in ("POST", "PATCH") and not url.path.endswith("/search"):
                    time.sleep(server.write_delay)  # in flight: not applied yet, invisible to readers
                with server.lock:
                    server.requests.append(request)
                    answer = server._scripted(self.command, url.path)
                    if answer is None:
                        if request["auth"] != f"Bearer {TOKEN}":
                            answer = server.unauthorized()
                        else:
                            answer = server.route(request)
                status, payload, headers = answer
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = _handle  # noqa: N815 - the http.server API

            def log_message(self, *args):
                pass

        self.loopback = LoopbackServer(Handler)

    @property
    def base_url(self) -> str:
        return self.loopback.url

    def fail_next(self, method: str, path: str, status: int, body=None, headers=None, times: int = 1):
        for _ in range(times):
            self.scripted.append({"method": method, "path": path, "status": status, "body": body, "headers": headers})

    def _scripted(self, method, path):
        for i, s in enumerate(self.scripted):
            if s["method"] == method and re.fullmatch(s["path"], path):
                self.scripted.pop(i)
                return s["status"], s["body"], s["headers"]
        return None

    def _count(self, key):
        if key:
            self.writes[key] += 1

    def new_id(self) -> str:
        self.next_id += 1
        return str(self.next_id)

    def __enter__(self):
        self.loopback.start()
        return self

    def __exit__(self, *exc):
        self.loopback.stop()


class FakeHubSpot(FakeCrm):
    """deals (list, search, get, patch), notes (create with associations, search), contacts."""

    KEY = "threadline_idempotency_key"

    def __init__(self):
        super().__init__()
        self.deals: dict[str, dict] = {}
        self.notes: dict[str, dict] = {}
        self.contacts: dict[str, dict] = {}
        self.history: dict[str, dict[str, list]] = {}  # record id -> property -> versions, newest first
        # GET /crm/v3/pipelines/deals; None answers 403, as for a token without the scope.
        self.pipelines: list[dict] | None = [
            {
                "id": "default",
                "label": "Sales Pipeline",
                "stages": [
                    {"id": "appointmentscheduled", "label": "Appointment Scheduled"},
                    {"id": "closedwon", "label": "Closed Won"},
                ],
            },
            {"id": "7788", "label": "Renewals", "stages": [{"id": "99001", "label": "Renewal negotiation"}]},
        ]

    def _set(self, record: dict, properties: dict) -> None:
        """Apply a write; each property it sets gets a version in the record's history."""
        versions = self.history.setdefault(record["id"], {})
        stamp = _now()
        for name, value in properties.items():
            versions.setdefault(name, []).insert(
                0, {"value": value, "timestamp": stamp, "sourceType": "INTEGRATION", "sourceId": "threadline-test-app"}
            )
        record["properties"].update(properties)
        record["updatedAt"] = stamp

    def _read(self, record: dict, r) -> dict:
        """A record as a GET answers it; with ``propertiesWithHistory``, each named property the
        record has, with its versions (names it does not have are ignored, as HubSpot does)."""
        wanted = [p for p in ",".join(r["query"].get("propertiesWithHistory", [])).split(",") if p]
        if not wanted:
            return record
        versions = self.history.get(record["id"], {})
        return {**record, "propertiesWithHistory": {p: versions[p] for p in wanted if p in versions}}

    def add_deal(self, deal_id: str, **properties) -> dict:
        props = {
            "dealname": f"Deal {deal_id}",
            "dealstage": "appointmentscheduled",
            "hs_lastmodifieddate": _now(),
            **properties,
        }
        self.deals[deal_id] = {"id": deal_id, "properties": {}, "createdAt": _now(), "archived": False}
        self._set(self.deals[deal_id], props)
        return self.deals[deal_id]

    def unauthorized(self):
        return (
            401,
            {
                "status": "error",
                "message": "Authentication credentials not found.",
                "category": "INVALID_AUTHENTICATION",
            },
            None,
        )

    def route(self, r):
        m, p, body = r["method"], r["path"], r["body"]
        if p == "/crm/v3/pipelines/deals" and m == "GET":
            if self.pipelines is None:
                return 403, {"status": "error", "message": "This app hasn't been granted all required scopes."}, None
            return 200, {"results": self.pipelines}, None
        if p == "/crm/v3/objects/deals" and m == "GET":
            return self._page(list(self.deals.values()), r, int(r["query"].get("limit", ["100"])[0]))
        if p == "/crm/v3/objects/deals/search" and m == "POST":
            since = int(body["filterGroups"][0]["filters"][0]["value"]) / 1000 if body.get("filterGroups") else 0
            hits = [d for d in self.deals.values() if _ts(d["properties"]["hs_lastmodifieddate"]) >= since]
            return self._page(
                sorted(hits, key=lambda d: d["properties"]["hs_lastmodifieddate"]),
                r,
                int(body.get("limit", 100)),
                after=body.get("after"),
                total=True,
            )
        if match := re.fullmatch(r"/crm/v3/objects/deals/(\w+)", p):
            deal = self.deals.get(match[1])
            if deal is None:
                return 404, {"status": "error", "message": "Object not found.", "category": "OBJECT_NOT_FOUND"}, None
            if m == "PATCH":
                self._count(body["properties"].get(self.KEY))
                self._set(deal, body["properties"])
                deal["properties"]["hs_lastmodifieddate"] = deal["updatedAt"]
                return 200, deal, None
            return 200, self._read(deal, r), None
        if p == "/crm/v3/objects/notes" and m == "POST":
            props = body["properties"]
            if "hs_timestamp" not in props:
                return (
                    400,
                    {"status": "error", "message": "hs_timestamp is required", "category": "VALIDATION_ERROR"},
                    None,
                )
            self._count(props.get(self.KEY))
            note = {
                "id": self.new_id(),
                "properties": props,
                "associations": body.get("associations", []),
                "createdAt": _now(),
                "updatedAt": _now(),
                "archived": False,
            }
            self.notes[note["id"]] = note
            return 201, {k: v for k, v in note.items() if k != "associations"}, None
        if p == "/crm/v3/objects/notes/search" and m == "POST":
            f = body["filterGroups"][0]["filters"][0]
            hits = [n for n in self.notes.values() if n["properties"].get(f["propertyName"]) == f["value"]]
            return 200, {"total": len(hits), "results": hits[: body.get("limit", 10)]}, None
        if p == "/crm/v3/objects/contacts" and m == "POST":
            props = body["properties"]
            if props["email"] in self.contacts:
                return 409, {"status": "error", "message": "Contact already exists.", "category": "CONFLICT"}, None
            self._count(props.get(self.KEY))
            contact = {"id": self.new_id(), "properties": {}, "createdAt": _now(), "archived": False}
            self._set(contact, props)
            self.contacts[props["email"]] = contact
            return 201, contact, None
        if match := re.fullmatch(r"/crm/v3/objects/contacts/([^/]+)", p):
            ident = unquote(match[1])
            by_email = r["query"].get("idProperty") == ["email"]
            contact = (
                self.contacts.get(ident)
                if by_email
                else next((c for c in self.contacts.values() if c["id"] == ident), None)
            )
            if contact is None:
                return 404, {"status": "error", "message": "Object not found.", "category": "OBJECT_NOT_FOUND"}, None
            if m == "PATCH":
                self._count(body["properties"].get(self.KEY))
                self._set(contact, body["properties"])
                return 200, contact, None
            return 200, self._read(contact, r), None
        return 404, {"status": "error", "message": f"no route {m} {p}", "category": "OBJECT_NOT_FOUND"}, None

    def _page(self, items, r, limit, after=None, total=False):
        after = int(after or r["query"].get("after", ["0"])[0])
        page = items[after : after + limit]
        result = {"results": page}
        if total:
            result["total"] = len(items)
        if after + limit < len(items):
            result["paging"] = {"next": {"after": str(after + limit), "link": "?after=" + str(after + limit)}}
        return 200, result, None


class FakeSalesforce(FakeCrm):
    """query (SOQL, paged), Opportunity get/patch, Task upsert by Threadline_Key__c, Contact,
    and field history tracking of Threadline_Key__c on Opportunity and Contact."""

    KEY = "Threadline_Key__c"
    HISTORY = {"Opportunity": ("OpportunityFieldHistory", "OpportunityId"), "Contact": ("ContactHistory", "ContactId")}

    def __init__(self, version="62.0", page_size=2000):
        super().__init__()
        self.prefix = f"/services/data/v{version}"
        self.page_size = page_size
        self.opportunities: dict[str, dict] = {}
        self.tasks: dict[str, dict] = {}  # by Threadline_Key__c
        self.contacts: dict[str, dict] = {}  # by Id
        self.cursors: dict[str, list] = {}
        self.tracked = {"Opportunity": {self.KEY}, "Contact": {self.KEY}}  # field history tracking on
        self.history: list[dict] = []  # OpportunityFieldHistory and ContactHistory rows, oldest first

    def sf_id(self, prefix: str) -> str:
        """An 18-character id: the object's key prefix, a number, the case-safe suffix."""
        return f"{prefix}{self.new_id().zfill(12)}AAA"

    def _track(self, sobject: str, record: dict, changes: dict | None) -> None:
        """History rows as Salesforce writes them: "created" for a new record (no values), and
        for an update one row per tracked field whose value changed."""
        history, parent = self.HISTORY[sobject]
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
        rows = (
            [("created", None, None)]
            if changes is None
            else [
                (name, record.get(name), value)
                for name, value in changes.items()
                if name in self.tracked[sobject] and record.get(name) != value
            ]
        )
        for name, old, new in rows:
            row_id = self.sf_id("017")
            self.history.append(
                {
                    "attributes": {"type": history, "url": f"{self.prefix}/sobjects/{history}/{row_id}"},
                    "Id": row_id,
                    parent: record["Id"],
                    "Field": name,
                    "DataType": "Text" if name != "created" else None,
                    "OldValue": old,
                    "NewValue": new,
                    "CreatedDate": stamp,
                    "IsDeleted": False,
                }
            )

    def add_opportunity(self, opp_id: str, **fields) -> dict:
        record = {
            "attributes": {"type": "Opportunity", "url": f"{self.prefix}/sobjects/Opportunity/{opp_id}"},
            "Id": opp_id,
            "Name": f"Opportunity {opp_id}",
            "StageName": "Prospecting",
            "IsClosed": False,
            "Amount": None,
            "CloseDate": None,
            "OwnerId": "005000000000001",
            "Owner": {"attributes": {"type": "User"}, "Email": "owner@seller.example"},
            "LastModifiedDate": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
            **fields,
        }
        self.opportunities[opp_id] = record
        return record

    def unauthorized(self):
        return 401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}], None

    def route(self, r):
        m, p, body = r["method"], r["path"], r["body"]
        if p == f"{self.prefix}/query" and m == "GET":
            return self._query(r["query"]["q"][0])
        if match := re.fullmatch(rf"{re.escape(self.prefix)}/query/(\w+)-(\d+)", p):
            return self._page(match[1], int(match[2]))
        if match := re.fullmatch(rf"{re.escape(self.prefix)}/sobjects/Opportunity/(\w+)", p):
            opp = self.opportunities.get(match[1])
            if opp is None:
                return 404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}], None
            if m == "PATCH":
                unknown = [
                    k for k in body if k not in opp and not k.endswith("__c") and k not in ("NextStep", "Description")
                ]
                if unknown:
                    return (
                        400,
                        [
                            {
                                "message": f"No such column '{unknown[0]}' on sobject of type Opportunity",
                                "errorCode": "INVALID_FIELD",
                            }
                        ],
                        None,
                    )
                self._count(body.get(self.KEY))
                self._track("Opportunity", opp, body)
                opp.update(body)
                return 204, None, None
            return 200, _fields(opp, r["query"].get("fields")), None
        if match := re.fullmatch(rf"{re.escape(self.prefix)}/sobjects/Task/Threadline_Key__c/(\w+)", p):
            key = match[1]
            self._count(key)
            if key in self.tasks:
                self.tasks[key].update(body)
                return 200, {"id": self.tasks[key]["Id"], "success": True, "errors": [], "created": False}, None
            self.tasks[key] = {"Id": self.sf_id("00T"), "Threadline_Key__c": key, **body}
            return 201, {"id": self.tasks[key]["Id"], "success": True, "errors": [], "created": True}, None
        if p == f"{self.prefix}/sobjects/Contact" and m == "POST":
            if "LastName" not in body:
                return (
                    400,
                    [
                        {
                            "message": "Required fields are missing: [LastName]",
                            "errorCode": "REQUIRED_FIELD_MISSING",
                            "fields": ["LastName"],
                        }
                    ],
                    None,
                )
            self._count(body.get(self.KEY))
            contact = {"attributes": {"type": "Contact"}, "Id": self.sf_id("003"), **body}
            self.contacts[contact["Id"]] = contact
            self._track("Contact", contact, None)
            return 201, {"id": contact["Id"], "success": True, "errors": []}, None
        if match := re.fullmatch(rf"{re.escape(self.prefix)}/sobjects/Contact/(\w+)", p):
            contact = self.contacts.get(match[1])
            if contact is None:
                return 404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}], None
            if m == "PATCH":
                self._count(body.get(self.KEY))
                self._track("Contact", contact, body)
                contact.update(body)
                return 204, None, None
            return 200, _fields(contact, r["query"].get("fields")), None
        return 404, [{"errorCode": "NOT_FOUND", "message": f"no route {m} {p}"}], None

    def _query(self, soql):
        select = [f.strip() for f in re.match(r"SELECT (.+?) FROM (\w+)", soql)[1].split(",")]
        sobject = re.match(r"SELECT .+? FROM (\w+)", soql)[1]
        if sobject in ("OpportunityFieldHistory", "ContactHistory"):
            parent = "OpportunityId" if sobject == "OpportunityFieldHistory" else "ContactId"
            where = re.search(rf"WHERE {parent} = '(\w+)' AND Field = '(\w+)'", soql)
            records = [
                h
                for h in self.history
                if h["attributes"]["type"] == sobject and h.get(parent) == where[1] and h["Field"] == where[2]
            ]
        elif sobject == "Contact":
            email = re.search(r"Email = '([^']*)'", soql)[1]
            records = [c for c in self.contacts.values() if c.get("Email") == email][:1]
            return 200, {"totalSize": len(records), "done": True, "records": _project(records, select)}, None
        else:
            records = sorted(self.opportunities.values(), key=lambda o: o["LastModifiedDate"])
            if since := re.search(r"LastModifiedDate >= (\S+)", soql):
                cutoff = since[1].replace("Z", "")
                records = [o for o in records if o["LastModifiedDate"][:19] >= cutoff]
        cursor = f"01g{len(self.cursors)}"
        self.cursors[cursor] = _project(records, select)
        return self._page(cursor, 0)

    def _page(self, cursor, offset):
        records = self.cursors[cursor]
        page = records[offset : offset + self.page_size]
        done = offset + self.page_size >= len(records)
        result = {"totalSize": len(records), "done": done, "records": page}
        if not done:
            result["nextRecordsUrl"] = f"{self.prefix}/query/{cursor}-{offset + self.page_size}"
        return 200, result, None


def _project(records: list[dict], select: list[str]) -> list[dict]:
    """The SELECTed fields of each record (a relationship such as Owner.Email keeps Owner), as
    SOQL returns them: with ``attributes``, and null for a field the record has no value for."""
    out = []
    for record in records:
        row = {"attributes": record["attributes"]}
        for name in select:
            name = name.split(".")[0]
            row[name] = record.get(name)
        out.append(row)
    return out


def _fields(record: dict, fields: list[str] | None) -> dict:
    """``GET sobjects/<type>/<id>?fields=a,b``: those fields, with Id and attributes."""
    if not fields:
        return record
    return _project([record], ["Id", *fields[0].split(",")])[0]


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
