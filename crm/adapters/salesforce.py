"""Salesforce through the REST API with an OAuth access token and the org's instance URL.

Opportunities are updated with PATCH (idempotent by itself); notes are Tasks upserted by
the External ID field ``Threadline_Key__c`` (``PATCH sobjects/Task/Threadline_Key__c/<key>``,
so a second send updates the same Task); contacts are found by email with SOQL (Email is
not an external id) and carry ``Threadline_Write_Keys__c`` (the recent keys written to the
record, a long text area), as Opportunities do.
"""

from __future__ import annotations

from datetime import date, datetime

from django.conf import settings
from django.utils.dateparse import parse_datetime

from crm.adapters.base import CrmAdapter, CrmClientError, DealRecord, Http, keys_add, keys_has
from crm.adapters.hubspot import _decimal

KEY_FIELD, KEYS_FIELD = "Threadline_Key__c", "Threadline_Write_Keys__c"
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
            record = self._opportunity_keys(payload["deal_id"])
        else:
            record = self._contact(payload["email"])
        if record and keys_has(record.get(KEYS_FIELD), key):
            return {"id": record["Id"], "recovered": True}
        return None

    def _update_deal(self, payload: dict, key: str) -> dict:
        fields = {DEAL_FIELDS[k]: v for k, v in payload["properties"].items() if k in DEAL_FIELDS}
        stored = (self._opportunity_keys(payload["deal_id"]) or {}).get(KEYS_FIELD)
        self.http.request(
            "PATCH",
            f"{self.prefix}/sobjects/Opportunity/{payload['deal_id']}",
            idempotent=True,
            json={**fields, KEYS_FIELD: keys_add(stored, key)},
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
        fields[KEYS_FIELD] = keys_add(existing.get(KEYS_FIELD) if existing else "", key)
        if existing:
            self.http.request("PATCH", f"{self.prefix}/sobjects/Contact/{existing['Id']}", idempotent=True, json=fields)
            return {"id": existing["Id"], "created": False}
        fields.setdefault("LastName", payload["email"].split("@")[0])  # required by Salesforce
        result = self.http.request(
            "POST", f"{self.prefix}/sobjects/Contact", idempotent=False, json={"Email": payload["email"], **fields}
        )
        return {"id": result["id"], "created": True}

    def _opportunity_keys(self, deal_id: str) -> dict | None:
        return self.http.request(
            "GET",
            f"{self.prefix}/sobjects/Opportunity/{deal_id}",
            idempotent=True,
            ok_missing=True,
            params={"fields": KEYS_FIELD},
        )

    def _contact(self, email: str) -> dict | None:
        quoted = email.replace("\\", "\\\\").replace("'", "\\'")
        # SOQL has no bind parameters over REST; the literal is escaped as its grammar says.
        soql = f"SELECT Id, Email, {KEYS_FIELD} FROM Contact WHERE Email = '{quoted}' LIMIT 1"  # noqa: S608
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
