"""Small site-wide views."""

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe

FAVICON = settings.BASE_DIR / "static" / "favicon.ico"


# Browsers ask for /favicon.ico whatever the page says; answering it keeps 404s out of the log.
@require_safe
@cache_control(public=True, max_age=7 * 24 * 3600)
def favicon(request):
    return HttpResponse(FAVICON.read_bytes(), content_type="image/x-icon")
