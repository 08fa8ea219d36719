from django.urls import path

from . import api, views

app_name = "positions"

api_urlpatterns = [
    path("positions/update", api.PositionsUpdateApi.as_view(), name="api-update"),
    path("positions/strategy/<str:name>", api.StrategyPositionsApi.as_view(), name="api-strategy"),
    path("positions/total", api.TotalPositionsApi.as_view(), name="api-total"),
    path("positions/all", api.AllPositionsApi.as_view(), name="api-all"),
    path("auth/info", api.AuthInfoApi.as_view(), name="api-auth-info"),
]

urlpatterns = [
    path("", views.overview, name="overview"),
]
