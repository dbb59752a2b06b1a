"""Named queries of the job queue (queries.sql) and the schema SQL its migrations run.

``queries.sql`` holds blocks that start with ``-- name: <name>``; ``query(name)`` returns
the block's SQL with ``%(param)s`` placeholders for Django's cursor. The other ``.sql``
files here are schema SQL, run by ``workspaces.rls.RunSQLFile(..., sql_app="jobs")``.
"""

from __future__ import annotations

from pathlib import Path

from workspaces.named_sql import NamedQueries

SQL_DIR = Path(__file__).resolve().parent
_QUERIES = NamedQueries(SQL_DIR)


def queries() -> dict[str, str]:
    return _QUERIES.queries


def query(name: str) -> str:
    return _QUERIES[name]
