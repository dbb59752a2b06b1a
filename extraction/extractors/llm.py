"""The LLM extractor: any OpenAI-compatible chat-completions service, through the official client.

Configured by environment (``LLM_BASE_URL``, ``LLM_API_KEY``, ``LLM_MODEL``); works with
OpenAI, Azure OpenAI's v1 endpoint, vLLM, Ollama and LM Studio. The model answers with JSON
that follows the schema's JSON schema (structured output); values come back as text and are
normalized by the same parsers the rules extractor uses, so both give values of one shape.
Timeouts and retries are the client's (429 and 5xx retried with backoff honouring
Retry-After); what still fails raises ExtractionError, and the job queue retries later.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime

import openai
from django.conf import settings

from extraction.extractors import rules
from extraction.extractors.base import ExtractionError, ExtractionOutput, MessageInput, Proposal
from extraction.schemas import Schema

SYSTEM_PROMPT = """You extract sales qualification facts from an email thread.
Return JSON only, following the given JSON schema. For each field you can support from the
text, give the value as plain text, a confidence between 0 and 1, and evidence: the exact
quote from one message (copied character for character) with that message's id and the
quote's start and end character offsets in that message's text. Leave out fields the
thread does not support. Never invent a quote.

Fields:
{fields}"""


@dataclass(frozen=True)
class LLMConfig:
    base_url: str
    api_key: str
    model: str
    timeout: float = 30.0
    max_retries: int = 3
    price_input_per_mtok: float = 0.0
    price_output_per_mtok: float = 0.0

    @classmethod
    def from_settings(cls) -> LLMConfig | None:
        """The configuration, or None when no model is configured (the rules extractor is used)."""
        if not (settings.LLM_BASE_URL and settings.LLM_MODEL):
            return None
        return cls(
            base_url=settings.LLM_BASE_URL,
            api_key=settings.LLM_API_KEY or "not-needed",
            model=settings.LLM_MODEL,
            timeout=settings.LLM_TIMEOUT_SECONDS,
            max_retries=settings.LLM_MAX_RETRIES,
            price_input_per_mtok=settings.LLM_PRICE_INPUT_PER_MTOK,
            price_output_per_mtok=settings.LLM_PRICE_OUTPUT_PER_MTOK,
        )


def _value_schema(schema: Schema) -> dict:
    """The schema's JSON schema with every value as text (normalized on our side)."""
    document = schema.json_schema()
    item = document["properties"]["values"]["items"]
    item["properties"]["value"] = {"type": "string"}
    return document


class LLMExtractor:
    name = "llm"

    def __init__(self, config: LLMConfig):
        self.config = config
        self.client = openai.OpenAI(
            base_url=config.base_url, api_key=config.api_key, timeout=config.timeout, max_retries=config.max_retries
        )

    def extract(self, messages: list[MessageInput], schema: Schema) -> ExtractionOutput:
        fields = "\n".join(f"- {f.key} ({f.type}): {f.description}" for f in schema.fields)
        thread = [
            {
                "id": m.id,
                "from": m.from_email,
                "date": m.sent_at.isoformat() if m.sent_at else None,
                "text": m.reply_text,
            }
            for m in messages
        ]
        request = {
            "model": self.config.model,
            "temperature": 0,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT.format(fields=fields)},
                {"role": "user", "content": json.dumps({"messages": thread}, ensure_ascii=False)},
            ],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": f"{schema.id}_v{schema.version}", "schema": _value_schema(schema)},
            },
        }
        try:
            response = self.client.chat.completions.create(**request)
        except openai.APITimeoutError as exc:
            raise ExtractionError(f"LLM timed out after {self.config.timeout:g}s ({self.config.base_url})") from exc
        except openai.RateLimitError as exc:
            raise ExtractionError(f"LLM rate limit still exceeded after {self.config.max_retries} retries") from exc
        except openai.APIStatusError as exc:
            raise ExtractionError(f"LLM answered HTTP {exc.status_code}: {_short(exc.message)}") from exc
        except openai.APIConnectionError as exc:
            raise ExtractionError(f"LLM unreachable at {self.config.base_url}: {_short(str(exc))}") from exc
        usage = response.usage
        prompt_tokens = usage.prompt_tokens if usage else 0
        completion_tokens = usage.completion_tokens if usage else 0
        content = response.choices[0].message.content if response.choices else None
        proposals = _proposals(content, schema, _latest_date(messages))
        cost = (
            prompt_tokens * self.config.price_input_per_mtok + completion_tokens * self.config.price_output_per_mtok
        ) / 1e6
        return ExtractionOutput(
            proposals=proposals,
            model=response.model or self.config.model,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost_usd=cost,
        )


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _latest_date(messages: list[MessageInput]) -> datetime:
    dates = [m.sent_at for m in messages if m.sent_at]
    return max(dates) if dates else datetime.now()


def _proposals(content: str | None, schema: Schema, base: datetime) -> list[Proposal]:
    if not content:
        raise ExtractionError("LLM returned an empty answer")
    try:
        document = json.loads(content)
    except json.JSONDecodeError as exc:
        raise ExtractionError(
            f"LLM returned malformed JSON ({exc.msg} at char {exc.pos}): {_short(content, 80)}"
        ) from exc
    items = document.get("values") if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise ExtractionError("LLM answer has no 'values' list")
    proposals = []
    for item in items:
        if not isinstance(item, dict) or item.get("field") not in schema.keys:
            continue
        spec = schema.field(item["field"])
        value = normalize_value(spec.type, str(item.get("value") or ""), base)
        if value is None:
            continue
        confidence = _unit(item.get("confidence"))
        evidence = [e for e in item.get("evidence") or [] if isinstance(e, dict)]
        proposals.append(Proposal(spec.key, value, confidence, evidence))
    return proposals


def _unit(value) -> float:
    try:
        return min(1.0, max(0.0, float(value)))
    except (TypeError, ValueError):
        return 0.0


def normalize_value(field_type: str, text: str, base: datetime):
    """A value given as text, in the shape the rules extractor gives for that type."""
    text = text.strip()
    if not text:
        return None
    if field_type == "money":
        return _money(text)
    if field_type == "date":
        for match in rules._DATE_EXPR.finditer(text):
            kind = next(k for k in ("q", "md", "m", "iso", "rel") if match.group(k))
            resolved = rules.resolve_date(match.group("expr"), kind, base)
            if resolved:
                return {"date": resolved.isoformat(), "phrase": text}
        return None
    if field_type == "person":
        match = re.match(r"^(?P<name>[^,(]+?)\s*(?:,\s*|\()(?P<title>[^)]+)\)?$", text)
        if match:
            return {"name": match.group("name").strip(), "title": match.group("title").strip()}
        return (
            {"name": None, "title": text} if re.fullmatch(rules._TITLE, text, re.I) else {"name": text, "title": None}
        )
    if field_type == "list":
        return [part.strip() for part in re.split(r"\s*(?:,|;|\band\b)\s*", text) if part.strip()]
    if field_type == "number":
        try:
            return float(text.replace(",", ""))
        except ValueError:
            return None
    return text


def _money(text: str):
    for match in rules._RANGE_RE.finditer(text):
        groups = match.groupdict()
        low, high = rules._amount(groups, "a_", bare=True), rules._amount(groups, "b_", bare=True)
        if low and high and high[0] >= low[0] > 0:
            return {"min": low[0], "max": high[0], "currency": high[1] or low[1] or "USD"}
    for match in rules._AMOUNT_RE.finditer(text):
        parsed = rules._amount(match.groupdict(), bare=True)
        if parsed and parsed[0] > 0:
            return {"amount": parsed[0], "currency": parsed[1] or "USD"}
    return None
