from django.urls import path

from review import views

app_name = "review"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("items/<int:pk>/", views.item, name="item"),
    path("items/<int:pk>/decide/", views.decide, name="decide"),
    path("items/<int:pk>/undo/", views.undo, name="undo"),
    path("items/<int:pk>/associate/", views.associate, name="associate"),
    path("bulk/", views.bulk, name="bulk"),
    path("batches/<str:batch>/undo/", views.undo_batch, name="undo-batch"),
]
