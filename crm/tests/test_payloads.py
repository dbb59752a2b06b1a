"""What a thread's accepted values write, read from the value shapes the extractors really
give (extraction/extractors/rules.py, extraction/schemas.py)."""

from datetime import datetime

from crm.selectors import deal_properties
from extraction.extractors.base import MessageInput
from extraction.extractors.rules import RulesExtractor
from extraction.models import FieldValue
from extraction.schemas import SALES_BANT_V1


def _value(key, raw) -> FieldValue:
    return FieldValue(field_key=key, field_value_json=raw, confidence=0.9, status=FieldValue.Status.ACCEPTED)


def test_the_close_date_is_the_timeline_the_rules_extractor_gives():
    message = MessageInput(1, "We have to go live by the end of Q3 2027.", datetime(2027, 1, 10), "dana@acme.example")
    [timeline] = [p for p in RulesExtractor().extract([message], SALES_BANT_V1).proposals if p.field == "timeline"]
    assert timeline.value == {"date": "2027-09-30", "phrase": "end of Q3 2027"}  # a dict, not a string
    assert deal_properties({"timeline": _value("timeline", timeline.value)}) == {"close_date": "2027-09-30"}


def test_the_close_date_reads_a_bare_iso_date_and_skips_what_is_not_a_date():
    # The schema's own description ("an ISO date"): what a model answers or a person types in an edit.
    assert deal_properties({"timeline": _value("timeline", "2027-03-31")}) == {"close_date": "2027-03-31"}
    for raw in ({"date": None, "phrase": "soon"}, {"phrase": "next spring"}, "next spring", "2027-13-01", 20270331):
        assert deal_properties({"timeline": _value("timeline", raw)}) == {}, raw


def test_a_budget_range_writes_its_top_as_the_amount():
    message = MessageInput(1, "Our budget is between $30k and $45k.", datetime(2027, 1, 10), "dana@acme.example")
    [budget] = [p for p in RulesExtractor().extract([message], SALES_BANT_V1).proposals if p.field == "budget"]
    assert budget.value == {"min": 30000.0, "max": 45000.0, "currency": "USD"}
    assert deal_properties({"budget": _value("budget", budget.value)}) == {"amount": "45000.00"}
