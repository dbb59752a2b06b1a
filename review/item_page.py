"""The review item page's repeated parts written as HTML in one pass (review.views.item).

The template language resolves every lookup and filter slowly, and these parts repeat per
message, per piece of evidence, per history row and per form: their text is worked out here,
once, as the queue rows are (review/templatetags/review_tags.py). Every value is escaped as
Django's ``escape`` does (``html.escape``); dates go through the ``date`` filter, in the
reader's time zone, and numbers through ``intcomma``, as the template showed them.
"""

from __future__ import annotations

from html import escape

from django.contrib.humanize.templatetags.humanize import intcomma
from django.template.defaultfilters import date as date_filter
from django.utils.safestring import SafeString, mark_safe
from django.utils.timezone import template_localtime


def local_date(value, format_string: str) -> str:
    """As ``{{ value|date:format_string }}``: in the current time zone, "" for no date."""
    return date_filter(template_localtime(value), format_string)


def body_html(segments) -> SafeString:
    """A message's reply as the ``<pre>`` shows it: evidence in ``<mark>``, a gap as a note."""
    out = []
    for seg in segments:
        if seg.highlight:
            out.append(f'<mark class="evidence">{escape(seg.text)}</mark>')
        elif seg.gap:
            out.append(f'\n<span class="gap">… {escape(str(intcomma(seg.gap)))} characters skipped …</span>\n')
        else:
            out.append(escape(seg.text))
    return mark_safe("".join(out))  # noqa: S308 - built from escaped values above


def message_entries(entries: list[dict]) -> list[dict]:
    """``selectors.item_messages`` entries with the text each one shows worked out."""
    for entry in entries:
        message = entry["message"]
        entry["body_html"] = body_html(entry["segments"]) if message.parse_status == "parsed" else ""
        entry["sent_iso"] = local_date(message.sent_at, "c")
        entry["sent_display"] = local_date(message.sent_at, "M j, Y H:i")
    return entries


def history_html(events) -> SafeString:
    """The item's history list (``selectors.item_history``), oldest first."""
    if not events:
        return mark_safe("<li>No decisions yet.</li>")
    rows = []
    for event in events:
        by = f" by {escape(event.actor_name)}" if event.actor_name is not None else ""
        rows.append(
            f"<li><time>{escape(local_date(event.created_at, 'M j H:i'))}</time> {escape(event.type)}{by}</li>\n    "
        )
    return mark_safe("".join(rows))  # noqa: S308 - built from escaped values above


def hidden_inputs(filters) -> SafeString:
    """The queue's non-default filters as hidden inputs, carried through a form's POST."""
    return mark_safe(  # noqa: S308 - built from escaped values
        "".join(
            f'<input type="hidden" name="{escape(str(k))}" value="{escape(str(v))}">' for k, v in filters.hidden_fields
        )
    )
