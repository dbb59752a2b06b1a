"""Named queries of the job queue (queries.sql) and the schema SQL its migrations run.

``queries.sql`` holds blocks that start with ``-- name: <name>``; ``query(name)`` returns
the block's SQL with ``%(param)s`` placeholders for Django's cursor. The other ``.sql``
files here are schema SQL, run by ``workspaces.rls.RunSQLFile(..., sql_app="jobs")``.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

SQL_DIR = Path(__file__).resolve().parent
_NAME = re.compile(r"^-- name: (\w+)\s*$", re.M)


@cache
def queries() -> dict[str, str]:
    text = (SQL_DIR / "queries.sql").read_text()
    parts = _NAME.split(text)[1:]
    return {name: body.strip().rstrip(";") for name, body in zip(parts[::2], parts[1::2], strict=True)}


def query(name: str) -> str:
    return queries()[name]
