"""The dashboard's counted figures come from a snapshot a worker keeps fresh: a view never
counts every open item itself unless no worker has counted them for a long time."""

import re
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

import review.tasks  # noqa: F401  (registers dashboard_refresh in this process)
from jobs.models import Job
from jobs.worker import Worker
from pipeline import stages
from review.models import DashboardSnapshot
from review.tests.test_views import make_item, member, url
from workspaces.rls import workspace_context
from workspaces.services import workspace_create

pytestmark = pytest.mark.django_db(transaction=True)


def _open_total(client, ws) -> int:
    page = client.get(url("dashboard", ws)).content.decode()
    return int(re.search(r'id="open-total">(\d+)<', page).group(1))


def _age(ws, seconds: float) -> None:
    with workspace_context(ws):
        DashboardSnapshot.objects.update(computed_at=timezone.now() - timedelta(seconds=seconds))


def _refresh_jobs(ws) -> list[Job]:
    with workspace_context(ws):
        return list(Job.objects.filter(task=stages.DASHBOARD_REFRESH))


@override_settings(DASHBOARD_REFRESH_SECONDS=30, DASHBOARD_STALE_SECONDS=600)
def test_the_dashboard_shows_its_snapshot_and_a_worker_counts_again_when_it_is_old():
    ws = workspace_create(slug="acme", name="Acme Sales")
    client, _ = member(ws, "rita", "reviewer")
    make_item(ws)
    assert _open_total(client, ws) == 1  # the first view counts: there is nothing to show yet
    make_item(ws, reason="conflict")

    assert _open_total(client, ws) == 1  # fresh: the kept figures, nothing queued
    assert _refresh_jobs(ws) == []

    _age(ws, 45)
    assert _open_total(client, ws) == 1  # old: still the kept figures, with their time ...
    assert _open_total(client, ws) == 1
    (job,) = _refresh_jobs(ws)  # ... and one worker job to count again, however many views
    assert job.status == "queued"
    page = client.get(url("dashboard", ws)).content.decode()
    assert "as of" in page and "counted every 30 seconds" in page

    assert Worker(tasks=[stages.DASHBOARD_REFRESH], batch=True, listen=False).run() == 1
    assert _open_total(client, ws) == 2
    page = client.get(url("dashboard", ws)).content.decode()
    assert 'data-reason="conflict">1<' in page


@override_settings(DASHBOARD_REFRESH_SECONDS=30, DASHBOARD_STALE_SECONDS=600)
def test_without_a_worker_a_view_counts_the_figures_itself_once_they_are_stale():
    ws = workspace_create(slug="acme", name="Acme Sales")
    client, _ = member(ws, "rita", "reviewer")
    assert _open_total(client, ws) == 0
    make_item(ws)
    _age(ws, 601)
    assert _open_total(client, ws) == 1
    with workspace_context(ws):
        assert DashboardSnapshot.objects.count() == 1  # written over, never a second row


def test_each_workspace_sees_its_own_snapshot():
    acme = workspace_create(slug="acme", name="Acme Sales")
    globex = workspace_create(slug="globex", name="Globex")
    rita, _ = member(acme, "rita", "reviewer")
    gus, _ = member(globex, "gus", "reviewer")
    make_item(acme)
    assert _open_total(rita, acme) == 1
    assert _open_total(gus, globex) == 0
    with workspace_context(globex):
        assert DashboardSnapshot.objects.get().workspace_id == globex.pk
