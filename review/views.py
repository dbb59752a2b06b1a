"""The review console: the queue, an item in context, decisions, undo, associations, dashboard.

Every view needs a membership of the workspace in the URL (the middleware resolves it and
sets the row-level-security context); viewers read, reviewers and admins decide.
"""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from deals.models import Deal
from extraction.schemas import schema_get
from review import selectors, services
from review.forms import CURRENCIES, initial_for, value_from_post
from review.models import ReviewItem
from workspaces.selectors import policy_for


def member_required(*, decide: bool = False):
    def decorator(view):
        @login_required
        @wraps(view)
        def wrapped(request, workspace_slug, *args, **kwargs):
            membership = getattr(request, "membership", None)
            if membership is None or request.workspace.slug != workspace_slug:
                raise Http404("No such workspace")
            if decide and not membership.can_decide:
                raise PermissionDenied("Viewers can read the queue but not decide.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def _queue_url(request, filters: selectors.QueueFilters) -> str:
    query = filters.querystring()
    return reverse("review:queue", kwargs={"workspace_slug": request.workspace.slug}) + (f"?{query}" if query else "")


def _item_url(request, pk: int, filters: selectors.QueueFilters) -> str:
    query = filters.querystring()
    url = reverse("review:item", kwargs={"workspace_slug": request.workspace.slug, "pk": pk})
    return url + (f"?{query}" if query else "")


@member_required()
def queue(request):
    filters = selectors.QueueFilters.from_query(request.GET)
    items, next_cursor = selectors.queue_items(filters=filters, user=request.user, cursor=request.GET.get("after"))
    counts = selectors.queue_counts_by_reason()
    return render(
        request,
        "review/queue.html",
        {
            "nav": "queue",
            "items": [(i, _item_url(request, i.pk, filters)) for i in items],
            "filters": filters,
            "reason_counts": [(key, label, counts[key]) for key, label in ReviewItem.Reason.choices],
            "count_cap": selectors.COUNT_CAP,
            "reasons": ReviewItem.Reason.choices,
            "statuses": ReviewItem.Status.choices,
            "next_url": f"{_queue_url(request, filters)}{'&' if filters.querystring() else '?'}after={next_cursor}"
            if next_cursor
            else "",
            "first_page_url": _queue_url(request, filters) if request.GET.get("after") else "",
            "fields": schema_get(policy_for(workspace_id=request.workspace.pk)["schema"]).keys,
        },
    )


@member_required()
def item(request, pk, *, edit_error: str = "", status: int = 200):
    review_item = get_object_or_404(
        ReviewItem.objects.select_related(
            "thread", "field_value", "assigned_to", "resolved_by", "association_candidate"
        ),
        pk=pk,
    )
    filters = selectors.QueueFilters.from_query(request.GET)
    held_by_other = False
    if review_item.status == ReviewItem.Status.OPEN and request.membership.can_decide:
        held_by_other = not services.review_item_claim(item=review_item, user=request.user)
    prev_id, next_id = selectors.queue_neighbours(item=review_item, filters=filters, user=request.user)
    policy = policy_for(workspace_id=request.workspace.pk)
    field_key = review_item.payload_json.get("field")
    schema = schema_get(policy["schema"])
    field_type = schema.field(field_key).type if field_key in schema.keys else "text"
    proposed = review_item.payload_json.get("proposed_value")
    context = {
        "item": review_item,
        "filters": filters,
        "querystring": filters.querystring(),
        "messages_in_thread": selectors.item_messages(item=review_item),
        "history": selectors.item_history(item=review_item),
        "prev_url": _item_url(request, prev_id, filters) if prev_id else "",
        "next_url": _item_url(request, next_id, filters) if next_id else "",
        "queue_url": _queue_url(request, filters),
        "held_by_other": held_by_other,
        "can_decide": request.membership.can_decide and not held_by_other,
        "field_type": field_type,
        "edit_initial": initial_for(field_type, proposed),
        "edit_error": edit_error,
        "currencies": CURRENCIES,
        "confidence_pct": round(float(review_item.payload_json.get("confidence") or 0) * 100),
        "undo_window": policy["undo_window_seconds"],
        "can_undo": _can_undo(review_item, request),
        "candidates": _candidates(review_item),
    }
    return render(request, "review/item.html", context, status=status)


def _can_undo(review_item: ReviewItem, request) -> bool:
    from datetime import timedelta

    from django.utils import timezone

    if review_item.status == ReviewItem.Status.OPEN or not review_item.resolved_at or not request.membership.can_decide:
        return False
    window = policy_for(workspace_id=review_item.workspace_id)["undo_window_seconds"]
    return timezone.now() - review_item.resolved_at <= timedelta(seconds=window)


def _candidates(review_item: ReviewItem) -> list[dict]:
    candidate = review_item.association_candidate
    if candidate is None:
        return []
    deals = Deal.objects.in_bulk([c.get("deal_id") for c in candidate.candidates_json])
    rows = []
    for entry in sorted(candidate.candidates_json, key=lambda c: -float(c.get("score", 0))):
        deal = deals.get(entry.get("deal_id"))
        if deal is not None:
            signals = sorted((entry.get("signals") or {}).items(), key=lambda kv: -float(kv[1]))
            rows.append(
                {
                    "deal": deal,
                    "score": entry.get("score", 0),
                    "signals": signals,
                    "chosen": candidate.chosen_deal_id == deal.pk,
                }
            )
    return rows


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
            services.review_item_skip(item=review_item, user=request.user)
        elif action == "assign":
            services.review_item_assign(item=review_item, user=request.user)
            messages.success(request, "Assigned to you.")
            return redirect(_item_url(request, pk, filters))
        elif action in ("approve", "reject"):
            services.review_item_resolve(item_id=pk, reviewer=request.user, decision=action, version=version)
        elif action == "edit":
            value = value_from_post(_field_type(review_item, request), request.POST)
            services.review_item_resolve(
                item_id=pk, reviewer=request.user, decision="edit", version=version, value=value
            )
        else:
            messages.error(request, f"Unknown action {action!r}.")
            return redirect(_item_url(request, pk, filters))
    except ValidationError as exc:
        request.GET = request.POST  # keep the queue filters for the re-rendered page
        return item(
            request, workspace_slug=request.workspace.slug, pk=pk, edit_error="; ".join(exc.messages), status=400
        )
    except (services.ReviewConflict, services.ReviewInvalid) as exc:
        messages.error(request, str(exc))
        return redirect(_item_url(request, pk, filters))
    if action != "skip":
        messages.success(request, _done_message(action), extra_tags=f"undo:{pk}")
    return redirect(_next_after(request, review_item, filters))


def _done_message(action: str) -> str:
    return {"approve": "Approved.", "reject": "Rejected.", "edit": "Edited and approved."}[action] + " Press u to undo."


def _field_type(review_item: ReviewItem, request) -> str:
    schema = schema_get(policy_for(workspace_id=request.workspace.pk)["schema"])
    key = review_item.payload_json.get("field")
    return schema.field(key).type if key in schema.keys else "text"


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
    figures = selectors.dashboard_figures()
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
        {"name": r["actor__username"], "count": r["n"], "y": i * row, "width": round(280 * r["n"] / most)}
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
        },
    )
