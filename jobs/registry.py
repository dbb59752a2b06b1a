"""Task functions by name: ``@task("extract_thread", max_attempts=5, timeout=300)``.

A handler takes ``(payload: dict, *, job)`` and runs inside its job's workspace context.
With ``atomic=False`` (a handler that waits on the network) it runs outside any
transaction and opens its own short ``workspace_context`` blocks, each committed on exit;
the worker's fenced finish then runs in a transaction of its own.

``batch=N`` with ``many=func``: the worker claims up to N due jobs of the task in one
workspace at once and calls ``many(jobs)`` (a list of ``jobs.worker.ClaimedJob``; same
transaction rules as the handler), then finishes them together. If ``many`` raises, the
batch's jobs are run again one at a time through the handler, so a bad one fails alone.
``JOBS_BATCH_MAX`` caps N (1: no batching).
The worker imports every installed app's ``tasks`` module (``autodiscover``), plus the
modules named in ``settings.JOBS_EXTRA_TASK_MODULES``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module


@dataclass(frozen=True)
class TaskSpec:
    name: str
    func: Callable
    max_attempts: int
    timeout: float
    atomic: bool = True
    batch: int = 1  # most jobs of this task (one workspace) claimed and run together, with ``many``
    many: Callable | None = None  # many(jobs: list[ClaimedJob]) -> None


class BatchDeclined(Exception):
    """Raised by a ``many`` handler before it does anything: run these jobs one at a time."""


_REGISTRY: dict[str, TaskSpec] = {}
_discovered = False


def task(
    name: str,
    *,
    max_attempts: int = 5,
    timeout: float = 300.0,
    atomic: bool = True,
    batch: int = 1,
    many: Callable | None = None,
):
    if batch > 1 and many is None:
        raise ValueError(f"task {name!r}: batch={batch} needs a many= handler for the batch")

    def register(func: Callable) -> Callable:
        _REGISTRY[name] = TaskSpec(
            name=name,
            func=func,
            max_attempts=max_attempts,
            timeout=timeout,
            atomic=atomic,
            batch=max(1, batch) if many else 1,
            many=many,
        )
        return func

    return register


def task_get(name: str) -> TaskSpec | None:
    """The task registered under ``name``; the first miss imports every app's tasks module,
    so that a web process (which never ran ``autodiscover``) sees per-task max attempts."""
    if name not in _REGISTRY and not _discovered:
        autodiscover()
    return _REGISTRY.get(name)


def task_names() -> list[str]:
    return sorted(_REGISTRY)


def autodiscover() -> list[str]:
    """Import ``<app>.tasks`` for every installed app and the extra task modules."""
    global _discovered
    from django.conf import settings
    from django.utils.module_loading import autodiscover_modules

    _discovered = True
    autodiscover_modules("tasks")
    for module in getattr(settings, "JOBS_EXTRA_TASK_MODULES", []):
        import_module(module)
    return task_names()
