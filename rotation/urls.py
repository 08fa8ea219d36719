from django.urls import path

from . import views

app_name = "rotation"

urlpatterns = [
    path("rotation/", views.rotation_list, name="rotation-list"),
    path("rotation/<str:name>/", views.rotation_detail, name="rotation-detail"),
]
