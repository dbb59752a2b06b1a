from django import template

from workspaces import display

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


@register.filter
def value_display(value, field_type: str = "") -> str:
    """A field value for people, in the reader's locale: one formatter per field type
    (``workspaces.display``), shared with every other page, the admin and the CRM diff."""
    return display.display(value, field_type or None)


@register.filter
def field_error(errors, key: str) -> str:
    """The edit form's error for one of its fields ("" for one about the whole value)."""
    return (errors or {}).get(key, "") if isinstance(errors, dict) else ""
