"""Real ``manage.py runworker`` processes on the test database, for the end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.db import connection


def worker_env(**extra: str) -> dict:
    """The environment of a child process that uses this test run's database."""
    return {**os.environ, "DATABASE_NAME": connection.settings_dict["NAME"], **extra}


class RunWorker:
    """One ``runworker`` polling every 0.2 s, its output in ``log``; ``stop`` sends SIGTERM
    (the current job finishes) and kills it if it has not exited 20 s later."""

    def __init__(self, log: Path, name: str, env: dict):
        self.log = log
        command = [sys.executable, "manage.py", "runworker", "--worker-id", name, "--poll-seconds", "0.2"]
        with log.open("w") as out:
            self.proc = subprocess.Popen(command, cwd=settings.BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT)

    def tail(self, chars: int = 1500) -> str:
        return self.log.read_text()[-chars:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
