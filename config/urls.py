from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from threads import views as thread_views
from workspaces import views as workspace_views

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("workspace/switch/", workspace_views.workspace_switch, name="workspace-switch"),
    path("w/<slug:workspace_slug>/threads/", include("threads.urls")),
    path("inbound/<slug:workspace_slug>/", thread_views.inbound_view, name="inbound"),
    path("admin/", admin.site.urls),
    path("w/<slug:workspace_slug>/jobs/", include("jobs.urls")),
]
