"""Named queries of the review console (queries.sql)."""

from pathlib import Path

from workspaces.named_sql import NamedQueries

QUERIES = NamedQueries(Path(__file__).resolve().parent)
