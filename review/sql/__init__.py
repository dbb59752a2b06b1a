"""Named queries of the review console: queries.sql (the queue), item.sql (the item page)."""

from pathlib import Path

from workspaces.named_sql import NamedQueries

QUERIES = NamedQueries(Path(__file__).resolve().parent)
ITEM_QUERIES = NamedQueries(Path(__file__).resolve().parent, "item.sql")
