from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from execution import api as execution_api
from execution.remote import api as remote_api
from positions.urls import api_urlpatterns as positions_api
from qmtjq import views as site_views
from rotation import api as rotation_api

execution_api_urls = [
    path(
        "accounts/<str:name>/positions",
        execution_api.AccountPositionsApi.as_view(),
        name="api-account-positions",
    ),
    path("accounts/<str:name>/drift", execution_api.AccountDriftApi.as_view(), name="api-account-drift"),
    path("orders", execution_api.OrdersApi.as_view(), name="api-orders"),
    path("rotation/<str:name>/selection", rotation_api.SelectionApi.as_view(), name="api-rotation-selection"),
    path("worker/feed", remote_api.WorkerFeedApi.as_view(), name="api-worker-feed"),
    path("worker/report", remote_api.WorkerReportApi.as_view(), name="api-worker-report"),
]

urlpatterns = [
    path("favicon.ico", site_views.favicon, name="favicon"),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/v1/", include((positions_api + execution_api_urls, "api"), namespace="api")),
    path("api/schema/", staff_member_required(SpectacularAPIView.as_view()), name="api-schema"),
    path(
        "api/docs/",
        staff_member_required(SpectacularSwaggerSplitView.as_view(url_name="api-schema")),
        name="api-docs",
    ),
    path("", include("positions.urls")),
    path("", include("execution.urls")),
    path("", include("rotation.urls")),
]

handler400 = "qmtjq.api.bad_request"
handler403 = "qmtjq.api.permission_denied"
handler404 = "qmtjq.api.not_found"
handler500 = "qmtjq.api.server_error"
