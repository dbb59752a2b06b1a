import factory

from deals.models import AssociationCandidate, Deal, DealFact, DealReadiness, ThreadLink
from threads.tests.factories import ThreadFactory
from workspaces.tests.factories import WorkspaceFactory


class DealFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Deal

    workspace = factory.SubFactory(WorkspaceFactory)
    crm = "hubspot"
    crm_deal_id = factory.Sequence(lambda n: str(9000 + n))
    title = factory.Sequence(lambda n: f"Customer rollout {n}")
    stage = "qualifiedtobuy"
    primary_domain = "customer.example"


class ThreadLinkFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ThreadLink

    workspace = factory.SubFactory(WorkspaceFactory)
    thread = factory.SubFactory(ThreadFactory, workspace=factory.SelfAttribute("..workspace"))
    deal = factory.SubFactory(DealFactory, workspace=factory.SelfAttribute("..workspace"))
    link_confidence = 0.9
    link_reason = "participant domain equals the deal's primary domain"


class AssociationCandidateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AssociationCandidate

    workspace = factory.SubFactory(WorkspaceFactory)
    thread = factory.SubFactory(ThreadFactory, workspace=factory.SelfAttribute("..workspace"))
    candidates_json = factory.LazyFunction(lambda: [{"deal_id": 1, "score": 0.6, "signals": {"domain": 1.0}}])


class DealFactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DealFact

    workspace = factory.SubFactory(WorkspaceFactory)
    deal = factory.SubFactory(DealFactory, workspace=factory.SelfAttribute("..workspace"))
    key = "budget"
    value_json = factory.LazyFunction(lambda: {"amount": 40000})
    confidence = 0.8


class DealReadinessFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DealReadiness

    workspace = factory.SubFactory(WorkspaceFactory)
    deal = factory.SubFactory(DealFactory, workspace=factory.SelfAttribute("..workspace"))
    framework = "bant"
    missing_keys = factory.LazyFunction(lambda: ["authority"])
    readiness_score = 0.5
