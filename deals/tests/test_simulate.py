"""simulate_linking: counts under the current and a simulated policy, and nothing written."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from deals.models import AssociationCandidate, ThreadLink
from deals.services import thread_link_update
from deals.tests.factories import DealFactory
from review.models import ReviewItem
from threads.tests.factories import MessageFactory, ThreadFactory
from workspaces.models import AuditEvent
from workspaces.rls import workspace_context
from workspaces.services import workspace_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def ws():
    workspace = workspace_create(slug="team", name="Team", internal_domains=["team.example"])
    with workspace_context(workspace):
        # One thread whose single candidate scores about 0.55: review at 0.75, a link at 0.5.
        DealFactory(workspace=workspace, title="Acme pilot", primary_domain="acme.example")
        thread = ThreadFactory(workspace=workspace, subject="Acme pilot", participants=["sara@acme.example"])
        MessageFactory(workspace=workspace, thread=thread, from_email="sara@acme.example")
        stranger = ThreadFactory(workspace=workspace, subject="Hello", participants=["x@else.example"])
        MessageFactory(workspace=workspace, thread=stranger, from_email="x@else.example")
    thread_link_update(workspace_id=workspace.pk, thread_id=thread.pk)
    return workspace


def counts(ws):
    with workspace_context(ws):
        return (
            ThreadLink.objects.count(),
            AssociationCandidate.objects.count(),
            ReviewItem.objects.count(),
            AuditEvent.objects.count(),
        )


def test_a_lower_threshold_moves_the_review_to_a_link_and_writes_nothing(ws, tmp_path):
    policy = tmp_path / "loose.json"
    policy.write_text(json.dumps({"auto_link_threshold": 0.5}))
    before = counts(ws)
    out = StringIO()

    call_command("simulate_linking", workspace="team", policy=str(policy), json=True, stdout=out)

    result = json.loads(out.getvalue())
    assert result["threads"] == 2
    assert result["stored"] == {"review": 1, "none": 1}
    assert result["current"] == {"review": 1, "none": 1}
    assert result["simulated"] == {"link": 1, "none": 1}
    assert len(result["changed"]) == 1 and result["changed"][0]["simulated"].startswith("linked to 'Acme pilot'")
    assert counts(ws) == before

    text = StringIO()
    call_command("simulate_linking", workspace="team", policy=str(policy), stdout=text)
    assert "sent to review" in text.getvalue() and "Nothing was written." in text.getvalue()


def test_an_invalid_policy_file_is_refused_naming_the_key(ws, tmp_path):
    policy = tmp_path / "bad.json"
    policy.write_text(json.dumps({"auto_link_threshold": 3}))
    with pytest.raises(CommandError, match="auto_link_threshold"):
        call_command("simulate_linking", workspace="team", policy=str(policy))
