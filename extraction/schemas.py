"""Extraction schemas as data, versioned.

A schema is a list of fields, each with a key, a type, a description and whether it is
required. Runs record the schema's id and version, so a value can always be read against
the definition it was extracted with. A new version is a new entry; old ones stay.
"""

from __future__ import annotations

from dataclasses import dataclass, field

FIELD_TYPES = ("money", "date", "person", "text", "enum", "email", "phone", "number", "list")


@dataclass(frozen=True)
class FieldSpec:
    key: str
    type: str
    description: str
    required: bool = False
    choices: tuple[str, ...] = ()

    def __post_init__(self):
        if self.type not in FIELD_TYPES:
            raise ValueError(f"field {self.key}: unknown type {self.type!r}")


@dataclass(frozen=True)
class Schema:
    id: str
    version: int
    description: str
    fields: tuple[FieldSpec, ...] = field(default_factory=tuple)

    def field(self, key: str) -> FieldSpec:
        for spec in self.fields:
            if spec.key == key:
                return spec
        raise KeyError(f"{self.id} v{self.version} has no field {key!r}")

    @property
    def keys(self) -> list[str]:
        return [spec.key for spec in self.fields]

    def json_schema(self) -> dict:
        """The JSON schema an LLM's structured output must follow for this extraction schema."""
        span = {
            "type": "object",
            "properties": {
                "message_id": {"type": "integer"},
                "quote": {"type": "string"},
                "start": {"type": "integer"},
                "end": {"type": "integer"},
            },
            "required": ["message_id", "quote", "start", "end"],
            "additionalProperties": False,
        }
        value = {
            "type": "object",
            "properties": {
                "field": {"type": "string", "enum": self.keys},
                "value": {"type": ["string", "number", "array", "object", "null"]},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                "evidence": {"type": "array", "items": span},
            },
            "required": ["field", "value", "confidence", "evidence"],
            "additionalProperties": False,
        }
        return {
            "type": "object",
            "properties": {"values": {"type": "array", "items": value}},
            "required": ["values"],
            "additionalProperties": False,
        }


SALES_BANT_V1 = Schema(
    id="sales_bant",
    version=1,
    description="Budget, authority, need and timeline of a B2B sales conversation, with its people and next step.",
    fields=(
        FieldSpec(
            "budget", "money", "The money the buyer has or will spend: {amount, currency} or a {min, max} range.", True
        ),
        FieldSpec("authority", "person", "Who decides or must sign off: {name, title}.", True),
        FieldSpec("need", "text", "The buyer's pain or the problem they want solved, in their words.", True),
        FieldSpec("timeline", "date", "When the buyer wants to decide, buy or go live: an ISO date.", True),
        FieldSpec("company", "text", "The buyer's company."),
        FieldSpec("contact_name", "person", "The buyer-side contact writing in the thread."),
        FieldSpec("contact_title", "text", "The contact's job title."),
        FieldSpec("next_step", "text", "The agreed or proposed next step."),
        FieldSpec("competitors", "list", "Other vendors the buyer is evaluating or uses today."),
    ),
)

SCHEMAS: dict[tuple[str, int], Schema] = {(s.id, s.version): s for s in (SALES_BANT_V1,)}


def schema_get(schema_id: str, version: int | None = None) -> Schema:
    """A schema by id, at a version or its latest."""
    versions = sorted(v for (sid, v) in SCHEMAS if sid == schema_id)
    if not versions:
        raise KeyError(f"unknown extraction schema {schema_id!r}")
    return SCHEMAS[(schema_id, version if version is not None else versions[-1])]
