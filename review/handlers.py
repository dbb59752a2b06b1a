"""How the apps above review take part in it: each registers, at startup, a handler for the
reasons whose subject it owns (``AppConfig.ready``), as tasks register with ``jobs.registry``.

The review app opens, refreshes and closes items (``review.services``) and records who
decided what; what a decision *does* to its subject belongs to the subject's owner:
extraction for values, deals for associations and fact conflicts, crm for write conflicts.
Review never imports those apps; it calls the handler registered for the item's reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


def _nothing(**kwargs) -> dict:
    return {}


@dataclass(frozen=True)
class SubjectHandler:
    """``decide(*, item, decision, value, reviewer, at) -> dict``: carry out an approve, edit,
    reject or associate decision on the item's subject, inside the decision's transaction,
    and return what ``undo(*, item, changes, user)`` needs to put it back. Raising
    ``review.services.ReviewInvalid`` refuses the decision (nothing is changed).
    ``field_type(*, item, policy) -> str``: the value type an edit form asks for ("money", "date"...)."""

    reasons: tuple[str, ...]
    decide: Callable[..., dict] = _nothing
    undo: Callable[..., None] = _nothing
    field_type: Callable[..., str] | None = None


_HANDLERS: dict[str, SubjectHandler] = {}
_FIELD_KEYS: list[Callable[[dict], list[str]]] = []
_DEFAULT = SubjectHandler(reasons=())


def register(handler: SubjectHandler) -> SubjectHandler:
    for reason in handler.reasons:
        _HANDLERS[reason] = handler
    return handler


def handler_for(reason: str) -> SubjectHandler:
    """The registered handler; reasons nobody owns (a failed job) are decided by recording
    the decision alone."""
    return _HANDLERS.get(reason, _DEFAULT)


def register_field_keys(provider: Callable[[dict], list[str]]) -> None:
    """``provider(policy) -> [field key]``: the fields the queue can be filtered by."""
    if provider not in _FIELD_KEYS:
        _FIELD_KEYS.append(provider)


def field_keys(policy: dict) -> list[str]:
    return [key for provider in _FIELD_KEYS for key in provider(policy)]
