import factory
from django.contrib.auth import get_user_model

from workspaces.models import AuditEvent, Membership, Policy, Workspace
from workspaces.policy import policy_defaults


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("correct horse battery staple")


class WorkspaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Workspace

    slug = factory.Sequence(lambda n: f"team-{n}")
    name = factory.Sequence(lambda n: f"Team {n}")
    internal_domains = factory.LazyAttribute(lambda w: [f"{w.slug}.example"])


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    workspace = factory.SubFactory(WorkspaceFactory)
    user = factory.SubFactory(UserFactory)
    role = Membership.Role.REVIEWER


class PolicyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Policy

    workspace = factory.SubFactory(WorkspaceFactory)
    policy = factory.LazyFunction(policy_defaults)


class AuditEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AuditEvent

    workspace = factory.SubFactory(WorkspaceFactory)
    type = "test.event"
    data_json = factory.LazyFunction(lambda: {"n": 1})
