"""Running the named queries, and the queue role's short transactions."""

from __future__ import annotations

from contextlib import contextmanager

from django.conf import settings
from django.db import connection, transaction
from psycopg import sql

from jobs.sql import query

NOTIFY_CHANNEL = "threadline_jobs"


def fetch(name: str, params: dict) -> list[tuple]:
    """Run the named query on Django's connection and return its rows."""
    with connection.cursor() as cursor:
        cursor.execute(query(name), params)
        return cursor.fetchall() if cursor.description else []


@contextmanager
def queue_role():
    """A transaction (or savepoint) that runs as the queue role, which sees every workspace's
    jobs (jobs/sql/queue_role.sql). Keep it short: claim, heartbeat, release, counts."""
    role = sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(settings.DATABASE_QUEUE_ROLE))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(role)
        yield
        # Inside an outer transaction SET LOCAL would last until it ends; RESET ROLE goes
        # back to the login (app) role now. On an exception the rollback undoes the SET.
        cursor.execute("RESET ROLE")
