"""The tenant tables, found from the models and from the catalog, and a factory for each."""

import importlib
import inspect

import factory
from django.apps import apps
from django.conf import settings


def tenant_models():
    """Every model whose table has a workspace_id column of its own."""
    return sorted(
        (m for m in apps.get_models() if any(f.column == "workspace_id" for f in m._meta.concrete_fields)),
        key=lambda m: m._meta.db_table,
    )


def factories_by_model() -> dict:
    """Every factory_boy factory in the apps' tests/factories.py, keyed by its model."""
    found = {}
    for app in settings.INSTALLED_APPS:
        try:
            module = importlib.import_module(f"{app}.tests.factories")
        except ModuleNotFoundError:
            continue
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, factory.django.DjangoModelFactory) and obj._meta.model is not None:
                found.setdefault(obj._meta.model, obj)
    return found


def catalog_tenant_tables(cursor) -> set[str]:
    cursor.execute(
        "SELECT table_name FROM information_schema.columns "
        "WHERE table_schema = 'public' AND column_name = 'workspace_id'"
    )
    return {row[0] for row in cursor.fetchall()}
