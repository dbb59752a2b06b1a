"""Row-level security, table by table: with no workspace context, or another workspace's,
SELECT, INSERT, UPDATE and DELETE find zero rows or are refused.

The tables come from the catalog (every table with a workspace_id column), so a new tenant
table without a policy, or without FORCE, fails here by itself.
"""

import json

import psycopg
import pytest
from django.db import DatabaseError, connection, transaction
from psycopg import sql

from tests.tenancy import catalog_tenant_tables, factories_by_model, tenant_models
from workspaces.rls import workspace_context
from workspaces.tests.factories import WorkspaceFactory

pytestmark = pytest.mark.django_db

TENANT_MODELS = tenant_models()
OPERATIONS = ["select", "insert", "update", "delete"]
CONTEXTS = ["no_context", "other_workspace"]


def test_catalog_tenant_tables_match_the_models_and_all_have_forced_rls():
    with connection.cursor() as cursor:
        tables = catalog_tenant_tables(cursor)
        cursor.execute(
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, "
            "       array_agg(p.policyname) FILTER (WHERE p.qual LIKE '%%app.workspace_id%%') "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "LEFT JOIN pg_policies p ON p.tablename = c.relname AND p.schemaname = n.nspname "
            "WHERE n.nspname = 'public' AND c.relname = ANY(%s) GROUP BY 1, 2, 3",
            [sorted(tables)],
        )
        state = {name: (enabled, forced, policies or []) for name, enabled, forced, policies in cursor.fetchall()}
    assert tables == {m._meta.db_table for m in TENANT_MODELS}
    problems = [
        f"{name}: enabled={enabled} forced={forced} policies={policies}"
        for name, (enabled, forced, policies) in sorted(state.items())
        if not (enabled and forced and "workspace_isolation" in policies)
    ]
    assert problems == []
    print(f"\nRLS matrix: {len(tables)} tenant tables, all ENABLE + FORCE with workspace_isolation")


def test_app_role_has_no_truncate_or_ownership_on_tenant_tables():
    with connection.cursor() as cursor:
        tables = sorted(catalog_tenant_tables(cursor))
        cursor.execute(
            "SELECT t FROM unnest(%s::text[]) AS t "
            "WHERE has_table_privilege(current_user, t, 'TRUNCATE') "
            "   OR pg_get_userbyid((SELECT relowner FROM pg_class WHERE relname = t)) = current_user",
            [tables],
        )
        assert cursor.fetchall() == []


def test_every_tenant_model_has_a_factory():
    missing = [m._meta.label for m in TENANT_MODELS if m not in factories_by_model()]
    assert missing == [], "add a factory in <app>/tests/factories.py so the RLS matrix can cover it"


@pytest.fixture
def victim_row():
    """One row of the table under test, in workspace A; returns (model, row as JSON, A, B)."""

    def make(model):
        ws_a, ws_b = WorkspaceFactory(), WorkspaceFactory()
        with workspace_context(ws_a):
            obj = factories_by_model()[model](workspace=ws_a)
            with connection.cursor() as cursor:
                query = sql.SQL("SELECT row_to_json(t) FROM {} t WHERE id = %s").format(
                    sql.Identifier(model._meta.db_table)
                )
                cursor.execute(_text(query), [obj.pk])
                row = cursor.fetchone()[0]
        assert row is not None and row["workspace_id"] == ws_a.pk
        return row, ws_a, ws_b

    return make


def _text(query: sql.Composable) -> str:
    connection.ensure_connection()
    return query.as_string(connection.connection)


def _run(model, operation, row):
    """Run one statement against the table; return rows seen/affected, or 'refused'."""
    table = sql.Identifier(model._meta.db_table)
    # Generated columns (PostgreSQL computes them) take no value on INSERT.
    generated = {f.column for f in model._meta.concrete_fields if getattr(f, "generated", False)}
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in row if c != "id" and c not in generated)
    statements = {
        "select": ("SELECT count(*) FROM {table}", []),
        "update": ("UPDATE {table} SET workspace_id = workspace_id WHERE id = %s", [row["id"]]),
        "delete": ("DELETE FROM {table} WHERE id = %s", [row["id"]]),
        "insert": (
            "INSERT INTO {table} ({columns}) SELECT {columns} FROM json_populate_record(NULL::{table}, %s)",
            [json.dumps(row)],
        ),
    }
    template, params = statements[operation]
    query = _text(sql.SQL(template).format(table=table, columns=columns))
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(query, params)
            return cursor.fetchone()[0] if operation == "select" else cursor.rowcount
    except DatabaseError as exc:
        cause = exc.__cause__
        assert isinstance(cause, psycopg.errors.InsufficientPrivilege), f"refused for another reason: {exc}"
        return "refused"


@pytest.mark.parametrize("context", CONTEXTS)
@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("model", TENANT_MODELS, ids=lambda m: m._meta.db_table)
def test_rls_matrix(model, operation, context, victim_row):
    row, ws_a, ws_b = victim_row(model)
    if context == "other_workspace":
        with workspace_context(ws_b):
            outcome = _run(model, operation, row)
    else:
        outcome = _run(model, operation, row)
    assert outcome in (0, "refused"), f"{model._meta.db_table} {operation} under {context} leaked: {outcome}"
    if operation == "insert":
        assert outcome == "refused"
    # The row is still there, untouched, for its own workspace.
    with workspace_context(ws_a):
        assert model.objects.filter(pk=row["id"]).exists()
