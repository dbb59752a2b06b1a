"""Edit-then-approve: an input that fits the field's type, and its validation."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError

CURRENCIES = ("USD", "EUR", "GBP", "CAD", "AUD", "CHF", "NOK", "SEK", "JPY", "INR")


def value_from_post(field_type: str, data) -> object:
    """The corrected value from the edit form's fields, or ValidationError naming the problem,
    keyed by the form field it is about (``exc.message_dict``), so the page shows it there."""
    if field_type == "money":
        return _money(data)
    if field_type == "date":
        raw = (data.get("date") or "").strip()
        try:
            return {"date": date.fromisoformat(raw).isoformat(), "phrase": "set by a reviewer"}
        except ValueError as exc:
            raise ValidationError({"date": f"{raw or 'an empty date'} is not a date (use YYYY-MM-DD)"}) from exc
    if field_type == "person":
        name, title = (data.get("name") or "").strip(), (data.get("title") or "").strip()
        if not (name or title):
            raise ValidationError({"name": "give a name, a title, or both"})
        return {"name": name or None, "title": title or None}
    if field_type == "list":
        items = [part.strip() for part in (data.get("items") or "").split(",") if part.strip()]
        if not items:
            raise ValidationError({"items": "give at least one name, separated by commas"})
        return items
    if field_type == "number":
        try:
            return float(Decimal((data.get("number") or "").strip()))
        except InvalidOperation as exc:
            raise ValidationError({"number": "not a number"}) from exc
    text = (data.get("text") or "").strip()
    if not text:
        raise ValidationError({"text": "the value cannot be empty"})
    return text


def _money(data) -> dict:
    currency = (data.get("currency") or "USD").upper()
    if currency not in CURRENCIES:
        raise ValidationError({"currency": f"unknown currency {currency}"})
    amounts = {}
    for key in ("amount", "min", "max"):
        raw = (data.get(key) or "").replace(",", "").strip()
        if not raw:
            continue
        try:
            amounts[key] = float(Decimal(raw))
        except InvalidOperation as exc:
            raise ValidationError({key: f"{key}: {raw!r} is not an amount"}) from exc
        if amounts[key] <= 0:
            raise ValidationError({key: f"{key} must be more than zero"})
    if "amount" in amounts:
        return {"amount": amounts["amount"], "currency": currency}
    if "min" in amounts and "max" in amounts:
        if amounts["min"] > amounts["max"]:
            raise ValidationError({"min": "the minimum is above the maximum"})
        return {"min": amounts["min"], "max": amounts["max"], "currency": currency}
    raise ValidationError({"amount": "give an amount, or a minimum and a maximum"})


def initial_for(field_type: str, value) -> dict:
    """The edit form's starting fields for a proposed value."""
    if field_type == "money" and isinstance(value, dict):
        initial = {k: plain_decimal(value.get(k)) for k in ("amount", "min", "max") if value.get(k) is not None}
        return {**initial, **({"currency": value["currency"]} if value.get("currency") else {})}
    if field_type == "date" and isinstance(value, dict):
        return {"date": value.get("date", "")}
    if field_type == "person" and isinstance(value, dict):
        return {"name": value.get("name") or "", "title": value.get("title") or ""}
    if field_type == "list" and isinstance(value, list):
        return {"items": ", ".join(map(str, value))}
    if field_type == "number":
        return {"number": plain_decimal(value)}
    return {"text": value if isinstance(value, str) else ""}


def plain_decimal(value) -> str:
    """A stored number as a person types it, without float noise: 60000.0 → "60000",
    12.5 → "12.5", 1e6 → "1000000". Not grouped: the form reads it back as it is."""
    if value is None or isinstance(value, bool):
        return ""
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    if not number.is_finite():
        return str(value)
    if number == number.to_integral_value():
        return str(number.quantize(Decimal(1)))
    return format(number.normalize(), "f")
