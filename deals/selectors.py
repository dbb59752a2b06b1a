"""Reads for deals: what linking sees of a thread and of the deals, facts, readiness, pages."""

from __future__ import annotations

from deals.linking import DealFacts, ThreadFacts
from deals.models import AssociationCandidate, Deal, DealFact, DealReadiness, ThreadLink
from threads.models import Message, Thread
from workspaces import display
from workspaces.models import Workspace


def thread_facts(*, thread: Thread) -> ThreadFacts:
    """Everyone in the thread's From/To/Cc (not only the stored participants list), lower-cased."""
    people = {p.lower() for p in thread.participants}
    for sender, to, cc in Message.objects.filter(thread=thread).values_list("from_email", "to_json", "cc_json"):
        people.add(sender.lower())
        people.update(_addresses(to) + _addresses(cc))
    people.discard("")
    internal = Workspace.objects.values_list("internal_domains", flat=True).get(pk=thread.workspace_id)
    return ThreadFacts(
        subject=thread.base_subject or thread.subject,
        participants=frozenset(people),
        internal_domains=frozenset(d.lower() for d in internal),
        last_message_at=thread.last_message_at,
    )


def threads_facts(*, threads: list[Thread]) -> dict[int, ThreadFacts]:
    """``thread_facts`` of many threads of one workspace, in two queries: by thread id."""
    if not threads:
        return {}
    people = {t.pk: {p.lower() for p in t.participants} for t in threads}
    rows = Message.objects.filter(thread_id__in=list(people)).values_list(
        "thread_id", "from_email", "to_json", "cc_json"
    )
    for thread_id, sender, to, cc in rows:
        people[thread_id].add(sender.lower())
        people[thread_id].update(_addresses(to) + _addresses(cc))
    internal = frozenset(
        d.lower() for d in Workspace.objects.values_list("internal_domains", flat=True).get(pk=threads[0].workspace_id)
    )
    return {
        t.pk: ThreadFacts(
            subject=t.base_subject or t.subject,
            participants=frozenset(people[t.pk] - {""}),
            internal_domains=internal,
            last_message_at=t.last_message_at,
        )
        for t in threads
    }


def reviewer_decided_threads(*, thread_ids: list[int]) -> set[int]:
    """Of these threads, those whose deal a person chose (``reviewer_decided``), in two queries."""
    decided = set(
        ThreadLink.objects.filter(thread_id__in=thread_ids, linked_by=ThreadLink.LinkedBy.REVIEWER).values_list(
            "thread_id", flat=True
        )
    )
    return decided | set(
        AssociationCandidate.objects.filter(
            thread_id__in=thread_ids,
            status=AssociationCandidate.Status.RESOLVED,
            decision__in=["deal", "none", "new_deal"],
        ).values_list("thread_id", flat=True)
    )


def _addresses(entries) -> list[str]:
    out = []
    for entry in entries or []:
        address = entry.get("email", "") if isinstance(entry, dict) else str(entry)
        out.append(address.lower())
    return out


def deal_facts_all() -> list[DealFacts]:
    """Every deal of the workspace as linking sees it (closed ones too: they score 0 on stage)."""
    return [deal_facts_of(deal) for deal in Deal.objects.order_by("pk")]


def deal_facts_of(deal: Deal) -> DealFacts:
    active = deal.crm_updated_at
    if active is None and deal.close_date is not None:
        from datetime import datetime, time

        from django.utils import timezone

        active = timezone.make_aware(datetime.combine(deal.close_date, time()))
    return DealFacts(
        id=deal.pk,
        title=deal.title,
        is_closed=deal.is_closed,
        primary_domain=deal.primary_domain,
        contact_emails=frozenset(c.lower() for c in deal.contact_emails),
        owner_email=deal.owner_email,
        active_at=active,
        stage=display.crm_stage(deal.stage, crm=deal.crm, label=deal.stage_label) if deal.stage else "",
    )


def reviewer_decided(*, thread_id: int) -> bool:
    """A person chose this thread's deal (or chose none): linking leaves it alone."""
    if ThreadLink.objects.filter(thread_id=thread_id, linked_by=ThreadLink.LinkedBy.REVIEWER).exists():
        return True
    return AssociationCandidate.objects.filter(
        thread_id=thread_id, status=AssociationCandidate.Status.RESOLVED, decision__in=["deal", "none", "new_deal"]
    ).exists()


def deal_current_facts(*, deal_id: int) -> dict[str, DealFact]:
    return {f.key: f for f in DealFact.objects.filter(deal_id=deal_id, status=DealFact.Status.CURRENT)}


SORTS = {
    "readiness": ("readiness_sort", "pk"),
    "-readiness": ("-readiness_sort", "pk"),
    "missing": ("missing_sort", "pk"),
    "-missing": ("-missing_sort", "pk"),
    "title": ("title", "pk"),
}


def deal_list(*, framework: str, sort: str = "-readiness"):
    """Deals with one framework's readiness score and missing-key count, sortable by both."""
    from django.db.models import FloatField, IntegerField, OuterRef, Subquery, Value
    from django.db.models.functions import Coalesce

    readiness = DealReadiness.objects.filter(deal=OuterRef("pk"), framework=framework)
    order = SORTS.get(sort, SORTS["-readiness"])
    return Deal.objects.annotate(
        readiness_sort=Coalesce(
            Subquery(readiness.values("readiness_score")[:1], output_field=FloatField()), Value(0.0)
        ),
        missing_json=Subquery(readiness.values("missing_keys")[:1]),
        missing_sort=Coalesce(
            Subquery(_missing_count(readiness), output_field=IntegerField()), Value(99), output_field=IntegerField()
        ),
        threads_count=Subquery(_thread_count(), output_field=IntegerField()),
    ).order_by(*order)


def _missing_count(readiness):
    from django.db.models import Func, IntegerField

    return readiness.annotate(
        n=Func("missing_keys", function="jsonb_array_length", output_field=IntegerField())
    ).values("n")[:1]


def _thread_count():
    from django.db.models import Count, OuterRef

    return (
        ThreadLink.objects.filter(deal=OuterRef("pk")).order_by().values("deal").annotate(n=Count("pk")).values("n")[:1]
    )


def deal_page(*, deal_id: int) -> dict | None:
    """Everything the deal page shows, in a fixed number of queries."""
    deal = Deal.objects.filter(pk=deal_id).first()
    if deal is None:
        return None
    links = list(
        ThreadLink.objects.filter(deal=deal).select_related("thread").order_by("-thread__last_message_at", "pk")
    )
    facts = list(DealFact.objects.filter(deal=deal).order_by("key", "-created_at", "-pk"))
    readiness = {r.framework: r for r in DealReadiness.objects.filter(deal=deal)}
    return {"deal": deal, "links": links, "facts": facts, "readiness": readiness}
