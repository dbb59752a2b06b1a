"""Schema SQL lives in .sql files that migrations run; none may be left unreferenced."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _migration_text() -> str:
    return "\n".join(p.read_text() for p in ROOT.glob("*/migrations/*.py"))


def _schema_sql_files():
    # Schema files (run by migrations) sit in each app's sql/ folder; query files that the
    # code loads by name (workspaces.named_sql: queries.sql, review's item.sql) hold
    # "-- name:" blocks and are checked by their own tests.
    return sorted(p for p in ROOT.glob("*/sql/*.sql") if not _NAMED.search(p.read_text()))


_NAMED = re.compile(r"^-- name: \w+\s*$", re.M)


def test_every_schema_sql_file_is_run_by_a_migration():
    text = _migration_text()
    referenced = {"tenant_rls_enable", "tenant_rls_disable"}  # through EnableTenantRLS
    unreferenced = [
        p.relative_to(ROOT).as_posix()
        for p in _schema_sql_files()
        if p.stem not in referenced and f'"{p.stem}"' not in text
    ]
    assert unreferenced == []
    assert len(_schema_sql_files()) >= 8
