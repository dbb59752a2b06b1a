from django import template

register = template.Library()


@register.filter
def undo_target(extra_tags: str) -> int | None:
    """The review item a flash message offers to undo ("undo:<pk>" in its tags)."""
    for tag in (extra_tags or "").split():
        if tag.startswith("undo:") and tag[5:].isdigit():
            return int(tag[5:])
    return None


@register.filter
def undo_batch_target(extra_tags: str) -> str:
    """The bulk batch a flash message offers to undo ("undo-batch:<hex id>" in its tags)."""
    for tag in (extra_tags or "").split():
        if tag.startswith("undo-batch:") and tag[11:].isalnum():
            return tag[11:]
    return ""


@register.filter
def duration_short(delta) -> str:
    """A timedelta as the largest sensible unit: 3d 4h, 5h 12m, 7m."""
    seconds = int(delta.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m"


_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£"}


def _money(amount: float, currency: str) -> str:
    symbol = _SYMBOLS.get(currency)
    figure = f"{amount:,.0f}" if float(amount).is_integer() else f"{amount:,.2f}"
    return f"{symbol}{figure}" if symbol else f"{currency} {figure}"


@register.filter
def value_display(value) -> str:
    """A field value for people: money with its currency, a date with its phrase, a person."""
    if isinstance(value, dict):
        if "amount" in value:
            return _money(value["amount"], value.get("currency", "USD"))
        if "min" in value and "max" in value:
            currency = value.get("currency", "USD")
            return f"{_money(value['min'], currency)} – {_money(value['max'], currency)}"
        if "date" in value:
            phrase = value.get("phrase")
            return f"{value['date']} ({phrase})" if phrase and phrase != "set by a reviewer" else str(value["date"])
        if "name" in value or "title" in value:
            return ", ".join(str(v) for v in (value.get("name"), value.get("title")) if v) or "—"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return "—" if value in (None, "") else str(value)


@register.filter
def field_error(errors, key: str) -> str:
    """The edit form's error for one of its fields ("" for one about the whole value)."""
    return (errors or {}).get(key, "") if isinstance(errors, dict) else ""
