"""The loopback HubSpot (crm/tests/crm_servers.py) filled like a customer's portal.

In HubSpot a deal does not carry its customer's domain or its people: the deal is
associated with a company (which has the ``domain`` property) and with contacts (which
have ``email``). ``PortalHubSpot`` keeps those records and answers, in the CRM v3 shapes,
``GET /crm/v3/objects/deals[/{id}]?associations=companies,contacts`` (each deal with its
``associations``), ``POST /crm/v3/objects/{companies,contacts}/batch/read``, ``GET /crm/v3/objects/companies/{id}`` and, from the base fake,
``GET /crm/v3/objects/contacts/{id}``. ``portal_from_csv`` loads the same deals the CSV
scenarios import, so the two sources describe one set of deals.
"""

from __future__ import annotations

import copy
import csv
import re
from pathlib import Path

from crm.tests.crm_servers import FakeHubSpot, _now


class PortalHubSpot(FakeHubSpot):
    def __init__(self):
        super().__init__()
        self.companies: dict[str, dict] = {}
        self.deal_associations: dict[str, dict[str, list[str]]] = {}

    def add_company(self, domain: str, name: str) -> str:
        for company in self.companies.values():
            if company["properties"]["domain"] == domain:
                return company["id"]
        company_id = self.new_id()
        self.companies[company_id] = {
            "id": company_id,
            "properties": {"domain": domain, "name": name},
            "createdAt": _now(),
            "updatedAt": _now(),
            "archived": False,
        }
        return company_id

    def add_contact(self, email: str) -> str:
        if email not in self.contacts:
            first, _, last = email.partition("@")[0].partition(".")
            self.contacts[email] = {
                "id": self.new_id(),
                "properties": {"email": email, "firstname": first.title(), "lastname": last.title()},
                "createdAt": _now(),
                "updatedAt": _now(),
                "archived": False,
            }
        return self.contacts[email]["id"]

    def associate(self, deal_id: str, *, companies=(), contacts=()) -> None:
        links = self.deal_associations.setdefault(deal_id, {"companies": [], "contacts": []})
        links["companies"] += list(companies)
        links["contacts"] += list(contacts)

    def route(self, r):
        if r["method"] == "POST" and (
            match := re.fullmatch(r"/crm/v3/objects/(companies|contacts)/batch/read", r["path"])
        ):
            return 200, self._batch_read(match[1], r["body"]), None
        if r["method"] == "GET" and re.fullmatch(r"/crm/v3/owners/\w+", r["path"]):
            return 404, {"status": "error", "message": "Owner not found.", "category": "OBJECT_NOT_FOUND"}, None
        if r["method"] == "GET" and (match := re.fullmatch(r"/crm/v3/objects/companies/(\w+)", r["path"])):
            company = self.companies.get(match[1])
            if company is None:
                return 404, {"status": "error", "message": "Object not found.", "category": "OBJECT_NOT_FOUND"}, None
            return 200, company, None
        status, body, headers = super().route(r)
        wanted = ",".join(r["query"].get("associations", [])).split(",")
        if r["method"] == "GET" and r["path"].startswith("/crm/v3/objects/deals") and status == 200 and wanted != [""]:
            body = copy.deepcopy(body)
            for deal in body.get("results", [body]):
                deal["associations"] = self._associations(deal["id"], wanted)
        return status, body, headers

    def _batch_read(self, kind: str, body: dict) -> dict:
        """``POST /crm/v3/objects/{companies,contacts}/batch/read``: the records asked for by id,
        with only the properties asked for (HubSpot's BatchResponseSimplePublicObject)."""
        records = self.companies if kind == "companies" else {c["id"]: c for c in self.contacts.values()}
        wanted = body.get("properties") or []
        results = [
            {
                "id": records[i["id"]]["id"],
                "properties": {k: v for k, v in records[i["id"]]["properties"].items() if k in wanted},
                "createdAt": records[i["id"]]["createdAt"],
                "updatedAt": records[i["id"]]["updatedAt"],
                "archived": False,
            }
            for i in body.get("inputs", [])
            if i["id"] in records
        ]
        return {"status": "COMPLETE", "results": results, "startedAt": _now(), "completedAt": _now()}

    def _associations(self, deal_id: str, wanted: list[str]) -> dict:
        links = self.deal_associations.get(deal_id, {})
        kinds = {"companies": "deal_to_company", "contacts": "deal_to_contact"}
        return {
            kind: {"results": [{"id": i, "type": kinds[kind]} for i in links.get(kind, [])]}
            for kind in kinds
            if kind in wanted and links.get(kind)
        }


def portal_from_csv(portal: PortalHubSpot, path: Path) -> None:
    """The CSV's deals as HubSpot holds them: the deal, its company (domain) and its contacts."""
    with path.open(newline="", encoding="utf-8") as stream:
        for row in csv.DictReader(stream):
            deal_id = row["crm_deal_id"]
            portal.add_deal(
                deal_id,
                dealname=row["title"],
                dealstage=row["stage"],
                amount=row["amount"].replace(",", ""),
                closedate=f"{row['close_date']}T00:00:00.000Z",
                hs_is_closed=row["is_closed"],
            )
            company = portal.add_company(row["primary_domain"], row["title"].split(" - ")[0])
            contacts = [portal.add_contact(e) for e in row["contact_emails"].split(";") if e]
            portal.associate(deal_id, companies=[company], contacts=contacts)
