"""What operators use: services, the page, the admin, jobs_status and prune_jobs."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from jobs import db
from jobs.models import Job
from jobs.services import JobError, enqueue, job_cancel, job_retry
from jobs.tests.factories import JobFactory
from workspaces.models import AuditEvent, Membership
from workspaces.rls import workspace_context
from workspaces.services import membership_add
from workspaces.tests.factories import UserFactory


def _failed_job(ws, **kwargs):
    with workspace_context(ws):
        return JobFactory(
            workspace=ws,
            status="failed",
            attempts=3,
            finished_at=timezone.now(),
            last_error="RuntimeError: boom",
            **kwargs,
        )


def test_job_factory_makes_a_valid_row_in_a_workspace_context(workspace):
    with workspace_context(workspace):
        job = JobFactory(workspace=workspace)
        assert Job.objects.get() == job


def test_retry_queues_a_failed_job_with_its_attempts_back_and_audits(workspace):
    job = _failed_job(workspace)
    job_retry(job=job)
    assert (job.status, job.attempts, job.finished_at) == ("queued", 0, None)
    with workspace_context(workspace):
        assert AuditEvent.objects.filter(type="job.retried", job_id=job.pk).exists()
    with pytest.raises(JobError, match="not failed or cancelled"):
        job_retry(job=job)


def test_retry_refuses_when_the_dedupe_key_is_taken_again(workspace):
    job = _failed_job(workspace, dedupe_key="k")
    with workspace_context(workspace):
        enqueue("test.noop", workspace=workspace, payload={}, dedupe_key="k")
    with pytest.raises(JobError, match="dedupe key"):
        job_retry(job=job)


def test_cancel_a_running_job_fences_out_its_worker(workspace, make_worker):
    with workspace_context(workspace):
        job = enqueue("test.record", workspace=workspace, payload={})
    worker = make_worker()
    [claimed] = worker.claim(10)
    job_cancel(job=job)
    assert worker.run_job(claimed) == "lease_lost"
    with workspace_context(workspace):
        assert Job.objects.get().status == "cancelled"
        assert not AuditEvent.objects.filter(type="test.ran").exists()
    with pytest.raises(JobError, match="already cancelled"):
        job_cancel(job=job)


def test_jobs_status_shows_every_workspace(workspace, other_workspace):
    _failed_job(workspace, task="test.fail")
    with workspace_context(other_workspace):
        JobFactory(workspace=other_workspace, created_at=timezone.now())
    out = StringIO()
    call_command("jobs_status", stdout=out)
    text = out.getvalue()
    assert "test.fail" in text and "test.noop" in text
    assert "failed   #" in text and "RuntimeError: boom" in text
    assert "oldest queued job: " in text and "oldest queued job: -" not in text


def test_prune_jobs_deletes_old_finished_jobs_only(workspace, other_workspace):
    old = timezone.now() - timedelta(days=8)
    for ws in (workspace, other_workspace):
        with workspace_context(ws):
            JobFactory(workspace=ws, status="succeeded", finished_at=old)
            JobFactory(workspace=ws, status="succeeded", finished_at=timezone.now())
            JobFactory(workspace=ws, status="failed", finished_at=old)
            JobFactory(workspace=ws)
    out = StringIO()
    call_command("prune_jobs", "--older-than", "7d", stdout=out)
    assert "deleted 2 jobs" in out.getvalue()
    with db.queue_role():
        assert Job.objects.count() == 6
    call_command("prune_jobs", "--older-than", "7d", "--include-failed", stdout=out)
    with db.queue_role():
        assert sorted(Job.objects.values_list("status", flat=True)) == ["queued", "queued", "succeeded", "succeeded"]


@pytest.fixture
def reviewer_client(client, workspace):
    user = UserFactory()
    membership_add(workspace=workspace, user=user, role=Membership.Role.REVIEWER)
    client.force_login(user)
    return client


@pytest.fixture
def strict_templates(settings):
    settings.TEMPLATES = [
        {**settings.TEMPLATES[0], "OPTIONS": {**settings.TEMPLATES[0]["OPTIONS"], "string_if_invalid": "INVALID<%s>"}}
    ]


def test_queue_page_shows_depth_and_failed_jobs(
    reviewer_client, workspace, other_workspace, django_assert_max_num_queries, strict_templates
):
    job = _failed_job(workspace)
    _failed_job(other_workspace, task="secret.task")
    with workspace_context(workspace):
        JobFactory(workspace=workspace)
    with django_assert_max_num_queries(19):
        response = reviewer_client.get(f"/w/{workspace.slug}/jobs/")
    assert response.status_code == 200
    body = response.content.decode()
    assert f"#{job.pk}" in body and "RuntimeError: boom" in body and "Retry" in body
    assert "secret.task" not in body
    assert "INVALID" not in body


def test_queue_page_retry_and_cancel_buttons(reviewer_client, workspace):
    job = _failed_job(workspace)
    url = reverse("jobs:retry", kwargs={"workspace_slug": workspace.slug, "job_id": job.pk})
    assert reviewer_client.post(url).status_code == 302
    with workspace_context(workspace):
        assert Job.objects.get().status == "queued"
    url = reverse("jobs:cancel", kwargs={"workspace_slug": workspace.slug, "job_id": job.pk})
    reviewer_client.post(url)
    with workspace_context(workspace):
        assert Job.objects.get().status == "cancelled"


def test_queue_page_needs_login_and_membership(client, workspace, other_workspace):
    assert client.get(f"/w/{workspace.slug}/jobs/").status_code == 302
    user = UserFactory()
    membership_add(workspace=other_workspace, user=user, role=Membership.Role.VIEWER)
    client.force_login(user)
    assert client.get(f"/w/{workspace.slug}/jobs/").status_code == 404


def test_viewers_cannot_retry(client, workspace):
    user = UserFactory()
    membership_add(workspace=workspace, user=user, role=Membership.Role.VIEWER)
    client.force_login(user)
    job = _failed_job(workspace)
    assert client.post(f"/w/{workspace.slug}/jobs/{job.pk}/retry/").status_code == 403


def test_admin_changelist_and_retry_action(client, workspace):
    admin_user = UserFactory()  # a workspace admin: neither staff nor a superuser
    membership_add(workspace=workspace, user=admin_user, role=Membership.Role.ADMIN)
    client.force_login(admin_user)
    job = _failed_job(workspace)
    url = reverse("admin:jobs_job_changelist")
    response = client.get(url)
    assert response.status_code == 200 and "Oldest queued job" in response.content.decode()
    assert client.get(url, {"q": "boom"}).status_code == 200
    assert client.get(reverse("admin:jobs_job_change", args=[job.pk])).status_code == 200
    client.post(url, {"action": "retry_jobs", "_selected_action": [job.pk]})
    with workspace_context(workspace):
        assert Job.objects.get().status == "queued"
    client.post(url, {"action": "cancel_jobs", "_selected_action": [job.pk]})
    with workspace_context(workspace):
        assert Job.objects.get().status == "cancelled"


def test_every_sql_file_is_used():
    from pathlib import Path

    import jobs
    from jobs.sql import SQL_DIR

    migrations = "".join(p.read_text() for p in (Path(jobs.__file__).parent / "migrations").glob("*.py"))
    for path in SQL_DIR.glob("*.sql"):
        assert path.name == "queries.sql" or f'"{path.stem}"' in migrations, path.name
