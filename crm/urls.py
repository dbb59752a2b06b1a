from django.urls import path

from crm import views

app_name = "crm"

urlpatterns = [
    path("threads/<int:pk>/", views.thread_writes, name="thread"),
    path("deals/<int:pk>/", views.deal_writes, name="deal"),
    path("writes/<int:pk>/retry/", views.retry, name="retry"),
]
