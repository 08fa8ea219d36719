"""WSGI entry point (served by granian or waitress in `manage.py serve`).

API calls that carry their own credentials (`X-API-Key`, `X-Auth-Token`)
run through a shorter middleware chain: they never use a session, a CSRF
token, messages or the admin login lockout, and those layers were ~10 % of an
upload's server CPU (issue 12). Everything else gets the full chain.
"""

import os

from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qmtjq.settings")

# The same security and locale behaviour as the site; no session, auth, CSRF, messages or axes.
API_CLIENT_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
CREDENTIAL_HEADERS = ("HTTP_X_API_KEY", "HTTP_X_AUTH_TOKEN")


class ApiClientHandler(WSGIHandler):
    """A WSGI handler whose middleware chain is API_CLIENT_MIDDLEWARE instead of settings.MIDDLEWARE."""

    def load_middleware(self, is_async=False):
        from django.conf import settings

        site_middleware = settings.MIDDLEWARE
        settings.MIDDLEWARE = API_CLIENT_MIDDLEWARE  # read only inside load_middleware, at start-up
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = site_middleware


class Application:
    def __init__(self) -> None:
        self.site = get_wsgi_application()
        self.api_client = ApiClientHandler()

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO", "").startswith("/api/") and any(h in environ for h in CREDENTIAL_HEADERS):
            return self.api_client(environ, start_response)
        return self.site(environ, start_response)


application = Application()
