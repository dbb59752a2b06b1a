"""A bench's own database on the server the settings point at: created, migrated, vacuumed.

Import this only after ``DATABASE_NAME`` is set to the bench database (before Django starts).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _dsn(conn: dict, dbname: str) -> str:
    dsn = f"host={conn['HOST']} port={conn['PORT']} user={conn['USER']} dbname={dbname}"
    return dsn + (f" password={conn['PASSWORD']}" if conn.get("PASSWORD") else "")


def owner_dsn(dbname: str) -> str:
    """The owner's connection (runs migrations, owns every table) to ``dbname``."""
    from config import settings as cfg

    return _dsn(cfg.DATABASE_OWNER, dbname)


def app_dsn(dbname: str) -> str:
    """The app role's connection (under row-level security) to ``dbname``."""
    from config import settings as cfg

    return _dsn(cfg.DATABASES["default"], dbname)


def database_recreate(dbname: str) -> None:
    """Drop ``dbname`` if it is there, create it as the owner and migrate it (in a subprocess)."""
    import psycopg

    with psycopg.connect(owner_dsn("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{dbname}"')
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, check=True)


def vacuum(dbname: str, *tables: str) -> None:
    """What autovacuum does soon after a bulk load: statistics and the visibility map
    (without it, index-only scans read every heap row). As the owner: the app role may not
    vacuum tables it does not own."""
    import psycopg

    with psycopg.connect(owner_dsn(dbname), autocommit=True) as conn:
        if tables:
            for table in tables:
                conn.execute(f'VACUUM (ANALYZE) "{table}"')
        else:
            conn.execute("VACUUM (ANALYZE)")
