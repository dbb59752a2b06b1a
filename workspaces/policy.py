"""The workspace policy document: its JSON schema, its defaults and its validation.

Admins edit the policy as JSON. ``policy_validate`` fills in defaults for absent keys and
raises ``PolicyError`` naming the offending key for an unknown key, a wrong type or a
threshold outside 0-1, so a bad document is never saved.
"""

from __future__ import annotations

import copy

import jsonschema

_UNIT = {"type": "number", "minimum": 0, "maximum": 1}
_FIELD_LIST = {"type": "array", "items": {"type": "string", "minLength": 1}, "uniqueItems": True}

POLICY_SCHEMA: dict = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "extractor": {
            "enum": ["rules", "llm"],
            "default": "rules",
            "description": "Which extractor reads threads; llm needs LLM_BASE_URL/LLM_MODEL.",
        },
        "schema": {"type": "string", "minLength": 1, "default": "sales_bant"},
        "min_confidence": {**_UNIT, "default": 0.8, "description": "Below this, a value waits for review."},
        "field_min_confidence": {
            "type": "object",
            "additionalProperties": _UNIT,
            "default": {},
            "description": "Per-field overrides of min_confidence.",
        },
        "always_review_fields": {**_FIELD_LIST, "default": ["budget"]},
        "audit_sample_rate": {**_UNIT, "default": 0.05, "description": "Share of auto-accepted values sent for audit."},
        "auto_link_threshold": {**_UNIT, "default": 0.75},
        "auto_link_margin": {**_UNIT, "default": 0.15},
        "crm": {"enum": ["none", "hubspot", "salesforce"], "default": "none"},
        "crm_mode": {"enum": ["dry_run", "sync"], "default": "dry_run"},
        "undo_window_seconds": {"type": "integer", "minimum": 0, "maximum": 86400, "default": 600},
        "review_claim_seconds": {"type": "integer", "minimum": 30, "maximum": 3600, "default": 300},
        "subject_thread_window_days": {"type": "integer", "minimum": 0, "maximum": 365, "default": 14},
        "readiness_frameworks": {
            "type": "array",
            "items": {"enum": ["bant", "meddic"]},
            "uniqueItems": True,
            "default": ["bant", "meddic"],
        },
    },
}


class PolicyError(ValueError):
    """A policy document that does not fit the schema; ``key`` names where."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}" if key else message)
        self.key = key
        self.message = message


def policy_defaults() -> dict:
    return {key: copy.deepcopy(spec["default"]) for key, spec in POLICY_SCHEMA["properties"].items()}


def policy_validate(document) -> dict:
    """Return the document with defaults filled in, or raise PolicyError for the first problem."""
    if not isinstance(document, dict):
        raise PolicyError("", "the policy must be a JSON object")
    validator = jsonschema.Draft202012Validator(POLICY_SCHEMA)
    errors = sorted(validator.iter_errors(document), key=lambda e: (list(e.absolute_path), e.validator))
    if errors:
        raise _policy_error(errors[0])
    return {**policy_defaults(), **copy.deepcopy(document)}


def _policy_error(error: jsonschema.ValidationError) -> PolicyError:
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "additionalProperties" and error.instance is not None:
        known = set(error.schema.get("properties", {}))
        unknown = sorted(k for k in error.instance if k not in known)
        key = ".".join(filter(None, [path, unknown[0] if unknown else ""]))
        return PolicyError(key, "unknown key")
    if error.validator in ("minimum", "maximum"):
        low, high = error.schema.get("minimum"), error.schema.get("maximum")
        return PolicyError(path, f"must be between {low} and {high}, got {error.instance!r}")
    if error.validator == "type":
        return PolicyError(path, f"must be of type {error.validator_value}, got {error.instance!r}")
    if error.validator == "enum":
        choices = ", ".join(map(str, error.validator_value))
        return PolicyError(path, f"must be one of {choices}, got {error.instance!r}")
    return PolicyError(path, error.message)
