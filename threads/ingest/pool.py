"""Parsing in worker processes, a bounded number of batches at a time.

``mail_import`` stores a batch's raw bytes, hands the batch to ``ParsePool.submit`` and goes
on storing the next one while workers parse; it takes results back in submission order and
never keeps more than ``in_flight`` batches out, so memory does not grow with the mailbox.
The workers are started with ``spawn``: they share nothing with the parent (no database
connection, no threads), and import only ``threads.ingest``.
"""

from __future__ import annotations

import logging
import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from threads.ingest.fields import Parsed, parsed_many

logger = logging.getLogger(__name__)


class ParsePool:
    def __init__(self, workers: int, *, seconds: float, max_depth: int):
        self.workers = workers
        self.seconds, self.max_depth = seconds, max_depth
        self.executor = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
        self.broken = False

    @property
    def in_flight(self) -> int:
        """Batches out at once: one parsing in each worker and one waiting, no more."""
        return self.workers + 1

    def submit(self, items: list[tuple[bytes, str]]) -> Future | None:
        """None when the pool can no longer take work (a worker died): the caller parses itself."""
        if self.broken:
            return None
        try:
            return self.executor.submit(parsed_many, items, self.seconds, self.max_depth)
        except (BrokenProcessPool, RuntimeError) as exc:
            self._broke(exc)
            return None

    def result(self, future: Future | None) -> list[Parsed] | None:
        """A batch's outcomes, or None when its worker died (the caller parses it itself)."""
        if future is None:
            return None
        try:
            return future.result()
        except BrokenProcessPool as exc:
            self._broke(exc)
            return None

    def _broke(self, exc: Exception) -> None:
        if not self.broken:
            logger.warning("the parse pool stopped (%s): parsing goes on in this process", exc)
        self.broken = True

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> ParsePool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
