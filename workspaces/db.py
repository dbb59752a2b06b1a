"""Switching a connection to the owner role, for migrations and test-database set-up only."""

from contextlib import contextmanager

from django.conf import settings
from django.db import connections

_CREDENTIALS = ("USER", "PASSWORD", "HOST", "PORT")


@contextmanager
def owner_connection(alias: str = "default"):
    """Within the block, ``connections[alias]`` connects as the owner of the schema."""
    conn = connections[alias]
    saved = {key: conn.settings_dict.get(key) for key in _CREDENTIALS}
    conn.close()
    conn.settings_dict.update(settings.DATABASE_OWNER)
    try:
        yield conn
    finally:
        conn.close()
        conn.settings_dict.update(saved)
