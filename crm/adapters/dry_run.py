"""The default adapter: no network; it records what would have been sent."""

from __future__ import annotations

from crm.adapters.base import CrmAdapter


class DryRunAdapter(CrmAdapter):
    name = "dry_run"

    def __init__(self):
        self.recorded: list[dict] = []

    def list_deals(self, *, since=None):
        return iter(())

    def get_deal(self, deal_id: str):
        return None

    def apply(self, *, action: str, target: str, payload: dict, key: str) -> dict:
        self.recorded.append({"action": action, "target": target, "payload": payload, "key": key})
        return {"dry_run": True, "would_send": {"action": action, "target": target, "payload": payload}}

    def find_write(self, *, action: str, target: str, payload: dict, key: str):
        return None
