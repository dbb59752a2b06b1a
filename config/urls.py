from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from threads import views as thread_views
from workspaces import views as workspace_views

urlpatterns = [
    path("", workspace_views.home, name="home"),
    # Browsers that ask for /favicon.ico before reading the page's <link rel="icon">.
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"), permanent=True), name="favicon"),
    path("workspace/switch/", workspace_views.workspace_switch, name="workspace-switch"),
    path("accounts/login/", auth_views.LoginView.as_view(template_name="console/login.html"), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("w/<slug:workspace_slug>/threads/", include("threads.urls")),
    path("inbound/<slug:workspace_slug>/", thread_views.inbound_view, name="inbound"),
    path("admin/", admin.site.urls),
    path("w/<slug:workspace_slug>/review/", include("review.urls")),
    path("w/<slug:workspace_slug>/jobs/", include("jobs.urls")),
    path("w/<slug:workspace_slug>/deals/", include("deals.urls")),
    path("w/<slug:workspace_slug>/crm/", include("crm.urls")),
]
