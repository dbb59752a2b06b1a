"""Demo deals for the demo workspace: mirrors of CRM deals the demo mailbox talks about."""

from __future__ import annotations

from datetime import UTC, date, datetime

from deals.services import deal_save

ACTIVE = datetime(2026, 9, 10, tzinfo=UTC)
MAYA, TOM, LEA = "maya.chen@threadline-demo.com", "tom.becker@threadline-demo.com", "lea.martin@threadline-demo.com"

# Two open Northwind deals share a domain: the warehouse thread is the doubtful one.
DEMO_DEALS = [
    ("hs-101", "Northwind support pilot", "northwind-logistics.com", ["priya.raman@northwind-logistics.com"], MAYA),
    ("hs-102", "Northwind warehouse carriers", "northwind-logistics.com", [], MAYA),
    ("hs-103", "Acme renewal and expansion", "acme-industrial.com", ["sara.kim@acme-industrial.com"], TOM),
    ("hs-104", "Globex security rollout", "globex.io", [], LEA),
    ("hs-105", "Initech 200 seats", "initech.example", ["bill@initech.example"], TOM),
    ("hs-106", "Umbrella Health evaluation", "umbrella-health.com", [], LEA),
    ("hs-107", "Stark Energy rollout", "stark-energy.com", ["pepper@stark-energy.com"], MAYA),
    ("hs-108", "Wayne Enterprises intro", "wayne-ent.com", [], TOM),
    ("hs-109", "Hooli procurement", "hooli.example", ["procurement@hooli.example"], LEA),
    ("hs-110", "Soylent renewal", "soylent-foods.com", ["r.thorn@soylent-foods.com"], MAYA),
]


def demo_deals_save(workspace) -> int:
    for crm_id, title, domain, contacts, owner in DEMO_DEALS:
        deal_save(
            workspace_id=workspace.pk,
            crm="hubspot",
            crm_deal_id=crm_id,
            title=title,
            stage="qualifiedtobuy",
            primary_domain=domain,
            contact_emails=contacts,
            owner_email=owner,
            crm_updated_at=ACTIVE,
            close_date=date(2026, 12, 15),
        )
    return len(DEMO_DEALS)
