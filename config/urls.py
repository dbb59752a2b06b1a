from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from workspaces import views as workspace_views

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("workspace/switch/", workspace_views.workspace_switch, name="workspace-switch"),
    path("admin/", admin.site.urls),
    path("w/<slug:workspace_slug>/jobs/", include("jobs.urls")),
]
