"""Template filters over ``workspaces.display``: ``{% load values %}``, then ``{{ v|value }}``,
``{{ v|value:"money" }}``, ``{{ deal|deal_stage }}``, ``{{ row.payload_json|payload_fields }}``."""

from django import template

from workspaces import display

register = template.Library()


@register.filter
def value(raw, field_type: str = "") -> str:
    """A stored value for people, in the reader's locale (its type given, or read from its shape)."""
    return display.display(raw, field_type or None)


@register.filter
def number(raw) -> str:
    return display.number(raw)


@register.filter
def when(raw) -> str:
    return display.when(raw)


@register.filter
def deal_stage(deal) -> str:
    """A deal's stage by its CRM label."""
    return display.crm_stage(
        getattr(deal, "stage", ""), crm=getattr(deal, "crm", ""), label=getattr(deal, "stage_label", "")
    )


@register.filter
def payload_fields(payload) -> list[tuple[str, str]]:
    return display.payload_fields(payload)
