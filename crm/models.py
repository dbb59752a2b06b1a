from django.db import models

from workspaces.models import TenantModel


class CrmKind(models.TextChoices):
    DRY_RUN = "dry_run", "Dry run"
    HUBSPOT = "hubspot", "HubSpot"
    SALESFORCE = "salesforce", "Salesforce"


class CrmAction(models.TextChoices):
    UPDATE_DEAL = "update_deal", "Update deal properties"
    CREATE_NOTE = "create_note", "Create note"
    UPSERT_CONTACT = "upsert_contact", "Upsert contact"


class CrmWriteStatus(models.TextChoices):
    PLANNED = "planned", "Planned"
    DRY_RUN = "dry_run", "Dry run"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    CONFLICT = "conflict", "Conflict"
    SKIPPED = "skipped", "Skipped"


class CrmWriteLog(TenantModel):
    """The write ledger: committed before any network call; one row per idempotency key."""

    Crm = CrmKind
    Action = CrmAction
    Status = CrmWriteStatus

    thread = models.ForeignKey(
        "threads.Thread", null=True, blank=True, on_delete=models.SET_NULL, related_name="crm_writes"
    )
    deal = models.ForeignKey("deals.Deal", null=True, blank=True, on_delete=models.SET_NULL, related_name="crm_writes")
    crm = models.CharField(max_length=16, choices=CrmKind.choices)
    action = models.CharField(max_length=32, choices=CrmAction.choices)
    target = models.CharField(max_length=200, blank=True, help_text="The CRM object written to.")
    idempotency_key = models.CharField(max_length=200)
    payload_hash = models.CharField(max_length=64)
    payload_json = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=CrmWriteStatus.choices, default=CrmWriteStatus.PLANNED)
    response_json = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # The lease of the sender that holds a "sending" row (crm/services.py): one sender at a
    # time; another takes over only after ``lease_expires_at`` (database clock), and only the
    # owner of the current lease may record the outcome.
    lease_owner = models.CharField(max_length=64, blank=True, help_text="Token of the claim that holds the row.")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "CRM write"
        indexes = [
            # The write log of a thread, newest first.
            models.Index(fields=["thread", "-created_at"], name="crmwrite_thread_created"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "idempotency_key"], name="crmwrite_one_per_key"),
            models.CheckConstraint(condition=models.Q(crm__in=CrmKind.values), name="crmwrite_crm_valid"),
            models.CheckConstraint(condition=models.Q(action__in=CrmAction.values), name="crmwrite_action_valid"),
            models.CheckConstraint(condition=models.Q(status__in=CrmWriteStatus.values), name="crmwrite_status_valid"),
            # A lease always names its owner (the fencing token outcomes are recorded against).
            models.CheckConstraint(
                condition=models.Q(lease_expires_at__isnull=True) | ~models.Q(lease_owner=""),
                name="crmwrite_lease_owned",
            ),
        ]

    def __str__(self):
        return f"{self.crm} {self.action} {self.idempotency_key}"


class CrmConnection(TenantModel):
    """A workspace's credentials for one CRM. The secret is Fernet-encrypted with
    ``settings.CRM_CREDENTIALS_KEY`` (crm/credentials.py) and never shown or logged."""

    crm = models.CharField(max_length=16, choices=[("hubspot", "HubSpot"), ("salesforce", "Salesforce")])
    secret_encrypted = models.TextField(blank=True, help_text="Fernet token of the access token; never shown.")
    instance_url = models.URLField(blank=True, help_text="Salesforce: the org's instance URL.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "CRM connection"
        constraints = [
            models.UniqueConstraint(fields=["workspace", "crm"], name="crmconnection_one_per_crm"),
            models.CheckConstraint(
                condition=models.Q(crm__in=["hubspot", "salesforce"]), name="crmconnection_crm_valid"
            ),
        ]

    def __str__(self):
        return f"{self.get_crm_display()} connection"

    def __repr__(self):
        return f"<CrmConnection {self.pk} {self.crm}>"  # never the secret
