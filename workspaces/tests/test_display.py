"""One formatter per field type, in the reader's locale (Babel's CLDR data)."""

from decimal import Decimal

import pytest

from workspaces import display

NBSP, NNBSP = "\u00a0", "\u202f"


@pytest.mark.parametrize(
    ("value", "locale", "shown"),
    [
        ({"amount": 60000.0, "currency": "USD"}, "en_US", "$60,000"),
        ({"amount": 60000.0, "currency": "USD"}, "de_DE", f"60.000{NBSP}$"),
        ({"amount": 60000.5, "currency": "USD"}, "de_DE", f"60.000,50{NBSP}$"),
        ({"amount": 60000.0, "currency": "EUR"}, "fr_FR", f"60{NNBSP}000{NBSP}€"),
        ({"amount": 1234567.0, "currency": "INR"}, "en_IN", "₹12,34,567"),
        ({"amount": 12.5, "currency": "CAD"}, "en_US", "CA$12.50"),
        ({"amount": "45,000", "currency": "usd"}, "en_US", "$45,000"),
        ({"min": 35000, "max": 45000, "currency": "EUR"}, "en_US", "€35,000–€45,000"),
        ({"min": 35000, "max": 45000, "currency": "EUR"}, "de_DE", f"35.000{NBSP}€–45.000{NBSP}€"),
        ({"min": 35000, "currency": "USD"}, "en_US", "from $35,000"),
        ({"max": 35000, "currency": "USD"}, "en_US", "up to $35,000"),
        ({"amount": 60000}, "en_US", "60,000"),  # no currency: the figure alone, never a guess
        ({"amount": 60000}, "de_DE", "60.000"),
        ({"currency": "USD"}, "en_US", "—"),
        ({"amount": 5, "currency": "XYZ"}, "en_US", "5 XYZ"),  # not a currency Babel knows: the code after
        ({"amount": "nan", "currency": "USD"}, "en_US", "—"),  # not a number: not shown as one
    ],
)
def test_money(value, locale, shown):
    assert display.money(value, locale=locale) == shown


@pytest.mark.parametrize(
    ("value", "locale", "shown"),
    [
        ({"date": "2026-09-30", "phrase": "end of Q3"}, "en_US", "Sep 30, 2026 (end of Q3)"),
        ({"date": "2026-09-30", "phrase": "end of Q3"}, "de_DE", "30.09.2026 (end of Q3)"),
        ({"date": "2026-09-30", "phrase": "set by a reviewer"}, "en_US", "Sep 30, 2026"),
        ("2026-09-30", "fr_FR", "30 sept. 2026"),
        ({"date": None, "phrase": "next quarter"}, "en_US", "next quarter"),
        ({"date": "soon"}, "en_US", "soon"),
        (None, "en_US", "—"),
    ],
)
def test_dates(value, locale, shown):
    assert display.when(value, locale=locale) == shown


@pytest.mark.parametrize(
    ("value", "locale", "shown"),
    [
        (["Gong", "Clari", "Chorus"], "en_US", "Gong, Clari, and Chorus"),
        (["Gong", "Clari"], "de_DE", "Gong und Clari"),
        (["Gong"], "fr_FR", "Gong"),
        ([], "en_US", "—"),
    ],
)
def test_lists(value, locale, shown):
    assert display.items(value, locale=locale) == shown


def test_people_numbers_and_text():
    assert display.person({"name": "Maria Lopez", "title": "CFO"}) == "Maria Lopez, CFO"
    assert display.person({"name": None, "title": "board"}) == "board"
    assert display.person({"name": None, "title": None}) == "—"
    assert display.number(Decimal("1234.50"), locale="en_US") == "1,234.5"
    assert display.number(1234.5, locale="de_DE") == "1.234,5"
    assert display.text("  ") == "—"
    assert display.text(" Acme ") == "Acme"


def test_display_picks_the_formatter_by_type_or_shape():
    assert display.display({"amount": 60000.0, "currency": "USD"}, locale="en_US") == "$60,000"
    assert display.display({"amount": 60000.0, "currency": "USD"}, "money", locale="en_US") == "$60,000"
    assert display.display({"name": "Dana Kim", "title": "VP"}, locale="en_US") == "Dana Kim, VP"
    assert display.display("2026-09-30", "date", locale="en_US") == "Sep 30, 2026"
    assert display.display(["a", "b"], locale="en_US") == "a and b"
    assert display.display(None) == "—"
    # Unknown shapes stay readable JSON, never a Python repr.
    assert display.display({"x": 1}) == '{"x": 1}'


def test_crm_stages_by_label():
    assert display.crm_stage("qualifiedtobuy", crm="hubspot") == "Qualified to buy"
    assert display.crm_stage("closedwon", crm="hubspot") == "Closed won"
    assert display.crm_stage("Negotiation/Review", crm="salesforce") == "Negotiation/Review"
    assert display.crm_stage("123456789", crm="hubspot") == "123456789"  # a custom pipeline's id: as stored
    assert display.crm_stage("", crm="hubspot") == "—"


@pytest.mark.parametrize(
    ("header", "locale"),
    [
        ("de-DE,de;q=0.9,en;q=0.8", "de_DE"),
        ("en;q=0.5, fr-FR;q=0.9", "fr_FR"),
        ("xx-YY, *", "en_US"),
        ("", "en_US"),
        (None, "en_US"),
        ("fr", "fr"),
        ("xx," * 5000 + "de", "en_US"),  # only the first few languages are read
    ],
)
def test_the_readers_locale_is_negotiated_from_accept_language(header, locale):
    assert display.locale_negotiate(header) == locale


def test_the_context_locale_is_used_when_none_is_given():
    with display.reader_locale_set("de_DE"):
        assert display.money({"amount": 60000, "currency": "USD"}) == f"60.000{NBSP}$"
    assert display.money({"amount": 60000, "currency": "USD"}) == "$60,000"


def test_crm_payloads_are_fields_not_python_dicts():
    with display.reader_locale_set("en_US"):
        rows = display.payload_fields(
            {"deal_id": "9", "properties": {"amount": "60000.00", "close_date": "2026-09-30"}, "body": "a\nb"}
        )
    assert rows == [("deal_id", "9"), ("amount", "60,000"), ("close_date", "Sep 30, 2026"), ("body", "a\nb")]
