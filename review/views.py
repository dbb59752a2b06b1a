"""The review console: the queue, an item in context, decisions, undo, associations, dashboard.

Every view needs a membership of the workspace in the URL (the middleware resolves it and
sets the row-level-security context); viewers read, reviewers and admins decide.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from datetime import timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.timesince import timesince
from django.views.decorators.http import require_POST

from review import handlers, item_page, selectors, services
from review.forms import CURRENCIES, initial_for, value_from_post
from review.models import ReviewItem
from workspaces import display
from workspaces.decorators import member_required
from workspaces.selectors import policy_for


def _queue_url(request, filters: selectors.QueueFilters, after: str = "", *, base: str = "") -> str:
    query = "&".join(part for part in (filters.querystring(), urlencode({"after": after}) if after else "") if part)
    base = base or reverse("review:queue", kwargs={"workspace_slug": request.workspace.slug})
    return base + (f"?{query}" if query else "")


def _item_url(request, pk: int, filters: selectors.QueueFilters) -> str:
    query = filters.querystring()
    url = reverse("review:item", kwargs={"workspace_slug": request.workspace.slug, "pk": pk})
    return url + (f"?{query}" if query else "")


@member_required()
def queue(request):
    filters = selectors.QueueFilters.from_query(request.GET)
    items, next_cursor = selectors.queue_items(filters=filters, user=request.user, cursor=request.GET.get("after"))
    counts = selectors.queue_counts_by_reason()
    base = reverse("review:queue", kwargs={"workspace_slug": request.workspace.slug})  # once, not per link
    fields = handlers.field_keys(policy_for(workspace_id=request.workspace.pk))
    return render(
        request,
        "review/queue.html",
        {
            "nav": "queue",
            "rows": _queue_rows(request, items, filters),
            "filters": filters,
            "reason_counts": [
                (key, label, counts[key], _queue_url(request, replace(filters, reason=key), base=base))
                for key, label in ReviewItem.Reason.choices
            ],
            "count_cap": selectors.COUNT_CAP,
            "reasons": ReviewItem.Reason.choices,
            "statuses": [*ReviewItem.Status.choices, ("edited", "Edited"), ("skipped", "Skipped (open)")],
            "can_bulk": request.membership.can_decide and filters.status in ("open", "skipped"),
            "next_url": _queue_url(request, filters, after=next_cursor, base=base) if next_cursor else "",
            "after": request.GET.get("after", ""),
            "first_page_url": _queue_url(request, filters, base=base) if request.GET.get("after") else "",
            "fields": fields,
            # The filter form is cached per what it shows ({% cache %}): these and the filters.
            "fields_key": "\x1f".join(fields),
            "language": translation.get_language(),
        },
    )


REASON_LABELS = dict(ReviewItem.Reason.choices)


def _queue_rows(request, items: list[selectors.QueueRow], filters: selectors.QueueFilters) -> list[dict]:
    # One reverse() and one query string for the page, not one per row.
    prefix = reverse("review:item", kwargs={"workspace_slug": request.workspace.slug, "pk": 0}).removesuffix("0/")
    query = filters.querystring()
    now = timezone.now()
    return [_queue_row(i, f"{prefix}{i.pk}/" + (f"?{query}" if query else ""), now) for i in items]


def _queue_row(item: selectors.QueueRow, url: str, now) -> dict:
    """One queue row as the template shows it: its text worked out here, once, since the
    template language resolves every lookup and filter slowly (50 rows a page). Numbers go
    as text: the template would localize each one."""
    payload = item.payload_json
    decided = item.decided or {}
    proposed = payload.get("proposed_value")
    confidence = payload.get("confidence")
    return {
        "pk": str(item.pk),
        "url": url,
        "version": str(item.version),
        "status": item.status,
        "reason": item.reason,
        "reason_label": REASON_LABELS.get(item.reason, item.reason),
        "skipped_me": bool(item.skipped_me),
        "field": payload.get("field") or "—",
        "edited": bool(decided.get("edited")),
        "value": _truncate(display.display(decided["value"]), 60)
        if decided.get("edited")
        else (_truncate(display.display(proposed), 60) if proposed is not None else item.get_reason_display()),
        "was": _truncate(display.display(decided.get("proposed")), 40) if decided.get("edited") else "",
        "confidence": _two_places(confidence),
        "thread": _truncate(item.thread_subject or "—", 50) if item.thread_id else "—",
        "assignee": item.assignee_username or "",
        "created_iso": timezone.localtime(item.created_at).isoformat(),
        "age": _age(item.created_at, now),
    }


def _age(created_at, now) -> str:
    """``timesince`` (the queue's Age column). Under four weeks it depends only on the whole
    minutes between the two (no calendar), so each figure is worked out once per process."""
    minutes = int((now - created_at).total_seconds() // 60)
    if 0 <= minutes < 28 * 24 * 60:
        return _age_of_minutes(minutes, translation.get_language())
    return timesince(created_at, now)


@functools.lru_cache(maxsize=4096)
def _age_of_minutes(minutes: int, language: str | None) -> str:
    now = timezone.now()
    return timesince(now - timedelta(minutes=minutes), now)


def _truncate(text: str, length: int) -> str:
    """As ``truncatechars``: at most ``length`` characters, the last an ellipsis when cut."""
    return text if len(text) <= length else text[: length - 1] + "…"


def _two_places(number) -> str:
    """As ``floatformat:2`` shows a confidence: "0.62"; "—" when there is none."""
    if number is None:
        return "—"
    try:
        return f"{float(number):.2f}"
    except (TypeError, ValueError):
        return ""


EDIT_SESSION_KEY = "review_edit_refused"


@member_required()
def item(request, pk):
    review_item = selectors.item_for_page(pk=pk)
    if review_item is None:
        raise Http404("No review item matches the given query.")
    filters = selectors.QueueFilters.from_query(request.GET)
    policy = policy_for(workspace_id=request.workspace.pk)
    held_by_other = False
    if review_item.status == ReviewItem.Status.OPEN and request.membership.can_decide:
        held_by_other = not services.review_item_claim(item=review_item, user=request.user, fresh=True, policy=policy)
    prev_id, next_id = selectors.queue_neighbours(item=review_item, filters=filters, user=request.user)
    field_type = _field_type(review_item, policy)
    proposed = review_item.payload_json.get("proposed_value")
    # An edit refused on the POST before (Post/Redirect/Get): what was typed and why it was refused.
    refused = request.session.pop(EDIT_SESSION_KEY, None)
    if refused and refused.get("item") != review_item.pk:
        refused = None
    edit_errors = (refused or {}).get("errors") or {}
    # One reverse() for the page's links to items, not one per link (reverse() is slow).
    prefix = reverse("review:item", kwargs={"workspace_slug": request.workspace.slug, "pk": 0}).removesuffix("0/")
    query = filters.querystring()
    context = {
        "item": review_item,
        "filters": filters,
        "querystring": query,
        "hidden_inputs": item_page.hidden_inputs(filters),
        "messages_html": item_page.messages_html(
            selectors.item_messages(item=review_item), workspace_slug=request.workspace.slug
        ),
        "history_html": item_page.history_html(selectors.item_history(item=review_item)),
        "prev_url": f"{prefix}{prev_id}/" + (f"?{query}" if query else "") if prev_id else "",
        "next_url": f"{prefix}{next_id}/" + (f"?{query}" if query else "") if next_id else "",
        "queue_url": _queue_url(request, filters),
        "decide_url": f"{prefix}{review_item.pk}/decide/",  # review/urls.py: items/<pk>/decide/
        "held_by_other": held_by_other,
        "can_decide": request.membership.can_decide and not held_by_other,
        "field_type": field_type,
        # Every field the form can show, so a missing one renders empty (strict template variables).
        "edit_initial": {
            **dict.fromkeys(EDIT_FIELDS, ""),
            **((refused or {}).get("values") or initial_for(field_type, proposed)),
        },
        "edit_error": "; ".join(edit_errors.values()),
        "edit_errors": edit_errors,
        "decided": selectors.with_decided_values([review_item])[0].decided,
        "currencies": CURRENCIES,
        "confidence_pct": round(float(review_item.payload_json.get("confidence") or 0) * 100),
        "undo_window": policy["undo_window_seconds"],
        "can_undo": _can_undo(review_item, request, policy),
        "undo_note": _undo_note(review_item, request, policy),
        "candidates": _candidates(review_item),
    }
    return render(request, "review/item.html", context)


def _can_undo(review_item: ReviewItem, request, policy: dict) -> bool:
    from datetime import timedelta

    from django.utils import timezone

    if review_item.status == ReviewItem.Status.OPEN or not review_item.resolved_at or not request.membership.can_decide:
        return False
    window = policy["undo_window_seconds"]
    return timezone.now() - review_item.resolved_at <= timedelta(seconds=window)


def _undo_note(review_item: ReviewItem, request, policy: dict) -> str:
    """Why u does nothing on a decided item's page, for the reviewer who presses it."""
    if review_item.status == ReviewItem.Status.OPEN or _can_undo(review_item, request, policy):
        return ""
    if not request.membership.can_decide:
        return "viewers cannot undo decisions."
    if not review_item.payload_json.get("last_decision") or not review_item.resolved_at:
        return "this item was closed without a decision to undo."
    return f"the undo window ({policy['undo_window_seconds']} s) has passed."


def _candidates(review_item: ReviewItem) -> list[dict]:
    """The association's candidate deals as its payload describes them, best first."""
    if review_item.reason != ReviewItem.Reason.ASSOCIATION:
        return []
    chosen = ((review_item.payload_json.get("last_decision") or {}).get("changes") or {}).get("deal_id")
    rows = []
    for entry in sorted(review_item.payload_json.get("candidates", []), key=lambda c: -float(c.get("score", 0))):
        signals = sorted((entry.get("signals") or {}).items(), key=lambda kv: -float(kv[1]))
        deal = {"pk": entry.get("deal_id"), "title": entry.get("title", ""), "stage": entry.get("stage", "")}
        rows.append({"deal": deal, "score": entry.get("score", 0), "signals": signals, "chosen": chosen == deal["pk"]})
    return rows


EDIT_FIELDS = ("amount", "min", "max", "currency", "date", "name", "title", "items", "number", "text")


@require_POST
@member_required(decide=True)
def decide(request, pk):
    action = request.POST.get("action", "")
    filters = selectors.QueueFilters.from_query(request.POST)
    review_item = get_object_or_404(ReviewItem.objects.select_related("field_value"), pk=pk)
    try:
        version = int(request.POST.get("version", "-1"))
    except ValueError:
        version = -1
    try:
        if action == "skip":
            next_url = _next_after(request, review_item, filters)  # from where it stood before the skip
            services.review_item_skip(item=review_item, user=request.user)
            messages.info(
                request, "Skipped: the item is free for another reviewer and comes after the others in your queue."
            )
            return redirect(next_url)
        elif action == "assign":
            services.review_item_assign(item=review_item, user=request.user)
            messages.success(request, "Assigned to you.")
            return redirect(_item_url(request, pk, filters))
        elif action in ("approve", "reject"):
            services.review_item_resolve(item_id=pk, reviewer=request.user, decision=action, version=version)
        elif action == "edit":
            value = value_from_post(
                _field_type(review_item, policy_for(workspace_id=request.workspace.pk)), request.POST
            )
            services.review_item_resolve(
                item_id=pk, reviewer=request.user, decision="edit", version=version, value=value
            )
        else:
            messages.error(request, f"Unknown action {action!r}.")
            return redirect(_item_url(request, pk, filters))
    except ValidationError as exc:
        # Back to the item (a reload does not post again), with what was typed and the error by its field.
        errors = {k: "; ".join(v) for k, v in exc.message_dict.items()} if hasattr(exc, "error_dict") else {}
        request.session[EDIT_SESSION_KEY] = {
            "item": pk,
            "errors": errors or {"": "; ".join(exc.messages)},
            "values": {k: request.POST[k] for k in EDIT_FIELDS if k in request.POST},
        }
        return redirect(_item_url(request, pk, filters) + "#edit-form")
    except (services.ReviewConflict, services.ReviewInvalid) as exc:
        messages.error(request, str(exc))
        return redirect(_item_url(request, pk, filters))
    messages.success(request, _done_message(action), extra_tags=f"undo:{pk}")
    return redirect(_next_after(request, review_item, filters))


@require_POST
@member_required(decide=True)
def bulk(request):
    """Approve or reject the rows selected in the queue (``item`` = "<id>:<version>"), one undo for all."""
    filters = selectors.QueueFilters.from_query(request.POST)
    back = _queue_url(request, filters, after=request.POST.get("after", ""))
    selected = []
    for raw in request.POST.getlist("item"):
        pk, _, version = raw.partition(":")
        if pk.isdigit() and version.isdigit():
            selected.append((int(pk), int(version)))
    try:
        result = services.review_items_resolve_bulk(
            items=selected, reviewer=request.user, decision=request.POST.get("action", "")
        )
    except services.ReviewInvalid as exc:
        messages.error(request, f"{exc}.")
        return redirect(back)
    done = {"approve": "Approved", "reject": "Rejected"}[request.POST["action"]]
    if result["decided"]:
        messages.success(
            request,
            f"{done} {len(result['decided'])} item{pluralize(len(result['decided']))}. Press u to undo them all.",
            extra_tags=f"undo-batch:{result['batch']}",
        )
    for item_id, why in result["refused"]:
        messages.error(request, f"Item {item_id} was not decided: {why}")
    return redirect(back)


@require_POST
@member_required(decide=True)
def undo_batch(request, batch):
    filters = selectors.QueueFilters.from_query(request.POST)
    try:
        ids = services.review_batch_undo(batch=batch, user=request.user)
        messages.success(request, f"Undone: {len(ids)} item{pluralize(len(ids))} open again.")
    except services.ReviewInvalid as exc:
        messages.error(request, f"{str(exc)[:1].upper()}{str(exc)[1:]}.")
    return redirect(_queue_url(request, filters, after=request.POST.get("after", "")))


def _done_message(action: str) -> str:
    return {"approve": "Approved.", "reject": "Rejected.", "edit": "Edited and approved."}[action] + " Press u to undo."


def _field_type(review_item: ReviewItem, policy: dict) -> str:
    """The value type an edit asks for, as the owner of the item's subject says."""
    handler = handlers.handler_for(review_item.reason)
    return handler.field_type(item=review_item, policy=policy) if handler.field_type else "text"


def _next_after(request, review_item: ReviewItem, filters: selectors.QueueFilters) -> str:
    _, next_id = selectors.queue_neighbours(item=review_item, filters=filters, user=request.user)
    return _item_url(request, next_id, filters) if next_id else _queue_url(request, filters)


@require_POST
@member_required(decide=True)
def undo(request, pk):
    filters = selectors.QueueFilters.from_query(request.POST)
    try:
        services.review_item_undo(item_id=pk, user=request.user)
        messages.success(request, "Undone: the item is open again.")
    except services.ReviewInvalid as exc:
        messages.error(request, str(exc))
    return redirect(_item_url(request, pk, filters))


@require_POST
@member_required(decide=True)
def associate(request, pk):
    filters = selectors.QueueFilters.from_query(request.POST)
    choice = request.POST.get("choice", "")
    deal_id = request.POST.get("deal_id")
    try:
        version = int(request.POST.get("version", "-1"))
        services.association_resolve(
            item_id=pk,
            reviewer=request.user,
            version=version,
            choice=choice,
            deal_id=int(deal_id) if choice == "deal" and deal_id else None,
        )
    except ValueError:
        messages.error(request, "Choose one of the candidate deals, none, or a new deal.")
        return redirect(_item_url(request, pk, filters))
    except (services.ReviewConflict, services.ReviewInvalid) as exc:
        messages.error(request, str(exc))
        return redirect(_item_url(request, pk, filters))
    messages.success(request, "Association saved. Press u to undo.", extra_tags=f"undo:{pk}")
    review_item = ReviewItem.objects.get(pk=pk)
    return redirect(_next_after(request, review_item, filters))


@member_required()
def dashboard(request):
    snapshot = services.dashboard_snapshot_for_view(workspace_id=request.workspace.pk)
    figures = selectors.dashboard_figures(counts=snapshot.figures_json, as_of=snapshot.computed_at)
    biggest = max(figures["open_by_reason"].values(), default=0) or 1
    row = 24  # SVG user units per bar
    bars = [
        {
            "reason": label,
            "key": key,
            "count": figures["open_by_reason"][key],
            "y": i * row,
            "width": round(280 * figures["open_by_reason"][key] / biggest),
        }
        for i, (key, label) in enumerate(ReviewItem.Reason.choices)
    ]
    most = max((r["n"] for r in figures["decisions_today"]), default=0) or 1
    reviewers = [
        {
            "name": r["actor__username"],
            "count": r["n"],
            "median_seconds": r["median_seconds"],
            "undone": r["undone"],
            "y": i * row,
            "width": round(280 * r["n"] / most),
        }
        for i, r in enumerate(figures["decisions_today"])
    ]
    rate = figures["auto_accept_rate"]
    return render(
        request,
        "review/dashboard.html",
        {
            "nav": "dashboard",
            "figures": figures,
            "bars": bars,
            "reviewers": reviewers,
            "bars_height": len(bars) * row,
            "reviewers_height": max(1, len(reviewers)) * row,
            "rate_pct": round(rate * 100) if rate is not None else None,
            "rate_dash": round((rate or 0) * 251.2, 1),
            "refresh_seconds": round(settings.DASHBOARD_REFRESH_SECONDS),
        },
    )
