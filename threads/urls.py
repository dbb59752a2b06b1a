from django.urls import path

from threads import views

app_name = "threads"

urlpatterns = [
    path("", views.thread_list_view, name="list"),
    path("<int:thread_id>/", views.thread_detail_view, name="detail"),
    path("messages/<int:message_id>/html/", views.message_html_view, name="message-html"),
    path("messages/<int:message_id>/html/download/", views.message_html_download_view, name="message-html-download"),
    path("messages/<int:message_id>/text/", views.message_text_view, name="message-text"),
    path("messages/<int:message_id>/raw/", views.message_raw_view, name="message-raw"),
    path("attachments/<int:attachment_id>/", views.attachment_download_view, name="attachment-download"),
]
