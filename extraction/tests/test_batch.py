"""extract_thread jobs in batches, through the real worker loop (runworker --batch)."""

from io import StringIO

import pytest
from django.core.management import call_command

from extraction import services
from extraction.extractors.rules import RulesExtractor
from extraction.models import ExtractionRun
from jobs import db
from jobs.models import Job
from jobs.services import enqueue
from threads.tests.factories import MessageFactory, ThreadFactory
from workspaces.models import AuditEvent
from workspaces.rls import workspace_context
from workspaces.services import workspace_create

pytestmark = pytest.mark.django_db(transaction=True)


def _threads(ws, texts):
    """Threads with one message each, and their extract_thread jobs queued as today's ingest
    queues them (payload ``{"thread_id": N}``, key ``extract:<id>``)."""
    made = []
    with workspace_context(ws):
        for text in texts:
            thread = ThreadFactory(workspace=ws)
            MessageFactory(workspace=ws, thread=thread, reply_text=text)
            job = enqueue(
                "extract_thread",
                workspace=ws,
                payload={"thread_id": thread.pk},
                dedupe_key=f"extract:{thread.pk}",
                coalesce=True,
            )
            made.append((thread, job))
    return made


def _drain(tasks="extract_thread"):
    call_command("runworker", batch=True, tasks=tasks, stdout=StringIO(), stderr=StringIO())


def test_queued_extract_jobs_are_drained_in_one_batch_each_thread_once(monkeypatch):
    ws = workspace_create(slug="acme", name="Acme", internal_domains=["ours.example"])
    made = _threads(ws, [f"Our budget is ${n}0,000 and we go live by Q3." for n in range(1, 5)])
    calls = []
    real = services.extraction_runs_execute
    monkeypatch.setattr(
        "extraction.tasks.extraction_runs_execute", lambda **kw: calls.append(kw["threads"]) or real(**kw)
    )
    _drain()
    assert [len(c) for c in calls] == [4]  # one batch, not four jobs
    with workspace_context(ws):
        for thread, job in made:
            assert Job.objects.get(pk=job.pk).status == "succeeded"
            assert list(ExtractionRun.objects.filter(thread=thread).values_list("status", flat=True)) == ["succeeded"]
            assert AuditEvent.objects.filter(
                type="extraction.run.finished", job_id=job.pk, thread_id=thread.pk
            ).exists()
        # What follows each thread was queued, as extraction_run_execute queues it.
        keys = set(Job.objects.filter(task="link_thread").values_list("dedupe_key", flat=True))
        assert keys == {f"link:{t.pk}" for t, _ in made}


def test_a_thread_whose_extraction_fails_fails_alone_and_the_others_are_extracted_once(monkeypatch, settings):
    settings.JOBS_RETRY_BASE_SECONDS = 60
    ws = workspace_create(slug="acme", name="Acme", internal_domains=["ours.example"])
    made = _threads(ws, ["Our budget is $40,000.", "EXPLODE here", "We go live by Q3."])
    real = RulesExtractor.extract

    def extract(self, inputs, schema):
        if any("EXPLODE" in m.reply_text for m in inputs):
            raise RuntimeError("the extractor broke on this thread")
        return real(self, inputs, schema)

    monkeypatch.setattr(RulesExtractor, "extract", extract)
    _drain()
    (good1, job1), (bad, bad_job), (good2, job2) = made
    with workspace_context(ws):
        for thread, job in [(good1, job1), (good2, job2)]:
            assert Job.objects.get(pk=job.pk).status == "succeeded"
            # The batch rolled back; the rerun alone made the one run there is.
            assert list(ExtractionRun.objects.filter(thread=thread).values_list("status", flat=True)) == ["succeeded"]
        failed = Job.objects.get(pk=bad_job.pk)
        assert (failed.status, failed.attempts) == ("queued", 1)
        assert "the extractor broke" in failed.last_error
        assert list(ExtractionRun.objects.filter(thread=bad).values_list("status", flat=True)) == ["failed"]


def test_with_batching_off_the_same_threads_get_the_same_values():
    ws = workspace_create(slug="acme", name="Acme", internal_domains=["ours.example"])
    texts = ["Our budget is $40,000 and we go live by Q3.", "I'll need sign-off from our CFO.", "Nothing here."]
    made = _threads(ws, texts)
    _drain()
    other = workspace_create(slug="globex", name="Globex", internal_domains=["ours.example"])
    made_other = _threads(other, texts)
    call_command("runworker", batch=True, tasks="extract_thread", batch_max=1, stdout=StringIO(), stderr=StringIO())

    def values(ws, threads):
        from extraction.models import FieldValue

        with workspace_context(ws):
            return [
                sorted(FieldValue.objects.filter(thread=t).values_list("field_key", "field_value_json", "status"))
                for t, _ in threads
            ]

    assert values(ws, made) == values(other, made_other)
    assert any(values(ws, made))
    with db.queue_role():
        assert set(Job.objects.filter(task="extract_thread").values_list("status", flat=True)) == {"succeeded"}


def test_a_batch_takes_the_same_statements_for_five_threads_as_for_twenty():
    """The batch's runs, values, review items, events and follow-up jobs are each written
    together: a run row inserted and then updated per thread made 2 statements per thread."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    ws = workspace_create(slug="acme", name="Acme", internal_domains=["ours.example"])
    counts = []
    for n in (5, 20):
        made = _threads(ws, [f"Our budget is ${k + 1}0,000 and we go live by Q3." for k in range(n)])
        with CaptureQueriesContext(connection) as captured:
            done = services.extraction_runs_execute(workspace_id=ws.pk, threads=[(t.pk, j.pk) for t, j in made])
        assert done == n
        counts.append(len(captured.captured_queries))
    assert counts[0] == counts[1], counts
    with workspace_context(ws):
        assert set(ExtractionRun.objects.values_list("status", flat=True)) == {"succeeded"}
        assert ExtractionRun.objects.filter(finished_at__isnull=True).count() == 0
        assert AuditEvent.objects.filter(type="extraction.run.started").count() == 25
