import pytest

from review.forms import initial_for, plain_decimal
from review.templatetags.review_tags import value_display


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ({"amount": 40000.0, "currency": "USD"}, "$40,000"),
        ({"amount": 12.5, "currency": "CAD"}, "CA$12.50"),
        ({"min": 35000, "max": 45000, "currency": "EUR"}, "€35,000–€45,000"),
        ({"date": "2026-09-30", "phrase": "end of Q3"}, "Sep 30, 2026 (end of Q3)"),
        ({"name": "Maria Lopez", "title": "CFO"}, "Maria Lopez, CFO"),
        ({"name": None, "title": "board"}, "board"),
        (["Gong", "Clari"], "Gong and Clari"),
        (None, "—"),
    ],
)
def test_values_are_shown_for_people(value, shown):
    assert value_display(value) == shown


def test_the_edit_form_starts_from_plain_amounts_not_floats():
    assert initial_for("money", {"amount": 60000.0, "currency": "USD"}) == {"amount": "60000", "currency": "USD"}
    assert initial_for("money", {"min": 35000.0, "max": 45000.5, "currency": "EUR"}) == {
        "min": "35000",
        "max": "45000.5",
        "currency": "EUR",
    }
    assert initial_for("number", 1e6) == {"number": "1000000"}
    assert [plain_decimal(v) for v in (12.50, 0.1, None, "abc")] == ["12.5", "0.1", "", "abc"]


def test_the_stylesheet_is_served_without_collectstatic_or_debug(client, settings):
    settings.DEBUG = False
    response = client.get("/static/threadline.css")
    assert response.status_code == 200
    assert b".item-layout" in b"".join(response.streaming_content)
