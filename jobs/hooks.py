"""What the queue tells the apps above it, through handlers they register at startup.

The jobs app is below every other app (README, *Architecture*), so it never imports them;
an app that must act when the queue gives up on a job registers a handler here from its
``AppConfig.ready`` (the review app opens a ``job_failed`` item for a person).
"""

from __future__ import annotations

from collections.abc import Callable

_JOB_FAILED: list[Callable[..., None]] = []


def on_job_failed(handler: Callable[..., None]) -> Callable[..., None]:
    """Register ``handler(*, workspace_id, job_id, task, attempts, error)``; idempotent."""
    if handler not in _JOB_FAILED:
        _JOB_FAILED.append(handler)
    return handler


def job_failed_notify(*, workspace_id: int, job_id: int, task: str, attempts: int, error: str) -> None:
    """Called by the worker inside the transaction (and workspace context) that marks the job failed."""
    for handler in _JOB_FAILED:
        handler(workspace_id=workspace_id, job_id=job_id, task=task, attempts=attempts, error=error)
