"""Deal facts from accepted values, conflicts, and the readiness arithmetic of each state."""

from datetime import UTC, datetime, timedelta

import pytest

from deals.frameworks import BANT, MEDDIC, FactView, readiness_evaluate
from deals.models import DealFact, DealReadiness
from deals.services import deal_facts_update, deal_readiness_compute
from deals.tests.factories import DealFactory, ThreadLinkFactory
from extraction.tests.factories import FieldValueFactory
from jobs.models import Job
from review.models import ReviewItem
from threads.tests.factories import MessageFactory
from workspaces.models import AuditEvent
from workspaces.rls import workspace_context
from workspaces.services import workspace_create

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 9, 1, tzinfo=UTC)


# --- readiness arithmetic (no database) ----------------------------------------------------


def test_all_missing_scores_zero_and_lists_every_key():
    result = readiness_evaluate(BANT, {})
    assert result.score == 0.0
    assert result.missing_keys == ["budget", "authority", "need", "timeline"]
    assert set(result.states.values()) == {"missing"}


def test_a_suggested_key_counts_its_confidence():
    result = readiness_evaluate(BANT, {"budget": FactView({"amount": 1}, 0.8, False)})
    assert result.states["budget"] == "suggested"
    assert result.score == 0.2  # (1 * 0.8 + 0 + 0 + 0) / 4


def test_a_confirmed_key_counts_fully_whatever_its_confidence():
    result = readiness_evaluate(BANT, {"budget": FactView({"amount": 1}, 0.6, True)})
    assert result.states["budget"] == "confirmed"
    assert result.score == 0.25  # (1 * 1.0) / 4


def test_mixed_states_weigh_coverage_by_confidence():
    facts = {
        "budget": FactView({"amount": 1}, 0.9, True),  # 1.0
        "authority": FactView({"name": "Dan"}, 0.7, False),  # 0.7
        "need": FactView("forecasting", 0.5, False),  # 0.5
    }
    result = readiness_evaluate(BANT, facts)
    assert result.score == 0.55  # (1.0 + 0.7 + 0.5 + 0) / 4
    assert result.missing_keys == ["timeline"]
    assert result.states == {
        "budget": "confirmed",
        "authority": "suggested",
        "need": "suggested",
        "timeline": "missing",
    }


def test_all_confirmed_scores_one():
    facts = {k: FactView("x", 0.5, True) for k in ("budget", "authority", "need", "timeline")}
    assert readiness_evaluate(BANT, facts).score == 1.0


def test_meddic_is_scored_from_the_bant_facts_that_exist():
    facts = {"authority": FactView({"name": "Dan"}, 0.8, True), "need": FactView("cut 40 hours a week", 0.6, False)}
    result = readiness_evaluate(MEDDIC, facts)
    assert result.states == {
        "metrics": "suggested",  # a need that names a number
        "economic_buyer": "confirmed",
        "decision_criteria": "missing",
        "decision_process": "missing",
        "identify_pain": "suggested",
        "champion": "missing",
    }
    assert result.score == round((0.6 + 1.0 + 0.6) / 6, 4) == 0.3667
    no_number = readiness_evaluate(MEDDIC, {"need": FactView("forecasting", 0.6, False)})
    assert no_number.states["metrics"] == "missing" and no_number.states["identify_pain"] == "suggested"


# --- facts on the database -----------------------------------------------------------------


@pytest.fixture
def ws():
    workspace = workspace_create(slug="team", name="Team", internal_domains=["team.example"])
    with workspace_context(workspace):
        yield workspace


def value_on(ws, link, key, value, *, status="accepted", confidence=0.9, days=0):
    message = MessageFactory(workspace=ws, thread=link.thread, sent_at=T0 + timedelta(days=days), reply_text="quote")
    return FieldValueFactory(
        workspace=ws,
        run__thread=link.thread,
        field_key=key,
        field_value_json=value,
        status=status,
        confidence=confidence,
        evidence_json=[{"message_id": message.pk, "start": 0, "end": 5, "quote": "quote"}],
    )


def test_accepted_values_become_facts_with_evidence_and_readiness_is_queued(ws):
    link = ThreadLinkFactory(workspace=ws)
    budget = value_on(ws, link, "budget", {"amount": 25000, "currency": "USD"})
    value_on(ws, link, "need", "forecasting", status="verified", confidence=0.7)
    value_on(ws, link, "timeline", "2026-11-15", status="proposed")  # not accepted yet: no fact
    value_on(ws, link, "company", "Acme")  # not a framework key

    summary = deal_facts_update(workspace_id=ws.pk, deal_id=link.deal_id)

    assert summary == {"recorded": 2, "superseded": 0, "conflicts": 0}
    facts = {f.key: f for f in DealFact.objects.filter(deal=link.deal)}
    assert set(facts) == {"budget", "need"}
    assert facts["budget"].source_field_value_id == budget.pk and not facts["budget"].confirmed
    assert facts["budget"].evidence_json[0]["thread_id"] == link.thread_id
    assert facts["need"].confirmed and facts["need"].confidence == 1.0
    assert Job.objects.filter(task="deal_readiness_recompute", payload__deal_id=link.deal_id).count() == 1
    assert deal_facts_update(workspace_id=ws.pk, deal_id=link.deal_id)["recorded"] == 0  # idempotent


def test_newer_evidence_supersedes_older_and_history_is_kept_and_disagreement_goes_to_review(ws):
    deal = DealFactory(workspace=ws)
    first = ThreadLinkFactory(workspace=ws, deal=deal)
    second = ThreadLinkFactory(workspace=ws, deal=deal)
    value_on(ws, first, "budget", {"amount": 40000, "currency": "USD"}, days=0)
    deal_facts_update(workspace_id=ws.pk, deal_id=deal.pk)
    newer = value_on(ws, second, "budget", {"amount": 90000, "currency": "USD"}, days=5)

    summary = deal_facts_update(workspace_id=ws.pk, deal_id=deal.pk)

    assert summary == {"recorded": 1, "superseded": 1, "conflicts": 1}
    history = list(DealFact.objects.filter(deal=deal, key="budget").order_by("pk").values_list("status", "value_json"))
    assert history == [
        ("superseded", {"amount": 40000, "currency": "USD"}),
        ("current", {"amount": 90000, "currency": "USD"}),
    ]
    item = ReviewItem.objects.get(reason="fact_conflict")
    assert item.payload_json["key"] == "budget" and item.payload_json["deal_id"] == deal.pk
    assert [v["value"]["amount"] for v in item.payload_json["values"]] == [40000, 90000]
    assert [v["current"] for v in item.payload_json["values"]] == [False, True]
    assert item.payload_json["values"][1]["field_value_id"] == newer.pk
    assert item.payload_json["values"][0]["evidence"][0]["quote"] == "quote"

    deal_facts_update(workspace_id=ws.pk, deal_id=deal.pk)  # the same disagreement: no second item
    assert ReviewItem.objects.filter(reason="fact_conflict").count() == 1
    types = list(AuditEvent.objects.filter(type__startswith="deal_fact").order_by("pk").values_list("type", flat=True))
    assert types == ["deal_fact.recorded", "deal_fact.recorded", "deal_fact.conflict"]


def test_readiness_is_stored_per_framework_from_current_facts(ws):
    deal = DealFactory(workspace=ws)
    link = ThreadLinkFactory(workspace=ws, deal=deal)
    value_on(ws, link, "budget", {"amount": 25000}, status="verified")
    value_on(ws, link, "authority", {"name": "Dan"}, confidence=0.8)
    deal_facts_update(workspace_id=ws.pk, deal_id=deal.pk)

    deal_readiness_compute(workspace_id=ws.pk, deal_id=deal.pk)

    bant = DealReadiness.objects.get(deal=deal, framework="bant")
    assert bant.readiness_score == 0.45  # (1.0 + 0.8) / 4
    assert bant.missing_keys == ["need", "timeline"]
    assert bant.key_states_json["budget"] == "confirmed"
    meddic = DealReadiness.objects.get(deal=deal, framework="meddic")
    assert meddic.readiness_score == round(0.8 / 6, 4)
    deal_readiness_compute(workspace_id=ws.pk, deal_id=deal.pk)
    assert AuditEvent.objects.filter(type="deal_readiness.computed").count() == 2  # unchanged: no new events
