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

from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.utils.dateparse import parse_datetime

from crm.adapters.base import CrmAdapter, CrmClientError, DealRecord, Http

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

    # --- deals -------------------------------------------------------------------------------

    def list_deals(self, *, since: datetime | None = None):
        """Pages of deals; with ``since``, only those modified at or after it (search API)."""
        after = None
        while True:
            if since is None:
                params = {
                    "limit": PAGE_SIZE,
                    "properties": ",".join(DEAL_PROPERTIES),
                    **({"after": after} if after else {}),
                }
                body = self.http.request("GET", "/crm/v3/objects/deals", idempotent=True, params=params)
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
            yield [_deal(obj) for obj in body.get("results", [])]
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return

    def get_deal(self, deal_id: str) -> DealRecord:
        params = {"properties": ",".join(DEAL_PROPERTIES)}
        return _deal(self.http.request("GET", f"/crm/v3/objects/deals/{deal_id}", idempotent=True, params=params))

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
