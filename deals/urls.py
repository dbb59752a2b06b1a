from django.urls import path

from deals import views

app_name = "deals"

urlpatterns = [
    path("", views.deal_list, name="list"),
    path("<int:pk>/", views.deal_detail, name="detail"),
]
