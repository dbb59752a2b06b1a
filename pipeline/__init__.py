"""The flow from mail to the CRM: every transition between stages, in ``pipeline.stages``."""
