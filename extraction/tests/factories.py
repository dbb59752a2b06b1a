import factory

from extraction.models import ExtractionRun, FieldValue
from threads.tests.factories import ThreadFactory
from workspaces.tests.factories import WorkspaceFactory


class ExtractionRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ExtractionRun

    workspace = factory.SubFactory(WorkspaceFactory)
    thread = factory.SubFactory(ThreadFactory, workspace=factory.SelfAttribute("..workspace"))
    schema_id = "sales_bant"
    schema_version = 1
    model = "rules"


class FieldValueFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FieldValue

    workspace = factory.SubFactory(WorkspaceFactory)
    run = factory.SubFactory(ExtractionRunFactory, workspace=factory.SelfAttribute("..workspace"))
    thread = factory.SelfAttribute("run.thread")
    field_key = "budget"
    field_value_json = factory.LazyFunction(lambda: {"amount": 40000, "currency": "USD"})
    confidence = 0.9
    evidence_json = factory.LazyFunction(list)
