"""Readiness frameworks as data, and the readiness arithmetic (pure, no database).

A framework is a list of keys, each with a weight and the deal facts that can fill it, in
order of preference. A fact fills a key only if its ``accepts`` test passes (MEDDIC's
metrics take a ``need`` only when it names a number). A key's state is ``confirmed`` when
the fact filling it was verified by a person, ``suggested`` when a machine accepted it, and
``missing`` when no fact fills it.

    readiness_score = sum(weight * credit) / sum(weight)
    credit = 1.0 (confirmed) | the fact's confidence (suggested) | 0 (missing)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

MISSING, SUGGESTED, CONFIRMED = "missing", "suggested", "confirmed"
# The sales_bant fields that become deal facts (the keys frameworks read).
FACT_KEYS = ("budget", "authority", "need", "timeline")


def _any(value) -> bool:
    return value not in (None, "", [], {})


def _has_number(value) -> bool:
    return bool(re.search(r"\d", str(value)))


@dataclass(frozen=True)
class Source:
    fact_key: str
    accepts: Callable[[object], bool] = _any


@dataclass(frozen=True)
class KeySpec:
    key: str
    label: str
    weight: float
    sources: tuple[Source, ...]


@dataclass(frozen=True)
class Framework:
    id: str
    label: str
    keys: tuple[KeySpec, ...]


BANT = Framework(
    "bant",
    "BANT",
    (
        KeySpec("budget", "Budget", 1.0, (Source("budget"),)),
        KeySpec("authority", "Authority", 1.0, (Source("authority"),)),
        KeySpec("need", "Need", 1.0, (Source("need"),)),
        KeySpec("timeline", "Timeline", 1.0, (Source("timeline"),)),
    ),
)

MEDDIC = Framework(
    "meddic",
    "MEDDIC",
    (
        KeySpec("metrics", "Metrics", 1.0, (Source("metrics"), Source("need", _has_number))),
        KeySpec("economic_buyer", "Economic buyer", 1.0, (Source("economic_buyer"), Source("authority"))),
        KeySpec("decision_criteria", "Decision criteria", 1.0, (Source("decision_criteria"),)),
        KeySpec("decision_process", "Decision process", 1.0, (Source("decision_process"),)),
        KeySpec("identify_pain", "Identify pain", 1.0, (Source("identify_pain"), Source("need"))),
        KeySpec("champion", "Champion", 1.0, (Source("champion"),)),
    ),
)

FRAMEWORKS: dict[str, Framework] = {f.id: f for f in (BANT, MEDDIC)}


@dataclass(frozen=True)
class FactView:
    """What readiness needs of a current deal fact."""

    value: object
    confidence: float
    confirmed: bool
    fact_id: int | None = None


@dataclass(frozen=True)
class KeyResult:
    key: str
    state: str
    credit: float
    fact: FactView | None
    source_key: str | None


@dataclass(frozen=True)
class Readiness:
    framework: str
    keys: tuple[KeyResult, ...]
    score: float

    @property
    def missing_keys(self) -> list[str]:
        return [k.key for k in self.keys if k.state == MISSING]

    @property
    def states(self) -> dict[str, str]:
        return {k.key: k.state for k in self.keys}


def readiness_evaluate(framework: Framework, facts: dict[str, FactView]) -> Readiness:
    """Each key's state and credit, and the weighted score, from the deal's current facts."""
    results = []
    for spec in framework.keys:
        fact, source_key = _fill(spec, facts)
        if fact is None:
            results.append(KeyResult(spec.key, MISSING, 0.0, None, None))
        elif fact.confirmed:
            results.append(KeyResult(spec.key, CONFIRMED, 1.0, fact, source_key))
        else:
            results.append(KeyResult(spec.key, SUGGESTED, float(fact.confidence), fact, source_key))
    weights = {spec.key: spec.weight for spec in framework.keys}
    total = sum(weights.values())
    score = sum(weights[r.key] * r.credit for r in results) / total if total else 0.0
    return Readiness(framework.id, tuple(results), round(score, 4))


def _fill(spec: KeySpec, facts: dict[str, FactView]) -> tuple[FactView | None, str | None]:
    for source in spec.sources:
        fact = facts.get(source.fact_key)
        if fact is not None and source.accepts(fact.value):
            return fact, source.fact_key
    return None, None
