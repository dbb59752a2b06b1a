"""Where deal support mode hooks into the pipeline: extraction, review decisions, new deals."""

from types import SimpleNamespace

import pytest

from deals import tasks
from deals.models import ThreadLink
from deals.services import deal_save
from deals.tests.factories import DealFactory
from extraction.models import FieldValue
from extraction.services import extraction_run_execute
from extraction.tests.factories import FieldValueFactory
from jobs.models import Job
from pipeline import stages
from review.services import review_item_resolve
from review.tests.factories import ReviewItemFactory
from threads.tests.factories import MessageFactory, ThreadFactory
from workspaces.rls import workspace_context
from workspaces.services import membership_add, workspace_create
from workspaces.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def ws():
    workspace = workspace_create(slug="team", name="Team", internal_domains=["team.example"])
    with workspace_context(workspace):
        yield workspace


def queued(task):
    return list(Job.objects.filter(task=task).values_list("payload", flat=True))


def test_a_successful_extraction_queues_link_thread(ws):
    thread = ThreadFactory(workspace=ws)
    MessageFactory(workspace=ws, thread=thread, reply_text="Our budget is $40,000.")
    extraction_run_execute(workspace_id=ws.pk, thread_id=thread.pk)
    assert queued("link_thread") == [{"thread_id": thread.pk}]


def test_a_review_approval_queues_the_thread_s_deal_facts(ws):
    reviewer = UserFactory(username="rita")
    membership_add(workspace=ws, user=reviewer, role="reviewer")
    value = FieldValueFactory(workspace=ws, status=FieldValue.Status.PROPOSED)
    item = ReviewItemFactory(workspace=ws, thread=value.thread, field_value=value, payload_json={"field": "budget"})
    review_item_resolve(item_id=item.pk, reviewer=reviewer, decision="approve", version=0)
    assert queued("deal_facts_update") == [{"thread_id": value.thread_id}]
    assert queued("crm_sync_thread") == [{"thread_id": value.thread_id}]
    assert queued("link_thread") == [{"thread_id": value.thread_id}]


def test_a_saved_deal_queues_relink_which_links_the_threads_its_people_took_part_in(ws):
    thread = ThreadFactory(workspace=ws, participants=["sara@acme.example", "rep@team.example"])
    MessageFactory(workspace=ws, thread=thread, from_email="sara@acme.example")
    ThreadFactory(workspace=ws, participants=["x@else.example"])
    deal = deal_save(
        workspace_id=ws.pk,
        crm="hubspot",
        crm_deal_id="1",
        title="Acme pilot",
        primary_domain="acme.example",
        contact_emails=["sara@acme.example"],
    )
    [payload] = queued("relink_deals")
    assert payload == {"deal_ids": [deal.pk]}

    tasks.relink_deals(payload, job=SimpleNamespace(id=None, workspace_id=ws.pk))
    # Relinking fans out: one link_thread job per thread the deal's people took part in, batched
    # by the workers like linking after extraction.
    assert queued("link_thread") == [{"thread_id": thread.pk}]
    assert ThreadLink.objects.count() == 0
    tasks.link_thread({"thread_id": thread.pk}, job=SimpleNamespace(id=None, workspace_id=ws.pk))

    assert ThreadLink.objects.get(thread=thread).deal_id == deal.pk
    assert ThreadLink.objects.count() == 1


def test_readiness_jobs_coalesce_per_deal_and_a_running_one_runs_again(ws):
    deal = DealFactory(workspace=ws)
    stages.emit(stages.FACTS_CHANGED, workspace_id=ws.pk, deal_id=deal.pk)
    stages.emit(stages.FACTS_CHANGED, workspace_id=ws.pk, deal_id=deal.pk)
    [job] = Job.objects.filter(task="deal_readiness_recompute")
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING)  # as a worker's claim leaves it
    stages.emit(stages.FACTS_CHANGED, workspace_id=ws.pk, deal_id=deal.pk)
    job.refresh_from_db()
    assert Job.objects.filter(task="deal_readiness_recompute").count() == 1
    assert job.rerun_after is not None  # the facts changed while it ran: it runs once more


def test_relinking_many_threads_queues_one_link_job_each_joining_those_already_queued(ws):
    threads = [ThreadFactory(workspace=ws, participants=[f"p{i}@acme.example"]) for i in range(120)]
    ThreadFactory(workspace=ws, participants=["x@else.example"])
    stages.emit(stages.THREAD_EXTRACTED, workspace_id=ws.pk, thread_id=threads[0].pk)  # already queued
    deal = DealFactory(workspace=ws, primary_domain="acme.example")

    tasks.relink_deals({"deal_ids": [deal.pk]}, job=SimpleNamespace(id=None, workspace_id=ws.pk))

    assert sorted(p["thread_id"] for p in queued("link_thread")) == [t.pk for t in threads]
    assert Job.objects.filter(task="link_thread", dedupe_key=f"link:{threads[0].pk}").count() == 1
