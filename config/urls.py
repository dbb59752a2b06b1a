from django.contrib import admin
from django.urls import include, path

from workspaces import views as workspace_views

urlpatterns = [
    path("", workspace_views.home, name="home"),
    path("workspace/switch/", workspace_views.workspace_switch, name="workspace-switch"),
    path("admin/", admin.site.urls),
    path("w/<slug:workspace_slug>/review/", include("review.urls")),
]
