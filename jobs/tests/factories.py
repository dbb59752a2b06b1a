import factory
from django.utils import timezone

from jobs.models import Job
from workspaces.tests.factories import WorkspaceFactory


class JobFactory(factory.django.DjangoModelFactory):
    """Create inside ``workspace_context(workspace)``: jobs_job is under row-level security."""

    class Meta:
        model = Job

    workspace = factory.SubFactory(WorkspaceFactory)
    task = "test.noop"
    payload = factory.LazyFunction(dict)
    run_after = factory.LazyFunction(timezone.now)
