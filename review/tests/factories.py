import factory

from review.models import ReviewItem
from threads.tests.factories import ThreadFactory
from workspaces.tests.factories import WorkspaceFactory


class ReviewItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ReviewItem

    workspace = factory.SubFactory(WorkspaceFactory)
    thread = factory.SubFactory(ThreadFactory, workspace=factory.SelfAttribute("..workspace"))
    reason = ReviewItem.Reason.LOW_CONFIDENCE
    payload_json = factory.LazyFunction(lambda: {"field": "budget", "value": 40000, "confidence": 0.5})
