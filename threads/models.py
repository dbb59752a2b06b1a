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
        # Stored, not parsed yet: the raw bytes are committed before parsing starts.
        RECEIVED = "received", "Received"
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
    folder = models.CharField(
        max_length=500, blank=True, help_text="The mail folder it was read from (INBOX, Sent, Archive/2024, …)."
    )
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
                condition=models.Q(parse_status__in=["received", "parsed", "failed"]),
                name="message_parse_status_valid",
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


class ThreadTerm(TenantModel):
    """One word a thread can be found by (of its subject, or a participant's address), kept by a
    trigger on threads_thread (threads/sql/thread_terms.sql): thread search finds threads by
    these with a btree range per word. Not an ILIKE over the threads: under row-level security
    neither a trigram nor a full-text index can serve a search (their operators are not
    leakproof), while the range comparisons on text are."""

    # No Django cascade: the database's ON DELETE CASCADE removes a thread's terms with it.
    thread = models.ForeignKey(Thread, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    term = models.CharField(max_length=200, db_collation="C")

    class Meta:
        indexes = [
            # Thread search: the threads with a word starting with the query's (threads/selectors.py).
            models.Index(fields=["workspace", "term", "thread"], name="threadterm_ws_term"),
        ]

    def __str__(self):
        return f"{self.thread_id}: {self.term}"


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
        verbose_name = "IMAP cursor"
        constraints = [
            models.UniqueConstraint(fields=["workspace", "mailbox_key"], name="imapcursor_one_per_mailbox"),
        ]

    def __str__(self):
        return f"{self.mailbox_key} uid {self.last_uid}"


class MessageConflict(TenantModel):
    """A message whose Message-ID was already taken by other content: kept whole until an
    operator decides (keep both as separate messages, or keep only the first)."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        KEPT_BOTH = "kept_both", "Kept both"
        KEPT_EXISTING = "kept_existing", "Kept the first only"

    kept = models.ForeignKey(
        Message, on_delete=models.CASCADE, related_name="conflicts", help_text="The message that has this Message-ID."
    )
    message_id = models.CharField(max_length=998)
    raw = models.BinaryField()
    raw_sha256 = models.CharField(max_length=64)
    raw_size = models.PositiveIntegerField()
    source = models.CharField(max_length=200, blank=True)
    folder = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    resolved_message = models.ForeignKey(
        Message,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="With 'kept both': the message made from this content.",
    )
    resolved_by = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # The same conflicting content twice is one conflict.
            models.UniqueConstraint(fields=["workspace", "message_id", "raw_sha256"], name="conflict_one_per_content"),
            models.CheckConstraint(
                condition=models.Q(status__in=["open", "kept_both", "kept_existing"]), name="conflict_status_valid"
            ),
        ]
        indexes = [models.Index(fields=["workspace", "status", "-created_at"], name="conflict_ws_status")]

    def __str__(self):
        return f"Conflict on {self.message_id}"


class MailImport(TenantModel):
    """One run of ``ingest``, an IMAP poll or an upload: what was read, and every file skipped with its reason."""

    label = models.CharField(max_length=500, blank=True, help_text="The paths or mailbox imported.")
    actor = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    files_seen = models.PositiveIntegerField(default=0)
    files_skipped = models.PositiveIntegerField(default=0)
    messages_read = models.PositiveIntegerField(default=0)
    messages_new = models.PositiveIntegerField(default=0)
    messages_duplicate = models.PositiveIntegerField(default=0)
    messages_conflict = models.PositiveIntegerField(default=0)
    messages_failed = models.PositiveIntegerField(default=0)
    # [{"path": ..., "reason": ...}], the first SKIPPED_LISTED of them; skipped_by_reason counts them all.
    skipped_json = models.JSONField(default=list, blank=True)
    skipped_by_reason = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, help_text="Why the run stopped early, if it did.")

    class Meta:
        indexes = [models.Index(fields=["workspace", "-started_at"], name="mailimport_ws_started")]

    def __str__(self):
        return f"Import {self.pk}: {self.label}"
