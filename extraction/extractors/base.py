"""The interface every extractor implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from extraction.schemas import Schema


@dataclass(frozen=True)
class MessageInput:
    """What an extractor reads of one message: its reply text and who sent it when."""

    id: int
    reply_text: str
    sent_at: datetime | None = None
    from_email: str = ""
    from_name: str = ""
    internal: bool = False  # sent by the workspace's own team


@dataclass
class Proposal:
    field: str
    value: Any
    confidence: float
    evidence: list[dict] = field(default_factory=list)  # [{message_id, start, end, quote}]


@dataclass
class ExtractionOutput:
    proposals: list[Proposal]
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


class ExtractionError(RuntimeError):
    """The extractor could not produce a result (the run is marked failed with this message)."""


class Extractor(Protocol):
    name: str

    def extract(self, messages: list[MessageInput], schema: Schema) -> ExtractionOutput: ...
