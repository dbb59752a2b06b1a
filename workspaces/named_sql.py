"""A tiny loader for named SQL queries kept in ``.sql`` files.

A queries file holds blocks that start with ``-- name: <name>``, each with one comment
saying what it is for; ``NamedQueries(folder)[name]`` returns the block's SQL with
``%(param)s`` placeholders for Django's (or psycopg's) cursor.
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.M)


class NamedQueries:
    def __init__(self, folder: Path, file_name: str = "queries.sql"):
        self.path = Path(folder) / file_name

    @cached_property
    def queries(self) -> dict[str, str]:
        parts = _NAME.split(self.path.read_text())[1:]
        return {name: body.strip().rstrip(";") for name, body in zip(parts[::2], parts[1::2], strict=True)}

    def __getitem__(self, name: str) -> str:
        return self.queries[name]
