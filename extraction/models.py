from django.conf import settings
from django.db import models

from workspaces.models import TenantModel


class ExtractionRun(TenantModel):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    thread = models.ForeignKey("threads.Thread", on_delete=models.CASCADE, related_name="extraction_runs")
    schema_id = models.CharField(max_length=100)
    schema_version = models.PositiveIntegerField()
    extractor = models.CharField(max_length=16, default="rules", help_text="rules or llm")
    model = models.CharField(max_length=200, help_text="The extractor: 'rules' or the LLM's model name.")
    messages_seen = models.PositiveIntegerField(default=0, help_text="Messages of the thread this run read.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["thread", "-created_at"], name="run_thread_created")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=["queued", "running", "succeeded", "failed"]), name="run_status_valid"
            ),
        ]

    def __str__(self):
        return f"{self.schema_id} v{self.schema_version} on thread {self.thread_id}"


class FieldValue(TenantModel):
    class Status(models.TextChoices):
        PROPOSED = "proposed", "Proposed"
        ACCEPTED = "accepted", "Accepted"
        VERIFIED = "verified", "Verified by a person"
        REJECTED = "rejected", "Rejected"
        SUPERSEDED = "superseded", "Superseded"

    run = models.ForeignKey(ExtractionRun, on_delete=models.CASCADE, related_name="values")
    thread = models.ForeignKey("threads.Thread", on_delete=models.CASCADE, related_name="field_values")
    field_key = models.CharField(max_length=100)
    field_value_json = models.JSONField()
    confidence = models.FloatField()
    evidence_json = models.JSONField(default=list, blank=True, help_text="[{message_id, start, end, quote}]")
    grounded = models.BooleanField(default=False, help_text="Every evidence quote was found in its message.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PROPOSED)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            # The current values of a thread's fields (routing and the console's item page).
            models.Index(fields=["thread", "field_key"], name="fieldvalue_thread_key"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(confidence__gte=0, confidence__lte=1), name="fieldvalue_confidence_unit"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["proposed", "accepted", "verified", "rejected", "superseded"]),
                name="fieldvalue_status_valid",
            ),
        ]

    def __str__(self):
        return f"{self.field_key}={self.field_value_json!r}"
