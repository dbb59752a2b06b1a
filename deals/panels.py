"""The thread page's deal panel: the deal the thread is linked to, or the candidates waiting."""

from __future__ import annotations

from deals.models import AssociationCandidate, Deal, ThreadLink


def thread_deal_panel(thread) -> dict:
    link = ThreadLink.objects.select_related("deal").filter(thread_id=thread.pk).first()
    candidates = []
    if link is None:
        open_ = AssociationCandidate.objects.filter(thread_id=thread.pk, status=AssociationCandidate.Status.OPEN)
        ids = [c.get("deal_id") for a in open_ for c in a.candidates_json or [] if isinstance(c, dict)]
        candidates = list(Deal.objects.filter(pk__in=[i for i in ids if isinstance(i, int)]).order_by("title"))
    return {"link": link, "candidates": candidates}


def register_panels() -> None:
    from threads.panels import thread_panel_register

    thread_panel_register(name="deal", template="deals/thread_deal_panel.html", build=thread_deal_panel, order=20)
