"""Running the named queries, and the queue role's short transactions."""

from __future__ import annotations

from contextlib import contextmanager

import psycopg
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


def queue_fetch(name: str, params: dict) -> list[tuple]:
    """Run the named query as the queue role, in one round trip.

    ``SET LOCAL ROLE`` and the query go as one simple-query message (parameters bound on
    the client by psycopg's ClientCursor), which PostgreSQL runs as one implicit
    transaction: the role ends with it, and nothing else runs as the queue role. This is
    what makes an idle worker's claim one round trip instead of five (BEGIN, SET, query,
    RESET, COMMIT). Inside an outer transaction (tests) it falls back to ``queue_role()``.
    """
    if connection.in_atomic_block:
        with queue_role():
            return fetch(name, params)
    connection.ensure_connection()
    statement = sql.SQL("SET LOCAL ROLE {}; ").format(sql.Identifier(settings.DATABASE_QUEUE_ROLE))
    with connection.wrap_database_errors, psycopg.ClientCursor(connection.connection) as cursor:
        cursor.execute(statement + sql.SQL(query(name)), params)
        cursor.nextset()  # past the SET's empty result
        return cursor.fetchall()
