from html import escape

from django import template
from django.utils.safestring import mark_safe

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


_ROW = (
    '    <tr data-href="{url}" data-item="{pk}" class="status-{status}{skipped_class}">\n'
    "      {select}"
    '<td><span class="tag reason-{reason}">{reason_label}</span>{skipped_tag}</td>\n'
    "      <td>{field}</td>\n"
    '      <td class="value">{value_cell}</td>\n'
    "      <td>{confidence}</td>\n"
    "      <td>{thread}</td>\n"
    "      <td>{assignee}</td>\n"
    '      <td title="{created_iso}">{age}</td>\n'
    "    </tr>\n"
)
_SELECT = (
    '<td class="select"><input type="checkbox" name="item" value="{pk}:{version}" form="bulk-form"'
    ' aria-label="Select item {pk}"{disabled}></td>'
)
_SKIPPED_TAG = ' <span class="tag skipped" title="You skipped this item: it comes after the others">skipped</span>'


@register.simple_tag
def queue_rows(rows: list[dict], can_bulk: bool) -> str:
    """The queue's table rows (review.views._queue_rows), written in one pass: 50 rows through
    the template language cost more than the rest of the page. Every value is escaped (as
    Django's ``escape`` does: ``html.escape``)."""
    out = []
    for row in rows:
        e = {k: escape(v) if isinstance(v, str) else v for k, v in row.items()}
        if row["edited"]:
            value_cell = (
                f'<a href="{e["url"]}" class="decided">{e["value"]}</a> <span class="tag edited">edited</span>'
                f' <del class="was">{e["was"]}</del>'
            )
        else:
            value_cell = f'<a href="{e["url"]}">{e["value"]}</a>'
        disabled = (
            ' disabled title="A deal association is decided on its own page"' if row["reason"] == "association" else ""
        )
        out.append(
            _ROW.format(
                **e,
                skipped_class=" skipped" if row["skipped_me"] else "",
                skipped_tag=_SKIPPED_TAG if row["skipped_me"] else "",
                select=_SELECT.format(pk=e["pk"], version=e["version"], disabled=disabled) if can_bulk else "",
                value_cell=value_cell,
            )
        )
    return mark_safe("".join(out))  # noqa: S308 - built from escaped values above
