"""The whole pipeline through real ``manage.py runworker`` processes.

Import a sales thread -> extract_thread -> link_thread -> deal_facts_update ->
deal_readiness_recompute, then a reviewer approves the budget (always reviewed by the
default policy) -> facts and readiness again, and the CRM step. Each step is checked in
the database and in the audit log.
"""

import time
from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime

import pytest
from django.test import Client
from django.utils import timezone

from deals.models import DealFact, DealReadiness, ThreadLink
from deals.services import deal_save
from extraction.models import ExtractionRun, FieldValue
from jobs import db
from jobs.models import Job
from review.models import ReviewItem
from review.services import review_item_resolve
from tests.workers import RunWorker, worker_env
from threads.models import Thread
from threads.services import mail_import
from workspaces.models import AuditEvent, Policy
from workspaces.policy import policy_validate
from workspaces.rls import workspace_context
from workspaces.services import membership_add, workspace_create
from workspaces.tests.factories import UserFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

US, THEM = "maya.chen@threadline-demo.com", "priya.raman@northwind-logistics.com"
MAIL = [
    (
        THEM,
        US,
        "Northwind: pilot for the support team",
        "Hi Maya,\n\nOur support team loses a lot of time copying customer emails into Salesforce by hand;\n"
        "that is the pain we want to fix.\n\nBest,\nPriya",
    ),
    (
        US,
        THEM,
        "Re: Northwind: pilot for the support team",
        "Hi Priya,\n\nAbsolutely. Who else should be in the kick-off?\n\nMaya",
    ),
    (
        THEM,
        US,
        "Re: Northwind: pilot for the support team",
        "Our VP of Operations, Daniel Ortiz, signs off on this, so he should join.\n"
        "We have budget set aside for this in Q4: roughly $25,000. We want to go live by November 15, 2026.\n\nPriya",
    ),
]


def raw_messages():
    start = timezone.now() - timedelta(days=3)
    previous = None
    for n, (sender, to, subject, body) in enumerate(MAIL):
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = sender, to, subject
        msg["Date"] = format_datetime(start + timedelta(hours=n))
        msg["Message-ID"] = f"<e2e-{n}@northwind.example>"
        if previous:
            msg["In-Reply-To"] = msg["References"] = previous
        previous = msg["Message-ID"]
        msg.set_content(body)
        yield msg.as_bytes(), f"e2e/{n}.eml"


def _jobs():
    with db.queue_role():
        return list(Job.objects.order_by("id"))


def drained(timeout=60):
    """Every job succeeded (none waiting, running or failed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = _jobs()
        if jobs and all(j.status in ("succeeded", "failed", "cancelled") for j in jobs):
            return jobs
        time.sleep(0.1)
    return _jobs()


@pytest.fixture
def workers(tmp_path):
    env = worker_env(JOBS_RETRY_BASE_SECONDS="0.1")
    started = [RunWorker(tmp_path / f"{name}.log", name, env) for name in ("e2e-1", "e2e-2")]
    yield started
    for worker in started:
        worker.stop()


def test_import_extract_link_facts_readiness_review_and_crm_through_real_workers(workers):
    ws = workspace_create(slug="e2e", name="E2E", internal_domains=["threadline-demo.com"])
    reviewer = UserFactory(username="rita")
    membership_add(workspace=ws, user=reviewer, role="reviewer")
    with workspace_context(ws):
        policy = Policy.objects.get(workspace=ws)
        policy.policy = policy_validate({**policy.policy, "audit_sample_rate": 0, "undo_window_seconds": 0})
        policy.save()
    deal = deal_save(
        workspace_id=ws.pk,
        crm="hubspot",
        crm_deal_id="hs-101",
        title="Northwind support pilot",
        stage="qualifiedtobuy",
        primary_domain="northwind-logistics.com",
        contact_emails=[THEM],
        owner_email=US,
        crm_updated_at=timezone.now(),
    )
    deal_save(  # a second open deal at the same company, which the thread must not be linked to
        workspace_id=ws.pk,
        crm="hubspot",
        crm_deal_id="hs-102",
        title="Northwind warehouse carriers",
        primary_domain="northwind-logistics.com",
        crm_updated_at=timezone.now(),
    )

    drained()  # relink_deals for the new deals: no thread yet, so the link below follows extraction

    summary = mail_import(workspace=ws, messages=raw_messages(), label="e2e")
    assert summary.new == 3
    jobs = drained()
    failed = [(j.task, j.last_error) for j in jobs if j.status != "succeeded"]
    assert not failed, failed + [w.log.read_text()[-2000:] for w in workers]

    with workspace_context(ws):
        thread = Thread.objects.get()
        run = ExtractionRun.objects.get(thread=thread)
        values = {v.field_key: v for v in FieldValue.objects.filter(thread=thread).exclude(status="superseded")}
        link = ThreadLink.objects.get(thread=thread)
        facts_1 = {f.key: f for f in DealFact.objects.filter(deal=deal, status="current")}
        bant_1 = DealReadiness.objects.get(deal=deal, framework="bant")
        budget_item = ReviewItem.objects.get(thread=thread, reason="always_review", field_value__field_key="budget")
    print(f"\nrun {run.status}; values " + ", ".join(f"{k}={v.status}" for k, v in sorted(values.items())))
    print(f"link -> {link.deal_id} ({link.linked_by}, {link.link_confidence}): {link.link_reason}")
    print(f"facts {sorted(facts_1)}; bant {bant_1.readiness_score} missing {bant_1.missing_keys}")
    assert run.status == "succeeded"
    assert values["budget"].status == "proposed"  # budget is always reviewed by the default policy
    assert (link.deal_id, link.linked_by) == (deal.pk, "auto") and link.link_confidence >= 0.75
    assert "budget" not in facts_1 and facts_1, facts_1
    assert bant_1.key_states_json["budget"] == "missing"
    assert all(f.evidence_json and f.evidence_json[0]["thread_id"] == thread.pk for f in facts_1.values())

    with workspace_context(ws, user=reviewer):
        review_item_resolve(item_id=budget_item.pk, reviewer=reviewer, decision="approve", version=budget_item.version)
    jobs = drained()
    assert not [j for j in jobs if j.status != "succeeded"], [w.log.read_text()[-2000:] for w in workers]

    with workspace_context(ws):
        budget_fact = DealFact.objects.get(deal=deal, key="budget", status="current")
        bant_2 = DealReadiness.objects.get(deal=deal, framework="bant")
        meddic = DealReadiness.objects.get(deal=deal, framework="meddic")
        events = list(AuditEvent.objects.order_by("pk").values_list("type", flat=True))
    print(f"budget fact {budget_fact.value_json} confirmed={budget_fact.confirmed}")
    print(f"bant {bant_1.readiness_score} -> {bant_2.readiness_score} {bant_2.key_states_json}")
    print(f"meddic {meddic.readiness_score} {meddic.key_states_json}")
    print("tasks: " + ", ".join(j.task for j in jobs))
    print("audit: " + " > ".join(events))
    assert budget_fact.confirmed and budget_fact.value_json["amount"] == 25000
    assert bant_2.key_states_json["budget"] == "confirmed" and bant_2.readiness_score > bant_1.readiness_score
    expected_order = [
        "mail.imported",
        "extraction.run.started",
        "extraction.run.finished",
        "deal_link.created",
        "deal_fact.recorded",
        "deal_readiness.computed",
        "review_item.approved",
        "deal_fact.recorded",
        "deal_readiness.computed",
    ]
    position = 0
    for event in events:
        if position < len(expected_order) and event == expected_order[position]:
            position += 1
    assert position == len(expected_order), events

    client = Client()
    client.force_login(reviewer)
    page = client.get(f"/w/e2e/deals/{deal.pk}/").content.decode()
    # Each quote links to its thread with the span marked (?mark=message:start:end), landing on it.
    assert f"/w/e2e/threads/{thread.pk}/?mark=" in page and "BANT readiness 66 percent" in page

    # The approval queued the CRM write (due when the undo window, 0 here, has passed): in
    # the default dry-run mode every intended write is on the ledger and nothing is sent.
    from crm.models import CrmWriteLog

    assert "crm_sync_thread" in [j.task for j in jobs]
    with workspace_context(ws):
        writes = list(CrmWriteLog.objects.filter(thread=thread).order_by("pk"))
    print("crm: " + ", ".join(f"{w.action}={w.status}" for w in writes))
    assert writes and {w.status for w in writes} == {"dry_run"}
    assert {w.action for w in writes} >= {"update_deal", "create_note"}
    assert any(e.startswith("crm") for e in events), events
