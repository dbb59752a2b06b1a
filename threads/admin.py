from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from threads.models import Attachment, ImapCursor, InboundToken, Message, Thread
from threads.selectors import BIG_COLUMNS, body_display_limit, message_body_heads
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
    # Operators find the messages that could not be parsed with the parse status filter.
    list_display = ("subject", "from_email", "sent_at", "parse_status", "parse_error", "source")
    list_filter = ("parse_status",)
    search_fields = ("subject", "from_email", "message_id")
    # The bodies can be tens of megabytes: the list never loads them, the page shows their start.
    exclude = ("workspace", "raw", "text", "html", "reply_text")
    readonly_fields = ("text_start", "html_start", "downloads")
    list_select_related = ("thread",)

    def get_queryset(self, request):
        return super().get_queryset(request).defer(*BIG_COLUMNS)

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


@admin.register(Attachment)
class AttachmentAdmin(ReadOnlyAdmin):
    list_display = ("filename", "content_type", "size", "sha256")
    search_fields = ("filename", "sha256")
    list_filter = ("content_type",)


@admin.register(InboundToken)
class InboundTokenAdmin(ReadOnlyAdmin):
    """Rotated with ``manage.py inbound_token``; only the hash is kept."""

    list_display = ("workspace", "created_at")


@admin.register(ImapCursor)
class ImapCursorAdmin(ReadOnlyAdmin):
    list_display = ("mailbox_key", "uidvalidity", "last_uid", "updated_at")
    search_fields = ("mailbox_key",)
