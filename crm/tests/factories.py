import factory

from crm.credentials import secret_encrypt
from crm.models import CrmConnection, CrmWriteLog
from workspaces.tests.factories import WorkspaceFactory


class CrmWriteLogFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CrmWriteLog

    workspace = factory.SubFactory(WorkspaceFactory)
    crm = CrmWriteLog.Crm.DRY_RUN
    action = CrmWriteLog.Action.UPDATE_DEAL
    idempotency_key = factory.Sequence(lambda n: f"key-{n}")
    payload_hash = "0" * 64
    payload_json = factory.LazyFunction(lambda: {"amount": 40000})


class CrmConnectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CrmConnection

    workspace = factory.SubFactory(WorkspaceFactory)
    crm = "hubspot"
    secret_encrypted = factory.LazyFunction(lambda: secret_encrypt("pat-test-token"))
