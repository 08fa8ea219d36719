"""The page language: the header switch's choice, else LANGUAGE_CODE, else the browser's language.

Django's LocaleMiddleware lets the browser's Accept-Language override
LANGUAGE_CODE, so a Chinese installation opened in an English browser (or
in headless Chromium) came up in English. Here an operator's explicit
LANGUAGE_CODE decides the default; Accept-Language only counts when nobody
set it (settings.LANGUAGE_FROM_BROWSER).
"""

from django.conf import settings
from django.middleware.locale import LocaleMiddleware
from django.utils import translation


class SiteLanguageMiddleware(LocaleMiddleware):
    def process_request(self, request):
        language = self._language(request)
        translation.activate(language)
        request.LANGUAGE_CODE = translation.get_language()

    @staticmethod
    def _language(request) -> str:
        chosen = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
        if chosen:
            try:
                return translation.get_supported_language_variant(chosen)
            except LookupError:
                pass
        if settings.LANGUAGE_FROM_BROWSER:
            return translation.get_language_from_request(request)
        return settings.LANGUAGE_CODE
