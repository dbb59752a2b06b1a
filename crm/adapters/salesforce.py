"""Salesforce through the REST API with an OAuth access token and the org's instance URL.

Opportunities are updated with PATCH (idempotent by itself); notes are Tasks upserted by
the External ID field ``Threadline_Key__c`` (``PATCH sobjects/Task/Threadline_Key__c/<key>``,
so a second send updates the same Task: idempotent by itself, nothing to look for);
contacts are found by email with SOQL (Email is not an external id).

Opportunities and Contacts are written by many threads, so their ``Threadline_Key__c`` (a
Text(64) field) holds the key of the latest write only, and recovery reads the field's
history: field history tracking on that field (Setup, per object) makes Salesforce keep one
``OpportunityFieldHistory`` / ``ContactHistory`` row per change, with ``OldValue`` and
``NewValue``, read here with SOQL by record and field, every page. A write is found by its
key however many writes came after it: as the current value, or as the old or new value of
a change (a Contact created with our key has no history row of its own, only a "created"
row, but the next change keeps our key as its ``OldValue``).

Limits (Salesforce docs): at most 20 tracked fields per object; without Field Audit Trail,
history is kept 18 months (24 through the API), so a write can be recovered for 18 months,
far beyond any lease or job retry; values over 255 characters are not kept (our keys are 64);
``NewValue``/``OldValue`` cannot be filtered in SOQL, hence the read of the field's history.
"""

from __future__ import annotations

import re
from datetime import date, datetime

from django.conf import settings
from django.utils.dateparse import parse_datetime

from crm.adapters.base import CrmAdapter, CrmClientError, DealRecord, Http
from crm.adapters.hubspot import _decimal

KEY_FIELD = "Threadline_Key__c"
# The history object of each record we write, and its field naming the record.
HISTORY = {"Opportunity": ("OpportunityFieldHistory", "OpportunityId"), "Contact": ("ContactHistory", "ContactId")}
DEAL_FIELDS = {"amount": "Amount", "close_date": "CloseDate", "next_step": "NextStep", "description": "Description"}
CONTACT_FIELDS = {"first_name": "FirstName", "last_name": "LastName", "job_title": "Title"}
OPPORTUNITY_SOQL = (
    "SELECT Id, Name, StageName, IsClosed, Amount, CloseDate, OwnerId, Owner.Email, LastModifiedDate FROM Opportunity"
)


class SalesforceAdapter(CrmAdapter):
    name = "salesforce"

    def __init__(self, *, token: str, instance_url: str, sleep=None):
        if not instance_url:
            raise CrmClientError(0, "the Salesforce connection has no instance URL")
        kwargs = {"sleep": sleep} if sleep else {}
        self.prefix = f"/services/data/v{settings.SALESFORCE_API_VERSION}"
        self.http = Http(base_url=instance_url.rstrip("/"), headers={"Authorization": f"Bearer {token}"}, **kwargs)

    def list_deals(self, *, since: datetime | None = None):
        soql = OPPORTUNITY_SOQL
        if since is not None:
            soql += f" WHERE LastModifiedDate >= {since.strftime('%Y-%m-%dT%H:%M:%SZ')}"
        body = self.http.request(
            "GET", f"{self.prefix}/query", idempotent=True, params={"q": soql + " ORDER BY LastModifiedDate"}
        )
        while True:
            yield [_deal(record) for record in body.get("records", [])]
            if body.get("done", True) or not body.get("nextRecordsUrl"):
                return
            body = self.http.request("GET", body["nextRecordsUrl"], idempotent=True)

    def get_deal(self, deal_id: str) -> DealRecord:
        return _deal(self.http.request("GET", f"{self.prefix}/sobjects/Opportunity/{deal_id}", idempotent=True))

    def apply(self, *, action: str, target: str, payload: dict, key: str) -> dict:
        return getattr(self, f"_{action}")(payload, key)

    def find_write(self, *, action: str, target: str, payload: dict, key: str) -> dict | None:
        if action == "create_note":  # the upsert by external id is idempotent: send it again
            return None
        if action == "update_deal":
            sobject, record = "Opportunity", self._opportunity_key(payload["deal_id"])
        else:
            sobject, record = "Contact", self._contact(payload["email"])
        if record is None:
            return None
        if record.get(KEY_FIELD) == key or key in self._key_history(sobject, record["Id"]):
            return {"id": record["Id"], "recovered": True}
        return None

    def _key_history(self, sobject: str, record_id: str) -> set[str]:
        """Every value our key field has had on the record (field history tracking)."""
        history, parent = HISTORY[sobject]
        if not re.fullmatch(r"[A-Za-z0-9]{15,18}", record_id):
            raise CrmClientError(0, f"not a Salesforce id: {record_id!r}")
        soql = (
            f"SELECT OldValue, NewValue FROM {history} "  # noqa: S608 - a checked id and constants
            f"WHERE {parent} = '{record_id}' AND Field = '{KEY_FIELD}'"
        )
        body = self.http.request("GET", f"{self.prefix}/query", idempotent=True, params={"q": soql})
        values = set()
        while True:
            for change in body.get("records", []):
                values.update(v for v in (change.get("OldValue"), change.get("NewValue")) if v)
            if body.get("done", True) or not body.get("nextRecordsUrl"):
                return values
            body = self.http.request("GET", body["nextRecordsUrl"], idempotent=True)

    def _update_deal(self, payload: dict, key: str) -> dict:
        fields = {DEAL_FIELDS[k]: v for k, v in payload["properties"].items() if k in DEAL_FIELDS}
        self.http.request(
            "PATCH",
            f"{self.prefix}/sobjects/Opportunity/{payload['deal_id']}",
            idempotent=True,
            json={**fields, KEY_FIELD: key},
        )
        return {"id": payload["deal_id"]}

    def _create_note(self, payload: dict, key: str) -> dict:
        contact = self._contact(payload.get("contact_email")) if payload.get("contact_email") else None
        task = {
            "Subject": payload["subject"][:255],
            "Description": payload["body"],
            "Status": "Completed",
            "WhatId": payload["deal_id"],
            "ActivityDate": payload["timestamp"][:10],
        }
        if contact:
            task["WhoId"] = contact["Id"]
        result = self.http.request(
            "PATCH", f"{self.prefix}/sobjects/Task/{KEY_FIELD}/{key}", idempotent=True, json=task
        )
        return {"id": result.get("id"), "created": result.get("created", False), "contact_id": task.get("WhoId")}

    def _upsert_contact(self, payload: dict, key: str) -> dict:
        fields = {CONTACT_FIELDS[k]: v for k, v in payload["properties"].items() if k in CONTACT_FIELDS}
        existing = self._contact(payload["email"])
        fields[KEY_FIELD] = key
        if existing:
            self.http.request("PATCH", f"{self.prefix}/sobjects/Contact/{existing['Id']}", idempotent=True, json=fields)
            return {"id": existing["Id"], "created": False}
        fields.setdefault("LastName", payload["email"].split("@")[0])  # required by Salesforce
        result = self.http.request(
            "POST", f"{self.prefix}/sobjects/Contact", idempotent=False, json={"Email": payload["email"], **fields}
        )
        return {"id": result["id"], "created": True}

    def _opportunity_key(self, deal_id: str) -> dict | None:
        return self.http.request(
            "GET",
            f"{self.prefix}/sobjects/Opportunity/{deal_id}",
            idempotent=True,
            ok_missing=True,
            params={"fields": KEY_FIELD},
        )

    def _contact(self, email: str) -> dict | None:
        quoted = email.replace("\\", "\\\\").replace("'", "\\'")
        # SOQL has no bind parameters over REST; the literal is escaped as its grammar says.
        soql = f"SELECT Id, Email, {KEY_FIELD} FROM Contact WHERE Email = '{quoted}' LIMIT 1"  # noqa: S608
        records = self.http.request("GET", f"{self.prefix}/query", idempotent=True, params={"q": soql})["records"]
        return records[0] if records else None


def _deal(record: dict) -> DealRecord:
    owner = record.get("Owner") or {}
    return DealRecord(
        crm_deal_id=record["Id"],
        title=record.get("Name") or "",
        stage=record.get("StageName") or "",
        is_closed=bool(record.get("IsClosed")),
        amount=_decimal(record.get("Amount")),
        close_date=date.fromisoformat(record["CloseDate"]) if record.get("CloseDate") else None,
        owner_user_id=record.get("OwnerId") or "",
        owner_email=owner.get("Email") or "",
        updated_at=parse_datetime((record.get("LastModifiedDate") or "").replace("+0000", "+00:00")),
    )
