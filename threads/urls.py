from django.urls import path

from threads import views

app_name = "threads"

urlpatterns = [
    path("", views.thread_list_view, name="list"),
    path("<int:thread_id>/", views.thread_detail_view, name="detail"),
    path("messages/<int:message_id>/html/", views.message_html_view, name="message-html"),
]
