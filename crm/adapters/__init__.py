"""CRM adapters behind one interface (base.CrmAdapter); ``adapter_for`` picks one."""

from crm.adapters.base import CrmAdapter, CrmClientError, CrmTransientError, DealRecord, adapter_for

__all__ = ["CrmAdapter", "CrmClientError", "CrmTransientError", "DealRecord", "adapter_for"]
