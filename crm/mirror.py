"""The deal mirror: incremental sync from the CRM, and a CSV import for teams without API access."""

from __future__ import annotations

import csv
from datetime import date
from decimal import Decimal, InvalidOperation

from django.db.models import Max

from crm.adapters import DealRecord
from deals.models import Deal
from deals.services import deals_save
from pipeline import stages
from workspaces.rls import workspace_context
from workspaces.selectors import policy_for
from workspaces.services import audit_event_record

CSV_COLUMNS = [
    "crm_deal_id",
    "title",
    "stage",
    "primary_domain",
    "owner_email",
    "amount",
    "close_date",
    "contact_emails",
    "is_closed",
]


def deals_sync(*, workspace_id: int, adapter=None, full: bool = False) -> dict:
    """Fetch deals modified since the newest one mirrored (all with ``full``), a page per
    short transaction; no transaction is open while a page is fetched."""
    from crm.services import crm_adapter_get

    with workspace_context(workspace_id):
        crm = policy_for(workspace_id=workspace_id)["crm"]
        if crm == "none":
            return {"crm": crm, "pages": 0, "deals": 0}
        since = None if full else Deal.objects.filter(crm=crm).aggregate(m=Max("crm_updated_at"))["m"]
    adapter = adapter or crm_adapter_get(workspace_id=workspace_id, crm=crm)
    pages = count = changed = 0
    for page in adapter.list_deals(since=since):
        changed += len(deals_save(workspace_id=workspace_id, crm=crm, deals=[deal_fields(r) for r in page]))
        pages, count = pages + 1, count + len(page)
    with workspace_context(workspace_id):
        audit_event_record(
            workspace_id=workspace_id,
            type="crm.deals_synced",
            data={"crm": crm, "deals": count, "changed": changed, "since": since.isoformat() if since else None},
        )
    return {"crm": crm, "pages": pages, "deals": count, "changed": changed}


def deal_fields(record: DealRecord) -> dict:
    """What the mirror stores of a CRM deal (``deals.services.deals_save`` stores it)."""
    fields = {
        "crm_deal_id": record.crm_deal_id,
        "title": record.title[:500] or record.crm_deal_id,
        "stage": record.stage[:100],
        "stage_label": record.stage_label[:200],
        "is_closed": record.is_closed,
        "amount": record.amount,
        "close_date": record.close_date,
        "owner_user_id": record.owner_user_id,
        "owner_email": record.owner_email,
        "crm_updated_at": record.updated_at,
    }
    if record.primary_domain:
        fields["primary_domain"] = record.primary_domain
    if record.contact_emails:
        fields["contact_emails"] = record.contact_emails
    return fields


def deals_sync_schedule(*, workspace_id: int, run_after) -> None:
    """Ask for the next periodic sync; the pipeline keeps one queued per workspace."""
    with workspace_context(workspace_id):
        stages.emit(stages.CRM_DEALS_SYNC_DUE, workspace_id=workspace_id, run_after=run_after)


class CsvImportError(ValueError):
    pass


def deals_import_csv(*, workspace_id: int, stream) -> dict:
    """Import deals from CSV (header: crm_deal_id,title[,stage,primary_domain,owner_email,
    amount,close_date,contact_emails,is_closed]); contact_emails are separated by ";".
    All rows or none: a bad row names its line and nothing is stored."""
    reader = csv.DictReader(stream)
    missing = {"crm_deal_id", "title"} - set(reader.fieldnames or [])
    if missing:
        raise CsvImportError(f"missing columns: {', '.join(sorted(missing))}")
    records = [_csv_record(row, line) for line, row in enumerate(reader, start=2)]
    with workspace_context(workspace_id):
        changed = deals_save(workspace_id=workspace_id, crm="csv", deals=[deal_fields(r) for r in records])
        audit_event_record(
            workspace_id=workspace_id,
            type="crm.deals_imported",
            data={"deals": len(records), "changed": len(changed)},
        )
    return {"deals": len(records), "changed": len(changed)}


def _csv_record(row: dict, line: int) -> DealRecord:
    def get(name):
        return (row.get(name) or "").strip()

    if not get("crm_deal_id") or not get("title"):
        raise CsvImportError(f"line {line}: crm_deal_id and title are required")
    try:
        amount = Decimal(get("amount").replace(",", "")) if get("amount") else None
        close = date.fromisoformat(get("close_date")) if get("close_date") else None
    except (InvalidOperation, ValueError) as exc:
        raise CsvImportError(f"line {line}: {exc}") from exc
    emails = [e.strip().lower() for e in get("contact_emails").split(";") if e.strip()]
    return DealRecord(
        crm_deal_id=get("crm_deal_id"),
        title=get("title"),
        stage=get("stage"),
        is_closed=get("is_closed").lower() in ("1", "true", "yes"),
        amount=amount,
        close_date=close,
        owner_email=get("owner_email"),
        primary_domain=get("primary_domain").lower(),
        contact_emails=emails,
    )
