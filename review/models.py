from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models

from workspaces.models import TenantModel


class ReviewReason(models.TextChoices):
    LOW_CONFIDENCE = "low_confidence", "Low confidence"
    ALWAYS_REVIEW = "always_review", "Field always reviewed"
    UNGROUNDED = "ungrounded", "Evidence not found"
    CONFLICT = "conflict", "Conflicts with a verified value"
    AUDIT_SAMPLE = "audit_sample", "Audit sample"
    ASSOCIATION = "association", "Deal association"
    FACT_CONFLICT = "fact_conflict", "Deal facts disagree"
    CRM_CONFLICT = "crm_conflict", "CRM write conflict"
    JOB_FAILED = "job_failed", "Job failed"


class ReviewStatus(models.TextChoices):
    OPEN = "open", "Open"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    DISMISSED = "dismissed", "Dismissed"


class ReviewItem(TenantModel):
    Reason = ReviewReason
    Status = ReviewStatus

    thread = models.ForeignKey(
        "threads.Thread", null=True, blank=True, on_delete=models.CASCADE, related_name="review_items"
    )
    field_value = models.ForeignKey(
        "extraction.FieldValue", null=True, blank=True, on_delete=models.CASCADE, related_name="review_items"
    )
    association_candidate = models.ForeignKey(
        "deals.AssociationCandidate", null=True, blank=True, on_delete=models.CASCADE, related_name="review_items"
    )
    reason = models.CharField(max_length=32, choices=ReviewReason.choices)
    # What the item is about, in the form review/services.py documents per reason
    # ("field_value:12", "association:3"...): one open item per subject and reason.
    subject_key = models.CharField(max_length=200, blank=True, default="")
    status = models.CharField(max_length=16, choices=ReviewStatus.choices, default=ReviewStatus.OPEN)
    payload_json = models.JSONField(default=dict, blank=True)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    claimed_until = models.DateTimeField(null=True, blank=True)
    # When the current holder's claim began (opening the item): a decision's seconds are
    # counted from here (the dashboard's median per reviewer).
    claimed_at = models.DateTimeField(null=True, blank=True)
    # Who passed on the item (user ids): it goes behind the others in their queue.
    skipped_by = ArrayField(models.BigIntegerField(), default=list, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    # Bumped by every decision; a decision names the version it saw (optimistic locking).
    version = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            # The review queue: a workspace's open items, newest first.
            models.Index(fields=["workspace", "status", "-created_at"], name="review_ws_status_created"),
            # The queue's capped counts per reason (review/sql/queries.sql, counts_by_reason_capped).
            models.Index(fields=["workspace", "status", "reason"], name="review_ws_status_reason"),
            # review_item_open / review_items_close: an item by its subject, or by a subject prefix.
            models.Index(fields=["subject_key"], name="review_subject_key", opclasses=["varchar_pattern_ops"]),
            # The items someone skipped (few): the end of the queue, the "Skipped (open)" filter
            # and j/k across the border read them without scanning every open item. Queries
            # must say ``~Q(skipped_by=[])`` themselves: PostgreSQL does not infer it from ``@>``.
            models.Index(
                fields=["workspace", "status", "-created_at"],
                name="review_ws_skipped",
                condition=~models.Q(skipped_by=[]),
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(reason__in=ReviewReason.values), name="review_reason_valid"),
            models.CheckConstraint(condition=models.Q(status__in=ReviewStatus.values), name="review_status_valid"),
        ]

    def __str__(self):
        return f"{self.get_reason_display()} ({self.status})"


class DashboardSnapshot(TenantModel):
    """The dashboard's figures that count every open item and the last 30 days of routing
    (review.selectors.dashboard_counts): read by every dashboard view, computed again by the
    ``dashboard_refresh`` job when a view finds them older than DASHBOARD_REFRESH_SECONDS.
    At a million messages counting them took 600 ms a view; the snapshot is one row."""

    figures_json = models.JSONField(default=dict)
    computed_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace"], name="dashboard_snapshot_one_per_workspace")]

    def __str__(self):
        return f"dashboard figures of {self.computed_at:%Y-%m-%d %H:%M:%S}"
