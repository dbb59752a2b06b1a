"""One way to show a value: a formatter per field type, for every page, the admin and the CRM diff.

Money, numbers, dates and lists follow the reader's locale (Babel's CLDR data): the locale is
negotiated from the request's Accept-Language by ``ReaderLocaleMiddleware`` and read here from
a context variable, so a template filter needs no argument; ``en_US`` when nothing matches.
Each function takes the value as stored (``{"amount", "currency"}``, ``{"min", "max",
"currency"}``, ``{"date", "phrase"}``, ``{"name", "title"}``, a list, text) and returns text.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import cache, lru_cache

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime
from babel.lists import format_list
from babel.numbers import format_currency, format_decimal, list_currencies

DEFAULT_LOCALE = "en_US"
MAX_LANGUAGES = 16
EMPTY = "—"
# A reviewer's edit stores this phrase; it says nothing a reader needs.
_SILENT_PHRASES = {"", "set by a reviewer"}

_reader_locale: ContextVar[str] = ContextVar("reader_locale", default=DEFAULT_LOCALE)

# HubSpot's default sales pipeline: its stage ids and the labels HubSpot shows for them
# (HubSpot's "Set up and manage object pipelines" reference), for deals mirrored before the
# sync kept labels, or by a token that may not read pipelines. Another pipeline's stage ids
# are numbers whose label only the portal knows: the sync keeps it on the deal
# (``Deal.stage_label``). Salesforce's StageName is a label already; a CSV's stage is taken as
# a label unless it is one of these ids (an export from HubSpot).
HUBSPOT_DEFAULT_STAGES = {
    "appointmentscheduled": "Appointment scheduled",
    "qualifiedtobuy": "Qualified to buy",
    "presentationscheduled": "Presentation scheduled",
    "decisionmakerboughtin": "Decision maker bought-in",
    "contractsent": "Contract sent",
    "closedwon": "Closed won",
    "closedlost": "Closed lost",
}


# --- the reader's locale ---------------------------------------------------------------------


def locale_negotiate(accept_language: str | None) -> str:
    """The first language of an Accept-Language header that Babel knows, as ``ll_TT``."""
    ranked = []
    # A browser sends a handful; a header of thousands is not worth parsing past the first few.
    for position, part in enumerate((accept_language or "").split(",")[:MAX_LANGUAGES]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and tag != "*" and quality > 0:
            ranked.append((-quality, position, tag))
    for _, _, tag in sorted(ranked):
        try:
            return str(Locale.parse(tag.replace("-", "_")))
        except (ValueError, UnknownLocaleError):
            continue
    return DEFAULT_LOCALE


def reader_locale() -> str:
    return _reader_locale.get()


@contextmanager
def reader_locale_set(locale: str):
    token = _reader_locale.set(locale)
    try:
        yield
    finally:
        _reader_locale.reset(token)


class ReaderLocaleMiddleware:
    """Formats every value of the request in the reader's locale (from Accept-Language)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with reader_locale_set(locale_negotiate(request.headers.get("Accept-Language"))):
            return self.get_response(request)


# --- one function per field type --------------------------------------------------------------


def _decimal(raw) -> Decimal | None:
    if isinstance(raw, bool) or raw in (None, ""):
        return None
    try:
        number = Decimal(str(raw).replace(",", "").strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _amount(number: Decimal, currency: str | None, locale: str) -> str:
    if not currency:
        return format_decimal(number, locale=locale)
    if currency not in _known_currencies():
        # Not an ISO 4217 code Babel knows: the figure, then the code as it was given.
        return f"{format_decimal(number, locale=locale)} {currency}"
    if number == number.to_integral_value():
        # Whole amounts read without cents: the locale's own pattern, less its fraction digits.
        pattern = Locale.parse(locale).currency_formats["standard"].pattern
        pattern = pattern.replace(".00", "")
        return format_currency(number, currency, format=pattern, locale=locale, currency_digits=False)
    return format_currency(number, currency, locale=locale)


@cache
def _known_currencies() -> frozenset[str]:
    return frozenset(list_currencies())


def money(value, *, locale: str | None = None) -> str:
    """``{"amount", "currency"}`` as ``$60,000``; a range ``{"min", "max"}`` as ``$35,000–$45,000``.
    Without a currency the figure is shown alone (never guessed)."""
    locale = locale or reader_locale()
    if not isinstance(value, dict):
        number = _decimal(value)
        return format_decimal(number, locale=locale) if number is not None else text(value)
    currency = (value.get("currency") or "").strip().upper() or None
    amount = _decimal(value.get("amount"))
    if amount is not None:
        return _amount(amount, currency, locale)
    low, high = _decimal(value.get("min")), _decimal(value.get("max"))
    if low is not None and high is not None:
        return f"{_amount(low, currency, locale)}–{_amount(high, currency, locale)}"
    if low is not None or high is not None:
        return ("from " if low is not None else "up to ") + _amount(low if low is not None else high, currency, locale)
    return EMPTY


def number(value, *, locale: str | None = None) -> str:
    """A number with the locale's grouping and decimal sign: ``1,234.5``, ``1.234,5``."""
    parsed = _decimal(value)
    return format_decimal(parsed, locale=locale or reader_locale()) if parsed is not None else text(value)


def _as_date(raw):
    if isinstance(raw, datetime | date):
        return raw
    if isinstance(raw, str):
        try:
            return date.fromisoformat(raw.strip()[:10])
        except ValueError:
            return None
    return None


def when(value, *, locale: str | None = None) -> str:
    """A date (``Sep 30, 2026``), with the phrase it was read from: ``Sep 30, 2026 (end of Q3)``."""
    locale = locale or reader_locale()
    phrase = ""
    raw = value
    if isinstance(value, dict):
        raw, phrase = value.get("date"), (value.get("phrase") or "").strip()
    parsed = _as_date(raw)
    if isinstance(parsed, datetime):
        shown = format_datetime(parsed, "medium", locale=locale)
    elif parsed is not None:
        shown = format_date(parsed, "medium", locale=locale)
    else:
        shown = text(raw) if raw not in (None, "") else ""
    if phrase and phrase not in _SILENT_PHRASES and phrase != shown:
        return f"{shown} ({phrase})" if shown else phrase
    return shown or EMPTY


def person(value, **_) -> str:
    """``{"name", "title"}`` as ``Maria Lopez, CFO``; a bare name as it is."""
    if isinstance(value, dict):
        parts = [str(value.get(k)).strip() for k in ("name", "title") if value.get(k)]
        return ", ".join(p for p in parts if p) or EMPTY
    return text(value)


def items(value, *, locale: str | None = None) -> str:
    """A list the locale's way: ``Gong, Clari, and Chorus``."""
    if not isinstance(value, list | tuple):
        return text(value)
    shown = [display(v, locale=locale) for v in value if v not in (None, "")]
    return format_list(shown, locale=locale or reader_locale()) if shown else EMPTY


def text(value, **_) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        return EMPTY
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value).strip()


def crm_stage(stage: str | None, *, crm: str = "hubspot", label: str = "") -> str:
    """A CRM deal stage by its label (HubSpot's ids of the default pipeline are translated)."""
    if label:
        return label
    if not stage:
        return EMPTY
    if crm in ("hubspot", "csv"):
        return HUBSPOT_DEFAULT_STAGES.get(stage.strip().lower(), stage)
    return stage


FORMATTERS = {
    "money": money,
    "number": number,
    "date": when,
    "person": person,
    "list": items,
    "text": text,
    "enum": text,
    "email": text,
    "phone": text,
}


def _type_of(value) -> str:
    if isinstance(value, dict):
        if {"amount", "min", "max"} & value.keys():
            return "money"
        if "date" in value:
            return "date"
        if {"name", "title"} & value.keys():
            return "person"
        return "text"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, Decimal | int | float) and not isinstance(value, bool):
        return "number"
    if isinstance(value, datetime | date):
        return "date"
    return "text"


def display(value, field_type: str | None = None, *, locale: str | None = None) -> str:
    """A stored value for people, by its field type (or, without one, by its shape).

    A JSON value's text is worked out once per process for each (value, type, locale): Babel
    takes about half a millisecond for an amount, and a queue page shows fifty."""
    locale = locale or reader_locale()
    try:
        key = json.dumps(value, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError):  # not JSON (a Decimal, a date): formatted each time
        return _display(value, field_type, locale)
    return _display_json(key, field_type, locale)


@lru_cache(maxsize=8192)
def _display_json(key: str, field_type: str | None, locale: str) -> str:
    return _display(json.loads(key), field_type, locale)


def _display(value, field_type: str | None, locale: str) -> str:
    formatter = FORMATTERS.get(field_type or "") or FORMATTERS[_type_of(value)]
    return formatter(value, locale=locale)


def payload_fields(payload) -> list[tuple[str, str]]:
    """A CRM write's payload as (field, text) rows, nested ``properties`` flattened in order;
    multi-line text keeps its lines (the page shows them with ``white-space: pre-line``)."""
    if not isinstance(payload, dict):
        return [("", text(payload))]
    rows = []
    for key, raw in payload.items():
        if key == "properties" and isinstance(raw, dict):
            rows.extend((name, payload_value(name, v)) for name, v in raw.items())
        else:
            rows.append((key, payload_value(key, raw)))
    return rows


def payload_value(key: str, raw) -> str:
    if key == "amount":
        return number(raw)
    if key in ("close_date",):
        return when(raw)
    if isinstance(raw, dict | list):
        return json.dumps(raw, ensure_ascii=False, indent=2, sort_keys=True)
    return text(raw)
