"""The LLM extractor: the real openai client over real HTTP to a local chat-completions server."""

import json
import time
from datetime import datetime

import pytest

from extraction.extractors.base import ExtractionError, MessageInput
from extraction.extractors.llm import LLMConfig, LLMExtractor
from extraction.grounding import evidence_ground
from extraction.schemas import SALES_BANT_V1
from extraction.tests.llm_server import ChatServer, completion

TEXT = "Hi Sam, our budget is $40k and we need to go live by end of Q3. Our CFO signs off."
MESSAGES = [MessageInput(7, TEXT, datetime(2026, 3, 10), "dana@acme.example", "Dana Kim")]


@pytest.fixture
def server():
    with ChatServer() as chat:
        yield chat


def extractor(server, **overrides):
    config = {
        "base_url": server.base_url,
        "api_key": "sk-test",
        "model": "test-model",
        "timeout": 2.0,
        "max_retries": 2,
        "price_input_per_mtok": 2.5,
        "price_output_per_mtok": 10.0,
    }
    return LLMExtractor(LLMConfig(**{**config, **overrides}))


def answer(values):
    return {"status": 200, "body": completion(json.dumps({"values": values}))}


def test_structured_output_request_and_normalized_values(server):
    budget_at = TEXT.index("$40k")
    server.answers.append(
        answer(
            [
                {
                    "field": "budget",
                    "value": "$40k",
                    "confidence": 0.9,
                    "evidence": [
                        {"message_id": 7, "quote": "our budget is $40k", "start": budget_at - 14, "end": budget_at + 4}
                    ],
                },
                {
                    "field": "timeline",
                    "value": "end of Q3",
                    "confidence": 0.8,
                    "evidence": [{"message_id": 7, "quote": "go live by end of Q3", "start": 0, "end": 3}],
                },  # wrong offsets
                {
                    "field": "authority",
                    "value": "CFO",
                    "confidence": 0.7,
                    "evidence": [{"message_id": 7, "quote": "Our CEO signs off", "start": 0, "end": 3}],
                },  # invented quote
            ]
        )
    )
    output = extractor(server).extract(MESSAGES, SALES_BANT_V1)

    request = server.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["auth"] == "Bearer sk-test"
    assert request["body"]["response_format"]["type"] == "json_schema"
    assert request["body"]["response_format"]["json_schema"]["schema"]["properties"]["values"]
    assert TEXT in request["body"]["messages"][1]["content"]

    found = {p.field: p for p in output.proposals}
    assert found["budget"].value == {"amount": 40000.0, "currency": "USD"}
    assert found["timeline"].value["date"] == "2026-09-30"
    texts = {7: TEXT}
    assert evidence_ground(found["budget"].evidence, texts)[1] is True
    reanchored, ok = evidence_ground(found["timeline"].evidence, texts)
    assert ok and reanchored[0]["grounded"] == "reanchored" and TEXT[reanchored[0]["start"] :].startswith("go live")
    assert evidence_ground(found["authority"].evidence, texts)[1] is False
    assert (output.prompt_tokens, output.completion_tokens) == (120, 40)
    assert output.cost_usd == pytest.approx((120 * 2.5 + 40 * 10.0) / 1e6)
    assert output.model == "test-model"


def test_malformed_json_is_a_clear_error(server):
    server.answers.append({"status": 200, "body": completion('{"values": [{"field": "budget", ')})
    with pytest.raises(ExtractionError, match="malformed JSON"):
        extractor(server).extract(MESSAGES, SALES_BANT_V1)


def test_timeout_is_a_clear_error_after_retries(server):
    server.answers.extend({"status": 200, "body": completion("{}"), "delay": 1.5} for _ in range(3))
    started = time.monotonic()
    with pytest.raises(ExtractionError, match="timed out after 0.5s"):
        extractor(server, timeout=0.5, max_retries=1).extract(MESSAGES, SALES_BANT_V1)
    assert len(server.requests) == 2  # the first try and one retry
    assert time.monotonic() - started < 10


def test_429_is_retried_honouring_retry_after(server):
    server.answers.append({"status": 429, "body": {"error": {"message": "slow down"}}, "headers": {"Retry-After": "1"}})
    server.answers.append(answer([]))
    started = time.monotonic()
    output = extractor(server).extract(MESSAGES, SALES_BANT_V1)
    assert output.proposals == []
    assert len(server.requests) == 2
    assert time.monotonic() - started >= 0.9


def test_429_that_persists_is_a_clear_error(server):
    server.answers.extend(
        {"status": 429, "body": {"error": {"message": "slow down"}}, "headers": {"Retry-After": "0"}} for _ in range(3)
    )
    with pytest.raises(ExtractionError, match="rate limit"):
        extractor(server, max_retries=1).extract(MESSAGES, SALES_BANT_V1)


def test_unknown_fields_are_ignored(server):
    server.answers.append(answer([{"field": "shoe_size", "value": "44", "confidence": 1, "evidence": []}]))
    assert extractor(server).extract(MESSAGES, SALES_BANT_V1).proposals == []
