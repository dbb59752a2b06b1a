"""Evaluation of an extractor on labelled threads: per-field precision, recall, F1, grounding.

The labelled set is JSONL, one thread a line:
``{"id", "internal_domains", "messages": [{"id", "from", "date", "text"}], "expected": {field: value}}``.
In ``expected`` a field set to null means the thread does not support it (a proposal is a
false positive); a field left out is not scored for that thread.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from email.utils import parseaddr
from pathlib import Path

from rapidfuzz import fuzz

from extraction.extractors.base import MessageInput, Proposal
from extraction.grounding import evidence_ground
from extraction.schemas import Schema


@dataclass
class FieldScore:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass
class EvalReport:
    fields: dict[str, FieldScore] = field(default_factory=dict)
    proposals: int = 0
    grounded: int = 0
    threads: int = 0
    mistakes: list[str] = field(default_factory=list)

    @property
    def grounding_rate(self) -> float:
        return self.grounded / self.proposals if self.proposals else 1.0

    def table(self) -> str:
        lines = [f"{'field':<15} {'tp':>4} {'fp':>4} {'fn':>4} {'precision':>10} {'recall':>8} {'f1':>6}"]
        total = FieldScore()
        for key, score in self.fields.items():
            total.tp, total.fp, total.fn = total.tp + score.tp, total.fp + score.fp, total.fn + score.fn
            lines.append(
                f"{key:<15} {score.tp:>4} {score.fp:>4} {score.fn:>4} {score.precision:>10.2f} {score.recall:>8.2f} {score.f1:>6.2f}"
            )
        lines.append(
            f"{'all (micro)':<15} {total.tp:>4} {total.fp:>4} {total.fn:>4} {total.precision:>10.2f} {total.recall:>8.2f} {total.f1:>6.2f}"
        )
        lines.append(
            f"threads: {self.threads}   proposals: {self.proposals}   grounding rate: {self.grounding_rate:.2%}"
        )
        return "\n".join(lines)


def load_labelled(path: Path) -> list[dict]:
    rows = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{number}: not JSON ({exc.msg})") from exc
        for key in ("id", "messages", "expected"):
            if key not in row:
                raise ValueError(f"{path}:{number}: missing key {key!r}")
        rows.append(row)
    return rows


def thread_inputs(row: dict, reply_text: Callable[..., str] = lambda text, **_: text) -> list[MessageInput]:
    internal = {d.lower() for d in row.get("internal_domains", [])}
    inputs = []
    for message in row["messages"]:
        name, address = parseaddr(message.get("from", ""))
        sent = datetime.fromisoformat(message["date"]) if message.get("date") else None
        inputs.append(
            MessageInput(
                id=int(message["id"]),
                reply_text=reply_text(message["text"], forwarded=_forward(message.get("subject", ""))),
                sent_at=sent,
                from_email=address.lower(),
                from_name=name,
                internal=address.rpartition("@")[2].lower() in internal,
            )
        )
    return inputs


def _forward(subject: str) -> bool:
    from threads.ingest.reply import is_forward

    return is_forward(subject)


def evaluate(
    extractor, rows: list[dict], schema: Schema, reply_text: Callable[..., str] = lambda t, **_: t
) -> EvalReport:
    report = EvalReport(fields={key: FieldScore() for key in schema.keys})
    for row in rows:
        messages = thread_inputs(row, reply_text)
        texts = {m.id: m.reply_text for m in messages}
        output = extractor.extract(messages, schema)
        predicted = {p.field: p for p in output.proposals}
        report.threads += 1
        for proposal in output.proposals:
            report.proposals += 1
            report.grounded += evidence_ground(proposal.evidence, texts)[1]
        for key, expected in row["expected"].items():
            if key not in report.fields:
                continue
            _score(report, row["id"], key, expected, predicted.get(key), schema.field(key).type)
    return report


def _score(report: EvalReport, thread_id: str, key: str, expected, proposal: Proposal | None, field_type: str) -> None:
    score = report.fields[key]
    if expected is None:
        if proposal is not None:
            score.fp += 1
            report.mistakes.append(f"{thread_id} {key}: expected nothing, got {proposal.value!r}")
        return
    if proposal is None:
        score.fn += 1
        report.mistakes.append(f"{thread_id} {key}: missed {expected!r}")
    elif values_match(field_type, expected, proposal.value):
        score.tp += 1
    else:
        score.fp += 1
        score.fn += 1
        report.mistakes.append(f"{thread_id} {key}: expected {expected!r}, got {proposal.value!r}")


def values_match(field_type: str, expected, actual) -> bool:
    if field_type == "money":
        return _money_match(expected, actual)
    if field_type == "date":
        got = actual.get("date") if isinstance(actual, dict) else actual
        try:
            return abs((date.fromisoformat(str(got)) - date.fromisoformat(str(expected))).days) <= 3
        except ValueError:
            return False
    if field_type == "person" and isinstance(expected, dict):
        actual = actual if isinstance(actual, dict) else {"name": actual, "title": None}
        return all(_text_match(v, actual.get(k)) for k, v in expected.items())
    if field_type == "person":
        value = actual.get("name") if isinstance(actual, dict) else actual
        return _text_match(expected, value)
    if field_type == "list":
        return {_norm(x) for x in expected} == {_norm(x) for x in (actual or [])}
    return _text_match(expected, actual)


def _money_match(expected: dict, actual) -> bool:
    if not isinstance(actual, dict) or expected.get("currency", "USD") != actual.get("currency"):
        return False
    keys = ("min", "max") if "min" in expected else ("amount",)
    return all(
        actual.get(k) is not None and abs(float(actual[k]) - float(expected[k])) <= 0.02 * float(expected[k])
        for k in keys
    )


def _norm(text) -> str:
    return re.sub(r"\s+", " ", str(text or "")).strip().lower()


def _text_match(expected, actual) -> bool:
    expected, actual = _norm(expected), _norm(actual)
    if not actual:
        return False
    return expected in actual or actual in expected or fuzz.partial_ratio(expected, actual) >= 85
