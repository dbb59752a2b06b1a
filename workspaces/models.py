from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models.expressions import RawSQL

from workspaces.policy import policy_defaults


class Workspace(models.Model):
    """A tenant: one sales team. Not itself under RLS: it is the key every tenant row carries."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    internal_domains = ArrayField(
        models.CharField(max_length=253),
        default=list,
        blank=True,
        help_text="Email domains of the team itself; everyone else in a thread is a contact.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class TenantModel(models.Model):
    """Every tenant table carries its own workspace_id, which its RLS policy checks."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")

    class Meta:
        abstract = True


class Membership(TenantModel):
    class Role(models.TextChoices):
        ADMIN = "admin", "Admin"
        REVIEWER = "reviewer", "Reviewer"
        VIEWER = "viewer", "Viewer"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "user"], name="membership_one_per_user"),
            models.CheckConstraint(
                condition=models.Q(role__in=["admin", "reviewer", "viewer"]), name="membership_role_valid"
            ),
        ]

    def __str__(self):
        return f"{self.user} in {self.workspace_id} ({self.role})"

    @property
    def can_decide(self) -> bool:
        return self.role in (self.Role.ADMIN, self.Role.REVIEWER)


class Policy(TenantModel):
    """The workspace's policy: a JSON document validated against workspaces.policy.POLICY_SCHEMA."""

    # One policy per workspace: the unique workspace_id is the natural key.
    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, related_name="policy")
    policy = models.JSONField(default=policy_defaults)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name_plural = "policies"

    def __str__(self):
        return f"Policy of workspace {self.workspace_id}"


class AuditEvent(TenantModel):
    """Append-only: the app role has no UPDATE or DELETE on this table (migration 0002).

    thread_id and job_id are plain columns, not foreign keys: the log outlives what it records.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="+")
    thread_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    job_id = models.BigIntegerField(null=True, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    type = models.CharField(max_length=64)
    data_json = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # The review item the event is about (``data_json["review_item_id"]``), kept by PostgreSQL
    # as a column of its own: an item's history in the console looks it up by this index. An
    # index on the JSON expression is never used under row-level security, since jsonb's
    # ``=`` is not LEAKPROOF and so may not run before the policy's workspace check; bigint's is.
    review_item_id = models.GeneratedField(
        expression=RawSQL(
            "CASE WHEN (data_json ->> 'review_item_id') ~ '^[0-9]{1,18}$' "
            "THEN (data_json ->> 'review_item_id')::bigint END",
            (),
        ),
        output_field=models.BigIntegerField(null=True),
        db_persist=True,
    )

    class Meta:
        indexes = [
            # The audit tab of a workspace, newest first.
            models.Index(fields=["workspace", "-created_at"], name="audit_ws_created"),
            # An item's history in the console: the events naming the review item, in order.
            models.Index(fields=["workspace", "review_item_id", "created_at"], name="audit_ws_review_item"),
        ]

    def __str__(self):
        return f"{self.type} at {self.created_at:%Y-%m-%d %H:%M}"
