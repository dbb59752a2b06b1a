"""Runs, history and routing by policy, on the real database under row-level security."""

from datetime import UTC, datetime

import pytest

from extraction.extractors.base import ExtractionError, ExtractionOutput, Proposal
from extraction.models import ExtractionRun, FieldValue
from extraction.services import extraction_run_execute
from review.models import ReviewItem
from threads.tests.factories import MessageFactory, ThreadFactory
from workspaces.models import AuditEvent, Policy
from workspaces.policy import policy_validate
from workspaces.rls import workspace_context
from workspaces.services import workspace_create

pytestmark = pytest.mark.django_db

TEXT = "Our budget is $40,000 and our CFO signs off. We want to go live by Q3."


class FixedExtractor:
    """Returns the proposals a test gives it: routing is tested apart from the heuristics."""

    name = "rules"

    def __init__(self, *proposals, error=None):
        self.proposals, self.error = list(proposals), error

    def extract(self, messages, schema):
        if self.error:
            raise self.error
        return ExtractionOutput(proposals=list(self.proposals), model="fixed")


def budget(value=40000, confidence=0.95, quote="budget is $40,000", message_id=None):
    start = TEXT.find(quote)
    return Proposal(
        "budget",
        {"amount": value, "currency": "USD"},
        confidence,
        [{"message_id": message_id, "start": start, "end": start + len(quote), "quote": quote}],
    )


@pytest.fixture
def setup():
    ws = workspace_create(slug="acme", name="Acme", internal_domains=["ours.example"])
    with workspace_context(ws):
        thread = ThreadFactory(workspace=ws)
        message = MessageFactory(
            workspace=ws,
            thread=thread,
            text=TEXT,
            reply_text=TEXT,
            from_email="dana@buyer.example",
            sent_at=datetime(2026, 3, 10, tzinfo=UTC),
        )
    return ws, thread, message


def set_policy(ws, **changes):
    with workspace_context(ws):
        policy = Policy.objects.get(workspace=ws)
        policy.policy = policy_validate({**policy.policy, **changes})
        policy.save()


def run(ws, thread, *proposals, message=None):
    fixed = [
        Proposal(
            p.field, p.value, p.confidence, [{**e, "message_id": e["message_id"] or message.pk} for e in p.evidence]
        )
        for p in proposals
    ]
    return extraction_run_execute(workspace_id=ws.pk, thread_id=thread.pk, extractor=FixedExtractor(*fixed))


def values(ws, field="budget"):
    with workspace_context(ws):
        return list(FieldValue.objects.filter(field_key=field).order_by("created_at").values_list("status", flat=True))


def reviews(ws):
    with workspace_context(ws):
        return list(ReviewItem.objects.order_by("created_at").values_list("reason", "status"))


def test_confident_grounded_value_is_accepted_with_its_run_recorded(setup):
    ws, thread, message = setup
    set_policy(ws, always_review_fields=[], audit_sample_rate=0)
    run_row = run(ws, thread, budget(), message=message)
    assert values(ws) == ["accepted"] and reviews(ws) == []
    with workspace_context(ws):
        run_row.refresh_from_db()
        assert (run_row.status, run_row.schema_id, run_row.schema_version, run_row.messages_seen) == (
            "succeeded",
            "sales_bant",
            1,
            1,
        )
        assert {"extraction.run.started", "extraction.run.finished", "field_value.accepted"} <= set(
            AuditEvent.objects.values_list("type", flat=True)
        )


def test_below_the_global_threshold_goes_to_review(setup):
    ws, thread, message = setup
    set_policy(ws, always_review_fields=[], min_confidence=0.9)
    run(ws, thread, budget(confidence=0.85), message=message)
    assert values(ws) == ["proposed"] and reviews(ws) == [("low_confidence", "open")]


def test_per_field_threshold_overrides_the_global_one(setup):
    ws, thread, message = setup
    set_policy(
        ws, always_review_fields=[], min_confidence=0.9, field_min_confidence={"budget": 0.5}, audit_sample_rate=0
    )
    run(ws, thread, budget(confidence=0.6), message=message)
    assert values(ws) == ["accepted"]


def test_always_review_fields_wait_for_a_person_whatever_the_confidence(setup):
    ws, thread, message = setup
    set_policy(ws, always_review_fields=["budget"])
    run(ws, thread, budget(confidence=0.99), message=message)
    assert values(ws) == ["proposed"] and reviews(ws) == [("always_review", "open")]


def test_a_value_whose_quote_is_nowhere_is_never_auto_accepted(setup):
    ws, thread, message = setup
    set_policy(ws, always_review_fields=[], min_confidence=0.1)
    run(ws, thread, budget(confidence=1.0, quote="budget is $90,000"), message=message)
    assert values(ws) == ["proposed"] and reviews(ws) == [("ungrounded", "open")]


def test_audit_sample_rate_one_samples_every_accepted_value(setup):
    ws, thread, message = setup
    set_policy(ws, always_review_fields=[], audit_sample_rate=1.0)
    run(ws, thread, budget(), message=message)
    assert values(ws) == ["accepted"] and reviews(ws) == [("audit_sample", "open")]


def test_a_new_value_supersedes_the_old_which_is_kept(setup):
    ws, thread, message = setup
    set_policy(ws, always_review_fields=[], audit_sample_rate=0, min_confidence=0.9)
    run(ws, thread, budget(confidence=0.5), message=message)  # goes to review
    run(ws, thread, budget(value=45000, confidence=0.95), message=message)
    assert values(ws) == ["superseded", "accepted"]
    assert reviews(ws) == [("low_confidence", "dismissed")]


def test_the_same_value_again_adds_nothing(setup):
    ws, thread, message = setup
    set_policy(ws, always_review_fields=[], audit_sample_rate=0)
    run(ws, thread, budget(), message=message)
    run(ws, thread, budget(), message=message)
    assert values(ws) == ["accepted"]
    with workspace_context(ws):
        assert ExtractionRun.objects.count() == 2


def test_a_verified_value_is_never_replaced_and_a_differing_one_is_a_conflict(setup):
    ws, thread, message = setup
    set_policy(ws, always_review_fields=[], audit_sample_rate=0)
    run(ws, thread, budget(), message=message)
    with workspace_context(ws):
        FieldValue.objects.filter(field_key="budget").update(status=FieldValue.Status.VERIFIED)
    run(ws, thread, budget(value=99000, confidence=0.99), message=message)
    assert values(ws) == ["verified", "proposed"]
    assert reviews(ws) == [("conflict", "open")]
    with workspace_context(ws):
        payload = ReviewItem.objects.get().payload_json
    assert payload["verified_value"] == {"amount": 40000, "currency": "USD"}
    assert payload["proposed_value"] == {"amount": 99000, "currency": "USD"}


def test_review_payload_carries_field_value_confidence_and_evidence(setup):
    ws, thread, message = setup
    set_policy(ws, always_review_fields=["budget"])
    run(ws, thread, budget(), message=message)
    with workspace_context(ws):
        payload = ReviewItem.objects.get().payload_json
    assert payload["field"] == "budget" and payload["confidence"] == 0.95
    assert payload["evidence"][0]["quote"] == "budget is $40,000"
    assert TEXT[payload["evidence"][0]["start"] : payload["evidence"][0]["end"]] == "budget is $40,000"


def test_an_extractor_failure_marks_the_run_failed_and_raises_for_a_retry(setup):
    ws, thread, _ = setup
    with pytest.raises(ExtractionError):
        extraction_run_execute(
            workspace_id=ws.pk, thread_id=thread.pk, extractor=FixedExtractor(error=ExtractionError("LLM timed out"))
        )
    with workspace_context(ws):
        run_row = ExtractionRun.objects.get()
        assert (run_row.status, run_row.error) == ("failed", "LLM timed out")
        assert AuditEvent.objects.filter(type="extraction.run.failed").exists()


def test_the_rules_extractor_end_to_end_on_a_thread(setup):
    ws, thread, _ = setup
    set_policy(ws, always_review_fields=[], audit_sample_rate=0, min_confidence=0.8)
    extraction_run_execute(workspace_id=ws.pk, thread_id=thread.pk)
    with workspace_context(ws):
        found = {v.field_key: v for v in FieldValue.objects.all()}
    assert found["budget"].field_value_json == {"amount": 40000.0, "currency": "USD"}
    assert found["budget"].status == "accepted" and found["budget"].grounded
    assert found["timeline"].field_value_json["date"] == "2026-09-30"


def test_policy_llm_uses_the_configured_model_and_records_tokens_and_cost(setup, settings):
    import json as _json

    from extraction.tests.llm_server import ChatServer, completion

    ws, thread, message = setup
    set_policy(ws, extractor="llm", always_review_fields=[], audit_sample_rate=0)
    with ChatServer() as server:
        settings.LLM_BASE_URL, settings.LLM_MODEL, settings.LLM_API_KEY = server.base_url, "gpt-test", "sk-x"
        settings.LLM_PRICE_INPUT_PER_MTOK, settings.LLM_PRICE_OUTPUT_PER_MTOK = 1.0, 2.0
        quote = "budget is $40,000"
        server.answers.append(
            {
                "status": 200,
                "body": completion(
                    _json.dumps(
                        {
                            "values": [
                                {
                                    "field": "budget",
                                    "value": "$40,000",
                                    "confidence": 0.9,
                                    "evidence": [{"message_id": message.pk, "quote": quote, "start": 0, "end": 1}],
                                }
                            ]
                        }
                    ),
                    model="gpt-test-2026",
                ),
            }
        )
        run_row = extraction_run_execute(workspace_id=ws.pk, thread_id=thread.pk)
    with workspace_context(ws):
        run_row.refresh_from_db()
        value = FieldValue.objects.get()
    assert (run_row.extractor, run_row.model, run_row.prompt_tokens, run_row.completion_tokens) == (
        "llm",
        "gpt-test-2026",
        120,
        40,
    )
    assert float(run_row.cost_usd) == pytest.approx((120 * 1.0 + 40 * 2.0) / 1e6)
    assert value.status == "accepted" and value.evidence_json[0]["grounded"] == "reanchored"


def test_policy_llm_without_configuration_falls_back_to_rules(setup, settings):
    ws, thread, _ = setup
    settings.LLM_BASE_URL, settings.LLM_MODEL = "", ""
    set_policy(ws, extractor="llm")
    run_row = extraction_run_execute(workspace_id=ws.pk, thread_id=thread.pk)
    assert run_row.extractor == "rules"
