"""Where the bench's no-op handlers note when they started: one line per job, per process."""

import os
import time

_out = None


def started(system: str, job_id: int) -> None:
    global _out
    if _out is None:
        _out = open(os.path.join(os.environ["BENCH_OUT"], f"{system}-{os.getpid()}.txt"), "a", buffering=1)  # noqa: SIM115
    _out.write(f"{job_id} {time.time()}\n")
