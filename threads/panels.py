"""What the apps above threads show on a thread's page, registered at startup.

A thread's page is threads', but its values (extraction), their review items (review) and
its deal (deals) belong to apps above it, which threads may not import. Each registers a
panel in its ``AppConfig.ready``: a function of the thread that returns the context of its
template, or None when it has nothing to show. Panels render in their ``order``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Panel:
    name: str
    template: str
    build: Callable  # (thread) -> dict | None
    order: int = 100


_PANELS: dict[str, Panel] = {}


def thread_panel_register(*, name: str, template: str, build: Callable, order: int = 100) -> None:
    """Show ``template`` on every thread page, with ``build(thread)`` as its ``panel``."""
    _PANELS[name] = Panel(name, template, build, order)


def thread_panels(*, thread) -> list[dict]:
    """The registered panels that have something to show for ``thread``, in order."""
    shown = []
    for panel in sorted(_PANELS.values(), key=lambda p: (p.order, p.name)):
        context = panel.build(thread)
        if context is not None:
            shown.append({"name": panel.name, "template": panel.template, **context})
    return shown
