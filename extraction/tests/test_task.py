"""extract_thread through the real worker loop (runworker --batch), not a direct call."""

from io import StringIO

import pytest
from django.core.management import call_command

from extraction.models import ExtractionRun, FieldValue
from jobs.models import Job
from jobs.services import enqueue
from threads.tests.factories import MessageFactory, ThreadFactory
from workspaces.models import AuditEvent
from workspaces.rls import workspace_context
from workspaces.services import workspace_create

pytestmark = pytest.mark.django_db(transaction=True)


def test_runworker_runs_extract_thread_and_the_run_is_audited_with_its_job():
    ws = workspace_create(slug="acme", name="Acme", internal_domains=["ours.example"])
    with workspace_context(ws):
        thread = ThreadFactory(workspace=ws)
        MessageFactory(workspace=ws, thread=thread, reply_text="Our budget is $40,000 and we go live by Q3.")
        job = enqueue("extract_thread", workspace=ws, payload={"thread_id": thread.pk})
    call_command("runworker", batch=True, stdout=StringIO(), stderr=StringIO())
    with workspace_context(ws):
        assert Job.objects.get(pk=job.pk).status == "succeeded"
        run = ExtractionRun.objects.get(thread=thread)
        assert run.status == "succeeded"
        assert set(FieldValue.objects.values_list("field_key", flat=True)) >= {"budget", "timeline"}
        assert AuditEvent.objects.filter(type="extraction.run.finished", job_id=job.pk).exists()
