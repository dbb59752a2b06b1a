from django.contrib import admin

from threads.models import Attachment, ImapCursor, InboundToken, Message, Thread
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
    exclude = ("workspace", "raw")
    list_select_related = ("thread",)


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
