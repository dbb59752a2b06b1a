"""docs/scaling.md stays true: its table classifies every table the migrations create, names
none that no longer exists, and puts on Citus by workspace only tables that have the column."""

import re
from pathlib import Path

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db

DOC = Path(__file__).resolve().parent.parent / "docs" / "scaling.md"
PLACEMENTS = {"distributed", "reference", "local"}
ROW = re.compile(r"^\|\s*`(?P<table>[a-z0-9_]+)`\s*\|\s*(?P<placement>[a-z]+)\s*\|")


def classified() -> dict[str, str]:
    """The doc's rows ``| `table` | placement | notes |``: table -> placement."""
    rows: dict[str, str] = {}
    for number, line in enumerate(DOC.read_text().splitlines(), start=1):
        match = ROW.match(line)
        if not match:
            continue
        table, placement = match["table"], match["placement"]
        assert placement in PLACEMENTS, (
            f"docs/scaling.md line {number}: {table} is {placement!r}, not one of {PLACEMENTS}"
        )
        assert table not in rows, f"docs/scaling.md line {number}: {table} is classified twice"
        rows[table] = placement
    return rows


def catalog_tables() -> dict[str, set[str]]:
    """Every table in the public schema of the test database, with its columns."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname, array_agg(a.attname::text)
            FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
            GROUP BY c.relname
            """
        )
        return {name: set(columns) for name, columns in cursor.fetchall()}


def test_every_table_is_classified_and_every_classified_table_exists():
    doc, catalog = classified(), catalog_tables()
    assert len(doc) > 20, "docs/scaling.md: the classification table was not found"
    missing = sorted(set(catalog) - set(doc))
    gone = sorted(set(doc) - set(catalog))
    problems = [f"missing from docs/scaling.md's classification: {', '.join(missing)}"] if missing else []
    problems += [f"classified in docs/scaling.md but no longer in the database: {', '.join(gone)}"] if gone else []
    assert not problems, "; ".join(problems)


def test_distributed_tables_have_the_distribution_column_and_reference_tables_not_tenant_rows():
    doc, catalog = classified(), catalog_tables()
    without = sorted(t for t, p in doc.items() if p == "distributed" and "workspace_id" not in catalog.get(t, ()))
    assert not without, f"distributed by workspace_id but without the column: {', '.join(without)}"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relrowsecurity"
        )
        tenant = {name for (name,) in cursor.fetchall()}
    # A table under row-level security holds one workspace's rows: a copy on every node
    # (reference) would be the wrong place for it.
    copied = sorted(t for t in tenant if doc.get(t) == "reference")
    assert not copied, f"tenant tables (row-level security) classified as reference: {', '.join(copied)}"
