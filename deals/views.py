"""Deal pages: the list sortable by readiness and missing keys, and one deal with its evidence."""

from __future__ import annotations

import math

from django.core.paginator import InvalidPage, Paginator
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import render
from django.urls import reverse

from deals import selectors
from deals.frameworks import FRAMEWORKS, FactView, readiness_evaluate
from threads.highlight import evidence_query
from workspaces.decorators import member_required
from workspaces.selectors import policy_for

GAUGE_RADIUS = 40
# Deals per page of the list: what one screen reads, whatever the workspace's deal count.
DEALS_PER_PAGE = 50


def _frameworks(request) -> list[str]:
    return policy_for(workspace_id=request.workspace.pk)["readiness_frameworks"] or ["bant"]


@member_required()
def deal_list(request):
    frameworks = _frameworks(request)
    framework = request.GET.get("framework") if request.GET.get("framework") in frameworks else frameworks[0]
    sort = request.GET.get("sort") if request.GET.get("sort") in selectors.SORTS else "-readiness"
    paginator = Paginator(selectors.deal_list(framework=framework, sort=sort), DEALS_PER_PAGE)
    try:
        page = paginator.page(request.GET.get("page") or 1)
    except InvalidPage:
        return HttpResponseBadRequest(
            f"Bad page {request.GET.get('page')!r}: the deal list has pages 1 to {paginator.num_pages}."
        )
    return render(
        request,
        "deals/deal_list.html",
        {
            "deals": page.object_list,
            "page": page,
            "framework": framework,
            "frameworks": frameworks,
            "sort": sort,
            "nav": "deals",
        },
    )


def _evidence(request, fact) -> list[dict]:
    """Each quote of a fact with a link that lands on it, highlighted, in its thread."""
    out = []
    for span in (fact.evidence_json if fact else None) or []:
        if not isinstance(span, dict) or not span.get("thread_id"):
            continue
        url = reverse(
            "threads:detail", kwargs={"workspace_slug": request.workspace.slug, "thread_id": span["thread_id"]}
        )
        query, fragment = evidence_query([span])
        if query:
            url = f"{url}?{query}#{fragment}"
        elif span.get("message_id"):
            url = f"{url}#message-{span['message_id']}"
        out.append({"quote": " ".join(str(span.get("quote") or "").split()), "url": url})
    return out


@member_required()
def deal_detail(request, pk: int):
    page = selectors.deal_page(deal_id=pk)
    if page is None:
        raise Http404("No such deal")
    current = {
        f.key: FactView(f.value_json, f.confidence, f.confirmed, f.pk) for f in page["facts"] if f.status == "current"
    }
    facts_by_id = {f.pk: f for f in page["facts"]}
    sections = []
    for framework_id in _frameworks(request):
        framework = FRAMEWORKS[framework_id]
        result = readiness_evaluate(framework, current)
        stored = page["readiness"].get(framework_id)
        score = stored.readiness_score if stored else result.score
        labels = {k.key: k.label for k in framework.keys}
        sections.append(
            {
                "framework": framework,
                "score": score,
                "percent": round(score * 100),
                "dash": round(score * math.pi * GAUGE_RADIUS, 2),
                "arc": round(math.pi * GAUGE_RADIUS, 2),
                "stored": stored,
                "keys": [
                    {
                        "key": k.key,
                        "label": labels[k.key],
                        "state": k.state,
                        "credit": k.credit,
                        "source_key": k.source_key,
                        "fact": facts_by_id.get(k.fact.fact_id) if k.fact else None,
                        "evidence": _evidence(request, facts_by_id.get(k.fact.fact_id) if k.fact else None),
                    }
                    for k in result.keys
                ],
            }
        )
    history = [f for f in page["facts"] if f.status != "current"]
    return render(request, "deals/deal_detail.html", {**page, "sections": sections, "history": history, "nav": "deals"})
