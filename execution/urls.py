from django.urls import path

from . import views, views_approve

app_name = "execution"

urlpatterns = [
    path("orders/", views.order_list, name="order-list"),
    path("orders/export.csv", views.order_export_csv, name="order-export"),
    path("orders/<int:pk>/", views.order_detail, name="order-detail"),
    path("rounds/", views.round_list, name="round-list"),
    path("rounds/<int:pk>/", views.round_detail, name="round-detail"),
    path("rounds/<int:pk>/approve/", views_approve.round_approve, name="round-approve"),
    path("accounts/", views.account_list, name="account-list"),
    path("accounts/<str:name>/", views.account_detail, name="account-detail"),
]
