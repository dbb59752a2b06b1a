"""Task functions by name: ``@task("extract_thread", max_attempts=5, timeout=300)``.

A handler takes ``(payload: dict, *, job)`` and runs inside its job's workspace context.
With ``atomic=False`` (a handler that waits on the network) it runs outside any
transaction and opens its own short ``workspace_context`` blocks, each committed on exit;
the worker's fenced finish then runs in a transaction of its own.
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


_REGISTRY: dict[str, TaskSpec] = {}
_discovered = False


def task(name: str, *, max_attempts: int = 5, timeout: float = 300.0, atomic: bool = True):
    def register(func: Callable) -> Callable:
        _REGISTRY[name] = TaskSpec(name=name, func=func, max_attempts=max_attempts, timeout=timeout, atomic=atomic)
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
