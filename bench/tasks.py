"""The no-op task of bench/queue.py for `runworker` (THREADLINE_EXTRA_TASK_MODULES=bench.tasks)."""

from bench._record import started
from jobs.registry import task


@task("bench.noop", max_attempts=1, timeout=30)
def noop(payload, *, job):
    started("threadline", job.id)
