import pytest

from review.templatetags.review_tags import value_display


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ({"amount": 40000.0, "currency": "USD"}, "$40,000"),
        ({"amount": 12.5, "currency": "CAD"}, "CAD 12.50"),
        ({"min": 35000, "max": 45000, "currency": "EUR"}, "€35,000 – €45,000"),
        ({"date": "2026-09-30", "phrase": "end of Q3"}, "2026-09-30 (end of Q3)"),
        ({"name": "Maria Lopez", "title": "CFO"}, "Maria Lopez, CFO"),
        ({"name": None, "title": "board"}, "board"),
        (["Gong", "Clari"], "Gong, Clari"),
        (None, "—"),
    ],
)
def test_values_are_shown_for_people(value, shown):
    assert value_display(value) == shown


def test_the_stylesheet_is_served_without_collectstatic_or_debug(client, settings):
    settings.DEBUG = False
    response = client.get("/static/threadline.css")
    assert response.status_code == 200
    assert b".item-layout" in b"".join(response.streaming_content)
