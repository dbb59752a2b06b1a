"""The same no-op task for procrastinate, on the same database (bench/queue.py)."""

import os

import procrastinate

from bench._record import started

app = procrastinate.App(
    connector=procrastinate.PsycopgConnector(conninfo=os.environ.get("BENCH_PROCRASTINATE_DSN", ""))
)


@app.task(name="bench_noop", pass_context=True)
def noop(context):
    started("procrastinate", context.job.id)
