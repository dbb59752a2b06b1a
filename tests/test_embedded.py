"""The embedded PostgreSQL bootstrap: a data folder that cannot start gives one clear line."""

import errno
import os
import subprocess
import sys
from pathlib import Path

from config.embedded import _diagnose

ROOT = Path(__file__).resolve().parent.parent


def test_corrupt_data_folder_is_one_line_naming_the_folder(tmp_path):
    pgdata = tmp_path / "pg"
    pgdata.mkdir()
    (pgdata / "PG_VERSION").write_text("garbage\n")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DATABASE_OWNER_URL")}
    env["THREADLINE_PGDATA"] = str(pgdata)
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: embedded PostgreSQL in {pgdata} could not start")
    assert "looks corrupt" in lines[0]
    assert "Traceback" not in result.stderr


def test_full_disk_and_held_lock_are_named(tmp_path):
    full = OSError(errno.ENOSPC, "No space left on device")
    assert "the disk is full" in _diagnose(tmp_path, full)

    class Failed(subprocess.CalledProcessError):
        pass

    locked = Failed(1, ["pg_ctl"], stderr='FATAL:  lock file "postmaster.pid" already exists')
    message = _diagnose(tmp_path, locked)
    assert 'lock file "postmaster.pid" already exists' in message
    assert "another server holds this data folder" in message
    assert "\n" not in message
