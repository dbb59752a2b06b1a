from pathlib import Path

import pytest

from extraction.evaluation import evaluate, load_labelled, values_match
from extraction.extractors.rules import RulesExtractor
from extraction.schemas import SALES_BANT_V1

LABELLED = Path(__file__).resolve().parent.parent / "eval" / "sales_threads.jsonl"


def test_shipped_set_has_at_least_30_threads_and_the_variety_it_claims():
    rows = load_labelled(LABELLED)
    assert len(rows) >= 30
    notes = " ".join(r.get("note", "") for r in rows)
    for kind in ("words", "range", "forward", "no budget", "relative"):
        assert kind in notes.lower()


def test_rules_extractor_scores_well_and_is_fully_grounded():
    report = evaluate(RulesExtractor(), load_labelled(LABELLED), SALES_BANT_V1)
    assert report.grounding_rate == 1.0
    for key in ("budget", "authority", "need", "timeline"):
        assert report.fields[key].f1 >= 0.8, report.table()


def test_a_wrong_value_counts_against_precision_and_recall():
    rows = [
        {
            "id": "x",
            "messages": [
                {"id": 1, "from": "a@b.example", "date": "2026-01-01T00:00:00", "text": "Our budget is $10k."}
            ],
            "expected": {"budget": {"amount": 99000, "currency": "USD"}, "need": None},
        }
    ]
    report = evaluate(RulesExtractor(), rows, SALES_BANT_V1)
    assert (report.fields["budget"].tp, report.fields["budget"].fp, report.fields["budget"].fn) == (0, 1, 1)


@pytest.mark.parametrize(
    ("kind", "expected", "actual", "match"),
    [
        ("money", {"amount": 100, "currency": "USD"}, {"amount": 101, "currency": "USD"}, True),
        ("money", {"amount": 100, "currency": "USD"}, {"amount": 100, "currency": "EUR"}, False),
        ("date", "2026-03-31", {"date": "2026-04-02"}, True),
        ("date", "2026-03-31", {"date": "2026-04-10"}, False),
        ("list", ["Gong", "Clari"], ["clari", "Gong"], True),
        ("person", {"title": "CFO"}, {"name": None, "title": "CFO"}, True),
    ],
)
def test_value_matching(kind, expected, actual, match):
    assert values_match(kind, expected, actual) is match


def test_bad_jsonl_names_the_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "messages": [], "expected": {}}\n{not json}\n')
    with pytest.raises(ValueError, match="bad.jsonl:2: not JSON"):
        load_labelled(bad)
