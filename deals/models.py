from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models

from workspaces.models import TenantModel

CRM_CHOICES = [("hubspot", "HubSpot"), ("salesforce", "Salesforce"), ("csv", "CSV import")]


class Deal(TenantModel):
    """A mirror of a CRM deal or opportunity."""

    crm = models.CharField(max_length=16, choices=CRM_CHOICES)
    crm_deal_id = models.CharField(max_length=200)
    title = models.CharField(max_length=500)
    stage = models.CharField(max_length=100, blank=True)
    stage_label = models.CharField(
        max_length=200, blank=True, help_text="The stage as the CRM shows it, when its id is not a label (HubSpot)."
    )
    is_closed = models.BooleanField(default=False)
    primary_domain = models.CharField(max_length=253, blank=True)
    contact_emails = ArrayField(models.CharField(max_length=320), default=list, blank=True)
    owner_user_id = models.CharField(max_length=200, blank=True, help_text="The owner's id in the CRM.")
    owner_email = models.CharField(max_length=320, blank=True)
    amount = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    close_date = models.DateField(null=True, blank=True)
    crm_updated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["workspace"], name="deal_workspace")]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "crm", "crm_deal_id"], name="deal_one_per_crm_id"),
            models.CheckConstraint(condition=models.Q(crm__in=[c[0] for c in CRM_CHOICES]), name="deal_crm_valid"),
        ]

    def __str__(self):
        return self.title


class ThreadLink(TenantModel):
    class LinkedBy(models.TextChoices):
        AUTO = "auto", "Automatic"
        REVIEWER = "reviewer", "Reviewer"

    # One deal link per thread.
    thread = models.OneToOneField("threads.Thread", on_delete=models.CASCADE, related_name="deal_link")
    deal = models.ForeignKey(Deal, on_delete=models.CASCADE, related_name="thread_links")
    link_confidence = models.FloatField()
    link_reason = models.TextField()
    linked_by = models.CharField(max_length=16, choices=LinkedBy.choices, default=LinkedBy.AUTO)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(link_confidence__gte=0, link_confidence__lte=1), name="threadlink_confidence_unit"
            ),
            models.CheckConstraint(
                condition=models.Q(linked_by__in=["auto", "reviewer"]), name="threadlink_linked_by_valid"
            ),
        ]

    def __str__(self):
        return f"thread {self.thread_id} → deal {self.deal_id}"


class AssociationCandidate(TenantModel):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        RESOLVED = "resolved", "Resolved"
        DISMISSED = "dismissed", "Dismissed"

    thread = models.ForeignKey("threads.Thread", on_delete=models.CASCADE, related_name="association_candidates")
    candidates_json = models.JSONField(default=list, help_text="[{deal_id, score, signals: {name: score}}]")

    class Decision(models.TextChoices):
        DEAL = "deal", "Linked to a deal"
        NONE = "none", "No deal"
        NEW_DEAL = "new_deal", "A new deal is needed"

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    decision = models.CharField(max_length=16, choices=Decision.choices, blank=True)
    chosen_deal = models.ForeignKey(Deal, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            # Open candidates of a thread, looked up before linking again.
            models.Index(fields=["thread", "status"], name="assoc_thread_status"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=["open", "resolved", "dismissed"]), name="assoc_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(decision__in=["", "deal", "none", "new_deal"]), name="assoc_decision_valid"
            ),
        ]

    def __str__(self):
        return f"candidates for thread {self.thread_id} ({self.status})"


class DealFact(TenantModel):
    class Status(models.TextChoices):
        CURRENT = "current", "Current"
        SUPERSEDED = "superseded", "Superseded"

    deal = models.ForeignKey(Deal, on_delete=models.CASCADE, related_name="facts")
    key = models.CharField(max_length=100)
    value_json = models.JSONField()
    confidence = models.FloatField()
    confirmed = models.BooleanField(default=False, help_text="A person verified the value behind it.")
    evidence_json = models.JSONField(default=list, blank=True)
    source_field_value = models.ForeignKey(
        "extraction.FieldValue", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CURRENT)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["deal"], name="dealfact_deal")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(confidence__gte=0, confidence__lte=1), name="dealfact_confidence_unit"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["current", "superseded"]), name="dealfact_status_valid"
            ),
        ]

    def __str__(self):
        return f"{self.key} of deal {self.deal_id}"


class DealReadiness(TenantModel):
    deal = models.ForeignKey(Deal, on_delete=models.CASCADE, related_name="readiness")
    framework = models.CharField(max_length=32)
    missing_keys = models.JSONField(default=list, blank=True)
    key_states_json = models.JSONField(default=dict, blank=True, help_text="{key: missing|suggested|confirmed}")
    readiness_score = models.FloatField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "deal readiness"
        constraints = [
            models.UniqueConstraint(fields=["deal", "framework"], name="readiness_one_per_framework"),
            models.CheckConstraint(
                condition=models.Q(readiness_score__gte=0, readiness_score__lte=1), name="readiness_score_unit"
            ),
        ]

    def __str__(self):
        return f"{self.framework} readiness of deal {self.deal_id}"
