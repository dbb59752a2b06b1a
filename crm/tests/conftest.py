import pytest

from crm.tests.crm_servers import TOKEN, FakeHubSpot, FakeSalesforce
from deals.tests.factories import DealFactory, ThreadLinkFactory
from extraction.tests.factories import FieldValueFactory
from workspaces.models import Policy
from workspaces.policy import policy_defaults
from workspaces.rls import workspace_context
from workspaces.tests.factories import WorkspaceFactory


@pytest.fixture
def hubspot(settings):
    with FakeHubSpot() as server:
        settings.HUBSPOT_BASE_URL = server.base_url
        yield server


@pytest.fixture
def salesforce():
    with FakeSalesforce() as server:
        yield server


@pytest.fixture
def fast_retries(settings):
    settings.CRM_RETRY_MAX_SECONDS = 2.0
    settings.CRM_MAX_RETRIES = 3


def policy_set(ws, **values):
    with workspace_context(ws):
        Policy.objects.update_or_create(workspace_id=ws.pk, defaults={"policy": {**policy_defaults(), **values}})


def connect(ws, crm="hubspot", instance_url=""):
    from crm.services import crm_connection_set

    return crm_connection_set(workspace_id=ws.pk, crm=crm, secret=TOKEN, instance_url=instance_url)


def thread_with_values(ws, *, crm="hubspot", deal_id="9001", statuses=("verified", "accepted", "accepted"), deal=None):
    """A thread linked to a deal (a new one, or ``deal``), with budget, timeline and next step
    in the given statuses."""
    with workspace_context(ws):
        link = ThreadLinkFactory(
            workspace=ws, deal=deal or DealFactory(workspace=ws, crm=crm, crm_deal_id=deal_id, amount=25000)
        )
        thread = link.thread
        specs = [
            ("budget", {"amount": 40000, "currency": "USD"}, "Our budget is $40,000"),
            # The shape the rules extractor gives a timeline (extraction/extractors/rules.py).
            ("timeline", {"date": "2026-12-31", "phrase": "end of December"}, "go live by end of December"),
            ("next_step", "Send the security questionnaire", "send over your security questionnaire"),
        ]
        values = [
            FieldValueFactory(
                workspace=ws,
                run__thread=thread,
                field_key=key,
                field_value_json=value,
                status=status,
                evidence_json=[{"message_id": 1, "start": 0, "end": len(q), "quote": q}],
            )
            for (key, value, q), status in zip(specs, statuses, strict=True)
        ]
    return thread, link.deal, values


@pytest.fixture
def workspace(transactional_db):
    return WorkspaceFactory()
