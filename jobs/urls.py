from django.urls import path

from jobs import views

app_name = "jobs"
urlpatterns = [
    path("", views.queue_view, name="queue"),
    path("<int:job_id>/retry/", views.job_retry_view, name="retry"),
    path("<int:job_id>/cancel/", views.job_cancel_view, name="cancel"),
]
