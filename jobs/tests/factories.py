import factory
from django.utils import timezone

from jobs.models import Job
from workspaces.tests.factories import WorkspaceFactory


class JobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Job

    workspace = factory.SubFactory(WorkspaceFactory)
    task = "noop"
    payload = factory.LazyFunction(dict)
    run_after = factory.LazyFunction(timezone.now)
