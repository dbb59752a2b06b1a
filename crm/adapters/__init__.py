"""CRM adapters behind one interface (base.CrmAdapter); ``adapter_for`` picks one."""

from crm.adapters.base import CrmAdapter, CrmClientError, CrmTransientError, DealRecord
from crm.adapters.dry_run import DryRunAdapter
from crm.adapters.hubspot import HubSpotAdapter
from crm.adapters.salesforce import SalesforceAdapter
from crm.credentials import secret_decrypt

__all__ = ["CrmAdapter", "CrmClientError", "CrmTransientError", "DealRecord", "adapter_for"]


def adapter_for(*, crm: str, connection=None) -> CrmAdapter:
    """The adapter of a CRM kind; ``dry_run`` needs no connection."""
    if crm == "dry_run" or crm == "none":
        return DryRunAdapter()
    if connection is None or not connection.secret_encrypted:
        raise CrmClientError(0, f"no {crm} credentials are set for this workspace (manage.py crm_connect)")
    token = secret_decrypt(connection.secret_encrypted)
    if crm == "hubspot":
        return HubSpotAdapter(token=token)
    if crm == "salesforce":
        return SalesforceAdapter(token=token, instance_url=connection.instance_url)
    raise ValueError(f"unknown CRM {crm!r}")
