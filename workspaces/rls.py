"""Row-level security: the per-transaction workspace context and the migration operation.

django-rls is not used: its context is set with session-level ``set_config(..., false)``
(which a pooled connection would carry into the next request), its policies cast to
integer where our keys are bigint, and it needs its own database backend and model
metaclass. The two small pieces it would give us are here instead.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from pathlib import Path

import psycopg
from django.db import connection, transaction
from django.db.migrations.operations.base import Operation
from psycopg import pq, sql

SQL_DIR = Path(__file__).resolve().parent / "sql"
WORKSPACE_SETTING = "app.workspace_id"
USER_SETTING = "app.user_id"


def _set_local(name: str, value) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config(%s, %s, true)", [name, "" if value is None else str(value)])


def _current(name: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting(%s, true)", [name])
        return cursor.fetchone()[0] or ""


@contextmanager
def workspace_context(workspace, *, user=None):
    """Run the block in a transaction whose rows are those of ``workspace`` only.

    The setting is transaction-local, so it ends with the transaction and a pooled
    connection never carries it further. Nested use restores the outer workspace on exit.
    """
    workspace_id = workspace if isinstance(workspace, int) else workspace.pk
    with transaction.atomic():
        previous = _current(WORKSPACE_SETTING)
        _set_local(WORKSPACE_SETTING, workspace_id)
        if user is not None:
            _set_local(USER_SETTING, user.pk)
        yield
        # Only on success: after an exception the (sub)transaction rolls back, and with it
        # the setting, since PostgreSQL undoes set_config on ROLLBACK TO SAVEPOINT.
        _set_local(WORKSPACE_SETTING, previous or None)


def set_request_context(*, workspace_id: int | None, user_id: int | None) -> None:
    """Inside the request's transaction: the user (for their own memberships) and workspace."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config(%s, %s, true), set_config(%s, %s, true)",
            [
                USER_SETTING,
                "" if user_id is None else str(user_id),
                WORKSPACE_SETTING,
                "" if workspace_id is None else str(workspace_id),
            ],
        )


# One simple-query message, one round trip, at the start of a signed-in request's transaction:
# the user first (the membership_own_rows policy reads it), then the workspace of the user's
# own membership (by the URL's slug, else the session's workspace, else the first by name;
# none: no context, zero rows), then that membership, its workspace and the workspace's policy
# (whose row is visible only now that the context is set). Values are quoted by psycopg.
_REQUEST_CONTEXT_SQL = """
SELECT set_config('app.user_id', %(user)s::text, true);
SELECT set_config('app.workspace_id', COALESCE((
    SELECT m.workspace_id::text FROM workspaces_membership m JOIN workspaces_workspace w ON w.id = m.workspace_id
    WHERE m.user_id = %(user)s AND (%(slug)s::text IS NULL OR w.slug = %(slug)s::text)
    ORDER BY m.workspace_id = %(workspace)s::bigint IS TRUE DESC, w.name, m.workspace_id LIMIT 1), ''), true);
SELECT json_build_object('membership', row_to_json(m), 'workspace', row_to_json(w),
                         'policy', (SELECT p.policy FROM workspaces_policy p WHERE p.workspace_id = w.id
                                    ORDER BY p.id LIMIT 1))
FROM workspaces_membership m JOIN workspaces_workspace w ON w.id = m.workspace_id
WHERE m.user_id = %(user)s AND m.workspace_id = NULLIF(current_setting('app.workspace_id', true), '')::bigint
"""


def request_context_enter(*, user_id: int, slug: str | None, workspace_id: int | None) -> dict | None:
    """Set the request's user and workspace, transaction-local, and return the membership that
    chose the workspace (``{"membership", "workspace", "policy"}`` as JSON rows), or None
    (no membership: the workspace context stays empty). One round trip, the BEGIN included.

    Call it first thing inside the request's outermost ``transaction.atomic()``: psycopg would
    send a BEGIN of its own before the first statement, so the BEGIN goes in the same message
    (as ``jobs.db.begin_with_configs`` does), and Django's atomic block commits as usual.
    Inside a transaction already (a test's), the three statements go without it.
    """
    params = {"user": user_id, "slug": slug, "workspace": workspace_id}
    connection.ensure_connection()
    raw = connection.connection
    started = time.monotonic()
    with connection.wrap_database_errors:
        query = psycopg.ClientCursor(raw).mogrify(_REQUEST_CONTEXT_SQL, params)
        if raw.pgconn.transaction_status == pq.TransactionStatus.IDLE:
            query = "BEGIN;" + query
        result = raw.pgconn.exec_(query.encode())
        if result.status != pq.ExecStatus.TUPLES_OK:
            if raw.pgconn.status == pq.ConnStatus.BAD or not result.error_field(pq.DiagnosticField.SQLSTATE):
                raise psycopg.OperationalError(result.get_error_message() or "the connection was lost")
            raise psycopg.errors.error_from_result(result, encoding=raw.info.encoding)
        row = json.loads(result.get_value(0, 0)) if result.ntuples else None
    if connection.queries_logged:  # as Django's debug cursor would record it (tests count queries)
        connection.queries_log.append({"sql": query, "time": f"{time.monotonic() - started:.3f}"})
    return row


def load_sql(name: str, *, sql_dir: Path = SQL_DIR, **identifiers: str) -> sql.Composed:
    """Read <sql_dir>/<name>.sql and fill its {placeholders} with quoted identifiers."""
    text = (sql_dir / f"{name}.sql").read_text()
    return sql.SQL(text).format(**{k: sql.Identifier(v) for k, v in identifiers.items()})


class RunSQLFile(Operation):
    """Run named SQL files (forward, backward) from workspaces/sql; no change to model state.

    The files may use {table} (the db_table of ``model_name`` in ``app_label``),
    {app_role} (the role the web and worker connect as) and {queue_role} (the role the
    worker's claim switches to). ``sql_app`` reads the files from that app's sql/ folder.
    """

    reduces_to_sql = True
    reversible = True

    def __init__(self, forward: str, backward: str, model_name: str | None = None, sql_app: str | None = None):
        self.forward, self.backward, self.model_name, self.sql_app = forward, backward, model_name, sql_app

    def state_forwards(self, app_label, state):
        pass

    def _run(self, app_label, schema_editor, state, file_name):
        from django.apps import apps
        from django.conf import settings

        identifiers = {"app_role": settings.DATABASE_APP_ROLE, "queue_role": settings.DATABASE_QUEUE_ROLE}
        if self.model_name:
            identifiers["table"] = state.apps.get_model(app_label, self.model_name)._meta.db_table
        sql_dir = Path(apps.get_app_config(self.sql_app).path) / "sql" if self.sql_app else SQL_DIR
        statement = load_sql(file_name, sql_dir=sql_dir, **identifiers)
        schema_editor.execute(statement.as_string(schema_editor.connection.connection), params=None)

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        self._run(app_label, schema_editor, to_state, self.forward)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        self._run(app_label, schema_editor, from_state, self.backward)

    def describe(self):
        return f"Run {self.forward}.sql" + (f" on {self.model_name}" if self.model_name else "")

    def deconstruct(self):
        kwargs = {"forward": self.forward, "backward": self.backward}
        if self.model_name:
            kwargs["model_name"] = self.model_name
        if self.sql_app:
            kwargs["sql_app"] = self.sql_app
        return self.__class__.__name__, [], kwargs


class EnableTenantRLS(RunSQLFile):
    """ENABLE and FORCE row-level security on a tenant table, with the workspace policy."""

    def __init__(self, model_name: str):
        super().__init__("tenant_rls_enable", "tenant_rls_disable", model_name=model_name)

    def describe(self):
        return f"Enable workspace row-level security on {self.model_name}"

    def deconstruct(self):
        return self.__class__.__name__, [self.model_name], {}
