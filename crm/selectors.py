"""Reads for the CRM: what a thread would write, the diff against the CRM, the write log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from crm.models import CrmWriteLog
from deals.models import Deal, ThreadLink
from extraction.models import FieldValue
from extraction.selectors import thread_current_values, threads_current_values
from jobs.models import Job
from jobs.selectors import jobs_pending_by_key
from pipeline import stages
from threads.ingest.threading import domain_is_internal
from threads.models import Message, Thread
from workspaces import display
from workspaces.models import Workspace


@dataclass(frozen=True)
class PlannedWrite:
    """One write a thread's values make: what, to which CRM object, with which payload."""

    action: str
    target: str
    payload: dict
    thread_id: int | None = None
    deal_id: int | None = None


WRITABLE = {FieldValue.Status.ACCEPTED, FieldValue.Status.VERIFIED}
NOTE_FIELDS = ("budget", "authority", "need", "timeline", "next_step", "competitors")
# Values that describe one person: written onto that person's contact record only.
CONTACT_FIELDS = ("contact_name", "contact_title", "company")
# A note is read in the CRM by the whole team, not by one reader: its values are written the
# same way whoever approved them (``$60,000``, ``Sep 30, 2026 (end of Q3)``).
NOTE_LOCALE = "en_US"


def thread_writable_values(*, thread_id: int) -> dict[str, FieldValue]:
    """The thread's current values that a person approved or policy auto-accepted, and only those."""
    return {k: v for k, v in thread_current_values(thread_id=thread_id).items() if v.status in WRITABLE}


def threads_writes_known(*, workspace_id: int, thread_ids: list[int]) -> dict[int, dict]:
    """What ``thread_writes_build`` reads, for many threads of a workspace in four queries:
    by thread id (a thread that is gone is left out)."""
    threads = {t.pk: t for t in Thread.objects.filter(pk__in=thread_ids)}
    values = threads_current_values(thread_ids=list(threads))
    links = {
        link.thread_id: link for link in ThreadLink.objects.select_related("deal").filter(thread_id__in=list(threads))
    }
    internal = Workspace.objects.values_list("internal_domains", flat=True).get(pk=workspace_id)
    return {
        pk: {
            "thread": thread,
            "values": {k: v for k, v in values[pk].items() if v.status in WRITABLE},
            "link": links.get(pk),
            "internal": internal,
        }
        for pk, thread in threads.items()
    }


def thread_writes_build(*, thread_id: int, crm: str, known: dict | None = None):
    """The writes a thread's accepted values make, in order (contact, deal, note), and the
    version of those values (sorted ids and statuses) that goes into every idempotency key.
    ``known``: what ``threads_writes_known`` read for it (a batch), else read here."""
    thread = known["thread"] if known else Thread.objects.get(pk=thread_id)
    values = known["values"] if known else thread_writable_values(thread_id=thread_id)
    version = sorted([v.pk, v.status] for v in values.values())
    if not values:
        return [], version
    link = known["link"] if known else ThreadLink.objects.select_related("deal").filter(thread_id=thread_id).first()
    deal = link.deal if link and (crm == "dry_run" or link.deal.crm == crm) else None
    writes = []
    email = thread.primary_contact_email
    primary = (email or "").lower()
    owners = contact_value_owners(thread=thread, values=values, internal=known["internal"] if known else None)
    # The thread's primary contact, then anyone else a name, title or company belongs to; each
    # gets only the values that are theirs.
    for person in ([primary] if primary else []) + sorted(set(owners.values()) - {primary}):
        theirs = {key: values[key] for key, owner in owners.items() if owner == person}
        writes.append(
            PlannedWrite("upsert_contact", f"contact:{person}", _contact_payload(person, theirs), thread_id=thread_id)
        )
    if deal is not None:
        properties = deal_properties(values)
        if properties:
            writes.append(
                PlannedWrite(
                    "update_deal",
                    f"deal:{deal.crm_deal_id}",
                    {"deal_id": deal.crm_deal_id, "properties": properties},
                    thread_id=thread_id,
                    deal_id=deal.pk,
                )
            )
        writes.append(
            PlannedWrite(
                "create_note",
                f"note:deal:{deal.crm_deal_id}:thread:{thread_id}",
                _note_payload(thread, deal, email, values),
                thread_id=thread_id,
                deal_id=deal.pk,
            )
        )
    return writes, version


def deal_properties(values: dict) -> dict:
    """Neutral deal properties from accepted values (each adapter maps them to its names)."""
    out = {}
    amount = _amount(values.get("budget"))
    if amount is not None:
        out["amount"] = amount
    close_date = _close_date(values.get("timeline"))
    if close_date is not None:
        out["close_date"] = close_date
    if values.get("next_step"):
        out["next_step"] = _text(values["next_step"].field_value_json)[:255]
    if values.get("need"):
        out["description"] = _text(values["need"].field_value_json)
    return out


def _amount(value: FieldValue | None) -> str | None:
    if value is None:
        return None
    raw = value.field_value_json
    raw = raw.get("amount", raw.get("max")) if isinstance(raw, dict) else raw
    try:
        return str(Decimal(str(raw)).quantize(Decimal("0.01")))
    except (InvalidOperation, ValueError):
        return None


def _close_date(value: FieldValue | None) -> str | None:
    """The timeline's ISO date. The rules extractor stores ``{"date": "YYYY-MM-DD", "phrase":
    "end of Q3"}`` (extraction/extractors/rules.py); the schema's bare ISO date string (a
    model's answer, or an edit) is read too. Anything that is not a valid date is left out."""
    if value is None:
        return None
    raw = value.field_value_json
    raw = raw.get("date") if isinstance(raw, dict) else raw
    if not isinstance(raw, str):
        return None
    try:
        return date.fromisoformat(raw.strip()[:10]).isoformat()
    except ValueError:
        return None


def _text(raw) -> str:
    if isinstance(raw, dict):
        return ", ".join(str(v) for v in raw.values() if v)
    if isinstance(raw, list):
        return ", ".join(map(str, raw))
    return str(raw)


def contact_value_owners(*, thread: Thread, values: dict, internal=None) -> dict[str, str]:
    """Whose name, title and company each contact value is: the sender of the message its
    evidence quotes (each value's ``evidence_json`` names its message; the rules extractor
    reads them from what a person wrote about themselves, "I'm Dana Kim, VP of Operations
    at Acme", or their sign-off). A value with no evidence, evidence outside this thread,
    evidence from several senders, or from our own team belongs to no contact and is not
    written; the thread's primary contact is only one of the people in it."""
    wanted = {key: values[key] for key in CONTACT_FIELDS if key in values}
    message_ids = {_message_id(e) for value in wanted.values() for e in value.evidence_json or []} - {None}
    senders = dict(
        Message.objects.filter(thread_id=thread.pk, pk__in=message_ids).values_list("pk", "from_email")
        if message_ids
        else []
    )
    if internal is None:
        internal = Workspace.objects.values_list("internal_domains", flat=True).get(pk=thread.workspace_id)
    owners = {}
    for key, value in wanted.items():
        people = {(senders.get(_message_id(e)) or "").strip().lower() for e in value.evidence_json or []}
        if len(people) != 1 or "" in people:
            continue
        [person] = people
        if "@" in person and not domain_is_internal(person, internal):
            owners[key] = person
    return owners


def _message_id(evidence: dict) -> int | None:
    try:
        return int(evidence.get("message_id"))
    except (TypeError, ValueError):
        return None


def _contact_payload(email: str, values: dict) -> dict:
    """A contact's properties from the values that are theirs. Shapes: ``contact_name`` is the
    name as a string (the rules extractor) or a person ``{"name", "title"}`` (the schema's
    person type); ``contact_title`` and ``company`` are text."""
    properties = {}
    person = values.get("contact_name")
    name = person.field_value_json if person else None
    name = name.get("name") if isinstance(name, dict) else name
    if isinstance(name, str) and name.strip():
        first, _, last = " ".join(name.split()).partition(" ")
        properties.update({"first_name": first, **({"last_name": last} if last else {})})
    if values.get("company"):
        properties["company"] = _text(values["company"].field_value_json)
    title = values.get("contact_title")
    title = title.field_value_json if title else None
    title = title.get("title") if isinstance(title, dict) else title
    if title:
        properties["job_title"] = _text(title)
    return {"email": email.lower(), "properties": properties}


def _note_payload(thread: Thread, deal: Deal, email: str, values: dict) -> dict:
    lines = [f"Threadline: {thread.subject or 'thread'}"]
    for key in NOTE_FIELDS:
        if key in values:
            value = values[key]
            quotes = "; ".join(f"“{' '.join(e['quote'].split())}”" for e in value.evidence_json if e.get("quote"))
            shown = display.display(value.field_value_json, locale=NOTE_LOCALE)
            lines.append(f"{key}: {shown}" + (f" — {quotes}" if quotes else ""))
    stamp = max(v.created_at for v in values.values())  # stable across retries, unlike now()
    return {
        "deal_id": deal.crm_deal_id,
        "contact_email": (email or "").lower(),
        "subject": thread.subject[:255],
        "body": "\n".join(lines),
        "timestamp": stamp.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
    }


def deal_diff(*, deal: Deal, properties: dict) -> list[dict]:
    """Each property a write would set beside the deal mirror's current value."""
    current = {
        "amount": str(deal.amount) if deal.amount is not None else None,
        "close_date": deal.close_date.isoformat() if deal.close_date else None,
    }
    return [
        {
            "field": name,
            "current": current.get(name),
            "proposed": value,
            "changed": current.get(name) != value,
            "known": name in current,
        }
        for name, value in properties.items()
    ]


def writes_for(*, thread_id: int | None = None, deal_id: int | None = None, status: str = "") -> list[CrmWriteLog]:
    """The write log of a thread or a deal, newest first, optionally of one status."""
    rows = CrmWriteLog.objects.select_related("deal", "thread").order_by("-created_at", "-pk")
    rows = rows.filter(thread_id=thread_id) if thread_id is not None else rows.filter(deal_id=deal_id)
    if status:
        rows = rows.filter(status=status)
    return list(rows[:200])


def write_diffs(rows: list[CrmWriteLog]) -> dict[int, list[dict]]:
    """The diff of every deal-update row shown, keyed by row id."""
    return {
        r.pk: deal_diff(deal=r.deal, properties=r.payload_json.get("properties", {}))
        for r in rows
        if r.action == CrmWriteLog.Action.UPDATE_DEAL and r.deal is not None
    }


@dataclass(frozen=True)
class PendingSync:
    """A thread's CRM sync that is queued (an approval's undo window has not passed yet, or
    the worker has not reached it): when it runs and what it would write if it ran now."""

    thread_id: int
    thread_subject: str
    run_after: object
    running: bool
    writes: list[PlannedWrite]
    dry_run: bool


def pending_syncs(*, thread_ids: list[int], policy: dict) -> list[PendingSync]:
    """The pending CRM syncs of these threads (the pipeline's ``crm_sync_thread`` jobs, keyed
    ``crm-sync:<thread id>``), each with a preview of its writes."""
    keys = {pk: stages.crm_sync_key(pk) for pk in thread_ids}
    jobs = jobs_pending_by_key(task=stages.CRM_SYNC_THREAD, dedupe_keys=list(keys.values()))
    crm = policy["crm"] if policy["crm"] != "none" else "dry_run"
    dry_run = crm == "dry_run" or policy["crm_mode"] == "dry_run"
    subjects = dict(Thread.objects.filter(pk__in=thread_ids).values_list("pk", "subject")) if jobs else {}
    pending = []
    for pk in thread_ids:
        job = jobs.get(keys[pk])
        if job is None:
            continue
        writes, _ = thread_writes_build(thread_id=pk, crm=crm)
        pending.append(
            PendingSync(pk, subjects.get(pk, ""), job.run_after, job.status == Job.Status.RUNNING, writes, dry_run)
        )
    return pending
