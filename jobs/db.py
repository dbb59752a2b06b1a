"""Running the named queries, and the queue role's short transactions."""

from __future__ import annotations

from contextlib import contextmanager

import psycopg
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from psycopg import pq, sql

from jobs.sql import query

NOTIFY_CHANNEL = "threadline_jobs"
# What jobs_lease_lost() raises (jobs/sql/lease_lost.sql): a fenced finish matched nothing.
LEASE_LOST_SQLSTATE = "TLJ01"


def is_lease_lost(exc: BaseException) -> bool:
    """Whether a database error is finish_job finding the lease gone (jobs_lease_lost)."""
    cause = exc.__cause__ if isinstance(exc, DatabaseError) and exc.__cause__ else exc
    return getattr(cause, "sqlstate", None) == LEASE_LOST_SQLSTATE


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
    if settings.JOBS_ASYNC_COMMIT:
        statement += sql.SQL("SET LOCAL synchronous_commit = off; ")
    with connection.wrap_database_errors, psycopg.ClientCursor(connection.connection) as cursor:
        cursor.execute(statement + sql.SQL(query(name)), params)
        cursor.nextset()  # past the SET's empty result
        if settings.JOBS_ASYNC_COMMIT:
            cursor.nextset()
        return cursor.fetchall()


def begin_with_configs(values: dict[str, str]) -> None:
    """Open the transaction that an outermost ``transaction.atomic()`` has just marked, and set
    transaction-local settings, in one round trip instead of two.

    psycopg sends ``BEGIN`` by itself before the first statement of a transaction; sending
    ``BEGIN; SELECT set_config(...)`` as one simple-query message through libpq instead leaves
    the server in the transaction, so psycopg sends no BEGIN of its own, and Django's atomic
    block commits or rolls it back as usual. Values are quoted as literals by psycopg.
    """
    connection.ensure_connection()
    raw = connection.connection
    sets = sql.SQL(", ").join(
        sql.SQL("set_config({}, {}, true)").format(sql.Literal(name), sql.Literal(value))
        for name, value in values.items()
    )
    if raw.pgconn.transaction_status != pq.TransactionStatus.IDLE:  # already in one: just set them
        with connection.cursor() as cursor:
            cursor.execute(sql.SQL("SELECT {}").format(sets).as_string(raw))
        return
    command = sql.SQL("BEGIN; SELECT {}").format(sets).as_bytes(raw)
    with connection.wrap_database_errors:
        result = raw.pgconn.exec_(command)
        if result.status != pq.ExecStatus.TUPLES_OK:
            if raw.pgconn.status == pq.ConnStatus.BAD or not result.error_field(pq.DiagnosticField.SQLSTATE):
                raise psycopg.OperationalError(result.get_error_message() or "the connection was lost")
            raise psycopg.errors.error_from_result(result, encoding=raw.info.encoding)


_ASYNC_IF_UNWRITTEN = sql.SQL(
    "SELECT set_config('synchronous_commit', CASE WHEN pg_current_xact_id_if_assigned() IS NULL"
    " THEN 'off' ELSE current_setting('synchronous_commit') END, true)"
)


def commit_with(statements: list[tuple[str, dict, bool]]) -> list[list[tuple]]:
    """Run named queries and COMMIT, all in one simple-query message (one round trip).

    ``statements`` are (name, params, as_queue_role); parameters are bound on the client
    (psycopg's ClientCursor), so the names must not clash. A statement run as the queue role
    is preceded by ``SET LOCAL ROLE``, which ends with the COMMIT. If a statement fails (a
    finish whose lease is lost raises), PostgreSQL skips the rest of the message, COMMIT
    included, and the error comes back here; the caller's atomic block then rolls back.
    Returns each statement's rows. Call it last inside an outermost ``transaction.atomic()``.

    With ``JOBS_ASYNC_COMMIT``, a transaction that has written nothing before these statements
    (no transaction id yet: the handler wrote nothing, or it committed its own writes)
    commits without waiting for the WAL flush. What it holds is queue bookkeeping only, and
    WAL is flushed in order, so a server crash can lose it only together with every later
    commit: the job is then found unfinished and runs again, as delivery at least once
    allows. A transaction with the handler's writes commits as the server is configured.
    """
    role = sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(settings.DATABASE_QUEUE_ROLE))
    parts, params, rows_at = [], {}, []
    if settings.JOBS_ASYNC_COMMIT:
        parts.append(_ASYNC_IF_UNWRITTEN)
    for name, values, as_queue_role in statements:
        if as_queue_role:
            parts.append(role)
        rows_at.append(len(parts))
        parts.append(sql.SQL(query(name)))
        params.update(values)
    parts.append(sql.SQL("COMMIT"))
    statement = sql.SQL("; ").join(parts)
    results: list[list[tuple]] = []
    with connection.wrap_database_errors, psycopg.ClientCursor(connection.connection) as cursor:
        cursor.execute(statement, params)
        for index in range(len(parts)):
            if index in rows_at:
                results.append(cursor.fetchall())
            cursor.nextset()
    return results
