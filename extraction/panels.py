"""The thread page's values panel: each extracted value with its state and its review items."""

from __future__ import annotations

from extraction.models import FieldValue
from extraction.schemas import schema_get
from review.models import ReviewItem

STATES = {
    FieldValue.Status.VERIFIED: ("approved", "approved by a reviewer"),
    FieldValue.Status.ACCEPTED: ("accepted", "accepted by policy"),
    FieldValue.Status.REJECTED: ("rejected", "rejected"),
}


def _field_type(run, key: str) -> str:
    try:
        return schema_get(run.schema_id, run.schema_version).field(key).type
    except KeyError:
        return ""


def _state(value: FieldValue, items: list[ReviewItem]) -> tuple[str, str]:
    if value.status in STATES:
        return STATES[value.status]
    if any(i.status == ReviewItem.Status.OPEN for i in items):
        return "waiting", "waiting for review"
    return "proposed", "proposed"


def thread_values_panel(thread) -> dict | None:
    """Every value of the thread but the superseded, in the schema's order, with its items;
    and the thread's other review items (deal associations, conflicts, failed jobs)."""
    values = list(
        FieldValue.objects.filter(thread_id=thread.pk)
        .exclude(status=FieldValue.Status.SUPERSEDED)
        .select_related("run", "decided_by")
        .order_by("field_key", "-created_at", "-pk")
    )
    items = list(ReviewItem.objects.filter(thread_id=thread.pk).order_by("-created_at", "-pk"))
    if not values and not items:
        return None
    by_value: dict[int, list[ReviewItem]] = {}
    for item in items:
        if item.field_value_id:
            by_value.setdefault(item.field_value_id, []).append(item)
    rows = []
    for value in values:
        theirs = by_value.get(value.pk, [])
        state, label = _state(value, theirs)
        rows.append(
            {
                "value": value,
                "field_type": _field_type(value.run, value.field_key),
                "state": state,
                "state_label": label,
                "items": theirs,
            }
        )
    order = {key: n for n, key in enumerate(_schema_keys(values))}
    rows.sort(key=lambda r: order.get(r["value"].field_key, len(order)))
    return {"rows": rows, "other_items": [i for i in items if not i.field_value_id]}


def _schema_keys(values: list[FieldValue]) -> list[str]:
    keys: list[str] = []
    for run in {(v.run.schema_id, v.run.schema_version) for v in values}:
        try:
            keys.extend(k for k in schema_get(*run).keys if k not in keys)
        except KeyError:
            continue
    return keys


def register_panels() -> None:
    from threads.panels import thread_panel_register

    thread_panel_register(
        name="values", template="extraction/thread_values_panel.html", build=thread_values_panel, order=10
    )
