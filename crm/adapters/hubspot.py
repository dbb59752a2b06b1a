"""HubSpot through the CRM v3 objects API with a private-app token.

Our idempotency key travels on every record we write, in one single-line text property the
portal needs on notes, deals and contacts (crm/README.md): ``threadline_idempotency_key``.
A note has its own key (found again with ``POST /crm/v3/objects/notes/search``). A deal or
contact is written by many threads, so its property holds only the key of the latest write;
recovery reads the record with ``propertiesWithHistory=threadline_idempotency_key``, which
returns every value the property has had (newest first), so a write is found by its key
however many writes came after it, with no window of recent keys to fall out of.

Limits (HubSpot's v3 reference): ``propertiesWithHistory`` documents no cap on the versions
a single-record read returns; it only lowers how many records one list or batch read may
return, and we read one record. HubSpot records a version when a write sets the property,
and each of our writes sets a new key.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.utils.dateparse import parse_datetime

from crm.adapters.base import CrmAdapter, CrmClientError, DealRecord, Http

logger = logging.getLogger(__name__)

DEAL_PROPERTIES = [
    "dealname",
    "dealstage",
    "amount",
    "closedate",
    "hubspot_owner_id",
    "hs_lastmodifieddate",
    "hs_is_closed",
]
# Our neutral deal properties → HubSpot's internal names.
DEAL_FIELDS = {"amount": "amount", "close_date": "closedate", "next_step": "hs_next_step", "description": "description"}
CONTACT_FIELDS = {"first_name": "firstname", "last_name": "lastname", "company": "company", "job_title": "jobtitle"}
NOTE_TO_DEAL, NOTE_TO_CONTACT = 214, 202  # HUBSPOT_DEFINED association type ids
KEY_PROPERTY = "threadline_idempotency_key"
PAGE_SIZE = 100


class HubSpotAdapter(CrmAdapter):
    name = "hubspot"

    def __init__(self, *, token: str, base_url: str | None = None, sleep=None):
        kwargs = {"sleep": sleep} if sleep else {}
        self.http = Http(
            base_url=base_url or settings.HUBSPOT_BASE_URL, headers={"Authorization": f"Bearer {token}"}, **kwargs
        )
        self._owners: dict[str, str] = {}  # owner id -> email, for one sync
        self._stage_labels: dict[str, str] | None = None  # stage id -> label, for one sync

    # --- deals -------------------------------------------------------------------------------

    def list_deals(self, *, since: datetime | None = None):
        """Pages of deals; with ``since``, only those modified at or after it (search API).

        A HubSpot deal carries neither its customer's domain nor its people: they are its
        associated company (``domain``) and contacts (``email``), and its owner. Each page is
        completed with them (batch reads), since linking threads to deals needs them."""
        after = None
        while True:
            if since is None:
                params = {
                    "limit": PAGE_SIZE,
                    "properties": ",".join(DEAL_PROPERTIES),
                    "associations": "companies,contacts",
                    **({"after": after} if after else {}),
                }
                body = self.http.request("GET", "/crm/v3/objects/deals", idempotent=True, params=params)
                objects = body.get("results", [])
            else:
                search = {
                    "filterGroups": [
                        {
                            "filters": [
                                {
                                    "propertyName": "hs_lastmodifieddate",
                                    "operator": "GTE",
                                    "value": str(int(since.timestamp() * 1000)),
                                }
                            ]
                        }
                    ],
                    "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
                    "properties": DEAL_PROPERTIES,
                    "limit": PAGE_SIZE,
                    **({"after": after} if after else {}),
                }
                body = self.http.request("POST", "/crm/v3/objects/deals/search", idempotent=True, json=search)
                # The search API returns no associations: read each hit with them.
                objects = [self._deal_with_associations(obj["id"]) for obj in body.get("results", [])]
            yield self._records(objects)
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return

    def _deal_with_associations(self, deal_id: str) -> dict:
        params = {"properties": ",".join(DEAL_PROPERTIES), "associations": "companies,contacts"}
        return self.http.request("GET", f"/crm/v3/objects/deals/{deal_id}", idempotent=True, params=params)

    def _records(self, objects: list[dict]) -> list[DealRecord]:
        """The deals with their company's domain, their contacts' emails and their owner's email."""
        company_ids = {a["id"] for obj in objects for a in _associated(obj, "companies")}
        contact_ids = {a["id"] for obj in objects for a in _associated(obj, "contacts")}
        domains = self._batch_read("companies", company_ids, "domain")
        emails = self._batch_read("contacts", contact_ids, "email")
        records = []
        for obj in objects:
            record = _deal(obj)
            companies = [domains[a["id"]] for a in _associated(obj, "companies") if domains.get(a["id"])]
            record.primary_domain = (companies[0] if companies else "").lower().removeprefix("www.")
            record.contact_emails = sorted(
                {emails[a["id"]].lower() for a in _associated(obj, "contacts") if emails.get(a["id"])}
            )
            record.owner_email = self._owner_email(record.owner_user_id)
            record.stage_label = self._stage_label(record.stage)
            records.append(record)
        return records

    def _batch_read(self, object_type: str, ids: set[str], prop: str) -> dict[str, str]:
        """``{id: value of prop}`` for the records, 100 per request (the batch API's limit)."""
        found: dict[str, str] = {}
        ordered = sorted(ids)
        for start in range(0, len(ordered), 100):
            body = self.http.request(
                "POST",
                f"/crm/v3/objects/{object_type}/batch/read",
                idempotent=True,
                json={"properties": [prop], "inputs": [{"id": i} for i in ordered[start : start + 100]]},
            )
            for obj in body.get("results", []):
                found[str(obj["id"])] = (obj.get("properties") or {}).get(prop) or ""
        return found

    def _owner_email(self, owner_id: str) -> str:
        if not owner_id:
            return ""
        if owner_id not in self._owners:
            owner = self.http.request("GET", f"/crm/v3/owners/{owner_id}", idempotent=True, ok_missing=True)
            self._owners[owner_id] = (owner or {}).get("email") or ""
        return self._owners[owner_id]

    def _stage_label(self, stage_id: str) -> str:
        """The label the portal shows for a deal stage id (every pipeline's stages, read once
        per sync). A token without the pipelines scope is not an error for the mirror: the
        stage is kept as its id, and pages show the default pipeline's ids by their labels."""
        if not stage_id:
            return ""
        if self._stage_labels is None:
            try:
                body = self.http.request("GET", "/crm/v3/pipelines/deals", idempotent=True, ok_missing=True) or {}
            except CrmClientError as exc:
                logger.warning("HubSpot deal pipelines unreadable, stages kept as ids: %s", exc)
                body = {}
            self._stage_labels = {
                str(stage["id"]): stage.get("label") or ""
                for pipeline in body.get("results") or []
                for stage in pipeline.get("stages") or []
                if stage.get("id")
            }
        return self._stage_labels.get(stage_id, "")

    def get_deal(self, deal_id: str) -> DealRecord:
        return self._records([self._deal_with_associations(deal_id)])[0]

    # --- writes ------------------------------------------------------------------------------

    def apply(self, *, action: str, target: str, payload: dict, key: str) -> dict:
        return getattr(self, f"_{action}")(payload, key)

    def find_write(self, *, action: str, target: str, payload: dict, key: str) -> dict | None:
        if action == "create_note":
            return self._note_find(key)
        found = self._record_with_key_history(action, payload)
        if found is None:
            return None
        current = (found.get("properties") or {}).get(KEY_PROPERTY)
        history = (found.get("propertiesWithHistory") or {}).get(KEY_PROPERTY) or []
        if current == key or any(version.get("value") == key for version in history):
            return {"id": found["id"], "recovered": True}
        return None

    def _record_with_key_history(self, action: str, payload: dict) -> dict | None:
        """The deal or contact a write goes to, with every value our key property has had."""
        if action == "update_deal":
            path, params = f"/crm/v3/objects/deals/{payload['deal_id']}", {}
        else:
            path, params = f"/crm/v3/objects/contacts/{payload['email']}", {"idProperty": "email"}
        params.update({"properties": KEY_PROPERTY, "propertiesWithHistory": KEY_PROPERTY})
        return self.http.request("GET", path, idempotent=True, ok_missing=True, params=params)

    def _update_deal(self, payload: dict, key: str) -> dict:
        properties = {DEAL_FIELDS[k]: v for k, v in payload["properties"].items() if k in DEAL_FIELDS}
        body = {"properties": {**properties, KEY_PROPERTY: key}}
        result = self.http.request("PATCH", f"/crm/v3/objects/deals/{payload['deal_id']}", idempotent=True, json=body)
        return {"id": result.get("id", payload["deal_id"]), "updatedAt": result.get("updatedAt")}

    def _create_note(self, payload: dict, key: str) -> dict:
        associations = [_association(payload["deal_id"], NOTE_TO_DEAL)]
        contact = self._contact_id(payload.get("contact_email"))
        if contact:
            associations.append(_association(contact, NOTE_TO_CONTACT))
        body = {
            "properties": {"hs_note_body": payload["body"], "hs_timestamp": payload["timestamp"], KEY_PROPERTY: key},
            "associations": associations,
        }
        result = self.http.request("POST", "/crm/v3/objects/notes", idempotent=False, json=body)
        return {"id": result["id"], "deal_id": payload["deal_id"], "contact_id": contact}

    def _upsert_contact(self, payload: dict, key: str) -> dict:
        properties = {CONTACT_FIELDS[k]: v for k, v in payload["properties"].items() if k in CONTACT_FIELDS}
        properties[KEY_PROPERTY] = key
        existing = self._contact_id(payload["email"])
        if existing:
            self.http.request(
                "PATCH", f"/crm/v3/objects/contacts/{existing}", idempotent=True, json={"properties": properties}
            )
            return {"id": existing, "created": False}
        # A create is not idempotent by itself; HubSpot answers 409 for an email it has, and
        # the ledger's find_write looks the contact up by email before any second attempt.
        try:
            result = self.http.request(
                "POST",
                "/crm/v3/objects/contacts",
                idempotent=False,
                json={"properties": {"email": payload["email"], **properties}},
            )
        except CrmClientError as exc:
            if exc.status != 409:
                raise
            # Another thread's write created the contact since our lookup: update it instead.
            existing = self._contact_id(payload["email"])
            if not existing:
                raise
            self.http.request(
                "PATCH", f"/crm/v3/objects/contacts/{existing}", idempotent=True, json={"properties": properties}
            )
            return {"id": existing, "created": False}
        return {"id": result["id"], "created": True}

    def _note_find(self, key: str) -> dict | None:
        search = {
            "filterGroups": [{"filters": [{"propertyName": KEY_PROPERTY, "operator": "EQ", "value": key}]}],
            "properties": [KEY_PROPERTY],
            "limit": 1,
        }
        body = self.http.request("POST", "/crm/v3/objects/notes/search", idempotent=True, json=search)
        results = body.get("results") or []
        return {"id": results[0]["id"], "recovered": True} if results else None

    def _contact_id(self, email: str | None) -> str | None:
        if not email:
            return None
        found = self.http.request(
            "GET", f"/crm/v3/objects/contacts/{email}", idempotent=True, ok_missing=True, params={"idProperty": "email"}
        )
        return found["id"] if found else None


def _associated(obj: dict, kind: str) -> list[dict]:
    return ((obj.get("associations") or {}).get(kind) or {}).get("results") or []


def _association(object_id: str, type_id: int) -> dict:
    return {
        "to": {"id": str(object_id)},
        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}],
    }


def _deal(obj: dict) -> DealRecord:
    props = obj.get("properties") or {}
    return DealRecord(
        crm_deal_id=str(obj["id"]),
        title=props.get("dealname") or "",
        stage=props.get("dealstage") or "",
        is_closed=str(props.get("hs_is_closed")).lower() == "true",
        amount=_decimal(props.get("amount")),
        close_date=_date(props.get("closedate")),
        owner_user_id=props.get("hubspot_owner_id") or "",
        updated_at=parse_datetime(props.get("hs_lastmodifieddate") or obj.get("updatedAt") or ""),
    )


def _decimal(value) -> Decimal | None:
    try:
        return Decimal(str(value)) if value not in (None, "") else None
    except InvalidOperation:
        return None


def _date(value) -> date | None:
    if not value:
        return None
    parsed = parse_datetime(value) if "T" in value else None
    return parsed.date() if parsed else date.fromisoformat(value[:10])
