import factory
from django.utils import timezone

from review.models import DashboardSnapshot, ReviewItem
from threads.tests.factories import ThreadFactory
from workspaces.tests.factories import WorkspaceFactory


class ReviewItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ReviewItem

    workspace = factory.SubFactory(WorkspaceFactory)
    thread = factory.SubFactory(ThreadFactory, workspace=factory.SelfAttribute("..workspace"))
    reason = ReviewItem.Reason.LOW_CONFIDENCE
    payload_json = factory.LazyFunction(lambda: {"field": "budget", "value": 40000, "confidence": 0.5})


class DashboardSnapshotFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DashboardSnapshot

    workspace = factory.SubFactory(WorkspaceFactory)
    figures_json = factory.LazyFunction(
        lambda: {
            "open_by_reason": {},
            "open_total": 0,
            "oldest_open_at": None,
            "auto_accepted": 0,
            "sent_to_review": 0,
            "days": 30,
        }
    )
    computed_at = factory.LazyFunction(timezone.now)
