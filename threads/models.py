from django.contrib.postgres.fields import ArrayField
from django.db import models

from workspaces.models import TenantModel


class Thread(TenantModel):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"
        ARCHIVED = "archived", "Archived"

    subject = models.CharField(max_length=998, blank=True)
    # RFC 5256 base subject, casefolded: the key subject threading compares.
    base_subject = models.CharField(max_length=998, blank=True)
    primary_contact_email = models.EmailField(max_length=320, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    participants = ArrayField(models.CharField(max_length=320), default=list, blank=True)
    first_message_at = models.DateTimeField(null=True, blank=True)
    last_message_at = models.DateTimeField(null=True, blank=True)
    message_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            # The thread list of a workspace, newest first.
            models.Index(fields=["workspace", "-created_at"], name="thread_ws_created"),
            # The thread list, most recent conversation first (threads/selectors.py, thread_list).
            models.Index(fields=["workspace", "-last_message_at", "-id"], name="thread_ws_last_message"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=["open", "closed", "archived"]), name="thread_status_valid"
            ),
        ]

    def __str__(self):
        return self.subject or f"Thread {self.pk}"


class Message(TenantModel):
    """One received message. ``raw`` is stored before parsing, so nothing received is lost."""

    class ParseStatus(models.TextChoices):
        PARSED = "parsed", "Parsed"
        FAILED = "failed", "Failed"

    # Null only while a message that could not be parsed waits for an operator.
    thread = models.ForeignKey(Thread, null=True, blank=True, on_delete=models.CASCADE, related_name="messages")
    message_id = models.CharField(max_length=998, help_text="Normalized Message-ID, or a content hash id.")
    in_reply_to = models.CharField(max_length=998, blank=True, help_text="The first id of In-Reply-To.")
    in_reply_to_json = models.JSONField(default=list, blank=True)
    references_json = models.JSONField(default=list, blank=True)
    # References and In-Reply-To together, deduplicated; also one MessageReference row each,
    # since under row-level security a GIN index cannot serve && (arrayoverlap is not leakproof).
    related_ids = ArrayField(models.CharField(max_length=998), default=list, blank=True)
    subject = models.CharField(max_length=998, blank=True)
    base_subject = models.CharField(max_length=998, blank=True)
    participants = ArrayField(models.CharField(max_length=320), default=list, blank=True)
    from_email = models.CharField(max_length=320, blank=True)
    from_name = models.CharField(max_length=300, blank=True)
    to_json = models.JSONField(default=list, blank=True)
    cc_json = models.JSONField(default=list, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    text = models.TextField(blank=True)
    html = models.TextField(blank=True)
    reply_text = models.TextField(blank=True)
    headers_json = models.JSONField(default=dict, blank=True)
    raw = models.BinaryField()
    raw_sha256 = models.CharField(max_length=64)
    raw_size = models.PositiveIntegerField()
    parse_status = models.CharField(max_length=16, choices=ParseStatus.choices, default=ParseStatus.PARSED)
    parse_error = models.TextField(blank=True)
    source = models.CharField(max_length=200, blank=True, help_text="Where it came from: file, mbox, inbound, imap.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            # Threading looks up parents and children by Message-ID.
            models.Index(fields=["message_id"], name="message_message_id"),
            # A thread's messages in order.
            models.Index(fields=["thread", "-created_at"], name="message_thread_created"),
            # Subject threading of messages without references (threads/ingest/threading.py).
            models.Index(
                fields=["workspace", "base_subject"],
                name="message_ws_base_subject",
                condition=models.Q(related_ids=[]),
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "message_id"], name="message_one_per_message_id"),
            models.CheckConstraint(
                condition=models.Q(parse_status__in=["parsed", "failed"]), name="message_parse_status_valid"
            ),
        ]

    def __str__(self):
        return self.subject or self.message_id


class Attachment(TenantModel):
    """Attachment metadata; the content itself in Django's storage, up to a size limit."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attachments")
    filename = models.CharField(max_length=500, blank=True)
    content_type = models.CharField(max_length=200)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    file = models.FileField(upload_to="attachments/%Y/%m/", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.filename or f"attachment {self.pk}"


class MessageReference(TenantModel):
    """One id that a message names in References or In-Reply-To: who points at whom, indexed."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="reference_rows")
    ref_id = models.CharField(max_length=998)

    class Meta:
        indexes = [
            # Threading: the messages that name a given id (threads/ingest/threading.py, _linked_thread_ids).
            models.Index(fields=["workspace", "ref_id"], name="messageref_ws_ref"),
        ]

    def __str__(self):
        return f"{self.message_id} -> {self.ref_id}"


class InboundToken(TenantModel):
    """The secret of a workspace's HTTP inbound endpoint, kept only as its sha256."""

    workspace = models.OneToOneField("workspaces.Workspace", on_delete=models.CASCADE, related_name="+")
    token_sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"Inbound token of workspace {self.workspace_id}"


class ImapCursor(TenantModel):
    """How far ``poll_imap`` has read one mailbox: UIDs are only comparable within a UIDVALIDITY."""

    mailbox_key = models.CharField(max_length=500, help_text="user@host:port/mailbox")
    uidvalidity = models.BigIntegerField(default=0)
    last_uid = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "mailbox_key"], name="imapcursor_one_per_mailbox"),
        ]

    def __str__(self):
        return f"{self.mailbox_key} uid {self.last_uid}"
