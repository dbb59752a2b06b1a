from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from threads.models import Attachment, ImapCursor, InboundToken, MailImport, Message, MessageConflict, Thread
from threads.selectors import BIG_COLUMNS, body_display_limit, message_body_heads
from threads.services import inbound_token_rotate, message_conflict_resolve, messages_reparse
from workspaces.admin_mixins import ReadOnlyAdmin, WorkspaceScopedAdmin


class MessageInline(admin.TabularInline):
    model = Message
    fields = ("sent_at", "from_email", "subject", "parse_status")
    readonly_fields = fields
    extra = 0
    show_change_link = True
    can_delete = False
    ordering = ("sent_at",)

    def has_add_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).defer(*BIG_COLUMNS)


@admin.register(Thread)
class ThreadAdmin(WorkspaceScopedAdmin):
    list_display = ("subject", "primary_contact_email", "status", "message_count", "last_message_at")
    list_filter = ("status",)
    search_fields = ("subject", "primary_contact_email")
    date_hierarchy = "created_at"
    readonly_fields = ("first_message_at", "last_message_at", "message_count", "participants")
    inlines = [MessageInline]


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    # Operators find the messages that could not be parsed with the parse status filter
    # ("received": stored, but a run stopped before parsing it), and parse them again.
    list_display = ("subject", "from_email", "sent_at", "folder", "parse_status", "parse_error", "source")
    list_filter = ("parse_status",)
    search_fields = ("subject", "from_email", "message_id", "folder")
    # The bodies can be tens of megabytes: the list never loads them, the page shows their start.
    exclude = ("workspace", "raw", "text", "html", "reply_text")
    readonly_fields = ("text_start", "html_start", "downloads")
    list_select_related = ("thread",)
    actions = ["parse_again"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer(*BIG_COLUMNS)

    def has_reparse_permission(self, request):
        return self.has_verb_permission(request, "reparse")

    @admin.action(description="Parse again (failed or received messages)", permissions=["reparse"])
    def parse_again(self, request, queryset):
        summary = messages_reparse(
            workspace=request.workspace, message_pks=list(queryset.values_list("pk", flat=True)), actor=request.user
        )
        self.message_user(
            request,
            f"Parsed again: {summary.new} now parsed, {summary.failed} still failed "
            f"(already parsed messages are left alone).",
            messages.SUCCESS if not summary.failed else messages.WARNING,
        )

    @admin.display(description="Text")
    def text_start(self, obj):
        return self._start(obj, "text")

    @admin.display(description="HTML (as sent, shown as text)")
    def html_start(self, obj):
        return self._start(obj, "html")

    def _start(self, obj, column):
        head, length = message_body_heads(message_id=obj.pk)[column]
        limit = body_display_limit()
        note = f"\n\n[showing the first {limit:,} of {length:,} characters]" if length > limit else ""
        return head + note

    @admin.display(description="Downloads")
    def downloads(self, obj):
        if not obj.workspace_id:
            return "—"
        slug = obj.workspace.slug
        raw = reverse("threads:message-raw", kwargs={"workspace_slug": slug, "message_id": obj.pk})
        text = reverse("threads:message-text", kwargs={"workspace_slug": slug, "message_id": obj.pk})
        return format_html('<a href="{}">Raw message (.eml)</a> · <a href="{}">Whole text</a>', raw, text)


@admin.register(MessageConflict)
class MessageConflictAdmin(ReadOnlyAdmin):
    """A message whose Message-ID another message with other content already has. Kept whole
    until someone decides: keep both (the copy becomes a message of its own) or the first only."""

    list_display = ("message_id", "kept", "status", "raw_size", "source", "folder", "created_at")
    list_filter = ("status",)
    search_fields = ("message_id",)
    exclude = ("workspace", "raw")
    readonly_fields = ("kept", "resolved_message", "resolved_by")
    actions = ["keep_both", "keep_existing"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("raw").select_related("kept")

    def has_resolve_permission(self, request):
        return self.has_verb_permission(request, "resolve")

    def _resolve(self, request, queryset, *, keep_both: bool):
        done = 0
        for conflict in queryset.filter(status=MessageConflict.Status.OPEN):
            message_conflict_resolve(
                workspace=request.workspace, conflict=conflict, keep_both=keep_both, actor=request.user
            )
            done += 1
        self.message_user(request, f"{done} conflict{'s' if done != 1 else ''} resolved (decided ones are skipped).")

    @admin.action(description="Keep both: import the other content as a message of its own", permissions=["resolve"])
    def keep_both(self, request, queryset):
        self._resolve(request, queryset, keep_both=True)

    @admin.action(description="Keep the first message only", permissions=["resolve"])
    def keep_existing(self, request, queryset):
        self._resolve(request, queryset, keep_both=False)


@admin.register(MailImport)
class MailImportAdmin(ReadOnlyAdmin):
    """Every import: what was read, and each file skipped with its reason."""

    list_display = (
        "started_at",
        "label",
        "messages_read",
        "messages_new",
        "messages_duplicate",
        "messages_conflict",
        "messages_failed",
        "files_skipped",
        "finished_at",
    )
    search_fields = ("label",)
    date_hierarchy = "started_at"
    exclude = ("workspace", "skipped_json")
    readonly_fields = ("skipped_files",)

    @admin.display(description="Skipped files")
    def skipped_files(self, obj):
        if not obj.skipped_json:
            return "none"
        rows = format_html_join(
            "", "<li><code>{}</code>: {}</li>", ((s["path"], s["reason"]) for s in obj.skipped_json)
        )
        more = obj.files_skipped - len(obj.skipped_json)
        tail = format_html("<li>… and {} more</li>", more) if more > 0 else ""
        return format_html("<ul>{}{}</ul>", rows, tail)


@admin.register(Attachment)
class AttachmentAdmin(ReadOnlyAdmin):
    list_display = ("filename", "content_type", "size", "sha256")
    search_fields = ("filename", "sha256")
    list_filter = ("content_type",)


@admin.register(InboundToken)
class InboundTokenAdmin(ReadOnlyAdmin):
    """Created or rotated here ("Rotate the token") or with ``manage.py inbound_token``; only
    the hash is kept, so the new token is shown once, on the page that made it."""

    list_display = ("workspace", "created_at")
    exclude = ("workspace", "token_sha256")
    change_list_template = "admin/threads/inboundtoken/change_list.html"

    def get_urls(self):
        rotate = path("rotate/", self.admin_site.admin_view(self.rotate_view), name="threads_inboundtoken_rotate")
        return [rotate, *super().get_urls()]

    def has_rotate_permission(self, request):
        return getattr(request, "workspace", None) is not None and self.has_verb_permission(request, "rotate")

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_rotate": self.has_rotate_permission(request)}
        return super().changelist_view(request, extra_context=extra_context)

    def rotate_view(self, request):
        """GET: what rotating does; POST: a new token, shown once (the old one stops working)."""
        if not self.has_rotate_permission(request):
            raise PermissionDenied("Only a workspace admin can rotate the inbound token.")
        token = None
        if request.method == "POST":
            token = inbound_token_rotate(workspace=request.workspace, actor=request.user)
        context = {
            **self.admin_site.each_context(request),
            "title": "Rotate the inbound token",
            "opts": self.opts,
            "token": token,
            "inbound_url": request.build_absolute_uri(reverse("inbound", args=[request.workspace.slug])),
        }
        return TemplateResponse(request, "admin/threads/inboundtoken/rotate.html", context)


@admin.register(ImapCursor)
class ImapCursorAdmin(ReadOnlyAdmin):
    list_display = ("mailbox_key", "uidvalidity", "last_uid", "updated_at")
    search_fields = ("mailbox_key",)
