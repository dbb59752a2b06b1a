"""Task functions by name: ``@task("extract_thread", max_attempts=5, timeout=300)``.

A handler takes ``(payload: dict, *, job)`` and runs inside its job's workspace context.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class TaskSpec:
    name: str
    func: Callable
    max_attempts: int
    timeout: float


_REGISTRY: dict[str, TaskSpec] = {}


def task(name: str, *, max_attempts: int = 5, timeout: float = 300.0):
    def register(func: Callable) -> Callable:
        _REGISTRY[name] = TaskSpec(name=name, func=func, max_attempts=max_attempts, timeout=timeout)
        return func

    return register


def task_get(name: str) -> TaskSpec | None:
    return _REGISTRY.get(name)


def task_names() -> list[str]:
    return sorted(_REGISTRY)
