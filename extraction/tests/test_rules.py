"""The rules extractor, field type by field type; every value's evidence is its exact span."""

from datetime import datetime

import pytest

from extraction.extractors.base import MessageInput
from extraction.extractors.rules import RulesExtractor
from extraction.grounding import evidence_ground
from extraction.schemas import SALES_BANT_V1

SENT = datetime(2026, 3, 10, 9, 0)


def run(*texts, internal=False, sent=SENT, from_name="Dana Kim"):
    messages = [
        MessageInput(i + 1, t, sent, "sam@ours.example" if internal else "dana@acme.example", from_name, internal)
        for i, t in enumerate(texts)
    ]
    output = RulesExtractor().extract(messages, SALES_BANT_V1)
    for proposal in output.proposals:  # evidence by construction: every span is exact
        texts_by_id = {m.id: m.reply_text for m in messages}
        spans, all_found = evidence_ground(proposal.evidence, texts_by_id)
        assert all_found and all(s["grounded"] == "exact" for s in spans), proposal
    return {p.field: p for p in output.proposals}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Our budget is $40k for this year.", {"amount": 40000.0, "currency": "USD"}),
        ("We have 45,000 EUR allocated.", {"amount": 45000.0, "currency": "EUR"}),
        ("Budget is between $30k and $50k.", {"min": 30000.0, "max": 50000.0, "currency": "USD"}),
        ("We can spend somewhere between 35 and 45k euros.", {"min": 35000.0, "max": 45000.0, "currency": "EUR"}),
        ("We set aside fifty thousand dollars.", {"amount": 50000.0, "currency": "USD"}),
        ("Our budget is 20 000 € for year one.", {"amount": 20000.0, "currency": "EUR"}),
        ("The board approved £1.2M for the programme.", {"amount": 1200000.0, "currency": "GBP"}),
        ("We could spend 60 grand.", {"amount": 60000.0, "currency": "USD"}),
        ("Das Budget ist bis 10.000 EUR freigegeben.", {"amount": 10000.0, "currency": "EUR"}),
        ("Our budget is €1.250.000 in total.", {"amount": 1250000.0, "currency": "EUR"}),
        ("Our budget is $12.5k.", {"amount": 12500.0, "currency": "USD"}),
    ],
)
def test_money(text, value):
    assert run(text)["budget"].value == value


def test_money_confidence_follows_the_cue():
    assert run("Our budget is $40k.")["budget"].confidence > run("That would cost $40k.")["budget"].confidence


def test_numbers_that_are_not_money_are_ignored():
    assert "budget" not in run("We have 120 reps and 40 managers.")


def test_our_own_prices_are_not_the_buyers_budget():
    assert "budget" not in run("Our price for 40 seats is $48,000.", internal=True)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("We want to go live by end of next quarter.", "2026-06-30"),
        ("We need this in place by Q3.", "2026-09-30"),
        ("Decision expected in two weeks.", "2026-03-24"),
        ("Target go-live is early September.", "2026-09-01"),
        ("We must be live before the end of the year.", "2026-12-31"),
        ("The contract must be signed by 06/30/2026.", "2026-06-30"),
        ("Decision by March 31st.", "2026-03-31"),
        ("We won't decide until Q1 2027.", "2027-03-31"),
    ],
)
def test_dates_resolve_relative_to_the_message_date(text, expected):
    assert run(text)["timeline"].value["date"] == expected


def test_a_meeting_day_is_not_a_timeline():
    assert "timeline" not in run("Can we talk on Friday?")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("I'll need sign-off from our CFO before anything is signed.", {"name": None, "title": "CFO"}),
        ("Our CFO, Maria Lopez, has the final say.", {"name": "Maria Lopez", "title": "CFO"}),
        ("Final approval comes from our CFO, Erik Hansen.", {"name": "Erik Hansen", "title": "CFO"}),
        ("Anything above that goes to the board.", {"name": None, "title": "board"}),
        ("I'm the decision maker here.", {"name": "Dana Kim", "title": None}),
    ],
)
def test_authority(text, value):
    assert run(text)["authority"].value == value


def test_need_takes_the_pain_statement():
    found = run("Thanks for the call. Our biggest problem is that quotes fall through the cracks.")
    assert found["need"].value == "Our biggest problem is that quotes fall through the cracks."
    assert found["need"].confidence >= 0.8


def test_next_step_and_competitors():
    found = run("We're also evaluating Salesforce and HubSpot. Next step: send the proposal.")
    assert found["competitors"].value == ["Salesforce", "HubSpot"]
    assert "send the proposal" in found["next_step"].value


def test_contact_from_an_introduction():
    found = run("Hi, my name is Ava Brooks, Head of Sales at Willow Retail.", from_name="Ava Brooks")
    assert (found["contact_name"].value, found["contact_title"].value, found["company"].value) == (
        "Ava Brooks",
        "Head of Sales",
        "Willow Retail",
    )


def test_newer_strong_evidence_supersedes_older():
    found = run("Budget is tight, maybe $10k.", "Update: finance approved $18,000 for this after all.")
    assert found["budget"].value == {"amount": 18000.0, "currency": "USD"}
    assert found["budget"].evidence[0]["message_id"] == 2


def test_nothing_to_extract_gives_nothing():
    found = run("Not a priority right now, feel free to check back later.")
    assert set(found) <= {"contact_name"}


def test_deterministic():
    text = "Our budget is $40k. Our CFO approves. Go live by Q3. We're struggling with manual entry."
    assert run(text).keys() == run(text).keys()
    assert [p.value for p in run(text).values()] == [p.value for p in run(text).values()]


def test_company_from_the_domain_is_the_name_as_written_not_an_address():
    messages = [
        MessageInput(
            1,
            "Please send the order form to procurement@acme-industrial.com. Sam, thanks!",
            SENT,
            "ana@acme-industrial.com",
            "Ana",
        ),
        MessageInput(2, "Acme-Industrial GmbH will sign this week.", SENT, "ana@acme-industrial.com", "Ana"),
    ]
    found = {p.field: p for p in RulesExtractor().extract(messages, SALES_BANT_V1).proposals}
    assert found["company"].value == "Acme-Industrial GmbH"
    only_address = [messages[0]]
    assert "company" not in {p.field for p in RulesExtractor().extract(only_address, SALES_BANT_V1).proposals}
