"""A workspace with something on every page: threads with text and HTML mail and an
attachment, review items of every reason (open and decided), deals with links, facts and
readiness, CRM writes and jobs. For the tests that open every page (strict template
variables, the Content-Security-Policy) and the narrow-screen browser test."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.utils import timezone

from crm.tests.factories import CrmWriteLogFactory
from deals.tests.factories import (
    AssociationCandidateFactory,
    DealFactFactory,
    DealFactory,
    DealReadinessFactory,
    ThreadLinkFactory,
)
from extraction.tests.factories import FieldValueFactory
from jobs.tests.factories import JobFactory
from review.models import ReviewItem
from review.tests.factories import ReviewItemFactory
from threads.tests.factories import AttachmentFactory, MessageFactory, ThreadFactory
from workspaces.rls import workspace_context
from workspaces.services import membership_add, workspace_create
from workspaces.tests.factories import UserFactory

PASSWORD = "a long page-test password"
TEXT = (
    "Hi Sam,\nOur budget is $40,000 for this year, and Dana Whitfield, our CFO, signs off.\n"
    "We want to go live by March 1, 2027.\nThanks, Dana"
)
HTML = "<p>Hi Sam,</p><p>Our budget is <b>$40,000</b> for this year.</p>"
QUOTE = "budget is $40,000"
VALUE_REASONS = ("low_confidence", "always_review", "ungrounded", "audit_sample", "conflict")


@dataclass
class Pages:
    workspace: object
    admin: object  # a superuser, and the workspace's admin
    reviewer: object
    viewer: object
    thread: object
    message: object
    attachment: object
    deal: object
    job: object
    write: object
    items: dict = field(default_factory=dict)  # reason -> open item
    decided: object = None  # an approved item, within the undo window


def _value_payload(field_value, message, reason):
    start = TEXT.index(QUOTE)
    evidence = [{"message_id": message.pk, "start": start, "end": start + len(QUOTE), "quote": QUOTE}]
    payload = {
        "field": "budget",
        "field_type": "money",
        "proposed_value": {"amount": 40000, "currency": "USD"},
        "confidence": 0.62,
        "evidence": evidence,
        "grounded": reason != "ungrounded",
        "other_values": [
            {
                "id": field_value.pk,
                "field_value_json": {"amount": 35000, "currency": "USD"},
                "confidence": 0.4,
                "status": "proposed",
            }
        ],
        "threshold": 0.8,
    }
    if reason == "conflict":
        payload.update(verified_value={"amount": 30000, "currency": "USD"}, verified_id=field_value.pk)
    return payload, evidence


def build_pages(slug: str = "acme") -> Pages:
    """Everything the console and the admin can show, in one workspace ``slug``."""
    ws = workspace_create(slug=slug, name="Acme Sales", internal_domains=["team.example"])
    users = {}
    for username, role, superuser in (("boss", "admin", True), ("rita", "reviewer", False), ("vic", "viewer", False)):
        user = UserFactory(username=username, is_staff=superuser, is_superuser=superuser)
        user.set_password(PASSWORD)
        user.save()
        membership_add(workspace=ws, user=user, role=role)
        users[role] = user
    now = timezone.now()
    with workspace_context(ws):
        thread = ThreadFactory(workspace=ws, subject="Pricing for Acme West")
        message = MessageFactory(workspace=ws, thread=thread, text=TEXT, reply_text=TEXT, html=HTML)
        MessageFactory(workspace=ws, thread=thread, text="Thanks Dana!", reply_text="Thanks Dana!")
        attachment = AttachmentFactory(workspace=ws, message=message)
        deal = DealFactory(workspace=ws, title="Acme West renewal", contact_emails=["ana@customer.example"])
        other_deal = DealFactory(workspace=ws, title="Acme East expansion")
        ThreadLinkFactory(workspace=ws, thread=thread, deal=deal)
        DealFactFactory(workspace=ws, deal=deal, key="budget", value_json={"amount": 40000, "currency": "USD"})
        DealReadinessFactory(workspace=ws, deal=deal)
        job = JobFactory(workspace=ws, task="extract_thread", status="failed", attempts=3, last_error="boom")
        JobFactory(workspace=ws, task="link_thread")
        write = CrmWriteLogFactory(
            workspace=ws, thread=thread, deal=deal, payload_json={"amount": 40000, "note": "line one\nline two"}
        )
        CrmWriteLogFactory(workspace=ws, thread=thread, deal=deal, status="failed", error="CRM said 500")
        items = {}
        for reason in VALUE_REASONS:
            value = FieldValueFactory(workspace=ws, run__thread=thread, thread=thread, field_key="budget")
            payload, evidence = _value_payload(value, message, reason)
            value.evidence_json = evidence
            value.save()
            items[reason] = ReviewItemFactory(
                workspace=ws, thread=thread, field_value=value, reason=reason, payload_json=payload
            )
        candidate = AssociationCandidateFactory(
            workspace=ws,
            thread=thread,
            candidates_json=[
                {"deal_id": deal.pk, "score": 0.72, "signals": {"domain": 1.0, "title": 0.8}},
                {"deal_id": other_deal.pk, "score": 0.70, "signals": {"domain": 1.0, "title": 0.3}},
            ],
        )
        items["association"] = ReviewItemFactory(
            workspace=ws,
            thread=thread,
            association_candidate=candidate,
            reason="association",
            payload_json={
                "candidates": [
                    {"deal_id": deal.pk, "title": deal.title, "stage": "qualifiedtobuy", "score": 0.72, "signals": {}},
                    {"deal_id": other_deal.pk, "title": other_deal.title, "stage": "", "score": 0.7, "signals": {}},
                ]
            },
        )
        fact_value = FieldValueFactory(workspace=ws, run__thread=thread, thread=thread, field_key="budget")
        fact_payload, _ = _value_payload(fact_value, message, "fact_conflict")
        items["fact_conflict"] = ReviewItemFactory(
            workspace=ws,
            thread=thread,
            reason="fact_conflict",
            payload_json={
                **fact_payload,
                "deal_id": deal.pk,
                "deal": deal.title,
                "key": "budget",
                "values": [{"amount": 40000, "currency": "USD"}, {"amount": 30000, "currency": "USD"}],
            },
        )
        items["crm_conflict"] = ReviewItemFactory(
            workspace=ws,
            thread=thread,
            reason="crm_conflict",
            payload_json={
                "write_id": write.pk,
                "idempotency_key": write.idempotency_key,
                "stored_hash": "0" * 64,
                "new_hash": "1" * 64,
                "new_payload": {"amount": 45000},
            },
        )
        items["job_failed"] = ReviewItemFactory(
            workspace=ws,
            thread=None,
            reason="job_failed",
            payload_json={"job_id": job.pk, "task": job.task, "attempts": 3, "error": "boom"},
        )
        decided_value = FieldValueFactory(workspace=ws, run__thread=thread, thread=thread, field_key="timeline")
        decided_payload, _ = _value_payload(decided_value, message, "low_confidence")
        decided = ReviewItemFactory(
            workspace=ws,
            thread=thread,
            field_value=decided_value,
            reason="low_confidence",
            status=ReviewItem.Status.APPROVED,
            resolved_by=users["reviewer"],
            resolved_at=now - timedelta(seconds=5),
            payload_json=decided_payload,
        )
    assert set(items) == set(ReviewItem.Reason.values), "an item of every reason"
    return Pages(
        workspace=ws,
        admin=users["admin"],
        reviewer=users["reviewer"],
        viewer=users["viewer"],
        thread=thread,
        message=message,
        attachment=attachment,
        deal=deal,
        job=job,
        write=write,
        items=items,
        decided=decided,
    )
