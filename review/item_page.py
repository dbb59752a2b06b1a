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
from django.urls import reverse
from django.utils.dates import MONTHS_3
from django.utils.safestring import SafeString, mark_safe
from django.utils.timezone import template_localtime


def local_date(value, format_string: str) -> str:
    """As ``{{ value|date:format_string }}``: in the current time zone, "" for no date. The
    page's three formats are written directly (the filter costs about 0.1 ms a date)."""
    if value is None:
        return ""
    local = template_localtime(value)
    if format_string == "c":
        return local.isoformat()  # as DateFormat.c
    if format_string in _FORMATS:
        month = MONTHS_3[local.month].title()  # as DateFormat.M, in the active language
        return _FORMATS[format_string].format(month=month, d=local)
    return date_filter(local, format_string)


# As DateFormat writes M (month, 3 letters), j (day), Y (year, 4 digits), H and i (00-23, 00-59).
_FORMATS = {
    "M j, Y H:i": "{month} {d.day}, {d.year:04d} {d.hour:02d}:{d.minute:02d}",
    "M j H:i": "{month} {d.day} {d.hour:02d}:{d.minute:02d}",
}


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


def messages_html(entries: list[dict], *, workspace_slug: str) -> SafeString:
    """The thread's messages (``selectors.item_messages`` entries), one ``<article>`` each."""
    if not entries:
        return mark_safe('<p class="empty">This item has no thread.</p>')
    out = []
    for entry in entries:
        m = entry["message"]
        folder = f'<span class="folder" title="Mail folder">{escape(m.folder)}</span>' if m.folder else ""
        out.append(
            f'<article class="message{" has-evidence" if entry["has_evidence"] else ""}" id="message-{m.pk}">\n'
            f"    <header><strong>{escape(m.from_name or m.from_email)}</strong>\n"
            f'      <span class="addr">&lt;{escape(m.from_email)}&gt;</span>\n'
            f'      <time datetime="{escape(local_date(m.sent_at, "c"))}">'
            f"{escape(local_date(m.sent_at, 'M j, Y H:i'))}</time>\n"
            f"      {folder}</header>\n"
        )
        if m.parse_status != "parsed":
            raw = reverse("threads:message-raw", kwargs={"workspace_slug": workspace_slug, "message_id": m.pk})
            out.append(
                f'    <p class="warning parse-status"><strong>{escape(str(m.get_parse_status_display()))}</strong>'
                + (": stored, not parsed yet" if m.parse_status == "received" else "")
                + (f": <code>{escape(m.parse_error)}</code>" if m.parse_error else "")
                + f'\n      · <a href="{escape(raw)}" download>raw message (.eml)</a></p>\n'
            )
        else:
            out.append(f'    <pre class="body">{body_html(entry["segments"])}</pre>\n')
            if entry["cut"]:
                whole = reverse("threads:message-text", kwargs={"workspace_slug": workspace_slug, "message_id": m.pk})
                around = ", and the text around each piece of evidence" if entry["has_evidence"] else ""
                out.append(
                    f'    <p class="cut-note">Long message: showing the first {escape(str(intcomma(entry["limit"])))}'
                    f" of {escape(str(intcomma(entry['length'])))} characters{around}."
                    f' <a href="{escape(whole)}?part=reply">The whole text</a></p>\n'
                )
        out.append("  </article>\n  ")
    return mark_safe("".join(out))  # noqa: S308 - built from escaped values above


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
